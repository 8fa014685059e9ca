"""Elementwise arithmetic: 16-bit floats compute in float32 and round once (NEP 50 promotion)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import elementwise, operand


def add(x: Any, y: Any) -> Array:
    """``x + y``.

    >>> import nbmp
    >>> nbmp.ops.add(nbmp.asarray([1.0], dtype="bfloat16"), 1)
    Array([2], dtype=bfloat16, device='cpu')
    """
    return elementwise(np.add, x, y)


def subtract(x: Any, y: Any) -> Array:
    """``x - y``."""
    return elementwise(np.subtract, x, y)


def multiply(x: Any, y: Any) -> Array:
    """``x * y``."""
    return elementwise(np.multiply, x, y)


def divide(x: Any, y: Any) -> Array:
    """``x / y`` (true division: integers give float64, as in NumPy)."""
    out = dtypes.result_type(operand(x, "x"), operand(y, "y"))
    return elementwise(np.true_divide, x, y, out_dtype=out if dtypes.is_floating(out) else "float64")


def power(x: Any, y: Any) -> Array:
    """``x ** y``."""
    return elementwise(np.power, x, y)


def maximum(x: Any, y: Any) -> Array:
    """Elementwise maximum (NaN propagates)."""
    return elementwise(np.maximum, x, y)


def minimum(x: Any, y: Any) -> Array:
    """Elementwise minimum (NaN propagates)."""
    return elementwise(np.minimum, x, y)


def negative(x: Any) -> Array:
    """``-x``."""
    return elementwise(np.negative, x)


def abs(x: Any) -> Array:  # noqa: A001  (the NumPy name)
    """``|x|``."""
    return elementwise(np.abs, x)


def _floating(fn: Any, x: Any) -> Array:
    out = dtypes.result_type(operand(x, "x"))
    return elementwise(fn, x, out_dtype=out if dtypes.is_floating(out) else "float64")


def exp(x: Any) -> Array:
    """``e ** x``."""
    return _floating(np.exp, x)


def log(x: Any) -> Array:
    """Natural logarithm."""
    return _floating(np.log, x)


def sqrt(x: Any) -> Array:
    """Square root."""
    return _floating(np.sqrt, x)


def square(x: Any) -> Array:
    """``x * x``."""
    return elementwise(np.square, x)
