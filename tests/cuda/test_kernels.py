"""The CUDA kernels against the float64 oracle, with the error bounds of float32 accumulation
and one rounding (``nbmp.testing``). Shapes are tiny and not multiples of the tiles."""

from __future__ import annotations

import numpy as np
import pytest

from nbmp import dtypes
from nbmp.backend import cpu, reference
from nbmp.testing import assert_within_bound, conv2d_bound, matmul_bound, matmul_oracle, rounding_bound

F16, BF16, F32, F64 = np.dtype(np.float16), dtypes.bfloat16, np.dtype(np.float32), np.dtype(np.float64)
HALVES = [F16, BF16]


def _host(y):
    """Device result -> NumPy (CuPy arrays on a GPU)."""
    return y if isinstance(y, np.ndarray) else y.get()


def _pair(shape, dtype, rng, transpose=False):
    """(host, device) operand of `shape`; with `transpose` a transposed view of a (.., n, m) array."""
    base_shape = shape[:-2] + shape[-2:][::-1] if transpose else shape
    base = rng.standard_normal(base_shape).astype(dtype)
    host = np.swapaxes(base, -1, -2) if transpose else base
    from nbmp.backend.cuda.storage import array_module, to_device

    dev = to_device(base)
    return host, array_module(dev).swapaxes(dev, -1, -2) if transpose else dev


def _acc_bound(a, b, dtype):
    """Bound for float32 accumulation (float64: its own epsilon) rounded once to `dtype`."""
    eps = 2.0 ** -53 if dtype == F64 else 2.0 ** -24
    return matmul_bound(a, b, dtype, accumulation_eps=eps)


@pytest.mark.parametrize("dtype", [F16, BF16, F32, F64], ids=lambda d: d.name)
def test_matmul_edge_sizes(cuda_backend, rng, dtype):
    a, da = _pair((37, 19), dtype, rng)
    b, db = _pair((19, 45), dtype, rng)
    y = _host(cuda_backend.matmul(da, db, dtype))
    assert y.dtype == dtype
    assert_within_bound(y, matmul_oracle(a, b), _acc_bound(a, b, dtype), f"{dtype.name} matmul")


