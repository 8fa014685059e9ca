"""2-D pooling on NHWC arrays (Keras/TensorFlow semantics)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, backend, work_dtype, wrap, xp
from nbmp.ops.conv import PADDINGS, pair, same_padding


def _windows(mod: ModuleType, data: Any, pool: tuple[int, int], strides: tuple[int, int],
             padding: str, fill: float) -> Any:
    """(N, OH, OW, C, ph, pw) windows of NHWC `data`, padded with `fill` for "same"; `mod` is
    the array module (NumPy or CuPy)."""
    sizes = [_output_size(data.shape[1 + a], pool[a], strides[a], padding) for a in (0, 1)]
    if 0 in sizes:
        return mod.empty((data.shape[0], *sizes, data.shape[3]) + pool, data.dtype)
    if padding == "same":
        pads = (same_padding(data.shape[1], pool[0], strides[0], 1),
                same_padding(data.shape[2], pool[1], strides[1], 1))
        data = mod.pad(data, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    views = mod.lib.stride_tricks.sliding_window_view(data, pool, axis=(1, 2))
    return views[:, ::strides[0], ::strides[1]]


def _output_size(size: int, pool: int, stride: int, padding: str) -> int:
    """Windows along an axis of `size`: ``ceil(size / stride)`` for "same", else whole windows."""
    if padding == "same":
        return -(-size // stride)
    return (size - pool) // stride + 1 if size >= pool else 0


def _check(x: Array, pool_size: Any, strides: Any, padding: str, what: str
           ) -> tuple[tuple[int, int], tuple[int, int], str]:
    if x.ndim != 4:
        raise ValueError(f"{what}: x must be 4-D NHWC. Received shape {x.shape}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{what} needs a floating input. Received dtype {x.dtype.name}")
    pool = pair(pool_size, "pool_size")
    stride = pool if strides is None else pair(strides, "strides")
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{what}: padding must be one of {PADDINGS}. Received: padding={padding!r}")
    return pool, stride, padding.lower()


def max_pool2d(x: Any, pool_size: Any = 2, strides: Any = None, padding: str = "valid") -> Array:
    """Maximum over each window (``strides`` defaults to ``pool_size``); exact in any dtype.

    >>> import numpy as np, nbmp
    >>> x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
    >>> nbmp.ops.max_pool2d(x).numpy()[0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    x = as_array(x)
    pool, stride, pad = _check(x, pool_size, strides, padding, "max_pool2d")
    be, mod = backend(x), xp(x)
    # Widening 16-bit values is exact, and float32 maxima run at SIMD speed (NumPy's float16
    # arithmetic converts element by element). One elementwise maximum per window offset keeps
    # the inner loop over whole contiguous channel rows.
    windows = _windows(mod, be.cast(x._data, work_dtype(x.dtype)), pool, stride, pad, -np.inf)
    if 0 in windows.shape[1:3]:
        return wrap(mod.empty(windows.shape[:4], x.dtype), x)
    out = mod.array(windows[..., 0, 0])
    for i in range(pool[0]):
        for j in range(pool[1]):
            if i or j:
                mod.maximum(out, windows[..., i, j], out=out)
    return wrap(be.cast(out, x.dtype), x)


def avg_pool2d(x: Any, pool_size: Any = 2, strides: Any = None, padding: str = "valid") -> Array:
    """Mean over each window, accumulated in float32 for 16-bit inputs; with "same" padding the
    padded positions are not counted (as in TensorFlow)."""
    x = as_array(x)
    pool, stride, pad = _check(x, pool_size, strides, padding, "avg_pool2d")
    be, mod = backend(x), xp(x)
    work = be.cast(x._data, work_dtype(x.dtype))
    sums = _windows(mod, work, pool, stride, pad, 0.0).sum(axis=(-2, -1))
    counts = _windows(mod, mod.ones((1,) + x.shape[1:3] + (1,), work.dtype), pool, stride, pad, 0.0)
    return wrap(be.cast(sums / counts.sum(axis=(-2, -1)), x.dtype), x)
