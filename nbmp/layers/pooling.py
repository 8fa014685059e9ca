"""Pooling layers on NHWC inputs."""

from __future__ import annotations

from typing import Any

from nbmp import ops
from nbmp.array import Array
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer, channels_last
from nbmp.ops.conv import PADDINGS, pair


class _Pooling2D(Layer):
    _op = staticmethod(ops.max_pool2d)

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = channels_last(data_format, type(self).__name__)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"{type(self).__name__} padding must be one of {PADDINGS}. "
                             f"Received: padding={padding!r}")
        self.padding = padding.lower()
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Array) -> Array:
        if self.padding == "valid" and any(size < k for size, k in zip(inputs.shape[1:3], self.pool_size)):
            raise ValueError(f"{type(self).__name__}: a {self.pool_size} window does not fit inputs of "
                             f"shape {inputs.shape} with padding='valid': the output would be empty; "
                             "use padding='same' or a larger input")
        return type(self)._op(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Maximum over each window (``strides`` defaults to ``pool_size``).

    >>> import numpy as np, nbmp
    >>> nbmp.layers.MaxPooling2D()(np.zeros((1, 4, 6, 3), np.float16)).shape
    (1, 2, 3, 3)
    """

    _op = staticmethod(ops.max_pool2d)


class AveragePooling2D(_Pooling2D):
    """Mean over each window, accumulated in float32."""

    _op = staticmethod(ops.avg_pool2d)


class GlobalAveragePooling2D(Layer):
    """Mean over height and width: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = channels_last(data_format, "GlobalAveragePooling2D")
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Array) -> Array:  # integers: the mean in the compute dtype, as Keras 3
        return ops.mean(self._floating_input(inputs), axis=(1, 2), keepdims=self.keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}
