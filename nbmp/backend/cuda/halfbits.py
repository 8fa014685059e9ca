"""Device functions that convert between float16/bfloat16/float32/float64 inside kernels.

float16 arrays are read natively (``cvt.f32.f16``) and written with ``cvt.rn.f16.f32`` or
``cvt.rn.f16.f64``: one round-to-nearest-even, NaN kept. bfloat16 has no array type in numba-cuda,
so kernels see its ``uint16`` bit pattern: decoding is a 16-bit shift, encoding rounds to
nearest-even in integer arithmetic and keeps NaN a quiet NaN with its high payload bits (as the
CPU backend does). float64 -> bfloat16 rounds once, through float32 rounded to odd.

``decoder(dtype, acc)`` and ``encoder(dtype, acc)`` pick the function for an array's dtype and
the accumulation dtype `acc` (float32 or float64).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from nbmp import dtypes

__all__ = ["bf16_to_f32", "f32_to_bf16", "f64_to_bf16", "as_u32", "decoder", "encoder"]


@cuda.jit(device=True)
def _f32_bits(x):
    """The bits of float32 `x` as uint32 (a register move once compiled)."""
    tmp = cuda.local.array(1, np.float32)
    tmp[0] = x
    return tmp.view(np.uint32)[0]


@cuda.jit(device=True)
def _bits_f32(u):
    """The float32 whose bits are uint32 `u`."""
    tmp = cuda.local.array(1, np.uint32)
    tmp[0] = u
    return tmp.view(np.float32)[0]


@cuda.jit(device=True)
def bf16_to_f32(bits):
    """bfloat16 bits (uint16) -> float32, exact."""
    return _bits_f32(np.uint32(bits) << np.uint32(16))


@cuda.jit(device=True)
def f32_to_bf16(x):
    """float32 -> bfloat16 bits, round-to-nearest-even; overflow gives inf, NaN stays NaN."""
    u = _f32_bits(x)
    if x != x:
        return np.uint16((u >> np.uint32(16)) | np.uint32(0x40))
    rounded = u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return np.uint16(rounded >> np.uint32(16))


@cuda.jit(device=True)
def f64_to_bf16(x):
    """float64 -> bfloat16 bits with one rounding: float32 rounded to odd, then to nearest-even.

    An inexact float32 gets an odd last bit (Boldo & Melquiond); overflow becomes FLT_MAX, which
    rounds on to inf.
    """
    y = np.float32(x)
    u = _f32_bits(y)
    if np.float64(y) != x and x == x and (u & np.uint32(1)) == np.uint32(0):
        if abs(np.float64(y)) < abs(x):
            u = u + np.uint32(1)
        else:
            u = u - np.uint32(1)
    return f32_to_bf16(_bits_f32(u))


@cuda.jit(device=True)
def _as_f32(v):
    return np.float32(v)


@cuda.jit(device=True)
def _as_f64(v):
    return np.float64(v)


@cuda.jit(device=True)
def _as_f16(v):
    return np.float16(v)


@cuda.jit(device=True)
def _bf16_to_f64(bits):
    return np.float64(bf16_to_f32(bits))


@cuda.jit(device=True)
def as_u32(bits):
    """A 16-bit pattern widened to uint32 (what the tensor-core kernels stage)."""
    return np.uint32(bits)


def decoder(dtype, acc):
    """Device function: an element of a `dtype` kernel array -> the `acc` dtype."""
    f64 = np.dtype(acc) == np.float64
    if np.dtype(dtype) == dtypes.bfloat16:
        return _bf16_to_f64 if f64 else bf16_to_f32
    return _as_f64 if f64 else _as_f32


def encoder(dtype, acc):
    """Device function: an `acc` value -> an element of a `dtype` kernel array, rounded once."""
    dtype = np.dtype(dtype)
    if dtype == dtypes.bfloat16:
        return f64_to_bf16 if np.dtype(acc) == np.float64 else f32_to_bf16
    return {np.float16: _as_f16, np.float32: _as_f32, np.float64: _as_f64}[dtype.type]
