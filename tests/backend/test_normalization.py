"""The CPU normalization kernels: moments per row or per column held to float64 on the same
inputs (float32's rounding of the exact values), normalize bit for bit against its float32
formula, and ``nbmp.ops`` taking them exactly where the shapes fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nbmp
from nbmp import dtypes, ops, testing
from nbmp.backend.cpu import normalization

DTYPES = ["float16", "bfloat16", "float32"]


def _exact_moments(x, rows):
    x64 = x.astype(np.float64)
    axis = -1 if rows else tuple(range(x.ndim - 1))
    mean = x64.mean(axis)
    return mean, ((x64 - x64.mean(axis, keepdims=True)) ** 2).mean(axis)


def _check_moments(x, rows):
    mean, var = normalization.moments(x, rows=rows)
    exact_mean, exact_var = _exact_moments(x, rows)
    assert mean.dtype == var.dtype == np.float32
    assert mean.shape == var.shape == (x.shape[:-1] if rows else x.shape[-1:])
    # float64 sums: float32's one rounding of the exact values (and a hair for the float64 steps)
    for got, exact in ((mean, exact_mean), (var, exact_var)):
        bound = 1.001 * testing.rounding_bound(exact, np.float32)
        testing.assert_within_bound(got, exact, bound, "moments", dtype=np.float32)


@given(st.sampled_from(DTYPES), st.booleans(), st.integers(1, 5), st.integers(1, 70), st.floats(0.01, 300),
       st.floats(-100, 100), st.integers(0, 2**32 - 1))
def test_moments_within_float32_rounding_of_the_exact_values(name, rows, batch, length, scale, center, seed):
    x = np.random.default_rng(seed).standard_normal((batch, 3, length)) * scale + center
    _check_moments(x.astype(dtypes.as_numpy(name)), rows)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("rows", [True, False])
def test_moments_on_threads_and_of_one_dimension(name, rows, every_call_threaded, use_threads):
    dt = dtypes.as_numpy(name)
    for count in (1, 2, 3):
        use_threads(count)
        _check_moments((np.random.default_rng(count).standard_normal((7, 5, 33)) * 9).astype(dt), rows)
    _check_moments(np.array([1.0, 2.0, 4.0], dt), rows=True)


def test_moments_do_not_overflow_where_the_values_do_not():
    """float64 sums: bf16 values near float32's largest have a finite mean (NumPy's float32 sum
    overflowed), and their variance overflows float32 only as the exact one does."""
    x = np.array([[3e38, 3e38, 2e38], [1e-10, 2e-10, 3e-10]], dtypes.bfloat16)
    mean, var = normalization.moments(x, rows=True)
    exact_mean, exact_var = _exact_moments(x, rows=True)
    assert np.isfinite(mean).all() and np.isinf(var[0]) and exact_var[0] > np.finfo(np.float32).max
    np.testing.assert_allclose(mean, exact_mean, rtol=2**-23)
    np.testing.assert_allclose(var[1], exact_var[1], rtol=2**-23)


@pytest.mark.parametrize("name", DTYPES)
def test_moments_of_special_values_as_numpys_formula_gives_them(name):
    dt = dtypes.as_numpy(name)
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [np.inf, -np.inf, 0.0], [-0.0, -0.0, -0.0]], dt)
    for rows in (True, False):
        mean, var = normalization.moments(x, rows=rows)
        x32 = x.astype(np.float32)
        axis = -1 if rows else 0
        with np.errstate(invalid="ignore"):
            want_mean = x32.mean(axis)
            want_var = ((x32 - x32.mean(axis, keepdims=True)) ** 2).mean(axis)
        np.testing.assert_array_equal(mean, want_mean)
        np.testing.assert_array_equal(var, want_var)


def test_moments_refuse_what_they_cannot_reduce():
    with pytest.raises(ValueError, match="nothing to reduce"):
        normalization.moments(np.ones((3, 0), np.float16), rows=True)
    with pytest.raises(TypeError, match="float64"):
        normalization.moments(np.ones(3), rows=True)


def _formula(x, center, spread, scale, offset):
    """``nbmp.ops.normalize``'s float32 steps, written out."""
    with np.errstate(all="ignore"):
        y = (x.astype(np.float32) - center) / spread
        if scale is not None:
            y = y * scale
        if offset is not None:
            y = y + offset
        return y.astype(x.dtype)


