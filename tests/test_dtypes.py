import ml_dtypes
import numpy as np
import pytest

from nbmp import dtypes


@pytest.mark.parametrize("given, name", [
    ("float16", "float16"), ("half", "float16"), (np.float16, "float16"),
    (np.dtype("float32"), "float32"), ("bfloat16", "bfloat16"), (ml_dtypes.bfloat16, "bfloat16"),
    (float, "float32"), (int, "int64"), ("int32", "int32"), (np.zeros(2, np.int8), "int8"),
    ("bool", "bool"),
])
def test_canonical_names(given, name):
    assert dtypes.canonical_name(given) == name


def test_as_numpy_gives_ml_dtypes_bfloat16():
    assert dtypes.as_numpy("bfloat16") == np.dtype(ml_dtypes.bfloat16)
    assert dtypes.as_numpy("float16") == np.float16


@pytest.mark.parametrize("bad, error", [("float8", ValueError), ("complex64", ValueError),
                                         (None, TypeError), (3.5, TypeError)])
def test_bad_dtypes_say_what_was_received(bad, error):
    with pytest.raises(error, match="Received"):
        dtypes.canonical_name(bad)


def test_is_floating_and_is_half():
    assert [dtypes.is_floating(n) for n in ("float16", "bfloat16", "float32", "float64")] == [True] * 4
    assert not dtypes.is_floating("int32") and not dtypes.is_floating("bool")
    assert dtypes.is_half("bfloat16") and not dtypes.is_half("float32")


@pytest.mark.parametrize("name", dtypes.FLOATING)
def test_finfo_matches_numpy_and_ml_dtypes(name):
    info, ref = dtypes.finfo(name), ml_dtypes.finfo(dtypes.as_numpy(name))
    assert info.max == float(ref.max)
    assert info.smallest_normal == float(ref.smallest_normal)
    assert info.smallest_subnormal == float(ref.smallest_subnormal)
    assert info.eps == float(ref.eps)
    assert info.bits == 1 + info.exponent_bits + info.mantissa_bits


def test_finfo_known_values_for_teaching():
    assert dtypes.finfo("float16").max == 65504.0
    assert dtypes.finfo("float16").mantissa_bits == 10
    assert dtypes.finfo("bfloat16").exponent_bits == 8
    assert dtypes.finfo("bfloat16").eps == 2.0 ** -7
    with pytest.raises(ValueError, match="floating"):
        dtypes.finfo("int32")


def test_finfo_table_has_a_row_per_format():
    lines = dtypes.finfo_table().splitlines()
    assert len(lines) == 5
    assert [line.split()[0] for line in lines[1:]] == list(dtypes.FLOATING)
    assert "65504 " in dtypes.finfo_table()  # not 6.55e+04: the number courses quote


@pytest.mark.parametrize("operands, expected", [
    (("float16", 1e5), "float16"),            # NEP 50: the Python float is weak
    (("bfloat16", 1.5), "bfloat16"),          # NumPy alone says float64 here
    (("bfloat16", 2), "bfloat16"),
    (("bfloat16", "float16"), "float32"),     # NumPy alone cannot promote these
    (("bfloat16", "float32"), "float32"),
    (("bfloat16", "float64"), "float64"),
    (("bfloat16", "int8"), "bfloat16"),
    (("bfloat16", "int16"), "float32"),
    (("float16", "int8"), "float16"),
    (("int32", 1.5), "float64"),
    (("bfloat16", "bfloat16"), "bfloat16"),
    ((np.float64(1.0), "float16"), "float64"),  # a NumPy scalar is strong
])
def test_result_type(operands, expected):
    assert dtypes.result_type(*operands) == expected


@pytest.mark.parametrize("weak", [True, 0, 300, 2**40, -7, 1.5, -0.0])
def test_result_type_of_arrays_and_python_scalars_is_numpys_whatever_the_value(weak):
    """Answers for mixed operands are kept by dtypes and scalar types: the value of a weak
    scalar never changes them (NEP 50), in any order."""
    names = ["bool", "int8", "uint8", "int32", "int64", "float16", "float32", "float64"]
    for a in names:
        for b in names:
            arrays = (np.zeros(1, a), np.zeros(1, b))
            assert dtypes.result_type(*arrays, weak) == np.result_type(*arrays, weak).name, (a, b, weak)
            assert dtypes.result_type(weak, *arrays) == np.result_type(weak, *arrays).name, (a, b, weak)


def test_result_type_rejects_complex_and_nothing():
    with pytest.raises(TypeError, match="Complex"):
        dtypes.result_type("float32", 1j)
    with pytest.raises(ValueError):
        dtypes.result_type()


def test_dtype_table_finds_bfloat16_by_dtype_and_keeps_it_as_a_plain_entry():
    table = dtypes.DTypeTable({"float16": "half", "bfloat16": "brain"})
    bf16 = np.dtype(ml_dtypes.bfloat16)
    assert np.dtype(np.float32) not in table and "bfloat16" not in table and ml_dtypes.bfloat16 not in table
    assert bf16 in table
    # found once, it is an ordinary key: later lookups skip the slow ``dtype.name``
    assert dict.__contains__(table, bf16)
    assert table[bf16] == "brain" and table[np.dtype(np.float16)] == "half"
    with pytest.raises(KeyError):
        table[np.dtype(np.float64)]
    assert np.dtype(ml_dtypes.bfloat16) not in dtypes.DTypeTable({"float16": "half"})