@pytest.mark.parametrize("dtype", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
def test_matmul_transposed_operands(cuda_backend, rng, dtype, ta, tb):
    a, da = _pair((21, 13), dtype, rng, transpose=ta)
    b, db = _pair((13, 30), dtype, rng, transpose=tb)
    y = _host(cuda_backend.matmul(da, db, "float32"))
    assert y.dtype == F32
    assert_within_bound(y, matmul_oracle(a, b), _acc_bound(a, b, F32))


def test_matmul_batched_broadcast_and_vectors(cuda_backend, rng):
    a, da = _pair((2, 1, 3, 5), F16, rng)
    b, db = _pair((2, 5, 4), F16, rng)
    y = _host(cuda_backend.matmul(da, db, F16))
    assert y.shape == (2, 2, 3, 4)
    assert_within_bound(y, matmul_oracle(a, b), _acc_bound(a, b, F16))
    v, dv = a[0, 0, 0], da[0, 0, 0]
    yv = _host(cuda_backend.matmul(dv, db[0], F16))
    assert yv.shape == (4,)
    assert_within_bound(yv, matmul_oracle(v, b[0]), _acc_bound(v[None], b[0], F16)[0])


def test_fp16_ones_dot_of_300_is_exact(cuda_backend):
    """An fp16 accumulator would round partial sums; float32 accumulation gives exactly 300."""
    ones = np.ones((1, 300), np.float16)
    from nbmp.backend.cuda.storage import to_device

    y = _host(cuda_backend.matmul(to_device(ones), to_device(np.ascontiguousarray(ones.T)), F16))
    assert y.tolist() == [[300.0]]


def test_large_simt_tile(cuda_backend, rng):
    """128 x 128 picks the 128 x 128 SIMT tile (8 x 8 registers per thread)."""
    a, da = _pair((128, 8), F16, rng)
    b, db = _pair((8, 128), F16, rng)
    kernel, grid, block, *_ = cuda_backend.plan("matrix", da[None], db[None], None, None,
                                                np.empty((1, 128, 128), F16), (0,), ((7, 5), 1))
    assert (grid, block) == ((1, 1, 1), 256)
    y = _host(cuda_backend.matmul(da, db, F16))
    assert_within_bound(y, matmul_oracle(a, b), _acc_bound(a, b, F16))


@pytest.mark.parametrize("dtype", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("activation", ["relu", "gelu", None])
def test_dense_bias_activation_one_rounding(cuda_backend, rng, dtype, activation):
    x, dx = _pair((9, 20), dtype, rng)
    w, dw = _pair((20, 11), dtype, rng)
    bias, dbias = _pair((11,), F32, rng)
    y = _host(cuda_backend.dense(dx, dw, dbias, activation, dtype))
    pre = reference.dense(x, w, bias)
    exact = reference.activation(pre, activation)
    # The accumulation error passes through the activation (slope <= 1.13 for gelu).
    slack = 1.13 * matmul_bound(x, w, "float32") + rounding_bound(pre, "float32")
    assert_within_bound(y, exact, slack + rounding_bound(exact, dtype), f"dense {activation}")


CONVS = [  # strides, padding ("same"/"valid"), dilation, groups
    ((1, 1), "same", (1, 1), 1),
    ((2, 2), "same", (1, 1), 2),
    ((1, 2), "valid", (2, 1), 1),
    ((2, 1), "valid", (1, 1), 4),
]


def _pads(h, w, k, strides, padding, dilation):
    if padding == "valid":
        return ((0, 0), (0, 0))
    from nbmp.ops.conv import same_padding

    return (same_padding(h, k[0], strides[0], dilation[0]), same_padding(w, k[1], strides[1], dilation[1]))


@pytest.mark.parametrize("dtype", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("strides,padding,dilation,groups", CONVS)
def test_conv2d(cuda_backend, rng, dtype, strides, padding, dilation, groups):
    x, dx = _pair((2, 7, 6, 4), dtype, rng)
    k, dk = _pair((3, 2, 4 // groups, 8), dtype, rng)
    pads = _pads(7, 6, (3, 2), strides, padding, dilation)
    args = {"strides": strides, "padding": pads, "dilation": dilation, "groups": groups}
    y = _host(cuda_backend.conv2d(dx, dk, None, strides, pads, dilation, groups, None, dtype))
    exact = reference.conv2d(x, k, **args)
    assert_within_bound(y, exact, conv2d_bound(x, k, dtype, **args), f"conv2d {args}")


def test_conv2d_bias_relu_float32_out(cuda_backend, rng):
    x, dx = _pair((1, 5, 5, 3), BF16, rng)
    k, dk = _pair((3, 3, 3, 5), BF16, rng)
    bias, dbias = _pair((5,), F32, rng)
    pads = ((1, 1), (1, 1))
    y = _host(cuda_backend.conv2d(dx, dk, dbias, (1, 1), pads, (1, 1), 1, "relu", F32))
    exact = reference.conv2d(x, k, bias, padding=pads, activation_name="relu")
    bound = conv2d_bound(x, k, F32, padding=pads) + rounding_bound(exact, F32)
    assert_within_bound(y, exact, bound)


SPECIALS = np.array([0.0, -0.0, 1.0, -1.5, 1 / 3, 65504.0, 65520.0, 1e-8, 6e-8, 3.4e38, 1e39,
                     np.inf, -np.inf, np.nan, 1.00390625, 1.01171875, -2.5e-41], np.float64)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the simulator's NumPy
@pytest.mark.parametrize("src", [F16, BF16, F32, F64], ids=lambda d: d.name)
@pytest.mark.parametrize("dst", [F16, BF16, F32, F64], ids=lambda d: d.name)
def test_cast_matches_the_cpu_kernels_bit_for_bit(cuda_backend, rng, src, dst):
    with np.errstate(all="ignore"):
        x = np.concatenate([cpu.cast(SPECIALS, src), cpu.cast(rng.standard_normal(40) * 300, src)])
    from nbmp.backend.cuda.storage import to_device

    y = _host(cuda_backend.cast(to_device(x), dst))
    expected = cpu.cast(x, dst)
    assert y.dtype == dst
    width = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dst.itemsize]
    nan = np.isnan(expected.astype(np.float64))
    assert np.array_equal(np.isnan(y.astype(np.float64)), nan)
    assert np.array_equal(y.view(width)[~nan], expected.view(width)[~nan])


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "linear"])
def test_activation(cuda_backend, rng, name):
    x = (rng.standard_normal(50) * 4).astype(np.float32)
    from nbmp.backend.cuda.storage import to_device

    y = _host(cuda_backend.activation(to_device(x), name))
    exact = reference.activation(x.astype(np.float64), name)
    np.testing.assert_allclose(y, exact, rtol=2e-6, atol=1e-7)


def test_sigmoid_keeps_tiny_values_far_left(cuda_backend):
    from nbmp.backend.cuda.storage import to_device

    x = np.array([-80.0, -90.0, -100.0, -np.inf, 100.0, np.nan], np.float32)
    y = _host(cuda_backend.activation(to_device(x), "sigmoid"))
    with np.errstate(over="ignore"):
        exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y, exact.astype(np.float32), rtol=2.0**-22, atol=2.0**-149)
    assert y[2] > 0  # 1 / (1 + exp(100)) overflowed to 0


def test_relu_of_minus_zero_is_plus_zero_as_on_the_cpu(cuda_backend):
    """Elementwise and fused in a product's epilogue (a sum of -0.0 * 1.0 terms is -0.0)."""
    from nbmp.backend.cuda.storage import to_device

    x = np.array([-0.0, 0.0, -1.0, np.nan, 2.0], np.float32)
    y = _host(cuda_backend.activation(to_device(x), "relu"))
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, np.nan, 2.0])
    assert not np.signbit(y[:3]).any()
    a, w = np.full((2, 3), -0.0, np.float16), np.ones((3, 4), np.float16)
    for dtype in (F16, F32):
        y = _host(cuda_backend.dense(to_device(a), to_device(w), None, "relu", dtype))
        cpu_y = cpu.dense(a, w, None, "relu", dtype)
        assert (y == 0).all() and not np.signbit(y).any() and not np.signbit(cpu_y).any()


