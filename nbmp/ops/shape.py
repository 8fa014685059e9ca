"""Shape manipulation (no arithmetic, no rounding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbmp.array import Array
from nbmp.ops._core import as_array, wrap, xp


def reshape(x: Any, shape: Sequence[int]) -> Array:
    """`x` with a new shape (``-1`` infers one dimension)."""
    x = as_array(x)
    try:
        return wrap(x._data.reshape(tuple(shape)), x)
    except ValueError:
        raise ValueError(f"Cannot reshape an array of shape {x.shape} ({x.size} elements) "
                         f"into shape {tuple(shape)}") from None


def transpose(x: Any, axes: Sequence[int] | None = None) -> Array:
    """`x` with its axes permuted (reversed by default); a view, nothing is copied."""
    x = as_array(x)
    return wrap(xp(x).transpose(x._data, axes), x)


def getitem(x: Any, key: Any) -> Array:
    """``x[key]`` with NumPy indexing rules."""
    x = as_array(x)
    if isinstance(key, Array):
        xp(x, key)  # one device
        key = key._data
    return wrap(xp(x).asarray(x._data[key]), x)


def concatenate(arrays: Sequence[Any], axis: int = 0) -> Array:
    """Join arrays of one dtype along `axis`."""
    items = [as_array(a) for a in arrays]
    if len({a.dtype for a in items}) > 1:
        raise ValueError(f"concatenate needs one dtype. Received {[a.dtype.name for a in items]}")
    return wrap(xp(*items).concatenate([a._data for a in items], axis=axis), tuple(items))
