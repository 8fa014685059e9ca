"""Softmax along the last axis of 16-bit and float32 arrays, a row at a time in one pass over
the input: each row decoded to float32, its maximum, ``exp(x - max)`` (``vmath.exp_span``), the
sum, each value divided by it and rounded once to the dtype.

NumPy's way (what ``nbmp.ops.softmax`` runs elsewhere): a float32 copy, a maximum, a
subtraction, exp, a sum and a division, each a pass over the whole array, and a cast back.
Special values as that formula gives them: a NaN in a row, or +inf (inf - inf), makes the row
NaN; a row of -inf is NaN; -inf beside finite values gives 0.

>>> import numpy as np
>>> softmax(np.array([[0.0, 0.0], [1000.0, -np.inf]], np.float16))
array([[0.5, 0.5],
       [1. , 0. ]], dtype=float16)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nbmp.backend.cpu import pool, threads, versions
from nbmp.backend.cpu.cast import _STORAGE  # NumPy dtype -> the view the kernel reads and writes
from nbmp.backend.cpu.gemm import _to_f32
from nbmp.backend.cpu.pool import _narrow
from nbmp.backend.cpu.simd import WIDTH, vadd, vload, vmax, vstore, vzero
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only
from nbmp.backend.cpu.vmath import exp_span

__all__ = ["KERNEL_VERSION", "PARALLEL_MIN", "softmax"]

#: Numba's cache hashes this file only: the conversions come from gemm and pool, exp from vmath
#: (pool's version names gemm's, which names vmath's).
KERNEL_VERSION = "softmax-1/pool-5/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, pool.KERNEL_VERSION)

#: Arrays of this many elements or more are shared among the threads, a share of the rows each.
PARALLEL_MIN = 1 << 16

_FLAGS = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_FLAGS)
def _softmax_share(th, nthreads, go, x, out, length):
    """Thread ``th``'s rows of ``out = softmax(x)``, flat storage views of rows of `length`."""
    start_workers(go)
    rows = x.size // length
    row = np.empty(length, np.float32)
    lanes = np.empty(WIDTH, np.float32)
    full = length - length % WIDTH
    for r in range(th * rows // nthreads, (th + 1) * rows // nthreads):
        at = np.uint64(r * length)
        for k in range(np.uint64(length)):  # unsigned indices: loops LLVM vectorises
            row[k] = _to_f32(x[at + k])
        top = row[0]
        if full:  # WIDTH lanes at a time (vmax: NaN wins), then across the lanes
            v = vload(row, 0)
            for k in range(WIDTH, full, WIDTH):
                v = vmax(v, vload(row, k))
            vstore(lanes, 0, v)
            for k in range(WIDTH):
                top = lanes[k] if lanes[k] > top or lanes[k] != lanes[k] else top
        for k in range(full, length):
            top = row[k] if row[k] > top or row[k] != row[k] else top
        exp_span(row, 0, length, top)
        total = np.float32(0)
        if full:
            s = vzero()
            for k in range(0, full, WIDTH):
                s = vadd(s, vload(row, k))
            vstore(lanes, 0, s)
            for k in range(WIDTH):
                total += lanes[k]
        for k in range(full, length):
            total += row[k]
        for k in range(np.uint64(length)):
            out[at + k] = _narrow(row[k] / total, out)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of float16, bfloat16 or float32 `x` along its last axis, rounded once to its dtype."""
    if x.dtype not in _STORAGE or x.dtype == np.float64:
        raise TypeError(f"softmax: unsupported dtype. Valid: float16, bfloat16, float32. Received: {x.dtype}")
    out = np.empty(x.shape, x.dtype)
    if x.size:
        view = _STORAGE[x.dtype]
        threads.parallel(_softmax_share, read_only(np.ascontiguousarray(x).view(view).reshape(-1)),
                         out.view(view).reshape(-1), x.shape[-1] if x.ndim else 1,
                         nthreads=None if x.size >= PARALLEL_MIN else 1)
    return out
