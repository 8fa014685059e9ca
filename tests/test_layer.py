"""The Layer core, with the tf.keras and Keras 3 mixed-precision doc examples as tests."""

import collections
import re

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


class ForeignArray:
    """Another library's array (torch's, JAX's): NumPy reads it through ``__array__``."""

    def __init__(self, data):
        self.data = data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16"])
def test_another_librarys_arrays_are_cast_to_the_compute_dtype(policy):
    layer = TwoInputs(dtype=policy)
    x, y = layer(ForeignArray(np.ones(3, np.float32)), b=ForeignArray(np.ones(3, np.float64)))
    assert x.dtype == y.dtype == layer.compute_dtype


def test_infer_takes_the_dtype_of_another_librarys_array():
    layer = SimpleDense(units=2, dtype="_infer")
    assert layer(ForeignArray(np.ones((1, 3), np.float16))).dtype == np.float16


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


def test_the_policy_can_be_set_after_construction_as_in_keras3():
    layer = SimpleDense(2)
    layer(np.ones((1, 3), np.float32))
    layer.dtype_policy = "mixed_bfloat16"
    y = layer(np.ones((1, 3), np.float32))
    assert layer.seen == ("bfloat16", "bfloat16") and y.dtype == "bfloat16"
    assert layer.kernel.dtype == np.float32 and layer.dtype_policy.name == "mixed_bfloat16"
    with pytest.raises(ValueError, match="Unknown policy"):
        layer.dtype_policy = "mixed_bf16"
    assert layer.dtype_policy.name == "mixed_bfloat16"
    inferring = SimpleDense(2, dtype="_infer")
    inferring(np.ones((1, 2), np.float16))
    assert inferring.compute_dtype == "float16"
    inferring.dtype_policy = None  # the global policy
    assert inferring.compute_dtype == "float32"


def test_global_policy_is_captured_at_construction():
    with nbmp.policy_scope("mixed_float16"):
        layer = Layer()
    assert layer.dtype_policy.name == "mixed_float16"


def test_add_weight_argument_orders_and_initializers():
    nbmp.set_random_seed(0)
    layer = Layer(dtype="mixed_bfloat16", name="probe")
    tf_style = layer.add_weight("kernel", (3, 4), None, "he_normal")  # name, shape, dtype, initializer
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
    with pytest.raises(ValueError, match="Unknown dtype 'he_normal'"):  # tf.keras: the 3rd is the dtype
        layer.add_weight("w", (1,), "he_normal")
    assert layer.add_weight("w", (2,), "float16", "ones").numpy().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("shape", [3.5, (None, 3), (-1,), "3"])
def test_add_weight_says_which_shapes_it_takes(shape):
    with pytest.raises(ValueError, match=r"shape of weight 'w' must be an int or a tuple of ints >= 0"):
        Layer().add_weight("w", shape)


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_random_initializers_refuse_integer_and_bool_weights(dtype):
    with pytest.raises(ValueError, match=f"would truncate.*Received: dtype='{dtype}'"):
        Layer().add_weight("w", (2, 2), dtype, "glorot_uniform")
    assert Layer().add_weight("w", (2,), dtype=dtype, initializer="ones").numpy().tolist() == [1, 1]


def test_an_infer_layer_meeting_an_integer_input_refuses_and_stays_inferring():
    layer = nbmp.layers.Dense(2, dtype="_infer")
    with pytest.raises(ValueError, match="GlorotUniform draws random floating values"):
        layer(np.ones((2, 3), np.int32))
    assert not layer.built and layer.compute_dtype is None and layer.weights == []
    assert layer(np.ones((2, 3), np.float16)).dtype == np.float16


def test_build_called_by_hand_marks_the_layer_built_and_the_call_keeps_those_weights():
    dense = nbmp.layers.Dense(2)
    dense.build((None, 3))
    assert dense.built
    dense.set_weights([np.ones((3, 2)), np.zeros(2)])
    assert dense(np.ones((2, 3), np.float32)).tolist() == [[3.0, 3.0]] * 2
    assert len(dense.weights) == 2

    class Base(Layer):
        def build(self, input_shape):
            self.a = self.add_weight("a", (1,))

    class Child(Base):
        def build(self, input_shape):
            super().build(input_shape)
            assert not self.built  # only the outermost build marks it
            self.b = self.add_weight("b", (1,))

    child = Child()
    child.build((None, 1))
    assert child.built and len(child.weights) == 2


