"""2-D convolution: a direct NHWC kernel on ``gemm``'s micro-kernel, packed weights and epilogue.

A convolution of an NHWC image ``x`` with an HWIO kernel is the product of the
im2col matrix of ``x`` (one row per output pixel, one column per tap and input
channel) with the kernel reshaped to ``(KH*KW*C, O)``. That matrix is never
formed. A thread takes a band of output rows, decodes the input rows they read
into a float32 slab with the padding written out as zeros, and runs
``gemm._kernel`` on ``MR`` output pixels x ``NR`` filters, one piece of A per
tap: the ``MR`` rows of a piece are the pixels' channel vectors at that tap,
read from the slab in place, and B is the kernel, packed once per call as
whole-depth micro-panels. The tile sums all taps in registers (no partial sums
in memory) before ``gemm``'s epilogue adds the bias, applies the activation and
rounds once.

This direct kernel replaced an implicit GEMM (``gemm``'s packer copying each
patch row from the image): measured side by side it was as fast (16 input
channels) to 2.9x faster (3, a first layer) at every shape tried, up to 128
channels, strided, pointwise and grouped. Groups run one after the other, each on its channel
slice, writing its columns of the output in place; a depthwise convolution
(one input channel and one filter per group) runs instead as one pass over all
channels with the channels in the vector lanes and the taps as the reduction
(``_depthwise_tile``).

On CPUs with AVX512-BF16, a bf16 convolution with an even number of channels per
group runs on ``gemm._kernel_pairs`` (``vdpbf16ps``): the slab then keeps the
input's bf16 bits as they are, two channels per 32-bit slot, and the weights
are packed as pairs of consecutive channels of a tap. As in ``gemm``, subnormals
are looked for while copying (filling the slab, packing the weights): a group
whose input or weights hold one runs again on the float32 path.

On CPUs with AMX, a bf16 convolution of at least ``TILE_MIN_CHANNELS`` channels a group runs
on tiles instead. A group with a multiple of 32 channels reads them from the slab in place
(``_share_of_conv_tiles``): the slab keeps the
bf16 bits, and a tile of A is 16 pixels of an output row at one tap, 32 channels wide, its
rows ``stride * Cg`` halves apart, which ``tileloadd`` takes as its row stride; every tap and
channel adds up in the tiles, two pixel tiles x 32 filters at a time, and the weights go a
half panel (32 filters, all of k) at a time through a few pairs of pixel tiles (``GROUP``; as
fast as one pair at a time at 64 channels, 5-10% faster at 128, side by side). Measured
side by side with the implicit im2col on tiles (``gemm.conv_tiles``, which packs the rows of
the im2col matrix from the image, and serves the other channel counts): 2.0-2.2x faster at 64
channels, 1.7x at 128, 1.3x at 256 and for a 1 x 1 kernel. Splitting k into blocks that keep
the weights in L1 at 128 and 256 channels was slower (the partial sums then pass through
memory).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nbmp.backend.cpu import amx, gemm, threads, versions
from nbmp.backend.cpu.gemm import (
    _FLAGS,
    _OPTS,
    ACTIVATIONS,
    BAND,
    MR,
    NR,
    SUBNORMAL_KEYS,
    TILE_PAIRS,
    TILES,
    PackedB,
    _bf16_key,
    _copy_run,
    _halves,
    _kernel,
    _kernel_pairs,
    _layouts,
    _line_aligned,
    _pairs_possible,
    _prefetch_b_tiles,
    _share,
    _update,
    bias_vector,
    output_views,
    strided,
    thread_count,
)
from nbmp.backend.cpu.simd import WIDTH, vfma, vload, vstore, vzero
from nbmp.backend.cpu.spin import claim, start_workers
from nbmp.backend.cpu.views import read_only
from nbmp.backend.reference import conv_output_size

__all__ = ["KERNEL_VERSION", "SLAB_BYTES", "conv2d", "geometry"]

#: Numba's cache hashes this file only, but the cached kernels here contain gemm's micro-kernel
#: and epilogue: this names the gemm version they were built with, checked at import.
KERNEL_VERSION = "conv-20/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, gemm.KERNEL_VERSION)

#: Size a thread's float32 input slab aims at (an L2-sized band of rows).
SLAB_BYTES = 1 << 18
#: Fewer channels a group than this, and a bf16 convolution runs on the float32 path rather than
#: on AMX tiles: the tiles' implicit im2col pads each row of k = 3 x 3 x channels to whole tiles
#: (k = 9 to 64: 7x the work). Measured side by side (3 x 3 kernels, batches of 8-32 images of
#: 28-32 pixels square): float32 path 6.3x faster with 1 channel (a first layer), 3.2x with 3,
#: 1.9x with 8, 1.3x with 16; even at 24; tiles 1.4x faster at 48, 3.5x at 96.
TILE_MIN_CHANNELS = 24


def geometry(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], group: int, groups: int,
             strides: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
             dilation: tuple[int, int]) -> np.ndarray:
    """The int64 array the kernels read: image, group slice, kernel and output sizes.

    Order: H, W, C, Cg (channels per group), first channel of the group, KH, KW,
    strides (2), dilations (2), top and left padding, OH, OW, and Wp, the columns
    of a thread's slab (every input column some output pixel reads, padding included).
    """
    _, h, w, c = x_shape
    kh, kw, cg, _ = kernel_shape
    oh = conv_output_size(h, kh, strides[0], dilation[0], padding[0])
    ow = conv_output_size(w, kw, strides[1], dilation[1], padding[1])
    wp = (ow - 1) * strides[1] + (kw - 1) * dilation[1] + 1
    return read_only(np.array([h, w, c, cg, group * cg, kh, kw, *strides, *dilation,
                               padding[0][0], padding[1][0], oh, ow, wp], np.int64))


@njit(inline="always", **_OPTS)
def _fill_slab(x, geo, img, ih0, rows, slab, pairs):
    """``slab[(r*Wp + c)*Cg:][:Cg]`` = the group's channels of input pixel ``(img, ih0 + r, c - left)``.

    As float32, zeros where the pixel lies in the padding. `pairs`: the bf16 bits
    instead, two channels per float32 slot (pixel ``(r, c)`` from slot ``(r*Wp + c)*Cg/2``),
    and returns whether one of them is a subnormal (else False).
    """
    h, w, ch, cg, coff, pl, wp = geo[0], geo[1], geo[2], geo[3], geo[4], geo[12], geo[15]
    bits, slab16 = _halves(x), slab.view(np.int16)
    least = np.uint16(0xFFFF)
    if pairs:  # even channel counts and offsets: pairs of halves copied as 32-bit words
        words = bits.view(np.float32)
    for r in range(rows):
        ih = ih0 + r
        for c in range(wp):
            iw = c - pl
            src = ((img * h + ih) * w + iw) * ch + coff
            inside = 0 <= ih < h and 0 <= iw < w
            d = (r * wp + c) * cg  # in halves when pairs, else in floats
            if pairs and inside:  # in vectors (slice copies measured 2.7x slower)
                e = 0
                while e + 2 * WIDTH <= cg:
                    vstore(slab, (d + e) // 2, vload(words, (src + e) // 2))
                    e += 2 * WIDTH
                for t in range(e, cg):
                    slab16[d + t] = bits[src + t]
                for t in range(cg):  # unsigned index: no wrap-around test, so LLVM vectorises
                    least = min(least, _bf16_key(bits[np.uint64(src + t)]))
            elif pairs:
                slab16[d:d + cg] = 0
            elif inside:
                _copy_run(x, src, cg, slab, d)
            else:
                slab[d:d + cg] = 0
    return least < SUBNORMAL_KEYS


@njit(inline="always", **_OPTS)
def _tap_offsets(geo, unit):
    """Where each tap's channels start in a slab (``_fill_slab``'s layout, ``Wp`` pixels a
    row, `unit` slots a pixel), counted from the pixel the output's window starts at."""
    kh_, kw_, dh, dw, wp = geo[5], geo[6], geo[9], geo[10], geo[15]
    taps = np.empty(kh_ * kw_, np.int64)
    for kh in range(kh_):
        for kw in range(kw_):
            taps[kh * kw_ + kw] = (kh * dh * wp + kw * dw) * unit
    return taps


