import warnings

import ml_dtypes
import numpy as np
import pytest

import nbmp
from nbmp import Array
from nbmp.array import is_foreign_array


def test_metadata():
    x = nbmp.asarray(np.zeros((2, 3), np.float16))
    assert (x.shape, x.ndim, x.size, x.dtype, x.device, x.nbytes) == ((2, 3), 2, 6, np.float16, "cpu", 12)
    assert x.dtype == "float16"


def test_python_data_becomes_floatx_or_int32():
    assert nbmp.asarray([[1.0, 2.0]]).dtype == np.float32
    assert nbmp.asarray(3).dtype == np.int32
    nbmp.set_floatx("float64")
    assert nbmp.asarray([1.5]).dtype == np.float64


def test_another_librarys_arrays_keep_their_dtype():
    class Foreign:  # a torch tensor, say: NumPy reads it through __array__
        def __array__(self, dtype=None, copy=None):
            return np.ones(2, np.float64)

    assert nbmp.asarray(Foreign()).dtype == np.float64  # not floatx, as Python floats
    assert is_foreign_array(Foreign()) and not is_foreign_array(nbmp.Variable(np.ones(2)))


def test_bfloat16_is_ml_dtypes():
    x = nbmp.asarray([1.0, 3.0], dtype="bfloat16")
    assert x.dtype == np.dtype(ml_dtypes.bfloat16)
    assert x.numpy().dtype == ml_dtypes.bfloat16


def test_asarray_rejects_non_numbers():
    with pytest.raises(TypeError, match="Received"):
        nbmp.asarray("abc")
    with pytest.raises(TypeError, match="nested list"):
        nbmp.asarray([[1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="Unsupported dtype"):
        nbmp.asarray(np.zeros(2, np.complex64))


def test_unknown_device():
    with pytest.raises(ValueError, match="Valid: 'cpu'"):
        nbmp.asarray([1.0], device="tpu")


def test_storage_is_never_written_and_numpy_returns_a_copy():
    source = np.ones(3, np.float32)
    x = nbmp.asarray(source)
    copy = x.numpy()
    copy[0] = 5
    assert x.numpy()[0] == 1
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(x)[0] = 7


def test_array_protocol_numpy2():
    x = nbmp.asarray([1.0, 2.0], dtype="float16")
    assert np.asarray(x).dtype == np.float16
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert np.array(x, copy=True).flags.writeable
    with pytest.raises(ValueError, match="copy"):
        x.__array__(np.float32, copy=False)
    assert np.exp(x).dtype == np.float16  # NumPy functions see a NumPy array


def test_dlpack_round_trip_and_bf16_error():
    x = nbmp.asarray([1.0, 2.0], dtype="float16")
    y = np.from_dlpack(x)
    assert y.dtype == np.float16 and y.tolist() == [1.0, 2.0]
    with pytest.raises(BufferError, match="bfloat16"):
        nbmp.asarray([1.0], dtype="bfloat16").__dlpack__()


def _address(a):
    return a.__array_interface__["data"][0]


def test_dlpack_exports_a_variables_value_as_a_copy():
    # torch ignores DLPack's read-only flag: a view of a Variable's value could be written, under
    # the packed weights nbmp keeps for it
    value = nbmp.Variable(np.eye(3, dtype=np.float32)).value
    assert _address(np.from_dlpack(value)) != _address(value._data)
    with pytest.raises(BufferError, match="copy=False"):
        value.__dlpack__(copy=False)
    x = nbmp.asarray(np.ones(3, np.float32))  # an Array over the caller's NumPy array: shared
    assert _address(np.from_dlpack(x)) == _address(x._data)


def test_half_arithmetic_nep50():
    x = nbmp.asarray([1.0, 2.0], dtype="float16")
    assert (x * 1e5).numpy().tolist() == [np.inf, np.inf]   # weak scalar: stays float16, overflows
    assert (x * 1e5).dtype == np.float16
    assert (x + np.float32(1)).dtype == np.float32          # NumPy scalar: strong
    b = nbmp.asarray([1.0, 2.0], dtype="bfloat16")
    assert (b * 2.5).dtype == "bfloat16"
    assert (b + x).dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_half_arithmetic_is_one_rounding_of_the_exact_result(dtype, op):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(1000).astype(nbmp.dtypes.as_numpy(dtype))
    b = (rng.standard_normal(1000) + 3).astype(nbmp.dtypes.as_numpy(dtype))
    fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op]
    exact = fn(a.astype(np.float64), b.astype(np.float64)).astype(nbmp.dtypes.as_numpy(dtype))
    x, y = nbmp.asarray(a), nbmp.asarray(b)
    got = {"add": x + y, "sub": x - y, "mul": x * y, "div": x / y}[op]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.numpy().view(np.uint16), exact.view(np.uint16))


