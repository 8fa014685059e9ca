"""Normalization statistics, always computed in float32 (or float64) even for 16-bit inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, as_axes, as_flag, backend, is_real, is_weak_scalar, work_dtype, wrap, xp

Axes = int | tuple[int, ...] | list[int]


def moments(x: Any, axes: Axes, keepdims: bool = False) -> tuple[Array, Array]:
    """(mean, variance) of `x` over `axes`, returned in float32 for 16-bit and float32 inputs.

    >>> import numpy as np, nbmp
    >>> m, v = nbmp.ops.moments(np.array([1.0, 3.0], np.float16), axes=0)
    >>> m.tolist(), v.tolist(), m.dtype
    (2.0, 1.0, dtype('float32'))
    """
    x = _floating(x, "moments")
    axes, keepdims = as_axes(axes), as_flag(keepdims, "keepdims")
    mod = xp(x)
    data = backend(x).cast(x._data, work_dtype(x.dtype))
    mean = mod.mean(data, axis=axes, keepdims=True)
    variance = mod.mean(mod.square(data - mean), axis=axes, keepdims=True)
    if not keepdims:
        mean, variance = mod.squeeze(mean, axis=axes), mod.squeeze(variance, axis=axes)
    return wrap(mod.asarray(mean), x), wrap(mod.asarray(variance), x)  # (0-d: NumPy gives scalars)


def normalize(x: Any, mean: Any, variance: Any, offset: Any = None, scale: Any = None,
              epsilon: float = 1e-3) -> Array:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset`` in float32, rounded once to
    x's dtype. Statistics and parameters broadcast against `x`."""
    x = _floating(x, "normalize")
    be, mod = backend(x), xp(x)
    work = work_dtype(x.dtype)

    if mean is None or variance is None:
        raise ValueError(f"normalize needs a mean and a variance. Received: mean={mean!r}, "
                         f"variance={variance!r}")
    if not is_real(epsilon) or not epsilon >= 0:
        raise ValueError(f"normalize: epsilon must be a number >= 0. Received: epsilon={epsilon!r}")

    def f(v: Any) -> Any:
        if is_weak_scalar(v):  # a Python number goes straight into the work dtype (not via floatx)
            return work.type(v)
        v = as_array(v)
        xp(x, v)  # one device
        return be.cast(v._data, work)

    with np.errstate(all="ignore"):
        y = (be.cast(x._data, work) - f(mean)) / mod.sqrt(f(variance) + work.type(epsilon))
        if scale is not None:
            y = y * f(scale)
        if offset is not None:
            y = y + f(offset)
    return wrap(be.cast(y, x.dtype), x)


def _floating(x: Any, op: str) -> Array:
    """`x` as an Array, which must be floating (statistics of integers would be truncated)."""
    x = as_array(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op} needs a floating input. Received dtype {x.dtype.name}")
    return x
