"""The float64 NumPy oracle every kernel is tested against.

Each function computes in `acc` (float64 unless told otherwise) from the given inputs, so a
test can compare a half-precision kernel with the exact result of the *same rounded inputs*.
Students can read these first: they say what the fast kernels compute, not how.

>>> import numpy as np
>>> a = np.ones((2, 3), np.float16)
>>> matmul(a, a.T)
array([[3., 3.],
       [3., 3.]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ACTIVATIONS", "activation", "matmul", "dense", "conv2d", "im2col", "conv_output_size", "pool2d",
           "pool_output_size"]

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "gelu")
#: gelu takes inputs below this as this: x * Phi(x) is -0.0 there already (Phi underflows), and
#: would be -inf * 0 = NaN at -inf. (The CPU kernels cache it compiled in: a change here goes
#: with a new ``vmath.KERNEL_VERSION``.)
GELU_FLOOR = -1e4
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def activation(y: np.ndarray, name: str | None) -> np.ndarray:
    """Apply an elementwise activation by name (``None`` or ``"linear"``: identity)."""
    if name is None or name == "linear":
        return y
    if name == "relu":
        return np.maximum(y, 0)
    if name == "sigmoid":  # exp(-|y|) cannot overflow: 1 / (1 + exp(-y)) was 0 below about -88.7
        e = np.exp(-np.abs(y))
        return np.where(y < 0, e, 1) / (1 + e)
    if name == "tanh":
        return np.tanh(y)
    if name == "gelu":  # exact gelu, x * Phi(x), with erfc (1 + erf cancels for negative x)
        y = np.maximum(y, GELU_FLOOR)  # -inf * Phi(-inf) would be NaN; NaN stays NaN
        return (0.5 * y * _erfc(y.astype(np.float64) / -math.sqrt(2))).astype(y.dtype)
    raise ValueError(f"Unknown activation {name!r}. Valid: {', '.join(ACTIVATIONS)}")


def matmul(a: np.ndarray, b: np.ndarray, acc: Any = np.float64) -> np.ndarray:
    """``a @ b`` computed in `acc`."""
    with np.errstate(all="ignore"):
        return np.matmul(a.astype(acc), b.astype(acc))


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None,
          activation_name: str | None = None, acc: Any = np.float64) -> np.ndarray:
    """``activation(x @ kernel + bias)`` computed in `acc`."""
    y = matmul(x, kernel, acc)
    if bias is not None:
        y = y + bias.astype(acc)
    with np.errstate(all="ignore"):
        return activation(y, activation_name)


def conv_output_size(size: int, k: int, stride: int, dilation: int, pad: tuple[int, int]) -> int:
    """Output length of a 1-D convolution window sweep."""
    span = (k - 1) * dilation + 1
    return max((size + pad[0] + pad[1] - span) // stride + 1, 0)


def im2col(x: np.ndarray, kh: int, kw: int, strides: tuple[int, int],
           padding: tuple[tuple[int, int], tuple[int, int]], dilation: tuple[int, int]) -> np.ndarray:
    """NHWC input -> (N, OH, OW, KH, KW, C) patches (zero padding), in x's dtype."""
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, strides[0], dilation[0], padding[0])
    ow = conv_output_size(w, kw, strides[1], dilation[1], padding[1])
    xp = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    cols = np.empty((n, oh, ow, kh, kw, c), x.dtype)
    if cols.size == 0:
        return cols
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            cols[:, :, :, i, j, :] = xp[:, r0:r0 + (oh - 1) * strides[0] + 1:strides[0],
                                        c0:c0 + (ow - 1) * strides[1] + 1:strides[1], :]
    return cols


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None,
           strides: tuple[int, int] = (1, 1),
           padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
           dilation: tuple[int, int] = (1, 1), groups: int = 1,
           activation_name: str | None = None, acc: Any = np.float64) -> np.ndarray:
    """2-D convolution, NHWC input and HWIO kernel (``I = C / groups``), computed in `acc`."""
    kh, kw, cg, f = kernel.shape
    cols = im2col(x, kh, kw, strides, padding, dilation)
    n, oh, ow = cols.shape[:3]
    fg = f // groups
    out = np.empty((n, oh, ow, f), acc)
    for g in range(groups):
        patch = cols[..., g * cg:(g + 1) * cg].reshape(n * oh * ow, kh * kw * cg)
        weights = kernel[..., g * fg:(g + 1) * fg].reshape(kh * kw * cg, fg)
        out[..., g * fg:(g + 1) * fg] = matmul(patch, weights, acc).reshape(n, oh, ow, fg)
    if bias is not None:
        out += bias.astype(acc)
    with np.errstate(all="ignore"):
        return activation(out, activation_name)


def pool_output_size(size: int, k: int, stride: int, pad: tuple[int, int]) -> int:
    """Windows along an axis of `size`: a convolution's count, none in an empty axis (padding
    alone holds no pixel)."""
    return conv_output_size(size, k, stride, 1, pad) if size else 0


def pool2d(x: Any, kind: str, pool: tuple[int, int], strides: tuple[int, int],
           padding: tuple[tuple[int, int], tuple[int, int]], acc: Any = np.float64, xp: Any = np) -> Any:
    """Maximum (``kind="max"``) or mean (``"avg"``) over each window of NHWC `x`, in `acc`.

    Padded positions belong to no window (TensorFlow's rule): a maximum ignores them, a mean
    divides by the pixels of the image in its window. `xp` is the array module (NumPy, or
    CuPy for the CUDA backend).
    """
    n, h, w, c = x.shape
    oh, ow = (pool_output_size(size, k, s, pad) for size, k, s, pad in zip((h, w), pool, strides, padding))
    if n * oh * ow * c == 0:
        return xp.empty((n, oh, ow, c), acc)

    def windows(data: Any, fill: float) -> Any:
        padded = xp.pad(data, ((0, 0), padding[0], padding[1], (0, 0)), constant_values=fill)
        views = xp.lib.stride_tricks.sliding_window_view(padded, pool, axis=(1, 2))
        return views[:, :oh * strides[0]:strides[0], :ow * strides[1]:strides[1]]

    def reduce(data: Any, fill: float, fold: Any) -> Any:
        """`fold` over each window, a window offset at a time: whole rows of channels a step
        (twice as fast as NumPy's reductions over the two small window axes)."""
        view = windows(data, fill)
        out = xp.array(view[..., 0, 0])
        for i in range(pool[0]):
            for j in range(pool[1]):
                if i or j:
                    fold(out, view[..., i, j], out=out)
        return out

    if kind == "max":  # np.maximum: NaN propagates
        return reduce(x.astype(acc), -np.inf, xp.maximum)
    if kind == "avg":
        return reduce(x.astype(acc), 0.0, xp.add) / reduce(xp.ones((1, h, w, 1), acc), 0.0, xp.add)
    raise ValueError(f"pool2d: kind must be 'max' or 'avg'. Received: kind={kind!r}")