def test_operators_with_numpy_on_the_left_return_arrays():
    x = nbmp.asarray([1.0, 2.0])
    assert isinstance(np.ones(2, np.float32) + x, Array)
    assert isinstance(np.ones((2, 2), np.float32) @ x, Array)
    assert isinstance(2 - x, Array) and (2 - x).numpy().tolist() == [1.0, 0.0]
    assert (-x).numpy().tolist() == [-1.0, -2.0]
    assert (1 / x).numpy().tolist() == [1.0, 0.5]


def test_matmul_on_halves_goes_through_float32_accumulation():
    ones = nbmp.asarray(np.ones((1, 10_000)), dtype="float16")
    assert (ones @ ones.T).numpy().item() == 10_000.0


def test_transpose_reshape_index():
    x = nbmp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert x.T.shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x[1].numpy().tolist() == [3.0, 4.0, 5.0]
    assert float(x[1, 2]) == 5.0
    assert len(x) == 2 and [r.shape for r in x] == [(3,), (3,)]
    with pytest.raises(ValueError, match=r"Cannot reshape .* into shape \(4, 2\)$"):
        x.reshape(4, 2)
    for shape in [(-2, -3), (-1, -1)]:
        with pytest.raises(ValueError, match="sizes are >= 0, and one of them may be -1"):
            x.reshape(*shape)


def test_astype_and_repr():
    x = nbmp.asarray([1.0, 2.5], dtype="float32").astype("bfloat16")
    assert x.dtype == "bfloat16"
    assert repr(x) == "Array([1. , 2.5], dtype=bfloat16, device='cpu')"
    html = nbmp.asarray([1.0, np.nan, np.inf])._repr_html_()
    assert "nan: 1" in html and "inf: 1" in html and "float32" in html


def test_array_rejects_direct_construction_from_lists():
    with pytest.raises(TypeError, match="asarray"):
        Array([1, 2])


def test_a_number_to_the_power_of_an_array():
    x = nbmp.asarray([1.0, 2.0, 3.0], dtype="bfloat16")
    got = 2.0 ** x
    assert got.dtype == x.dtype and got.tolist() == [2.0, 4.0, 8.0]


def test_a_variables_storage_cannot_be_made_writable_through_numpy():
    v = nbmp.Variable(np.ones((4, 4), np.float32))
    x = np.ones((1, 4), np.float32)
    assert nbmp.ops.dense(x, v.value).tolist() == [[4.0] * 4]  # packed weights memoized on the value
    raw = np.asarray(v.value)
    with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
        raw.flags.writeable = True


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "int32", "bool"])
def test_pickled_and_deep_copied_arrays_are_their_own_read_only_storage(dtype):
    import copy
    import pickle

    original = nbmp.asarray([1.5, -2.25, 0.0], dtype=dtype)
    for clone in (pickle.loads(pickle.dumps(original)), copy.deepcopy(original)):
        assert clone.dtype == original.dtype and clone.tolist() == original.tolist()
        with pytest.raises(ValueError, match="read-only"):
            np.asarray(clone)[0] = 1
    assert copy.copy(original) is original
    v = nbmp.Variable(np.ones((3, 2), np.float32))
    nbmp.ops.dense(np.ones((1, 3), np.float32), v.value)  # memoizes packed weights
    assert pickle.loads(pickle.dumps(v.value))._memo == {}  # not pickled along


@pytest.mark.parametrize("value, dtype", [([2**40], None), (3_000_000_000, None), ([1, 2**31], None),
                                          ([300], "int8"), ([-1], "uint8"), (2**63, "int64")])
def test_python_ints_outside_the_dtype_raise_instead_of_wrapping(value, dtype):
    with pytest.raises(OverflowError, match=r"Python ints outside int|Python ints outside uint"):
        nbmp.asarray(value, dtype=dtype)