def test_training_is_dropped_for_a_call_that_does_not_take_it():
    dense = nbmp.layers.Dense(2)
    assert dense(np.ones((1, 3), np.float32), training=True).shape == (1, 2)

    class Takes(Layer):
        def call(self, inputs, training=False):
            return inputs * (2.0 if training else 1.0)

    class Kwargs(Layer):
        def call(self, inputs, **kwargs):
            return inputs * (2.0 if kwargs.get("training") else 1.0)

    for layer in (Takes(), Kwargs()):
        assert layer(np.ones(1, np.float32), training=True).tolist() == [2.0]


def test_a_variable_given_as_input_is_cast_like_an_array():
    v64 = nbmp.Variable(np.ones((2, 3)), dtype="float64")
    assert nbmp.layers.Dense(2)(v64).dtype == np.float32
    assert nbmp.layers.Flatten()(nbmp.Variable(np.ones((2, 4), np.float16))).dtype == np.float32


def test_set_weights_changes_nothing_when_any_value_is_bad():
    dense = nbmp.layers.Dense(2)
    dense.build((None, 3))
    before = dense.get_weights()
    with pytest.raises(ValueError, match="Weight 'dense.*/bias'.*no weight was changed"):
        dense.set_weights([np.zeros((3, 2)), np.array(["a", "b"])])
    with pytest.raises(ValueError, match="Weight 'dense.*/bias'.*complex128.*no weight was changed"):
        dense.set_weights([np.zeros((3, 2)), np.array([1j, 2j])])
    assert all(np.array_equal(a, b) for a, b in zip(before, dense.get_weights()))


def test_initializers_are_seedable():
    nbmp.set_random_seed(7)
    a = Layer().add_weight("w", (5, 5)).numpy()
    nbmp.set_random_seed(7)
    b = Layer().add_weight("w", (5, 5)).numpy()
    assert np.array_equal(a, b)
    limit = np.sqrt(6 / 10)
    assert np.all(np.abs(a) <= limit)


def test_a_seeded_initializer_gives_the_same_values_on_every_call_as_in_keras3():
    from nbmp import initializers

    seeded = initializers.GlorotUniform(seed=5)
    assert np.array_equal(seeded((3, 2)), seeded((3, 2)))
    assert np.array_equal(seeded((3, 2)), initializers.GlorotUniform(seed=5)((3, 2)))
    unseeded = initializers.GlorotUniform()
    assert not np.array_equal(unseeded((3, 2)), unseeded((3, 2)))


def test_initializers_by_class_name_or_class_and_lecun_uniform():
    from nbmp import initializers

    assert type(initializers.get("GlorotUniform")) is initializers.GlorotUniform
    assert type(initializers.get(initializers.HeNormal)) is initializers.HeNormal
    values = initializers.get("lecun_uniform")((400, 100))
    assert np.abs(values).max() <= np.sqrt(3 / 400) and np.abs(values).max() > 0.9 * np.sqrt(3 / 400)
    for seed in ("x", -1, 1.5, True):
        with pytest.raises(ValueError, match=f"GlorotUniform: seed must be an int >= 0 or None. .*={seed!r}"):
            initializers.GlorotUniform(seed=seed)
    for scale in (-1.0, 0, None):
        with pytest.raises(ValueError, match=f"scale must be a number > 0. Received: scale={scale}"):
            initializers.VarianceScaling(scale=scale)


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


def test_a_frozen_sublayers_weights_are_non_trainable_recursively():
    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.first, self.second = SimpleDense(2), SimpleDense(2)

        def call(self, x):
            return self.second(self.first(x))

    outer = Outer()
    outer(np.ones((1, 3), np.float32))
    outer.first.trainable = False
    assert outer.trainable_weights == [outer.second.kernel]
    assert outer.non_trainable_weights == [outer.first.kernel]
    outer.trainable = False  # as in Keras, it reaches every sublayer
    assert not outer.second.trainable and outer.trainable_weights == []
    outer.trainable = True
    assert outer.first.trainable and len(outer.trainable_weights) == 2


