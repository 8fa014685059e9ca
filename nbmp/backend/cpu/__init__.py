"""CPU backend: what ``nbmp.ops`` calls for Arrays on the ``"cpu"`` device.

Every function takes NumPy arrays and returns a new NumPy array in `out_dtype`, rounded once.
float16, bfloat16 and float32 inputs run on the Numba kernels (``gemm``, ``conv``, ``cast``, and
``arithmetic`` for ``binary``: +, -, *, / of halves in one pass; ``softmax`` along the last
axis; ``normalization``: moments per row or column, accumulated in float64, and normalize),
accumulating in float32;
float64 inputs accumulate in float64 (``reference``; gelu of any floating dtype runs on
``activations``). The rare output dtype the kernels do not write, float64 from 16/32-bit
inputs, is accumulated in float32 by ``reference`` too and widened exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.backend import reference
from nbmp.backend.cpu import activations, conv, gemm
from nbmp.backend.cpu.arithmetic import binary
from nbmp.backend.cpu.cast import cast as float_cast
from nbmp.backend.cpu.normalization import moments, normalize
from nbmp.backend.cpu.pool import pool2d
from nbmp.backend.cpu.softmax import softmax

__all__ = ["activation", "binary", "cast", "conv2d", "dense", "matmul", "moments", "normalize", "pool2d",
           "prepare_weights", "softmax"]

_KERNEL_DTYPES = dtypes.DTypeTable(dict.fromkeys(("float16", "bfloat16", "float32"), True))


def cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    """`x` converted to `dtype`, rounded to nearest even; overflow gives inf.

    Between floating dtypes this is the Numba kernel (``cast.cast``); integers and booleans
    go through NumPy.
    """
    target = dtypes.as_numpy(dtype)
    if dtypes.is_floating(x.dtype) and dtypes.is_floating(target):
        return float_cast(x, target)
    with np.errstate(all="ignore"):
        return x.astype(target)


def _on_kernels(*arrays: np.ndarray | gemm.PackedB, out_dtype: Any) -> bool:
    """Whether the float32-accumulating kernels compute this: 16/32-bit inputs and output."""
    for a in arrays:  # a loop and a table: 0.5 us, where all() over a tuple took 1.9 (every call asks)
        if a.dtype not in _KERNEL_DTYPES:
            return False
    return np.dtype(out_dtype) in _KERNEL_DTYPES


def _acc(x: np.ndarray) -> np.ndarray:
    """The operand in its accumulation dtype: float64 stays float64, the rest go to float32."""
    return x if x.dtype in (np.float32, np.float64) else cast(x, np.float32)


def matmul(a: np.ndarray, b: np.ndarray, out_dtype: Any) -> np.ndarray:
    """``a @ b`` with NumPy's shape rules (1-D operands, broadcast batch dims), rounded once."""
    out_dtype = dtypes.as_numpy(out_dtype)
    if not _on_kernels(a, b, out_dtype=out_dtype):
        return cast(reference.matmul(_acc(a), _acc(b), _acc(a).dtype), out_dtype)
    if a.ndim == 2 and b.ndim == 2:
        return gemm.gemm(a, b, out_dtype)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    m, n = a2.shape[-2], b2.shape[-1]
    if b2.ndim == 2:  # one right operand for the whole batch: a single GEMM over all rows
        rows = a2.reshape(math.prod(a2.shape[:-1]), a2.shape[-1])
        out = gemm.gemm(rows, b2, out_dtype).reshape(batch + (m, n))
    else:
        out = np.empty(batch + (m, n), out_dtype)
        a_b = np.broadcast_to(a2, batch + a2.shape[-2:])
        b_b = np.broadcast_to(b2, batch + b2.shape[-2:])
        for index in np.ndindex(batch):
            gemm.gemm(a_b[index], b_b[index], out_dtype, out=out[index])
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def prepare_weights(kernel: np.ndarray) -> np.ndarray | gemm.PackedB:
    """`kernel` (K, N) in the form ``dense`` reads fastest, for weights used many times:
    packed once into the GEMM's micro-panels (16/32-bit floats), else unchanged."""
    return gemm.PackedB(kernel) if kernel.ndim == 2 and kernel.dtype in _KERNEL_DTYPES else kernel


def dense(x: np.ndarray, kernel: np.ndarray | gemm.PackedB, bias: np.ndarray | None,
          activation_name: str | None, out_dtype: Any) -> np.ndarray:
    """``activation(x @ kernel + bias)`` for 2-D `x`, epilogue in float32, rounded once.

    `kernel` may be a ``prepare_weights`` result (which only 16/32-bit kernels give).
    """
    if _on_kernels(x, kernel, out_dtype=out_dtype):
        return gemm.gemm(x, kernel, dtypes.as_numpy(out_dtype), bias, activation_name)
    if isinstance(kernel, gemm.PackedB):  # prepared weights, asked for another output dtype
        kernel = kernel.source
    return cast(reference.dense(_acc(x), _acc(kernel), bias, activation_name, _acc(x).dtype),
                out_dtype)


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
           strides: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
           dilation: tuple[int, int], groups: int, activation_name: str | None,
           out_dtype: Any) -> np.ndarray:
    """NHWC x HWIO convolution with float32 accumulation, rounded once to `out_dtype`."""
    if not _on_kernels(x, kernel, out_dtype=out_dtype):
        return cast(reference.conv2d(_acc(x), _acc(kernel), bias, strides, padding, dilation, groups,
                                     activation_name, _acc(x).dtype),
                    out_dtype)
    return conv.conv2d(x, kernel, bias, strides, padding, dilation, groups, activation_name,
                       dtypes.as_numpy(out_dtype))


def activation(x: np.ndarray, name: str | None) -> np.ndarray:
    """Elementwise activation of a floating array, computed in float32 (float64 for float64)
    and rounded once to its dtype.

    Halves, gelu of any dtype and sigmoid of float32 run on the kernel (``activations``, whose
    float32 functions vectorise: ``vmath``); float32 relu and tanh and float64 but gelu are
    NumPy's, whose loops are faster there. Kernel against NumPy on a float32 copy, measured
    (4K and 1M elements): halves 2-56x; float32 gelu 33-53x, sigmoid 1.8-4.7x, relu 0.4-0.6x,
    tanh 0.2-0.3x; float64 gelu 5-12x (NumPy has no erfc: Python's, an element at a time).
    """
    if name == "gelu" or dtypes.is_half(x.dtype) or (name == "sigmoid" and x.dtype == np.float32):
        return activations.activation(x, name)
    with np.errstate(all="ignore"):
        return np.asarray(reference.activation(x, name))  # (NumPy gives a scalar for 0-d x)
