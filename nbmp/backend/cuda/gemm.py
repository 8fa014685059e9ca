"""The portable GEMM: a tiled shared-memory SIMT kernel with register blocking.

One block computes a ``bm x bn`` tile of ``out[z] = epilogue(A[z] @ B[z])``; each thread owns a
``tm x tn`` register tile whose rows and columns are interleaved (``row = ty + i * bm / tm``) so
that shared-memory reads are conflict-free and the final stores coalesce. A and B tiles are
decoded to the accumulation dtype while staged in shared memory (numba-cuda cannot keep bfloat16
there), and the next k-slab is fetched into registers while the current one is multiplied.

Operands come through *readers*: device functions ``read(array, z, row, col, rows, cols, geom)``
returning the decoded element or zero outside the matrix. ``matrix_reader`` reads a strided 3-D
array; ``patch_reader`` gathers the im2col patch of an NHWC image on the fly, which turns conv2d
into an implicit GEMM.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import cuda

__all__ = ["Tile", "LARGE", "SMALL", "thread_index", "block_origin", "matrix_reader", "patch_reader",
           "simt_kernel"]


class Tile(NamedTuple):
    """Block tile ``bm x bn``, k-slab ``bk``, per-thread register tile ``tm x tn``."""

    bm: int
    bn: int
    bk: int
    tm: int
    tn: int

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)


LARGE = Tile(128, 128, 8, 8, 8)
SMALL = Tile(64, 64, 8, 4, 4)

#: Shared-memory row padding (words): k-fast tile stores land in different banks.
PAD = 4


@cuda.jit(device=True)
def thread_index():
    """``threadIdx.x``, masked to its range [0, 1024): the compiler then knows that indices built
    from it are non-negative and drops Numba's negative-index wraparound code and its registers."""
    return cuda.threadIdx.x & 1023


@cuda.jit(device=True)
def block_origin(bm, bn):
    """The first output row and column of this block's tile (non-negative, as above)."""
    return (cuda.blockIdx.x & 0x7FFFFFFF) * bm, (cuda.blockIdx.y & 0xFFFF) * bn


@functools.cache
def matrix_reader(decode, acc):
    """Reader of element ``[z, r, c]`` of a strided 3-D array, zero outside ``rows x cols``."""
    zero = np.dtype(acc).type(0)

    @cuda.jit(device=True)
    def read(a, z, r, c, rows, cols, geom):
        if 0 <= r < rows and 0 <= c < cols:
            return decode(a[z, r, c])
        return zero

    return read


@functools.cache
def patch_reader(decode, acc):
    """Reader of the implicit im2col matrix of NHWC `x` for group `z`.

    Row ``m`` is the output pixel ``(n, oh, ow)``, column ``k`` the tap ``(kh, kw, c)`` (HWIO
    order); `geom` is ``(oh, ow, kw, c_per_group, sh, sw, ph, pw, dh, dw)``. Padding reads zero.
    """
    zero = np.dtype(acc).type(0)

    @cuda.jit(device=True)
    def read(x, z, m, k, rows, cols, geom):
        if 0 <= m < rows and 0 <= k < cols:
            oh_size, ow_size, kw_size, cg, sh, sw, ph, pw, dh, dw = geom
            ow = m % ow_size
            t = m // ow_size
            oh = t % oh_size
            n = t // oh_size
            c = k % cg
            t = k // cg
            kw = t % kw_size
            kh = t // kw_size
            ih = oh * sh - ph + kh * dh
            iw = ow * sw - pw + kw * dw
            if 0 <= ih < x.shape[1] and 0 <= iw < x.shape[2]:
                return decode(x[n, ih, iw, z * cg + c])
        return zero

    return read


