"""nbmp.ops: promotion, one rounding, float32 accumulation, and clear errors."""

import math
import re

import numpy as np
import pytest

import nbmp
from nbmp import dtypes, ops
from nbmp.backend import reference

HALF = ["float16", "bfloat16"]


def rounded(x, dtype):
    return np.asarray(x).astype(dtypes.as_numpy(dtype))


def test_cast_rounds_to_nearest_even_and_overflows_to_inf():
    y = ops.cast(np.array([1.0, 65504.0, 65520.0, 2049.0, 2051.0], np.float32), "float16")
    assert y.numpy().tolist() == [1.0, 65504.0, np.inf, 2048.0, 2052.0]


def test_cast_same_dtype_is_identity():
    x = nbmp.asarray([1.0])
    assert ops.cast(x, "float32") is x


@pytest.mark.parametrize("dtype", HALF + ["float32"])
def test_matmul_matches_the_float32_accumulation_bound(dtype):
    rng = np.random.default_rng(1)
    a = rounded(rng.standard_normal((3, 37, 50)), dtype)
    b = rounded(rng.standard_normal((50, 29)), dtype)
    got = ops.matmul(a, b)
    assert got.dtype == dtype and got.shape == (3, 37, 29)
    exact = reference.matmul(a, b)
    k = a.shape[-1]
    bound = (k * 2.0 ** -24 * reference.matmul(np.abs(a), np.abs(b))
             + np.abs(exact) * dtypes.finfo(dtype).eps / 2)
    assert np.all(np.abs(got.numpy().astype(np.float64) - exact) <= bound)


def test_matmul_out_dtype_keeps_float32():
    a = rounded(np.full((2, 3), 1 / 3), "float16")
    got = ops.matmul(a, a.T, out_dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.numpy(), reference.matmul(a, a.T), rtol=1e-6)
    with pytest.raises(ValueError, match="floating"):
        ops.matmul(a, a.T, out_dtype="int32")


def test_matmul_mixed_dtypes_promote():
    a16 = np.ones((2, 2), np.float16)
    assert ops.matmul(a16, rounded(np.ones((2, 2)), "bfloat16")).dtype == np.float32
    assert ops.matmul(a16, np.ones((2, 2), np.float64)).dtype == np.float64
    assert ops.matmul(np.ones((2, 2), np.int32), np.ones((2, 2), np.int32)).dtype == np.int32


def test_matmul_vectors_and_broadcast_batches():
    a = np.ones((4, 1, 3, 5), np.float32)
    b = np.ones((2, 5, 6), np.float32)
    assert ops.matmul(a, b).shape == (4, 2, 3, 6)
    assert ops.matmul(np.ones(5, np.float32), np.ones((5, 2), np.float32)).shape == (2,)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_products_of_fields_of_packed_records(dtype):
    """A field of packed records has byte strides no element count spans (here 5 x 9 bytes
    and 5 for float32): the kernels must not read it as if it had."""
    def field(values):
        records = np.zeros(values.shape, [("x", dtypes.as_numpy(dtype)), ("pad", "u1")])
        records["x"] = values
        return records["x"]

    a_values, b_values = np.arange(63.0).reshape(7, 9) % 5, np.arange(45.0).reshape(9, 5) % 3
    expected = a_values @ b_values
    a, b = field(a_values), field(b_values)
    assert a.strides[1] % a.itemsize
    for rows in (7, 3):  # the packing and the few-rows paths
        assert ops.matmul(a[:rows], b, out_dtype="float32").tolist() == expected[:rows].tolist()
    assert ops.dense(a, b).numpy().astype(np.float64).tolist() == expected.tolist()


