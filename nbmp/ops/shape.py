"""Shape manipulation (no arithmetic, no rounding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, backend, in_dtype, is_int, wrap, xp


def reshape(x: Any, shape: int | Sequence[int]) -> Array:
    """`x` with a new shape, a sequence of ints or one int (``-1`` infers one dimension)."""
    x = as_array(x)
    dims = _dims(shape)
    try:
        return wrap(x._data.reshape(dims), x)
    except ValueError:
        why = (": sizes are >= 0, and one of them may be -1 (inferred)"
               if any(d < -1 for d in dims) or dims.count(-1) > 1 else "")
        raise ValueError(f"Cannot reshape an array of shape {x.shape} ({x.size} elements) "
                         f"into shape {dims}{why}") from None


def _dims(shape: Any) -> tuple[int, ...]:
    """`shape` (an int or a sequence of them, NumPy integers too, or an array of ints) as a tuple
    of ints."""
    try:
        given = np.atleast_1d(shape.numpy()) if isinstance(shape, Array) else shape  # Array([2, 3])
        dims = (shape,) if is_int(shape) else tuple(given)
    except TypeError:  # not iterable: None, a float
        dims = (None,)
    if not all(is_int(d) for d in dims):
        raise TypeError(f"A shape must be an int or a sequence of ints. Received: {shape!r}")
    return tuple(int(d) for d in dims)


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
    """Join arrays along `axis`, in their common dtype (``nbmp.dtypes.result_type``, as Keras 3).

    >>> import nbmp
    >>> nbmp.ops.concatenate([nbmp.asarray([1.5], dtype="bfloat16"), nbmp.asarray([2.0], dtype="float16")])
    Array([1.5, 2. ], dtype=float32, device='cpu')
    """
    items = [as_array(a) for a in arrays]
    if not items:
        raise ValueError("concatenate needs at least one array. Received none")
    dtype = dtypes.as_numpy(dtypes.result_type(*items))
    be = backend(*items)
    return wrap(xp(*items).concatenate([in_dtype(be, a._data, dtype) for a in items], axis=axis),
                tuple(items))
