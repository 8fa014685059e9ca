"""Explicit SIMD vectors for Numba kernels.

LLVM does not keep a GEMM register tile in registers when it is written as
scalar loops over arrays. This module gives Numba a value type, ``FloatVec``,
lowered to an LLVM vector ``<W x float>``, and a handful of ``@intrinsic``
operations on it written with llvmlite. A kernel that holds its accumulators
in ``FloatVec`` variables compiles to one register per accumulator.

The width ``W`` is chosen once, at import, from the features of the CPU that
Numba compiles for (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` respected):
16 floats with AVX-512F, 8 with AVX, 4 otherwise (SSE2, always present on
x86-64; LLVM splits wider vectors on other targets, correct but slower).

Half-precision arrays are read as their 16-bit integer views (as in
``cast``): fp16 as ``uint16``, bf16 as ``int16``; ``vload_f16`` /
``vload_bf16`` decode ``W`` of them to a float32 vector (fp16 with F16C's
``vcvtph2ps`` where ``halfbits.HARDWARE_F16``, else with integer ops).

All loads and stores are unaligned and unchecked: callers guarantee
``0 <= i`` and ``i + W <= arr.size``.
"""

from llvmlite import ir
from numba.core import cgutils, config, types
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, models, register_model

from nbmp.backend.cpu.halfbits import HARDWARE_F16

__all__ = [
    "KERNEL_VERSION",
    "WIDTH",
    "FloatVec",
    "vadd",
    "vbroadcast",
    "vfma",
    "vload",
    "vload_bf16",
    "vload_f16",
    "vmax",
    "vstore",
    "vstore_bf16",
    "vstore_f16",
    "vzero",
]


#: Numba's cache hashes only the file of a cached function: bump this on any
#: change here, and the modules caching kernels built on it change theirs too.
KERNEL_VERSION = "simd-2"


def _target_features():
    """The feature string Numba's JIT target machine is built with."""
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    return get_host_cpu_features()


def _vector_width(features):
    """float32 lanes of the widest vector register the target has."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 16
    if "avx" in enabled:
        return 8
    return 4


WIDTH = _vector_width(_target_features())


class FloatVecType(types.Type):
    """Numba type of a ``<width x float>`` LLVM vector value."""

    def __init__(self, width):
        self.width = width
        super().__init__(name=f"f32x{width}")


@register_model(FloatVecType)
class _FloatVecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.FloatType(), fe_type.width))


FloatVec = FloatVecType(WIDTH)
_LL_VEC = ir.VectorType(ir.FloatType(), WIDTH)
_I32 = ir.IntType(32)
_LL_I16 = ir.VectorType(ir.IntType(16), WIDTH)
_LL_I32 = ir.VectorType(_I32, WIDTH)


def _is_f32_array(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.float32


def _element_ptr(context, builder, arrty, arr, idxty, idx):
    """Pointer to ``arr.flat[idx]`` for a contiguous 1-D array."""
    data = context.make_array(arrty)(context, builder, arr).data
    idx = context.cast(builder, idx, idxty, types.intp)
    return builder.gep(data, [idx], inbounds=True)


@intrinsic
def vzero(typingctx):
    """A vector of zeros."""

    def codegen(context, builder, sig, args):
        return ir.Constant(_LL_VEC, None)

    return FloatVec(), codegen


@intrinsic
def vload(typingctx, arr, i):
    """Load ``arr[i:i+W]`` (1-D float32 array) as a vector."""
    if not (_is_f32_array(arr) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(builder.bitcast(ptr, _LL_VEC.as_pointer()), align=4)

    return FloatVec(arr, i), codegen


def _splat(value):
    return ir.Constant(_LL_I32, [value] * WIDTH)


def _load_i16(context, builder, sig, args):
    """``W`` 16-bit lanes from ``arr[i:i+W]``, zero-extended to i32."""
    ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
    halves = builder.load(builder.bitcast(ptr, _LL_I16.as_pointer()), align=2)
    return builder.zext(halves, _LL_I32)


def _f16_bits_to_f32(builder, h):
    """Exact fp16 -> float32 of i32 lanes with integer ops (any CPU).

    Shifting the 15 magnitude bits into float32 position and multiplying by
    2**112 rebiases the exponent, exactly for normals and subnormals alike;
    inf and NaN (made quiet) get the all-ones exponent instead.
    """
    mag = builder.and_(h, _splat(0x7FFF))
    shifted = builder.shl(mag, _splat(13))
    scaled = builder.fmul(builder.bitcast(shifted, _LL_VEC), ir.Constant(_LL_VEC, [2.0**112] * WIDTH))
    quiet = builder.select(builder.icmp_unsigned(">", mag, _splat(0x7C00)), _splat(0x400000), _splat(0))
    special = builder.or_(builder.or_(shifted, _splat(0x7F800000)), quiet)
    is_special = builder.icmp_unsigned(">=", mag, _splat(0x7C00))
    bits = builder.select(is_special, special, builder.bitcast(scaled, _LL_I32))
    sign = builder.shl(builder.and_(h, _splat(0x8000)), _splat(16))
    return builder.bitcast(builder.or_(bits, sign), _LL_VEC)


@intrinsic
def vload_f16(typingctx, arr, i):
    """Decode fp16 ``arr[i:i+W]`` (1-D uint16 bit view) to a float32 vector."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint16 and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        if HARDWARE_F16:
            ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
            halves = builder.load(builder.bitcast(ptr, _LL_I16.as_pointer()), align=2)
            return builder.fpext(builder.bitcast(halves, ir.VectorType(ir.HalfType(), WIDTH)), _LL_VEC)
        return _f16_bits_to_f32(builder, _load_i16(context, builder, sig, args))

    return FloatVec(arr, i), codegen


