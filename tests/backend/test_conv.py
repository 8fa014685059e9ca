"""The CPU conv2d (direct kernel) held to the float64 oracle: geometry, groups, dtypes, epilogue."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbmp import dtypes, testing
from nbmp.backend import reference
from nbmp.backend.cpu import amx
from nbmp.backend.cpu import conv as cpu_conv
from nbmp.backend.cpu import conv2d as backend_conv2d
from nbmp.ops.conv import same_padding

INPUTS = ["float16", "bfloat16", "float32"]


def _check(got, x, kernel, out_dtype, bias=None, activation=None, **geometry):
    exact = reference.conv2d(x, kernel, bias, activation_name=activation, **geometry)
    bound = testing.conv2d_bound(x, kernel, "float32", **geometry)
    if bias is not None or activation is not None:
        # the bias add and the float32 activation each cost a few float32 ulps; gelu's slope < 1.13
        bound = 1.13 * bound + 8 * testing.ACCUMULATION_EPS * np.abs(exact)
        if bias is not None:
            bound += 8 * testing.ACCUMULATION_EPS * np.abs(bias)
    bound = bound + testing.rounding_bound(exact, out_dtype)
    assert got.dtype == dtypes.as_numpy(out_dtype)
    testing.assert_within_bound(got, exact, bound, "conv2d", dtype=out_dtype)


@pytest.fixture
def shares(monkeypatch):
    """The share functions the kernels' parallel calls run, in order, until the test ends."""
    called = []
    parallel = cpu_conv.threads.parallel
    monkeypatch.setattr(cpu_conv.threads, "parallel",
                        lambda share, *args, **kw: (called.append(share), parallel(share, *args, **kw)))
    return called


@st.composite
def convolutions(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    # 24 and up on AMX tiles (32, 64: whole ones); fewer on the float32 path
    cg = draw(st.sampled_from([1, 2, 3, 5, 8, 12, 16, 17, 23, 24, 32, 33, 64]))
    fg = draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if draw(st.booleans()):
        padding = (same_padding(h, kh, strides[0], dilation[0]), same_padding(w, kw, strides[1], dilation[1]))
    else:
        padding = ((draw(st.integers(0, 2)), draw(st.integers(0, 2))),
                   (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    x_shape = (draw(st.integers(1, 3)), h, w, groups * cg)
    k_shape = (kh, kw, cg, groups * fg)
    return x_shape, k_shape, dict(strides=strides, padding=padding, dilation=dilation, groups=groups)


@given(conv=convolutions(), dtype=st.sampled_from(INPUTS), out=st.sampled_from(["same", "float32"]),
       seed=st.integers(0, 2**32 - 1))
def test_conv2d_matches_oracle(conv, dtype, out, seed):
    x_shape, k_shape, geometry = conv
    rng = np.random.default_rng(seed)
    dt = dtypes.as_numpy(dtype)
    x, kernel = rng.standard_normal(x_shape).astype(dt), rng.standard_normal(k_shape).astype(dt)
    out_dtype = dtype if out == "same" else out
    got = backend_conv2d(x, kernel, None, geometry["strides"], geometry["padding"], geometry["dilation"],
                         geometry["groups"], None, out_dtype)
    _check(got, x, kernel, out_dtype, **geometry)


@pytest.mark.parametrize("dtype", INPUTS)
@pytest.mark.parametrize("activation", [None, "relu", "gelu", "sigmoid", "tanh"])
def test_conv2d_fused_bias_and_activation(dtype, activation):
    rng = np.random.default_rng(0)
    dt = dtypes.as_numpy(dtype)
    x, kernel = rng.standard_normal((2, 9, 7, 40)).astype(dt), rng.standard_normal((3, 3, 40, 20)).astype(dt)
    bias = rng.standard_normal(20).astype(np.float32)
    geometry = dict(strides=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    got = backend_conv2d(x, kernel, bias, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, activation, dtype)
    _check(got, x, kernel, dtype, bias, activation, **geometry)


@pytest.mark.parametrize("dtype", INPUTS)
@pytest.mark.parametrize("channels, geometry", [
    (6, dict(strides=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1))),
    (21, dict(strides=(1, 1), padding=((2, 2), (2, 2)), dilation=(2, 2))),   # lanes past the last channel
    (40, dict(strides=(1, 2), padding=((0, 1), (1, 0)), dilation=(1, 1))),
])
def test_conv2d_depthwise(dtype, channels, geometry):
    """groups == channels, one filter each: the channels-in-lanes kernel, with the fused epilogue."""
    rng = np.random.default_rng(channels)
    dt = dtypes.as_numpy(dtype)
    x = rng.standard_normal((2, 9, 8, channels)).astype(dt)
    kernel = rng.standard_normal((3, 3, 1, channels)).astype(dt)
    bias = rng.standard_normal(channels).astype(np.float32)
    got = backend_conv2d(x, kernel, bias, geometry["strides"], geometry["padding"], geometry["dilation"],
                         channels, "gelu", dtype)
    _check(got, x, kernel, dtype, bias, "gelu", groups=channels, **geometry)


def test_conv2d_large_reduction_of_ones_is_exact():
    """5 x 5 taps x 512 channels = 12,800 ones: far past fp16's 2048 accumulator limit."""
    x = np.ones((1, 5, 5, 512), np.float16)
    kernel = np.ones((5, 5, 512, 2), np.float16)
    got = backend_conv2d(x, kernel, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, None, np.float32)
    assert got.tolist() == [[[[12_800.0, 12_800.0]]]]


@pytest.mark.parametrize("x_shape, k_shape, out_shape", [
    ((0, 5, 5, 3), (3, 3, 3, 4), (0, 3, 3, 4)),
    ((2, 2, 2, 3), (3, 3, 3, 4), (2, 0, 0, 4)),
    ((2, 5, 5, 3), (3, 3, 3, 0), (2, 3, 3, 0)),
])
def test_conv2d_empty_results_are_shaped(x_shape, k_shape, out_shape):
    got = backend_conv2d(np.ones(x_shape, np.float16), np.ones(k_shape, np.float16), None, (1, 1),
                         ((0, 0), (0, 0)), (1, 1), 1, None, np.float16)
    assert got.shape == out_shape and got.dtype == np.float16


def test_conv2d_reads_strided_input_and_leaves_it_untouched():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 6, 8)).astype(np.float16)[:, ::-1, :, ::2]
    kernel = rng.standard_normal((2, 2, 4, 3)).astype(np.float16)
    x_before = x.copy()
    got = backend_conv2d(x, kernel, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, None, np.float16)
    np.testing.assert_array_equal(x, x_before)
    _check(got, np.ascontiguousarray(x), kernel, "float16", strides=(1, 1), padding=((0, 0), (0, 0)),
           dilation=(1, 1), groups=1)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])  # bf16: AMX tiles or vdpbf16ps pairs
