"""The float64 oracle itself, against direct loops, and the bound checker."""

import numpy as np
import pytest

from nbmp import testing
from nbmp.backend import reference


def direct_conv2d(x, k, strides, padding, dilation, groups):
    n, h, w, c = x.shape
    kh, kw, cg, f = k.shape
    xp = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    oh = reference.conv_output_size(h, kh, strides[0], dilation[0], padding[0])
    ow = reference.conv_output_size(w, kw, strides[1], dilation[1], padding[1])
    out = np.zeros((n, oh, ow, f))
    fg = f // groups
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(f):
                    g = o // fg
                    for p in range(kh):
                        for q in range(kw):
                            for ci in range(cg):
                                out[b, i, j, o] += (xp[b, i * strides[0] + p * dilation[0],
                                                       j * strides[1] + q * dilation[1], g * cg + ci]
                                                    * k[p, q, ci, o])
    return out


@pytest.mark.parametrize("strides, padding, dilation, groups", [
    ((1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 1), ((1, 1), (0, 2)), (1, 2), 1),
    ((1, 2), ((1, 0), (1, 1)), (2, 1), 2),
    ((1, 1), ((1, 1), (1, 1)), (1, 1), 4),
])
def test_reference_conv2d_matches_direct_loops(strides, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 7, 4))
    k = rng.standard_normal((3, 2, 4 // groups, 4))
    got = reference.conv2d(x, k, None, strides, padding, dilation, groups)
    np.testing.assert_allclose(got, direct_conv2d(x, k, strides, padding, dilation, groups),
                               rtol=1e-12, atol=1e-12)


def test_reference_activations():
    y = np.array([-1.0, 0.0, 2.0])
    assert reference.activation(y, "relu").tolist() == [0.0, 0.0, 2.0]
    np.testing.assert_allclose(reference.activation(y, "gelu"),
                               [-0.15865525393145707, 0.0, 1.9544997361036416], rtol=1e-15)
    with pytest.raises(ValueError, match="Unknown activation"):
        reference.activation(y, "swish")


def test_bound_checker_accepts_float32_accumulation_and_rejects_float16_accumulation():
    k = 4096
    a = np.full((1, k), 1.0, np.float16)
    b = np.full((k, 1), 1.0, np.float16)
    exact = testing.matmul_oracle(a, b)
    bound = testing.matmul_bound(a, b, "float16")
    testing.assert_within_bound(np.float16(k).reshape(1, 1), exact, bound)
    fp16_accumulator = np.float16(0)
    for _ in range(k):
        fp16_accumulator = np.float16(fp16_accumulator + np.float16(1))
    assert fp16_accumulator == 2048
    with pytest.raises(AssertionError, match="exceeds the bound"):
        testing.assert_within_bound(fp16_accumulator.reshape(1, 1), exact, bound)


def test_bound_checker_nan_and_inf():
    exact = np.array([np.nan, np.inf, 1.0])
    bound = np.zeros(3)
    testing.assert_within_bound(np.array([np.nan, np.inf, 1.0]), exact, bound)
    with pytest.raises(AssertionError, match="NaN"):
        testing.assert_within_bound(np.array([1.0, np.inf, 1.0]), exact, bound)
    with pytest.raises(AssertionError, match="infinity"):
        testing.assert_within_bound(np.array([np.nan, -np.inf, 1.0]), exact, bound)
