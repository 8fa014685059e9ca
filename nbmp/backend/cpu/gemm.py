"""General matrix multiply, ``act(a @ b + bias)``, for float32, fp16 and bf16 inputs.

The structure is BLIS's (Van Zee & van de Geijn, 2015), written in Numba:

1. **Micro-kernel.** ``_kernel`` multiplies an ``MR x kc`` sliver of ``a`` by a
   ``kc x NR`` micro-panel of ``b``, keeping the ``MR x NR`` result in
   registers: one ``NR``-lane vector per row (``simd.FloatVecType(NR)``), which
   LLVM holds in ``NR / WIDTH`` registers (24 of AVX-512's 32, 12 of AVX2's 16).
   Per step of k it loads a row of ``b``, broadcasts ``MR`` values of ``a`` and
   issues ``MR * NR / WIDTH`` register FMAs.
2. **Packing.** Operands, with any strides, are copied into contiguous float32
   buffers in the exact order the micro-kernel reads them, decoding halves on
   the way (vectorised where a row is contiguous); edges are padded with zeros.
   For each block of ``KC`` kernel steps of k, a thread packs the micro-panels of
   ``b`` it will use (``KC x NR`` each), then, ``MC`` rows at a time, the
   slivers of ``a`` (a block that stays in L2), and runs the micro-kernel over
   every sliver x micro-panel pair.
3. **Epilogue.** On the last ``KC`` block each tile gets the bias and the
   activation in float32 and is rounded once to the output dtype.

**bf16 pairs.** Where the CPU has AVX512-BF16 (``simd.DOT_BF16``), a bf16 x bf16
product runs on ``vdpbf16ps`` instead (``_kernel_pairs``), twice the multiply-adds
per instruction: the packers then copy the bf16 bits as they are, two steps of k
to a 32-bit slot (``_pack_a_pairs``, ``_pack_b_pairs``), and a step of the
kernel consumes a pair. That instruction treats subnormal inputs as zero, so the
pair packers check every value they copy: a product whose operands hold a bf16
subnormal (rare) stops and starts again on the float32 path, which keeps them
exact. (A separate scan of both operands first cost 7% at 512 x 512.) Products or
sums below float32's smallest normal (about 1e-38) flush to zero on this path.

**AMX tiles.** Where the CPU has Intel AMX and Linux grants it (``amx.available()``), a
bf16 x bf16 product runs on ``_thread_tiles`` instead (and ``vdpbf16ps`` is not used: on
the Sapphire Rapids measured it ran at half the float32 path's speed). Its kernel,
``_kernel_tiles``, computes a 32 x 64 block as 2 x 2 tiles of 16 x 16 at a time
(``tdpbf16ps``: a 16 x 16 x 32 product per instruction), reading A as rows of bf16 pairs
(``_pack_rows_pairs``) and B in the pair layout with k padded to whole tiles. AMX computes so
fast that memory decides: a kernel call keeps its sums in tiles through all of K (up to
TILE_KC of it; deeper K in blocks, the float32 partial sums in a scratch buffer in L2), and a
thread passes one band of A at a time over a chunk of panels of B small enough to stay in L2;
an item that packs its own panels of B packs them in blocks shallow enough to stay in L1.
Convolutions use the same code with the rows of their implicit im2col matrix packed straight
from the image (``_pack_im2col_pairs``, ``conv_tiles``), unless their groups have a multiple
of 32 channels: ``conv`` then reads the tiles of pixels from the image in place. Subnormals
are handled as for pairs.

``conv.py`` runs the same micro-kernel and epilogue on pixels of an image.

Threads (``threads.parallel`` runs the shares): each thread computes a slab of
whole output tiles (rows, or columns when that balances better), packing the
slivers of ``a`` it needs. Row slabs all read the whole of ``b``, so all threads
first pack it together, each its share of micro-panels; a column slab (and a
small product, run in the calling thread alone) packs just its own columns of
``b``, one KC block at a time, which also keeps them in cache. On AMX, slabs are cut
into items that the threads take as they go, their own slab's first, then what is left of
the others' (``_thread_tiles``), and ``b`` is packed a slab at a time by whichever thread
gets there first. ``PackedB`` keeps a packed ``b`` (a weight matrix) for reuse across calls.

Halves reach the kernels as 16-bit integer views: fp16 as ``uint16``, bf16 as
``int16`` (as in ``cast``), so Numba's type dispatch tells them apart.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from nbmp import dtypes
from nbmp.backend.cpu import amx, spin, threads, versions, vmath
from nbmp.backend.cpu.halfbits import HARDWARE_F16, bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16
from nbmp.backend.cpu.simd import (
    BLOCK,
    DOT_BF16,
    REGISTERS,
    WIDTH,
    prefetch_read,
    prefetch_write,
    transpose_block,
    vadd,
    vany_bits,
    vbroadcast,
    vdot_bf16,
    vfma,
    vload,
    vload_bf16,
    vload_f16,
    vload_pairs,
    vmark_bf16_subnormals,
    vmax,
    vstore,
    vstore_bf16,
    vstore_f16,
    vzero,
)
from nbmp.backend.cpu.spin import claim, publish, start_workers, wait_for
from nbmp.backend.cpu.views import EMPTY, read_only
from nbmp.backend.cpu.vmath import activate_span

__all__ = ["ACTIVATIONS", "KERNEL_VERSION", "KC", "MC", "MR", "NR", "PackedB", "bias_vector", "gemm",
           "output_views", "pack_b", "strided"]

#: Numba's cache hashes this file only: this string names the versions of the
#: modules whose intrinsics the cached kernels inline, checked at import, so
#: bumping one of them forces an edit here, which invalidates the cache.
KERNEL_VERSION = "gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
# (vmath's version names simd's and halfbits', whose intrinsics both inline)
versions.require(__name__, KERNEL_VERSION, vmath.KERNEL_VERSION, spin.KERNEL_VERSION, amx.KERNEL_VERSION)

#: Register tile: MR rows x NR columns of float32 accumulators, NR / WIDTH registers a row:
#: 6 x 4 with 32 vector registers (AVX-512), 6 x 2 with 16, leaving some for ``b`` and ``a``.
MR = 6
NR = WIDTH * (4 if REGISTERS >= 32 else 2)
#: Cache blocking: KC kernel steps per packed block (KC of k, or 2 * KC for bf16 pairs, a
#: step of which consumes two), MC rows of ``a`` per L2 block. Every block of k is a pass
#: over the float32 result (read, add, write back), whose cache misses cost more than
#: streaming a deeper micro-panel of ``b`` from L2 (128 KiB at 512 x 64 floats): 512 steps
#: measured 5-20% faster than 256 on one thread, and for bf16 pairs 1024 of k 5-15% faster
#: than 512 on two threads.
KC = 512
MC = 96
#: AMX (``amx``): ``pairs == TILES`` asks for its layout, pairs of k in tiles of TILE_PAIRS
#: rows (32 of k); its kernel computes BAND x NR of the result, in four 16 x 16 tiles at a time.
TILES = 2
TILE_PAIRS = 16
BAND = 32
#: Depth of its blocks of k: all of K up to TILE_KC, so that a kernel call keeps its 32 x 32
#: sums in tiles through all of K and the output is written once, with no float32 partial
#: sums to store and load again between blocks (deeper K: blocks of equal depth, partial
#: sums in a scratch buffer). Against the blocks of 256 before (and ``_tile_blocking``'s
#: chunks then), in one process, 5 rounds alternated, one / two threads: 2048 square 1.17-1.19x
#: / 1.17-1.31x, 1024 square 1.00-1.02x / 1.03-1.08x, 512 square, 256 x 1024 x 1024, 64 x 784 x
#: 512 and 1024 x 4096 x 1024 0.94-1.08x (the noise); bf16 convolutions on the implicit im2col
#: 1.09x (48 channels) and 1.33x (200). At K = 4096 and 8192, blocks of 1024 ran at 0.95-0.99x
#: of 2048's speed, of 4096 at 0.82-0.93x.
TILE_KC = 2048
#: ``_tile_blocking``'s budget: bytes of packed B (all of K) a chunk keeps in L2 while the
#: bands pass over it; the fewest panels a chunk takes; how many bands share each pass over a
#: chunk that is over the budget all the same.
_B_BYTES = 1 << 20
_MIN_PANELS = 4
_STREAMED_BANDS = 4
#: Depth of the blocks of an item that packs its own panels of B (``_thread_tiles``): blocks
#: this small keep them in L1 between packing and the products, which is worth the partial
#: sums: 64 x 784 x 512 with all of K a block ran at 0.82-0.90x; blocks of 128 at 0.91-1.02x,
#: of 512 at 0.88-0.96x of 256's speed (b not packed, one and two threads).
FUSED_TILE_KC = 256
#: How many work items ``_thread_tiles`` cuts a thread's slab of the output into, at least.
ITEMS_PER_SLAB = 2
#: Slabs of up to this many bands pack B as they go (``_tile_items``). With blocks of 256 of k
#: for all items, 3-4 bands (96-128 rows) ran at 0.75x (96x2048x2048 and 128x512x4096, one
#: thread: the chunks of panels that kept the same partial sums got too small); with the items
#: that read a packed B in blocks of all of K, 4 bands were 0.92-1.12x of 2 (faster at
#: 96x2048x2048 and 128x1024x1024, slower at 128x512x4096), within the noise of each other.
FUSED_BANDS = 2
#: Up to this many multiply-adds a product runs in the calling thread alone (``thread_count``);
#: ``SERIAL_MAX_TILES`` on AMX, ``PACK_SERIAL_MAX`` float32 slots for ``PackedB``. Handing work to
#: the pool and back costs tens of microseconds: 20 for an empty call on the 2-core virtual
#: machine measured, up to 50 for a short one (a thread that needs the GIL back sleeps until the
#: other lets go of it). Measured there, one thread against two in one process, two threads
#: broke even at about 64x256x256 for fp16 (4M multiply-adds; 16x256x256: 0.71-0.85x), at
#: 64x784x512 for bf16 on AMX (25M; 64x256x256 ran twice as fast alone), for ``PackedB`` at
#: about 200K slots (784x512 bf16; 288x32 packed 4x faster alone); convolutions (``conv``
#: takes the same limits) at 5-10M for fp16, 20-35M for bf16. Machines that hand work over
#: faster would break even sooner: the AMX and packing limits are set below the break-even.
SERIAL_MAX = 1 << 22
SERIAL_MAX_TILES = 1 << 24
PACK_SERIAL_MAX = 1 << 17
#: Up to this many rows of ``a``, a product with a ``b`` not packed beforehand reads ``b`` in
#: place (``_few_rows_thread``) instead of packing it (see there for the measurements).
SKINNY_M = 4

#: Activation names the epilogue fuses, and their numbers in the kernels.
ACTIVATIONS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "gelu": 4}
#: Output kinds: float32 results live in the accumulator itself; halves are
#: written as bits to a 16-bit view. One compiled compute kernel serves all.
_F32, _F16, _BF16 = 0, 1, 2

_OPTS = dict(cache=True, error_model="numpy", fastmath={"reassoc", "contract"}, nogil=True)

#: Bytes the packed operands and scratch buffers are aligned to: a cache line, so that no
#: AVX-512 vector or AMX tile row read from them straddles two (NumPy aligns to 16, Numba to
#: 32). Packed weights aligned vs 16 bytes off, in one process: bf16 products on AMX 11-21%
#: faster, conv2d 10-16%, fp16 products 2-8%.
LINE = 64


@njit(inline="always", **_OPTS)
def _line_aligned(size):
    """An uninitialised float32 array of `size` whose data starts on a cache line.

    >>> int(_line_aligned(100).ctypes.data % LINE)
    0
    """
    buf = np.empty(size + LINE // 4, np.float32)
    at = (-buf.ctypes.data % LINE) // 4
    return buf[at:at + size]


# --- element conversions (jit only) ----------------------------------------

def _to_f32(v):
    """Element ``v`` of a float32, fp16 (uint16) or bf16 (int16) array as float32."""
    raise NotImplementedError


@overload(_to_f32, inline="always")
def _ov_to_f32(v):
    if v == types.float32:
        return lambda v: v
    if v == types.uint16:
        return lambda v: f16_to_f32(v)
    if v == types.int16:
        return lambda v: bf16_to_f32(np.uint16(v))
    return None


def _vload_f32(x, i):
    """``x[i:i+WIDTH]`` of a float32, fp16 (uint16) or bf16 (int16) array as a float32 vector."""
    raise NotImplementedError


@overload(_vload_f32, inline="always")
def _ov_vload_f32(x, i):
    return {types.float32: lambda x, i: vload(x, i),
            types.uint16: lambda x, i: vload_f16(x, i),
            types.int16: lambda x, i: vload_bf16(x, i)}.get(x.dtype)


def _halves(x):
    """The bf16 (int16) bits of `x` for the pair packers; other storage types never take that path."""
    raise NotImplementedError


@overload(_halves)  # not inline="always": Numba 0.68 then dropped a slice assignment to
def _ov_halves(x):  # another array later in the caller (its dead-code pass lost the aliasing)
    if x.dtype == types.int16:
        return lambda x: x
    return lambda x: np.empty(0, np.int16)


# --- packing ---------------------------------------------------------------

@njit(inline="always", **_OPTS)
def _round_up(x, multiple):
    return (x + multiple - 1) // multiple * multiple


@njit(inline="always", **_OPTS)
def _block_depth(k, pairs):
    """Depth (of k) of the blocks K is cut into: at most KC steps, all equal but the last (1100
    -> 3 x 367, not 2 x 512 + 76, whose thin last block would cost a pass over C for little
    work). A step of bf16 pairs takes two of k; AMX blocks (TILES) are ``_tile_depth``'s."""
    if pairs == TILES:
        return _tile_depth(k, TILE_KC)
    return _equal_blocks(k, 2 * KC if pairs else KC)