@njit(inline="always", **_OPTS)
def _depthwise_tile(slab, pix, at0, geo, wp, bp, bo, tile):
    """``tile[r, :]`` = sum over taps of pixel ``r``'s NR channels from ``at0`` times their weights.

    The depthwise product: each channel meets only its own filter, so channels
    are the vector lanes and taps the reduction (``bp`` rows of NR weights, one
    per tap).
    """
    cg, kh_, kw_, dh, dw = geo[3], geo[5], geo[6], geo[9], geo[10]
    for r in range(MR):
        v = vzero(NR)
        b = bo
        for kh in range(kh_):
            for kw in range(kw_):
                a = pix[r] + (kh * dh * wp + kw * dw) * cg + at0
                v = vfma(vload(slab, a, NR), vload(bp, b, NR), v)
                b += NR
        vstore(tile, r * NR, v)


@njit(inline="always", **_OPTS)
def _take_rows(th, nthreads, rows, band, work, turn):
    """``(lo, hi, turn)``: the next run of output rows (``lo:hi``, at most `band`) that thread
    `th` computes, or ``lo == hi`` when none is left.

    The ``rows`` are shared out as ``_share`` says, and each share cut into runs of `band`.
    A thread takes the runs of its own share first, then those the others have not taken
    yet (``claim`` on ``work[v * _FLAGS]``, share ``v``'s next run; `turn` counts the shares
    it has emptied, 0 at first), so that one slowed down (another program on its core, or a
    late start) computes fewer of them rather than all waiting for it.
    """
    while turn < nthreads:
        v = (th + turn) % nthreads
        lo, hi = _share(v, nthreads, rows)
        start = lo + claim(work, v * _FLAGS) * band
        if start < hi:
            return start, min(start + band, hi), turn
        turn += 1
    return 0, 0, turn


