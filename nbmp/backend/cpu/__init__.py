"""CPU backend: what ``nbmp.ops`` calls for Arrays on the ``"cpu"`` device.

Every function takes NumPy arrays (float16, bfloat16 and float32 inputs accumulate in float32,
float64 in float64) and
returns a new NumPy array in `out_dtype`, rounded once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.backend import reference
from nbmp.backend.cpu.cast import cast as float_cast

__all__ = ["cast", "matmul", "dense", "conv2d", "activation"]


def cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    """`x` converted to `dtype`, rounded to nearest even; overflow gives inf.

    Between floating dtypes this is the Numba kernel (``cast.cast``); integers and booleans
    go through NumPy.
    """
    target = dtypes.as_numpy(dtype)
    if dtypes.is_floating(x.dtype) and dtypes.is_floating(target):
        return float_cast(x, target)
    with np.errstate(all="ignore"):
        return x.astype(target)


def _acc(x: np.ndarray) -> np.ndarray:
    """The operand in its accumulation dtype: float64 stays float64, the rest go to float32."""
    return x if x.dtype in (np.float32, np.float64) else cast(x, np.float32)


def matmul(a: np.ndarray, b: np.ndarray, out_dtype: Any) -> np.ndarray:
    """``a @ b`` (batched, broadcast) with float32 accumulation, rounded once to `out_dtype`."""
    return cast(reference.matmul(_acc(a), _acc(b), _acc(a).dtype),
                out_dtype)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, activation_name: str | None,
          out_dtype: Any) -> np.ndarray:
    """``activation(x @ kernel + bias)`` for 2-D `x`, epilogue in float32, rounded once."""
    return cast(reference.dense(_acc(x), _acc(kernel), bias, activation_name, _acc(x).dtype), out_dtype)


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
           strides: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
           dilation: tuple[int, int], groups: int, activation_name: str | None,
           out_dtype: Any) -> np.ndarray:
    """NHWC x HWIO convolution with float32 accumulation, rounded once to `out_dtype`."""
    return cast(reference.conv2d(_acc(x), _acc(kernel), bias, strides, padding, dilation, groups,
                                 activation_name, _acc(x).dtype),
                out_dtype)


def activation(x: np.ndarray, name: str | None) -> np.ndarray:
    """Elementwise activation of a float32 or float64 array, in its own dtype."""
    with np.errstate(all="ignore"):
        return reference.activation(x, name)
