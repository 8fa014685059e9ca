""""cuda" Arrays: transfers, protocols, ops and layers computing on the device."""

from __future__ import annotations

import numpy as np
import pytest

import nbmp
from nbmp import dtypes
from nbmp.testing import relative_error


@pytest.fixture
def cuda(cuda_backend):
    return "cuda"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "int32"])
def test_round_trip_and_repr(cuda, dtype):
    x = nbmp.asarray([[1.0, 2.0], [-3.0, 4.0]], dtype=dtype, device=cuda)
    assert x.device == "cuda" and x.dtype == dtypes.as_numpy(dtype)
    assert "device='cuda'" in repr(x)
    back = x.to("cpu")
    assert back.device == "cpu" and back.dtype == x.dtype
    assert back.tolist() == [[1.0, 2.0], [-3.0, 4.0]] == x.tolist()
    assert np.array_equal(x.numpy(), back.numpy()) and x.to("cuda") is x
    assert nbmp.asarray(back, device="cuda").device == "cuda"


def test_no_implicit_copy_to_numpy(cuda):
    x = nbmp.asarray([1.0, 2.0], device=cuda)
    with pytest.raises(TypeError, match=r"Call x\.numpy\(\)"):
        np.asarray(x)


def test_cuda_array_interface(cuda):
    for dtype in ("float16", "float32"):
        x = nbmp.asarray(np.arange(6.0).reshape(2, 3), dtype=dtype, device=cuda)
        cai = x.__cuda_array_interface__
        assert cai["shape"] == (2, 3) and cai["version"] == 3
        assert cai["typestr"] == np.dtype(dtype).str and cai["data"][0] != 0
    with pytest.raises(AttributeError, match="bfloat16"):
        _ = nbmp.asarray([1.0], dtype="bfloat16", device=cuda).__cuda_array_interface__
    assert not hasattr(nbmp.asarray([1.0]), "__cuda_array_interface__")


def test_dlpack(cuda):
    x = nbmp.asarray([1.0, 2.0], device=cuda)
    xp = nbmp.array.array_module(x)
    assert xp.from_dlpack(x).tolist() == [1.0, 2.0]


def test_mixed_devices_raise_naming_both(cuda):
    x = nbmp.asarray([1.0, 2.0], device=cuda)
    with pytest.raises(ValueError, match=r"\(2,\) on 'cuda', \(2,\) on 'cpu'.*x\.to\('cuda'\)"):
        x + nbmp.asarray([1.0, 2.0])
    with pytest.raises(ValueError, match="different devices"):
        nbmp.ops.matmul(x, np.ones((2, 2), np.float32))


