import threading

import numpy as np
import pytest

import nbmp
from nbmp import mixed_precision
from nbmp.policy import DTypePolicy


@pytest.mark.parametrize("name, compute, variable", [
    ("float32", "float32", "float32"), ("float64", "float64", "float64"),
    ("float16", "float16", "float16"), ("bfloat16", "bfloat16", "bfloat16"),
    ("int32", "int32", "int32"), ("mixed_float16", "float16", "float32"),
    ("mixed_bfloat16", "bfloat16", "float32"), ("_infer", None, None),
])
def test_policy_dtypes(name, compute, variable):
    p = DTypePolicy(name)
    assert (p.name, p.compute_dtype, p.variable_dtype) == (name, compute, variable)


def test_repr_in_keras_form():
    assert repr(DTypePolicy("mixed_float16")) == '<DTypePolicy "mixed_float16">'
    assert repr(mixed_precision.Policy("mixed_float16")) == '<Policy "mixed_float16">'
    assert "float16" in DTypePolicy("mixed_float16")._repr_html_()


def test_equality_and_hash_follow_the_name():
    assert DTypePolicy("mixed_float16") == DTypePolicy("mixed_float16")
    assert DTypePolicy("mixed_float16") == mixed_precision.Policy("mixed_float16")
    assert DTypePolicy("float16") != DTypePolicy("mixed_float16")
    assert len({DTypePolicy("float32"), DTypePolicy("float32"), DTypePolicy("float64")}) == 2
    assert DTypePolicy("float32") != "float32"


@pytest.mark.parametrize("cls", [DTypePolicy, mixed_precision.Policy,
                                 mixed_precision.experimental.Policy])
def test_config_round_trip(cls):
    p = cls("mixed_bfloat16")
    assert p.get_config() == {"name": "mixed_bfloat16"}
    q = cls.from_config(p.get_config())
    assert q == p and type(q) is cls
    assert type(nbmp.policy.deserialize(nbmp.policy.serialize(p))) is cls


def test_unknown_name_names_received_and_valid_values():
    with pytest.raises(ValueError) as err:
        DTypePolicy("mixed_fp16")
    message = str(err.value)
    assert "mixed_fp16" in message and "mixed_float16" in message and "Received" in message


def test_tf114_names_point_to_the_experimental_class():
    with pytest.raises(ValueError, match="experimental"):
        DTypePolicy("infer_float32_vars")


@pytest.mark.parametrize("bad", [16, 1.5, ["float32"]])
def test_non_string_names_raise_type_error(bad):
    with pytest.raises(TypeError, match="Received"):
        DTypePolicy(bad)


def test_global_policy_defaults_to_floatx():
    assert nbmp.global_policy() == DTypePolicy("float32")
    nbmp.set_floatx("float64")
    assert nbmp.global_policy() == DTypePolicy("float64")
    assert nbmp.floatx() == "float64"


def test_set_floatx_rejects_non_floating():
    for value in ("int32", "fp16", None):
        with pytest.raises(ValueError, match=r"floatx must be a floating dtype \(float16, bfloat16, float32, "
                                             rf"float64\). Received: {value!r}"):
            nbmp.set_floatx(value)


def test_errors_name_the_function_called():
    from nbmp.mixed_precision import experimental

    for call, name in ((lambda: nbmp.policy_scope(3).__enter__(), "policy_scope"),
                       (lambda: experimental.set_policy(3), "set_policy"),
                       (lambda: nbmp.set_global_policy(3), "set_global_policy")):
        with pytest.raises(TypeError, match=f"^{name} expects a policy, a policy name or None. "
                                            "Received: policy=3"):
            call()
    with pytest.raises(TypeError, match="deserialize expects the dict serialize.. gives. Received: 'f"):
        nbmp.policy.deserialize("float16")


def test_set_global_policy_and_reset():
    nbmp.set_global_policy("mixed_float16")
    assert nbmp.global_policy() == DTypePolicy("mixed_float16")
    assert nbmp.dtype_policy() == DTypePolicy("mixed_float16")  # Keras 3 name, same state
    nbmp.set_global_policy(None)
    assert nbmp.global_policy() == DTypePolicy("float32")
    nbmp.set_dtype_policy(DTypePolicy("mixed_bfloat16"))
    assert mixed_precision.global_policy() == DTypePolicy("mixed_bfloat16")


