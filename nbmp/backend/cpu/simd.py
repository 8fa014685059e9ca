"""Explicit SIMD vectors for Numba kernels.

LLVM does not keep a GEMM register tile in registers when it is written as
scalar loops over arrays. This module gives Numba a value type, ``FloatVec``,
lowered to an LLVM vector ``<W x float>``, and a handful of ``@intrinsic``
operations on it written with llvmlite. A kernel that holds its accumulators
in ``FloatVec`` variables compiles to one register per accumulator.

The register width ``WIDTH`` is chosen once, at import, from the features of
the CPU that Numba compiles for (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``
respected): 16 floats with AVX-512F, 8 with AVX, 4 otherwise (SSE2, always
present on x86-64), and ``REGISTERS`` says how many vector registers there
are (32 with AVX-512, 16 otherwise). A vector may be wider than a register:
the producers (``vzero``, the loads, ``vbroadcast``) take an optional literal
``lanes`` (default ``WIDTH``), and LLVM splits a ``<lanes x float>`` value into
``lanes / WIDTH`` registers, which is how ``gemm`` holds a row of its register
tile in one variable. The other operations take their width from their
operands.

Half-precision arrays are read as their 16-bit integer views (as in
``cast``): fp16 as ``uint16``, bf16 as ``int16``; ``vload_f16`` /
``vload_bf16`` decode ``lanes`` of them to a float32 vector (fp16 with F16C's
``vcvtph2ps`` where ``halfbits.HARDWARE_F16``, else with integer ops).

All loads and stores are unaligned and unchecked: callers guarantee
``0 <= i`` and ``i + lanes <= arr.size``.
"""

from llvmlite import ir
from numba.core import cgutils, config, types
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, models, register_model

from nbmp.backend.cpu.halfbits import HARDWARE_F16

__all__ = [
    "KERNEL_VERSION",
    "DOT_BF16",
    "REGISTERS",
    "WIDTH",
    "FloatVec",
    "prefer_wide_vectors",
    "prefetch_read",
    "prefetch_write",
    "target_features",
    "transpose_block",
    "vadd",
    "vany_bits",
    "vbroadcast",
    "vdiv",
    "vdot_bf16",
    "vfma",
    "vload",
    "vload_bf16",
    "vload_f16",
    "vload_pairs",
    "vmark_bf16_subnormals",
    "vmax",
    "vstore",
    "vstore_bf16",
    "vstore_f16",
    "vzero",
]


#: Numba's cache hashes only the file of a cached function: bump this on any
#: change here, and the modules caching kernels built on it change theirs too.
KERNEL_VERSION = "simd-9"


def target_features() -> str:
    """The feature string Numba's JIT target machine is built with."""
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    return get_host_cpu_features()


def _vector_registers(features):
    """``(float32 lanes of the widest vector register, number of such registers)`` of the target."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 16, 32
    if "avx" in enabled:
        return 8, 16
    return 4, 16


WIDTH, REGISTERS = _vector_registers(target_features())
#: Whether the target has AVX512-BF16's ``vdpbf16ps`` (``vdot_bf16``).
DOT_BF16 = "+avx512bf16" in target_features().split(",")


#: The function attribute that lets LLVM's loop vectoriser fill AVX-512 registers (see
#: ``prefer_wide_vectors``), as it prints in LLVM IR.
_WIDE_VECTORS = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors(typingctx):
    """Let LLVM vectorise the loops of the function that calls this ``WIDTH`` lanes wide.

    LLVM tunes Intel's AVX-512 CPUs (Skylake-SP to Sapphire Rapids) to vectorise loops 8 float32
    lanes wide ("prefer-256-bit"), which suits code that mixes a few vector instructions with
    scalar ones; a loop of arithmetic alone (``vmath``) runs faster 16 lanes wide. Explicit
    vectors (``FloatVec``) are not affected. Where ``WIDTH`` is less than 16 this does nothing.
    """
    def codegen(context, builder, sig, args):
        attributes = builder.function.attributes
        if WIDTH == 16 and isinstance(attributes, set):
            # llvmlite accepts only attributes without values by name: the set item is printed
            # as it is, into the function's definition (an llvmlite that kept them otherwise
            # would get no attribute, and 8-lane loops, rather than an error)
            set.add(attributes, _WIDE_VECTORS)
        return context.get_dummy_value()

    return types.void(), codegen


class FloatVecType(types.Type):
    """Numba type of a ``<width x float>`` LLVM vector value."""

    def __init__(self, width):
        self.width = width
        super().__init__(name=f"f32x{width}")


@register_model(FloatVecType)
class _FloatVecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _f32s(fe_type.width))


FloatVec = FloatVecType(WIDTH)
_I32 = ir.IntType(32)


def _f32s(width):
    return ir.VectorType(ir.FloatType(), width)


def _i16s(width):
    return ir.VectorType(ir.IntType(16), width)


def _i32s(width):
    return ir.VectorType(_I32, width)


def _splat(value, width):
    return ir.Constant(_i32s(width), [value] * width)


def _lanes(lanes):
    """The width a producer's optional ``lanes`` argument asks for, or None if it is not a literal int."""
    if lanes is None:
        return WIDTH
    if isinstance(lanes, types.IntegerLiteral) and lanes.literal_value > 0:
        return lanes.literal_value
    return None


