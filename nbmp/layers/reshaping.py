"""``Flatten`` and ``Reshape``: shape changes that keep the batch dimension."""

from __future__ import annotations

import math
from typing import Any

from nbmp import ops
from nbmp.array import Array
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer
from nbmp.ops._core import is_int


class Flatten(Layer):
    """Flattens everything but the batch dimension: (N, ...) -> (N, prod(...)).

    >>> import numpy as np, nbmp
    >>> nbmp.layers.Flatten()(np.zeros((2, 3, 4), np.float32)).shape
    (2, 12)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: Array) -> Array:
        return ops.reshape(inputs, (inputs.shape[0], math.prod(inputs.shape[1:])))


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1).

    >>> import numpy as np, nbmp
    >>> nbmp.layers.Reshape((3, 4))(np.zeros((2, 12), np.float32)).shape
    (2, 3, 4)
    """

    def __init__(self, target_shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_shape, (tuple, list)) or not all(is_int(d) for d in target_shape):
            raise ValueError(f"Reshape target_shape must be a tuple of ints (the shape of one sample), "
                             f"such as (4,) or (2, -1). Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d < -1 or d == 0 for d in self.target_shape):
            raise ValueError(f"Reshape target_shape needs positive sizes and at most one -1. "
                             f"Received: target_shape={target_shape!r}")

    def call(self, inputs: Array) -> Array:
        shape = self.target_shape  # checked against one sample's size, so that an empty batch is too
        sample, known = math.prod(inputs.shape[1:]), abs(math.prod(shape))
        if (sample % known) if -1 in shape else sample != known:
            why = f"{sample} is not a multiple of {known}" if -1 in shape else f"it holds {known}"
            raise ValueError(f"Reshape cannot fit samples of shape {inputs.shape[1:]} ({sample} values) "
                             f"into {shape}: {why}")
        shape = tuple(sample // known if d == -1 else d for d in shape)
        return ops.reshape(inputs, (inputs.shape[0],) + shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}
