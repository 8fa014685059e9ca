import numpy as np
import pytest

import nbmp
from nbmp.variables import autocast_dtype, autocast_scope


def test_variable_basics():
    v = nbmp.Variable(np.zeros((2, 3)), dtype="float32", name="w", trainable=False)
    assert (v.shape, v.dtype, v.name, v.trainable) == ((2, 3), np.float32, "w", False)
    v.assign(np.ones((2, 3)))
    v.assign_add(1.0)
    v.assign_sub(np.full((2, 3), 0.5))
    assert v.numpy().tolist() == [[1.5] * 3] * 2 and v.numpy().dtype == np.float32
    assert "w" in repr(v) and "float32" in repr(v)


def test_assign_shape_mismatch_names_both_shapes():
    v = nbmp.Variable(np.zeros(3), name="b")
    with pytest.raises(ValueError, match=r"\(2,\).*'b'.*\(3,\)"):
        v.assign(np.zeros(2))


def test_autocast_reads_in_scope_dtype_and_stores_float32():
    v = nbmp.Variable([1.0, 2.0])
    assert v.dtype == "float32"
    with autocast_scope("float16"):
        assert autocast_dtype() == "float16"
        assert v.dtype == "float16" and v.true_dtype == "float32"
        assert (v + 1).dtype == np.float16
        assert "reads as float16" in repr(v)
    assert v.dtype == "float32" and autocast_dtype() is None


def test_non_floating_and_opted_out_variables_do_not_autocast():
    i = nbmp.Variable(np.array([1, 2], np.int32))
    f = nbmp.Variable([1.0], autocast=False)
    with autocast_scope("bfloat16"):
        assert i.dtype == np.int32 and f.dtype == np.float32


def test_assign_add_inside_scope_keeps_full_precision():
    v = nbmp.Variable(np.float32(1.0))
    with autocast_scope("float16"):
        v.assign_add(2.0 ** -12)        # not representable next to 1 in float16
        v.assign_add(0)
    assert v.numpy() == np.float32(1 + 2.0 ** -12)


def test_autocast_scope_needs_floating():
    with pytest.raises(ValueError, match="floating"):
        with autocast_scope("int32"):
            pass


def test_variables_work_with_ops_and_numpy():
    v = nbmp.Variable(np.eye(2, dtype=np.float32))
    assert (np.ones((1, 2), np.float32) @ v).numpy().tolist() == [[1.0, 1.0]]
    assert np.asarray(v).dtype == np.float32
    assert nbmp.ops.matmul(v, v).shape == (2, 2)


def test_a_variable_keeps_its_own_copy_of_the_initial_value():
    source = np.zeros(3, np.float32)
    v = nbmp.Variable(source)
    source[:] = 5
    v.assign(source)
    source[:] = 7
    assert v.numpy().tolist() == [5.0, 5.0, 5.0]


def test_autocast_reads_are_cast_once_per_value():
    v = nbmp.Variable(np.array([1.0, 2.0], np.float32))
    with autocast_scope("float16"):
        first = v.value
        assert v.value is first and first.dtype == np.float16
        v.assign([3.0, 4.0])
        assert v.value is not first and v.value.tolist() == [3.0, 4.0]


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_dense_layer_sees_every_new_kernel_value(policy):
    """The packed kernel a Dense layer reuses between calls follows every assignment."""
    layer = nbmp.layers.Dense(3, use_bias=False, dtype=policy)
    x = np.ones((2, 4), np.float32)
    layer(x)
    for scale in (1.0, 2.0, -0.5):
        layer.kernel.assign(np.full((4, 3), scale, np.float32))
        assert np.asarray(layer(x).numpy(), np.float64).tolist() == [[4 * scale] * 3] * 2


def test_ops_dense_does_not_cache_plain_arrays():
    kernel = np.ones((4, 3), np.float16)
    x = nbmp.asarray(np.ones((1, 4), np.float16))
    w = nbmp.asarray(kernel)  # a view of the caller's array, which may still change
    assert nbmp.ops.dense(x, w).tolist() == [[4.0] * 3]
    kernel[:] = 2
    assert nbmp.ops.dense(x, w).tolist() == [[8.0] * 3]