@njit(inline="always", **_OPTS)
def _equal_blocks(k, most):
    """Depth of the fewest blocks of at most `most` that K is cut into, all equal but the last."""
    return max(-(-k // max(-(-k // most), 1)), 1)


@njit(inline="always", **_OPTS)
def _tile_depth(k, most):
    """``_equal_blocks`` for AMX: whole tiles (32 of k)."""
    return _round_up(_equal_blocks(k, most), 2 * TILE_PAIRS)


@njit(inline="always", **_OPTS)
def _steps(kc, pairs):
    """Kernel steps (rows of a packed micro-panel) for depth ``kc``: one per k, or per pair of k;
    for AMX (``pairs == TILES``) whole tiles of ``TILE_PAIRS`` pairs, the last zero-padded."""
    if pairs == TILES:
        return _round_up((kc + 1) // 2, TILE_PAIRS)
    return (kc + 1) // 2 if pairs else kc


@njit(inline="always", **_OPTS)
def _block_offset(p0, depth, pairs, npad):
    """Where block ``p0`` (a multiple of ``depth``) starts in a ``PackedB`` of ``npad`` columns."""
    return p0 // depth * _steps(depth, pairs) * npad


@njit(inline="always", **_OPTS)
def _share(t, nthreads, count):
    """Thread ``t``'s contiguous share ``lo:hi`` of ``count`` items."""
    return t * count // nthreads, (t + 1) * count // nthreads


#: Packing a transposed operand (``_copy_block``, ``_pack_b_pairs``) is a transpose: its bulk
#: goes in ``simd.transpose_block``'s 16 x 16 blocks (vector loads, shuffles and stores), the
#: tails one element at a time in blocks of _GROUP columns x _RUN rows, each column's run read
#: in memory order. Element by element, a column at a time wrote a line of a packed panel
#: bigger than L1 for every element, and a row at a time read one for every element, lines a
#: power-of-two stride apart (K = 1024: all in two of L1's sets): 2-3 ns an element, packing
#: a transposed 1024 x 1024 b 14-20x slower than a C-ordered one.
_GROUP = 8
_RUN = 32


@njit(inline="always", **_OPTS)
def _copy_run(x, src, n, dst, d):
    """``dst[d:d+n] = x[src:src+n]`` as float32 (vectorised decode)."""
    c = 0
    while c + WIDTH <= n:
        vstore(dst, d + c, _vload_f32(x, src + c))
        c += WIDTH
    for t in range(c, n):
        dst[d + t] = _to_f32(x[src + t])


@njit(inline="always", **_OPTS)
def _copy_block(x, src, rs, cs, rows, cols, dst, d, ld):
    """``dst[d + r*ld + c] = x[src + r*rs + c*cs]`` for a ``rows x cols`` block, as float32.

    The loops follow ``x``'s memory order (rows of a row-major ``x`` in
    vectors, columns of a column-major one) so reads stay sequential.
    """
    if cs == 1:
        for r in range(rows):
            _copy_run(x, src + r * rs, cols, dst, d + r * ld)
    elif abs(cs) <= abs(rs):
        for r in range(rows):
            for c in range(cols):
                dst[d + r * ld + c] = _to_f32(x[src + r * rs + c * cs])
    else:
        _copy_columns(x, src, rs, cs, rows, cols, dst, d, ld)


@njit(**_OPTS)  # not inlined: compiled once per dtype, not into every packer (CI compiled 1.8x longer)
def _copy_columns(x, src, rs, cs, rows, cols, dst, d, ld):
    """``_copy_block`` of columns in memory order (a transposed b): BLOCK x BLOCK blocks through
    a scratch block in L1, the rest one element at a time, in blocks too (see _GROUP)."""
    rows_v, cols_v = (rows - rows % BLOCK, cols - cols % BLOCK) if rs == 1 else (0, 0)
    if rows_v and cols_v:
        block = np.empty(BLOCK * BLOCK, x.dtype)
        for c0 in range(0, cols_v, BLOCK):
            for r0 in range(0, rows_v, BLOCK):
                transpose_block(x, src + r0 + c0 * cs, cs, block, 0, BLOCK)
                for r in range(BLOCK):
                    _copy_run(block, r * BLOCK, BLOCK, dst, d + (r0 + r) * ld + c0)
    for c0 in range(0, cols, _GROUP):
        for r0 in range(0, rows, _RUN):
            for c in range(c0, min(c0 + _GROUP, cols)):
                for r in range(max(r0, rows_v) if c < cols_v else r0, min(r0 + _RUN, rows)):
                    dst[d + r * ld + c] = _to_f32(x[src + r * rs + c * cs])


@njit(inline="always", **_OPTS)
def _pack_a(a, off, rs, cs, m, s_lo, s_hi, p0, kc, ap):
    """Pack slivers ``s_lo:s_hi`` (MR rows each), depth ``p0:p0+kc``, of ``a`` into ``ap``.

    ``a[i, p]`` is ``a[off + i*rs + p*cs]``. Sliver ``s`` starts at
    ``(s - s_lo) * MR * kc`` and holds its rows one after the other
    (``r * kc + p``); rows past ``m`` are zero.
    """
    rows = max(min(s_hi * MR, m) - s_lo * MR, 0)  # the slivers' rows follow each other: one block
    _copy_block(a, off + s_lo * MR * rs + p0 * cs, rs, cs, rows, kc, ap, 0, kc)
    ap[rows * kc:(s_hi - s_lo) * MR * kc] = 0


@njit(inline="always", **_OPTS)
def _pack_b(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d):
    """Pack micro-panels ``t_lo:t_hi`` (NR columns each), depth ``p0:p0+kc``, of ``b`` into ``bp[d:]``.

    ``b[p, j]`` is ``b[off + p*rs + j*cs]``. Panel ``t`` starts at
    ``d + (t - t_lo) * kc * NR`` and is row-major (``p * NR + c``); columns past
    ``n`` are zero.
    """
    for t in range(t_lo, t_hi):
        j = t * NR
        nr = min(NR, n - j)
        base = d + (t - t_lo) * kc * NR
        _copy_block(b, off + p0 * rs + j * cs, rs, cs, kc, nr, bp, base, NR)
        if nr < NR:
            for p in range(kc):
                bp[base + p * NR + nr:base + (p + 1) * NR] = 0


@njit(inline="always", **_OPTS)
def _pack_rows_pairs(a, off, rs, cs, m, i_lo, i_hi, p0, kc, steps, ap):
    """Rows ``i_lo:i_hi``, depth ``p0:p0+kc``, of bf16 ``a`` into ``ap`` as bits, two of k per slot.

    ``a[i, p]`` is ``a[off + i*rs + p*cs]``. Row ``i`` fills the ``steps`` float32 slots from
    ``(i - i_lo) * steps`` on, zero past ``kc``; rows past ``m`` are zero. Returns whether a
    value packed is a bf16 subnormal (which ``vdpbf16ps`` and AMX would take for zero).
    """
    h = _halves(a)
    ap16 = ap.view(np.int16)
    least = np.uint16(0xFFFF)
    rows = max(min(i_hi, m) - i_lo, 0)
    src = off + i_lo * rs + p0 * cs
    if cs == 1:
        for r in range(rows):
            # one loop, unsigned indices (no wrap-around test): LLVM vectorises it, 5x faster
            # than a slice copy and a check loop over the slice
            at, to = np.uint64(src + r * rs), np.uint64(2 * r * steps)
            for p in range(np.uint64(kc)):
                v = h[at + p]
                least = min(least, _bf16_key(v))
                ap16[to + p] = v
    else:
        least = _pack_columns_pairs(h, src, rs, cs, rows, kc, steps, ap16)
    if kc < 2 * steps:
        for r in range(rows):
            ap16[2 * r * steps + kc:2 * (r + 1) * steps] = 0
    ap16[2 * rows * steps:2 * (i_hi - i_lo) * steps] = 0
    return least < SUBNORMAL_KEYS


@njit(**_OPTS)  # not inlined (see _copy_columns)
def _pack_columns_pairs(h, src, rs, cs, rows, kc, steps, ap16):
    """``_pack_rows_pairs`` of an ``a`` whose columns are not contiguous (a transposed a, rows
    adjacent: BLOCK x BLOCK transposes, then the tails by element); the least ``_bf16_key``."""
    least = np.uint16(0xFFFF)
    rows_v, kc_v = (rows - rows % BLOCK, kc - kc % BLOCK) if rs == 1 else (0, 0)
    if rows_v and kc_v:
        for p in range(kc_v):  # subnormals looked for along the columns, in memory order
            at = np.uint64(src + p * cs)
            for r in range(np.uint64(rows_v)):
                least = min(least, _bf16_key(h[at + r]))
        for r0 in range(0, rows_v, BLOCK):
            for q0 in range(0, kc_v, BLOCK):
                transpose_block(h, src + r0 + q0 * cs, cs, ap16, 2 * r0 * steps + q0, 2 * steps)
    for p in range(kc):
        for r in range(rows_v if p < kc_v else 0, rows):
            v = h[src + r * rs + p * cs]
            least = min(least, _bf16_key(v))
            ap16[2 * r * steps + p] = v
    return least


@njit(inline="always", **_OPTS)
def _pack_im2col_pairs(x, geo, m, i_lo, i_hi, p0, kc, steps, ap):
    """``_pack_rows_pairs`` of the implicit im2col matrix of a convolution (never built).

    ``x`` holds an NHWC bf16 image batch, flat, and ``geo`` its geometry (``conv.geometry``).
    Row ``i`` of the matrix is output pixel ``i`` (image, row, column, in that order), column
    ``p`` is channel ``p % Cg`` of the group at tap ``p // Cg`` (kernel row-major): the
    input value the tap meets, zero in the padding. A run of channels in a tap is contiguous
    in ``x``, and copied as such.
    """
    h, w, ch, cg, coff, kw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[6]
    sh, sw, dh, dw, pt, pl, oh, ow = geo[7], geo[8], geo[9], geo[10], geo[11], geo[12], geo[13], geo[14]
    hx = _halves(x)
    ap16 = ap.view(np.int16)
    least = np.uint16(0xFFFF)
    rows = max(min(i_hi, m) - i_lo, 0)
    for r in range(rows):
        img, pixel = divmod(i_lo + r, oh * ow)
        y, x_ = divmod(pixel, ow)
        to = 2 * r * steps
        p = p0
        while p < p0 + kc:
            tap, c = divmod(p, cg)
            ky, kx = divmod(tap, kw)
            run = min(cg - c, p0 + kc - p)
            ih, iw = y * sh - pt + ky * dh, x_ * sw - pl + kx * dw
            d = to + p - p0
            if 0 <= ih < h and 0 <= iw < w:
                src = np.uint64(((img * h + ih) * w + iw) * ch + coff + c)
                for e in range(np.uint64(run)):  # unsigned indices: vectorised
                    v = hx[src + e]
                    least = min(least, _bf16_key(v))
                    ap16[np.uint64(d) + e] = v
            else:
                ap16[d:d + run] = 0
            p += run
        ap16[to + kc:to + 2 * steps] = 0
    ap16[2 * rows * steps:2 * (i_hi - i_lo) * steps] = 0
    return least < SUBNORMAL_KEYS


@njit(inline="always", **_OPTS)
def _pack_a_pairs(a, off, rs, cs, m, s_lo, s_hi, p0, kc, ap):
    """``_pack_a`` for ``_kernel_pairs`` (``_pack_rows_pairs`` of slivers ``s_lo:s_hi``): row ``r`` of
    sliver ``s`` fills the ``(kc + 1) // 2`` slots from ``((s - s_lo) * MR + r) * steps`` on."""
    return _pack_rows_pairs(a, off, rs, cs, m, s_lo * MR, s_hi * MR, p0, kc, _steps(kc, True), ap)


@njit(**_OPTS)  # not inlined (see _copy_columns)
def _pack_b_columns_pairs(h, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, bp16, d, steps):
    """``_pack_b_pairs`` of a ``b`` whose columns are not contiguous (a transposed b), as
    ``_copy_block`` does: BLOCK x BLOCK blocks of slots (pairs of adjacent values) where rows of
    b are adjacent, the rest by element; the least ``_bf16_key``."""
    least = np.uint16(0xFFFF)
    for t in range(t_lo, t_hi):
        j, base = t * NR, d + (t - t_lo) * steps * NR
        nr = min(NR, n - j)
        cols_v, pairs_v = (nr - nr % BLOCK, kc // 2 - kc // 2 % BLOCK) if rs == 1 else (0, 0)
        if pairs_v:
            for c0 in range(0, cols_v, BLOCK):
                for c in range(c0, c0 + BLOCK):  # subnormals looked for along each column
                    at = np.uint64(off + p0 + (j + c) * cs)  # unsigned: a loop LLVM vectorises
                    for p in range(np.uint64(2 * pairs_v)):
                        least = min(least, _bf16_key(h[at + p]))
                for q0 in range(0, pairs_v, BLOCK):
                    transpose_block(h, off + p0 + 2 * q0 + (j + c0) * cs, cs, bp, base + q0 * NR + c0, NR)
        src = off + p0 * rs + j * cs
        for c0 in range(0, nr, _GROUP):
            for p_lo in range(0, kc, _RUN):
                for c in range(c0, min(c0 + _GROUP, nr)):
                    for p in range(max(p_lo, 2 * pairs_v) if c < cols_v else p_lo, min(p_lo + _RUN, kc)):
                        v = h[src + p * rs + c * cs]  # slot (p // 2, c), its half p % 2
                        least = min(least, _bf16_key(v))
                        bp16[2 * base + p // 2 * 2 * NR + p % 2 + 2 * c] = v
    return least


@njit(inline="always", **_OPTS)
def _pack_b_pairs(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d, pairs):
    """``_pack_b`` for ``_kernel_pairs`` and the AMX kernel (`pairs` picks ``_steps``): slot
    ``(q, c)`` of a panel holds the bf16 bits of ``b[p0 + 2q, j + c]`` (low half) and
    ``b[p0 + 2q + 1, j + c]``, zero past ``kc`` or ``n``. Returns whether a value packed is a
    bf16 subnormal."""
    h = _halves(b)
    bp16 = bp.view(np.int16)
    steps = _steps(kc, pairs)
    least = np.uint16(0xFFFF)
    marks = vzero()
    for t in range(t_lo, t_hi):  # zeros where the copies below leave slots: past n, past kc
        base = 2 * (d + (t - t_lo) * steps * NR)
        if n - t * NR < NR:
            bp16[base:base + 2 * steps * NR] = 0
        elif 2 * steps != kc:
            bp16[base + 2 * (kc // 2) * NR:base + 2 * steps * NR] = 0
    if cs != 1:  # strided columns (a transposed b)
        least = _pack_b_columns_pairs(h, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, bp16, d, steps)
        return least < SUBNORMAL_KEYS
    full = min(max(n // NR, t_lo), t_hi)  # panels t_lo:full have NR columns of b
    for q in range((kc + 1) // 2):  # two rows of b at a time, across all panels: reads stay
        src = off + (p0 + 2 * q) * rs  # sequential (a panel at a time measured 1.1-1.8x slower)
        if cs == 1 and 2 * q + 1 < kc:  # the two rows interleaved, a vector at a time
            for t in range(t_lo, full):  # whole panels: a loop of constant length, unrolled
                j, row = t * NR, d + (t - t_lo) * steps * NR + q * NR
                for v in range(0, NR, WIDTH):
                    zipped = vload_pairs(h, src + j + v, src + rs + j + v)
                    vstore(bp, row + v, zipped)
                    marks = vmark_bf16_subnormals(marks, zipped)
            for t in range(full, t_hi):  # the last panel, short of columns
                j, row = t * NR, d + (t - t_lo) * steps * NR + q * NR
                v, nr = 0, n - j
                while v + WIDTH <= nr:
                    zipped = vload_pairs(h, src + j + v, src + rs + j + v)
                    vstore(bp, row + v, zipped)
                    marks = vmark_bf16_subnormals(marks, zipped)
                    v += WIDTH
                for c in range(v, nr):
                    e0, e1 = h[src + j + c], h[src + rs + j + c]
                    least = min(least, _bf16_key(e0), _bf16_key(e1))
                    bp16[2 * (row + c)] = e0
                    bp16[2 * (row + c) + 1] = e1
        else:
            for t in range(t_lo, t_hi):
                j = t * NR
                row = 2 * (d + (t - t_lo) * steps * NR + q * NR)
                for e in range(min(2, kc - 2 * q)):
                    for c in range(min(NR, n - j)):
                        v = h[src + e * rs + (j + c) * cs]
                        least = min(least, _bf16_key(v))
                        bp16[row + 2 * c + e] = v
    return least < SUBNORMAL_KEYS or vany_bits(marks)


@njit(inline="always", **_OPTS)
def _pack_b_block(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d, pairs):
    """``_pack_b_pairs`` or ``_pack_b``, as `pairs` says; whether a bf16 subnormal was met."""
    if pairs:
        return _pack_b_pairs(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d, pairs)
    _pack_b(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d)
    return False


@njit(**_OPTS)  # not inlined: ``_thread_tiles`` calls it in two places
def _pack_b_tiles(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d):
    """``_pack_b_pairs`` for the AMX kernel (``pairs=TILES``)."""
    return _pack_b_pairs(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d, TILES)


@njit(**_OPTS)
def _pack_b_share(th, nthreads, go, b, off, rs, cs, k, n, depth, pairs, bp, subnormal):
    """Thread ``th``'s share of packing all of ``b`` (K, N): its micro-panels, every block of depth.

    Block ``p0`` of panel ``t`` lands at ``_block_offset(p0, ..) + t * steps * NR`` (the
    ``PackedB`` layout); `pairs` picks the layout ``_kernel_pairs`` reads, and a bf16
    subnormal met on the way stops the share with ``subnormal[th] = 1``.
    """
    start_workers(go)
    npad = _round_up(n, NR)
    t_lo, t_hi = _share(th, nthreads, npad // NR)
    for p0 in range(0, k, depth):
        kc = min(depth, k - p0)
        d = _block_offset(p0, depth, pairs, npad) + t_lo * _steps(kc, pairs) * NR
        if _pack_b_block(b, off, rs, cs, n, t_lo, t_hi, p0, kc, bp, d, pairs):
            subnormal[th] = 1
            return


#: ``_bf16_key`` of a bf16 value that is no subnormal: at least this; of a subnormal, below.
SUBNORMAL_KEYS = 0x7F


@njit(inline="always", **_OPTS)
def _bf16_key(v):
    """The bf16 bits `v`'s magnitude minus one, as uint16 (zero wraps around to 0xFFFF):
    below ``SUBNORMAL_KEYS`` exactly for subnormals (zero exponent, nonzero fraction). A
    packer keeps the least key it copies, which LLVM turns into vector minima (``vpminuw``),
    32 values an instruction, where a flag or-ed per value measured 5x slower."""
    return np.uint16((np.uint16(v) & np.uint16(0x7FFF)) - np.uint16(1))


# --- micro-kernel ----------------------------------------------------------

@njit(inline="always", **_OPTS)
def _prefetch_tile(c, co, ldc):
    """Start fetching the MR rows of NR floats at ``c[co + r*ldc:]`` that a kernel will update:
    the kernel's stores (and loads, when it accumulates) then find them in cache instead of
    stalling on the float32 result, which a large product keeps in memory (5-15% measured)."""
    for r in range(MR):
        for q in range(0, NR, 16):  # a 64-byte line holds 16 floats
            prefetch_write(c, co + r * ldc + q)
        prefetch_write(c, co + r * ldc + NR - 1)  # the row may start mid-line


@njit(inline="always", **_OPTS)
def _store_row(c, off, x, accumulate):
    """``c[off:off+NR] (+)= x``."""
    if accumulate:
        x = vadd(x, vload(c, off, NR))
    vstore(c, off, x)


@njit(inline="always", **_OPTS)
def _store_tile(c, co, ldc, c0, c1, c2, c3, c4, c5, accumulate):
    """The MR rows of a kernel's tile to ``c[co + r*ldc:][:NR]`` (added to what is there if `accumulate`)."""
    _store_row(c, co, c0, accumulate)
    _store_row(c, co + ldc, c1, accumulate)
    _store_row(c, co + 2 * ldc, c2, accumulate)
    _store_row(c, co + 3 * ldc, c3, accumulate)
    _store_row(c, co + 4 * ldc, c4, accumulate)
    _store_row(c, co + 5 * ldc, c5, accumulate)


@njit(**_OPTS)
def _kernel(kc, ap, rows, shifts, bp, bo, c, co, ldc, accumulate):
    """``C (+)= A @ B`` for one MR x NR tile.

    A is ``len(shifts)`` pieces of depth ``kc`` one after the other: row ``r`` of
    piece ``t`` is ``ap[rows[r] + shifts[t]:][:kc]`` (a packed sliver's rows are
    ``kc`` apart and GEMM has one piece; ``conv``'s direct kernel passes pixels of
    an image and one shift per tap). B is the packed micro-panel at ``bp[bo:]``
    (``len(shifts) * kc`` rows of NR); C row ``r`` is ``c[co + r*ldc:][:NR]``.
    """
    _prefetch_tile(c, co, ldc)
    c0 = vzero(NR); c1 = vzero(NR); c2 = vzero(NR); c3 = vzero(NR); c4 = vzero(NR); c5 = vzero(NR)  # noqa: E702
    for shift in shifts:
        a0, a1, a2, a3, a4, a5 = rows[0] + shift, rows[1] + shift, rows[2] + shift, rows[3] + shift, \
            rows[4] + shift, rows[5] + shift
        for p in range(kc):
            b = vload(bp, bo, NR)
            c0 = vfma(vbroadcast(ap, a0 + p, NR), b, c0)
            c1 = vfma(vbroadcast(ap, a1 + p, NR), b, c1)
            c2 = vfma(vbroadcast(ap, a2 + p, NR), b, c2)
            c3 = vfma(vbroadcast(ap, a3 + p, NR), b, c3)
            c4 = vfma(vbroadcast(ap, a4 + p, NR), b, c4)
            c5 = vfma(vbroadcast(ap, a5 + p, NR), b, c5)
            bo += NR
    _store_tile(c, co, ldc, c0, c1, c2, c3, c4, c5, accumulate)


def _kernel_pairs(steps, ap, rows, shifts, bp, bo, c, co, ldc, accumulate):
    """``_kernel`` on bf16 pairs (``vdot_bf16``): each of ``steps`` steps consumes two of k.

    Row ``r`` of piece ``t`` of A is ``ap[rows[r] + shifts[t]:][:steps]`` and B ``bp[bo:]``,
    packed by ``_pack_a_pairs`` and ``_pack_b_pairs``. Only where ``DOT_BF16`` (jit only).
    """
    raise NotImplementedError


@overload(_kernel_pairs)
def _ov_kernel_pairs(steps, ap, rows, shifts, bp, bo, c, co, ldc, accumulate):
    if not DOT_BF16:
        def unreachable(steps, ap, rows, shifts, bp, bo, c, co, ldc, accumulate):  # never asked for
            raise AssertionError("bf16 pairs without AVX512-BF16")
        return unreachable

    def kernel_pairs(steps, ap, rows, shifts, bp, bo, c, co, ldc, accumulate):
        _prefetch_tile(c, co, ldc)
        c0 = vzero(NR); c1 = vzero(NR); c2 = vzero(NR); c3 = vzero(NR); c4 = vzero(NR); c5 = vzero(NR)  # noqa: E702
        for shift in shifts:
            a0, a1, a2, a3, a4, a5 = rows[0] + shift, rows[1] + shift, rows[2] + shift, rows[3] + shift, \
                rows[4] + shift, rows[5] + shift
            for q in range(steps):
                b = vload(bp, bo, NR)
                c0 = vdot_bf16(c0, vbroadcast(ap, a0 + q, NR), b)
                c1 = vdot_bf16(c1, vbroadcast(ap, a1 + q, NR), b)
                c2 = vdot_bf16(c2, vbroadcast(ap, a2 + q, NR), b)
                c3 = vdot_bf16(c3, vbroadcast(ap, a3 + q, NR), b)
                c4 = vdot_bf16(c4, vbroadcast(ap, a4 + q, NR), b)
                c5 = vdot_bf16(c5, vbroadcast(ap, a5 + q, NR), b)
                bo += NR
        _store_tile(c, co, ldc, c0, c1, c2, c3, c4, c5, accumulate)

    return kernel_pairs


@njit(inline="always", **_OPTS)
def _sliver_rows(ao, kc):
    """The ``rows`` of ``_kernel`` for the packed sliver at ``ao`` (rows ``kc`` apart)."""
    return (ao, ao + kc, ao + 2 * kc, ao + 3 * kc, ao + 4 * kc, ao + 5 * kc)


# --- one thread's share ------------------------------------------------------

def _store_f16(out16, at, v):
    """``vstore_f16`` where the target converts in hardware (jit only)."""
    raise NotImplementedError


@overload(_store_f16, inline="always")
def _ov_store_f16(out16, at, v):
    if HARDWARE_F16:
        return lambda out16, at, v: vstore_f16(out16, at, v)

    def unreachable(out16, at, v):  # _update's element path converts halves on such targets
        raise AssertionError("vector fp16 store without F16C")

    return unreachable


@njit(**_OPTS)
def _update(tile, acc, add_acc, out16, out_kind, i, j, mr, nr, ldc, bias, act):
    """Finish a tile: ``act(tile (+ acc) + bias)`` to ``acc`` or, rounded, to ``out16``.

    ``tile`` is a kernel result (row stride NR); element ``(i, j)`` of ``acc``
    (float32) and ``out16`` (half bits) is at ``i * ldc + j``; ``out_kind``
    picks the target. Rows go in vectors of WIDTH lanes where the conversion and
    activation have vector forms, the last ``nr % WIDTH`` columns (or all, otherwise)
    element by element. (Whole rows only in vectors left a tile of fewer than NR columns,
    a layer of 32 filters, to the element path: 3.5x slower for a first convolution.)
    sigmoid, tanh and gelu go over the tile first, in a loop of their own that vectorises
    (``vmath.activate_span``; element by element through the C library, a gelu epilogue took
    6-8x the time of a whole bf16 product with relu).
    """
    has_bias = bias.size > 0
    if act >= 2:
        for r in range(mr):
            row, at = (i + r) * ldc + j, r * NR
            for c in range(nr):
                v = tile[at + c]
                if add_acc:
                    v += acc[row + c]
                if has_bias:
                    v += bias[j + c]
                tile[at + c] = v
            activate_span(tile, at, at + nr, act)
        add_acc, has_bias, act = False, False, 0
    vectors = act <= 1 and (out_kind != _F16 or HARDWARE_F16)
    for r in range(mr):
        row = (i + r) * ldc + j
        done = 0
        while vectors and done + WIDTH <= nr:  # written out here: the arrays passed to an inlined
            # helper, under these branches, made Numba count references to them on every row
            v = vload(tile, r * NR + done)
            if add_acc:
                v = vadd(v, vload(acc, row + done))
            if has_bias:
                v = vadd(v, vload(bias, j + done))
            if act == 1:
                v = vmax(v, vzero())
            if out_kind == _F32:
                vstore(acc, row + done, v)
            elif out_kind == _F16:
                _store_f16(out16, row + done, v)
            else:
                vstore_bf16(out16, row + done, v)
            done += WIDTH
        for c in range(done, nr):
            v = tile[r * NR + c]
            if add_acc:
                v += acc[row + c]
            if has_bias:
                v += bias[j + c]
            if act == 1 and v <= 0:  # -0.0 to +0.0 too, as vmax and NumPy
                v = np.float32(0)
            if out_kind == _F32:
                acc[row + c] = v
            elif out_kind == _F16:
                out16[row + c] = f32_to_f16(v)
            else:
                out16[row + c] = f32_to_bf16(v)


@njit(inline="always", **_OPTS)
def _thread_slab(th, nthreads, m, n, mr):
    """Thread ``th``'s slab of the output: slivers ``s_lo:s_hi`` (of `mr` rows) x panels ``t_lo:t_hi``.

    The output is cut along rows or columns, whichever gives the busiest
    thread fewer tiles; ties go to columns, which need no separate parallel
    region to pack ``b`` first (512 and 2048 square: 10-20% faster than rows).
    """
    ms = _round_up(m, mr) // mr
    nt = _round_up(n, NR) // NR
    if -(-ms // nthreads) * nt < ms * -(-nt // nthreads):
        s_lo, s_hi = _share(th, nthreads, ms)
        return s_lo, s_hi, 0, nt
    t_lo, t_hi = _share(th, nthreads, nt)
    return 0, ms, t_lo, t_hi


@njit(**_OPTS)
def _thread(th, nthreads, go, a, aoff, ars, acs, b, boff, brs, bcs, packed, pairs, m, n, k,
            acc, out16, out_kind, ldc, bias, act, subnormal):
    """Everything thread ``th`` of ``nthreads`` does: its slab of ``act(a @ b + bias)``.

    ``a`` is the strided (M, K) matrix ``a[aoff + i*ars + p*acs]``; ``b`` the
    strided (K, N) matrix ``b[boff + p*brs + j*bcs]``, or, when
    ``packed`` is non-empty, ignored in favour of that ``PackedB`` buffer.
    ``pairs``: both are bf16, multiplied by ``_kernel_pairs``; a bf16 subnormal met while
    packing stops the share with ``subnormal[th] = 1`` (the caller starts again without pairs).
    Partial sums over KC blocks go to ``acc``; the last block goes through
    the epilogue (``_update``). Whole tiles of a float32 output without bias
    or activation are stored by the kernel directly.
    """
    start_workers(go)
    s_lo, s_hi, t_lo, t_hi = _thread_slab(th, nthreads, m, n, MR)
    if s_lo == s_hi or t_lo == t_hi:
        return
    plain = out_kind == _F32 and bias.size == 0 and act == 0
    npad = _round_up(n, NR)
    depth = _block_depth(k, pairs)
    most = _steps(min(depth, k), pairs)  # kernel steps of the deepest block
    ap = _line_aligned(MC * most)
    bp = _line_aligned(0 if packed.size else (t_hi - t_lo) * NR * most)
    tile = _line_aligned(MR * NR)
    one_piece = np.zeros(1, np.int64)
    for p0 in range(0, max(k, 1), depth):  # K = 0: one empty block, epilogue only
        kc = min(depth, k - p0)
        steps = _steps(kc, pairs)
        first, last = p0 == 0, p0 + kc == k
        if packed.size:
            b_panels, b_first = packed, _block_offset(p0, depth, pairs, npad) + t_lo * steps * NR
        else:
            if _pack_b_block(b, boff, brs, bcs, n, t_lo, t_hi, p0, kc, bp, 0, pairs):
                subnormal[th] = 1
                return
            b_panels, b_first = bp, 0
        for sb in range(s_lo, s_hi, MC // MR):
            se = min(sb + MC // MR, s_hi)
            if pairs:
                if _pack_a_pairs(a, aoff, ars, acs, m, sb, se, p0, kc, ap):
                    subnormal[th] = 1
                    return
            else:
                _pack_a(a, aoff, ars, acs, m, sb, se, p0, kc, ap)
            for t in range(t_lo, t_hi):
                j = t * NR
                nr = min(NR, n - j)
                bo = b_first + (t - t_lo) * steps * NR
                for s in range(sb, se):
                    i = s * MR
                    mr = min(MR, m - i)
                    rows = _sliver_rows((s - sb) * MR * steps, steps)
                    direct = mr == MR and nr == NR and (plain or not last)
                    c, co, ldc_ = (acc, i * ldc + j, ldc) if direct else (tile, 0, NR)
                    add = not first and direct
                    if pairs:
                        _kernel_pairs(steps, ap, rows, one_piece, b_panels, bo, c, co, ldc_, add)
                    else:
                        _kernel(kc, ap, rows, one_piece, b_panels, bo, c, co, ldc_, add)
                    if not direct:
                        if last:
                            _update(tile, acc, not first, out16, out_kind, i, j, mr, nr, ldc, bias, act)
                        else:
                            _update(tile, acc, not first, out16, _F32, i, j, mr, nr, ldc, bias[:0], 0)


# --- a few rows: b read in place ---------------------------------------------

def _vload_panel_row(x, i):
    """``x[i:i+NR]`` of a float32, fp16 (uint16) or bf16 (int16) array as a float32 vector."""
    raise NotImplementedError


@overload(_vload_panel_row, inline="always")
def _ov_vload_panel_row(x, i):
    return {types.float32: lambda x, i: vload(x, i, NR),
            types.uint16: lambda x, i: vload_f16(x, i, NR),
            types.int16: lambda x, i: vload_bf16(x, i, NR)}.get(x.dtype)


@njit(**_OPTS)
def _few_rows_thread(th, nthreads, go, a, aoff, ars, acs, b, boff, brs, bcs, m, n, k,
                     acc, out16, out_kind, ldc, bias, act):
    """Thread ``th``'s panels of ``act(a @ b + bias)``, ``b`` read in place, four rows of ``a`` at a time.

    For an ``a`` of a few rows (``SKINNY_M``) and a ``b`` whose rows are contiguous (``bcs ==
    1``), where packing ``b`` would read it, write it packed and read it again: a row of NR
    columns of ``b`` a step goes into four rows of vector accumulators. Halves are decoded
    exactly and summed in float32 (no bf16 subnormal is flushed); ``_update`` finishes each
    tile. Measured on 2 Zen 4 cores, against packing: 1 to 4 rows of 1024 x 1024 products
    1.5x (bf16) to 2.6x (fp16, float32) faster, 784 x 512 2x; 6 and 8 rows mixed. (A transposed
    ``b`` read a column at a time ran 3-20x slower than packing it: it is packed.)
    """
    start_workers(go)
    t_lo, t_hi = _share(th, nthreads, _round_up(n, NR) // NR)
    if t_lo == t_hi:
        return
    rows = np.zeros(_round_up(m, 4) * k, np.float32)  # a's rows decoded, zeros past m
    for i in range(m):
        for p in range(k):
            rows[i * k + p] = _to_f32(a[aoff + i * ars + p * acs])
    tile = _line_aligned(MR * NR)
    for i0 in range(0, m, 4):
        r0, mr = i0 * k, min(4, m - i0)
        for t in range(t_lo, t_hi):
            j = t * NR
            nr = min(NR, n - j)
            if nr == NR:
                c0 = vzero(NR); c1 = vzero(NR); c2 = vzero(NR); c3 = vzero(NR)  # noqa: E702
                for p in range(k):
                    v = _vload_panel_row(b, boff + p * brs + j)
                    c0 = vfma(vbroadcast(rows, r0 + p, NR), v, c0)
                    c1 = vfma(vbroadcast(rows, r0 + k + p, NR), v, c1)
                    c2 = vfma(vbroadcast(rows, r0 + 2 * k + p, NR), v, c2)
                    c3 = vfma(vbroadcast(rows, r0 + 3 * k + p, NR), v, c3)
                vstore(tile, 0, c0); vstore(tile, NR, c1); vstore(tile, 2 * NR, c2); vstore(tile, 3 * NR, c3)  # noqa: E702
            else:  # the last panel, short of columns: WIDTH columns at a time, then one at a time
                full = nr - nr % WIDTH
                for g in range(0, full, WIDTH):
                    d0 = vzero(); d1 = vzero(); d2 = vzero(); d3 = vzero()  # noqa: E702
                    for p in range(k):
                        v = _vload_f32(b, boff + p * brs + j + g)
                        d0 = vfma(vbroadcast(rows, r0 + p), v, d0)
                        d1 = vfma(vbroadcast(rows, r0 + k + p), v, d1)
                        d2 = vfma(vbroadcast(rows, r0 + 2 * k + p), v, d2)
                        d3 = vfma(vbroadcast(rows, r0 + 3 * k + p), v, d3)
                    vstore(tile, g, d0); vstore(tile, NR + g, d1); vstore(tile, 2 * NR + g, d2)  # noqa: E702
                    vstore(tile, 3 * NR + g, d3)
                for i in range(mr):
                    tile[i * NR + full:i * NR + nr] = 0
                for p in range(k):  # in b's row order
                    at = boff + p * brs + j
                    for i in range(mr):
                        x = rows[r0 + i * k + p]
                        for c in range(full, nr):
                            tile[i * NR + c] += x * _to_f32(b[at + c])
            _update(tile, acc, False, out16, out_kind, i0, j, mr, nr, ldc, bias, act)


# --- AMX tiles ---------------------------------------------------------------

@njit(inline="always", **_OPTS)
def _prefetch_b_tiles(b16, at):
    """Ask for the 16 rows of two B tiles side by side, from ``b16[at]`` on (rows ``2 * NR``
    halves apart, as packed), to be in L1 by the time ``tileloadd`` reads them.

    A tile load waits for every row it misses in L1, and a tile register cannot be loaded
    again before the products reading it are done, so misses stall the tile unit. Measured
    in one process, alternating with the same kernel without it (median of 6 pairs each, two
    runs): bf16 products 12-34% faster (256 x 1024 x 1024 to 2048 square), conv2d 5-15%;
    prefetching A as well added nothing. Across processes (two runs each) the gain was 0-10%,
    within this machine's drift. Two or three steps ahead instead of one: 64 x 784 x 512
    0.96-0.99x (15 rounds in one process).
    """
    for r in range(TILE_PAIRS):
        prefetch_read(b16, at + 2 * NR * r)
        prefetch_read(b16, at + 2 * NR * r + 2 * TILE_PAIRS)


def _kernel_tiles(steps, a16, ao, b16, bo, c, ci, ldi, accumulate, d, do, ldo):
    """``D = (C if accumulate else 0) + A @ B`` for one BAND x NR block, on AMX tiles (jit only).

    ``a16`` and ``b16`` are int16 views of the packed operands, ``ao`` and ``bo`` offsets in
    their float32 slots. A: BAND rows of ``steps`` slots (bf16 pairs), one after the other, as
    ``_pack_rows_pairs`` lays them; B: ``steps`` rows of NR slots, as ``_pack_b_pairs`` does
    with ``pairs=TILES``; ``steps`` a multiple of TILE_PAIRS. Row ``r`` of C is
    ``c[ci + r*ldi:][:NR]``, of D ``d[do + r*ldo:][:NR]`` (float32; they may be the same). The
    block is NR / 32 blocks of 2 x 2 tiles (tiles 0-3; A in 4-5, B in 6-7).
    """
    raise NotImplementedError


@overload(_kernel_tiles)
def _ov_kernel_tiles(steps, a16, ao, b16, bo, c, ci, ldi, accumulate, d, do, ldo):
    if not amx.TARGET_AMX:
        def unreachable(steps, a16, ao, b16, bo, c, ci, ldi, accumulate, d, do, ldo):  # never asked for
            raise AssertionError("AMX tiles on a target without them")
        return unreachable

    def kernel_tiles(steps, a16, ao, b16, bo, c, ci, ldi, accumulate, d, do, ldo):
        a_row, b_row = 4 * steps, 4 * NR  # bytes from a row to the next
        for half in range(0, NR, 32):
            at, to = ci + half, do + half
            if accumulate:
                amx.load(0, c, at, 4 * ldi); amx.load(1, c, at + 16, 4 * ldi)  # noqa: E702
                amx.load(2, c, at + 16 * ldi, 4 * ldi); amx.load(3, c, at + 16 * ldi + 16, 4 * ldi)  # noqa: E702
            else:
                amx.zero(0); amx.zero(1); amx.zero(2); amx.zero(3)  # noqa: E702
            for q in range(0, steps, TILE_PAIRS):
                if q + TILE_PAIRS < steps:  # the next step's rows of B into L1 (see _prefetch_b_tiles)
                    _prefetch_b_tiles(b16, 2 * (bo + (q + TILE_PAIRS) * NR + half))
                amx.load(4, a16, 2 * (ao + q), a_row)
                amx.load(6, b16, 2 * (bo + q * NR + half), b_row)
                amx.load(7, b16, 2 * (bo + q * NR + half + 16), b_row)
                amx.dot_bf16(0, 4, 6)
                amx.load(5, a16, 2 * (ao + 16 * steps + q), a_row)
                amx.dot_bf16(1, 4, 7); amx.dot_bf16(2, 5, 6); amx.dot_bf16(3, 5, 7)  # noqa: E702
            amx.store(0, d, to, 4 * ldo); amx.store(1, d, to + 16, 4 * ldo)  # noqa: E702
            amx.store(2, d, to + 16 * ldo, 4 * ldo); amx.store(3, d, to + 16 * ldo + 16, 4 * ldo)  # noqa: E702

    return kernel_tiles


@njit(inline="always", **_OPTS)
def _tile_blocking(k, most_panels):
    """``(panels, bands)``: how many panels of B (at most `most_panels`) and bands of A
    ``_thread_tiles`` keeps together.

    Every band of A meets the chunk's panels of B, all of K of them: they must stay in L2,
    about ``_B_BYTES`` (1 MiB, half of it here). Fewer panels pack A again for more chunks;
    more spill B to L3. Measured in one process on one thread, chunks of 1/2/4/8 panels: 2048
    square 457/606/704/470 GFLOP/s, 256 x 1024 x 1024 480/503/590/596, 1024 x 4096 x 1024
    505/563/496/450: the best at 0.5-1 MiB. One band an item (its A, all of K, is packed again
    for each chunk of panels: hence at least ``_MIN_PANELS`` panels; 2 and 8 instead ran at
    0.89-0.99x and 0.87-1.04x at K = 2048-8192), unless the chunk is over the budget all the
    same (K over 2048): then ``_STREAMED_BANDS`` bands share each pass over B.
    """
    kpad = _round_up(max(k, 1), 2 * TILE_PAIRS)
    panel = 2 * NR * kpad  # bytes
    panels = min(max(_B_BYTES // panel, _MIN_PANELS), most_panels)
    return panels, 1 if panel * panels <= _B_BYTES else _STREAMED_BANDS


@njit(inline="always", **_OPTS)
def _tile_items(m, n, k, v, nthreads, pack):
    """``(s_lo, s_hi, t_lo, t_hi, panels, bands, fused)``: thread `v`'s ``_thread_slab`` of the
    output, the chunk of it a work item of ``_thread_tiles`` covers, ``panels`` x ``bands``, and
    whether an item packs its own panels of B (`pack`, and one item a column of the slab).

    ``_tile_blocking``'s chunk, cut (bands first, which costs nothing, then panels, which
    packs A once more per chunk) until the slab holds ``ITEMS_PER_SLAB`` items or more (when
    there are other threads to share them with). If B is to be packed (`pack`) and the slab
    has at most ``FUSED_BANDS`` bands, an item takes them all (and is cut in panels only):
    each panel of B then meets one item, which packs it where the kernel reads it next
    (``_thread_tiles``).
    """
    s_lo, s_hi, t_lo, t_hi = _thread_slab(v, nthreads, m, n, BAND)
    panels, bands = _tile_blocking(k, max(t_hi - t_lo, 1))
    fused = pack and 0 < s_hi - s_lo <= FUSED_BANDS
    bands = max(s_hi - s_lo if fused else min(bands, s_hi - s_lo), 1)
    want = ITEMS_PER_SLAB if nthreads > 1 else 1
    while not fused and bands > 1 and -(-(s_hi - s_lo) // bands) * -(-(t_hi - t_lo) // panels) < want:
        bands = (bands + 1) // 2
    while panels > 1 and -(-(s_hi - s_lo) // bands) * -(-(t_hi - t_lo) // panels) < want:
        panels = (panels + 1) // 2
    return s_lo, s_hi, t_lo, t_hi, panels, bands, pack and bands >= s_hi - s_lo


#: ``_thread_tiles``' ``work`` holds these int64 flags per slab, a cache line apart: the next
#: item, who packs the slab's B (the first to count it), whether it is packed (1) or met a
#: subnormal (-1). After the slabs' lines, one flag: stop (a subnormal met).
_NEXT, _PACKER, _PACKED, _FLAGS = 0, 1, 2, LINE // 8


@njit(inline="always", **_OPTS)
def _b_packer(v, nthreads, m, n):
    """The slab whose flags (``_PACKER``, ``_PACKED``) say who packs the panels of B that slab
    `v` reads: its own when the slabs are columns (each reads its own panels), slab 0's when
    they are rows (all read all of B, which must be packed once: two threads writing the same
    panels, zero padding first, would clobber what the other had announced ready)."""
    t_lo, t_hi = _thread_slab(v, nthreads, m, n, BAND)[2:]
    return v if t_hi - t_lo < _round_up(n, NR) // NR else 0


@njit(**_OPTS)
def _thread_tiles(th, nthreads, go, a, aoff, ars, acs, geo, b, boff, brs, bcs, packed, pack, m, n, k,
                  acc, out16, out_kind, ldc, bias, act, subnormal, config, work):
    """Thread ``th``'s part of a bf16 x bf16 product on AMX: ``_kernel_tiles`` on items of work.

    The output is cut into slabs as in ``_thread`` (``_thread_slab``), and each slab into
    items of ``_tile_items``: a chunk of panels x a group of bands, each through all of K
    before the next: in one block up to TILE_KC, its sums in tiles all along, else in blocks
    of ``_block_depth``, its partial sums in a float32 scratch buffer between them; the last
    block goes through the epilogue (``_update``) to the output (``acc`` if float32, else
    ``out16``). A thread takes the items of its own slab first, then those left
    in the others' (``claim``), so that one slowed down (another program on its core, or a
    late start) does less of the work rather than all waiting for it, while each mostly reads
    its own part of B. B is read from ``packed`` (a ``PackedB``'s layout), which, if `pack`,
    the first thread at a slab fills with the slab's panels, all of K, before any item of it
    runs (once for all slabs of rows: ``_b_packer``); but where an item covers all the bands
    of its slab (``_tile_items``), it packs its panels of B itself, into a scratch buffer, in
    blocks of ``FUSED_TILE_KC`` that stay in L1. A is packed for each item, a block
    at a time (``_pack_rows_pairs``; or, if ``geo`` is not empty,
    ``_pack_im2col_pairs`` of the image ``a``, for a convolution).
    `config` is ``amx.CONFIG``; ``work`` as ``_FLAGS`` says. A bf16 subnormal met while
    packing stops every thread, with ``subnormal[th] = 1``.
    """
    start_workers(go)
    nt = _round_up(n, NR) // NR
    depth, fused_depth = _block_depth(k, TILES), _tile_depth(k, FUSED_TILE_KC)
    b16, npad = packed.view(np.int16), nt * NR
    sum_size = a_size = b_size = 0
    for v in range(nthreads):  # scratch for the largest item of any slab
        panels, bands, fused = _tile_items(m, n, k, v, nthreads, pack)[4:]
        d = fused_depth if fused else depth
        steps = _steps(min(d, k), TILES)
        a_size = max(a_size, bands * BAND * steps)
        if k > d:
            sum_size = max(sum_size, bands * BAND * panels * NR)
        if fused:
            b_size = max(b_size, panels * steps * NR)
    ap, bl, sums = _line_aligned(a_size), _line_aligned(b_size), _line_aligned(sum_size)
    a16, bl16 = ap.view(np.int16), bl.view(np.int16)
    tile = _line_aligned(BAND * NR)
    stop = nthreads * _FLAGS
    amx.configure(config)
    for turn in range(nthreads):
        v = (th + turn) % nthreads
        s_lo, s_hi, t_lo, t_hi, panels, bands, fused = _tile_items(m, n, k, v, nthreads, pack)
        if s_lo == s_hi or t_lo == t_hi or work[stop]:
            continue
        flags, packer = v * _FLAGS, _b_packer(v, nthreads, m, n) * _FLAGS
        groups = -(-(s_hi - s_lo) // bands)
        # Each panel of B that only one item reads is packed by that item, a block at a time,
        # into ``bl``, where the kernel finds it in cache: packed all at once, B went to memory
        # and back. Against that, in one process (10 rounds alternated, one / two threads):
        # 16x1024x4096 1.57x / 1.62x, 32x512x2048 1.22x / 1.16x, 64x4096x1024 1.19x / 1.05x
        # (two threads 1.36x-1.64x more once such slabs were cut by panels only, _tile_items),
        # 64x784x512 1.05x / 1.03x.
        item_depth = fused_depth if fused else depth
        if pack and not fused:
            if claim(work, packer + _PACKER) == 0:  # B's panels of the slab, all of K
                found = False
                for p0 in range(0, k, depth):
                    kc = min(depth, k - p0)
                    at = _block_offset(p0, depth, TILES, npad) + t_lo * _steps(kc, TILES) * NR
                    found = found or _pack_b_tiles(b, boff, brs, bcs, n, t_lo, t_hi, p0, kc, packed, at)
                if found:
                    subnormal[th] = 1
                    publish(work, stop, 1)
                publish(work, packer + _PACKED, -1 if found else 1)
            elif wait_for(work, packer + _PACKED) < 0:
                break
        items = -(-(t_hi - t_lo) // panels) * groups
        ldw = panels * NR  # the partial sums of an item, rows ldw apart
        while not work[stop]:
            item = claim(work, flags + _NEXT)
            if item >= items:
                break
            c, g = divmod(item, groups)
            t0, sb = t_lo + c * panels, s_lo + g * bands
            t1, se = min(t0 + panels, t_hi), min(sb + bands, s_hi)
            for p0 in range(0, max(k, 1), item_depth):  # K = 0: one empty block, epilogue only
                kc = min(item_depth, k - p0)
                steps = _steps(kc, TILES)
                first, last = p0 == 0, p0 + kc >= k
                if geo.size:
                    found = _pack_im2col_pairs(a, geo, m, sb * BAND, se * BAND, p0, kc, steps, ap)
                else:
                    found = _pack_rows_pairs(a, aoff, ars, acs, m, sb * BAND, se * BAND, p0, kc, steps, ap)
                if fused:
                    # np.int64: a literal 0 compiled the packer a second time (3 s)
                    found = found or _pack_b_tiles(b, boff, brs, bcs, n, t0, t1, p0, kc, bl, np.int64(0))
                if found:
                    subnormal[th] = 1
                    publish(work, stop, 1)
                    break
                if fused:  # panel t of the item at (t - t0) * steps * NR
                    src, b_block = bl16, -t0 * steps * NR
                else:
                    src, b_block = b16, _block_offset(p0, depth, TILES, npad)
                for t in range(t0, t1):
                    j = t * NR
                    bo = b_block + t * steps * NR
                    for s in range(sb, se):
                        ao, at = (s - sb) * BAND * steps, (s - sb) * BAND * ldw + (t - t0) * NR
                        if last:
                            _kernel_tiles(steps, a16, ao, src, bo, sums, at, ldw, not first, tile, 0, NR)
                            i = s * BAND
                            _update(tile, acc, False, out16, out_kind, i, j, min(BAND, m - i),
                                    min(NR, n - j), ldc, bias, act)
                        else:
                            _kernel_tiles(steps, a16, ao, src, bo, sums, at, ldw, not first, sums, at, ldw)
    amx.release()


# --- Python entry points ---------------------------------------------------

_STORAGE = dtypes.DTypeTable({  # NumPy dtype -> view the kernels see
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.uint16),
    "bfloat16": np.dtype(np.int16),
})
_OUT_KINDS = dtypes.DTypeTable({"float32": _F32, "float16": _F16, "bfloat16": _BF16})


def strided(x: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """A 2-D array as ``(buf, offset, row_stride, col_stride)`` for the packers.

    ``buf`` is a read-only 1-D view of ``x``'s memory (or of a copy, for the rare strides
    below), as the kernels' storage type, with ``x[i, j] == buf[offset + i*row_stride +
    j*col_stride]``.
    Passing strides as numbers keeps one compiled packer per dtype for every
    layout (C, Fortran, transposed, sliced, broadcast).
    """
    x = x.view(_STORAGE[x.dtype])
    if x.size == 0:
        return EMPTY[x.dtype], 0, 0, 0
    if x.flags.c_contiguous:  # the common case, without as_strided's cost (microseconds)
        return read_only(x.ravel()), 0, x.shape[1], 1
    size = x.itemsize
    if x.strides[0] % size or x.strides[1] % size:  # a field of packed records: no element count
        x = np.ascontiguousarray(x)                   # spans its strides, so it is copied
        return read_only(x.ravel()), 0, x.shape[1], 1
    rs, cs = (s // size for s in x.strides)
    # the corner with the lowest address starts buf
    lo_i = x.shape[0] - 1 if rs < 0 else 0
    lo_j = x.shape[1] - 1 if cs < 0 else 0
    span = 1 + (x.shape[0] - 1) * abs(rs) + (x.shape[1] - 1) * abs(cs)
    buf = np.lib.stride_tricks.as_strided(x[lo_i:, lo_j:], (span,), (size,), writeable=False)
    return buf, -(lo_i * rs + lo_j * cs), rs, cs


class PackedB:
    """A (K, N) float32/fp16/bf16 matrix packed once into micro-panels, for reuse across calls.

    >>> import numpy as np
    >>> w = pack_b(np.eye(3, dtype=np.float16))
    >>> gemm(np.ones((2, 3), np.float16), w, np.float32)
    array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32)
    """

    def __init__(self, b: np.ndarray, depth: int | None = None, pairs: bool | int | None = None):
        if b.ndim != 2 or b.dtype not in _STORAGE:
            raise ValueError(f"PackedB needs a 2-D float32, float16 or bfloat16 matrix. "
                             f"Received shape {b.shape}, dtype {b.dtype}")
        k, n = b.shape
        self.shape = (k, n)
        self.dtype = b.dtype
        if pairs and pairs not in _layouts(b.dtype):
            raise ValueError(f"bf16 pairs need a bfloat16 matrix and a CPU with AVX512-BF16, AMX "
                             f"tiles (pairs={TILES}) one with AMX; received {b.dtype}, pairs={pairs!r} "
                             f"(AVX512-BF16: {DOT_BF16}, AMX: {amx.available()})")
        #: The matrix packed (not a copy): what a product with a non-bf16 left operand repacks.
        self.source = b
        #: How the panels hold ``b``: bf16 pairs for ``_kernel_pairs`` (True), in AMX tiles
        #: (TILES), or float32 values (False). The fastest the CPU has unless asked (None),
        #: and False if a subnormal was met while packing pairs.
        self.pairs = _layouts(b.dtype)[0] if pairs is None else pairs
        #: Steps of k per block: ``gemm``'s blocking by default; ``k`` gives whole-depth
        #: panels (panel ``t`` at ``t * K * NR``), as ``conv``'s direct kernel reads them.
        self.depth = _block_depth(k, self.pairs) if depth is None else depth
        if not self._pack() and self.pairs:
            self.pairs = False
            self.depth = _block_depth(k, False) if depth is None else depth
            self._pack()

    def _pack(self) -> bool:
        """Fill ``data`` (as ``pairs`` says); False when a bf16 subnormal stopped it."""
        (k, n), pairs = self.shape, self.pairs
        self.data = _packed_buffer(k, n, self.depth, int(pairs))
        if not self.data.size:
            return True
        count = thread_count(self.data.size, PACK_SERIAL_MAX)
        subnormal = np.zeros(count, np.int64)
        threads.parallel(_pack_b_share, *strided(self.source), k, n, self.depth, int(pairs), self.data,
                         subnormal, nthreads=count)
        return not met_subnormal(subnormal)

    def __repr__(self) -> str:
        layout = {True: " bf16 pairs", TILES: " AMX tiles"}.get(self.pairs, "")
        return f"<PackedB shape={self.shape} dtype={self.dtype}{layout}>"


def met_subnormal(flags: np.ndarray) -> bool:
    """Whether a share set its flag in `flags`: a bf16 subnormal stopped the pairs or tiles.
    (A list of these few int64 flags answers in 0.3 us, ``np.count_nonzero`` in 0.8.)"""
    return any(flags.tolist())


def thread_count(work: int, serial_max: int) -> int:
    """How many threads a kernel call with `work` to do runs on: 1 up to `serial_max` (one of
    ``SERIAL_MAX``, ``SERIAL_MAX_TILES``, ``PACK_SERIAL_MAX``), else ``threads.get_num_threads()``."""
    return 1 if work <= serial_max else threads.get_num_threads()


@njit(**_OPTS)
def _packed_buffer(k, n, depth, pairs):
    """A ``_line_aligned`` buffer for a ``PackedB`` of a (K, N) matrix in blocks of `depth`, or
    with gemm's blocking for `pairs` if `depth` is 0 (one call from Python, not four)."""
    if depth == 0:
        depth = _block_depth(k, pairs)
    full, last = (k // depth, k % depth) if k else (0, 0)
    return _line_aligned((full * _steps(depth, pairs) + _steps(last, pairs)) * -(-n // NR) * NR)


def _slabs_share_b(m: int, n: int, pairs: bool | int = False) -> bool:
    """Whether the threads' slabs of an (M, N) output are cut along rows, so that each uses all
    of ``b`` (else each uses its own columns of ``b`` and packs them itself, block by block)."""
    rows = BAND if pairs == TILES else MR
    return _thread_slab(0, threads.get_num_threads(), m, n, rows)[3] == -(-n // NR)


def _pairs_possible(dtype: np.dtype) -> bool:
    """Whether operands of `dtype` run on ``_kernel_pairs`` on this CPU: bf16 where it has
    AVX512-BF16 but not AMX. (On a Sapphire Rapids, the one CPU with AMX measured,
    ``vdpbf16ps`` ran at half the speed of the float32 path: 46 vs 80 GFLOP/s a core.)"""
    return DOT_BF16 and dtypes.canonical_name(dtype) == "bfloat16" and not amx.available()


def _layouts(dtype: np.dtype) -> tuple[bool | int, ...]:
    """The layouts (``PackedB.pairs``) a product of `dtype` operands can use on this CPU, the
    one ``gemm`` picks first: AMX tiles, bf16 pairs (on a CPU with AMX too: slower, but
    exact alike), float32."""
    if dtypes.canonical_name(dtype) != "bfloat16":
        return (False,)
    return (*((TILES,) if amx.available() else ()), *((True,) if DOT_BF16 else ()), False)


def pack_b(b: np.ndarray) -> PackedB:
    """Pack `b` (K, N) for repeated ``gemm(a, packed, ...)`` calls."""
    return PackedB(np.asarray(b))


def bias_vector(bias: np.ndarray | None) -> np.ndarray:
    """`bias` as the contiguous float32 vector ``_update`` reads; empty for no bias."""
    return _NO_BIAS if bias is None else read_only(np.ascontiguousarray(bias, np.float32))


def output_views(out: np.ndarray, partial_sums: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(acc, out16, out_kind, ldc)``: what ``_update`` writes for the (M, N) view `out`.

    `out`'s rows may be strided, its columns must be contiguous. A float32 `out` is
    its own accumulator; for halves, ``acc`` is a fresh float32 buffer when
    `partial_sums` (several blocks of k) and empty otherwise.
    """
    m, n = out.shape
    out_kind = _OUT_KINDS[out.dtype]
    if out.flags.c_contiguous:
        flat, ldc = out.reshape(-1), n
    else:
        ldc = out.strides[0] // out.itemsize if m > 1 else n
        flat = np.lib.stride_tricks.as_strided(out, ((m - 1) * ldc + n,), (out.itemsize,))
    if out_kind == _F32:
        return flat, _NO_HALVES, out_kind, ldc
    acc = np.empty(flat.size, np.float32) if partial_sums else _NO_PANELS
    return acc, flat.view(np.uint16), out_kind, ldc


def gemm(a: np.ndarray, b: np.ndarray | PackedB, out_dtype, bias: np.ndarray | None = None,
         activation: str | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``activation(a @ b + bias)`` for 2-D `a`, accumulated in float32, rounded once to `out_dtype`.

    `a` (M, K) and `b` (K, N) or a ``PackedB``: float32, float16 or bfloat16
    with any strides (transposed views are read in place, never copied).
    `bias` (N,) and `activation` (None, 'linear', 'relu', 'sigmoid', 'tanh',
    'gelu') are applied in float32 before the single rounding. K = 0 gives
    ``activation(bias)`` (zeros without bias). `out`, if given, receives the
    result (its columns contiguous).

    >>> import numpy as np
    >>> ones = np.ones((1, 10_000), np.float16)
    >>> gemm(ones, ones.T, np.float16).item()   # an fp16 accumulator would stop at 2048
    10000.0
    """
    m = a.shape[0]
    k, n = b.shape
    if out is None:
        out = np.empty((m, n), out_dtype)
    if m == 0 or n == 0:
        return out
    # bf16 x bf16 runs on AMX tiles or pairs unless the packers meet a subnormal: then again
    # in float32
    pairs = _layouts(a.dtype)[0] if a.dtype == b.dtype else False
    if isinstance(b, PackedB):
        if b.depth != _block_depth(k, b.pairs):
            raise ValueError(f"this PackedB has blocks of depth {b.depth}; gemm needs "
                             f"{_block_depth(k, b.pairs)}")
        if b.pairs and not pairs:  # a is not bf16: the float32 path for both
            b = PackedB(b.source, pairs=False)
        pairs = b.pairs
    epilogue = (bias_vector(bias), ACTIVATIONS[activation])
    if m <= SKINNY_M and k and not isinstance(b, PackedB) and (n == 1 or b.strides[1] == b.itemsize):
        threads.parallel(_few_rows_thread, *strided(a), *strided(b), m, n, k,
                         *output_views(out, partial_sums=False), *epilogue,
                         nthreads=thread_count(m * n * k, SERIAL_MAX))
        return out
    count = thread_count(m * n * k, SERIAL_MAX_TILES if pairs == TILES else SERIAL_MAX)
    subnormal = np.zeros(count, np.int64)
    while True:
        if pairs == TILES:  # the threads pack b themselves, if need be, a chunk at a time
            if isinstance(b, PackedB):
                b_args = (*_no_b(b), b.data, False)
            else:
                b_args = (*strided(b), _packed_buffer(k, n, 0, TILES), True)
            # partial sums in cache, not in a float32 buffer beside a half output
            _run_tiles(strided(a), _NO_GEOMETRY, b_args, m, n, k, out, epilogue, subnormal)
        else:
            if not isinstance(b, PackedB) and count > 1 and _slabs_share_b(m, n, pairs):
                # packed once, by all threads, rather than all of it by each thread for its slab
                b = PackedB(b, pairs=pairs)
                pairs = b.pairs
            b_args = (*_no_b(b), b.data) if isinstance(b, PackedB) else (*strided(b), _NO_PANELS)
            rest = (m, n, k, *output_views(out, partial_sums=k > KC), *epilogue)
            threads.parallel(_thread, *strided(a), *b_args, bool(pairs), *rest, subnormal, nthreads=count)
        if not (pairs and met_subnormal(subnormal)):
            return out
        # a subnormal, which vdpbf16ps and AMX would read as zero, stopped the pairs: again in float32
        pairs = False
        if isinstance(b, PackedB):
            b = PackedB(b.source, pairs=False)


# Empty arrays the kernels take for what a call does not have (they never write to them):
_NO_PANELS = np.empty(0, np.float32)  # ``_thread``'s ``packed`` when it packs b itself; no acc
_NO_HALVES = np.empty(0, np.uint16)  # no half output
_NO_BIAS = EMPTY[np.dtype(np.float32)]
_NO_GEOMETRY = EMPTY[np.dtype(np.int64)]  # ``_thread_tiles``' ``geo`` for a product of matrices


def _no_b(b: PackedB) -> tuple[np.ndarray, int, int, int]:
    """The kernels' strided ``b`` when `b` is packed: empty, of the type ``strided`` gives its
    source (one compiled kernel for packed and unpacked ``b``)."""
    return EMPTY[_STORAGE[b.dtype]], 0, 0, 0


def _run_tiles(a_args: tuple, geo: np.ndarray, b_args: tuple, m: int, n: int, k: int, out: np.ndarray,
               epilogue: tuple, subnormal: np.ndarray) -> None:
    """``_thread_tiles`` on ``len(subnormal)`` threads, writing the (M, N) view `out` (its partial
    sums stay in the threads' scratch buffers, so a half `out` needs no float32 one)."""
    work = np.zeros((subnormal.size + 1) * _FLAGS, np.int64)
    threads.parallel(_thread_tiles, *a_args, geo, *b_args, m, n, k, *output_views(out, partial_sums=False),
                     *epilogue, subnormal, amx.CONFIG, work, nthreads=subnormal.size)


def conv_tiles(image: np.ndarray, geo: np.ndarray, weights: PackedB, out: np.ndarray,
               bias: np.ndarray | None, activation: str | None) -> bool:
    """A convolution as the product of its implicit im2col matrix and `weights`, on AMX tiles.

    `image`: the NHWC bf16 batch as ``strided`` gives it, `geo` its ``conv.geometry``;
    `weights` (KH*KW*Cg, filters), packed with ``pairs=TILES``; `out` (N*OH*OW, filters).
    False, and `out` unfinished, if the image holds a bf16 subnormal (AMX reads it as zero).
    """
    k, n = weights.shape
    m = out.shape[0]
    subnormal = np.zeros(thread_count(m * n * k, SERIAL_MAX_TILES), np.int64)
    _run_tiles((image, 0, 0, 0), geo, (*_no_b(weights), weights.data, False), m, n, k, out,
               (bias_vector(bias), ACTIVATIONS[activation]), subnormal)
    return not met_subnormal(subnormal)