def test_python_ints_that_fit_keep_their_values():
    assert nbmp.asarray([2**40], dtype="int64").tolist() == [2**40]
    assert nbmp.asarray([1, -2]).dtype == np.int32 and nbmp.asarray([255], dtype="uint8").tolist() == [255]


def test_numbers_float64_cannot_hold_are_rounded_once_to_a_narrower_dtype():
    from fractions import Fraction

    big = 2**70 + 2**46 + 1  # float(big) is 2**70 + 2**46, a float32 tie, which goes to 2**70
    assert nbmp.asarray([big], dtype="float32").tolist() == [2**70 + 2**47]
    assert nbmp.asarray([big], dtype="float64").tolist() == [float(big)]
    near = Fraction(2**24 + 1) + Fraction(1, 2**60)  # just above a float32 tie
    assert nbmp.asarray([near, -near], dtype="float32").tolist() == [2**24 + 2, -(2**24 + 2)]


def test_the_repr_of_an_empty_array_gives_its_shape_as_numpys_does():
    empty = nbmp.asarray(np.zeros((2, 0), np.float32))
    assert repr(empty) == "Array([], shape=(2, 0), dtype=float32, device='cpu')"
    assert repr(nbmp.asarray(np.zeros(0, np.float16))) == "Array([], dtype=float16, device='cpu')"


def test_bfloat16_reprs_show_the_fewest_digits_that_read_back():
    x = nbmp.asarray([[0.1, 1 / 3], [2, 3]], dtype="bfloat16")
    assert repr(x) == "Array([[0.1  , 0.334],\n       [2.   , 3.   ]], dtype=bfloat16, device='cpu')"
    specials = nbmp.asarray([-0.0, float("nan"), float("-inf"), 1e-30, 65504], dtype="bfloat16")
    assert repr(specials) == ("Array([-0.00e+00,       nan,      -inf,  1.00e-30,  6.55e+04], "
                              "dtype=bfloat16, "
                              "device='cpu')")  # scientific for all: NumPy's rule (below 1e-4)
    assert repr(nbmp.asarray([[20, 3.5], [-20, 0.1]], dtype="bfloat16")) == (  # not 2e+01
        "Array([[ 20. ,   3.5],\n       [-20. ,   0.1]], dtype=bfloat16, device='cpu')")
    hundreds = nbmp.asarray([100, 300], dtype="bfloat16")
    assert repr(hundreds) == "Array([100., 300.], dtype=bfloat16, device='cpu')"
    hidden = np.ones(300)
    hidden[100] = 1e-5  # not shown in the summary: it does not make the shown ones scientific
    assert repr(nbmp.asarray(hidden, dtype="bfloat16")).startswith("Array([1., 1., 1., ..., 1., 1., 1.]")
    last = np.ones(1200)
    last[-1] = 123.5  # shown: it sets the width
    assert repr(nbmp.asarray(last, dtype="bfloat16")).startswith("Array([  1. ,   1. ,   1. , ...,   1. ,")


@pytest.mark.parametrize("values", [[0.5, 0.25, 1.0], [[1.5, -2.0], [3.25, 4.0]], [0.0, 2.0**-20, 14.5],
                                    [-np.inf, np.nan, 0.0, -0.0, 3.0], np.arange(0, 400, 2.0)])
def test_bfloat16_reprs_line_up_as_float16_ones_do(values):
    # values both formats hold exactly: the same text, decimal points lined up by NumPy
    text = {dt: repr(nbmp.asarray(values, dtype=dt)).replace(dt, "") for dt in ("bfloat16", "float16")}
    assert text["bfloat16"] == text["float16"]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_notebook_reprs_of_halves_show_the_fewest_digits_that_read_back(dtype):
    html = nbmp.asarray([0.1, 20.0], dtype=dtype)._repr_html_()
    assert "min 0.1, max 20, mean 10.05," in html and "0.1, 20." in html and "0.100098" not in html
    # the mean of the values held, not rounded to the dtype (bfloat16 would show 10.06; 128.5 128)
    assert "mean 128.5," in nbmp.asarray([128.0, 129.0], dtype=dtype)._repr_html_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 7e+04, tried for 65504, overflows float16 quietly
        assert "min 65500, max 65500, mean 65500" in nbmp.asarray([65504.0], dtype="float16")._repr_html_()


