"""``Dense``: ``activation(inputs @ kernel + bias)`` on ``ops.dense`` (bias and activation fused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbmp import initializers, ops
from nbmp.array import Array
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer, positive_int
from nbmp.ops._core import is_int


def activation_config(activation: Any) -> Any:
    """The activation as a config value: a name for a built-in one (given by name or as the
    function), else the callable itself (the config then round-trips in this process only)."""
    if activation is None or isinstance(activation, str):
        return activation
    name = getattr(activation, "__name__", None)
    try:
        builtin = isinstance(name, str) and ops.get_activation(name) is activation
    except ValueError:
        builtin = False
    return name if builtin else activation


def checked_activation(activation: Any) -> str | Callable[..., Any] | None:
    """`activation` if ``ops.get_activation`` knows it (a clear ValueError otherwise)."""
    ops.get_activation(activation)
    return activation.lower() if isinstance(activation, str) else activation


class Dense(Layer):
    """A densely connected layer; inputs may have any leading batch dims.

    >>> import numpy as np, nbmp
    >>> layer = nbmp.layers.Dense(3, activation="relu", dtype="mixed_bfloat16")
    >>> y = layer(np.ones((2, 5, 4), np.float32))
    >>> y.shape, y.dtype, layer.kernel.dtype
    ((2, 5, 3), dtype(bfloat16), dtype('float32'))
    """

    def __init__(self, units: int, activation: str | Callable[..., Any] | None = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = positive_int(units, "units", "Dense")
        self.activation = checked_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Any) -> None:
        if not isinstance(input_shape, tuple) or len(input_shape) < 1:
            raise ValueError("Dense needs an array input of at least 1 dimension. Received: "
                             f"input_shape={input_shape}")
        features = input_shape[-1]
        if isinstance(features, tuple):
            raise ValueError("Dense takes one array input, not a structure of them. Received: "
                             f"input_shape={input_shape}")
        if not is_int(features):
            raise ValueError(f"Dense needs the last dimension of its input defined. Received: "
                             f"input_shape={input_shape}")
        self.kernel = self.add_weight("kernel", (features, self.units), initializer=self.kernel_initializer)
        self.bias = (self.add_weight("bias", (self.units,), initializer=self.bias_initializer)
                     if self.use_bias else None)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: features})

    def call(self, inputs: Array) -> Array:
        return ops.dense(self._floating_input(inputs), self.kernel, self.bias,
                         activation=self.activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": activation_config(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}