@pytest.mark.parametrize("a_shape, b_shape, match", [
    ((2, 3), (4, 5), "last dimension of a"),
    ((2, 2, 3), (3, 3, 4), "batch dimensions"),
    ((), (3,), "at least 1"),
])
def test_matmul_shape_errors(a_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        ops.matmul(np.ones(a_shape, np.float32), np.ones(b_shape, np.float32))


def test_matmul_rejects_strings():
    with pytest.raises(TypeError, match="'a'"):
        ops.matmul("x", np.ones((2, 2)))


@pytest.mark.parametrize("dtype", HALF + ["float32", "float64"])
@pytest.mark.parametrize("activation", [None, "relu", "gelu", "sigmoid", "tanh", "softmax"])
def test_dense_is_fused_and_rounded_once(dtype, activation):
    rng = np.random.default_rng(2)
    x = rounded(rng.standard_normal((2, 5, 16)), dtype)
    k = rounded(rng.standard_normal((16, 8)) / 4, dtype)
    bias = rounded(rng.standard_normal(8), dtype)
    got = ops.dense(x, k, bias, activation=activation)
    assert got.dtype == dtype and got.shape == (2, 5, 8)
    pre = reference.dense(x.reshape(-1, 16), k, bias)
    if activation == "softmax":
        e = np.exp(pre - pre.max(-1, keepdims=True))
        exact = e / e.sum(-1, keepdims=True)
    else:
        exact = reference.activation(pre, activation)
    tol = 64 * (2.0 ** -24 if dtype != "float64" else 2.0 ** -53) + dtypes.finfo(dtype).eps
    np.testing.assert_allclose(got.numpy().astype(np.float64).reshape(-1, 8), exact, rtol=tol, atol=tol)


def test_dense_errors():
    with pytest.raises(ValueError, match=r"must be 3"):
        ops.dense(np.ones((2, 4), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="bias must have shape"):
        ops.dense(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        ops.dense(np.ones((2, 3), np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="Unknown activation"):
        ops.dense(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), activation="swishy")
    with pytest.raises(TypeError, match="floating"):
        ops.dense(np.ones((2, 3), np.int32), np.ones((3, 2), np.int32))


def test_unknown_activations_are_refused_before_any_work(monkeypatch):
    from nbmp.backend import cpu

    for name in ("dense", "conv2d"):
        monkeypatch.setattr(cpu, name, lambda *args: pytest.fail("computed before the check"))
    x, k = np.ones((1, 2, 2, 3), np.float32), np.ones((1, 1, 3, 2), np.float32)
    for activation in ("swishy", 3, ["relu"]):
        with pytest.raises(ValueError, match=re.escape(f"Unknown activation {activation!r}")):
            ops.dense(x, k[0, 0], activation=activation)
        with pytest.raises(ValueError, match=re.escape(f"Unknown activation {activation!r}")):
            ops.conv2d(x, k, activation=activation)
    with pytest.raises(ValueError, match="x must have at least one dimension .* Received a 0-d x"):
        ops.dense(np.float32(1), np.ones((1, 2), np.float32))


def test_activation_names_fuse_whatever_their_case():
    from nbmp.ops.activations import epilogue

    assert epilogue("Relu") == ("relu", None) and epilogue(None) == (None, None)
    fused = ops.dense(np.ones((1, 2), np.float16), -np.ones((2, 2), np.float16), activation="GELU")
    assert fused.dtype == np.float16 and fused.numpy().tolist() == [[float(np.float16(-0.0455))] * 2]


def test_dense_with_a_callable_activation():
    got = ops.dense(np.ones((1, 2), np.float16), np.ones((2, 2), np.float16),
                    activation=lambda y: y * 2)
    assert got.dtype == np.float16 and got.numpy().tolist() == [[4.0, 4.0]]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (1, 2), ((2, 1), (1, 1))])
def test_conv2d_shapes_follow_tensorflow(padding, strides, dilation):
    x = np.ones((2, 7, 6, 3), np.float32)
    got = ops.conv2d(x, np.ones((3, 2, 3, 4), np.float32), strides=strides, padding=padding,
                     dilation_rate=dilation)
    s = (strides, strides) if isinstance(strides, int) else strides
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        expected = (2, math.ceil(7 / s[0]), math.ceil(6 / s[1]), 4)
    else:
        expected = (2, (7 - (3 - 1) * d[0] - 1) // s[0] + 1, (6 - (2 - 1) * d[1] - 1) // s[1] + 1, 4)
    assert got.shape == expected


def test_conv2d_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 5, 5, 2))
    k = rng.standard_normal((3, 3, 2, 2))
    got = ops.conv2d(x, k, padding="same").numpy()
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    direct = np.zeros((1, 5, 5, 2))
    for i in range(5):
        for j in range(5):
            direct[0, i, j] = np.einsum("hwc,hwcf->f", xp[0, i:i + 3, j:j + 3], k)
    np.testing.assert_allclose(got, direct, rtol=1e-12)