def test_every_array_operator_reads_the_autocast_value():
    v = nbmp.Variable([1.0, -2.0])
    assert (v ** 2).numpy().tolist() == [1.0, 4.0] and (2.0 ** v).numpy().tolist() == [2.0, 0.25]
    assert abs(v).numpy().tolist() == [1.0, 2.0] and len(v) == 2
    assert [float(e) for e in v] == [1.0, -2.0]
    scalar = nbmp.Variable(3.0)
    assert float(scalar) == 3.0 and int(scalar) == 3 and bool(scalar)
    assert [10, 20, 30, 40][nbmp.Variable(3, dtype="int32")] == 40
    with autocast_scope("float16"):
        assert (v ** 2).dtype == np.float16 and (2.0 ** v).dtype == np.float16
        assert abs(v).dtype == np.float16 and next(iter(v)).dtype == np.float16


def test_variables_compare_elementwise_and_hash_by_identity():
    v = nbmp.Variable([1.0, 2.0])
    assert (v == 1.0).tolist() == [True, False] and (v < 1.5).tolist() == [True, False]
    assert ((v > 0) & (v < 2)).tolist() == [True, False] and (v // 1).tolist() == [1.0, 2.0]
    assert (-v % 3).tolist() == [2.0, 1.0] and 2.0 in v and v.tolist() == [1.0, 2.0]
    assert {v: "slot"}[v] == "slot" and nbmp.Variable(2.5).item() == 2.5
    assert v in [v] and None not in v  # a list finds a Variable as itself...
    with pytest.raises(ValueError, match="ambiguous"):  # ...and compares the others' values
        assert v in [nbmp.Variable([1.0, 2.0])]
    assert f"{nbmp.Variable(2.0):.3f}" == "2.000"
    summed = np.add(np.ones(2, np.float32), v)
    assert isinstance(summed, nbmp.Array) and summed.tolist() == [2.0, 3.0]
    with autocast_scope("float16"):
        assert (v == 1.0).tolist() == [True, False] and (v // 1).dtype == np.float16


def test_an_autocast_scope_is_entered_once_at_a_time():
    scope = autocast_scope("float16")
    with scope:
        with pytest.raises(RuntimeError, match="already active"):
            with scope:
                pass
        assert autocast_dtype() == "float16"
    assert autocast_dtype() is None
    with scope:  # and again once it has ended
        assert autocast_dtype() == "float16"


def test_assigning_a_variable_inside_an_autocast_scope_keeps_its_full_precision():
    a = nbmp.Variable(np.float32(3.14159265))
    b, c = nbmp.Variable(np.float32(0)), nbmp.Variable(np.float32(0))
    with autocast_scope("float16"):
        b.assign(a)
        c.assign_add(a)
    assert b.true_value.numpy() == c.true_value.numpy() == np.float32(3.14159265)


def test_a_variable_named_none_gets_the_default_name():
    assert nbmp.Variable(1.0, name=None).name == nbmp.Variable(1.0).name == "variable"


def test_a_read_cast_while_another_thread_assigns_is_not_kept_for_the_new_value(monkeypatch):
    from nbmp import variables

    v = nbmp.Variable(np.zeros(4, np.float32))
    cast = variables._read_as

    def assign_meanwhile(stored, target):  # the other thread's assign lands mid-read
        v.assign(np.full(4, 7.0, np.float32))
        return cast(stored, target)

    monkeypatch.setattr(variables, "_read_as", assign_meanwhile)
    with variables.autocast_scope("float16"):
        assert v.value.numpy().tolist() == [0.0] * 4  # the read that began before the assign
    monkeypatch.setattr(variables, "_read_as", cast)
    with variables.autocast_scope("float16"):
        assert v.value.numpy().tolist() == [7.0] * 4  # not the stale cast


@pytest.mark.parametrize("dtype, value", [("uint8", 300), ("int8", -129), ("uint32", -1)])
def test_assigning_an_int_out_of_range_raises(dtype, value):
    v = nbmp.Variable(np.zeros(2, dtype))
    with pytest.raises(OverflowError, match=f"outside {dtype}'s range"):
        v.assign([value, 0])
    assert v.numpy().tolist() == [0, 0]


@pytest.mark.parametrize("dtype, value", [("int64", 2**40), ("uint32", 2**32 - 1), ("float64", 0.1),
                                          ("bfloat16", 0.1)])
def test_assigning_a_python_number_stores_it_in_the_variables_dtype_directly(dtype, value):
    v = nbmp.Variable(np.zeros((), nbmp.dtypes.as_numpy(dtype)))
    assert v.assign(value).numpy() == np.asarray(value).astype(nbmp.dtypes.as_numpy(dtype))
