"""The float32 functions of ``vmath`` against float64 on the same inputs, in float32 ulps: every
fp16 and bf16 value, two million float32 bit patterns and a dense grid where the functions bend."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from numba import njit

from nbmp.backend import reference
from nbmp.backend.cpu import vmath

#: Largest error measured, rounded up: exp 1.2 ulps, sigmoid 2.3, tanh 1.3, gelu 6.0.
ULPS = {"exp": 2, "sigmoid": 3, "tanh": 2, "gelu": 7}
ACTS = {"sigmoid": 2, "tanh": 3, "gelu": 4}


@njit
def _exp(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = vmath.exp32(x[i])
    return out


def _values() -> np.ndarray:
    every_half = np.arange(1 << 16, dtype=np.uint16)
    patterns = np.random.default_rng(0).integers(0, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([every_half.view(np.float16).astype(np.float32),
                        every_half.view(ml_dtypes.bfloat16).astype(np.float32),
                        patterns.view(np.float32), np.linspace(-20, 20, 400_001, dtype=np.float32),
                        np.linspace(-110, 110, 200_001, dtype=np.float32)])
    return x[np.isfinite(x)]


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / np.maximum(ulp, 2.0**-149)


@pytest.mark.parametrize("name", ["exp", *ACTS])
def test_within_a_few_ulps_of_float64(name):
    x = _values()
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        exact = np.exp(x64) if name == "exp" else reference.activation(x64, name)
    if name == "exp":
        got = _exp(x)
    else:
        got = x.copy()
        vmath.activate_span(got, 0, got.size, ACTS[name])
    finite = np.abs(exact) < np.finfo(np.float32).max
    with np.errstate(over="ignore"):  # overflow: inf where float64 rounds to it
        assert (got[~finite] == exact[~finite].astype(np.float32)).all()
    worst = _ulps(got[finite], exact[finite]).max()
    assert worst <= ULPS[name], f"{name}: {worst:.2f} ulps"


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    want = {"sigmoid": [np.nan, 1, 0, 0.5, 0.5], "tanh": [np.nan, 1, -1, 0.0, -0.0],
            "gelu": [np.nan, np.inf, -0.0, 0.0, -0.0]}
    for name, act in ACTS.items():
        got = x.copy()
        vmath.activate_span(got, 0, got.size, act)
        np.testing.assert_array_equal(got, np.array(want[name], np.float32))
        assert (np.signbit(got[3:]) == np.signbit(np.array(want[name][3:]))).all(), name
    np.testing.assert_array_equal(_exp(x), [np.nan, np.inf, 0, 1, 1])


def test_span_leaves_the_rest_of_the_buffer():
    buf = np.arange(-5, 5, dtype=np.float32)
    vmath.activate_span(buf, 3, 7, 1)
    np.testing.assert_array_equal(buf, [-5, -4, -3, 0, 0, 0, 1, 2, 3, 4])
