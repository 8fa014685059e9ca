"""Every layer keeps the mixed-precision contract; each layer's own behaviour."""

import re

import numpy as np
import pytest

import nbmp
from nbmp import layers, ops
from nbmp.backend import reference
from nbmp.mixed_precision import experimental
from nbmp.testing import check_layer_policy_contract

LAYERS = {
    "dense": (lambda d: layers.Dense(6, activation="gelu", dtype=d), (4, 3, 8), {}),
    "dense_softmax": (lambda d: layers.Dense(5, activation="softmax", dtype=d), (4, 8), {}),
    "conv2d": (lambda d: layers.Conv2D(4, 3, padding="same", activation="relu", dtype=d), (2, 7, 6, 3), {}),
    "conv2d_strided": (lambda d: layers.Conv2D(5, (3, 2), strides=2, dilation_rate=1, dtype=d),
                       (1, 9, 8, 4), {}),
    "conv2d_depthwise": (lambda d: layers.Conv2D(4, 3, groups=4, dtype=d), (1, 6, 6, 4), {}),
    "activation": (lambda d: layers.Activation("tanh", dtype=d), (3, 5), {}),
    "softmax": (lambda d: layers.Activation("softmax", dtype=d), (3, 5), {}),
    "flatten": (lambda d: layers.Flatten(dtype=d), (2, 3, 4), {}),
    "reshape": (lambda d: layers.Reshape((6, 2), dtype=d), (2, 12), {}),
    "max_pool": (lambda d: layers.MaxPooling2D(dtype=d), (2, 6, 5, 3), {}),
    "avg_pool_same": (lambda d: layers.AveragePooling2D(3, 2, "same", dtype=d), (2, 7, 5, 3), {}),
    "global_avg_pool": (lambda d: layers.GlobalAveragePooling2D(dtype=d), (2, 4, 4, 3), {}),
    "lambda": (lambda d: layers.Lambda(lambda x: x * 2.0, dtype=d), (3, 4), {}),
    "batch_norm": (lambda d: layers.BatchNormalization(dtype=d), (16, 5), {"training": True}),
    "batch_norm_inference": (lambda d: layers.BatchNormalization(dtype=d), (4, 3, 3, 2), {}),
    "layer_norm": (lambda d: layers.LayerNormalization(dtype=d), (4, 6), {}),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_policy_contract(name):
    make, shape, kwargs = LAYERS[name]
    check_layer_policy_contract(make, shape, **kwargs)


def test_dense_matches_ops_dense_and_tracks_weights():
    layer = layers.Dense(3, use_bias=False, kernel_initializer="ones", name="d")
    y = layer(np.ones((2, 4), np.float32))
    assert y.numpy().tolist() == [[4.0] * 3] * 2
    assert [w.name for w in layer.weights] == ["d/kernel"] and layer.bias is None


def test_conv2d_matches_reference():
    nbmp.set_random_seed(0)
    layer = layers.Conv2D(4, 3, strides=2, padding="same", dilation_rate=1, dtype="float64")
    x = np.random.default_rng(1).standard_normal((2, 7, 7, 3))
    y = layer(x)
    k, b = layer.get_weights()
    exact = reference.conv2d(x, k, b, (2, 2), ((1, 1), (1, 1)), (1, 1), 1, None)
    np.testing.assert_allclose(y.numpy(), exact, rtol=1e-12)


@pytest.mark.parametrize("make, good, bad, expected", [
    (lambda: layers.Dense(3), (2, 4), (2, 5), r"\(\.\.\., 4\)"),
    (lambda: layers.Conv2D(2, 3), (1, 5, 5, 3), (1, 5, 5, 4), r"\(None, None, None, 3\)"),
    (lambda: layers.Conv2D(2, 3), (1, 5, 5, 3), (5, 5, 3), r"\(None, None, None, 3\)"),
    (lambda: layers.LayerNormalization(), (2, 4), (2, 5), "axis 1 of size 4"),
])
def test_wrong_shapes_after_build_name_expected_and_received(make, good, bad, expected):
    layer = make()
    layer(np.ones(good, np.float32))
    before = [w.copy() for w in layer.get_weights()]
    with pytest.raises(ValueError, match=expected) as err:
        layer(np.ones(bad, np.float32))
    assert f"Received shape {bad}" in str(err.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))


