"""Normalization statistics and normalization of 16-bit and float32 arrays in one pass each.

``moments``: the mean and variance of each row (the last axis: layer normalization) or of
each column (every axis but the last: batch normalization), accumulated in float64, two passes
over the row or column (the mean, then the squared deviations from it) and rounded once to
float32. NumPy's way (what ``nbmp.ops.moments`` runs elsewhere): a float32 copy, its mean, the
deviations, their squares and their mean, five passes over arrays as large as the input, each
in float32.

``normalize``: ``(x - mean) / d * scale + offset`` with ``d = sqrt(variance + epsilon)``, the
statistics per row or per column, scale and offset per column, each step in float32 in the
order ``nbmp.ops.normalize`` writes it, and one rounding to the dtype: the same bits as its
float32 formula, read and written once.

>>> import numpy as np
>>> x = np.array([[1.0, 3.0], [2.0, 2.0]], np.float16)
>>> moments(x, rows=True)
(array([2., 2.], dtype=float32), array([1., 0.], dtype=float32))
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nbmp.backend.cpu import pool, simd, threads, versions
from nbmp.backend.cpu.cast import _STORAGE  # NumPy dtype -> the view the kernels read and write
from nbmp.backend.cpu.gemm import _to_f32
from nbmp.backend.cpu.pool import _narrow
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only

__all__ = ["KERNEL_VERSION", "PARALLEL_MIN", "moments", "normalize"]

#: Numba's cache hashes this file only: the conversions come from gemm and pool (pool's
#: version names gemm's).
KERNEL_VERSION = "normalization-1/pool-5/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, pool.KERNEL_VERSION)

#: Arrays of this many elements or more are shared among the threads (rows, or columns).
PARALLEL_MIN = 1 << 16

_FLAGS = dict(cache=True, error_model="numpy", nogil=True)


@njit(fastmath={"reassoc"}, **_FLAGS)  # float64 sums in any order (vectorised): no float32
def _sum(row, count):                    # rounding of their results changes. Not inlined: its
    """``sum(row[:count])`` in float64."""  # fastmath stays its own.
    simd.prefer_wide_vectors()
    total = np.float64(0)
    for k in range(np.uint64(count)):
        total += np.float64(row[k])
    return total


@njit(fastmath={"reassoc"}, **_FLAGS)
def _sum_of_squares(row, count, center):
    """``sum((row[:count] - center)**2)`` in float64."""
    simd.prefer_wide_vectors()
    total = np.float64(0)
    for k in range(np.uint64(count)):
        d = np.float64(row[k]) - center
        total += d * d
    return total


@njit(**_FLAGS)
def _row_moments_share(th, nthreads, go, x, length, mean, var):
    """Thread ``th``'s rows of `x` (flat storage view, rows of `length`): their mean and variance."""
    start_workers(go)
    simd.prefer_wide_vectors()
    rows = x.size // length
    row = np.empty(length, np.float32)
    for r in range(th * rows // nthreads, (th + 1) * rows // nthreads):
        at = np.uint64(r * length)
        for k in range(np.uint64(length)):  # unsigned indices: loops LLVM vectorises
            row[k] = _to_f32(x[at + k])
        m = _sum(row, length) / length
        mean[r] = np.float32(m)
        var[r] = np.float32(_sum_of_squares(row, length, m) / length)


@njit(**_FLAGS)
def _column_moments_share(th, nthreads, go, x, length, mean, var):
    """Thread ``th``'s columns of `x` (flat storage view, rows of `length`): their mean and
    variance over all rows, in float64 sums a row at a time (vectorised across the columns)."""
    start_workers(go)
    simd.prefer_wide_vectors()
    rows = x.size // length
    lo, hi = th * length // nthreads, (th + 1) * length // nthreads
    width = np.uint64(hi - lo)
    total = np.zeros(hi - lo, np.float64)
    for r in range(rows):
        at = np.uint64(r * length + lo)
        for k in range(width):
            total[k] += np.float64(_to_f32(x[at + k]))
    center = total / rows
    total[:] = 0
    for r in range(rows):
        at = np.uint64(r * length + lo)
        for k in range(width):
            d = np.float64(_to_f32(x[at + k])) - center[k]
            total[k] += d * d
    for k in range(width):
        mean[lo + k] = np.float32(center[k])
        var[lo + k] = np.float32(total[k] / rows)


def _storage(x: np.ndarray, op: str) -> np.ndarray:
    """`x` as the flat read-only storage view the kernels read (its rows one after the other);
    a TypeError for the dtypes they do not take."""
    if x.dtype not in _STORAGE or x.dtype == np.float64:
        raise TypeError(f"{op}: unsupported dtype. Valid: float16, bfloat16, float32. Received: {x.dtype}")
    return read_only(np.ascontiguousarray(x).view(_STORAGE[x.dtype]).reshape(-1))


def moments(x: np.ndarray, rows: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, variance)`` in float32 of float16, bfloat16 or float32 `x` over its last axis
    (`rows`: one pair per row, shaped ``x.shape[:-1]``) or over all its other axes (one per
    column, shaped ``x.shape[-1:]``). The axis reduced must not be empty."""
    flat = _storage(x, "moments")
    shape = x.shape[:-1] if rows else x.shape[-1:]
    mean, var = np.empty(shape, np.float32), np.empty(shape, np.float32)
    if x.size == 0 or mean.size == 0:
        raise ValueError(f"moments: nothing to reduce in an array of shape {x.shape}")
    share = _row_moments_share if rows else _column_moments_share
    threads.parallel(share, flat, x.shape[-1] if x.ndim else 1, mean.reshape(-1), var.reshape(-1),
                     nthreads=None if x.size >= PARALLEL_MIN else 1)
    return mean, var


@njit(**_FLAGS)
def _normalize_share(th, nthreads, go, x, length, center, spread, per_row, scale, offset, out):
    """Thread ``th``'s rows of ``out = ((x - center) / spread) * scale (+ offset)``, rounded once.

    `x` and `out` are flat storage views, rows of `length`; `center` and `spread` (float32) hold
    a value per row if `per_row`, else per column; `scale` one per column, `offset` one per
    column or none (empty: adding 0 would turn -0.0 into +0.0).
    """
    start_workers(go)
    simd.prefer_wide_vectors()
    rows = x.size // length
    n = np.uint64(length)
    plus = offset.size > 0
    for r in range(th * rows // nthreads, (th + 1) * rows // nthreads):
        at = np.uint64(r * length)
        if per_row:
            c, s = center[r], spread[r]
            for k in range(n):
                y = (_to_f32(x[at + k]) - c) / s * scale[k]
                if plus:
                    y += offset[k]
                out[at + k] = _narrow(y, out)
        else:
            for k in range(n):
                y = (_to_f32(x[at + k]) - center[k]) / spread[k] * scale[k]
                if plus:
                    y += offset[k]
                out[at + k] = _narrow(y, out)


def normalize(x: np.ndarray, center: np.ndarray, spread: np.ndarray, per_row: bool,
              scale: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """``((x - center) / spread) * scale (+ offset)`` in float32 for float16, bfloat16 or
    float32 `x`, rounded once to its dtype.

    `center` and `spread` are float32, one per row of the last axis (`per_row`) or one per
    column; `scale` and `offset` float32, one per column (`offset` None: not added).
    """
    flat = _storage(x, "normalize")
    out = np.empty(x.shape, x.dtype)
    if x.size:
        f32 = [read_only(np.ascontiguousarray(v, np.float32).reshape(-1))
               for v in (center, spread, scale, np.empty(0) if offset is None else offset)]
        threads.parallel(_normalize_share, flat, x.shape[-1] if x.ndim else 1, f32[0], f32[1], per_row,
                         f32[2], f32[3], out.view(_STORAGE[x.dtype]).reshape(-1),
                         nthreads=None if x.size >= PARALLEL_MIN else 1)
    return out
