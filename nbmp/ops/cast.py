"""Casting between dtypes."""

from __future__ import annotations

from typing import Any

from nbmp import dtypes
from nbmp.array import Array, asarray
from nbmp.ops._core import as_array, backend, wrap


def cast(x: Any, dtype: Any) -> Array:
    """`x` converted to `dtype`, rounded to nearest even (overflow gives inf, as IEEE says).
    Integer targets behave as NumPy's ``astype``: fractions truncate, and NaN, inf and values
    out of range give unspecified integers, without a warning.

    >>> import nbmp
    >>> nbmp.ops.cast([1.0, 2049.0, 65520.0, 1e-8], "float16").tolist()
    [1.0, 2048.0, inf, 0.0]
    """
    target = dtypes.as_numpy(dtype)
    if not isinstance(x, Array):
        if isinstance(x, (list, tuple, bool, int, float)):  # Python numbers: rounded once, to dtype
            return asarray(x, dtype=target)
        x = as_array(x)
    if x._data.dtype == target:  # most operands of an op are in its dtype already
        return x
    return wrap(backend(x).cast(x._data, target), x)


def cast_kept(x: Array, dtype: str) -> Array:
    """``cast(x, dtype)``, kept on `x` when its values cannot change (a Variable's value, such as
    a layer's float32 bias read in bf16 and widened again for the kernels' float32 epilogue), so
    that later calls do not cast it again."""
    return x._derived(("cast", dtype), lambda: cast(x, dtype))
