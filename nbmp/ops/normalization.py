"""Normalization statistics and normalization, computed in float32 or wider even for 16-bit
inputs (on the CPU, by the backend's kernels where the axes and shapes fit)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, as_axes, as_flag, backend, is_real, is_weak_scalar, work_dtype, wrap, xp

Axes = int | tuple[int, ...] | list[int]


def moments(x: Any, axes: Axes, keepdims: bool = False) -> tuple[Array, Array]:
    """(mean, variance) of `x` over `axes`, returned in float32 for 16-bit and float32 inputs
    (on the CPU, over the last axis or over all the others, by a kernel that sums in float64 and
    rounds once: within float32's rounding of the exact values, unless large values cancel).

    >>> import numpy as np, nbmp
    >>> m, v = nbmp.ops.moments(np.array([1.0, 3.0], np.float16), axes=0)
    >>> m.tolist(), v.tolist(), m.dtype
    (2.0, 1.0, dtype('float32'))
    """
    x = _floating(x, "moments")
    axes, keepdims = as_axes(axes), as_flag(keepdims, "keepdims")
    be, rows = backend(x), _reduces_rows(x, axes)
    if rows is not None and x.dtype != np.float64 and hasattr(be, "moments"):  # the backend's kernel
        mean, variance = be.moments(x._data, rows=rows)
        if keepdims:
            kept = x.shape[:-1] + (1,) if rows else (1,) * (x.ndim - 1) + x.shape[-1:]
            mean, variance = mean.reshape(kept), variance.reshape(kept)
        return wrap(mean, x), wrap(variance, x)
    mod = xp(x)
    data = be.cast(x._data, work_dtype(x.dtype))
    mean = mod.mean(data, axis=axes, keepdims=True)
    variance = mod.mean(mod.square(data - mean), axis=axes, keepdims=True)
    if not keepdims:
        mean, variance = mod.squeeze(mean, axis=axes), mod.squeeze(variance, axis=axes)
    return wrap(mod.asarray(mean), x), wrap(mod.asarray(variance), x)  # (0-d: NumPy gives scalars)


def _reduces_rows(x: Array, axes: Any) -> bool | None:
    """True if `axes` are x's last axis alone (a mean per row), False if they are all its others
    (per column), None otherwise, or when an axis reduced is empty or `axes` are not valid."""
    if x.ndim == 0 or x.size == 0:
        return None
    given = range(x.ndim) if axes is None else axes if isinstance(axes, tuple) else (axes,)
    if any(not -x.ndim <= a < x.ndim for a in given):
        return None
    reduced = sorted(a % x.ndim for a in given)
    if len(set(reduced)) != len(reduced):
        return None
    if reduced == [x.ndim - 1]:
        return True
    return False if x.ndim > 1 and reduced == list(range(x.ndim - 1)) else None


def _layout(shape: tuple[int, ...], x: Array) -> bool | None:
    """For values of `shape` broadcast against `x`: True if they hold one value per row of x's
    last axis, False if one per column (or one in all), None if neither."""
    shape = (1,) * (x.ndim - len(shape)) + shape
    if len(shape) != x.ndim:
        return None
    if shape[:-1] == x.shape[:-1] and shape[-1] == 1:
        return True
    return False if all(s == 1 for s in shape[:-1]) and shape[-1] in (1, x.shape[-1]) else None


def _vector(v: Any, length: int) -> np.ndarray:
    """`v` (of `length` values, or one) as `length` contiguous float32 values."""
    flat = np.asarray(v).reshape(-1)
    if flat.size == 1 and length != 1:
        return np.full(length, flat[0], np.float32)
    return np.ascontiguousarray(flat, np.float32)


def normalize(x: Any, mean: Any, variance: Any, offset: Any = None, scale: Any = None,
              epsilon: float = 1e-3) -> Array:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset`` in float32, rounded once to
    x's dtype. Statistics and parameters broadcast against `x`. (On the CPU, statistics per row
    of the last axis or per column and parameters per column go through one kernel pass, with
    the same float32 steps.)

    >>> import nbmp, numpy as np
    >>> nbmp.ops.normalize(np.array([1.0, 3.0], np.float16), 2.0, 1.0, epsilon=0.0).tolist()
    [-1.0, 1.0]
    """
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
        return v._data if v.dtype == work else be.cast(v._data, work)  # (read only: no copy)

    with np.errstate(all="ignore"):  # (a Python number past float32's range is inf, silently)
        center, spread = f(mean), mod.sqrt(f(variance) + work.type(epsilon))
        params = [None if v is None else f(v) for v in (scale, offset)]
    if x.ndim and x.dtype != np.float64 and hasattr(be, "normalize"):
        kernel = _normalize_in_one_pass(be, x, center, spread, *params)
        if kernel is not None:
            return kernel
    with np.errstate(all="ignore"):
        y = (be.cast(x._data, work) - center) / spread
        if params[0] is not None:
            y = y * params[0]
        if params[1] is not None:
            y = y + params[1]
    return wrap(be.cast(y, x.dtype), x)


def _normalize_in_one_pass(be: Any, x: Array, center: Any, spread: Any, scale: Any,
                           offset: Any) -> Array | None:
    """``normalize`` by the backend's kernel, with the same float32 steps, where the statistics
    hold a value per row of x's last axis or per column, and scale and offset (float32, or None)
    one per column; else None."""
    try:
        common = np.broadcast_shapes(np.shape(center), np.shape(spread))
    except ValueError:  # they do not broadcast: NumPy's formula says so
        return None
    per_row = _layout(common, x)
    if per_row is None or any(v is not None and _layout(np.shape(v), x) is not False
                              for v in (scale, offset)):  # (parameters per column only)
        return None
    rows = x.size // x.shape[-1] if x.shape[-1] else 0
    stats = [_vector(np.broadcast_to(v, common) if np.shape(v) not in (common, ()) else v,
                     rows if per_row else x.shape[-1]) for v in (center, spread)]
    params = [np.ones(x.shape[-1], np.float32) if scale is None else _vector(scale, x.shape[-1]),
              None if offset is None else _vector(offset, x.shape[-1])]  # (times 1 changes no value)
    return wrap(be.normalize(x._data, *stats, per_row, *params), x)


def _floating(x: Any, op: str) -> Array:
    """`x` as an Array, which must be floating (statistics of integers would be truncated)."""
    x = as_array(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op} needs a floating input. Received dtype {x.dtype.name}")
    return x