def _same_on_both(fn, *arrays, rtol=0.0):
    """`fn` on CPU Arrays and on their "cuda" copies agrees (exactly unless `rtol`)."""
    cpu = fn(*(nbmp.asarray(a) for a in arrays))
    gpu = fn(*(nbmp.asarray(a, device="cuda") for a in arrays))
    for c, g in zip(cpu, gpu) if isinstance(cpu, tuple) else [(cpu, gpu)]:
        assert g.device == "cuda" and g.dtype == c.dtype and g.shape == c.shape
        if rtol:
            assert relative_error(g.numpy(), c.numpy()) <= rtol
        else:
            np.testing.assert_array_equal(g.numpy(), c.numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_elementwise_reductions_and_shapes_follow_the_cpu(cuda, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(dtypes.as_numpy(dtype))
    b = rng.standard_normal((3, 4)).astype(dtypes.as_numpy(dtype))
    _same_on_both(lambda x, y: x * y + 1.5 - x / (y * y + 1), a, b)
    _same_on_both(lambda x: nbmp.ops.exp(nbmp.ops.maximum(x, 0.25)), a)
    _same_on_both(lambda x: (nbmp.ops.sum(x, axis=0), nbmp.ops.max(x), nbmp.ops.mean(x, 1)), a)
    _same_on_both(lambda x: (x.T, x[1:, ::2], x.reshape(2, 6), nbmp.ops.concatenate([x, x], 1)), a)
    _same_on_both(lambda x: (nbmp.ops.softmax(x), nbmp.ops.tanh(x), nbmp.ops.gelu(x)), a, rtol=1e-2)
    _same_on_both(lambda x, y: (x == 0.1, x - 0.1, x // 0.5, x % y, (x > 0) & (y < 0), ~(x > y)), a, b)
    x = nbmp.asarray(a, device=cuda)
    assert float(a[1, 2]) in x and None not in x and f"{x[1, 2]:.3f}" == f"{float(a[1, 2]):.3f}"


def test_pooling_and_normalization_follow_the_cpu(cuda):
    x = np.random.default_rng(1).standard_normal((1, 5, 4, 2)).astype(np.float16)
    _same_on_both(lambda v: (nbmp.ops.max_pool2d(v, padding="same"), nbmp.ops.avg_pool2d(v)), x)
    _same_on_both(lambda v: nbmp.ops.moments(v, axes=(0, 1, 2)), x, rtol=1e-6)
    _same_on_both(lambda v: nbmp.ops.normalize(v, 0.5, 2.0, scale=nbmp.asarray(3.0, device=v.device)),
                  x, rtol=1e-3)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float32"])
def test_dense_and_conv2d_layers_run_on_the_device(cuda, policy):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    model = [nbmp.layers.Conv2D(4, 3, padding="same", activation="relu", dtype=policy),
             nbmp.layers.Flatten(dtype=policy), nbmp.layers.Dense(3, activation="gelu", dtype=policy)]
    twin = [nbmp.layers.Conv2D(4, 3, padding="same", activation="relu", dtype=policy),
            nbmp.layers.Flatten(dtype=policy), nbmp.layers.Dense(3, activation="gelu", dtype=policy)]
    y, y_cpu = nbmp.asarray(x, device=cuda), nbmp.asarray(x)
    for layer, cpu_layer in zip(model, twin):
        y = layer(y)
        cpu_layer(y_cpu)  # build
        cpu_layer.set_weights(layer.get_weights())
        y_cpu = cpu_layer(y_cpu)
        assert y.device == "cuda" and all(w.device == "cuda" for w in layer.weights)
        assert all(w.true_dtype == np.dtype(layer.variable_dtype) for w in layer.weights)
    assert y.dtype == np.dtype(model[0].compute_dtype) and y.shape == (2, 3)
    rtol = {"mixed_float16": 1e-2, "mixed_bfloat16": 6e-2, "float32": 1e-5}[policy]
    assert relative_error(y.numpy(), y_cpu.numpy()) <= rtol
    with pytest.raises(ValueError, match="different devices"):
        model[2](nbmp.asarray(np.ones((1, 120), np.float32)))


def test_variable_assign_moves_values_to_its_device(cuda):
    v = nbmp.Variable(np.zeros(3, np.float32), device=cuda)
    v.assign(np.arange(3.0))
    assert v.device == "cuda" and v.numpy().tolist() == [0.0, 1.0, 2.0]


def test_a_model_built_on_the_cpu_moves_to_the_device_whole(cuda):
    model = nbmp.Sequential([nbmp.layers.Input((4,)), nbmp.layers.Dense(3, activation="relu"),
                             nbmp.layers.Dense(2)])
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    expected = model(x).numpy()
    with pytest.raises(ValueError, match=r"layer.to\('cuda'\)"):
        model(nbmp.asarray(x, device=cuda))
    assert model.to(cuda) is model and all(w.device == "cuda" for w in model.weights)
    y = model(nbmp.asarray(x, device=cuda))
    assert y.device == "cuda"
    # both float32 products, each within float32's accumulation bound of the exact values: their
    # difference within twice that, on the scale of the terms summed (|x| |W1| + |b1|) |W2| + |b2|,
    # not of a result that cancels (random weights gave normwise differences up to 1.2e-5)
    (w1, b1), (w2, b2) = ([np.abs(w.numpy()).astype(np.float64) for w in layer.weights]
                          for layer in model.layers)
    terms = (np.abs(x) @ w1 + b1) @ w2 + b2
    assert (np.abs(y.numpy().astype(np.float64) - expected) <= 16 * 2.0**-24 * terms).all()
    assert model.to("cpu").weights[0].device == "cpu"


def test_demo_table_on_the_device(cuda):
    from nbmp.__main__ import table

    [(policy, device, compute, _, err, top1, *_)] = table("tiny", ("mixed_float16",), 1, 0, device=cuda)
    assert (policy, device, compute, top1) == ("mixed_float16", "cuda", "float16", "100%")
    assert float(err) < 1e-2


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_casting_nan_to_an_int_warns_on_no_device(cuda, device):
    import warnings

    x = nbmp.asarray([np.nan, 1.0], dtype="float16", device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "invalid value encountered in cast" came on cuda only
        assert nbmp.ops.cast(x, "int32").shape == (2,)
