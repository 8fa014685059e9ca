"""2-D convolution, channels-last (NHWC input, HWIO kernel, as in Keras)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, backend, is_int, wrap
from nbmp.ops.activations import epilogue
from nbmp.ops.cast import cast, cast_kept

_KERNEL_DTYPES = ("float16", "bfloat16", "float32", "float64")
PADDINGS = ("valid", "same")


def pair(value: Any, name: str) -> tuple[int, int]:
    """``(v, v)`` from an int, or a validated pair of positive ints (NumPy integers too)."""
    items = (value, value) if is_int(value) else value
    error = ValueError(f"{name} must be a positive int or a pair of them. Received: {name}={value!r}")
    try:
        first, second = items
    except (TypeError, ValueError):
        raise error from None
    if not all(is_int(v) and v > 0 for v in (first, second)):
        raise error
    return int(first), int(second)


def same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" rule: output ceil(size / stride), the extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d(x: Any, kernel: Any, bias: Any = None, strides: Any = 1, padding: str = "valid",
           dilation_rate: Any = 1, groups: int = 1,
           activation: str | Callable[..., Any] | None = None) -> Array:
    """2-D convolution of NHWC `x` with an HWIO `kernel` (``I = channels / groups``).

    16-bit inputs accumulate in float32; bias and activation are applied before one rounding
    (tiny bf16 products flush to zero on some CPUs, as in ``matmul``).
    ``padding="same"`` follows TensorFlow (output ``ceil(size / stride)``, extra pad at the end).

    >>> import nbmp, numpy as np
    >>> x = np.ones((1, 4, 4, 2), np.float16)
    >>> nbmp.ops.conv2d(x, np.ones((3, 3, 2, 1), np.float16), padding="same").shape
    (1, 4, 4, 1)
    """
    x, kernel = as_array(x, "x"), as_array(kernel, "kernel")
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be 4-D NHWC (batch, height, width, channels). "
                         f"Received shape {x.shape}")
    if kernel.ndim != 4:
        raise ValueError(f"conv2d: kernel must be 4-D HWIO (height, width, in, out). "
                         f"Received shape {kernel.shape}")
    if not is_int(groups) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int. Received: groups={groups!r}")
    groups = int(groups)
    kh, kw, cin, filters = kernel.shape
    if kh == 0 or kw == 0:
        raise ValueError(f"conv2d: the kernel's height and width must be at least 1. Received "
                         f"kernel.shape={kernel.shape}")
    channels = x.shape[3]
    if channels % groups or filters % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels ({channels}) "
                         f"and the filters ({filters}). Received x.shape={x.shape}, "
                         f"kernel.shape={kernel.shape}")
    if cin * groups != channels:
        raise ValueError(f"conv2d: x has {channels} channels, so with groups={groups} the kernel's "
                         f"input dimension (axis 2 of HWIO) must be {channels // groups}. Received "
                         f"x.shape={x.shape}, kernel.shape={kernel.shape}")
    stride, dilation = pair(strides, "strides"), pair(dilation_rate, "dilation_rate")
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"conv2d: padding must be one of {PADDINGS}. Received: padding={padding!r}")
    if padding.lower() == "same":
        pads = (same_padding(x.shape[1], kh, stride[0], dilation[0]),
                same_padding(x.shape[2], kw, stride[1], dilation[1]))
    else:
        pads = ((0, 0), (0, 0))
    bias_arr = None if bias is None else as_array(bias, "bias")
    if bias_arr is not None and bias_arr.shape != (filters,):
        raise ValueError(f"conv2d: bias must have shape ({filters},). Received {bias_arr.shape}")
    operands = (x, kernel) if bias_arr is None else (x, kernel, bias_arr)
    dtype = dtypes.result_type(*operands)
    if dtype not in _KERNEL_DTYPES:
        raise TypeError(f"conv2d needs floating inputs. Received dtypes {x.dtype}, {kernel.dtype}")
    fused, after = epilogue(activation)
    acc = "float64" if dtype == "float64" else "float32"
    out = dtype if after is None else acc  # an unfused activation gets the accumulator, rounds once after
    xs, ks = cast(x, dtype), cast(kernel, dtype)
    bs = None if bias_arr is None else cast_kept(bias_arr, acc)._data
    y = wrap(backend(xs, ks).conv2d(xs._data, ks._data, bs, stride, pads, dilation, groups, fused,
                                    out), xs)
    if after is not None:
        y = cast(after(y), dtype)
    return y
