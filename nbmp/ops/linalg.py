"""Matrix products: ``matmul`` and the fused ``dense``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.ops._core import as_array, backend, wrap
from nbmp.ops.activations import epilogue
from nbmp.ops.cast import cast, cast_kept

_KERNEL_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _check_out_dtype(out_dtype: Any) -> str:
    name = dtypes.canonical_name(out_dtype)
    if not dtypes.is_floating(name):
        raise ValueError(f"out_dtype must be a floating dtype. Received: out_dtype={out_dtype!r}")
    return name


def matmul(a: Any, b: Any, out_dtype: Any = None) -> Array:
    """Matrix product with NumPy's shape rules (1-D operands, batched and broadcast leading dims).

    16-bit inputs accumulate in float32 and round once to the result dtype, or to `out_dtype`
    (``"float32"`` keeps the float32 accumulator). Mixed input dtypes promote first. On a CPU
    with AMX or AVX512-BF16, bf16 x bf16 products and partial sums smaller than float32's
    smallest normal (1.2e-38) flush to zero, as those instructions do (bf16 subnormal inputs
    are found and computed exactly; products of up to four rows, which do not use them, keep
    them).

    >>> import nbmp, numpy as np
    >>> ones = nbmp.asarray(np.ones((1, 10_000)), dtype="float16")
    >>> (ones @ ones.T).tolist()   # an fp16 accumulator would stop at 2048
    [[10000.0]]
    """
    a, b = as_array(a, "a"), as_array(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands of at least 1 dimension. Received shapes "
                         f"{a.shape} and {b.shape}")
    k_a, k_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: the last dimension of a ({k_a}) must equal the "
            f"{'second-to-last' if b.ndim > 1 else 'only'} dimension of b ({k_b}). "
            f"Received shapes a={a.shape}, b={b.shape}"
        )
    try:
        if a.ndim > 2 or b.ndim > 2:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions do not broadcast. Received shapes "
                         f"a={a.shape}, b={b.shape}") from None
    in_dtype = dtypes.result_type(a, b)
    out = _check_out_dtype(out_dtype) if out_dtype is not None else in_dtype
    a, b = cast(a, in_dtype), cast(b, in_dtype)
    if in_dtype not in _KERNEL_DTYPES:  # integers: NumPy does them exactly
        return cast(wrap(np.asarray(np.matmul(a._data, b._data)), (a, b)), out)
    be = backend(a, b)
    if b.ndim == 2 and _keeps_weights(be, b):  # x @ a Variable's value
        rows = be.dense(_as_rows(a._data), _weights(be, b), None, None, out)
        return wrap(rows.reshape(a.shape[:-1] + b.shape[1:]), (a, b))
    return wrap(be.matmul(a._data, b._data, out), (a, b))


def _as_rows(x: Any) -> Any:
    """`x` (..., K) as a matrix of its rows, (prod(...), K); also when K or a batch dim is 0."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _keeps_weights(be: Any, kernel: Array) -> bool:
    """Whether `kernel` is prepared for `be`'s kernels once and kept (see ``_weights``)."""
    return hasattr(be, "prepare_weights") and kernel._is_frozen


def _weights(be: Any, kernel: Array) -> Any:
    """`kernel`'s data as the backend's kernels take it: prepared once (packed for the CPU's
    GEMM) and kept on the Array when its values cannot change (a Variable's value); any other
    goes as it is (preparing it on every call costs more than the kernel's own packing, which
    packs only what each thread reads)."""
    if _keeps_weights(be, kernel):
        return kernel._derived(("dense weights", be.__name__), lambda: be.prepare_weights(kernel._data))
    return kernel._data


def dense(x: Any, kernel: Any, bias: Any = None,
          activation: str | Callable[..., Any] | None = None) -> Array:
    """``activation(x @ kernel + bias)`` in one pass: bias and activation are applied to the
    float32 accumulator before the single rounding. `x` may have any leading batch dims.
    Tiny bf16 products flush to zero on some CPUs, as in ``matmul``.

    >>> import nbmp, numpy as np
    >>> x = nbmp.asarray(np.ones((2, 3)), dtype="float16")
    >>> nbmp.ops.dense(x, np.full((3, 4), -1.0, np.float16), activation="relu").numpy()
    array([[0., 0., 0., 0.],
           [0., 0., 0., 0.]], dtype=float16)
    """
    x, kernel = as_array(x, "x"), as_array(kernel, "kernel")
    if kernel.ndim != 2:
        raise ValueError(f"dense: kernel must be 2-D (in_features, units). Received shape {kernel.shape}")
    if x.ndim == 0:
        raise ValueError(f"dense: x must have at least one dimension (features last). Received a "
                         f"0-d x of dtype {x.dtype.name}")
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: the last dimension of x must be {kernel.shape[0]} "
                         f"(the kernel's input features). Received x.shape={x.shape}")
    bias_arr = None if bias is None else as_array(bias, "bias")
    if bias_arr is not None and bias_arr.shape != (kernel.shape[1],):
        raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},). "
                         f"Received {bias_arr.shape}")
    operands = (x, kernel) if bias_arr is None else (x, kernel, bias_arr)
    dtype = dtypes.result_type(*operands)
    if dtype not in _KERNEL_DTYPES:
        raise TypeError(f"dense needs floating inputs. Received dtypes "
                        f"{[o.dtype.name for o in operands]}")
    fused, after = epilogue(activation)
    acc = "float64" if dtype == "float64" else "float32"
    out = dtype if after is None else acc  # an unfused activation gets the accumulator, rounds once after
    xs, ks = cast(x, dtype), cast(kernel, dtype)
    bs = None if bias_arr is None else cast_kept(bias_arr, acc)._data
    be = backend(xs, ks)
    y2 = be.dense(_as_rows(xs._data), _weights(be, ks), bs, fused, out)
    y = wrap(y2.reshape(x.shape[:-1] + (kernel.shape[1],)), xs)
    if after is not None:
        y = cast(after(y), dtype)
    return y
