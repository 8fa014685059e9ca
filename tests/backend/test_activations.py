"""The CPU activation kernel held to ``reference.activation`` in float64 on the same inputs, and
to the GEMM epilogue it shares its function with."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbmp import dtypes, testing
from nbmp.backend import reference
from nbmp.backend.cpu import activations, gemm, threads

DTYPES = ["float16", "bfloat16", "float32", "float64"]
NAMES = ["relu", "sigmoid", "tanh", "gelu"]
#: NaN, infinities, signed zeros, the largest finite fp16, subnormals of each format, gelu's floor
#: and where its float32 result turns subnormal, sigmoid's where exp(-x) overflows.
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 65504.0, -65504.0, 2.0**-24, -(2.0**-133), 1e-45, -1e4,
           -1e5, -13.5, -14.0, -89.0, -104.0, 5.0, -5.0]


def _check(x: np.ndarray, name: str) -> None:
    got = activations.activation(x, name)
    assert got.dtype == x.dtype and got.shape == x.shape
    values = x.astype(np.float64)
    exact = reference.activation(values, name)
    # computed in float32 (float64 for float64): a few ulps of that, more for gelu far left (an
    # ulp of x / sqrt 2 moves erfc by x**2 ulps, and the oracle rounds it too), then one rounding
    # to x's dtype
    work = np.float64 if x.dtype == np.float64 else np.float32
    info = dtypes.finfo(work)
    with np.errstate(invalid="ignore"):
        relative = 2 * np.where(np.isfinite(values), values**2, 0) + 8 if name == "gelu" else 8
    bound = relative * info.eps * np.abs(exact) + 4 * info.smallest_subnormal
    bound += testing.rounding_bound(exact, x.dtype)
    testing.assert_within_bound(got, exact, bound, name, dtype=x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_activation_within_the_bound(dtype, name):
    rng = np.random.default_rng(0)
    values = np.concatenate([SPECIAL, rng.standard_normal(3000) * 8, rng.standard_normal(500) * 1e3])
    with np.errstate(over="ignore"):
        _check(values.astype(dtypes.as_numpy(dtype)), name)


@given(data=st.data(), dtype=st.sampled_from(DTYPES), name=st.sampled_from(NAMES),
       shape=st.sampled_from([(0,), (1,), (7, 3), (2, 0, 4), (33,)]))
def test_activation_of_any_values_and_shape(data, dtype, name, shape):
    size = int(np.prod(shape))
    values = data.draw(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-1e5, 1e5, width=32)),
                                min_size=size, max_size=size))
    with np.errstate(over="ignore"):
        _check(np.array(values, np.float64).reshape(shape).astype(dtypes.as_numpy(dtype)), name)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu"])
def test_the_gemm_epilogue_computes_the_same_function(dtype, name):
    # act(x) and the dense epilogue of x @ [[1]] run the same float32 code (vmath, fastmath off
    # in both): bit for bit, the float32 subnormals near gelu's -14 included
    dt = dtypes.as_numpy(dtype)
    with np.errstate(over="ignore"):
        x = np.concatenate([SPECIAL, np.linspace(-20, 20, 4001)]).astype(dt)
    x = x[~((x == 0) & np.signbit(x))]  # (the product's sum starts from +0.0: -0.0 does not reach it)
    fused = gemm.gemm(x.reshape(-1, 1), np.ones((1, 1), dt), dt, activation=name).reshape(-1)
    np.testing.assert_array_equal(activations.activation(x, name).view(np.uint8), fused.view(np.uint8))


def test_activation_of_a_strided_view_leaves_it_unchanged():
    x = np.linspace(-3, 3, 60, dtype=np.float32).reshape(6, 10)
    before = x.copy()
    view = x[::2, ::3]
    np.testing.assert_array_equal(activations.activation(view, "gelu"),
                                  activations.activation(np.ascontiguousarray(view), "gelu"))
    np.testing.assert_array_equal(x, before)


def test_large_arrays_split_among_threads_agree_with_one_thread():
    x = np.random.default_rng(1).standard_normal(activations.PARALLEL_MIN[4] + 5).astype(np.float32)
    many = activations.activation(x, "gelu")
    count = threads.get_num_threads()
    threads.set_num_threads(1)
    try:
        np.testing.assert_array_equal(activations.activation(x, "gelu"), many)
    finally:
        threads.set_num_threads(count)


def test_identity_and_bad_input():
    x = np.ones(3, np.float32)
    assert activations.activation(x, None) is x and activations.activation(x, "linear") is x
    with pytest.raises(ValueError, match="'swish'.*Valid: .*gelu"):
        activations.activation(x, "swish")
    with pytest.raises(TypeError, match="unsupported dtype.*Received: int32"):
        activations.activation(np.ones(3, np.int32), "gelu")


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_of_minus_zero_is_plus_zero_in_every_dtype(dtype):
    got = activations.activation(np.array([-0.0, -1.0, np.nan], dtypes.as_numpy(dtype)), "relu")
    assert not np.signbit(got[:2]).any() and (got[:2] == 0).all() and np.isnan(got[2])
