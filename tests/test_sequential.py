import numpy as np
import pytest

import nbmp
from nbmp import layers


def small_cnn(dtype=None):
    return nbmp.Sequential([
        layers.Input((8, 8, 3)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(5),
        layers.Activation("softmax", dtype="float32"),
    ], name="cnn", dtype=dtype)


def test_a_layer_returning_several_arrays_is_refused_by_name():
    model = nbmp.Sequential([layers.Lambda(lambda x: [x, x], name="twice"), layers.Dense(2)])
    with pytest.raises(ValueError, match="returns one array. Layer 'twice' returned a list"):
        model(np.ones((1, 3), np.float32))


def test_a_layer_that_does_not_fit_is_not_kept_and_pop_removes_the_last():
    model = nbmp.Sequential([layers.Input((4,)), layers.Dense(3)])
    with pytest.raises(ValueError, match="Conv2D expects 4-D"):
        model.add(layers.Conv2D(2, 3))
    assert len(model.layers) == 1 and model(np.ones((2, 4), np.float32)).shape == (2, 3)
    model.add(layers.Dense(2))
    assert model.pop().units == 2 and model(np.ones((1, 4), np.float32)).shape == (1, 3)
    model.pop()
    with pytest.raises(ValueError, match="has no layers to pop"):
        model.pop()


def test_reshape_with_minus_one_takes_an_empty_batch():
    model = nbmp.Sequential([layers.Input((12,)), layers.Reshape((-1, 3))])
    assert model.predict(np.zeros((0, 12), np.float32), verbose=0).shape == (0, 4, 3)
    with pytest.raises(ValueError, match="shape .12,. .12 values. into .-1, 5.: 12 is not a multiple of 5"):
        layers.Reshape((-1, 5))(np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError, match=r"shape \(5,\) \(5 values\) into \(2, 2\)"):  # an empty batch too
        layers.Reshape((2, 2))(np.zeros((0, 5), np.float32))


def test_loading_weights_from_the_wrong_file_or_into_an_unbuilt_model_says_so(tmp_path):
    model = nbmp.Sequential([layers.Input((3,)), layers.Dense(2)])
    np.save(tmp_path / "one.npy", np.ones(3))
    (tmp_path / "text.npz").write_text("not an archive")
    np.savez(tmp_path / "short.npz", names=np.array(["a"]), dtypes=np.array(["float32"]))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 and then garbage")
    np.savez(tmp_path / "objects.npz", names=np.array(["a"]), dtypes=np.array(["float32"]),
             w0=np.array([None, 1], object))
    for name, match in (("one.npy", "holds one array, not an .npz archive"),
                        ("text.npz", "cannot read it as .npz"), ("empty.npz", "cannot read it as .npz"),
                        ("zip.npz", "cannot read it as .npz"), ("objects.npz", "its arrays cannot be read"),
                        ("short.npz", "lists 1 weights but lacks w0")):
        with pytest.raises(ValueError, match=f"is not an nbmp weights file .*{match}"):
            model.load_weights(tmp_path / name)
    model.save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="is not built, so it has no weights to load into"):
        nbmp.Sequential([layers.Dense(2)]).load_weights(tmp_path / "w.npz")


def test_input_builds_every_layer_and_records_shapes():
    model = small_cnn()
    assert all(layer.built for layer in model.layers)
    assert model(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 5)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 8, 8, 4)" in text and "(None, 5)" in text
    assert "Total params: 4" in text and "Non-trainable params: 8" in text


def test_summary_shows_policy_and_dtypes_per_layer():
    nbmp.set_global_policy("mixed_bfloat16")
    model = small_cnn()
    lines = []
    model.summary(print_fn=lines.append)
    conv_line = next(line for line in lines if "Conv2D" in line)
    assert "mixed_bfloat16" in conv_line and "float32" in conv_line and "bfloat16" in conv_line
    softmax_line = next(line for line in lines if "Activation" in line)
    assert softmax_line.split()[-3:] == ["float32", "float32", "float32"]
    html = model._repr_html_()
    assert "<table>" in html and "Conv2D" in html
    for total in lines[-3:]:  # the same totals as summary(): bytes, trainable and not
        assert total in html


def test_add_and_layers():
    model = nbmp.Sequential(name="m")
    model.add(layers.Dense(3))
    model.add(layers.Dense(2))
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model(np.ones((4, 6), np.float32)).shape == (4, 2)
    with pytest.raises(ValueError, match="first entry"):
        model.add(layers.Input((3,)))
    with pytest.raises(TypeError, match="Layer or an Input"):
        model.add("dense")


def test_model_input_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(None, 8, 8, 3\).*Received shape \(2, 8, 8, 1\)"):
        small_cnn()(np.zeros((2, 8, 8, 1), np.float32))


