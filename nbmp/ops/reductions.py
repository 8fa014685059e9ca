"""Reductions: 16-bit inputs accumulate in float32 and round once."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp.array import Array
from nbmp.ops._core import as_array, as_axes, as_flag, backend, work_dtype, wrap, xp

Axis = int | tuple[int, ...] | list[int] | None


def _reduce(fn_name: str, x: Any, axis: Axis, keepdims: bool) -> Array:
    """``fn_name`` over `axis`: 16-bit floats in float32, rounded once back to their dtype;
    other dtypes give NumPy's result dtype (the sum of int8 values is an int64, a mean of ints
    a float64)."""
    x = as_array(x)
    axis, keepdims = as_axes(axis), as_flag(keepdims, "keepdims")
    be, mod = backend(x), xp(x)
    work = work_dtype(x.dtype)
    data = x._data if x.dtype == work else be.cast(x._data, work)
    with np.errstate(all="ignore"):
        y = mod.asarray(getattr(mod, fn_name)(data, axis=axis, keepdims=keepdims))
    return wrap(be.cast(y, x.dtype) if work != x.dtype else y, x)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Array:  # noqa: A001
    """Sum over `axis` (all axes by default).

    >>> import nbmp, numpy as np
    >>> nbmp.ops.sum(np.full(4096, 1.0, np.float16)).tolist()  # a float16 accumulator stops at 2048
    4096.0
    """
    return _reduce("sum", x, axis, keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Array:
    """Mean over `axis`."""
    return _reduce("mean", x, axis, keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Array:  # noqa: A001
    """Maximum over `axis` (NaN propagates)."""
    return _reduce("max", x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Array:  # noqa: A001
    """Minimum over `axis` (NaN propagates)."""
    return _reduce("min", x, axis, keepdims)