@intrinsic
def vload_bf16(typingctx, arr, i):
    """Decode bf16 ``arr[i:i+W]`` (1-D int16 bit view) to a float32 vector (exact: a shift)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int16 and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        h = _load_i16(context, builder, sig, args)
        return builder.bitcast(builder.shl(h, _splat(16)), _LL_VEC)

    return FloatVec(arr, i), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """Store vector ``v`` to ``arr[i:i+W]`` (1-D float32 array)."""
    if not (_is_f32_array(arr) and isinstance(i, types.Integer) and v == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], builder.bitcast(ptr, _LL_VEC.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(arr, i, v), codegen


def _store_i16(context, builder, sig, args, halves):
    """Store the ``<W x i16>`` value `halves` to ``arr[i:i+W]`` (a 16-bit array)."""
    ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
    builder.store(halves, builder.bitcast(ptr, _LL_I16.as_pointer()), align=2)
    return context.get_dummy_value()


@intrinsic
def vstore_f16(typingctx, arr, i, v):
    """Round vector ``v`` to fp16 (nearest even) and store the bits to ``arr[i:i+W]`` (uint16).

    Hardware conversion only (F16C's ``vcvtps2ph``): without it LLVM emits a libcall Numba
    cannot link, so the intrinsic refuses to type (a compile error, not a crash) unless
    ``HARDWARE_F16``; kernels use it behind ``@overload``s that check.
    """
    if not (HARDWARE_F16 and isinstance(arr, types.Array) and arr.dtype == types.uint16
            and isinstance(i, types.Integer) and v == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        halves = builder.fptrunc(args[2], ir.VectorType(ir.HalfType(), WIDTH))
        return _store_i16(context, builder, sig, args, builder.bitcast(halves, _LL_I16))

    return types.void(arr, i, v), codegen


@intrinsic
def vstore_bf16(typingctx, arr, i, v):
    """Round vector ``v`` to bf16 (nearest even, NaN kept quiet), store the bits to ``arr[i:i+W]`` (int16)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int16 and isinstance(i, types.Integer)
            and v == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(args[2], _LL_I32)
        odd = builder.and_(builder.lshr(bits, _splat(16)), _splat(1))
        rounded = builder.lshr(builder.add(bits, builder.add(odd, _splat(0x7FFF))), _splat(16))
        quiet = builder.or_(builder.lshr(bits, _splat(16)), _splat(0x40))
        is_nan = builder.icmp_unsigned(">", builder.and_(bits, _splat(0x7FFFFFFF)), _splat(0x7F800000))
        halves = builder.trunc(builder.select(is_nan, quiet, rounded), _LL_I16)
        return _store_i16(context, builder, sig, args, halves)

    return types.void(arr, i, v), codegen


@intrinsic
def vbroadcast(typingctx, arr, i):
    """A vector with every lane equal to ``arr[i]`` (1-D float32 array)."""
    if not (_is_f32_array(arr) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        scalar = builder.load(ptr, align=4)
        one = builder.insert_element(ir.Constant(_LL_VEC, ir.Undefined), scalar, ir.Constant(_I32, 0))
        mask = _splat(0)
        return builder.shuffle_vector(one, ir.Constant(_LL_VEC, ir.Undefined), mask)

    return FloatVec(arr, i), codegen


def _vector_intrinsic(builder, name, args):
    fnty = ir.FunctionType(_LL_VEC, [_LL_VEC] * len(args))
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{WIDTH}f32")
    return builder.call(fn, args)


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c``, fused where the target has FMA (``llvm.fmuladd``)."""
    if not (a == b == c == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        return _vector_intrinsic(builder, "fmuladd", args)

    return FloatVec(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """Lane-wise ``a + b``."""
    if not (a == b == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return FloatVec(a, b), codegen


@intrinsic
def vmax(typingctx, a, b):
    """Lane-wise maximum; a NaN in either operand gives NaN (``llvm.maximum``)."""
    if not (a == b == FloatVec):
        return None

    def codegen(context, builder, sig, args):
        return _vector_intrinsic(builder, "maximum", args)

    return FloatVec(a, b), codegen