def test_layers_in_lists_tuples_dicts_and_variable_attributes_are_tracked_once_in_order():
    class Block(Layer):
        def __init__(self):
            super().__init__()
            self.stack = [SimpleDense(2, name="a"), (SimpleDense(2, name="b"),)]
            self.by_name = {"c": SimpleDense(2, name="c")}
            self.scale = nbmp.Variable(np.ones(2, np.float32), name="scale")
            self.again = self.stack[0]  # the same layer twice: its weights once
            self.stack.append(SimpleDense(2, name="d"))  # appended after assignment

        def call(self, x):
            x = self.stack[1][0](self.stack[0](x))
            return self.stack[2](self.by_name["c"](x)) * self.scale

    block = Block()
    block(np.ones((1, 3), np.float32))
    assert [w.name for w in block.weights] == ["scale", "a/kernel", "b/kernel", "d/kernel", "c/kernel"]
    block.set_weights([np.full(w.shape, 2.0) for w in block.weights])
    assert block.scale.numpy().tolist() == [2.0, 2.0]


def test_a_cycle_of_layers_is_walked_once():
    parent, child = Layer(), SimpleDense(2)
    parent.child = child
    child.parent = parent
    child(np.ones((1, 3), np.float32))
    assert parent.weights == child.weights == [child.kernel]
    parent.trainable = False
    assert not child.trainable


def test_a_failed_build_leaves_no_weight_in_an_attribute():
    class Broken(SimpleDense):
        def build(self, input_shape):
            super().build(input_shape)
            raise RuntimeError("fails after creating a weight")

    layer = Broken()
    with pytest.raises(RuntimeError):
        layer(np.ones((1, 3), np.float32))
    assert not hasattr(layer, "kernel") and layer.weights == []


@pytest.mark.parametrize("call", [
    lambda bn, x: bn(training=True, inputs=x),
    lambda bn, x: bn(inputs=x, training=True),
])
def test_the_input_given_by_keyword_is_calls_first_parameter(call):
    bn = nbmp.layers.BatchNormalization(dtype="_infer")
    y = call(bn, np.full((4, 3), 5.0, np.float16))
    assert y.shape == (4, 3) and bn.dtype_policy.name == "float16"
    assert bn.moving_mean.numpy().tolist() == pytest.approx([0.05] * 3)  # training=True reached it


def test_calling_without_an_input_or_with_text_says_what_was_received():
    with pytest.raises(TypeError, match=r"without an input.*Received keyword arguments \['training'\]"):
        nbmp.layers.BatchNormalization()(training=True)
    with pytest.raises(TypeError, match="without an input.*Received no arguments"):
        nbmp.layers.Dense(2)()
    with pytest.raises(TypeError, match=r"array.*Received: 'abc' \(of type str\)"):
        nbmp.layers.Dense(2)("abc")


