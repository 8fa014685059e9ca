"""The CPU softmax kernel (last axis, a row at a time) held to float64 on the same inputs: within
float32's exp, sum and division and the final rounding; special values as NumPy's formula gives."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbmp import dtypes, testing

softmax_kernels = importlib.import_module("nbmp.backend.cpu.softmax")  # (the function shadows it)
DTYPES = ["float16", "bfloat16", "float32"]


def _exact(x):
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(x64 - x64.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)


def _check(x):
    got = softmax_kernels.softmax(x)
    exact = _exact(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    # x - max rounded in float32 (its rounding magnified |x - max| times by exp), exp within 2
    # float32 ulps, a float32 sum of the row's terms, a division, then x's rounding
    length = x.shape[-1] if x.ndim else 1
    with np.errstate(invalid="ignore"):
        spread = np.abs(x.astype(np.float64) - x.astype(np.float64).max(-1, keepdims=True))
    relative = (length + 4 + np.nan_to_num(spread)) * testing.ACCUMULATION_EPS
    # (and two roundings, exp's and the division's, where a result is a float32 subnormal)
    bound = relative * np.abs(exact) + 2 * 2.0**-149 + testing.rounding_bound(exact, x.dtype)
    testing.assert_within_bound(got, exact, bound, "softmax", dtype=x.dtype)


@given(st.sampled_from(DTYPES), st.integers(1, 5), st.integers(1, 70), st.floats(0.1, 30),
       st.integers(0, 2**32 - 1))
def test_rows_of_any_length_within_the_bound(name, rows, length, scale, seed):
    x = np.random.default_rng(seed).standard_normal((rows, length)) * scale
    _check(x.astype(dtypes.as_numpy(name)))


@pytest.mark.parametrize("name", DTYPES)
def test_special_values_as_numpys_formula_gives_them(name, every_call_threaded):
    dt = dtypes.as_numpy(name)
    x = np.array([[1000.0, 1000.0, -np.inf] + [0.0] * 17,  # 20 columns: a vector and a tail
                  [np.nan] + [0.0] * 19,
                  [0.0] * 19 + [np.nan],
                  [np.inf] + [0.0] * 19,
                  [-np.inf] * 20,
                  [-60000.0] + [60000.0] * 19]).astype(dt)
    got = softmax_kernels.softmax(x).astype(np.float64)
    exact = _exact(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exact))
    assert got[0, :2].tolist() == [0.5, 0.5] and (got[0, 2:] == 0).all()
    _check(x[[0, 5]])


def test_threads_share_the_rows(every_call_threaded, use_threads):
    use_threads(3)
    x = np.random.default_rng(0).standard_normal((7, 33)).astype(np.float16)
    _check(x)


def test_what_it_does_not_take():
    with pytest.raises(TypeError, match="float64"):
        softmax_kernels.softmax(np.ones((2, 3)))
    assert softmax_kernels.softmax(np.ones((2, 0), np.float16)).shape == (2, 0)
