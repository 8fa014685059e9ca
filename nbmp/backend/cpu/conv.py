"""2-D convolution as an implicit GEMM on the ``gemm`` machinery.

A convolution of an NHWC image ``x`` with an HWIO kernel is the product of the
im2col matrix of ``x`` (one row per output pixel, one column per tap and input
channel) with the kernel reshaped to ``(KH*KW*C, O)``. The patch matrix is
never formed: ``gemm``'s packer reads each row's taps straight from the image
(``gemm._copy_patch_row``), channels of a tap being one contiguous run, and
writes zeros for taps in the padding. Everything else (register tile, cache
blocking, threads, fused bias and activation, the single rounding) is
``gemm``'s. Groups run one after the other, each a GEMM on its channel slice,
writing its columns of the output in place.
"""

from __future__ import annotations

import numpy as np

from nbmp.backend.cpu.gemm import PATCHES, run, strided
from nbmp.backend.reference import conv_output_size

__all__ = ["conv2d", "geometry"]


def geometry(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], group: int, groups: int,
             strides: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
             dilation: tuple[int, int]) -> np.ndarray:
    """The int64 array the patch packer reads: image, group slice, kernel and output sizes.

    Order: H, W, C, Cg (channels per group), first channel of the group, KH, KW,
    strides (2), dilations (2), top and left padding, OH, OW.
    """
    _, h, w, c = x_shape
    kh, kw, cg, _ = kernel_shape
    oh = conv_output_size(h, kh, strides[0], dilation[0], padding[0])
    ow = conv_output_size(w, kw, strides[1], dilation[1], padding[1])
    return np.array([h, w, c, cg, group * cg, kh, kw, *strides, *dilation,
                     padding[0][0], padding[1][0], oh, ow], np.int64)


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
    for g in range(groups):
        weights = kernel[..., g * fg:(g + 1) * fg].reshape(kh * kw * cg, fg)
        geo = geometry(x.shape, kernel.shape, g, groups, strides, padding, dilation)
        group_bias = None if bias is None else bias[g * fg:(g + 1) * fg]
        run(PATCHES, image, geo, rows.shape[0], weights, rows[:, g * fg:(g + 1) * fg], group_bias, activation)
    return out