def _same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
    bits = np.uint32 if got.dtype == np.float32 else np.uint16
    np.testing.assert_array_equal(got.view(bits)[~nan], want.view(bits)[~nan])


@given(st.sampled_from(DTYPES), st.booleans(), st.booleans(), st.booleans(), st.integers(1, 4),
       st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_normalize_gives_the_bits_of_its_float32_formula(name, per_row, with_scale, with_offset, batch,
                                                         length, seed):
    rng = np.random.default_rng(seed)
    dt = dtypes.as_numpy(name)
    x = (rng.standard_normal((batch, 3, length)) * 7).astype(dt)
    stat_shape = (batch, 3, 1) if per_row else (length,)
    center = rng.standard_normal(stat_shape).astype(np.float32)
    spread = np.sqrt(rng.random(stat_shape).astype(np.float32) + np.float32(1e-3))
    scale = rng.standard_normal(length).astype(np.float32) if with_scale else None
    offset = rng.standard_normal(length).astype(np.float32) if with_offset else None
    got = normalization.normalize(x, center.reshape(-1), spread.reshape(-1), per_row,
                                  np.ones(length, np.float32) if scale is None else scale, offset)
    _same_bits(got, _formula(x, center, spread, scale, offset))


@pytest.mark.parametrize("name", DTYPES)
def test_normalize_of_special_values_on_threads(name, every_call_threaded, use_threads):
    dt = dtypes.as_numpy(name)
    x = np.array([[np.nan, np.inf, -np.inf, -0.0, 0.0, 60000.0, -1e-7, 1.0] * 3] * 5, dt)
    center = np.array([0.0, -0.0, np.inf, 1.0, np.nan], np.float32).reshape(5, 1)
    spread = np.array([1.0, 0.0, 2.0, 1e-3, 1.0], np.float32).reshape(5, 1)
    offset = np.linspace(-1, 1, 24).astype(np.float32)
    for count in (1, 2):
        use_threads(count)
        ones = np.ones(24, np.float32)
        got = normalization.normalize(x, center.reshape(-1), spread.reshape(-1), True, ones, None)
        _same_bits(got, _formula(x, center, spread, None, None))
        got = normalization.normalize(x, center.reshape(-1), spread.reshape(-1), True, offset, offset)
        _same_bits(got, _formula(x, center, spread, offset, offset))


def _ops_paths(monkeypatch):
    """Counts of the backend kernels' calls from ``nbmp.ops``."""
    calls = {"moments": 0, "normalize": 0}
    cpu = nbmp.backend.for_device("cpu")
    for name in calls:
        kernel = getattr(cpu, name)

        def counted(*args, _kernel=kernel, _name=name, **kwargs):
            calls[_name] += 1
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(cpu, name, counted)
    return calls


@pytest.mark.parametrize("name", DTYPES)
def test_ops_take_the_kernels_where_the_shapes_fit_and_numpy_elsewhere(name, monkeypatch):
    calls = _ops_paths(monkeypatch)
    dt = dtypes.as_numpy(name)
    x = nbmp.asarray((np.random.default_rng(0).standard_normal((4, 5, 6)) * 3 + 1).astype(dt))
    x64 = x.numpy().astype(np.float64)
    cases = [(-1, True, 1), (2, False, 1), ((0, 1), True, 1), ([1, 0], False, 1), (0, True, 0),
             ((0, 2), False, 0), (None, True, 0)]
    for axes, keepdims, kernel in cases:
        before = calls["moments"]
        mean, var = ops.moments(x, axes, keepdims=keepdims)
        assert calls["moments"] - before == kernel, axes
        axis = tuple(axes) if isinstance(axes, list) else axes
        want_mean, want_var = x64.mean(axis, keepdims=keepdims), x64.var(axis, keepdims=keepdims)
        assert mean.dtype == var.dtype == np.float32 and mean.shape == want_mean.shape
        np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(var.numpy(), want_var, rtol=1e-5)

    mean, var = ops.moments(x, -1, keepdims=True)
    gamma, beta = np.linspace(0.5, 2, 6).astype(np.float32), np.linspace(-1, 1, 6).astype(dt)
    shapes = [(mean, var, gamma, beta, 1), (0.5, 2.0, None, None, 1), (mean, 2.0, gamma, 0.25, 1),
              (np.zeros((1, 1, 6)), np.ones(6), None, beta, 1),
              (mean, var, np.ones((4, 5, 1), np.float32), None, 0),  # a scale per row: NumPy's way
              (np.zeros((5, 1)), 1.0, None, None, 0)]                # statistics per (axis 1, row)
    for center, spread, scale, offset, kernel in shapes:
        before = calls["normalize"]
        got = ops.normalize(x, center, spread, offset, scale, epsilon=1e-3)
        assert calls["normalize"] - before == kernel
        f32 = [None if v is None else np.asarray(nbmp.asarray(v).numpy(), np.float32)
               for v in (center, spread, scale, offset)]
        want = _formula(x.numpy(), f32[0], np.sqrt(f32[1] + np.float32(1e-3)), f32[2], f32[3])
        _same_bits(got.numpy(), want)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float32"])
def test_normalization_layers_on_the_kernels_match_the_float64_formula(policy):
    x = np.random.default_rng(1).normal(3, 2, (8, 4, 4, 16)).astype(np.float32)
    compute = nbmp.DTypePolicy(policy).compute_dtype
    xc = np.asarray(nbmp.asarray(x, dtype=compute).numpy(), np.float64)
    layers = nbmp.layers
    for layer, kwargs, axes in ((layers.LayerNormalization(dtype=policy), {}, -1),
                                (layers.BatchNormalization(dtype=policy), {"training": True}, (0, 1, 2))):
        y = layer(x, **kwargs).numpy().astype(np.float64)
        want = (xc - xc.mean(axes, keepdims=True)) / np.sqrt(xc.var(axes, keepdims=True) + 1e-3)
        tolerance = 4 * dtypes.finfo(compute).eps * np.abs(want) + 1e-6
        assert (np.abs(y - want) <= tolerance).all(), (layer, np.max(np.abs(y - want)))


def test_normalize_takes_numbers_past_float32s_range_as_inf_without_a_warning():
    x = nbmp.asarray(np.array([[1.0, 2.0]], np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ops.normalize(x, 1e39, 1.0).numpy().tolist() == [[-np.inf, -np.inf]]
        assert ops.normalize(x, 0.0, 1.0, offset=1e39, scale=1e39).numpy().tolist() == [[np.inf, np.inf]]


def test_normalization_layers_read_their_weights_again_after_an_assign():
    """The weights reshaped for broadcasting are kept with their values: an assign gives new ones."""
    x = np.random.default_rng(2).normal(1, 2, (4, 3, 5)).astype(np.float32)
    for layer in (nbmp.layers.LayerNormalization(), nbmp.layers.BatchNormalization()):
        before = layer(x).numpy()
        layer.gamma.assign(np.full(5, 2.0, np.float32))
        layer.beta.assign(np.full(5, 0.5, np.float32))
        np.testing.assert_allclose(layer(x).numpy(), 2 * before + 0.5, rtol=1e-6, atol=1e-6)
    bn = nbmp.layers.BatchNormalization()
    bn(x)
    bn.moving_mean.assign(np.ones(5, np.float32))
    bn.moving_variance.assign(np.full(5, 4.0, np.float32))
    np.testing.assert_allclose(bn(x).numpy(), (x - 1) / np.sqrt(np.float32(4.0 + 1e-3)), rtol=1e-6, atol=1e-6)