@functools.cache
def simt_kernel(tile, read_a, read_b, decode_bias, activate, encode, acc, has_bias, a_kfast,
                b_kfast):
    """``out[z, m, n] = encode(activate(sum_k A[z, m, k] B[z, k, n] + bias[z, n]))``.

    Launch with ``grid = (ceil(M / bm), ceil(N / bn), batches)``, ``block = tile.threads`` and
    arguments ``(a, b, bias, out, m_size, n_size, k_size, geom)``. `bias` is a ``(Z, N)`` array,
    ignored unless `has_bias`. `a_kfast` / `b_kfast` say whether consecutive k are the operand's
    contiguous direction: they pick the coalesced fetch order at compile time.
    """
    bm, bn, bk, tm, tn = tile
    threads = tile.threads
    tx_n = bn // tn  # threads along n; row i of a thread's tile is ty + i * ty_n
    ty_n = bm // tm
    a_loads = bm * bk // threads
    b_loads = bk * bn // threads
    a_shape, b_shape = (bk, bm + PAD), (bk, bn + PAD)
    acc = np.dtype(acc).type

    @cuda.jit(device=True, inline="always")
    def fetch(regs, read, x, z, r0, k0, r_size, k_size, loads, width, kfast, geom, a_side):
        """This thread's share of the slab of rows (A) or columns (B) ``r0:r0+width``, depth ``k0:k0+bk``."""
        for p in range(loads):
            e = thread_index() + p * threads
            r, kk = (e // bk, e % bk) if kfast else (e % width, e // width)
            if a_side:
                regs[p] = read(x, z, r0 + r, k0 + kk, r_size, k_size, geom)
            else:
                regs[p] = read(x, z, k0 + kk, r0 + r, k_size, r_size, geom)

    @cuda.jit(device=True, inline="always")
    def stash(smem, regs, loads, width, kfast):
        for p in range(loads):
            e = thread_index() + p * threads
            r, kk = (e // bk, e % bk) if kfast else (e % width, e // width)
            smem[kk, r] = regs[p]

    @cuda.jit
    def kernel(a, b, bias, out, m_size, n_size, k_size, geom):
        sa = cuda.shared.array(a_shape, acc)
        sb = cuda.shared.array(b_shape, acc)
        ra = cuda.local.array(a_loads, acc)
        rb = cuda.local.array(b_loads, acc)
        fa = cuda.local.array(tm, acc)
        fb = cuda.local.array(tn, acc)
        c = cuda.local.array((tm, tn), acc)
        ty = thread_index() // tx_n
        tx = thread_index() % tx_n
        m0, n0 = block_origin(bm, bn)
        for z in range(cuda.blockIdx.z, out.shape[0], cuda.gridDim.z):
            for i in range(tm):
                for j in range(tn):
                    c[i, j] = 0
            fetch(ra, read_a, a, z, m0, 0, m_size, k_size, a_loads, bm, a_kfast, geom, True)
            fetch(rb, read_b, b, z, n0, 0, n_size, k_size, b_loads, bn, b_kfast, geom, False)
            for k0 in range(0, k_size, bk):
                stash(sa, ra, a_loads, bm, a_kfast)
                stash(sb, rb, b_loads, bn, b_kfast)
                cuda.syncthreads()
                if k0 + bk < k_size:  # the next slab's global loads overlap this slab's FMAs
                    fetch(ra, read_a, a, z, m0, k0 + bk, m_size, k_size, a_loads, bm, a_kfast, geom, True)
                    fetch(rb, read_b, b, z, n0, k0 + bk, n_size, k_size, b_loads, bn, b_kfast, geom, False)
                for kk in range(bk):
                    for i in range(tm):
                        fa[i] = sa[kk, ty + i * ty_n]
                    for j in range(tn):
                        fb[j] = sb[kk, tx + j * tx_n]
                    for i in range(tm):
                        for j in range(tn):
                            c[i, j] += fa[i] * fb[j]
                cuda.syncthreads()
            for i in range(tm):
                m = m0 + ty + i * ty_n
                if m < m_size:
                    for j in range(tn):
                        n = n0 + tx + j * tx_n
                        if n < n_size:
                            v = c[i, j]
                            if has_bias:
                                v += decode_bias(bias[z, n])
                            out[z, m, n] = encode(activate(v))

    return kernel
