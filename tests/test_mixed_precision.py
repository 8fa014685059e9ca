"""tf.keras 2.x names and the TF 1.14 experimental API."""

import pytest

import nbmp
from nbmp import mixed_precision
from nbmp.mixed_precision import experimental


def test_tf_keras_global_policy_doc_example():
    # tf.keras.mixed_precision.set_global_policy / global_policy (TF 2.4 docs)
    assert repr(mixed_precision.global_policy()) == '<Policy "float32">'
    mixed_precision.set_global_policy("mixed_float16")
    assert repr(mixed_precision.global_policy()) == '<Policy "mixed_float16">'
    assert nbmp.layers.Layer().dtype_policy == mixed_precision.Policy("mixed_float16")
    assert nbmp.layers.Layer(dtype="float64").dtype_policy.name == "float64"
    mixed_precision.set_global_policy("float32")


def test_one_global_state_for_every_api():
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert nbmp.global_policy().name == "mixed_bfloat16"
    assert experimental.global_policy().name == "mixed_bfloat16"
    experimental.set_policy("infer_float32_vars")
    assert nbmp.dtype_policy().name == "infer_float32_vars"
    with mixed_precision.policy_scope("float64"):
        assert experimental.global_policy().name == "float64"
    with experimental.policy_scope("infer"):
        assert nbmp.global_policy().name == "infer"
    assert nbmp.global_policy().name == "infer_float32_vars"


@pytest.mark.parametrize("name, default_variable_dtype, should_cast", [
    ("infer", None, False), ("infer_float32_vars", "float32", True),
    ("mixed_float16", "float32", True), ("float32", "float32", False),
])
def test_tf114_policy_properties(name, default_variable_dtype, should_cast):
    p = experimental.Policy(name)
    assert p.name == name
    assert p.default_variable_dtype == default_variable_dtype
    assert p.should_cast_variables is should_cast
    assert repr(p) == f'<Policy "{name}">'


def test_tf114_infer_is_underscore_infer():
    p = experimental.Policy("infer")
    assert p.compute_dtype is None and p.variable_dtype is None


def test_infer_float32_vars_layer_dtype_before_call():
    layer = nbmp.layers.Layer(dtype=experimental.Policy("infer_float32_vars"))
    assert layer.dtype == "float32"
    assert layer.compute_dtype is None


def test_experimental_rejects_unknown_names():
    with pytest.raises(ValueError, match="infer_float32_vars"):
        experimental.Policy("infer_float16_vars")


def test_keras3_names_are_in_mixed_precision_too():
    assert mixed_precision.set_dtype_policy is nbmp.set_dtype_policy
    assert mixed_precision.dtype_policy is nbmp.dtype_policy
    mixed_precision.set_dtype_policy("mixed_bfloat16")
    assert mixed_precision.dtype_policy().name == "mixed_bfloat16" == nbmp.global_policy().name