def test_conv2d_same_padding_puts_the_extra_pad_at_the_end():
    x = np.arange(4, dtype=np.float64).reshape(1, 4, 1, 1) + 1
    got = ops.conv2d(x, np.ones((2, 1, 1, 1)), strides=(2, 1), padding="same").numpy().ravel()
    assert got.tolist() == [3.0, 7.0]  # pad total 0: windows (1,2), (3,4)
    got = ops.conv2d(x, np.ones((3, 1, 1, 1)), strides=(2, 1), padding="same").numpy().ravel()
    assert got.tolist() == [6.0, 7.0]  # pad (0, 1): windows (1,2,3), (3,4,0)


def test_conv2d_groups_depthwise():
    x = np.ones((1, 3, 3, 4), np.float32)
    k = np.stack([np.full((3, 3, 1), c + 1.0) for c in range(4)], axis=-1).astype(np.float32)
    got = ops.conv2d(x, k, groups=4)
    assert got.numpy().ravel().tolist() == [9.0, 18.0, 27.0, 36.0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=np.ones((3, 3, 1)), k=np.ones((1, 1, 1, 1))), "4-D NHWC"),
    (dict(x=np.ones((1, 3, 3, 2)), k=np.ones((1, 1, 3, 1))), "channels"),
    (dict(x=np.ones((1, 3, 3, 4)), k=np.ones((1, 1, 3, 1))), r"x has 4 channels, so .* must be 4\."),
    (dict(x=np.ones((1, 3, 3, 4)), k=np.ones((1, 1, 1, 3)), groups=3),
     r"groups=3 must divide both the input channels \(4\) and the filters \(3\)"),
    (dict(x=np.ones((1, 3, 3, 4)), k=np.ones((1, 1, 1, 4)), groups=2), "with groups=2 .* must be 2"),
    (dict(x=np.ones((1, 3, 3, 1)), k=np.ones((1, 1, 1, 1)), strides=0), "strides"),
    (dict(x=np.ones((1, 3, 3, 1)), k=np.ones((1, 1, 1, 1)), padding="full"), "padding"),
    (dict(x=np.ones((1, 3, 3, 1)), k=np.ones((1, 1, 1, 1)), dilation_rate=(1, -1)), "dilation"),
    (dict(x=np.ones((1, 3, 3, 1)), k=np.ones((1, 1)), ), "HWIO"),
])
def test_conv2d_errors(kwargs, match):
    x, k = kwargs.pop("x"), kwargs.pop("k")
    with pytest.raises(ValueError, match=match):
        ops.conv2d(x, k, **kwargs)


def test_conv2d_empty_output():
    got = ops.conv2d(np.ones((0, 2, 2, 1), np.float16), np.ones((3, 3, 1, 2), np.float16))
    assert got.shape == (0, 0, 0, 2) and got.dtype == np.float16


@pytest.mark.parametrize("dtype", HALF)
def test_activations_compute_in_float32_and_keep_dtype(dtype):
    x = nbmp.asarray(np.linspace(-4, 4, 33), dtype=dtype)
    for name in ["relu", "sigmoid", "tanh", "gelu"]:
        got = getattr(ops, name)(x)
        exact = rounded(reference.activation(x.numpy().astype(np.float64), name), dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy().astype(np.float64), exact.astype(np.float64))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_relu_of_minus_zero_is_plus_zero_in_every_dtype(dtype):
    got = ops.relu(nbmp.asarray([-0.0, -1.0, np.nan, 2.0], dtype=dtype)).numpy().astype(np.float64)
    np.testing.assert_array_equal(got, [0.0, 0.0, np.nan, 2.0])
    assert not np.signbit(got[:2]).any()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_activations_of_0d_values(dtype):
    x = nbmp.asarray(-1.5, dtype=dtype)
    for name in ["relu", "sigmoid", "tanh", "gelu"]:
        got = getattr(ops, name)(x)
        exact = rounded(reference.activation(np.array(-1.5), name), dtype)
        assert got.shape == () and got.dtype == dtype
        np.testing.assert_allclose(float(got), float(exact), rtol=16 * float(dtypes.finfo(dtype).eps))
    assert float(nbmp.layers.Activation("relu", dtype=dtype)(np.float32(-1))) == 0.0