def _vectors(*vs):
    """The common width of vector operands `vs`, or None if they are not all vectors of one width."""
    if all(isinstance(v, FloatVecType) for v in vs) and len({v.width for v in vs}) == 1:
        return vs[0].width
    return None


def _producer_sig(ret, *args):
    """The signature of a producer called with ``args``; an omitted ``lanes`` is typed None."""
    return ret(*(types.none if a is None else a for a in args))


def _is_array_of(arr, dtype):
    return isinstance(arr, types.Array) and arr.dtype == dtype


def _element_ptr(context, builder, arrty, arr, idxty, idx):
    """Pointer to ``arr.flat[idx]`` for a contiguous 1-D array."""
    data = context.make_array(arrty)(context, builder, arr).data
    idx = context.cast(builder, idx, idxty, types.intp)
    return builder.gep(data, [idx], inbounds=True)


@intrinsic(prefer_literal=True)
def vzero(typingctx, lanes=None):
    """A vector of zeros."""
    width = _lanes(lanes)
    if width is None:
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(_f32s(width), None)

    return _producer_sig(FloatVecType(width), lanes), codegen


@intrinsic(prefer_literal=True)
def vload(typingctx, arr, i, lanes=None):
    """Load ``arr[i:i+lanes]`` (1-D float32 array) as a vector."""
    width = _lanes(lanes)
    if not (width and _is_array_of(arr, types.float32) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(builder.bitcast(ptr, _f32s(width).as_pointer()), align=4)

    return _producer_sig(FloatVecType(width), arr, i, lanes), codegen


def _load_i16(context, builder, sig, args, width):
    """``width`` 16-bit lanes from ``arr[i:i+width]``, zero-extended to i32."""
    ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
    halves = builder.load(builder.bitcast(ptr, _i16s(width).as_pointer()), align=2)
    return builder.zext(halves, _i32s(width))


def _f16_bits_to_f32(builder, h, width):
    """Exact fp16 -> float32 of i32 lanes with integer ops (any CPU).

    Shifting the 15 magnitude bits into float32 position and multiplying by
    2**112 rebiases the exponent, exactly for normals and subnormals alike;
    inf and NaN (made quiet) get the all-ones exponent instead.
    """
    mag = builder.and_(h, _splat(0x7FFF, width))
    shifted = builder.shl(mag, _splat(13, width))
    rebias = ir.Constant(_f32s(width), [2.0**112] * width)
    scaled = builder.fmul(builder.bitcast(shifted, _f32s(width)), rebias)
    quiet = builder.select(builder.icmp_unsigned(">", mag, _splat(0x7C00, width)), _splat(0x400000, width),
                           _splat(0, width))
    special = builder.or_(builder.or_(shifted, _splat(0x7F800000, width)), quiet)
    is_special = builder.icmp_unsigned(">=", mag, _splat(0x7C00, width))
    bits = builder.select(is_special, special, builder.bitcast(scaled, _i32s(width)))
    sign = builder.shl(builder.and_(h, _splat(0x8000, width)), _splat(16, width))
    return builder.bitcast(builder.or_(bits, sign), _f32s(width))


@intrinsic(prefer_literal=True)
def vload_f16(typingctx, arr, i, lanes=None):
    """Decode fp16 ``arr[i:i+lanes]`` (1-D uint16 bit view) to a float32 vector."""
    width = _lanes(lanes)
    if not (width and _is_array_of(arr, types.uint16) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        if HARDWARE_F16:
            ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
            halves = builder.load(builder.bitcast(ptr, _i16s(width).as_pointer()), align=2)
            return builder.fpext(builder.bitcast(halves, ir.VectorType(ir.HalfType(), width)), _f32s(width))
        return _f16_bits_to_f32(builder, _load_i16(context, builder, sig, args, width), width)

    return _producer_sig(FloatVecType(width), arr, i, lanes), codegen


@intrinsic(prefer_literal=True)
def vload_bf16(typingctx, arr, i, lanes=None):
    """Decode bf16 ``arr[i:i+lanes]`` (1-D int16 bit view) to a float32 vector (exact: a shift)."""
    width = _lanes(lanes)
    if not (width and _is_array_of(arr, types.int16) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        h = _load_i16(context, builder, sig, args, width)
        return builder.bitcast(builder.shl(h, _splat(16, width)), _f32s(width))

    return _producer_sig(FloatVecType(width), arr, i, lanes), codegen


@intrinsic(prefer_literal=True)
def vbroadcast(typingctx, arr, i, lanes=None):
    """A vector with every lane equal to ``arr[i]`` (1-D float32 array)."""
    width = _lanes(lanes)
    if not (width and _is_array_of(arr, types.float32) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        scalar = builder.load(ptr, align=4)
        one = builder.insert_element(ir.Constant(_f32s(width), ir.Undefined), scalar, ir.Constant(_I32, 0))
        return builder.shuffle_vector(one, ir.Constant(_f32s(width), ir.Undefined), _splat(0, width))

    return _producer_sig(FloatVecType(width), arr, i, lanes), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """Store vector ``v`` to ``arr[i:i+len(v)]`` (1-D float32 array)."""
    if not (_is_array_of(arr, types.float32) and isinstance(i, types.Integer) and _vectors(v)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], builder.bitcast(ptr, args[2].type.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(arr, i, v), codegen


def _store_i16(context, builder, sig, args, halves):
    """Store the ``<n x i16>`` value `halves` to ``arr[i:i+n]`` (a 16-bit array)."""
    ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
    builder.store(halves, builder.bitcast(ptr, halves.type.as_pointer()), align=2)
    return context.get_dummy_value()


@intrinsic
def vstore_f16(typingctx, arr, i, v):
    """Round vector ``v`` to fp16 (nearest even) and store the bits to ``arr[i:i+len(v)]`` (uint16).

    Hardware conversion only (F16C's ``vcvtps2ph``): without it LLVM emits a libcall Numba
    cannot link, so the intrinsic refuses to type (a compile error, not a crash) unless
    ``HARDWARE_F16``; kernels use it behind ``@overload``s that check.
    """
    if not (HARDWARE_F16 and _is_array_of(arr, types.uint16) and isinstance(i, types.Integer)
            and _vectors(v)):
        return None
    width = v.width

    def codegen(context, builder, sig, args):
        halves = builder.fptrunc(args[2], ir.VectorType(ir.HalfType(), width))
        return _store_i16(context, builder, sig, args, builder.bitcast(halves, _i16s(width)))

    return types.void(arr, i, v), codegen


@intrinsic
def vstore_bf16(typingctx, arr, i, v):
    """Round ``v`` to bf16 (nearest even, NaN kept quiet), store the bits to ``arr[i:i+len(v)]``
    (int16, or uint16: a view taken in a kernel's inner loop costs more than the store)."""
    if not ((_is_array_of(arr, types.int16) or _is_array_of(arr, types.uint16))
            and isinstance(i, types.Integer) and _vectors(v)):
        return None
    width = v.width

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(args[2], _i32s(width))
        high = builder.lshr(bits, _splat(16, width))
        odd = builder.and_(high, _splat(1, width))
        rounded = builder.lshr(builder.add(bits, builder.add(odd, _splat(0x7FFF, width))), _splat(16, width))
        quiet = builder.or_(high, _splat(0x40, width))
        is_nan = builder.icmp_unsigned(">", builder.and_(bits, _splat(0x7FFFFFFF, width)),
                                       _splat(0x7F800000, width))
        halves = builder.trunc(builder.select(is_nan, quiet, rounded), _i16s(width))
        return _store_i16(context, builder, sig, args, halves)

    return types.void(arr, i, v), codegen


#: Rows and columns of a ``transpose_block``.
BLOCK = 16


def _block_swaps(builder, rows):
    """``rows`` (BLOCK vectors of BLOCK lanes) transposed with shuffles: stage ``b`` (8, 4, 2, 1)
    swaps the off-diagonal ``b x b`` blocks of every ``2b x 2b`` block, in pairs of rows."""
    b = BLOCK // 2
    while b:
        lanes = range(BLOCK)  # a shuffle's lane x: lane x of its first operand, BLOCK + x of its second
        low = ir.Constant(_i32s(BLOCK), [x if x & b == 0 else BLOCK + x - b for x in lanes])
        high = ir.Constant(_i32s(BLOCK), [x + b if x & b == 0 else BLOCK + x for x in lanes])
        for i in range(BLOCK):
            if i & b == 0:
                rows[i], rows[i + b] = (builder.shuffle_vector(rows[i], rows[i + b], low),
                                        builder.shuffle_vector(rows[i], rows[i + b], high))
        b //= 2
    return rows


@intrinsic
def transpose_block(typingctx, src, s, s_stride, dst, d, d_stride):
    """``dst[d + c*d_stride + r] = src_row(r)[c]`` for a BLOCK x BLOCK block: row ``r`` of the
    source is the BLOCK elements of ``dst``'s width (16 or 32 bits) starting at ``src[s +
    r*s_stride]`` (so a 16-bit `src` gives pairs of its values for a 32-bit `dst`); strides in
    elements of each array, either sign. A cache-friendly transpose for packing a transposed
    operand: BLOCK loads and BLOCK stores of a vector, and shuffles, for BLOCK**2 elements."""
    arrays = (src, dst)
    if not (all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays)
            and all(isinstance(x, types.Integer) for x in (s, s_stride, d, d_stride))
            and dst.dtype.bitwidth in (16, 32) and src.dtype.bitwidth in (16, dst.dtype.bitwidth)):
        return None
    lanes = ir.VectorType(ir.IntType(dst.dtype.bitwidth), BLOCK)
    align = src.dtype.bitwidth // 8

    def codegen(context, builder, sig, args):
        def pointer(k, index, stride, r):  # &array[index + r*stride] as a <BLOCK x iN>*
            at = builder.add(context.cast(builder, index, sig.args[k + 1], types.intp),
                             builder.mul(context.cast(builder, stride, sig.args[k + 2], types.intp),
                                         ir.Constant(ir.IntType(64), r)))
            ptr = _element_ptr(context, builder, sig.args[k], args[k], types.intp, at)
            return builder.bitcast(ptr, lanes.as_pointer())

        rows = [builder.load(pointer(0, args[1], args[2], r), align=align) for r in range(BLOCK)]
        for c, column in enumerate(_block_swaps(builder, rows)):
            builder.store(column, pointer(3, args[4], args[5], c), align=align)
        return context.get_dummy_value()

    return types.void(src, s, s_stride, dst, d, d_stride), codegen


@intrinsic(prefer_literal=True)
def vload_pairs(typingctx, src, i0, i1, lanes=None):
    """``src[i0:i0+lanes]`` and ``src[i1:i1+lanes]`` (16-bit values) interleaved, as the bf16 pairs
    ``vdot_bf16`` reads: lane ``c`` holds ``src[i0 + c]`` in its low half, ``src[i1 + c]`` in its
    high half. Two rows of bf16 turned into a row of a pair-packed panel; `src` is a 1-D int16 array.
    """
    width = _lanes(lanes)
    if not (width and _is_array_of(src, types.int16) and all(isinstance(x, types.Integer) for x in (i0, i1))):
        return None

    def codegen(context, builder, sig, args):
        rows = []
        for k in (1, 2):
            ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[k], args[k])
            rows.append(builder.load(builder.bitcast(ptr, _i16s(width).as_pointer()), align=2))
        zipped = builder.shuffle_vector(rows[0], rows[1], ir.Constant(
            _i32s(2 * width), [c // 2 + (c % 2) * width for c in range(2 * width)]))
        return builder.bitcast(zipped, _f32s(width))

    return _producer_sig(FloatVecType(width), src, i0, i1, lanes), codegen


@intrinsic
def vmark_bf16_subnormals(typingctx, marks, pairs):
    """`marks` with the bits of every 16-bit lane of `pairs` that holds a bf16 subnormal (zero
    exponent, nonzero fraction) set: start from ``vzero()``, fold in each vector of pairs
    copied, and ``vany_bits`` says whether one was met. (Cheaper than a separate pass: the
    values are in registers already.)"""
    if not _vectors(marks, pairs):
        return None

    def codegen(context, builder, sig, args):
        lanes = 2 * sig.args[0].width
        i16 = _i16s(lanes)
        bits = builder.bitcast(args[1], i16)
        # |v| - 1, unsigned, is below 0x7F exactly for subnormals (zero wraps around to 0xFFFF)
        splat = [ir.Constant(i16, [value] * lanes) for value in (0x7FFF, 1, 0x7F)]
        key = builder.sub(builder.and_(bits, splat[0]), splat[1])
        tiny = builder.icmp_unsigned("<", key, splat[2])
        marked = builder.or_(builder.bitcast(args[0], i16), builder.sext(tiny, i16))
        return builder.bitcast(marked, _f32s(sig.args[0].width))

    return marks(marks, pairs), codegen


@intrinsic
def vany_bits(typingctx, v):
    """Whether any bit of `v` is set."""
    if not _vectors(v):
        return None

    def codegen(context, builder, sig, args):
        width = sig.args[0].width
        nonzero = builder.icmp_unsigned("!=", builder.bitcast(args[0], _i32s(width)), _splat(0, width))
        return builder.icmp_unsigned("!=", builder.bitcast(nonzero, ir.IntType(width)), ir.IntType(width)(0))

    return types.boolean(v), codegen


def _prefetch(write: int, doc: str):
    """An intrinsic ``(arr, i)`` asking the CPU to bring the cache line of ``arr[i]`` (1-D,
    contiguous) into L1: ``llvm.prefetch``, a hint only, no effect on any value."""
    @intrinsic
    def prefetch(typingctx, arr, i):
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(i, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            ptr = _element_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
            i8p = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            write_flag, keep_in_all_levels, data_cache = (ir.Constant(_I32, v) for v in (write, 3, 1))
            builder.call(fn, [builder.bitcast(ptr, i8p), write_flag, keep_in_all_levels, data_cache])
            return context.get_dummy_value()

        return types.void(arr, i), codegen

    prefetch.__doc__ = doc
    return prefetch


prefetch_write = _prefetch(1, "Bring the cache line of ``arr[i]`` close, to be written (x86 ``prefetchw``).")
prefetch_read = _prefetch(0, "Bring the cache line of ``arr[i]`` close, to be read (x86 ``prefetcht0``; "
                             "a line other cores read too stays shared).")


def _vector_intrinsic(builder, name, args):
    ty = args[0].type
    fnty = ir.FunctionType(ty, [ty] * len(args))
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{ty.count}f32")
    return builder.call(fn, args)


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c``, fused where the target has FMA (``llvm.fmuladd``)."""
    if not _vectors(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        return _vector_intrinsic(builder, "fmuladd", args)

    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """Lane-wise ``a + b``."""
    if not _vectors(a, b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vdiv(typingctx, a, b):
    """Lane-wise ``a / b``, correctly rounded."""
    if not _vectors(a, b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vmax(typingctx, a, b):
    """Lane-wise maximum; a NaN in either operand gives NaN (``llvm.maximum``)."""
    if not _vectors(a, b):
        return None

    def codegen(context, builder, sig, args):
        return _vector_intrinsic(builder, "maximum", args)

    return a(a, b), codegen


class _BFloat(ir.Type):
    """LLVM's ``bfloat`` (llvmlite's IR builder has no such type), for ``vdot_bf16``'s declaration."""

    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash(_BFloat)


@intrinsic
def vdot_bf16(typingctx, acc, a, b):
    """``acc + a[2i] * b[2i] + a[2i+1] * b[2i+1]`` in lane ``i``, where `a` and `b` hold bf16 pairs.

    Each float32 lane of `a` and `b` carries the bits of two bf16 values, the even one in its
    low half (as they lie in memory). AVX512-BF16's ``vdpbf16ps``, 16 lanes a register: twice
    the multiply-adds of ``vfma`` per instruction. It treats bf16 subnormal inputs as zero and
    flushes subnormal results to zero, unlike ``vfma``. Types only where ``DOT_BF16``.
    """
    width = _vectors(acc, a, b)
    if not (DOT_BF16 and width and width % 16 == 0):
        return None

    def codegen(context, builder, sig, args):
        f32x16, pairs = _f32s(16), ir.VectorType(_BFloat(), 32)
        fnty = ir.FunctionType(f32x16, [f32x16, pairs, pairs])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx512bf16.dpbf16ps.512")
        undef = ir.Constant(_f32s(width), ir.Undefined)
        parts = []
        for lo in range(0, width, 16):
            lanes = ir.Constant(_i32s(16), list(range(lo, lo + 16)))
            acc_, a_, b_ = (builder.shuffle_vector(v, undef, lanes) for v in args)
            parts.append(builder.call(fn, [acc_, builder.bitcast(a_, pairs), builder.bitcast(b_, pairs)]))
        while len(parts) > 1:  # concatenate halves, pairwise
            n = parts[0].type.count
            parts = [builder.shuffle_vector(x, y, ir.Constant(_i32s(2 * n), list(range(2 * n))))
                     for x, y in zip(parts[0::2], parts[1::2])]
        return parts[0]

    return acc(acc, a, b), codegen