def test_only_floating_policies_can_be_global():
    with pytest.raises(ValueError, match="floating-point policies"):
        nbmp.set_global_policy("int32")
    assert nbmp.global_policy().name == "float32"
    nbmp.set_global_policy("_infer")
    assert nbmp.global_policy().compute_dtype is None


def test_set_global_policy_type_errors():
    with pytest.raises(TypeError, match="Received"):
        nbmp.set_global_policy(3)


def test_policy_scope_restores_on_exception():
    nbmp.set_global_policy("float64")
    with pytest.raises(RuntimeError):
        with nbmp.policy_scope("mixed_float16") as active:
            assert active == nbmp.global_policy() == DTypePolicy("mixed_float16")
            raise RuntimeError("boom")
    assert nbmp.global_policy() == DTypePolicy("float64")


def test_set_global_policy_inside_a_scope_lasts_until_the_scope_ends():
    with nbmp.policy_scope("mixed_float16"):
        nbmp.set_global_policy("bfloat16")
        assert nbmp.global_policy().name == "bfloat16"
    assert nbmp.global_policy().name == "float32"


def test_nested_scopes():
    with nbmp.policy_scope("mixed_float16"):
        with nbmp.policy_scope("float64"):
            assert nbmp.global_policy().name == "float64"
        assert nbmp.global_policy().name == "mixed_float16"


def test_policy_scope_does_not_leak_into_other_threads():
    inside, seen = threading.Event(), {}
    release = threading.Event()

    def in_scope():
        with nbmp.policy_scope("mixed_float16"):
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=in_scope)
    worker.start()
    assert inside.wait(5)
    seen["main"] = nbmp.global_policy().name
    other = threading.Thread(target=lambda: seen.setdefault("other", nbmp.global_policy().name))
    other.start()
    other.join()
    release.set()
    worker.join()
    assert seen == {"main": "float32", "other": "float32"}


def test_global_policy_set_in_one_thread_is_seen_in_another():
    nbmp.set_global_policy("mixed_bfloat16")
    seen = []
    t = threading.Thread(target=lambda: seen.append(nbmp.global_policy().name))
    t.start()
    t.join()
    assert seen == ["mixed_bfloat16"]


def test_a_dtype_alias_names_its_dtypes_policy():
    assert nbmp.DTypePolicy("half") == nbmp.DTypePolicy("float16")
    assert repr(nbmp.DTypePolicy("double")) == '<DTypePolicy "float64">'


def test_a_policy_without_a_name_takes_floatx():
    assert nbmp.DTypePolicy().name == "float32"
    nbmp.set_floatx("float64")  # the autouse fixture restores float32
    assert nbmp.DTypePolicy().name == nbmp.DTypePolicy(None).name == "float64"


@pytest.mark.parametrize("dtype", [np.complex64, np.dtype("complex128"), "complex64"])
def test_a_dtype_no_policy_names_is_refused_with_the_valid_names(dtype):
    with pytest.raises(ValueError, match=r"Unknown policy 'complex(64|128)'. Valid: 'mixed_float16'"):
        nbmp.layers.Layer(dtype=dtype)


@pytest.mark.parametrize("config, expected", [
    ({"class_name": "Policy", "config": {"name": "mixed_float16"}}, "mixed_float16"),  # tf.keras 2
    ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"},
      "registered_name": None}, "mixed_bfloat16"),  # Keras 3
    ({"module": "keras.dtype_policies", "class_name": "FloatDTypePolicy", "config": {"name": "float16"},
      "registered_name": None}, "float16"),  # Keras 3.x before DTypePolicy took its place
])
def test_keras_policy_configs_deserialize(config, expected):
    assert nbmp.policy.deserialize(config).name == expected


@pytest.mark.parametrize("config", [{"class_name": "DTypePolicy", "module": "nbmp.policy"},
                                    {"class_name": "Foo", "module": "bar", "config": {"name": "float32"}}])
def test_what_is_no_policy_config_is_refused_saying_what_one_is(config):
    with pytest.raises(ValueError, match=r"Not a policy config: .*'DTypePolicy@nbmp.policy'.*Received"):
        nbmp.policy.deserialize(config)


def test_a_config_with_an_unhashable_class_name_is_refused_as_no_policy_config():
    with pytest.raises(ValueError, match="Not a policy config"):
        nbmp.policy.deserialize({"class_name": ["x"], "config": {}})
