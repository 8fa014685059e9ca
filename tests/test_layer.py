"""The Layer core, with the tf.keras and Keras 3 mixed-precision doc examples as tests."""

import numpy as np
import pytest

import nbmp
from nbmp import mixed_precision
from nbmp.layers import Layer
from nbmp.mixed_precision import experimental


class SimpleDense(Layer):
    """The custom layer of the tf.keras/Keras 3 mixed-precision docs."""

    def __init__(self, units=10, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units))

    def call(self, inputs):
        self.seen = (inputs.dtype, self.kernel.dtype)
        return inputs @ self.kernel


class TwoInputs(Layer):
    def call(self, a, b):
        return a + 1.0, b + 1.0


def test_simple_dense_doc_example_mixed_float16():
    mixed_precision.set_global_policy("mixed_float16")
    layer = SimpleDense()
    y = layer(np.ones((2, 4), np.float32))
    assert layer.seen == (np.float16, np.float16)          # input and kernel read in float16
    assert y.dtype == np.float16
    assert layer.kernel.dtype == np.float32                # stored and read as float32 outside
    assert [w.name for w in layer.weights] == [f"{layer.name}/kernel"]


def test_float64_input_to_float32_layer_is_cast():
    # "x = tf.ones((4, 4, 4, 4), dtype='float64'); layer.compute_dtype ... y = layer(x)"
    layer = SimpleDense()
    assert layer.compute_dtype == "float32"
    assert layer(np.ones((4, 4), np.float64)).dtype == np.float32


def test_every_floating_argument_is_cast_as_keras3_does():
    # tf.keras 2.x left `b` in float32 ("Bug!" in its docs); Keras 3 and nbmp cast both.
    layer = TwoInputs(dtype="float64")
    x, y = layer(np.float32(1.0), b=np.float32(1.0))
    assert x.dtype == np.float64 and y.dtype == np.float64


def test_nested_arguments_are_cast_and_ints_and_scalars_are_not():
    class Probe(Layer):
        def call(self, inputs, extra=None, scale=1.0):
            self.got = (inputs, extra, scale)
            return inputs["a"]

    layer = Probe(dtype="mixed_bfloat16")
    ints = np.arange(3, dtype=np.int32)
    layer({"a": np.ones(2), "b": [np.zeros(2, np.float32), ints]}, extra=(np.ones(1),), scale=0.5)
    inputs, extra, scale = layer.got
    assert inputs["a"].dtype == "bfloat16"
    assert inputs["b"][0].dtype == "bfloat16" and inputs["b"][1].dtype == np.int32
    assert extra[0].dtype == "bfloat16"
    assert scale == 0.5 and isinstance(scale, float)


def test_nested_list_input_becomes_an_array():
    layer = SimpleDense(units=2, dtype="float16")
    y = layer([[1.0, 2.0, 3.0]])
    assert y.shape == (1, 2) and y.dtype == np.float16


def test_autocast_false_leaves_inputs_alone():
    layer = TwoInputs(dtype="float64", autocast=False)
    x, _ = layer(np.float32(1.0), np.float32(2.0))
    assert x.dtype == np.float32


def test_nothing_is_cast_to_a_non_floating_compute_dtype():
    class Identity(Layer):
        def call(self, inputs):
            return inputs

    assert Identity(dtype="int32")(np.ones(2, np.float32)).dtype == np.float32


def test_infer_takes_the_first_inputs_dtype_once():
    nbmp.set_global_policy("_infer")
    layer = SimpleDense()
    assert layer.compute_dtype is None and layer.dtype is None
    assert layer(np.ones((1, 3), np.float16)).dtype == np.float16
    assert layer.dtype_policy == nbmp.DTypePolicy("float16")
    assert layer.kernel.dtype == np.float16
    assert layer(np.ones((1, 3), np.float64)).dtype == np.float16  # from now on: float16


def test_tf114_infer_name():
    layer = SimpleDense(dtype=experimental.Policy("infer"))
    assert layer(np.ones((1, 3), np.float64)).dtype == np.float64


def test_infer_float32_vars():
    layer = SimpleDense(dtype=experimental.Policy("infer_float32_vars"))
    assert layer.dtype == "float32"
    y = layer(np.ones((1, 3), np.float16))
    assert y.dtype == np.float16 and layer.seen == (np.float16, np.float16)
    assert layer.kernel.dtype == np.float32 and layer.compute_dtype == "float16"
    y = layer(np.ones((1, 3), np.float32))                  # inputs are not cast
    assert y.dtype == np.float32


