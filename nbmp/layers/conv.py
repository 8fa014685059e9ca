"""``Conv2D``: channels-last 2-D convolution on ``ops.conv2d`` (bias and activation fused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbmp import initializers, ops
from nbmp.array import Array
from nbmp.backend.reference import conv_output_size
from nbmp.layers.dense import activation_config, checked_activation
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer, channels_last, positive_int
from nbmp.ops._core import is_int
from nbmp.ops.conv import PADDINGS, pair


class Conv2D(Layer):
    """2-D convolution of NHWC inputs with an HWIO kernel, as in Keras (channels_last).

    >>> import numpy as np, nbmp
    >>> conv = nbmp.layers.Conv2D(8, 3, padding="same", activation="relu", dtype="mixed_float16")
    >>> y = conv(np.ones((2, 16, 16, 3), np.float32))
    >>> y.shape, y.dtype, conv.kernel.shape
    ((2, 16, 16, 8), dtype('float16'), (3, 3, 3, 8))
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: str | Callable[..., Any] | None = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = channels_last(data_format, "Conv2D")
        filters = positive_int(filters, "filters", "Conv2D")
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"Conv2D padding must be one of {PADDINGS}. Received: padding={padding!r}")
        if not is_int(groups) or groups < 1 or filters % groups:
            raise ValueError(f"Conv2D groups must be a positive int dividing filters ({filters}). "
                             f"Received: groups={groups!r}")
        self.filters, self.groups = filters, int(groups)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = padding.lower()
        self.activation = checked_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Any) -> None:
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            raise ValueError(f"Conv2D expects 4-D NHWC array inputs. Received: input_shape={input_shape}")
        channels = input_shape[-1]
        if not is_int(channels):
            raise ValueError(f"Conv2D needs the channels (last dimension) of its input known to make its "
                             f"kernel. Received: input_shape={input_shape}")
        if channels % self.groups:
            raise ValueError(f"Conv2D: input channels ({channels}) must be divisible by groups "
                             f"({self.groups}). Received shape {input_shape}")
        for size, k, s, d in zip(input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "valid" and is_int(size) and conv_output_size(size, k, s, d, (0, 0)) == 0:
                raise ValueError(f"Conv2D: a {self.kernel_size} kernel (dilation {self.dilation_rate}) does "
                                 f"not fit inputs of shape {input_shape} with padding='valid': the output "
                                 "would be empty; use padding='same' or a larger input")
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", shape, initializer=self.kernel_initializer)
        self.bias = (self.add_weight("bias", (self.filters,), initializer=self.bias_initializer)
                     if self.use_bias else None)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs: Array) -> Array:
        return ops.conv2d(self._floating_input(inputs), self.kernel, self.bias, strides=self.strides,
                          padding=self.padding, dilation_rate=self.dilation_rate, groups=self.groups,
                          activation=self.activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": activation_config(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}
