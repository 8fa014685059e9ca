"""``BatchNormalization`` and ``LayerNormalization``.

Both compute their statistics and the normalization in float32 even under mixed policies
(float16 has too little range and precision for variances), keep their weights in float32, and
round the output once to the compute dtype.
"""

from __future__ import annotations

from typing import Any

from nbmp import ops
from nbmp.array import Array
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer
from nbmp.ops._core import is_int


def _axes(axis: Any) -> tuple[int, ...]:
    items = (axis,) if is_int(axis) else tuple(axis) if isinstance(axis, (list, tuple)) else ()
    if not items or not all(is_int(a) for a in items):
        raise ValueError(f"axis must be an int or a tuple of ints. Received: axis={axis!r}")
    return tuple(int(a) for a in items)


class _Normalization(Layer):
    def __init__(self, axis: Any, epsilon: float, center: bool, scale: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis, self.epsilon = _axes(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)

    def _param_shape(self, input_shape: Any) -> tuple[tuple[int, ...], list[int]]:
        if not isinstance(input_shape, tuple):
            raise ValueError(f"{type(self).__name__} needs an array input. Received: {input_shape!r}")
        rank = len(input_shape)
        axes = sorted(a % rank for a in self.axis if -rank <= a < rank)
        if len(axes) != len(self.axis):
            raise ValueError(f"{type(self).__name__}: axis {self.axis} is out of range for inputs of "
                             f"shape {input_shape}")
        if len(set(axes)) != len(axes):
            raise ValueError(f"{type(self).__name__}: axis {self.axis} names an axis twice for inputs "
                             f"of shape {input_shape} (axes {axes}); give each axis once")
        if not all(is_int(input_shape[a]) for a in axes):
            raise ValueError(f"{type(self).__name__} needs the size of its axis {self.axis} known to "
                             f"make its weights. Received: input_shape={input_shape}")
        return tuple(input_shape[a] for a in axes), axes

    def _broadcast(self, v: Any, rank: int, axes: list[int]) -> Any:
        """`v` (a weight or statistics, shaped as the normalized axes) reshaped to broadcast
        against inputs of `rank`; kept with a value that cannot change (a weight's)."""
        shape = [1] * rank
        for i, a in enumerate(axes):
            shape[a] = v.shape[i]
        value = v if isinstance(v, Array) else v.value
        return value._derived(("broadcast", tuple(shape)), lambda: ops.reshape(value, shape))

    @property
    def variable_dtype(self) -> str | None:
        """float32 where the policy says float16 or bfloat16 (statistics need the range), else
        the policy's.

        >>> BatchNormalization(dtype="float16").variable_dtype
        'float32'
        """
        policy = self.dtype_policy.variable_dtype
        return "float32" if policy in ("float16", "bfloat16") else policy

    def _param(self, name: str, shape: tuple[int, ...], init: str, trainable: bool = True) -> Any:
        """A weight in ``variable_dtype`` that is never autocast, as in Keras 3."""
        return self.add_weight(name, shape, None, init, trainable=trainable, autocast=False)

    def _add_params(self, shape: tuple[int, ...], axes: list[int], rank: int) -> None:
        self.gamma = self._param("gamma", shape, "ones") if self.scale else None
        self.beta = self._param("beta", shape, "zeros") if self.center else None
        self._norm_axes, self._rank = axes, rank
        self.input_spec = InputSpec(ndim=rank, axes={a: s for a, s in zip(axes, shape)})

    def _normalize(self, inputs: Array, mean: Any, variance: Any) -> Array:
        beta, gamma = (None if v is None else self._broadcast(v, self._rank, self._norm_axes)
                       for v in (self.beta, self.gamma))
        return ops.normalize(inputs, mean, variance, beta, gamma, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


class BatchNormalization(_Normalization):
    """Normalizes over the batch (and spatial) axes, per feature on `axis`.

    ``training=True`` uses the batch's statistics and updates the moving ones; otherwise, or
    when the layer is not trainable (frozen, as in Keras), the moving statistics are used.

    >>> import numpy as np, nbmp
    >>> bn = nbmp.layers.BatchNormalization(dtype="mixed_float16")
    >>> y = bn(np.random.default_rng(0).normal(5, 3, (64, 4)).astype(np.float32), training=True)
    >>> y.dtype, bn.moving_mean.dtype, bool(abs(float(nbmp.ops.mean(y))) < 0.01)
    (dtype('float16'), dtype('float32'), True)
    """

    def __init__(self, axis: Any = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, **kwargs: Any) -> None:
        super().__init__(axis, epsilon, center, scale, **kwargs)
        self.momentum = float(momentum)

    def build(self, input_shape: Any) -> None:
        shape, axes = self._param_shape(input_shape)
        self._add_params(shape, axes, len(input_shape))
        self.moving_mean = self._param("moving_mean", shape, "zeros", trainable=False)
        self.moving_variance = self._param("moving_variance", shape, "ones", trainable=False)

    def call(self, inputs: Array, training: bool = False) -> Array:
        inputs = self._floating_input(inputs)
        reduce = tuple(a for a in range(self._rank) if a not in self._norm_axes)
        if training and self.trainable:
            mean, variance = ops.moments(inputs, reduce)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1 - m))
        else:
            mean, variance = self.moving_mean.value, self.moving_variance.value
        mean_b = self._broadcast(mean, self._rank, self._norm_axes)
        var_b = self._broadcast(variance, self._rank, self._norm_axes)
        return self._normalize(inputs, mean_b, var_b)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum}


class LayerNormalization(_Normalization):
    """Normalizes each sample over `axis` (the features by default).

    >>> import numpy as np, nbmp
    >>> ln = nbmp.layers.LayerNormalization(dtype="mixed_bfloat16")
    >>> ln(np.array([[1.0, 2.0, 3.0]], np.float32)).dtype
    dtype(bfloat16)
    """

    def __init__(self, axis: Any = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, **kwargs: Any) -> None:
        super().__init__(axis, epsilon, center, scale, **kwargs)

    def build(self, input_shape: Any) -> None:
        shape, axes = self._param_shape(input_shape)
        self._add_params(shape, axes, len(input_shape))

    def call(self, inputs: Array) -> Array:
        inputs = self._floating_input(inputs)
        mean, variance = ops.moments(inputs, tuple(self._norm_axes), keepdims=True)
        return self._normalize(inputs, mean, variance)

