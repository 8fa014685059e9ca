"""``Activation``: an activation function as a layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbmp import ops
from nbmp.array import Array
from nbmp.layers.dense import activation_config, checked_activation
from nbmp.layers.layer import Layer


class Activation(Layer):
    """Applies relu, gelu, sigmoid, tanh, softmax, linear or a callable.

    Softmax computes in float32 internally; the mixed-precision guides give a model's last
    softmax ``dtype="float32"`` so that its output (and the loss) stay in float32:

    >>> import numpy as np, nbmp
    >>> nbmp.layers.Activation("softmax", dtype="float32")(np.zeros((1, 4), np.float16)).dtype
    dtype('float32')
    """

    def __init__(self, activation: str | Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = checked_activation(activation)
        self._fn = ops.get_activation(activation)

    def call(self, inputs: Array) -> Array:
        return self._fn(inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activation_config(self.activation)}