@pytest.mark.parametrize("dtype", ["float32", *HALF])
def test_gelu_keeps_its_relative_accuracy_far_left(dtype):
    # 0.5 * x * (1 + erf(x / sqrt 2)) cancels to 0 in float32 from about x = -6 on; erfc does not
    x = np.array([-5.5, -6.0, -8.0, -10.0])
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    xs = nbmp.asarray(x, dtype=dtype)
    fused = ops.dense(ops.reshape(xs, (4, 1)), nbmp.asarray([[1.0]], dtype=dtype), activation="gelu")
    tolerance = {"float32": (1e-5, 0), "float16": (2.0**-11, 2.0**-24), "bfloat16": (2.0**-8, 0)}[dtype]
    for got in (ops.gelu(xs), ops.reshape(fused, (4,))):
        np.testing.assert_allclose(got.numpy().astype(np.float64), exact, *tolerance)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sigmoid_keeps_tiny_values_far_left(dtype):
    # 1 / (1 + exp(-x)) overflows exp for x below about -88.7 and gave 0; the values are float32
    # (and bfloat16) subnormals down to about -103 (-92 for bfloat16), exact 0 and 1 at the ends
    x = np.array([-80.0, -90.0, -92.0, -100.0, -1e4, -np.inf, 100.0, np.inf, np.nan])
    with np.errstate(over="ignore"):
        exact = 1 / (1 + np.exp(-x))  # float64 reaches these values directly
    want = nbmp.asarray(exact, dtype=dtype).numpy().astype(np.float64)
    assert want[2] > 0  # the rounded references themselves are not all zero
    xs = nbmp.asarray(x, dtype=dtype)
    column = nbmp.asarray(x.reshape(1, 1, -1, 1), dtype=dtype)
    fused = ops.dense(ops.reshape(xs, (-1, 1)), nbmp.asarray([[1.0]], dtype=dtype), activation="sigmoid")
    conv = ops.conv2d(column, nbmp.asarray(np.ones((1, 1, 1, 1)), dtype=dtype), activation="sigmoid")
    ulps = {"float32": 2.0**-22, "bfloat16": 2.0**-7}[dtype]  # float32's exp is not correctly rounded
    for got in (ops.sigmoid(xs), ops.reshape(fused, (-1,)), ops.reshape(conv, (-1,))):
        np.testing.assert_allclose(got.numpy().astype(np.float64), want, rtol=ulps, atol=2.0**-149)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_gelu_of_minus_infinity_is_minus_zero(dtype):
    # x * Phi(x) tends to 0 at -inf (and is -0.0 already at -1e4); -inf * Phi(-inf) gave NaN
    x = np.array([-np.inf, -1e4, -50.0, np.nan, np.inf])
    xs = nbmp.asarray(x, dtype=dtype)
    column = nbmp.asarray(x.reshape(1, 1, -1, 1), dtype=dtype)
    fused = ops.dense(ops.reshape(xs, (-1, 1)), nbmp.asarray([[1.0]], dtype=dtype), activation="gelu")
    conv = ops.conv2d(column, nbmp.asarray(np.ones((1, 1, 1, 1)), dtype=dtype), activation="gelu")
    biased = ops.dense(nbmp.asarray([[1.0]], dtype=dtype), nbmp.asarray([[1.0]], dtype=dtype),
                       nbmp.asarray([-np.inf], dtype=dtype), activation="gelu")
    for got in (ops.gelu(xs), ops.reshape(fused, (-1,)), ops.reshape(conv, (-1,))):
        values = got.numpy().astype(np.float64)
        np.testing.assert_array_equal(values, [0.0, 0.0, 0.0, np.nan, np.inf])
        assert np.signbit(values[:3]).all()
    assert biased.numpy().astype(np.float64).tolist() == [[0.0]]


def test_softmax_is_stable_and_sums_to_one():
    x = nbmp.asarray([[1000.0, 1000.0, -np.inf]], dtype="float16")
    got = ops.softmax(x)
    assert got.dtype == np.float16 and got.numpy().tolist() == [[0.5, 0.5, 0.0]]


def test_activation_get():
    assert ops.get_activation("ReLU") is ops.relu
    assert ops.get_activation(None) is ops.linear
    with pytest.raises(ValueError, match="Valid"):
        ops.get_activation("nope")
    with pytest.raises(TypeError, match="floating"):
        ops.relu(np.ones(2, np.int32))