def test_lists_of_half_arrays_and_scalars_make_arrays():
    x = nbmp.asarray([1.0, 2.0, 3.0], dtype="bfloat16")
    assert nbmp.asarray([x, x]).shape == (2, 3) and nbmp.asarray([x, x]).dtype == "bfloat16"
    assert nbmp.asarray([x[0], x[2]]).tolist() == [1.0, 3.0]  # 0-d bfloat16 Arrays
    assert nbmp.asarray([ml_dtypes.bfloat16(1), ml_dtypes.bfloat16(2)]).dtype == "bfloat16"
    assert nbmp.asarray([nbmp.Variable([1.0], dtype="bfloat16")]).dtype == "bfloat16"
    assert nbmp.ops.cast([x], "float32").tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(TypeError, match="not a .rectangular. nested list"):
        nbmp.asarray([x, x[:2]])
    for beyond in ([2**70], [True, 2**70]):
        with pytest.raises(OverflowError, match=r"beyond 64 bits.*a floating dtype= takes them"):
            nbmp.asarray(beyond)
    assert nbmp.asarray([2**70, 1.5], dtype="float32").tolist() == [2.0**70, 1.5]
    assert nbmp.asarray([2**70, 1.5]).tolist() == [2.0**70, 1.5]  # floats, as NumPy makes them
    on_gpu = nbmp.Array(np.ones(2, np.float32), device="cuda")  # (the label is enough here)
    with pytest.raises(TypeError, match="not converted to NumPy implicitly"):
        nbmp.asarray([on_gpu])


def test_zero_d_arrays_format_as_numbers():
    loss = nbmp.ops.mean(nbmp.asarray([1.0, 2.0]))
    assert f"{loss:.4f}" == "1.5000" and f"{nbmp.asarray(2.5, dtype='bfloat16'):.1f}" == "2.5"
    assert f"{loss}" == repr(loss)
    with pytest.raises(TypeError, match=r"formats a 0-d array.*shape \(2,\)"):
        f"{nbmp.asarray([1.0, 2.0]):.2f}"


