"""Bit-level half-precision conversions for Numba kernels.

Numba's CPU target has no float16 type, so kernels carry halves as ``uint16``
bit patterns and convert at the edges with these functions. All of them are
``@njit(inline="always")``: callable from Python, from other ``@njit`` code in
any module, and they vectorise inside loops.

fp16 has two implementations with bit-identical results:

* hardware: an llvmlite ``@intrinsic`` emitting ``fpext half -> float`` /
  ``fptrunc float -> half``; with F16C LLVM lowers these to ``vcvtph2ps`` /
  ``vcvtps2ph``. Without F16C LLVM emits a libcall Numba cannot resolve and
  the process crashes, so this path is used only when the target has F16C.
* integer: exact bit manipulation that runs on any CPU.

``HARDWARE_F16`` says which one ``f16_to_f32`` / ``f32_to_f16`` are; the
``*_hw`` / ``*_int`` variants stay importable so tests can check both.

Semantics (IEEE round-to-nearest-even, as NumPy and ml_dtypes):

* overflow rounds to inf, subnormals are exact both ways, the sign is kept;
* NaN stays NaN, made quiet, keeping the high payload bits (what
  ``vcvtps2ph`` and ``vcvtneps2bf16`` do; NumPy and ml_dtypes may return
  other NaN payloads).

``f64_to_f16`` / ``f64_to_bf16`` round once, directly from float64: they
round to float32 *to odd* first (exact for a later rounding to <= 22 bits),
then to nearest-even.

Numba's on-disk cache hashes only the source file of a cached function, not
this module: bump ``KERNEL_VERSION`` when changing anything here, and the
modules that cache kernels built on it must change theirs too.
"""

from __future__ import annotations

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic

__all__ = [
    "HARDWARE_F16",
    "KERNEL_VERSION",
    "bf16_to_f32",
    "f16_to_f32",
    "f16_to_f32_hw",
    "f16_to_f32_int",
    "f32_to_bf16",
    "f32_to_f16",
    "f32_to_f16_hw",
    "f32_to_f16_int",
    "f64_to_bf16",
    "f64_to_f16",
    "target_has_f16c",
]

#: Bump on any change to this module (see the module docstring).
KERNEL_VERSION = "halfbits-1"


def _feature_map(features: str) -> dict[str, bool]:
    """``"+a,-b"`` -> ``{"a": True, "b": False}`` (later entries win)."""
    out = {}
    for f in features.split(","):
        f = f.strip()
        if f[:1] in "+-" and len(f) > 1:
            out[f[1:]] = f[0] == "+"
    return out


def target_has_f16c() -> bool:
    """Whether the CPU Numba compiles for (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``) has F16C.

    Conservative: also requires the host to have it, and a target CPU named
    without an explicit feature list counts only if it is the host CPU.
    """
    host = ll.get_host_cpu_features()
    if not host.get("f16c", False):
        return False
    features = getattr(config, "CPU_FEATURES", None)  # set at run time: invisible to mypy
    feats = _feature_map(features if features is not None else get_host_cpu_features())
    if "f16c" in feats:
        return feats["f16c"] and feats.get("avx", True)  # -avx disables f16c in LLVM
    name = getattr(config, "CPU_NAME", None)
    return name is None or name in ("host", ll.get_host_cpu_name())


#: True when ``f16_to_f32`` / ``f32_to_f16`` use F16C instructions.
HARDWARE_F16: bool = target_has_f16c()

_I16, _I32, _HALF, _FLOAT = ir.IntType(16), ir.IntType(32), ir.HalfType(), ir.FloatType()


# --- bit casts --------------------------------------------------------------