def test_reductions_accumulate_in_float32():
    x = np.full(4096, 1.0, np.float16)
    assert ops.sum(x).numpy() == 4096 and ops.sum(x).dtype == np.float16
    rows = nbmp.asarray([[1.0, 2.0], [3.0, 5.0]], dtype="bfloat16")
    assert ops.mean(rows, axis=1).tolist() == [1.5, 4.0]
    assert np.isnan(ops.max(np.array([1.0, np.nan], np.float16)).numpy())
    assert ops.min(np.array([[3, 1]], np.int32), axis=1, keepdims=True).shape == (1, 1)


def test_elementwise_misc():
    x = nbmp.asarray([4.0, 9.0], dtype="bfloat16")
    assert ops.sqrt(x).numpy().tolist() == [2.0, 3.0] and ops.sqrt(x).dtype == "bfloat16"
    assert ops.sqrt(np.array([4], np.int32)).dtype == np.float64
    assert ops.maximum(x, 5).numpy().tolist() == [5.0, 9.0]
    assert ops.divide(np.array([1], np.int32), 2).numpy().tolist() == [0.5]
    assert (x ** 2).numpy().tolist() == [16.0, 81.0]
    assert ops.concatenate([x, x]).shape == (4,)


def test_concatenate_promotes_to_the_common_dtype():
    bf16 = nbmp.asarray([1.5, 2.25], dtype="bfloat16")
    got = ops.concatenate([bf16, np.array([3.0], np.float16)])
    assert got.dtype == "float32" and got.tolist() == [1.5, 2.25, 3.0]
    assert ops.concatenate([bf16, bf16]).dtype == "bfloat16"
    assert ops.concatenate([np.array([1], np.int32), np.array([0.5])]).tolist() == [1.0, 0.5]
    assert ops.concatenate([np.array([0.1]), [2.0]]).dtype == "float64"  # the list: float32 first
    with pytest.raises(ValueError, match="at least one array. Received none"):
        ops.concatenate([])


def test_matmul_packs_a_variables_value_once_whatever_the_left_operand(monkeypatch):
    from nbmp.backend import cpu

    prepared: list[tuple[int, ...]] = []
    real = cpu.prepare_weights
    monkeypatch.setattr(cpu, "prepare_weights", lambda k: prepared.append(k.shape) or real(k))
    rng = np.random.default_rng(3)
    w = nbmp.Variable(rng.standard_normal((5, 4)).astype(np.float16))
    wf = w.value.numpy().astype(np.float64)
    for shape in [(5,), (3, 5), (2, 3, 5), (0, 5), (2, 0, 5)]:
        x = rng.standard_normal(shape).astype(np.float16)
        got = ops.matmul(x, w.value)
        assert got.shape == shape[:-1] + (4,) and got.dtype == "float16"
        np.testing.assert_allclose(got.numpy(), x.astype(np.float64) @ wf, rtol=2e-3, atol=2e-3)
    assert ops.matmul(x, w.value, out_dtype="float32").dtype == "float32"
    assert prepared == [(5, 4)]  # packed on the first call, reused by every later one
    assert ops.matmul(np.ones((2, 5), np.float16), nbmp.asarray(wf.astype(np.float16))).shape == (2, 4)
    assert prepared == [(5, 4)]  # a plain Array may change under it: never kept


@pytest.mark.parametrize("op", ["dense", "conv2d"])
def test_a_variables_bias_is_widened_for_the_epilogue_once(monkeypatch, op):
    from nbmp.backend import cpu
    from nbmp.variables import autocast_scope

    widened: list[tuple[int, ...]] = []
    real = cpu.cast
    monkeypatch.setattr(cpu, "cast", lambda x, dtype: (widened.append(x.shape) if x.ndim == 1 else None,
                                                      real(x, dtype))[1])
    bias = nbmp.Variable(np.array([0.5, -1.0, 2.0], np.float32))
    with autocast_scope("bfloat16"):  # as inside a mixed_bfloat16 layer's call: the bias reads as bf16
        read = bias.value
    widened.clear()
    x, kernel = (np.ones((2, 4), dtypes.bfloat16), np.ones((4, 3), dtypes.bfloat16)) if op == "dense" else \
        (np.ones((1, 3, 3, 4), dtypes.bfloat16), np.ones((1, 1, 4, 3), dtypes.bfloat16))
    run = getattr(ops, op)
    for b in (read, read, nbmp.asarray(read.numpy()), nbmp.asarray(read.numpy())):
        got = run(x, kernel, b).numpy().astype(np.float32)
        assert (got == np.float32(4) + np.array([0.5, -1.0, 2.0], np.float32)).all()
    assert widened == [(3,)] * 3  # the Variable's value once, a plain Array on every call


