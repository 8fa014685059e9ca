"""Elementwise activations of floating arrays in one pass: each value decoded, activated in
float32 (float64 for float64 arrays) and rounded once to the array's dtype.

The function is the GEMM epilogue's (``gemm._activate``), so ``ops.gelu(x @ w)`` and
``ops.dense(x, w, activation="gelu")`` agree on the same values. The CPU backend runs gelu here
(see ``nbmp.backend.cpu.activation`` for why only gelu); ``reference.activation`` is the oracle
the tests hold it to.

>>> import numpy as np
>>> activation(np.array([-1.0, 0.5, 2.0], np.float16), "relu")
array([0. , 0.5, 2. ], dtype=float16)
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from nbmp import dtypes
from nbmp.backend.cpu import pool, threads, versions
from nbmp.backend.cpu.cast import _STORAGE  # NumPy dtype -> the view the kernel reads and writes
from nbmp.backend.cpu.gemm import _OPTS, ACTIVATIONS, _activate, _to_f32
from nbmp.backend.cpu.pool import _narrow
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only

__all__ = ["KERNEL_VERSION", "activation"]

#: Numba's cache hashes this file only: the activation and conversions come from gemm and pool
#: (see ``gemm.KERNEL_VERSION``; pool's version names gemm's).
KERNEL_VERSION = "activations-1/pool-3/gemm-29/simd-8/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, pool.KERNEL_VERSION)

#: Below this many elements one thread does it all. gelu spends 25-40 ns on an element here
#: (erfc), so 32K of them take about a millisecond, 25 times what starting a second thread costs.
PARALLEL_MIN = 1 << 15


def _decode(v):
    """Element `v` of a storage view as the float the activation takes (jit only)."""
    raise NotImplementedError


@overload(_decode, inline="always")
def _ov_decode(v):
    if v == types.float64:
        return lambda v: v
    return lambda v: _to_f32(v)


def _encode(v, out):
    """Float `v` as an element of storage view `out` (jit only)."""
    raise NotImplementedError


@overload(_encode, inline="always")
def _ov_encode(v, out):
    if out.dtype == types.float64:
        return lambda v, out: v
    return lambda v, out: _narrow(v, out)


@njit(**_OPTS)
def _activation_share(th, nthreads, go, x, out, act):
    """Thread ``th``'s contiguous share of ``out = activation(x)`` (storage views, flat)."""
    start_workers(go)
    for i in range(th * x.size // nthreads, (th + 1) * x.size // nthreads):
        out[i] = _encode(_activate(_decode(x[i]), act), out)


def activation(x: np.ndarray, name: str | None) -> np.ndarray:
    """`name` (``None``, 'linear', 'relu', 'sigmoid', 'tanh', 'gelu') applied to every element of
    floating `x`, as a new array of its shape and dtype (the same `x` for the identity)."""
    act = ACTIVATIONS.get(name)
    if act is None:
        raise ValueError(f"Unknown activation {name!r}. Valid: {', '.join(map(str, ACTIVATIONS))}")
    if act == 0:
        return x
    if x.dtype not in _STORAGE:
        raise TypeError(f"activation: unsupported dtype. Valid: {', '.join(dtypes.FLOATING)}. "
                        f"Received: {x.dtype}")
    view = _STORAGE[x.dtype]
    out = np.empty(x.shape, x.dtype)
    if x.size:
        threads.parallel(_activation_share, read_only(np.ascontiguousarray(x).view(view).reshape(-1)),
                         out.view(view).reshape(-1), act,
                         nthreads=None if x.size >= PARALLEL_MIN else 1)
    return out
