"""Checking kernels against the float64 oracle, with error bounds that follow from the numerics.

A half-precision product is exact in float32, so a kernel with float32 accumulation differs
from the float64 result of the *same rounded inputs* by at most the accumulation error,
``k * 2**-24 * sum|a||b|``, plus one rounding to the output dtype (half an ulp). These helpers
compute that bound elementwise and report the worst violation in words.

>>> import numpy as np
>>> a = np.full((1, 3), 1 / 3, np.float16)
>>> y = (a.astype(np.float32) @ a.T.astype(np.float32)).astype(np.float16)
>>> assert_within_bound(y, matmul_oracle(a, a.T), matmul_bound(a, a.T, "float16"))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.backend import reference

__all__ = ["ACCUMULATION_EPS", "rounding_bound", "matmul_oracle", "matmul_bound", "conv2d_bound",
           "assert_within_bound"]

#: Unit roundoff of the float32 accumulator.
ACCUMULATION_EPS = 2.0 ** -24


def rounding_bound(exact: np.ndarray, dtype: Any) -> np.ndarray:
    """Half an ulp of `exact` in `dtype` (the error of one round-to-nearest), subnormals included."""
    info = dtypes.finfo(dtype)
    return np.abs(exact) * info.eps / 2 + info.smallest_subnormal / 2


def matmul_oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64 from the given (already rounded) inputs."""
    return reference.matmul(a, b)


def matmul_bound(a: np.ndarray, b: np.ndarray, out_dtype: Any,
                 accumulation_eps: float = ACCUMULATION_EPS) -> np.ndarray:
    """Elementwise error bound for ``a @ b`` accumulated in float32 and rounded to `out_dtype`."""
    k = a.shape[-1]
    magnitude = reference.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64)))
    exact = reference.matmul(a, b)
    return k * accumulation_eps * magnitude + rounding_bound(exact, out_dtype)


def conv2d_bound(x: np.ndarray, kernel: np.ndarray, out_dtype: Any, **conv_args: Any) -> np.ndarray:
    """Elementwise error bound for a conv2d accumulated in float32 (same arguments as
    ``reference.conv2d``), rounded to `out_dtype`."""
    k = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    magnitude = reference.conv2d(np.abs(x.astype(np.float64)), np.abs(kernel.astype(np.float64)),
                                 **conv_args)
    exact = reference.conv2d(x, kernel, **conv_args)
    return k * ACCUMULATION_EPS * magnitude + rounding_bound(exact, out_dtype)


def assert_within_bound(actual: Any, exact: np.ndarray, bound: np.ndarray, what: str = "result") -> None:
    """Raise AssertionError unless ``|actual - exact| <= bound`` everywhere.

    NaN must be where the oracle has NaN; infinities must match exactly (sign included).
    """
    got = np.asarray(actual).astype(np.float64)
    if got.shape != exact.shape:
        raise AssertionError(f"{what}: shape {got.shape}, the oracle's is {exact.shape}")
    nan_got, nan_exact = np.isnan(got), np.isnan(exact)
    if not np.array_equal(nan_got, nan_exact):
        where = np.argwhere(nan_got != nan_exact)[0]
        raise AssertionError(f"{what}: NaN mismatch at {tuple(where)}: got {got[tuple(where)]}, "
                             f"oracle {exact[tuple(where)]}")
    inf = np.isinf(exact) | np.isinf(got)
    if not np.array_equal(got[inf], exact[inf]):
        where = np.argwhere(inf & (got != exact))[0]
        raise AssertionError(f"{what}: infinity mismatch at {tuple(where)}: got {got[tuple(where)]}, "
                             f"oracle {exact[tuple(where)]}")
    finite = ~(nan_exact | inf)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(got - exact), 0.0)
    excess = np.where(finite, err - bound, -np.inf)
    if excess.size and excess.max() > 0:
        i = np.unravel_index(np.argmax(excess), excess.shape)
        raise AssertionError(
            f"{what}: error {err[i]:.3e} at {tuple(int(j) for j in i)} exceeds the bound "
            f"{bound[i]:.3e} ({err[i] / bound[i]:.2f}x): got {got[i]!r}, oracle {exact[i]!r}; "
            f"{int((excess > 0).sum())} of {excess.size} elements out of bound"
        )