def test_add_weight_accepts_any_array_like_of_the_right_shape():
    layer = Layer(name="w")
    from_array = layer.add_weight("a", (2,),
                                  initializer=lambda shape, dtype: nbmp.asarray(np.ones(shape, dtype)))
    from_list = layer.add_weight("b", (2,), initializer=lambda shape, dtype: [0.0, 1.0])
    from_scalar = layer.add_weight("c", (), initializer=lambda shape, dtype: 3.0)
    assert from_array.numpy().tolist() == [1.0, 1.0] and from_list.numpy().tolist() == [0.0, 1.0]
    assert from_scalar.numpy() == 3.0 and from_scalar.dtype == np.float32
    with pytest.raises(ValueError, match=r"returned an array of shape \(3,\); expected shape \(2,\)"):
        layer.add_weight("d", (2,), initializer=lambda shape, dtype: [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="must return an array of shape"):
        layer.add_weight("e", (2,), initializer=lambda shape, dtype: None)


def test_build_receives_a_namedtuple_of_shapes():
    Pair = collections.namedtuple("Pair", "a b")

    class Two(Layer):
        def build(self, input_shape):
            self.got = input_shape

        def call(self, pair):
            return pair.a

    layer = Two()
    layer(Pair(np.ones((2, 3), np.float32), np.ones(4, np.float32)))
    assert layer.got == Pair((2, 3), (4,)) and type(layer.got) is Pair


@pytest.mark.parametrize("make, name", [
    (lambda: nbmp.layers.Conv2D(1, 1), "conv2d"),
    (lambda: nbmp.layers.MaxPooling2D(), "max_pooling2d"),
    (lambda: nbmp.layers.GlobalAveragePooling2D(), "global_average_pooling2d"),
    (lambda: nbmp.layers.BatchNormalization(), "batch_normalization"),
    (lambda: SimpleDense(), "simple_dense"),
])
def test_default_names_follow_keras(make, name):
    assert re.fullmatch(rf"{name}(_\d+)?", make().name)


def test_a_new_parent_leaves_its_sublayers_trainable_flags_alone():
    class Wrap(Layer):
        def __init__(self, inner, **kwargs):
            self.inner = inner  # held before Layer.__init__ runs
            super().__init__(**kwargs)

    inner = nbmp.layers.Dense(2, trainable=False)
    Wrap(inner)
    assert not inner.trainable


def test_numpy_integers_as_weight_shapes_and_axes():
    layer = Layer()
    assert layer.add_weight("w", np.int64(3)).shape == (3,)
    norm = nbmp.layers.LayerNormalization(axis=np.int64(-1))
    assert norm(np.ones((2, 4), np.float32)).shape == (2, 4)


def test_integer_inputs_without_autocast_compute_in_the_variables_dtype():
    bn = nbmp.layers.BatchNormalization(dtype="mixed_float16", autocast=False)
    assert bn(np.ones((2, 3), np.int32)).dtype == bn(np.ones((2, 3), np.float32)).dtype == np.float32


def test_calling_a_positional_only_call_without_input_names_no_keyword():
    class PositionalOnly(Layer):
        def call(self, inputs, /):
            return inputs

    with pytest.raises(TypeError, match=r"layer\(inputs\)\. Received no arguments"):
        PositionalOnly()()


def test_an_inferred_policy_keeps_the_class_it_was_given_as():
    layer = nbmp.layers.Flatten(dtype=experimental.Policy("infer"))
    layer(np.ones((1, 2), np.float16))
    assert repr(layer.dtype_policy) == '<Policy "float16">'


def test_set_weights_takes_python_numbers_at_the_weights_precision():
    dense = nbmp.layers.Dense(1, dtype="float64")
    dense.build((None, 2))
    dense.set_weights([[[0.1], [0.2]], [0.3]])
    assert dense.get_weights()[0].tolist() == [[0.1], [0.2]] and dense.get_weights()[1].tolist() == [0.3]


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "float64"])
def test_a_policy_set_on_a_built_layer_gives_its_compute_dtype(policy):
    layer = SimpleDense(2)
    layer(np.ones((1, 3), np.float32))
    layer.dtype_policy = policy
    y = layer(np.ones((1, 3), np.float32))
    assert y.dtype == policy and layer.seen == (policy, policy)  # the float32 kernel read in it
    assert layer.kernel.true_dtype == "float32"  # weights already made keep their dtype


def test_infer_built_by_hand_computes_in_the_first_inputs_dtype():
    layer = nbmp.layers.Dense(2, dtype="_infer")
    layer.build((None, 3))  # weights made before the policy is known: float32
    assert layer(np.ones((1, 3), np.float16)).dtype == "float16"
    assert layer.kernel.true_dtype == "float32"


def test_a_layer_names_its_own_arguments_for_an_unknown_one():
    with pytest.raises(TypeError, match="activaton.*Valid: units, activation, use_bias, .*, dtype"):
        nbmp.layers.Dense(2, activaton="relu")
    with pytest.raises(TypeError, match=r"Valid: units(?!.*units).*Input\(\(784,\)\)"):
        nbmp.layers.Dense(2, input_shape=(784,))


@pytest.mark.parametrize("make, out", [(lambda: nbmp.layers.Dense(2), (4, 2)),
                                       (lambda: nbmp.layers.LayerNormalization(), (4, 3)),
                                       (lambda: SimpleDense(2), (4, 2))])
def test_build_takes_a_shape_as_a_list(make, out):
    layer = make()
    layer.build([None, 3])
    assert layer.built and layer(np.ones((4, 3), np.float32)).shape == out


def test_an_unbuilt_layer_checks_the_device_it_is_moved_to():
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        nbmp.layers.Dense(2).to("gpu")
    assert nbmp.layers.Dense(2).to("cpu").built is False