@pytest.mark.parametrize("make, match", [
    (lambda: layers.Dense(0), "units"),
    (lambda: layers.Dense(2, activation="swish2"), "Unknown activation"),
    (lambda: layers.Conv2D(2, 3, data_format="channels_first"), "channels_last"),
    (lambda: layers.Conv2D(2, 0), "kernel_size"),
    (lambda: layers.Conv2D(2, 3, padding="full"), "padding"),
    (lambda: layers.Conv2D(3, 3, groups=2), "groups"),
    (lambda: layers.MaxPooling2D(padding="causal"), "padding"),
    (lambda: layers.Reshape((-1, -1)), "at most one -1"),
    (lambda: layers.Input((0,)), "positive"),
    (lambda: layers.Lambda(3), "callable"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_pooling_values():
    x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
    assert layers.MaxPooling2D(2, 1, "same")(x).shape == (1, 4, 4, 1)
    avg = layers.AveragePooling2D(2, 2, "same")(np.ones((1, 3, 3, 1), np.float32))
    assert avg.numpy().ravel().tolist() == [1.0] * 4  # padding is not counted
    assert layers.GlobalAveragePooling2D(keepdims=True)(x).numpy().ravel().tolist() == [7.5]


@pytest.mark.parametrize("layer", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_windows_larger_than_the_input_are_refused_with_valid_padding(layer):
    x = np.ones((1, 2, 5, 1), np.float32)
    with pytest.raises(ValueError, match=r"a \(3, 3\) window does not fit inputs of shape \(1, 2, 5, 1\)"):
        layer(3)(x)
    assert layer(3, padding="same")(x).shape == (1, 1, 2, 1) and layer((2, 5))(x).shape == (1, 1, 1, 1)


@pytest.mark.parametrize("layer", [layers.BatchNormalization, layers.LayerNormalization])
def test_normalization_axis_of_the_wrong_kind_says_what_came(layer):
    for axis in (None, "x", [], 1.5):
        expected = f"axis must be an int or a tuple of ints. Received: axis={axis!r}"
        with pytest.raises(ValueError, match=re.escape(expected)):
            layer(axis=axis)


def test_batch_norm_updates_moving_statistics_in_float32():
    bn = layers.BatchNormalization(momentum=0.5, dtype="mixed_float16")
    x = np.random.default_rng(0).normal(3.0, 2.0, (256, 2)).astype(np.float32)
    bn(x, training=True)
    assert bn.moving_mean.dtype == np.float32
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.5 * x.astype(np.float16).mean(0), rtol=1e-3)
    assert [w.name.split("/")[1] for w in bn.trainable_weights] == ["gamma", "beta"]
    inference = bn(x)
    assert inference.dtype == np.float16


def test_layer_norm_statistics_in_float32_survive_large_float16_values():
    # float16 variance of values near 300 would overflow (300**2 * n > 65504)
    x = np.full((2, 512), 300.0, np.float32)
    x[:, ::2] = 310.0
    y = layers.LayerNormalization(dtype="mixed_float16")(x)
    assert np.all(np.isfinite(y.numpy())) and np.allclose(np.abs(y.numpy()), 1.0, atol=1e-2)


def test_softmax_output_layer_in_float32_under_mixed_policy():
    nbmp.set_global_policy("mixed_float16")
    out = layers.Activation("softmax", dtype="float32")(layers.Dense(4)(np.ones((2, 3), np.float32)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy().sum(-1), 1.0, rtol=1e-6)


def test_lambda_and_tf114_cast():
    y = layers.Lambda(lambda x: ops.cast(x, "float32"))(np.ones(3, np.float16))
    assert y.dtype == np.float32


def test_tf114_infer_float32_vars_sequential_example():
    """The TF 1.14 documentation example, with nbmp names (global policy and per layer)."""
    experimental.set_policy("infer_float32_vars")
    model = nbmp.Sequential([
        layers.Input((100,), dtype="float16"),
        layers.Dense(10),
        layers.Dense(10),
        layers.Lambda(lambda x: ops.cast(x, "float32")),
        layers.Activation("Softmax"),
    ])
    check_tf114_model(model)
    experimental.set_policy(None)
    policy = experimental.Policy("infer_float32_vars")
    model = nbmp.Sequential([
        layers.Input((100,), dtype="float16"),
        layers.Dense(10, dtype=policy),
        layers.Dense(10, dtype=policy),
        layers.Lambda(lambda x: ops.cast(x, "float32")),
        layers.Activation("Softmax"),
    ])
    check_tf114_model(model)


def check_tf114_model(model):
    dense1, dense2 = model.layers[:2]
    y = model(np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32))
    assert y.dtype == np.float32 and y.shape == (3, 10)
    for dense in (dense1, dense2):
        assert dense.compute_dtype == "float16" and dense.dtype == "float32"
        assert all(w.true_dtype == np.float32 for w in dense.weights)
    np.testing.assert_allclose(y.numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("policy, expected", [
    ("float32", np.float32), ("mixed_float16", np.float16), ("mixed_bfloat16", "bfloat16"),
    ("float64", np.float64),
])
@pytest.mark.parametrize("make, shape, kwargs", [
    (lambda d: layers.Dense(2, dtype=d), (2, 3), {}),
    (lambda d: layers.Conv2D(2, 1, dtype=d), (1, 2, 2, 3), {}),
    (lambda d: layers.BatchNormalization(dtype=d), (4, 3), {"training": True}),
    (lambda d: layers.BatchNormalization(dtype=d), (4, 3), {}),
    (lambda d: layers.LayerNormalization(dtype=d), (4, 3), {}),
])
@pytest.mark.parametrize("input_dtype", [np.int32, np.bool_])
def test_weight_layers_compute_integer_inputs_in_the_compute_dtype(make, shape, kwargs, policy, expected,
                                                                     input_dtype):
    x = np.ones(shape, input_dtype)
    assert make(policy)(x, **kwargs).dtype == expected


def my_activation(x):
    return x * 2.0


@pytest.mark.parametrize("make", [
    lambda act: layers.Dense(2, activation=act),
    lambda act: layers.Conv2D(2, 1, activation=act),
    lambda act: layers.Activation(act),
])
def test_custom_activation_callables_survive_the_config_round_trip(make):
    for act in (my_activation, lambda x: x - 1.0):
        layer = make(act)
        clone = type(layer).from_config(layer.get_config())
        assert clone.activation is act
    assert make(ops.relu).get_config()["activation"] == "relu"  # a built-in, by name
    assert make("ReLU").get_config()["activation"] == "relu"


def test_frozen_batch_norm_runs_in_inference_mode():
    x = np.random.default_rng(0).normal(5.0, 2.0, (8, 3)).astype(np.float32)
    bn = layers.BatchNormalization(trainable=False)
    y = bn(x, training=True)
    assert bn.moving_mean.numpy().tolist() == [0.0] * 3 and bn.moving_variance.numpy().tolist() == [1.0] * 3
    np.testing.assert_array_equal(y.numpy(), bn(x).numpy())
    model = nbmp.Sequential([layers.BatchNormalization()])
    model.trainable = False  # reaches the sublayer, as in Keras
    model(x, training=True)
    assert model.layers[0].moving_mean.numpy().tolist() == [0.0] * 3


@pytest.mark.parametrize("make, match", [
    (lambda: layers.Flatten()(np.float32(1.0)), r"at least 1-D.*Received shape \(\)"),
    (lambda: layers.LayerNormalization(axis=(-1, 3))(np.ones((1, 2, 3, 4), np.float32)),
     r"axis \(-1, 3\) names an axis twice.*\(1, 2, 3, 4\)"),
    (lambda: layers.Input("34"), r"sequence of positive ints.*Received: shape='34'"),
    (lambda: layers.Input((3, 2.0)), r"Received: shape=\(3, 2.0\)"),
    (lambda: layers.Dense(True), r"units must be a positive int.*\(of type bool\)"),
    (lambda: layers.Dense(3.0), r"units must be a positive int.*\(of type float\)"),
    (lambda: layers.Conv2D(np.float32(2), 1), r"filters must be a positive int"),
])
def test_unhelpful_errors_say_what_was_received_and_what_is_valid(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_numpy_integers_and_lists_are_accepted_as_sizes():
    dense = layers.Dense(np.int64(3))
    assert dense.units == 3 and type(dense.units) is int
    assert layers.Conv2D(np.int32(2), 1, groups=np.int64(2)).filters == 2
    assert layers.Input([3, 4]).shape == (None, 3, 4)
    assert layers.Input([None, np.int64(4)]).shape == (None, None, 4)
    assert layers.Input(np.int64(5)).shape == (None, 5)


def test_conv2d_refuses_a_kernel_larger_than_a_valid_padded_input():
    with pytest.raises(ValueError, match=r"\(5, 5\) kernel.*does not fit inputs of shape \(1, 3, 3, 1\)"):
        layers.Conv2D(2, 5)(np.ones((1, 3, 3, 1), np.float32))
    assert layers.Conv2D(2, 5, padding="same")(np.ones((1, 3, 3, 1), np.float32)).shape == (1, 3, 3, 2)


def test_dense_needs_the_last_input_dimension():
    with pytest.raises(ValueError, match=r"last dimension of its input defined.*\(None, None\)"):
        layers.Dense(2).build((None, None))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"one array input, not a structure.*\(\(2, 3\), \(2, 3\)\)"):
        layers.Dense(2)((x, x))


def test_reshape_says_it_takes_a_tuple():
    with pytest.raises(ValueError, match=r"tuple of ints.*Received: target_shape=4"):
        layers.Reshape(4)
    assert layers.Reshape([2, -1])(np.ones((3, 4), np.float32)).shape == (3, 2, 2)


def test_global_average_pooling_of_integers_is_in_the_compute_dtype():
    assert layers.GlobalAveragePooling2D()(np.ones((1, 2, 2, 3), np.int32)).dtype == np.float32
    with nbmp.policy_scope("mixed_bfloat16"):
        pooled = layers.GlobalAveragePooling2D()(np.arange(4, dtype=np.int32).reshape(1, 2, 2, 1))
    assert pooled.dtype == nbmp.dtypes.bfloat16 and pooled.tolist() == [[1.5]]


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16"])
@pytest.mark.parametrize("norm", [layers.BatchNormalization, layers.LayerNormalization])
def test_normalization_layers_report_the_float32_their_weights_are_in(norm, policy):
    layer = norm(dtype=policy)
    layer.build((None, 4))
    assert layer.variable_dtype == layer.dtype == "float32"
    assert {w.true_dtype.name for w in layer.weights} == {"float32"}
    assert layer.compute_dtype == nbmp.DTypePolicy(policy).compute_dtype


@pytest.mark.parametrize("make, shape", [(lambda: layers.Conv2D(2, 3), (None, None, None, None)),
                                         (lambda: layers.BatchNormalization(), (None, None)),
                                         (lambda: layers.LayerNormalization(), (None, 5, None))])
def test_unknown_sizes_the_weights_need_are_named(make, shape):
    with pytest.raises(ValueError, match=r"known.*Received: input_shape=\(None"):
        make().build(shape)


def test_the_policy_contract_check_holds_under_python_dash_o():
    import subprocess
    import sys

    code = """
import numpy as np, nbmp
from nbmp.testing import check_layer_policy_contract
class Half(nbmp.layers.Layer):  # keeps its kernel in float16 under every policy: breaks the contract
    def build(self, shape):
        self.k = self.add_weight("k", (shape[-1], 2), dtype="float16")
    def call(self, x):
        return x @ self.k
try:
    check_layer_policy_contract(lambda d: Half(dtype=d), (3, 4))
except AssertionError as err:
    print("caught:", err)
"""
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True)
    assert "k of a float64 layer is float16" in out.stdout


@pytest.mark.parametrize("make", [lambda f: layers.Conv2D(2, 3, data_format=f),
                                  lambda f: layers.MaxPooling2D(data_format=f),
                                  lambda f: layers.AveragePooling2D(data_format=f),
                                  lambda f: layers.GlobalAveragePooling2D(data_format=f)])
def test_image_layers_take_keras_data_format_channels_last_or_none(make):
    x = np.ones((1, 4, 4, 3), np.float32)
    for given in (None, "channels_last", "CHANNELS_LAST"):
        layer = make(given)
        assert layer.data_format == "channels_last" and layer(x).shape[0] == 1
        assert type(layer).from_config(layer.get_config()).data_format == "channels_last"
    with pytest.raises(ValueError, match=r"channels_last' \(NHWC, also None\) only. Received: data_format="):
        make("channels_first")