def test_operators_for_masks_floor_division_and_membership():
    x = nbmp.asarray([1.0, 2.0, 3.0], dtype="float16")
    assert ((x > 1) & (x < 3)).tolist() == [False, True, False]
    assert ((x < 2) | (x > 2)).tolist() == [True, False, True] and (~(x > 1)).tolist() == [True, False, False]
    assert ((x > 1) ^ (x > 2)).tolist() == [False, True, False]
    assert (x // 2).tolist() == [0.0, 1.0, 1.0] and (x // 2).dtype == "float16"
    assert (-x % 2).tolist() == [1.0, 0.0, 1.0] and (7 // x).tolist() == [7.0, 3.0, 2.0]
    assert (nbmp.asarray([6, 5]) & 3).tolist() == [2, 1]
    assert (~nbmp.asarray([0], dtype="int8")).tolist() == [-1]
    assert (+x) is x and 2.0 in x and 2.5 not in x and None not in x and "a" not in x
    assert 1.0 not in nbmp.asarray(np.zeros(0, np.float32))
    booleans = nbmp.asarray([True, False])
    assert (booleans // True).dtype == (booleans % True).dtype == "int8"  # as NumPy's
    with pytest.raises(TypeError, match="booleans or integers.*Received dtype float16"):
        x & x
    n = np.array([True, False])
    assert isinstance(n & (x[:2] > 1), Array) and isinstance(np.remainder(n, x[:2]), Array)


def test_numpy_operators_and_ufuncs_on_arrays():
    x = nbmp.asarray([1.0, 2.0], dtype="float16")
    n = np.array([1.0, 2.0], np.float32)
    for got in (n + x, np.add(n, x), n * x / n, np.maximum(n, x)):  # nbmp's ops: Arrays
        assert isinstance(got, Array) and got.dtype == np.float32
    assert (n == x).tolist() == [True, True] and np.less(n, x).tolist() == [False, False]
    assert isinstance(np.sin(x), np.ndarray) and np.add.reduce(x) == 3.0  # the rest: NumPy's
    alias = n
    with pytest.raises(TypeError, match=r"cannot write its result into an array.*x = x \+ y"):
        n += x
    with pytest.raises(TypeError, match="cannot write its result"):
        np.multiply(n, x, out=n)
    assert n is alias and n.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "int32", "bool"])
def test_item_gives_the_one_value_as_a_python_number(dtype):
    value = nbmp.asarray([[1]], dtype=dtype).item()
    assert value == 1 and type(value) in (float, int, bool)
    with pytest.raises(ValueError, match=r"one element. Received shape \(2,\) \(2 elements\)"):
        nbmp.asarray([1.0, 2.0]).item()


def test_bfloat16_reprs_follow_numpys_edgeitems():
    x = nbmp.asarray(np.arange(1000.0), dtype="bfloat16")
    with np.printoptions(edgeitems=5):
        text = repr(x)
        assert "4., ...,  996." in text and "<pre>" in x._repr_html_()  # a KeyError before
    with np.printoptions(edgeitems=1):
        assert repr(x).startswith("Array([   0., ..., 1000.]")


def test_a_list_of_arrays_takes_their_dtype():
    a = nbmp.asarray(np.array([0.1, 1 / 3]))
    assert nbmp.asarray([a, a]).dtype == "float64"  # was float32: the digits past it lost
    assert nbmp.asarray((np.array([1], np.int8), np.array([2], np.uint8))).dtype == "int16"
    assert nbmp.asarray([nbmp.asarray([2**40], dtype="int64")]).tolist() == [[2**40]]  # not int32's range
    assert nbmp.asarray([0.1, 2]).dtype == "float32"  # Python numbers: floatx, as before
    # arrays beside Python numbers: as before too (floatx, int32), never wrapped to the arrays' dtype
    assert nbmp.asarray([np.array([0.1]), [0.2]]).dtype == "float32"
    assert nbmp.asarray([np.uint8(1), 300]).tolist() == [1, 300]
    assert nbmp.asarray([np.float16(1), 1e6]).tolist() == [1.0, 1e6]


@pytest.mark.parametrize("values, dtype, error", [
    ([1e10], "int32", OverflowError), ([np.nan], "int32", ValueError), ([-np.inf], "int64", ValueError),
    ([256.0], "uint8", OverflowError)])
def test_python_floats_that_no_int_holds_are_refused(values, dtype, error):
    with pytest.raises(error, match=dtype):
        nbmp.asarray(values, dtype=dtype)
    with pytest.raises(error, match=dtype):
        nbmp.Variable(np.zeros(1, dtype)).assign(values)


def test_python_floats_into_ints_are_truncated_as_numpy_does():
    assert nbmp.asarray([2.9, -2.9, 255.5], dtype="int16").tolist() == [2, -2, 255]
    assert nbmp.asarray([-(2.0**63)], dtype="int64").tolist() == [-(2**63)]  # the boundaries, exactly
    assert nbmp.asarray([-0.5], dtype="uint64").tolist() == [0]
    for beyond, dtype in [(2.0**63, "int64"), (2.0**64, "uint64"), (-1.0, "uint64")]:
        with pytest.raises(OverflowError, match=dtype):
            nbmp.asarray([beyond], dtype=dtype)


def test_fractions_are_real_numbers():
    from fractions import Fraction

    assert nbmp.asarray(Fraction(1, 3)).dtype == "float32"
    assert nbmp.asarray([Fraction(1, 2), 2]).tolist() == [0.5, 2.0]
    assert nbmp.asarray([np.float32(1), Fraction(1, 2)]).tolist() == [1.0, 0.5]


def test_reshape_takes_a_shape_array_and_says_when_it_has_none():
    x = nbmp.asarray(np.arange(6.0))
    assert x.reshape(nbmp.asarray([2, 3])).shape == (2, 3) == nbmp.ops.reshape(x, nbmp.asarray([2, 3])).shape
    assert x.reshape(nbmp.asarray(6)).shape == (6,)
    with pytest.raises(TypeError, match="reshape\\(\\) takes a shape"):
        x.reshape()


def test_moments_of_a_0d_array():
    mean, variance = nbmp.ops.moments(nbmp.asarray(2.0), axes=None)
    assert (mean.tolist(), variance.tolist()) == (2.0, 0.0)