def test_gelu_of_minus_infinity_is_minus_zero(cuda_backend):
    from nbmp.backend.cuda.storage import to_device

    x = np.array([-np.inf, -1e4, np.nan, np.inf], np.float32)
    y = _host(cuda_backend.activation(to_device(x), "gelu"))
    np.testing.assert_array_equal(y, [0.0, 0.0, np.nan, np.inf])  # -inf * Phi(-inf) gave NaN
    assert np.signbit(y[:2]).all()


def test_plan_picks_the_simt_tile_by_occupancy(cuda_backend):
    """(The tensor-core choice on sm_80+ is checked by the compile test: the simulator cannot
    build the linked mma kernels.)"""
    def launch(dtype, cc, sms):
        a, b = np.zeros((1, 200, 64), dtype), np.zeros((1, 64, 200), dtype)
        _, grid, block, *_ = cuda_backend.plan("matrix", a, b, None, "relu",
                                               np.zeros((1, 200, 200), dtype), (0,), (cc, sms))
        return grid, block

    assert launch(F16, (7, 5), 100) == ((4, 4, 1), 256)  # 64 x 64: 4 big tiles would idle 96 SMs
    assert launch(F16, (7, 5), 4) == ((2, 2, 1), 256)  # 128 x 128
    assert launch(F32, (9, 0), 4) == ((2, 2, 1), 256)
    assert launch(F64, (9, 0), 4) == ((4, 4, 1), 256)  # float64 registers: always 64 x 64
    with pytest.raises(ValueError, match="fuse only"):
        cuda_backend.plan("matrix", np.zeros((1, 2, 2), F16), np.zeros((1, 2, 2), F16), None, "gelu",
                          np.zeros((1, 2, 2), F16), (0,), ((8, 0), 1))