@pytest.mark.parametrize("frozen", [False, True])
def test_products_of_zero_depth_give_the_bias_or_zeros(frozen):
    kernel = np.ones((0, 3), np.float16)
    k = nbmp.Variable(kernel).value if frozen else kernel
    x = np.ones((2, 4, 0), np.float16)
    assert ops.matmul(x, k).numpy().tolist() == [[[0.0] * 3] * 4] * 2
    bias = np.array([1, -2, 3], np.float16)
    assert ops.dense(x, k, bias, activation="relu").numpy().tolist() == [[[1.0, 0.0, 3.0]] * 4] * 2


def test_dense_prepares_a_variables_weights_once_and_a_plain_arrays_never(monkeypatch):
    from nbmp.backend import cpu

    prepared: list[tuple[int, ...]] = []
    real = cpu.prepare_weights
    monkeypatch.setattr(cpu, "prepare_weights", lambda k: prepared.append(k.shape) or real(k))
    x = np.ones((2, 3), np.float16)
    w = nbmp.Variable(np.ones((3, 4), np.float16))
    for _ in range(3):
        assert ops.dense(x, w.value).numpy().tolist() == [[3.0] * 4] * 2
    assert prepared == [(3, 4)]  # a Variable's value never changes: packed on the first call only
    plain = nbmp.asarray(np.ones((3, 5), np.float16))
    assert ops.dense(x, plain).numpy().tolist() == [[3.0] * 5] * 2
    assert prepared == [(3, 4)]  # the kernel packs a plain Array's columns itself


def test_integer_vector_products_are_arrays():
    assert ops.matmul(np.array([1, 2], np.int32), np.array([3, 4], np.int32)).tolist() == 11
    assert ops.matmul(np.array([True, False]), np.array([True, True])).tolist() is True


@pytest.mark.parametrize("dtype", ["float32", *HALF])
def test_matmul_of_a_variables_value_to_float64(dtype):
    w = nbmp.Variable(np.arange(12.0).reshape(4, 3), dtype=dtype)
    x = nbmp.asarray(np.ones((2, 4)), dtype=dtype)
    got = ops.matmul(x, w.value, out_dtype="float64")
    assert got.dtype == np.float64 and got.numpy().tolist() == [[18.0, 22.0, 26.0]] * 2


def test_reductions_of_integers_and_booleans_keep_numpys_result_dtype():
    assert ops.sum(np.full(200, 1, np.int8)).tolist() == 200
    assert ops.sum(np.array([True, True, False])).tolist() == 2
    assert ops.mean(np.array([1, 2], np.int32)).tolist() == 1.5
    assert ops.max(np.array([True, False])).tolist() is True


def test_reductions_and_moments_take_a_list_of_axes():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    assert ops.sum(x, axis=[0, 1]).tolist() == 15.0
    mean, variance = ops.moments(x, axes=[0, 1])
    assert mean.tolist() == 2.5 and variance.tolist() == pytest.approx(35 / 12)


def test_normalize_needs_a_floating_input():
    with pytest.raises(TypeError, match="floating.*int32"):
        ops.normalize(np.array([1, 2, 3], np.int32), 1.5, 1.0)


def test_conv2d_rejects_a_kernel_without_height_or_width():
    with pytest.raises(ValueError, match=r"kernel.shape=\(0, 1, 2, 1\)"):
        ops.conv2d(np.ones((1, 4, 4, 2), np.float32), np.ones((0, 1, 2, 1), np.float32))


@pytest.mark.parametrize("pool", [ops.max_pool2d, ops.avg_pool2d])
def test_pooling_sizes_each_axis_on_its_own(pool):
    assert pool(np.ones((1, 7, 3, 2), np.float32), 5).shape == (1, 1, 0, 2)  # as conv2d's rule
    assert pool(np.ones((1, 0, 4, 2), np.float16), 2, padding="same").shape == (1, 0, 2, 2)


def test_softmax_of_nothing_is_empty():
    assert ops.softmax(np.ones((2, 0), np.float32)).shape == (2, 0)
    got = ops.dense(np.ones((2, 3), np.float16), np.ones((3, 0), np.float16), activation="softmax")
    assert got.shape == (2, 0) and got.dtype == np.float16


