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

__all__ = ["ACCUMULATION_EPS", "LAYER_RTOL", "rounding_bound", "matmul_oracle", "matmul_bound",
           "conv2d_bound", "assert_within_bound", "relative_error", "check_layer_policy_contract"]

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


def assert_within_bound(actual: Any, exact: np.ndarray, bound: np.ndarray, what: str = "result",
                        dtype: Any = None) -> None:
    """Raise AssertionError unless ``|actual - exact| <= bound`` everywhere.

    NaN must be where the oracle has NaN; infinities must match exactly (sign included). With
    `dtype` (the result's dtype), exact values that round to infinity in it even after moving by
    the bound must be that infinity, and those within the bound of the overflow threshold may be
    either.
    """
    got = np.asarray(actual).astype(np.float64)
    if got.shape != exact.shape:
        raise AssertionError(f"{what}: shape {got.shape}, the oracle's is {exact.shape}")
    if dtype is not None:
        info = dtypes.finfo(dtype)
        threshold = info.max * (1 + info.eps / 4)  # half an ulp of max above max rounds to inf
        with np.errstate(invalid="ignore"):
            overflows = np.abs(exact) - bound >= threshold
            either = (np.abs(exact) + bound >= threshold) & np.isinf(got) & (np.sign(got) == np.sign(exact))
            exact = np.where(overflows | either, np.sign(exact) * np.inf, exact)
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


#: Relative (Frobenius-norm) error a layer's output may have against float64, per compute
#: dtype: inputs and weights are rounded to it, so the error is a few units of its epsilon.
LAYER_RTOL = {"float16": 1e-2, "bfloat16": 6e-2, "float32": 1e-5, "float64": 1e-12}


def relative_error(actual: Any, exact: Any) -> float:
    """``||actual - exact|| / ||exact||`` in float64 (0 when both are zero)."""
    got, ref = np.asarray(actual).astype(np.float64), np.asarray(exact).astype(np.float64)
    scale = np.linalg.norm(ref)
    diff = np.linalg.norm(got - ref)
    return float(diff / scale) if scale else float(diff)


def check_layer_policy_contract(make_layer: Any, input_shape: tuple[int, ...], seed: int = 0,
                                **call_kwargs: Any) -> None:
    """The mixed-precision contract every nbmp layer keeps, checked for ``make_layer(dtype)``:

    - ``"mixed_float16"`` / ``"mixed_bfloat16"``: output in the compute dtype, every floating
      weight stored in float32, output within ``LAYER_RTOL`` of a float64 twin with the same
      weights;
    - ``"float64"``: weights and output float64;
    - ``"_infer"``: the layer takes its first input's dtype (float16 here).
    """
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
    twin = make_layer("float64")
    y64 = np.asarray(twin(x.astype(np.float64), **call_kwargs))
    _require(y64.dtype == np.float64, f"float64 layer output is {y64.dtype}")
    for w in twin.weights:
        if dtypes.is_floating(w.true_dtype):
            _require(w.true_dtype == np.float64, f"{w.name} of a float64 layer is {w.true_dtype}")
    for policy in ("mixed_float16", "mixed_bfloat16"):
        layer = make_layer(policy)
        layer(x, **call_kwargs)  # build
        for w in layer.weights:
            if dtypes.is_floating(w.true_dtype):
                _require(w.true_dtype == np.float32, f"{policy}: {w.name} stored as {w.true_dtype}")
        twin.set_weights([w.astype(np.float64) for w in layer.get_weights()])
        y = layer(x, **call_kwargs)
        compute = layer.compute_dtype
        _require(y.dtype == compute, f"{policy}: output dtype {y.dtype}, compute dtype {compute}")
        exact = np.asarray(twin(x.astype(np.float64), **call_kwargs))
        err = relative_error(y, exact)
        _require(err <= LAYER_RTOL[compute],
                 f"{policy}: relative error {err:.2e} against float64 exceeds {LAYER_RTOL[compute]:.0e}")
    inferring = make_layer("_infer")
    y16 = inferring(x.astype(np.float16), **call_kwargs)
    _require(y16.dtype == np.float16 and inferring.compute_dtype == "float16",
             f"_infer: output {y16.dtype}, compute dtype {inferring.compute_dtype}")


def _require(condition: bool, message: str) -> None:
    """AssertionError(`message`) unless `condition`: an explicit check, which ``python -O``
    keeps (it drops ``assert`` statements)."""
    if not condition:
        raise AssertionError(message)
