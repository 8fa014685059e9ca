"""Arithmetic of two 16-bit float operands in one pass: each pair of values decoded, added,
subtracted, multiplied or divided in float32 and rounded once to the dtype.

NumPy's path for ``x + y`` on halves (what ``nbmp.ops`` ran before: both operands cast to
float32, NumPy's float32 loop, the result cast back) reads and writes every value three times;
this reads each operand once and writes the result once. The result is the same bit for bit: an
IEEE operation on the decoded values, rounded once (NaN stays NaN, infinities and signed zeros
as IEEE says). Shapes: equal, one operand a single value, or one operand's shape the trailing
dimensions of the other's (a bias added to every row); both C-contiguous (``binary`` returns
None for anything else, which the caller then computes as before).

>>> import numpy as np
>>> x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float16)
>>> binary("multiply", x, np.array([0.5, 10.0], np.float16), np.dtype(np.float16))
array([[ 0.5, 20. ],
       [ 1.5, 40. ]], dtype=float16)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from nbmp import dtypes
from nbmp.backend.cpu import pool, simd, threads, versions
from nbmp.backend.cpu.cast import _STORAGE  # NumPy dtype -> the view the kernel reads and writes
from nbmp.backend.cpu.gemm import _to_f32
from nbmp.backend.cpu.pool import _narrow
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only

__all__ = ["KERNEL_VERSION", "OPS", "PARALLEL_MIN", "binary"]

#: Numba's cache hashes this file only: the conversions come from gemm and pool (see
#: ``gemm.KERNEL_VERSION``; pool's version names gemm's), the wide loops from simd.
KERNEL_VERSION = "arithmetic-1/pool-5/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, pool.KERNEL_VERSION)

#: NumPy ufunc name -> operation number in the kernel.
OPS = {"add": 0, "subtract": 1, "multiply": 2, "true_divide": 3}
#: Results of this many elements or more are shared among the threads. x + y on the 2-core
#: machine measured, two threads against one: 0.68x at 64K elements, 0.81-0.90x at 128K,
#: 1.18-1.21x at 256K, 1.42x at 1M (fp16 and bf16).
PARALLEL_MIN = 1 << 18

_FLAGS = dict(cache=True, error_model="numpy", nogil=True)


@njit(inline="always", **_FLAGS)
def _apply(a, b, op):
    if op == 0:
        return a + b
    if op == 1:
        return a - b
    if op == 2:
        return a * b
    return a / b


@njit(**_FLAGS)
def _binary_share(th, nthreads, go, x, y, out, op, swap):
    """Thread ``th``'s share of ``out = x (op) y`` (``y (op) x`` if `swap`), flat storage views:
    ``x`` has ``out``'s size, a whole number of rows of ``y``'s size, which every row meets."""
    start_workers(go)
    simd.prefer_wide_vectors()
    period = y.size
    lo, hi = np.uint64(th * out.size // nthreads), np.uint64((th + 1) * out.size // nthreads)
    if period == out.size:  # one value each: a share of the elements
        for i in range(lo, hi):  # unsigned indices: loops LLVM vectorises
            out[i] = _narrow(_apply(_to_f32(x[i]), _to_f32(y[i]), op), out)
        return
    if period == 1:  # one value for all
        w = _to_f32(y[0])
        for i in range(lo, hi):
            v = _to_f32(x[i])
            out[i] = _narrow(_apply(w, v, op) if swap else _apply(v, w, op), out)
        return
    rows = out.size // period  # a share of the rows
    for r in range(th * rows // nthreads, (th + 1) * rows // nthreads):
        at = np.uint64(r * period)
        for c in range(np.uint64(period)):
            v, w = _to_f32(x[at + c]), _to_f32(y[c])
            out[at + c] = _narrow(_apply(w, v, op) if swap else _apply(v, w, op), out)


def _repeats(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether an array of shape `small` broadcast to `big` repeats its values in order, a row
    of ``big``'s trailing dimensions at a time (leading 1s of `small` dropped)."""
    while small and small[0] == 1:
        small = small[1:]
    return len(small) <= len(big) and big[len(big) - len(small):] == small


def binary(fn_name: str, x: np.ndarray | float, y: np.ndarray | float, out_dtype: Any) -> np.ndarray | None:
    """``x (fn_name) y`` for 16-bit float operands of `out_dtype` (NumPy ufunc names of ``OPS``),
    a Python float standing for a single value already rounded to it; None where this kernel
    does not apply (another operation or dtype, other shapes, strided operands)."""
    op = OPS.get(fn_name)
    if op is None or not dtypes.is_half(out_dtype):
        return None
    out_dtype = dtypes.as_numpy(out_dtype)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, out_dtype)
    if not isinstance(y, np.ndarray):
        y = np.asarray(y, out_dtype)
    if not (x.dtype == y.dtype == out_dtype and x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    if x.shape == y.shape or y.ndim == 0:  # the common cases, without broadcast_shapes' cost (4 us)
        shape, swap = x.shape, False
    elif x.ndim == 0:
        shape, swap, x, y = y.shape, True, y, x
    else:
        try:
            shape = np.broadcast_shapes(x.shape, y.shape)
        except ValueError:  # the caller's path raises NumPy's usual message
            return None
        swap = x.size != math.prod(shape)  # the one broadcast is y
        big, small = (y, x) if swap else (x, y)
        if big.size != math.prod(shape) or not (small.size == big.size or _repeats(small.shape, shape)):
            return None
        x, y = big, small
    out = np.empty(shape, out_dtype)
    if out.size:
        view = _STORAGE[out_dtype]
        threads.parallel(_binary_share, read_only(x.view(view).reshape(-1)),
                         read_only(y.view(view).reshape(-1)), out.view(view).reshape(-1), op, swap,
                         nthreads=None if out.size >= PARALLEL_MIN else 1)
    return out
