"""2-D pooling on NHWC arrays (Keras/TensorFlow semantics)."""

from __future__ import annotations

from typing import Any

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, backend, wrap
from nbmp.ops.conv import PADDINGS, pair, same_padding


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
    """Maximum over each window (``strides`` defaults to ``pool_size``); exact in any dtype, NaN
    propagates. With "same" padding the padded positions are ignored (as in TensorFlow).

    >>> import numpy as np, nbmp
    >>> x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
    >>> nbmp.ops.max_pool2d(x).numpy()[0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return _pool(x, "max", pool_size, strides, padding, "max_pool2d")


def avg_pool2d(x: Any, pool_size: Any = 2, strides: Any = None, padding: str = "valid") -> Array:
    """Mean over each window, accumulated in float32 for 16-bit inputs; with "same" padding the
    padded positions are not counted (as in TensorFlow).

    >>> import numpy as np, nbmp
    >>> x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
    >>> nbmp.ops.avg_pool2d(x, 3, 2, padding="same").numpy()[0, :, :, 0].tolist()
    [[5.0, 6.5], [11.0, 12.5]]
    """
    return _pool(x, "avg", pool_size, strides, padding, "avg_pool2d")


def _pool(x: Any, kind: str, pool_size: Any, strides: Any, padding: str, what: str) -> Array:
    x = as_array(x)
    pool, stride, pad = _check(x, pool_size, strides, padding, what)
    pads = ((0, 0), (0, 0))
    if pad == "same":
        pads = (same_padding(x.shape[1], pool[0], stride[0], 1),
                same_padding(x.shape[2], pool[1], stride[1], 1))
    return wrap(backend(x).pool2d(x._data, kind, pool, stride, pads), x)
