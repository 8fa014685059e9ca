"""The tensor-core GEMM (sm_80+): the SIMT kernel's structure with ``mma.sync`` doing the math.

Numba has no tensor-core API, so ``mma.cu`` (shipped with the package) wraps
``mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}`` in inline PTX and the kernels call it
through ``cuda.declare_device(..., link=...)``; the kernels are built with ``lto=True`` so the
call is inlined. Never imported under the simulator, which cannot run linked CUDA C++.

A block of ``warps_m x warps_n`` warps computes a ``bm x bn`` tile, each warp ``mt x nt``
m16n8 tiles with their float32 accumulators in registers. Operands are read as 16-bit patterns
(float16 and bfloat16 alike) by the same readers as the SIMT kernel, packed in pairs along k and
staged in shared memory as uint32 (rows padded to 20 words: fragment loads hit 32 distinct banks).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import cuda, types

from nbmp.backend.cuda.gemm import block_origin, thread_index

__all__ = ["MmaTile", "WIDE", "NARROW", "PATCH", "BK", "mma_function", "mma_kernel"]

_SIG = types.UniTuple(types.float32, 4)(*[types.uint32] * 6, *[types.float32] * 4)
_SOURCE = str(Path(__file__).with_name("mma.cu"))
_NAMES = {"float16": "nbmp_mma_f16", "bfloat16": "nbmp_mma_bf16"}


@functools.cache
def mma_function(kind):
    """The device function ``mma.cu`` defines for `kind` (``"float16"`` or ``"bfloat16"``)."""
    return cuda.declare_device(_NAMES[kind], _SIG, link=_SOURCE)

#: k-slab per shared-memory stage (two m16n8k16 steps).
BK = 32
_PAIRS = BK // 2
_ROW = _PAIRS + 4  # padded shared row, in uint32 words


class MmaTile(NamedTuple):
    """``warps_m x warps_n`` warps, each computing ``mt x nt`` 16x8 output tiles."""

    warps_m: int
    warps_n: int
    mt: int
    nt: int

    @property
    def bm(self) -> int:
        return self.warps_m * self.mt * 16

    @property
    def bn(self) -> int:
        return self.warps_n * self.nt * 8

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n


WIDE = MmaTile(2, 4, 4, 4)  # 128 x 128, warp tile 64 x 32
NARROW = MmaTile(4, 2, 2, 4)  # 128 x 64, warp tile 32 x 32
#: For conv2d: the im2col reader's index arithmetic is long, and with more than four loads per
#: thread the compiler stops unrolling the fetch loop (its registers would move to local memory).
PATCH = MmaTile(2, 4, 2, 2)  # 64 x 64, warp tile 32 x 16


@functools.cache
def mma_kernel(tile, read_a, read_b, decode_bias, activate, encode, has_bias, a_kfast, b_kfast,
               kind):
    """Tensor-core version of ``gemm.simt_kernel`` (same launch arguments) for `kind` inputs
    (``"float16"`` or ``"bfloat16"``); `read_a` / `read_b` return 16-bit patterns as uint32."""
    mma = mma_function(kind)
    bm, bn, threads, mt, nt = tile.bm, tile.bn, tile.threads, tile.mt, tile.nt
    a_loads = bm * _PAIRS // threads
    b_loads = bn * _PAIRS // threads

    @cuda.jit(device=True, inline="always")
    def fetch(regs, read, x, z, r0, k0, r_size, k_size, loads, width, kfast, geom, a_side):
        for p in range(loads):
            e = thread_index() + p * threads
            r, kp = (e // _PAIRS, e % _PAIRS) if kfast else (e % width, e // width)
            k = k0 + 2 * kp
            if a_side:
                lo = read(x, z, r0 + r, k, r_size, k_size, geom)
                hi = read(x, z, r0 + r, k + 1, r_size, k_size, geom)
            else:
                lo = read(x, z, k, r0 + r, k_size, r_size, geom)
                hi = read(x, z, k + 1, r0 + r, k_size, r_size, geom)
            regs[p] = lo | (hi << np.uint32(16))

    @cuda.jit(device=True, inline="always")
    def stash(smem, regs, loads, width, kfast):
        for p in range(loads):
            e = thread_index() + p * threads
            r, kp = (e // _PAIRS, e % _PAIRS) if kfast else (e % width, e // width)
            smem[r, kp] = regs[p]

    @cuda.jit(lto=True)
    def kernel(a, b, bias, out, m_size, n_size, k_size, geom):
        sa = cuda.shared.array((bm, _ROW), np.uint32)
        sb = cuda.shared.array((bn, _ROW), np.uint32)
        ra = cuda.local.array(a_loads, np.uint32)
        rb = cuda.local.array(b_loads, np.uint32)
        fa = cuda.local.array((mt, 4), np.uint32)
        fb = cuda.local.array((nt, 2), np.uint32)
        c = cuda.local.array((mt, nt, 4), np.float32)
        bv = cuda.local.array((nt, 2), np.float32)
        warp = thread_index() // 32
        g = thread_index() % 32 // 4  # lane = 4 g + t, the fragment layout of mma.m16n8k16
        t = thread_index() % 4
        wm = warp // tile.warps_n * mt * 16
        wn = warp % tile.warps_n * nt * 8
        m0, n0 = block_origin(bm, bn)
        for z in range(cuda.blockIdx.z, out.shape[0], cuda.gridDim.z):
            for i in range(mt):
                for j in range(nt):
                    for q in range(4):
                        c[i, j, q] = 0
            fetch(ra, read_a, a, z, m0, 0, m_size, k_size, a_loads, bm, a_kfast, geom, True)
            fetch(rb, read_b, b, z, n0, 0, n_size, k_size, b_loads, bn, b_kfast, geom, False)
            for k0 in range(0, k_size, BK):
                stash(sa, ra, a_loads, bm, a_kfast)
                stash(sb, rb, b_loads, bn, b_kfast)
                cuda.syncthreads()
                if k0 + BK < k_size:
                    fetch(ra, read_a, a, z, m0, k0 + BK, m_size, k_size, a_loads, bm, a_kfast, geom,
                          True)
                    fetch(rb, read_b, b, z, n0, k0 + BK, n_size, k_size, b_loads, bn, b_kfast, geom,
                          False)
                for step in range(2):
                    kp = step * 8 + t
                    for i in range(mt):
                        r = wm + i * 16 + g
                        fa[i, 0] = sa[r, kp]
                        fa[i, 1] = sa[r + 8, kp]
                        fa[i, 2] = sa[r, kp + 4]
                        fa[i, 3] = sa[r + 8, kp + 4]
                    for j in range(nt):
                        col = wn + j * 8 + g
                        fb[j, 0] = sb[col, kp]
                        fb[j, 1] = sb[col, kp + 4]
                    for i in range(mt):
                        for j in range(nt):
                            d = mma(fa[i, 0], fa[i, 1], fa[i, 2], fa[i, 3], fb[j, 0], fb[j, 1],
                                    c[i, j, 0], c[i, j, 1], c[i, j, 2], c[i, j, 3])
                            for q in range(4):
                                c[i, j, q] = d[q]
                cuda.syncthreads()
            if has_bias:  # a thread's accumulators span 2 nt columns: load their biases once
                for j in range(nt):
                    for h in range(2):
                        n = n0 + wn + j * 8 + 2 * t + h
                        bv[j, h] = decode_bias(bias[z, n]) if n < n_size else 0
            for i in range(mt):
                for j in range(nt):
                    for q in range(4):  # accumulator q holds row g + 8 (q // 2), column 2 t + q % 2
                        m = m0 + wm + i * 16 + g + 8 * (q // 2)
                        n = n0 + wn + j * 8 + 2 * t + q % 2
                        if m < m_size and n < n_size:
                            v = c[i, j, q]
                            if has_bias:
                                v += bv[j, q % 2]
                            out[z, m, n] = encode(activate(v))

    return kernel
