"""Bulk casts between float16, bfloat16, float32 and float64 NumPy arrays.

>>> import numpy as np
>>> cast(np.array([1.0, 65520.0, -0.0], np.float32), np.float16)
array([  1.,  inf,  -0.], dtype=float16)

Halves travel through the kernels as 16-bit integer views: float16 as
``uint16`` and bfloat16 as ``int16``, so Numba's type dispatch tells the two
formats apart (``_convert`` picks the conversion from the element type and
the output array's type). Every conversion rounds once, to nearest-even,
including float64 -> half. Arrays of ``PARALLEL_MIN`` elements or more run on
all of Numba's threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, types
from numba.extending import overload

from nbmp import dtypes
from nbmp.backend.cpu import halfbits as hb
from nbmp.backend.cpu import simd, spin, threads, versions
from nbmp.backend.cpu.halfbits import (
    bf16_to_f32,
    f16_to_f32,
    f32_to_bf16,
    f32_to_f16,
    f64_to_bf16,
    f64_to_f16,
)
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only

__all__ = ["KERNEL_VERSION", "PARALLEL_MIN", "cast"]

#: Numba's cache hashes this file only; this string names the halfbits and spin
#: versions the cached kernels were built with, so bumping one there forces
#: a change here (checked at import), which invalidates the cache.
KERNEL_VERSION = "cast-3/halfbits-1/spin-3/simd-9"
versions.require(__name__, KERNEL_VERSION, hb.KERNEL_VERSION, spin.KERNEL_VERSION, simd.KERNEL_VERSION)

#: Below this many elements the serial kernel runs: threads cost more than they save (on the
#: 2-core virtual machine measured, two threads broke even at 256K elements, and 64K ran 2-5x
#: faster alone).
PARALLEL_MIN = 1 << 18

_STORAGE = dtypes.DTypeTable({  # NumPy dtype -> dtype of the view the kernels see
    "float16": np.dtype(np.uint16),
    "bfloat16": np.dtype(np.int16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
})
_SPELLINGS: dict[object, np.dtype] = {**{dt: dt for dt in _STORAGE}, **{dt.type: dt for dt in _STORAGE}}
_NAMES = ", ".join(dtypes.FLOATING)


def _convert(v, out):
    """Element ``v`` converted to the element type of array ``out`` (jit only)."""
    raise NotImplementedError


@overload(_convert, inline="always")
def _ov_convert(v, out):
    F16, BF16, F32, F64 = types.uint16, types.int16, types.float32, types.float64
    impls = {
        (F16, F32): lambda v, out: f16_to_f32(v),
        (F16, F64): lambda v, out: np.float64(f16_to_f32(v)),
        (F16, BF16): lambda v, out: np.int16(f32_to_bf16(f16_to_f32(v))),
        (BF16, F32): lambda v, out: bf16_to_f32(np.uint16(v)),
        (BF16, F64): lambda v, out: np.float64(bf16_to_f32(np.uint16(v))),
        (BF16, F16): lambda v, out: f32_to_f16(bf16_to_f32(np.uint16(v))),
        (F32, F16): lambda v, out: f32_to_f16(v),
        (F32, BF16): lambda v, out: np.int16(f32_to_bf16(v)),
        (F32, F64): lambda v, out: np.float64(v),
        (F64, F16): lambda v, out: f64_to_f16(v),
        (F64, BF16): lambda v, out: np.int16(f64_to_bf16(v)),
        (F64, F32): lambda v, out: np.float32(v),
    }
    return impls.get((v, out.dtype))


@njit(cache=True, error_model="numpy", nogil=True)
def _cast_serial(src, out):
    simd.prefer_wide_vectors()
    for i in range(src.size):
        out[i] = _convert(src[i], out)


@njit(cache=True, error_model="numpy", nogil=True)
def _cast_share(th, nthreads, go, src, out):
    """Thread ``th``'s contiguous share of ``out[:] = src`` (see ``threads.parallel``)."""
    start_workers(go)
    lo, hi = th * src.size // nthreads, (th + 1) * src.size // nthreads
    _cast_serial(src[lo:hi], out[lo:hi])


def _check(dtype: Any, what: str) -> np.dtype:
    try:
        dt = _SPELLINGS.get(dtype)  # fast path for the usual spellings
        if dt is None:
            dt = dtypes.as_numpy(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt not in _STORAGE:
        raise TypeError(f"cast: unsupported {what} dtype. Valid: {_NAMES}. Received: {what}={dtype!r}")
    return dt


def cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    """``x`` converted to ``dtype`` (any of float16, bfloat16, float32, float64).

    Returns a new C-contiguous array of ``x``'s shape, also when the dtype is
    unchanged. ``x`` may have any shape and strides (strided input is first
    copied to a contiguous 16/32/64-bit view by NumPy).
    """
    x = np.asarray(x)
    src, dst = _check(x.dtype, "input"), _check(dtype, "dtype")
    if src == dst:
        return np.array(x, order="C", copy=True)
    out = np.empty(x.shape, dst)
    if x.size:
        bits = x.view(_STORAGE[src])
        if not bits.flags.c_contiguous:
            bits = np.ascontiguousarray(bits)
        threads.parallel(_cast_share, read_only(bits.ravel()), out.view(_STORAGE[dst]).ravel(),
                         nthreads=None if x.size >= PARALLEL_MIN else 1)
    return out
