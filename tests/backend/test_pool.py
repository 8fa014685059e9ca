"""The CPU pooling kernel held to ``reference.pool2d`` in float64 on the same inputs: maxima
exact (NaN included), means within float32 accumulation and the final rounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbmp import dtypes, testing
from nbmp.backend import reference
from nbmp.backend.cpu import pool
from nbmp.ops.conv import same_padding

DTYPES = ["float16", "bfloat16", "float32"]  # the kernel's; float64 goes to the oracle itself
#: Values a window may hold besides normal ones: NaN, infinities, signed zeros, the largest
#: finite fp16, subnormals of each 16-bit format (fp16 2**-24; bf16 2**-133).
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 65504.0, -65504.0, 2.0**-24, -(2.0**-133)]


def _check(x, kind, pool_size, strides, pads):
    got = pool.pool2d(x, kind, pool_size, strides, pads)
    exact = reference.pool2d(x, kind, pool_size, strides, pads)
    assert got.dtype == x.dtype and got.shape == exact.shape
    if kind == "max":  # one of the inputs: exact, NaN where the oracle has NaN
        np.testing.assert_array_equal(got.astype(np.float64), exact)
        return
    # a float32 sum of at most pool_size[0] * pool_size[1] values, divided by the count (one
    # more float32 rounding), then the rounding to x's dtype
    count = pool_size[0] * pool_size[1]
    magnitude = reference.pool2d(np.abs(x.astype(np.float64)), "avg", pool_size, strides, pads)
    bound = (count + 1) * testing.ACCUMULATION_EPS * magnitude + testing.rounding_bound(exact, x.dtype)
    testing.assert_within_bound(got, exact, bound, "avg_pool2d", dtype=x.dtype)


@st.composite
def poolings(draw):
    shape = (draw(st.integers(0, 3)), draw(st.integers(0, 9)), draw(st.integers(0, 9)),
             draw(st.sampled_from([0, 1, 3, 15, 16, 17, 32, 40])))  # vectors of 16 and tails
    pool_size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pads = ((0, 0), (0, 0))
    if draw(st.booleans()):  # "same"
        pads = tuple(same_padding(shape[1 + a], pool_size[a], strides[a], 1) for a in (0, 1))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 1e-6, 1e4]))
    specials = draw(st.integers(0, 6))
    if data.size and specials:
        data.flat[rng.integers(0, data.size, specials)] = rng.choice(SPECIAL, specials)
    return data.astype(dtypes.as_numpy(dtype)), pool_size, strides, pads


@given(poolings(), st.sampled_from(["max", "avg"]))
def test_pooling_matches_the_oracle(case, kind):
    x, pool_size, strides, pads = case
    _check(x, kind, pool_size, strides, pads)


def test_float64_is_pooled_by_the_oracle(monkeypatch):
    called = []
    monkeypatch.setattr(reference, "pool2d", lambda *args: called.append(args) or "oracle")
    assert pool.pool2d(np.ones((1, 2, 2, 1)), "avg", (2, 2), (2, 2), ((0, 0), (0, 0))) == "oracle"
    assert len(called) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 19])  # one at a time; a vector of 16 and a tail
def test_a_mean_is_the_float32_quotient_rounded_once(dtype, channels):
    # (1649 + 0.2394 + 0.0105) / 3 = 549.74996 rounds to float16 549.5, but the sum times a float32
    # 1/3 gave 549.75 exactly, a float16 tie that went to 550
    values = np.array([1649.0, 0.2393798828125, 0.010498046875], np.float32)
    rng = np.random.default_rng(0)
    windows = np.concatenate([values[:, None], rng.standard_normal((3, channels - 1)) * 100], axis=1)
    x = windows.astype(dtypes.as_numpy(dtype))[None, :, None, :]  # a 3 x 1 image
    got = pool.pool2d(x, "avg", (3, 1), (1, 1), ((0, 0), (0, 0)))
    wide = x.astype(np.float32)[0, :, 0, :]
    quotient = ((wide[0] + wide[1]) + wide[2]) / np.float32(3)  # the kernel's order of the sums
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint8),
                                  quotient.astype(x.dtype).reshape(-1).view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_mean_of_negative_zeros_is_negative_zero(dtype):
    x = np.full((1, 2, 2, 19), -0.0, dtypes.as_numpy(dtype))  # a vector of 16 channels and a tail
    got = pool.pool2d(x, "avg", (2, 2), (2, 2), ((0, 0), (0, 0)))
    assert (got == 0).all() and np.signbit(got).all()


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_share_the_rows(kind, dtype, every_call_threaded, use_threads):
    use_threads(3)
    x = np.random.default_rng(1).standard_normal((2, 9, 7, 21)).astype(dtypes.as_numpy(dtype))
    x[1, 4, 3, 5] = np.nan
    _check(x, kind, (3, 2), (2, 2), ((1, 1), (0, 1)))


def test_a_nan_wins_wherever_it_is_in_the_window():
    x = np.zeros((1, 2, 2, 17), np.float16)  # a vector of 16 channels and one after it
    for place in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        x[...] = 1
        x[(0, *place)] = np.nan
        got = pool.pool2d(x, "max", (2, 2), (2, 2), ((0, 0), (0, 0)))
        assert np.isnan(got).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_maximum_of_signed_zeros_is_plus_zero_in_every_channel(dtype):
    x = np.full((1, 2, 2, 19), -0.0, dtypes.as_numpy(dtype))  # a vector of 16 channels and a tail
    x[0, 1, 0] = 0.0
    got = pool.pool2d(x, "max", (2, 2), (2, 2), ((0, 0), (0, 0)))
    assert (got == 0).all() and not np.signbit(got).any()  # the tail kept -0.0
    x[0, 1, 0] = -0.0
    assert np.signbit(pool.pool2d(x, "max", (2, 2), (2, 2), ((0, 0), (0, 0)))).all()


def test_pool2d_rejects_what_it_cannot_do():
    x = np.ones((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="kind"):
        pool.pool2d(x, "min", (2, 2), (2, 2), ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="below the pool size"):
        pool.pool2d(x, "max", (2, 2), (2, 2), ((2, 0), (0, 0)))
    with pytest.raises(TypeError, match="int32"):
        pool.pool2d(x.astype(np.int32), "max", (2, 2), (2, 2), ((0, 0), (0, 0)))