def test_big_endian_arrays_are_read_in_native_order():
    data = np.arange(4, dtype=">f4").reshape(2, 2)
    x = nbmp.asarray(data)
    assert x.dtype == np.float32 and x.dtype.isnative
    assert ops.add(data, 1).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert ops.matmul(data, data).tolist() == [[2.0, 3.0], [6.0, 11.0]]


def test_cast_rounds_python_numbers_once():
    # 1 + 2**-11 + 2**-30 is above fp16's halfway point; through float32 it would be the tie
    value = 1 + 2.0**-11 + 2.0**-30
    assert ops.cast([value], "float16").tolist() == [1 + 2.0**-10]
    assert ops.cast(value, "float16").tolist() == 1 + 2.0**-10


def test_integer_arguments_may_be_numpy_integers():
    x = np.ones((1, 4, 4, 2), np.float32)
    got = ops.conv2d(x, np.ones((3, 3, 1, 2), np.float32), strides=np.int64(1), groups=np.int64(2))
    assert got.shape == (1, 2, 2, 2)
    assert ops.max_pool2d(x, np.int32(2)).shape == (1, 2, 2, 2)
    assert ops.reshape(x, np.int64(-1)).shape == (32,)
    with pytest.raises(TypeError, match="sequence of ints"):
        ops.reshape(x, (2.5, 2))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "int32"])
def test_comparisons_are_elementwise_bools_like_numpys(dtype):
    values = [-2.0, 0.0, 1.5, 3.0] if dtype != "int32" else [-2, 0, 1, 3]
    x = nbmp.asarray(values, dtype=dtype)
    ref = np.asarray(values, dtype=np.float64)
    for op, fn in [("==", np.equal), ("!=", np.not_equal), ("<", np.less), ("<=", np.less_equal),
                   (">", np.greater), (">=", np.greater_equal)]:
        got = eval(f"x {op} 1")  # noqa: S307 - the operator under test
        assert got.dtype == np.bool_ and got.tolist() == fn(ref, 1).tolist(), op
    assert (np.asarray(values) == x).tolist() == [True] * 4  # NumPy on the left defers to the Array
    assert x[x > 0].tolist() == [v for v in values if v > 0]
    assert (x == None) is False and (x != "text") is True  # noqa: E711 - not array-like: identity
    with pytest.raises(TypeError, match="unhashable"):
        hash(x)


def test_normalize_takes_python_numbers_at_full_precision_not_through_floatx():
    nbmp.set_floatx("float16")  # the autouse fixture restores float32
    got = ops.normalize(np.array([10.1, 10.2], np.float32), 10.1, 1.0, epsilon=0.0).tolist()
    assert got[0] == 0.0 and abs(got[1] - 0.1) < 1e-6
    x64 = np.array([0.4, 0.7])
    assert np.array_equal(ops.normalize(x64, 0.1, 0.3, epsilon=0.0).numpy(), (x64 - 0.1) / np.sqrt(0.3))
    with pytest.raises(ValueError, match="needs a mean and a variance. Received: mean=None"):
        ops.normalize(x64, None, 1.0)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "int32", "int64"])
def test_exp_log_sqrt_of_integers_take_numpys_float_dtype(dtype):
    values = np.array([1, 4], dtype)
    for name in ("exp", "log", "sqrt"):
        got = getattr(ops, name)(values)
        want = getattr(np, name)(values)
        assert got.dtype == want.dtype and np.array_equal(got.numpy(), want), (name, got.dtype)


