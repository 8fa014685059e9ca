"""2-D max and average pooling of NHWC arrays: one pass over the input, 16-bit values decoded in
registers.

For each output pixel the kernel walks its window (clipped to the image: "same" padding is
never read, as in TensorFlow), WIDTH channels at a time in one float32 vector register
(maxima with ``vmax``, which propagates NaN; sums with ``vadd``, then divided by the count), the
last ``channels % WIDTH`` one by one, and rounds the results from there: a maximum is one of the
inputs, so exact; a mean is the float32 quotient ``sum / count`` (as ``ops.mean``'s: the sum
times a float32 ``1 / count`` rounded twice, and could then round to the other side of a half
tie), rounded once to the output dtype.
Rows of the output are shared among the threads for large inputs; float64 input is left to
``reference.pool2d``. (nbmp's path before this kernel, NumPy's maxima and sums over windows of
a float32 copy made by the cast kernel, ran 2.5-6x slower for maxima and 7-12x for means on
the 2-core machine measured; ``reference.pool2d`` on NumPy's own ``astype`` copy is slower still.)

>>> import numpy as np
>>> x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
>>> pool2d(x, "max", (2, 2), (2, 2), ((0, 0), (0, 0)))[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float16)
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from nbmp import dtypes
from nbmp.backend import reference
from nbmp.backend.cpu import gemm, threads, versions
from nbmp.backend.cpu.gemm import _to_f32, _vload_f32
from nbmp.backend.cpu.halfbits import HARDWARE_F16, f32_to_bf16, f32_to_f16
from nbmp.backend.cpu.simd import (
    WIDTH,
    vadd,
    vbroadcast,
    vdiv,
    vmax,
    vstore,
    vstore_bf16,
    vstore_f16,
)
from nbmp.backend.cpu.spin import start_workers
from nbmp.backend.cpu.views import read_only

__all__ = ["KERNEL_VERSION", "PARALLEL_MIN", "pool2d"]

#: The versions of the modules the cached kernels inline (gemm's decoders, and through gemm's
#: string simd, halfbits and spin), checked at import (see ``versions``).
KERNEL_VERSION = "pool-5/gemm-32/vmath-5/simd-9/halfbits-1/spin-3/amx-1"
versions.require(__name__, KERNEL_VERSION, gemm.KERNEL_VERSION)

#: Inputs of this many elements or more are pooled on all threads. Measured on the 2-core
#: virtual machine (bf16, 2x2 windows), two threads against one: 0.75x at 100K elements, 1.28x
#: at 346K, 1.74x at 692K, 1.54x at 6.4M (memory-bound there).
PARALLEL_MIN = 1 << 18

KINDS = ("max", "avg")

_STORAGE = dtypes.DTypeTable({  # NumPy dtype -> the view the kernel reads
    "float16": np.dtype(np.uint16),
    "bfloat16": np.dtype(np.int16),
    "float32": np.dtype(np.float32),
})


def _narrow(v, out):
    """Float `v` as an element of storage view `out` (jit only)."""
    raise NotImplementedError


@overload(_narrow, inline="always")
def _ov_narrow(v, out):
    if out.dtype == types.uint16:
        return lambda v, out: f32_to_f16(v)
    if out.dtype == types.int16:
        return lambda v, out: np.int16(f32_to_bf16(v))
    if out.dtype == types.float32:
        return lambda v, out: v
    return None


def _vstore_narrow(out, i, v, row, c):
    """Round vector `v` to ``out``'s format and store it to ``out[i:i+WIDTH]`` (jit only); where
    the CPU has no F16C, fp16 goes through ``row[c:c+WIDTH]`` one value at a time."""
    raise NotImplementedError


@overload(_vstore_narrow, inline="always")
def _ov_vstore_narrow(out, i, v, row, c):
    if out.dtype == types.float32:
        return lambda out, i, v, row, c: vstore(out, i, v)
    if out.dtype == types.int16:
        return lambda out, i, v, row, c: vstore_bf16(out, i, v)
    if out.dtype == types.uint16 and HARDWARE_F16:
        return lambda out, i, v, row, c: vstore_f16(out, i, v)

    def one_by_one(out, i, v, row, c):
        vstore(row, c, v)
        for t in range(WIDTH):
            out[i + t] = f32_to_f16(row[c + t])

    return one_by_one


@njit(cache=True, error_model="numpy", nogil=True)
def _pool_share(th, nthreads, go, x, out, scratch, shape, geometry, counts):
    """Thread ``th``'s share of the output rows.

    `x` and `out` are flat NHWC storage of `shape` (batch, height, width, channels, output
    height, output width); ``geometry`` is (pool height, pool width, stride height, stride
    width, top pad, left pad). `counts` is empty for maxima; for means, ``counts[k] = k`` for
    every count of pixels a window can hold, the sums' divisor (a division, not a product with
    ``1 / k``, which rounds twice: the mean is one rounding of the float32 quotient, as
    ``ops.mean``'s).
    A pixel's channels go WIDTH at a time in a register, rounded from there, the last
    ``channels % WIDTH`` one by one; ``scratch`` row ``th`` is a thread's float32 buffer for
    fp16 on CPUs without F16C.
    """
    start_workers(go)
    batch, height, width, channels, out_h, out_w = shape
    ph, pw, sh, sw, top, left = geometry
    average = counts.size > 0
    row = scratch[th]
    rows = batch * out_h
    for r in range(th * rows // nthreads, (th + 1) * rows // nthreads):
        n, i = r // out_h, r % out_h
        i_lo, i_hi = max(i * sh - top, 0), min(i * sh - top + ph, height)
        for j in range(out_w):
            j_lo, j_hi = max(j * sw - left, 0), min(j * sw - left + pw, width)
            first = ((n * height + i_lo) * width + j_lo) * channels
            to = (r * out_w + j) * channels
            k = (i_hi - i_lo) * (j_hi - j_lo)  # the window's pixels
            c = 0
            while c + WIDTH <= channels:
                v = _vload_f32(x, first + c)
                for a in range(i_lo, i_hi):
                    for b in range(j_lo, j_hi):
                        at = ((n * height + a) * width + b) * channels
                        if at != first:
                            w = _vload_f32(x, at + c)
                            v = vadd(v, w) if average else vmax(v, w)
                if average:
                    v = vdiv(v, vbroadcast(counts, k))
                _vstore_narrow(out, to + c, v, row, c)
                c += WIDTH
            for t in range(c, channels):
                v1 = _to_f32(x[first + t])
                for a in range(i_lo, i_hi):
                    for b in range(j_lo, j_hi):
                        at = ((n * height + a) * width + b) * channels
                        if at != first:
                            w1 = _to_f32(x[at + t])
                            if average:
                                v1 += w1
                            elif w1 > v1 or w1 != w1:  # NaN wins
                                v1 = w1
                            elif w1 == 0 and v1 == 0:  # +0.0 above -0.0, as vmax has it
                                v1 += w1
                out[to + t] = _narrow(v1 / counts[k] if average else v1, out)


def pool2d(x: np.ndarray, kind: str, pool: tuple[int, int], strides: tuple[int, int],
           pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """``kind`` ("max" or "avg") pooling of NHWC `x` (float16, bfloat16, float32 or float64).

    `pads` are the (before, after) paddings of height and width ("same" padding); padded
    positions are not read, so an average counts only the window's pixels in the image.
    """
    if kind not in KINDS:
        raise ValueError(f"pool2d: kind must be one of {KINDS}. Received: kind={kind!r}")
    if not all(0 <= p < k for p, k in zip((*pads[0], *pads[1]), (pool[0], pool[0], pool[1], pool[1]))):
        raise ValueError(f"pool2d: each padding must be below the pool size, so that every window "
                         f"holds a pixel of the image. Received: pads={pads}, pool={pool}")
    if x.dtype == np.float64:  # the oracle's dtype: NumPy's reductions do it
        return reference.pool2d(x, kind, pool, strides, pads)
    if x.dtype not in _STORAGE:
        raise TypeError(f"pool2d: unsupported dtype. Valid: float16, bfloat16, float32, float64. "
                        f"Received: {x.dtype}")
    view = _STORAGE[x.dtype]
    sizes = [reference.pool_output_size(x.shape[1 + a], pool[a], strides[a], pads[a]) for a in (0, 1)]
    out = np.empty((x.shape[0], *sizes, x.shape[3]), x.dtype)
    if out.size == 0:
        return out
    count = threads.get_num_threads() if x.size >= PARALLEL_MIN else 1
    bits = read_only(np.ascontiguousarray(x).view(view))
    geometry = np.array([*pool, *strides, pads[0][0], pads[1][0]], np.int64)
    shape = np.array([*x.shape, *sizes], np.int64)
    scratch = np.empty((count, x.shape[3] if view == np.uint16 and not HARDWARE_F16 else 0), np.float32)
    counts = np.arange(pool[0] * pool[1] + 1, dtype=np.float32)
    threads.parallel(_pool_share, bits.reshape(-1), out.view(view).reshape(-1), scratch, shape, geometry,
                     counts if kind == "avg" else counts[:0], nthreads=count)
    return out

