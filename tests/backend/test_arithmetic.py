"""The CPU kernel for arithmetic on two 16-bit operands, bit for bit against NumPy's float32
operation on the same decoded values rounded once: every fp16 and bf16 value against special and
ordinary ones, and the shapes it takes (equal, one value, trailing dimensions, either side)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbmp import dtypes
from nbmp.backend.cpu import arithmetic

HALVES = ["float16", "bfloat16"]
UFUNCS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "true_divide": np.true_divide}
#: Right operands: signed zeros, infinities, NaN, fp16's largest, subnormals of both formats,
#: ordinary values and ties.
OTHERS = [0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, -65504.0, 2.0**-24, -(2.0**-14), 2.0**-133,
          1.0, -1.0, 3.0, 0.1, -7.5, 1e-3, 1e5, 2049.0]


def _expected(fn_name, x, y, dtype):
    with np.errstate(all="ignore"):
        wide = (np.asarray(v, dtype).astype(np.float32) for v in (x, y))
        return UFUNCS[fn_name](*wide).astype(dtype)


def _same_bits(got, expected):
    """Equal bits, but for which NaN a NaN result is (its payload: x86 keeps the first operand's,
    and the order of a commutative operation is the compiler's)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    nan = np.isnan(expected.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], expected.view(np.uint16)[~nan])


@pytest.mark.parametrize("fn_name", list(UFUNCS))
@pytest.mark.parametrize("name", HALVES)
def test_every_half_value_against_special_ones(fn_name, name, every_call_threaded):
    dtype = dtypes.as_numpy(name)
    every = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    x = np.repeat(every, len(OTHERS)).reshape(-1, len(OTHERS))
    with np.errstate(over="ignore"):  # 1e5 is beyond fp16: inf
        y = np.array(OTHERS).astype(dtype)
    _same_bits(arithmetic.binary(fn_name, x, y, dtype), _expected(fn_name, x, y, dtype))  # y on each row
    _same_bits(arithmetic.binary(fn_name, y, x, dtype), _expected(fn_name, y, x, dtype))  # x on each row
    z = np.resize(y, x.shape)
    _same_bits(arithmetic.binary(fn_name, x, z, dtype), _expected(fn_name, x, z, dtype))  # same shape
    for value in (0.5, -0.0, float("inf")):  # one value, a Python float as ops passes it, either side
        _same_bits(arithmetic.binary(fn_name, every, value, dtype), _expected(fn_name, every, value, dtype))
        _same_bits(arithmetic.binary(fn_name, value, every, dtype), _expected(fn_name, value, every, dtype))


def _shapes():
    big = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
    return big.flatmap(lambda shape: st.tuples(
        st.just(shape),
        st.integers(0, len(shape)).map(lambda k: (1,) * (k % 2) + shape[len(shape) - k:])))


@given(_shapes(), st.sampled_from(list(UFUNCS)), st.sampled_from(HALVES), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_shapes_it_takes(shapes, fn_name, name, swap, seed):
    shape, small = shapes
    dtype = dtypes.as_numpy(name)
    rng = np.random.default_rng(seed)
    x, y = (rng.standard_normal(s).astype(dtype) for s in (shape, small))
    x, y = (y, x) if swap else (x, y)
    got = arithmetic.binary(fn_name, x, y, dtype)
    _same_bits(np.asarray(got), _expected(fn_name, x, y, dtype))


def test_what_it_leaves_to_the_caller():
    h = np.ones((4, 6), np.float16)
    assert arithmetic.binary("maximum", h, h, np.float16) is None      # another operation
    assert arithmetic.binary("add", h, h, np.float32) is None          # float32 result
    assert arithmetic.binary("add", h, h.astype(np.float32), np.float16) is None  # another operand dtype
    assert arithmetic.binary("add", h[:, ::2], h[:, :3], np.float16) is None      # strided
    assert arithmetic.binary("add", h, np.ones((4, 1), np.float16), np.float16) is None  # a column
    assert arithmetic.binary("add", np.ones((4, 1), np.float16), np.ones((1, 6), np.float16),
                             np.float16) is None  # both broadcast


def test_inputs_are_not_written():
    x, y = np.ones(70, np.float16), np.full(70, 2.0, np.float16)
    arithmetic.binary("add", x, y, np.float16)
    assert (x == 1).all() and (y == 2).all()


def test_shapes_that_do_not_broadcast_are_left_to_the_caller():
    h = np.ones(2, np.float16)
    assert arithmetic.binary("add", h, np.ones(3, np.float16), np.float16) is None
