"""Elementwise activations of floating arrays in one pass: each value decoded, activated in
float32 (float64 for float64 arrays) and rounded once to the array's dtype.

16-bit and float32 values go a block at a time through ``vmath.activate_span``, the function
the GEMM epilogue applies, so ``ops.gelu(x @ w)`` and ``ops.dense(x, w, activation="gelu")``
agree bit for bit; float64 values through the C library's exp, tanh and erfc in float64.
``reference.activation`` is the oracle the tests hold both to.

>>> import numpy as np
>>> activation(np.array([-1.0, 0.5, 2.0], np.float16), "relu")
array([0. , 0.5, 2. ], dtype=float16)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from nbmp import dtypes
from nbmp.backend.cpu import pool, simd, threads, versions
from nbmp.backend.cpu.cast import _STORAGE  # NumPy dtype -> the view the kernel reads and writes
from nbmp.backend.cpu.gemm import _OPTS, ACTIVATIONS, _to_f32
from nbmp.backend.cpu.pool import _narrow
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only
from nbmp.backend.cpu.vmath import activate_span
from nbmp.backend.reference import GELU_FLOOR

__all__ = ["KERNEL_VERSION", "PARALLEL_MIN", "activation"]

#: Numba's cache hashes this file only: the activation and conversions come from vmath, gemm and
#: pool (see ``gemm.KERNEL_VERSION``; pool's version names gemm's, which names vmath's).
KERNEL_VERSION = "activations-4/pool-5/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, pool.KERNEL_VERSION)

#: Activation number -> the fewest elements shared among threads (fewer: one thread does it all).
#: fp16, two threads against one, on the 2-core machine measured: relu 0.97x at 256K elements,
#: 1.46x at 512K; sigmoid 1.08x at 32K, 1.25x at 64K (tanh costs as much an element); gelu
#: 0.98x at 16K, 1.22x at 32K, 1.42x at 64K.
PARALLEL_MIN = {1: 1 << 19, 2: 1 << 16, 3: 1 << 16, 4: 1 << 15}
#: Values decoded to float32 at a time, activated, then rounded back (a thread's buffer, in L1).
BLOCK = 512


@njit(inline="always", **_OPTS)
def _activate64(x, act):
    """Activation number `act` of float64 `x`, computed in float64."""
    if act == 1:
        return 0.0 if x <= 0 else x  # -0.0 to +0.0, as NumPy's maximum and the float32 path; NaN stays
    if act == 2:  # exp(-|x|) cannot overflow: 1 / (1 + exp(-x)) was 0 below about -709
        e = math.exp(-abs(x))
        return (e if x < 0 else 1.0) / (1.0 + e)
    if act == 3:
        return math.tanh(x)
    x = x if not x < GELU_FLOOR else GELU_FLOOR  # -inf gives -0.0, NaN stays
    return 0.5 * x * math.erfc(x * -0.70710678118654752)  # erfc: 1 + erf cancels far left


def _activate_range(x, out, lo, hi, act):
    """``out[lo:hi] = activation(x[lo:hi])`` for storage views of one dtype (jit only)."""
    raise NotImplementedError


@overload(_activate_range, inline="always")
def _ov_activate_range(x, out, lo, hi, act):
    if x.dtype == types.float64:
        def in_float64(x, out, lo, hi, act):
            for i in range(lo, hi):
                out[i] = _activate64(x[i], act)

        return in_float64

    def in_blocks(x, out, lo, hi, act):
        block = np.empty(BLOCK, np.float32)
        for b0 in range(lo, hi, BLOCK):
            count = min(BLOCK, hi - b0)
            at = np.uint64(b0)  # unsigned indices: loops LLVM vectorises (see vmath)
            for k in range(np.uint64(count)):
                block[k] = _to_f32(x[at + k])
            activate_span(block, np.int64(0), count, act)  # (a literal 0 compiles another copy)
            for k in range(np.uint64(count)):
                out[at + k] = _narrow(block[k], out)

    return in_blocks


@njit(**_OPTS)
def _activation_share(th, nthreads, go, x, out, act):
    """Thread ``th``'s contiguous share of ``out = activation(x)`` (storage views, flat)."""
    start_workers(go)
    simd.prefer_wide_vectors()  # the decoding and rounding loops
    _activate_range(x, out, th * x.size // nthreads, (th + 1) * x.size // nthreads, act)


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
                         nthreads=None if x.size >= PARALLEL_MIN[act] else 1)
    return out