@njit(**_OPTS)
def _share_of_conv(th, nthreads, go, x, geo, n, band, depthwise, pairs, bp, filters, acc, out16, out_kind,
                   ldc, bias, act, subnormal, work):
    """Thread ``th``'s share of a direct convolution: its output rows, ``band`` rows at a time.

    ``bp`` holds the weights as whole-depth micro-panels (``PackedB(.., depth=K)``);
    output pixel ``i`` (flat over N, OH, OW) is row ``i`` of the ``_update`` targets.
    ``depthwise``: filter ``c`` sees channel ``c`` only (``geo`` then takes all
    channels as one group and ``bp`` is the (KH*KW, C) kernel). ``pairs``: bf16 on
    ``_kernel_pairs``, ``bp`` packed as pairs (``PackedB(.., pairs=True)``); a bf16
    subnormal in the input stops the share with ``subnormal[th] = 1``. Runs of ``band`` rows
    are taken as ``_take_rows`` says.
    """
    start_workers(go)
    cg, kh_, kw_ = geo[3], geo[5], geo[6]
    sh, sw, dh, pt, oh_, ow_ = geo[7], geo[8], geo[9], geo[11], geo[13], geo[14]
    k = kh_ * kw_ if depthwise else kh_ * kw_ * cg
    wp = geo[15]
    unit = cg // 2 if pairs else cg  # float32 slots of one pixel's channels in the slab
    # NR floats of slack: a depthwise tile's last lanes may read past the last channel
    slab = _line_aligned(((band - 1) * sh + (kh_ - 1) * dh + 1) * wp * unit + NR)
    slab[:] = 0
    tile = _line_aligned(MR * NR)
    pix = np.empty(MR, np.int64)
    taps = _tap_offsets(geo, unit)
    u, hi, turn = _take_rows(th, nthreads, n * oh_, band, work, 0)
    while u < hi:  # output rows u .. u+rows of one image
        img, oh0 = u // oh_, u % oh_
        rows = min(band, oh_ - oh0, hi - u)
        if _fill_slab(x, geo, img, oh0 * sh - pt, (rows - 1) * sh + (kh_ - 1) * dh + 1, slab, pairs):
            subnormal[th] = 1
            return
        pixels = rows * ow_
        first = u * ow_
        for q in range(0, pixels, MR):
            mr = min(MR, pixels - q)
            for r in range(MR):  # rows past the band repeat its last pixel
                p = min(q + r, pixels - 1)
                pix[r] = (p // ow_ * sh * wp + p % ow_ * sw) * unit
            for j in range(0, filters, NR):
                if depthwise:
                    _depthwise_tile(slab, pix, j, geo, wp, bp, j * k, tile)
                else:  # all taps in registers: one kernel call, one piece of A per tap
                    a_rows = (pix[0], pix[1], pix[2], pix[3], pix[4], pix[5])
                    if pairs:  # panels of k/2 slots
                        _kernel_pairs(unit, slab, a_rows, taps, bp, j * k // 2, tile, 0, NR, False)
                    else:
                        _kernel(cg, slab, a_rows, taps, bp, j * k, tile, 0, NR, False)
                _update(tile, acc, False, out16, out_kind, first + q, j, mr, min(NR, filters - j),
                        ldc, bias, act)
        u += rows
        if u == hi:
            u, hi, turn = _take_rows(th, nthreads, n * oh_, band, work, turn)


#: Output pixels (of one row) in an AMX tile: its 16 rows.
TILE_PIXELS = BAND // 2


@njit(inline="always", **_OPTS)
def _kernel_conv_tiles(slab16, a0, a1, stride, taps, cg, b16, bo, tile, to):
    """32 sums of two pixel tiles over all taps and channels, on AMX tiles, to ``tile[to:]``.

    Rows 0-15 of the result are the pixels whose channels start at ``slab16[a0 + taps[t]]``
    for tap ``t`` and lie `stride` bytes apart, rows 16-31 those from ``a1``: pixels of the
    slab read in place as the rows of A, 32 channels a tile. B: 32 columns of a whole-depth
    panel, from slot ``bo`` of ``b16`` on (k = tap * Cg + channel, as pairs). Rows of ``tile``
    are NR floats apart. Tiles 0-3 hold the sums, 4-5 the pixels, 6-7 the weights.
    """
    amx.zero(0); amx.zero(1); amx.zero(2); amx.zero(3)  # noqa: E702
    q = 2 * bo  # in halves: the panel's rows of pairs are 2 * NR halves long
    for t in range(taps.size):
        p0, p1 = a0 + taps[t], a1 + taps[t]
        for c in range(0, cg, 2 * TILE_PAIRS):
            if t + 1 < taps.size or c + 2 * TILE_PAIRS < cg:  # the next step's weights into L1
                _prefetch_b_tiles(b16, q + 2 * TILE_PAIRS * NR)
            amx.load(4, slab16, p0 + c, stride)
            amx.load(6, b16, q, 4 * NR)
            amx.load(7, b16, q + 2 * TILE_PAIRS, 4 * NR)
            amx.dot_bf16(0, 4, 6)
            amx.load(5, slab16, p1 + c, stride)
            amx.dot_bf16(1, 4, 7); amx.dot_bf16(2, 5, 6); amx.dot_bf16(3, 5, 7)  # noqa: E702
            q += 2 * TILE_PAIRS * NR
    amx.store(0, tile, to, 4 * NR); amx.store(1, tile, to + 16, 4 * NR)  # noqa: E702
    amx.store(2, tile, to + 16 * NR, 4 * NR); amx.store(3, tile, to + 16 * NR + 16, 4 * NR)  # noqa: E702


#: Pairs of pixel tiles that ``_share_of_conv_tiles`` takes through a half panel of weights
#: before the next half, so that the half (36 KiB at 3 x 3 x 64 channels) is read from L1.
GROUP = 4


@njit(**_OPTS)
def _share_of_conv_tiles(th, nthreads, go, x, geo, n, band, group, bp, filters, acc, out16, out_kind, ldc,
                         bias, act, subnormal, config, work):
    """``_share_of_conv`` for bf16 on AMX tiles, for groups of a multiple of 32 channels.

    The slab (``_fill_slab``, bf16 bits) is read in place as A: a tile is 16 pixels of an
    output row (``TILE_PIXELS``), those past the row's end computed and dropped; ``bp`` holds the
    weights as whole-depth panels in the tile layout (``PackedB(.., depth=K, pairs=TILES)``).
    All taps and channels add up in the tiles (``_kernel_conv_tiles``), 32 filters at a time
    for `group` pairs of pixel tiles (``GROUP``), then ``_update`` finishes each pixel tile. `config` is
    ``amx.CONFIG``; a bf16 subnormal in the input stops the share with ``subnormal[th] = 1``.
    """
    start_workers(go)
    cg, kh_, kw_ = geo[3], geo[5], geo[6]
    sh, sw, dh, pt, oh_, ow_, wp = geo[7], geo[8], geo[9], geo[11], geo[13], geo[14], geo[15]
    pixels = ((band - 1) * sh + (kh_ - 1) * dh + 1) * wp
    slab = _line_aligned((pixels + (TILE_PIXELS - 1) * sw) * cg // 2)  # a row's last tile reads past
    slab[:] = 0
    slab16, b16 = slab.view(np.int16), bp.view(np.int16)
    tiles = _line_aligned(group * BAND * NR)
    taps = _tap_offsets(geo, cg)  # in halves
    panel = kh_ * kw_ * cg // 2 * NR  # slots of a whole-depth panel
    across = -(-ow_ // TILE_PIXELS)  # pixel tiles in an output row
    u, hi, turn = _take_rows(th, nthreads, n * oh_, band, work, 0)
    amx.configure(config)
    while u < hi:  # output rows u .. u+rows of one image
        img, oh0 = u // oh_, u % oh_
        rows = min(band, oh_ - oh0, hi - u)
        if _fill_slab(x, geo, img, oh0 * sh - pt, (rows - 1) * sh + (kh_ - 1) * dh + 1, slab, True):
            subnormal[th] = 1
            amx.release()
            return
        count = rows * across
        for e0 in range(0, count, 2 * group):  # pixel tiles e0 .. e1, two at a time
            e1 = min(e0 + 2 * group, count)
            for j in range(0, filters, NR):
                nr = min(NR, filters - j)
                for half in range(0, nr, 2 * TILE_PAIRS):
                    for e in range(e0, e1, 2):  # an odd last tile is computed twice
                        r0, x0 = divmod(e, across)
                        r1, x1 = divmod(min(e + 1, e1 - 1), across)
                        a0 = (r0 * sh * wp + x0 * TILE_PIXELS * sw) * cg
                        a1 = (r1 * sh * wp + x1 * TILE_PIXELS * sw) * cg
                        _kernel_conv_tiles(slab16, a0, a1, 2 * sw * cg, taps, cg, b16, j // NR * panel + half,
                                           tiles, (e - e0) // 2 * BAND * NR + half)
                for e in range(e0, e1):
                    r, x_ = divmod(e, across)
                    x_ *= TILE_PIXELS
                    first = (u + r) * ow_ + x_  # output row of the tile's first pixel
                    _update(tiles[(e - e0) * TILE_PIXELS * NR:], acc, False, out16, out_kind, first, j,
                            min(TILE_PIXELS, ow_ - x_), nr, ldc, bias, act)
        u += rows
        if u == hi:
            u, hi, turn = _take_rows(th, nthreads, n * oh_, band, work, turn)
    amx.release()


def _conv_group(image: np.ndarray, geo: np.ndarray, n: int, weights: np.ndarray, out: np.ndarray,
                bias: np.ndarray | None, activation: str | None, depthwise: bool = False,
                bf16_pairs: bool = False, bf16_tiles: bool = False) -> None:
    """``out`` (N*OH*OW, filters of the group) = the group's convolution, by ``_share_of_conv``.

    `depthwise`: `geo` covers all channels, `weights` is (KH*KW, C), filter ``c`` reads channel ``c``.
    `bf16_pairs`: `image` (bf16 bits) and `weights` may be multiplied as pairs (unless they
    hold subnormals: then the group runs again in float32); `bf16_tiles`: on AMX tiles instead,
    with the same fallback: read from the slab in place (``_share_of_conv_tiles``) when the
    group has whole tiles of channels (a multiple of 32), else as a product of matrices
    (``gemm.conv_tiles``).
    """
    k, filters = weights.shape
    cg, kh, sh, dh, wp = (int(geo[i]) for i in (3, 5, 7, 9, 15))
    direct_tiles = bf16_tiles and not depthwise and cg > 0 and cg % (2 * TILE_PAIRS) == 0
    if bf16_tiles and not depthwise and not direct_tiles:  # implicit im2col on AMX
        packed = PackedB(weights, pairs=TILES)
        if packed.pairs == TILES and gemm.conv_tiles(image, geo, packed, out, bias, activation):
            return
        bf16_pairs = False
    pairs = TILES if direct_tiles else bf16_pairs and not depthwise and cg % 2 == 0  # two channels a slot
    packed = PackedB(weights, depth=k, pairs=pairs)  # pairs unless a subnormal is met
    acc, out16, out_kind, ldc = output_views(out, partial_sums=False)
    serial_max = gemm.SERIAL_MAX_TILES if direct_tiles else gemm.SERIAL_MAX
    count = thread_count(out.shape[0] * filters * k, serial_max)
    subnormal = np.zeros(count, np.int64)
    epilogue = (acc, out16, out_kind, ldc, bias_vector(bias), ACTIVATIONS[activation], subnormal)
    while True:
        slab_row_bytes = 4 * wp * (cg // 2 if packed.pairs else cg)  # one input row, as _fill_slab lays it
        band = max(1, (SLAB_BYTES // max(slab_row_bytes, 1) - (kh - 1) * dh - 1) // sh + 1)
        work = np.zeros(count * _FLAGS, np.int64)  # each share's next run of rows
        if packed.pairs == TILES:
            threads.parallel(_share_of_conv_tiles, image, geo, n, band, GROUP, packed.data, filters,
                             *epilogue, amx.CONFIG, work, nthreads=count)
        else:
            threads.parallel(_share_of_conv, image, geo, n, band, depthwise, packed.pairs, packed.data,
                             filters, *epilogue, work, nthreads=count)
        if not (packed.pairs and gemm.met_subnormal(subnormal)):
            return
        packed = PackedB(weights, depth=k, pairs=False)  # a subnormal in the image: float32


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
           strides: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
           dilation: tuple[int, int], groups: int, activation: str | None,
           out_dtype) -> np.ndarray:
    """NHWC `x` convolved with HWIO `kernel`, float32 accumulation, rounded once to `out_dtype`.

    Inputs are float32, float16 or bfloat16 (the same dtype); `bias` is float32 or None.
    """
    n = x.shape[0]
    kh, kw, cg, filters = kernel.shape
    fg = filters // groups
    geo = geometry(x.shape, kernel.shape, 0, groups, strides, padding, dilation)
    oh, ow = int(geo[13]), int(geo[14])
    out = np.empty((n, oh, ow, filters), out_dtype)
    if out.size == 0:
        return out
    image, _, _, _ = strided(np.ascontiguousarray(x).reshape(1, -1))
    rows = out.reshape(n * oh * ow, filters)
    if groups > 1 and cg == 1 and fg == 1:  # depthwise: all channels at once, channels in the lanes
        geo = geometry(x.shape, (kh, kw, groups, groups), 0, 1, strides, padding, dilation)
        _conv_group(image, geo, n, kernel.reshape(kh * kw, groups), rows, bias, activation, depthwise=True)
        return out
    bf16_pairs = _pairs_possible(x.dtype) and _pairs_possible(kernel.dtype)
    bf16_tiles = x.dtype == kernel.dtype and TILES in _layouts(x.dtype) and cg >= TILE_MIN_CHANNELS
    for g in range(groups):
        weights = kernel[..., g * fg:(g + 1) * fg].reshape(kh * kw * cg, fg)
        geo = geometry(x.shape, kernel.shape, g, groups, strides, padding, dilation)
        group_bias = None if bias is None else bias[g * fg:(g + 1) * fg]
        _conv_group(image, geo, n, weights, rows[:, g * fg:(g + 1) * fg], group_bias, activation,
                    bf16_pairs=bf16_pairs, bf16_tiles=bf16_tiles)
    return out
