"""Elementwise arithmetic: 16-bit floats compute in float32 and round once (NEP 50 promotion)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import elementwise, operands


def add(x: Any, y: Any) -> Array:
    """``x + y``.

    >>> import nbmp
    >>> nbmp.ops.add(nbmp.asarray([1.0], dtype="bfloat16"), 1)
    Array([2.], dtype=bfloat16, device='cpu')
    """
    return elementwise("add", x, y)


def subtract(x: Any, y: Any) -> Array:
    """``x - y``."""
    return elementwise("subtract", x, y)


def multiply(x: Any, y: Any) -> Array:
    """``x * y``."""
    return elementwise("multiply", x, y)


def divide(x: Any, y: Any) -> Array:
    """``x / y`` (true division: integers give float64, as in NumPy)."""
    out = dtypes.result_type(*operands((x, y)))
    return elementwise("true_divide", x, y, out_dtype=out if dtypes.is_floating(out) else "float64")


def floor_divide(x: Any, y: Any) -> Array:
    """``x // y``: the quotient rounded down, as NumPy's.

    >>> import nbmp
    >>> nbmp.ops.floor_divide(nbmp.asarray([7.0, -7.0], dtype="float16"), 2).tolist()
    [3.0, -4.0]
    """
    return _bools_as_int8("floor_divide", x, y)


def mod(x: Any, y: Any) -> Array:
    """``x % y``: the remainder, with the sign of `y` (NumPy's ``remainder``, Python's ``%``).

    >>> import nbmp
    >>> nbmp.ops.mod(nbmp.asarray([7, -7]), 3).tolist()
    [1, 2]
    """
    return _bools_as_int8("remainder", x, y)


def _bools_as_int8(fn_name: str, *args: Any) -> Array:
    ops = operands(args)
    out = dtypes.result_type(*ops)  # booleans divide and raise to powers as int8, as NumPy's
    return elementwise(fn_name, *ops, out_dtype="int8" if out == "bool" else out)


def power(x: Any, y: Any) -> Array:
    """``x ** y``."""
    return _bools_as_int8("power", x, y)


def maximum(x: Any, y: Any) -> Array:
    """Elementwise maximum (NaN propagates)."""
    return elementwise("maximum", x, y)


def minimum(x: Any, y: Any) -> Array:
    """Elementwise minimum (NaN propagates)."""
    return elementwise("minimum", x, y)


def negative(x: Any) -> Array:
    """``-x``."""
    return elementwise("negative", x)


def abs(x: Any) -> Array:  # noqa: A001  (the NumPy name)
    """``|x|``."""
    return elementwise("abs", x)


def equal(x: Any, y: Any) -> Array:
    """``x == y``, elementwise (bools).

    >>> import nbmp
    >>> nbmp.ops.equal(nbmp.asarray([1.0, 2.5], dtype="bfloat16"), [1.0, 2.0]).tolist()
    [True, False]
    """
    return elementwise("equal", x, y, comparison=True)


def not_equal(x: Any, y: Any) -> Array:
    """``x != y``, elementwise (bools; NaN is unequal to everything)."""
    return elementwise("not_equal", x, y, comparison=True)


def less(x: Any, y: Any) -> Array:
    """``x < y``, elementwise (bools)."""
    return elementwise("less", x, y, comparison=True)


def less_equal(x: Any, y: Any) -> Array:
    """``x <= y``, elementwise (bools)."""
    return elementwise("less_equal", x, y, comparison=True)


def greater(x: Any, y: Any) -> Array:
    """``x > y``, elementwise (bools)."""
    return elementwise("greater", x, y, comparison=True)


def greater_equal(x: Any, y: Any) -> Array:
    """``x >= y``, elementwise (bools)."""
    return elementwise("greater_equal", x, y, comparison=True)


def _floating(fn_name: str, x: Any) -> Array:
    out = dtypes.result_type(*operands((x,)))
    if not dtypes.is_floating(out):  # NumPy's loop: the narrowest float that holds the integers
        out = np.result_type(dtypes.as_numpy(out), np.float16).name  # (int8 -> float16, int32 -> float64)
    return elementwise(fn_name, x, out_dtype=out)


def exp(x: Any) -> Array:
    """``e ** x``."""
    return _floating("exp", x)


def log(x: Any) -> Array:
    """Natural logarithm."""
    return _floating("log", x)


def sqrt(x: Any) -> Array:
    """Square root."""
    return _floating("sqrt", x)


def square(x: Any) -> Array:
    """``x * x``."""
    return _bools_as_int8("square", x)


def _bitwise(fn_name: str, op_name: str, *args: Any) -> Array:
    ops = operands(args)
    dtype = dtypes.result_type(*ops)
    if dtype != "bool" and dtypes.as_numpy(dtype).kind not in "iu":
        raise TypeError(f"{op_name} takes booleans or integers (on booleans it is the logical "
                        f"operation: masks combine with & | ^ ~). Received dtype {dtype}")
    return elementwise(fn_name, *ops)


def bitwise_and(x: Any, y: Any) -> Array:
    """``x & y``: bitwise on integers, logical on booleans.

    >>> import nbmp
    >>> x = nbmp.asarray([1.0, 2.0, 3.0])
    >>> ((x > 1) & (x < 3)).tolist()
    [False, True, False]
    """
    return _bitwise("bitwise_and", "bitwise_and (&)", x, y)


def bitwise_or(x: Any, y: Any) -> Array:
    """``x | y``: bitwise on integers, logical on booleans.

    >>> import nbmp
    >>> nbmp.ops.bitwise_or(nbmp.asarray([True, False]), False).tolist()
    [True, False]
    """
    return _bitwise("bitwise_or", "bitwise_or (|)", x, y)


def bitwise_xor(x: Any, y: Any) -> Array:
    """``x ^ y``: bitwise on integers, logical on booleans.

    >>> import nbmp
    >>> nbmp.ops.bitwise_xor(nbmp.asarray([6]), 3).tolist()
    [5]
    """
    return _bitwise("bitwise_xor", "bitwise_xor (^)", x, y)


def bitwise_invert(x: Any) -> Array:
    """``~x``: bitwise on integers, logical not on booleans.

    >>> import nbmp
    >>> nbmp.ops.bitwise_invert(nbmp.asarray([True, False])).tolist()
    [False, True]
    """
    return _bitwise("invert", "bitwise_invert (~)", x)