@pytest.mark.parametrize("slab_bytes", [1, 1 << 18])
def test_conv2d_bands_and_threads(monkeypatch, slab_bytes, dtype, bf16_path, every_call_threaded):
    """Big enough for every thread; a tiny slab forces one output row per band."""
    if dtype == "float16" and bf16_path != "default":
        pytest.skip("the bf16 paths do not concern float16")
    monkeypatch.setattr(cpu_conv, "SLAB_BYTES", slab_bytes)
    rng = np.random.default_rng(3)
    dt = dtypes.as_numpy(dtype)
    x = rng.standard_normal((3, 17, 15, 32)).astype(dt)
    kernel = rng.standard_normal((3, 2, 32, 40)).astype(dt)
    geometry = dict(strides=(2, 1), padding=((1, 1), (0, 1)), dilation=(1, 2), groups=1)
    got = backend_conv2d(x, kernel, None, (2, 1), ((1, 1), (0, 1)), (1, 2), 1, "relu", dt)
    _check(got, x, kernel, dtype, None, "relu", **geometry)


@pytest.mark.parametrize("out", ["bfloat16", "float32"])
@pytest.mark.parametrize("slab_bytes", [1, 1 << 18])
@pytest.mark.parametrize("strides, padding, dilation", [
    ((1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((2, 3), ((0, 2), (1, 0)), (1, 2)),
])
def test_conv2d_bf16_whole_tiles_of_channels(monkeypatch, out, slab_bytes, strides, padding, dilation,
                                             bf16_path, every_call_threaded, shares):
    """64 channels: on AMX, the slab read in place as tiles of 16 pixels. Rows of 37 (or 12)
    pixels: three (one) tiles, the last mostly past the row's end; odd counts of tiles in a
    band, several groups of them; 100 filters: a whole panel, then one of 36 (a partial half)."""
    monkeypatch.setattr(cpu_conv, "SLAB_BYTES", slab_bytes)
    rng = np.random.default_rng(4)
    bf16 = dtypes.bfloat16
    x = rng.standard_normal((3, 7, 37, 64)).astype(bf16)
    kernel = rng.standard_normal((3, 3, 64, 100)).astype(bf16)
    bias = rng.standard_normal(100).astype(np.float32)
    got = backend_conv2d(x, kernel, bias, strides, padding, dilation, 1, "gelu", out)
    _check(got, x, kernel, out, bias, "gelu", strides=strides, padding=padding, dilation=dilation, groups=1)
    on_tiles = cpu_conv._share_of_conv_tiles in shares
    assert on_tiles == (amx.available() and bf16_path == "default")


@pytest.mark.parametrize("channels", [cpu_conv.TILE_MIN_CHANNELS - 1, cpu_conv.TILE_MIN_CHANNELS])
def test_conv2d_bf16_with_few_channels_skips_the_tiles(channels, shares):
    """AMX's implicit im2col pads k = 3 x 3 x channels to whole tiles: below TILE_MIN_CHANNELS a
    bf16 convolution runs on the float32 path instead (a first layer: 1 or 3 channels)."""
    from nbmp.backend.cpu import gemm

    rng = np.random.default_rng(6)
    bf16 = dtypes.bfloat16
    x = rng.standard_normal((2, 6, 7, channels)).astype(bf16)
    kernel = rng.standard_normal((3, 3, channels, 5)).astype(bf16)
    got = backend_conv2d(x, kernel, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None, np.float32)
    _check(got, x, kernel, "float32", strides=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    on_tiles = gemm._thread_tiles in shares
    assert on_tiles == (amx.available() and channels >= cpu_conv.TILE_MIN_CHANNELS)
    assert on_tiles != (cpu_conv._share_of_conv in shares)


@pytest.mark.parametrize("dtype, channels", [("float16", 8), ("bfloat16", 64)])
def test_conv2d_thread_takes_the_rows_the_others_left(monkeypatch, dtype, channels, lone_share, bf16_path):
    """Threads take runs of output rows from their own share first, then from the others':
    share 0 alone computes all of them (runs of one row here; several images)."""
    monkeypatch.setattr(cpu_conv, "SLAB_BYTES", 1)
    lone_share(cpu_conv._share_of_conv, cpu_conv._share_of_conv_tiles)
    rng = np.random.default_rng(5)
    dt = dtypes.as_numpy(dtype)
    x = rng.standard_normal((3, 9, 20, channels)).astype(dt)
    kernel = rng.standard_normal((3, 3, channels, 40)).astype(dt)
    geometry = dict(strides=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    got = backend_conv2d(x, kernel, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None, np.float32)
    _check(got, x, kernel, "float32", **geometry)


@pytest.mark.parametrize("where", ["image", "kernel"])
def test_conv2d_bf16_subnormals_are_not_read_as_zero(where, bf16_path):
    """What AMX and AVX512-BF16's vdpbf16ps would do to them: such convolutions keep the float32 path."""
    bf16 = dtypes.bfloat16
    x, kernel = np.zeros((1, 5, 5, 4), bf16), np.zeros((3, 3, 4, 3), bf16)
    tiny, big = dtypes.finfo("bfloat16").smallest_subnormal, 2.0**100
    x[..., 1], kernel[1, 1, 1, :] = (tiny, big) if where == "image" else (big, tiny)
    got = backend_conv2d(x, kernel, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None, np.float32)
    assert (got == np.float32(2.0**-33)).all()  # each output: its centre tap, tiny * 2**100


@pytest.mark.parametrize("where", ["image", "kernel"])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_bf16_subnormal_met_late_by_the_threads(where, groups, bf16_path, every_call_threaded):
    """One subnormal, in the last pixel of the last image and the last group's channels: the
    threads find it while copying (in vectors, 32 channels a group), and that group runs again."""
    bf16 = dtypes.bfloat16
    cg, per_group = 64 // groups, 8
    x, kernel = np.zeros((4, 12, 12, 64), bf16), np.zeros((3, 3, cg, per_group * groups), bf16)
    tiny, big = dtypes.finfo("bfloat16").smallest_subnormal, 2.0**100
    x[-1, -1, -1, -1], kernel[1, 1, -1, :] = (tiny, big) if where == "image" else (big, tiny)
    got = backend_conv2d(x, kernel, None, (1, 1), ((1, 1), (1, 1)), (1, 1), groups, None, np.float32)
    expected = np.zeros(got.shape, np.float32)
    expected[-1, -1, -1, -per_group:] = 2.0**-33  # the last group's filters, centred there
    np.testing.assert_array_equal(got, expected)


def test_conv2d_without_input_channels_is_the_bias():
    x, kernel = np.ones((2, 4, 4, 0), np.float16), np.ones((3, 3, 0, 5), np.float16)
    bias = np.arange(5, dtype=np.float32)
    got = backend_conv2d(x, kernel, bias, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None, np.float16)
    assert got.shape == (2, 4, 4, 5) and (got == bias).all()


def test_fused_relu_of_a_negative_zero_sum_is_plus_zero():
    # a tiny negative product rounds to -0.0 in float32: relu gives +0.0, as NumPy's maximum
    x, k = np.full((1, 3, 3, 1), -1e-30, np.float32), np.full((1, 1, 1, 1), 1e-30, np.float32)
    got = backend_conv2d(x, k, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, "relu", np.float32)
    assert (got == 0).all() and not np.signbit(got).any()