def _bitcast_intrinsic(src, dst, name):
    def typer(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    typer.__name__ = name
    return intrinsic(typer)


_f32_bits = _bitcast_intrinsic(types.float32, types.uint32, "_f32_bits")
_bits_f32 = _bitcast_intrinsic(types.uint32, types.float32, "_bits_f32")


# --- fp16, hardware ---------------------------------------------------------

@intrinsic
def _fpext_half(typingctx, bits):
    if bits != types.uint16:
        return None

    def codegen(context, builder, sig, args):
        return builder.fpext(builder.bitcast(args[0], _HALF), _FLOAT)

    return types.float32(types.uint16), codegen


@intrinsic
def _fptrunc_half(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.fptrunc(args[0], _HALF), _I16)

    return types.uint16(types.float32), codegen


@njit(inline="always")
def f16_to_f32_hw(bits):
    """fp16 bits -> float32 with ``vcvtph2ps`` (needs F16C)."""
    return _fpext_half(np.uint16(bits))  # type: ignore[call-arg]


@njit(inline="always")
def f32_to_f16_hw(x):
    """float32 -> fp16 bits with ``vcvtps2ph`` (needs F16C), round-to-nearest-even."""
    return _fptrunc_half(np.float32(x))  # type: ignore[call-arg]


# --- fp16, integer ----------------------------------------------------------

@njit(inline="always")
def f16_to_f32_int(bits):
    """fp16 bits -> float32, integer-only (any CPU)."""
    h = np.uint32(np.uint16(bits))
    sign = (h & 0x8000) << 16
    a = h & 0x7FFF
    normal = (a << 13) + 0x38000000  # rebias exponent 15 -> 127
    special = (a << 13) | 0x7F800000 | (0x400000 if a > 0x7C00 else 0)  # inf; NaN made quiet
    # subnormal or zero: m * 2**-24 is exact in float32
    tiny = _f32_bits(np.float32(a) * np.float32(5.9604644775390625e-08))
    mag = special if a >= 0x7C00 else (normal if a >= 0x0400 else tiny)
    return _bits_f32(np.uint32(sign | mag))


@njit(inline="always")
def f32_to_f16_int(x):
    """float32 -> fp16 bits, round-to-nearest-even, integer-only (any CPU)."""
    b = np.int64(_f32_bits(np.float32(x)))
    sign = (b >> 16) & 0x8000
    a = b & 0x7FFFFFFF
    # normal result: round the 13 dropped bits to even, rebias 127 -> 15, clamp to inf
    normal = min((a + 0x0FFF + ((a >> 13) & 1) - 0x38000000) >> 13, 0x7C00)
    # subnormal result: value = m * 2**(e - 150), in units of 2**-24 that is m >> (126 - e)
    m = (a & 0x7FFFFF) | 0x800000
    s = min(126 - (a >> 23), 31)
    q = m >> s
    rem = m & ((np.int64(1) << s) - 1)
    halfway = np.int64(1) << (s - 1)
    sub = q + ((rem > halfway) | ((rem == halfway) & (q & 1)))
    nan = 0x7E00 | ((a >> 13) & 0x3FF)
    mag = nan if a > 0x7F800000 else (normal if a >= 0x38800000 else sub)
    return np.uint16(sign | mag)


if HARDWARE_F16:
    f16_to_f32, f32_to_f16 = f16_to_f32_hw, f32_to_f16_hw
else:
    f16_to_f32, f32_to_f16 = f16_to_f32_int, f32_to_f16_int


# --- bfloat16 ---------------------------------------------------------------

@njit(inline="always")
def bf16_to_f32(bits):
    """bfloat16 bits -> float32 (exact: a shift)."""
    return _bits_f32(np.uint32(np.uint32(np.uint16(bits)) << 16))


@intrinsic
def _f32_to_bf16_rne(typingctx, x):
    # written in llvmlite to stay in i32: Numba widens integer arithmetic to
    # int64, and loops then vectorise only 4 lanes wide
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        def c(v):
            return ir.Constant(_I32, v)

        b = builder.bitcast(args[0], _I32)
        hi = builder.lshr(b, c(16))
        lsb = builder.and_(hi, c(1))  # ties go to the even neighbour
        rounded = builder.lshr(builder.add(builder.add(b, c(0x7FFF)), lsb), c(16))
        nan = builder.or_(hi, c(0x0040))
        is_nan = builder.fcmp_unordered("uno", args[0], args[0])
        return builder.trunc(builder.select(is_nan, nan, rounded), _I16)

    return types.uint16(types.float32), codegen


@njit(inline="always")
def f32_to_bf16(x):
    """float32 -> bfloat16 bits, round-to-nearest-even; NaN stays a (quiet) NaN.

    ``(bits + 0x7FFF + lsb) >> 16`` with ``lsb`` the last kept bit; a carry
    into the exponent is correct rounding, up to inf.
    """
    return _f32_to_bf16_rne(np.float32(x))  # type: ignore[call-arg]


# --- float64 -> half, rounding once ------------------------------------------

@njit(inline="always")
def _f64_to_f32_odd(x):
    """float64 -> float32 rounded to odd: inexact results get an odd last bit.

    Rounding to odd into 24 bits, then to nearest into p <= 22 bits, equals one
    rounding to nearest into p bits (Boldo & Melquiond). Overflow gives
    FLT_MAX, which then rounds to inf in both half formats.
    """
    y = np.float32(x)
    b = np.int64(_f32_bits(y))
    inexact = (np.float64(y) != x) and (x == x)
    step = 1 if abs(np.float64(y)) < abs(x) else -1
    b = b + step if (inexact and (b & 1) == 0) else b
    return _bits_f32(np.uint32(b))


@njit(inline="always")
def f64_to_f16(x):
    """float64 -> fp16 bits, one round-to-nearest-even (no double rounding)."""
    return f32_to_f16(_f64_to_f32_odd(np.float64(x)))


@njit(inline="always")
def f64_to_bf16(x):
    """float64 -> bfloat16 bits, one round-to-nearest-even (no double rounding)."""
    return f32_to_bf16(_f64_to_f32_odd(np.float64(x)))