def test_predict_in_batches_equals_one_call():
    model = small_cnn()
    x = np.random.default_rng(0).standard_normal((10, 8, 8, 3)).astype(np.float32)
    # equal up to float32 rounding: a one-row batch may take another BLAS path
    np.testing.assert_allclose(model.predict(x, batch_size=3, verbose=0).numpy(), model(x).numpy(),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


def test_get_set_weights_atomic():
    model = small_cnn()
    weights = model.get_weights()
    bad = [w.copy() for w in weights]
    bad[-1] = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match="no weight was changed"):
        model.set_weights([np.full_like(w, 3.0) for w in weights[:-1]] + bad[-1:])
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    with pytest.raises(ValueError, match="has 8 weights"):
        model.set_weights(weights[:2])


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "bfloat16", "float16"])
def test_save_and_load_weights_round_trip_exactly(tmp_path, policy):
    model = small_cnn(dtype=None) if policy == "float32" else None
    with nbmp.policy_scope(policy):
        model = small_cnn()
        other = small_cnn()
    path = tmp_path / "w.npz"
    model.save_weights(path)
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_load_weights_with_wrong_shapes_changes_nothing(tmp_path):
    small = nbmp.Sequential([layers.Input((3,)), layers.Dense(2)])
    small.save_weights(tmp_path / "small.npz")
    model = nbmp.Sequential([layers.Input((4,)), layers.Dense(2)])
    before = model.get_weights()
    with pytest.raises(ValueError, match="shape"):
        model.load_weights(tmp_path / "small.npz")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(ValueError, match=".npz"):
        model.save_weights(tmp_path / "w.h5")


def test_config_round_trip():
    nbmp.set_random_seed(0)
    model = small_cnn()
    clone = nbmp.Sequential.from_config(model.get_config())
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())
    assert clone.layers[-1].dtype_policy.name == "float32"


def test_training_reaches_the_layers_whose_call_takes_it_and_only_them():
    seen = []

    class Noisy(layers.Layer):
        def call(self, x, training=False):
            seen.append(training)
            return x

    class Plain(layers.Layer):  # no training argument: it must not be passed one
        def call(self, x):
            return x

    model = nbmp.Sequential([Noisy(), Plain(), Noisy()])
    x = np.ones((2, 3), np.float32)
    model(x)
    model(x, training=True)
    model(x)
    assert seen == [False, False, True, True, False, False]


def test_summary_counts_a_frozen_layers_weights_as_non_trainable():
    model = nbmp.Sequential([layers.Input((3,)), layers.Dense(4), layers.Dense(2)])
    model.layers[0].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 10" in lines and "Non-trainable params: 16" in lines


def test_config_round_trip_keeps_trainable_dtype_and_autocast():
    model = nbmp.Sequential([layers.Dense(1)], trainable=False, dtype="mixed_float16", autocast=False)
    clone = nbmp.Sequential.from_config(model.get_config())
    assert clone.trainable is False and clone.autocast is False
    assert clone.dtype_policy.name == "mixed_float16"


def test_a_failed_first_call_leaves_the_model_unbuilt():
    class Boom(layers.Layer):
        def call(self, x):
            raise RuntimeError("boom")

    model = nbmp.Sequential([Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        model(np.ones((2, 3), np.float32))
    assert not model.built


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_predict_on_zero_samples_gives_an_empty_result(policy):
    model = nbmp.Sequential([layers.Input((3,)), layers.Dense(2, dtype=policy)])
    empty = np.zeros((0, 3), np.float32)
    y = model.predict(empty, verbose=0)
    assert y.shape == (0, 2) and y.dtype == model(empty).dtype == model.layers[0].compute_dtype


def test_a_frozen_model_freezes_its_layers_and_those_added_later():
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    model = nbmp.Sequential([layers.BatchNormalization()], trainable=False)
    model.add(layers.BatchNormalization())
    model(x, training=True)
    assert not any(layer.trainable for layer in model.layers)
    assert all((layer.moving_mean.numpy() == 0).all() for layer in model.layers)  # inference mode


def test_predict_takes_a_numpy_integer_batch_size():
    model = nbmp.Sequential([layers.Input((3,)), layers.Dense(2)])
    assert model.predict(np.ones((5, 3), np.float32), batch_size=np.int64(2), verbose=0).shape == (5, 2)


def test_a_nested_sequential_passes_training_on():
    bn = layers.BatchNormalization()
    outer = nbmp.models.Sequential([nbmp.models.Sequential([bn])])
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32) + 1.0
    outer(x, training=True)
    assert np.all(bn.moving_mean.numpy() != 0)  # updated from the batch, as a flat model does


def test_build_creates_the_weights_for_an_input_shape():
    model = nbmp.models.Sequential([layers.Dense(2), layers.Dense(1)])
    model.build((None, 3))
    assert model.built and [w.shape for w in model.weights] == [(3, 2), (2,), (2, 1), (1,)]
    with pytest.raises(ValueError, match=r"every dimension after the batch known.*\(None, None\)"):
        nbmp.models.Sequential([layers.Dense(2)]).build((None, None))


def test_predict_takes_keras_batch_size_none_and_verbose_modes():
    model = nbmp.Sequential([nbmp.layers.Input((3,)), nbmp.layers.Dense(2)])
    x = np.ones((40, 3), np.float32)
    assert model.predict(x, batch_size=None, verbose=0).shape == (40, 2)  # 32 at a time, as Keras
    with pytest.raises(ValueError, match=r"verbose must be 'auto', 0, 1 or 2. Received: verbose='yes'"):
        model.predict(x, verbose="yes")
    from nbmp.models import sequential

    steps = range(3)
    assert sequential._progress(steps, 2, "m") is steps  # Keras' one-line mode: no bar
    assert sequential._progress(steps, 0, "m") is steps


def test_infer_layers_built_from_an_input_without_dtype_take_floatx_not_the_models_policy():
    nbmp.set_global_policy("mixed_float16")
    model = nbmp.Sequential([nbmp.layers.Input((4,)), nbmp.layers.Dense(3, dtype="_infer")])
    assert model.layers[0].dtype_policy.name == "float32"  # what data of no stated dtype is
    assert model(np.ones((2, 4), np.float32)).dtype == "float32"