@pytest.mark.parametrize("call, message", [
    (lambda: nbmp.set_random_seed(-1), r"set_random_seed: seed must be an int >= 0 or None. .*seed=-1"),
    (lambda: nbmp.set_random_seed("a"), r"set_random_seed: seed must be .* Received: seed='a'"),
    (lambda: nbmp.initializers.RandomNormal(stddev=-1), r"RandomNormal: stddev must be a finite number >= 0"),
    (lambda: nbmp.initializers.TruncatedNormal(mean=np.inf), r"TruncatedNormal: mean must be a finite num"),
    (lambda: nbmp.initializers.RandomUniform(maxval="1"), r"RandomUniform: maxval must be .*maxval='1'"),
    (lambda: nbmp.initializers.Constant("a"), r"Constant: value must be a number. Received: value='a'"),
])
def test_initializer_arguments_are_checked_when_given(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_constant_may_be_infinite():
    assert nbmp.initializers.Constant(-np.inf)((2,)).tolist() == [-np.inf, -np.inf]


def test_input_specs_show_their_constraints():
    assert repr(nbmp.layers.InputSpec(ndim=4, axes={-1: 3})) == "InputSpec(ndim=4, axes={-1: 3})"
    assert repr(nbmp.layers.InputSpec(min_ndim=2)) == "InputSpec(min_ndim=2)"
    with pytest.raises(ValueError, match=r"\(None, None, None, None\) \(4-D\). Received shape \(4, 4, 3\)"):
        nbmp.layers.MaxPooling2D()(np.ones((4, 4, 3), np.float32))


def test_infer_taking_an_integer_dtype_says_so_when_the_weights_cannot_be_made():
    layer = nbmp.layers.Dense(2, dtype="_infer")
    with pytest.raises(ValueError, match=r"truncate.*the layer's '_infer' policy took int32 from its first"):
        layer(np.ones((1, 3), np.int32))
    assert layer.dtype_policy.name == "_infer" and not layer.built  # as before the failed call
    assert layer(np.ones((1, 3), np.float16)).dtype == "float16"


def _in_threads(fn, count=6):
    """`fn(i)` in `count` threads started together; their results, in order."""
    import threading

    barrier, results = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_layer_first_called_from_several_threads_at_once_is_built_once():
    for _ in range(5):
        layer = nbmp.layers.Dense(3)
        outputs = _in_threads(lambda i, layer=layer: layer(np.ones((2, 4), np.float32)).numpy())
        assert len(layer.weights) == 2  # build ran twice, some threads lost _build_device
        assert all(np.array_equal(o, outputs[0]) for o in outputs)


def test_infer_float32_vars_layers_shared_by_threads_compute_in_each_calls_dtype():
    import sys

    layer = nbmp.layers.Dense(4, dtype=experimental.Policy("infer_float32_vars"))
    layer(np.ones((2, 3), np.float16))
    inputs = [np.ones((2, 3), np.float16), np.ones((2, 3), np.float64)]

    def calls(i):
        return {str(layer(inputs[i % 2]).dtype) for _ in range(300)}

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: inside a call, between its steps
    try:
        results = _in_threads(calls, count=4)
    finally:
        sys.setswitchinterval(interval)
    assert results == [{"float16"}, {"float64"}] * 2


def test_a_first_call_may_call_other_unbuilt_layers_from_other_threads():
    import subprocess
    import sys

    code = """
from concurrent.futures import ThreadPoolExecutor
import numpy as np, nbmp
from nbmp.layers import Layer
class Sub(Layer):
    def build(self, shape): self.w = self.add_weight("w", (shape[-1],), initializer="ones")
    def call(self, x): return x * self.w
class Par(Layer):
    def __init__(self, **kw): super().__init__(**kw); self.a, self.b = Sub(), Sub()
    def call(self, x):
        with ThreadPoolExecutor(2) as pool:
            fa, fb = pool.submit(self.a, x), pool.submit(self.b, x)
            return fa.result() + fb.result()
print(Par()(np.ones((2, 4), np.float32)).shape)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "(2, 4)", out.stderr  # the first-call lock was held during call()


@pytest.mark.parametrize("value", [np.array(2.0), np.float16(2), True, __import__("decimal").Decimal("0.5")])
def test_initializers_take_real_numbers_of_any_kind(value):
    assert nbmp.initializers.Constant(value).value == float(value)
    assert nbmp.initializers.RandomNormal(mean=value).mean == float(value)


def test_a_variable_pickled_before_its_state_was_one_attribute_loads():
    import pickle

    v = nbmp.Variable(np.array([1.5, 2.0], np.float32), name="w")
    old = dict(vars(v))
    stored, _ = old.pop("_state")
    old.update(_stored=stored, _autocast_reads={})  # how it was pickled before
    restored = nbmp.Variable.__new__(nbmp.Variable)
    restored.__setstate__(old)
    assert restored.numpy().tolist() == [1.5, 2.0]
    assert pickle.loads(pickle.dumps(restored)).numpy().tolist() == [1.5, 2.0]