def test_python_scalars_alone_take_the_dtypes_asarray_gives_them():
    # as in Keras 3: a Python float is floatx(), an int int32, whatever the op
    assert ops.exp(1.0).dtype == ops.exp(nbmp.asarray(1.0)).dtype == "float32"
    assert ops.add(1.0, 2.0).dtype == "float32" and ops.add(1, 2.5).dtype == "float32"
    assert ops.multiply(2, 3).dtype == "int32" and ops.maximum(True, False).dtype == "bool"
    assert ops.less(1, 2.5).item() is True
    nbmp.set_floatx("float16")  # the autouse fixture restores float32
    assert ops.exp(1.0).dtype == "float16" and ops.subtract(1.5, 1).dtype == "float16"
    with pytest.raises(OverflowError, match="int32"):
        ops.add(2**40, 1)
    # beside an Array a Python scalar stays weak
    assert ops.add(nbmp.asarray(np.float16(1)), 1.0).dtype == "float16"
    assert ops.multiply(np.float64(2.0), 3).dtype == "float64"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_python_scalars_beside_halves_round_to_them_as_numpy_does(dtype):
    # NEP 50: 0.1 beside a float16 array is float16(0.1), so the element made from 0.1 equals it
    values = [0.1, 0.2, 0.3]
    x, n = nbmp.asarray(values, dtype=dtype), np.array(values, dtypes.as_numpy(dtype))
    for op in ("equal", "less", "less_equal", "greater_equal", "not_equal"):
        assert getattr(ops, op)(x, 0.1).tolist() == getattr(np, op)(n, 0.1).tolist(), op
    assert (x - 0.1).tolist() == (n - 0.1).tolist() and (x - 0.1).tolist()[0] == 0.0
    assert (0.3 - x).tolist() == (0.3 - n).tolist() and (x >= 0.1).tolist() == [True] * 3
    with np.errstate(all="ignore"):
        huge = nbmp.asarray([0.0, 1.0], dtype=dtype) * 1e39  # inf in both halves
        expected = np.array([0.0, 1.0], dtypes.as_numpy(dtype)) * 1e39
        assert np.array_equal(huge.numpy(), expected, equal_nan=True)
    assert (nbmp.asarray([3], dtype="int8") + 1).tolist() == [4]  # integers: unchanged


def test_int64_and_uint64_compare_exactly_as_numpy_does():
    big, below = np.array([2**63 + 1], np.uint64), np.array([2**63 - 1], np.int64)
    for op in ("equal", "greater", "less_equal"):
        assert getattr(ops, op)(big, below).tolist() == getattr(np, op)(big, below).tolist(), op
    assert (nbmp.asarray(np.array([2**60 + 1])) == 2**60).tolist() == [False]


def test_booleans_squared_and_raised_to_powers_are_int8_as_numpys():
    yes = np.array([True, False])
    assert ops.square(yes).dtype == ops.power(yes, True).dtype == np.square(yes).dtype == "int8"
    assert ops.power(nbmp.asarray([2.0], dtype="float16"), 2).dtype == "float16"


def test_softmax_checks_the_axis_of_an_empty_array_too():
    with pytest.raises(ValueError, match=r"from -2 to 1 for an array of shape \(2, 0\). Received: axis=5"):
        ops.softmax(np.zeros((2, 0), np.float32), axis=5)
    assert ops.softmax(np.float32(1.0)).item() == 1.0  # a 0-d array takes axis -1, as NumPy's max
    x = np.ones((2, 3), np.float32)
    assert ops.softmax(x, axis=np.int64(-1)).shape == ops.softmax(x, axis=[0, 1]).shape == (2, 3)
    for bad in ((0, 0), (1, -1), 2):
        with pytest.raises(ValueError, match=r"axis must be distinct ints from -2 to 1 for an array"):
            ops.softmax(x[:, :0], axis=bad)


def test_normalize_refuses_an_epsilon_that_is_not_a_number():
    x = nbmp.asarray([1.0, 3.0])
    assert ops.normalize(x, 2.0, 1.0, epsilon=np.float32(0)).tolist() == [-1.0, 1.0]
    for epsilon in (None, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match=f"epsilon must be a number >= 0. Received: epsilon={epsilon}"):
            ops.normalize(x, 2.0, 1.0, epsilon=epsilon)


def test_axis_keepdims_and_shape_arguments_of_the_wrong_kind_say_what_came():
    x = nbmp.asarray(np.ones((2, 3), np.float32))
    for call in (lambda: ops.sum(x, axis="0"), lambda: ops.softmax(x, axis=True),
                 lambda: ops.mean(x, axis=[0, 1.0]), lambda: ops.max(x, axis=1.0)):
        with pytest.raises(TypeError, match="An axis must be None, an int or a sequence of ints. Received"):
            call()
    for call in (lambda: ops.sum(x, keepdims="yes"), lambda: ops.moments(x, axes=0, keepdims="yes")):
        with pytest.raises(TypeError, match="keepdims must be True or False. Received: 'yes'"):
            call()
    with pytest.raises(TypeError, match="A shape must be an int or a sequence of ints. Received: None"):
        ops.reshape(x, None)
    assert ops.sum(x, axis=[0, 1], keepdims=np.True_).shape == (1, 1)
    assert ops.reshape(x, np.array([3, 2])).shape == (3, 2) and ops.softmax(x, axis=0).shape == (2, 3)