def test_failed_first_call_leaves_no_half_built_layer():
    class Broken(SimpleDense):
        def build(self, input_shape):
            super().build(input_shape)
            raise RuntimeError("fails after creating a weight")

    layer = Broken(dtype="_infer")
    with pytest.raises(RuntimeError):
        layer(np.ones((1, 3), np.float16))
    assert not layer.built and layer.weights == [] and layer.dtype_policy.name == "_infer"


def test_dtype_properties():
    layer = Layer(dtype="mixed_float16")
    assert (layer.compute_dtype, layer.variable_dtype, layer.dtype) == ("float16", "float32", "float32")
    assert Layer(dtype=np.float64).dtype_policy.name == "float64"
    with pytest.raises(ValueError, match="Unknown policy"):
        Layer(dtype="mixed_fp16")
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        Layer(dtpye="float32")


def test_global_policy_is_captured_at_construction():
    with nbmp.policy_scope("mixed_float16"):
        layer = Layer()
    assert layer.dtype_policy.name == "mixed_float16"


def test_add_weight_argument_orders_and_initializers():
    nbmp.set_random_seed(0)
    layer = Layer(dtype="mixed_bfloat16", name="probe")
    tf_style = layer.add_weight("kernel", (3, 4), "he_normal")
    keras3 = layer.add_weight((4,), "zeros", name="bias")
    counts = layer.add_weight("steps", (), dtype="int32", trainable=False)
    const = layer.add_weight(shape=(2,), initializer=nbmp.initializers.Constant(0.5), name="c")
    assert tf_style.dtype == np.float32 and tf_style.name == "probe/kernel"
    assert keras3.numpy().tolist() == [0.0] * 4
    assert counts.dtype == np.int32 and counts.numpy() == 0
    assert const.numpy().tolist() == [0.5, 0.5]
    assert layer.trainable_weights == [tf_style, keras3, const]
    assert layer.non_trainable_weights == [counts]
    layer.trainable = False
    assert layer.trainable_weights == []
    with pytest.raises(TypeError, match="unknown"):
        layer.add_weight("w", (1,), regularizer="l2")


def test_initializers_are_seedable():
    nbmp.set_random_seed(7)
    a = Layer().add_weight("w", (5, 5)).numpy()
    nbmp.set_random_seed(7)
    b = Layer().add_weight("w", (5, 5)).numpy()
    assert np.array_equal(a, b)
    limit = np.sqrt(6 / 10)
    assert np.all(np.abs(a) <= limit)


def test_sublayer_weights_are_tracked():
    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.inner = SimpleDense(2)

        def call(self, x):
            return self.inner(x)

    outer = Outer()
    outer(np.ones((1, 3), np.float32))
    assert outer.weights == outer.inner.weights and len(outer.weights) == 1


def test_nested_mixed_layers_autocast_to_the_inner_compute_dtype():
    class Outer(Layer):
        def __init__(self):
            super().__init__(dtype="mixed_float16")
            self.inner = SimpleDense(2, dtype="float32")

        def call(self, x):
            return self.inner(x)

    outer = Outer()
    assert outer(np.ones((1, 3), np.float32)).dtype == np.float32
    assert outer.inner.seen == (np.float32, np.float32)


def test_config_round_trip_carries_the_policy():
    layer = SimpleDense(dtype="mixed_bfloat16", name="d", trainable=False)
    config = layer.get_config()
    clone = Layer.from_config({k: v for k, v in config.items()})
    assert clone.dtype_policy == nbmp.DTypePolicy("mixed_bfloat16")
    assert clone.name == "d" and clone.trainable is False
    tf_named = Layer(dtype=mixed_precision.Policy("mixed_float16"))
    assert type(Layer.from_config(tf_named.get_config()).dtype_policy) is mixed_precision.Policy


def test_unique_names_and_repr():
    a, b = SimpleDense(), SimpleDense()
    assert a.name != b.name and b.name.startswith("simple_dense")
    assert repr(Layer(dtype="mixed_float16", name="x")) == \
        '<Layer name=x, built=False, dtype_policy="mixed_float16">'
