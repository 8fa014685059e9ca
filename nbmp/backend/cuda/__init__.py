"""CUDA backend: what ``nbmp.ops`` calls for Arrays on the ``"cuda"`` device.

Same functions and semantics as ``nbmp.backend.cpu`` (half inputs accumulate in float32, float64
in float64; one rounding to `out_dtype`), on device arrays: CuPy arrays on a GPU, NumPy arrays
under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``); results are the same kind. bfloat16 arrays
are those whose dtype is ``ml_dtypes.bfloat16`` (CuPy >= 14 with ml_dtypes installed); kernels see
their uint16 bits. Kernels run on CuPy's current stream.

matmul, dense and conv2d share one GEMM kernel (conv2d as an implicit GEMM over the im2col patch,
groups as the batch): the tensor-core kernel (``mma.py``) for float16/bfloat16 inputs on sm_80+,
the tiled SIMT kernel (``gemm.py``) otherwise and always under the simulator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda

from nbmp import dtypes
from nbmp.backend import reference
from nbmp.backend.cuda import gemm, kernels
from nbmp.backend.cuda.halfbits import as_u32, decoder, encoder

__all__ = ["SIMULATOR", "cast", "matmul", "dense", "conv2d", "pool2d", "activation"]

#: Whether numba.cuda is the CUDA simulator (set by NUMBA_ENABLE_CUDASIM=1 before numba's import).
SIMULATOR = bool(cuda.config.ENABLE_CUDASIM)

_HALF = (np.dtype(np.float16), dtypes.bfloat16)
_F64 = np.dtype(np.float64)


def _xp(like: Any) -> Any:
    """The array module of `like`: NumPy (the simulator's device arrays) or CuPy."""
    if isinstance(like, np.ndarray):
        return np
    try:
        import cupy
    except ImportError:
        raise ImportError("The CUDA backend keeps GPU arrays in CuPy: pip install 'nbmp[cuda12]' "
                          "(or nbmp[cuda13]), or set NUMBA_ENABLE_CUDASIM=1 for the simulator") from None
    return cupy


def _launch(kernel: Any, grid: tuple[int, ...] | int, block: int, *args: Any) -> None:
    """Launch on CuPy's current stream. The simulator has no streams; wrapped as its device
    arrays, NumPy arguments are used in place (no copies in and out, any strides)."""
    if SIMULATOR:
        wrap = cuda.devicearray.FakeCUDAArray
        kernel[grid, block](*(wrap(x) if isinstance(x, np.ndarray) else x for x in args))
    else:
        ptr = _xp(None).cuda.get_current_stream().ptr
        kernel[grid, block, cuda.external_stream(ptr) if ptr else 0](*args)


def _bits(x: Any, halves: bool = False) -> Any:
    """`x` as kernels take it: bfloat16 (and, with `halves`, float16) as its uint16 bits."""
    if x.dtype == dtypes.bfloat16 or (halves and x.dtype == np.float16):
        return x.view(np.uint16)
    return x


def _acc(*dts: Any) -> np.dtype:
    """The accumulation dtype: float64 if any operand is float64, else float32."""
    return _F64 if _F64 in [np.dtype(d) for d in dts] else np.dtype(np.float32)


def cast(x: Any, dtype: Any) -> Any:
    """`x` converted to `dtype`, rounded to nearest even; overflow gives inf, NaN stays NaN."""
    dtype = dtypes.as_numpy(dtype)
    if not (dtypes.is_floating(x.dtype) and dtypes.is_floating(dtype)):
        with np.errstate(all="ignore"):  # NaN to an int: no warning, as on the CPU
            return x.astype(dtype)
    return _map(x, None, dtype)


def activation(x: Any, name: str | None) -> Any:
    """Elementwise activation of a floating array in its own dtype (computed in float32 or
    float64, rounded once)."""
    if name is None or name == "linear":
        return x
    return _map(x, name, x.dtype)


def pool2d(x: Any, kind: str, pool: tuple[int, int], strides: tuple[int, int],
           padding: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """Max or average pooling of NHWC `x`, in float32 (float64 for float64) with the array
    module's reductions, rounded once to x's dtype (see ``reference.pool2d``)."""
    acc = _acc(x.dtype)
    return cast(reference.pool2d(cast(x, acc), kind, pool, strides, padding, acc, _xp(x)), x.dtype)


def _map(x: Any, name: str | None, dtype: np.dtype) -> Any:
    acc = _acc(x.dtype, dtype)
    fn = kernels.map_kernel(decoder(x.dtype, acc), kernels.activation_fn(name, acc),
                            encoder(dtype, acc))
    xp = _xp(x)
    out = xp.empty(x.shape, dtype)
    if x.size:
        threads = min(kernels.THREADS, 32 * -(-x.size // 32))
        blocks = min(-(-x.size // threads), 65535)
        if SIMULATOR:  # a Python thread per CUDA thread: one warp strides over the array
            threads, blocks = 32, 1
        _launch(fn, blocks, threads, _bits(xp.ascontiguousarray(x)).reshape(-1),
                _bits(out).reshape(-1))
    return out


def matmul(a: Any, b: Any, out_dtype: Any) -> Any:
    """``a @ b`` (batched, broadcast, any strides) accumulated in float32, rounded once."""
    xp = _xp(a)
    a2, b2 = (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)
    (m, k), n = a2.shape[-2:], b2.shape[-1]
    if b2.shape[-2] != k:
        raise ValueError(f"matmul: inner dimensions differ. Received: shapes {a.shape} and {b.shape}")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    z = math.prod(batch)
    out = xp.empty(batch + (m, n), dtypes.as_numpy(out_dtype))
    _gemm("matrix", xp.broadcast_to(a2, batch + (m, k)).reshape(z, m, k),
          xp.broadcast_to(b2, batch + (k, n)).reshape(z, k, n), None, None, out.reshape(z, m, n))
    if a.ndim == 1:
        out = out[..., 0, :]
    return out[..., 0] if b.ndim == 1 else out


def dense(x: Any, kernel: Any, bias: Any | None, activation_name: str | None, out_dtype: Any) -> Any:
    """``activation(x @ kernel + bias)`` for 2-D `x`, epilogue in float32, rounded once."""
    (m, _), n = x.shape, kernel.shape[1]
    out = _xp(x).empty((m, n), dtypes.as_numpy(out_dtype))
    _gemm("matrix", x[None], kernel[None], None if bias is None else bias.reshape(1, n),
          activation_name, out[None])
    return out


def conv2d(x: Any, kernel: Any, bias: Any | None, strides: tuple[int, int],
           padding: tuple[tuple[int, int], tuple[int, int]], dilation: tuple[int, int],
           groups: int, activation_name: str | None, out_dtype: Any) -> Any:
    """NHWC x HWIO convolution (explicit pads) as an implicit GEMM, rounded once to `out_dtype`."""
    n, h, w, _ = x.shape
    kh, kw, cg, f = kernel.shape
    fg = f // groups
    oh = reference.conv_output_size(h, kh, strides[0], dilation[0], padding[0])
    ow = reference.conv_output_size(w, kw, strides[1], dilation[1], padding[1])
    out = _xp(x).empty((n, oh, ow, f), dtypes.as_numpy(out_dtype))
    geom = (oh, ow, kw, cg, strides[0], strides[1], padding[0][0], padding[1][0], *dilation)
    _gemm("patch", x, kernel.reshape(kh * kw * cg, groups, fg).transpose(1, 0, 2),
          None if bias is None else bias.reshape(groups, fg), activation_name,
          out.reshape(n * oh * ow, groups, fg).transpose(1, 0, 2), geom)
    return out


def _gemm(reader: str, a: Any, b: Any, bias: Any | None, activation_name: str | None, out: Any,
          geom: tuple[int, ...] = (0,)) -> None:
    """``out[z] = activation(A[z] @ b[z] + bias[z])`` into the 3-D view `out`; `a` is a 3-D
    matrix or, for ``reader="patch"``, the NHWC image whose patches form A. Activations the
    kernels do not fuse (``kernels.FUSED``) run after, on the accumulation-dtype result."""
    if not out.size:
        return
    if activation_name in kernels.FUSED:
        _launch(*plan(reader, a, b, bias, activation_name, out, geom, _device()))
        return
    acc = _xp(out).empty(out.shape, _acc(a.dtype, b.dtype))
    _launch(*plan(reader, a, b, bias, None, acc, geom, _device()))
    out[...] = _map(acc, activation_name, out.dtype)


def _device() -> tuple[tuple[int, int], int]:
    """(compute capability, multiprocessor count); the simulator counts as sm_52 with one SM."""
    if SIMULATOR:
        return (5, 2), 1
    dev = cuda.get_current_device()
    return dev.compute_capability, dev.MULTIPROCESSOR_COUNT


def plan(reader: str, a: Any, b: Any, bias: Any | None, activation_name: str | None, out: Any,
         geom: tuple[int, ...], device: tuple[tuple[int, int], int]) -> tuple[Any, ...]:
    """``(kernel, grid, block, *args)`` of the GEMM `_gemm` launches on `device` = (cc, SMs):
    no launch and no GPU needed (the compile check uses it)."""
    (cc, sms), (z, m, n), k = device, out.shape, b.shape[1]
    acc = _acc(a.dtype, b.dtype)
    make_reader = gemm.patch_reader if reader == "patch" else gemm.matrix_reader
    tensor_cores = cc >= (8, 0) and a.dtype == b.dtype and a.dtype in _HALF
    if tensor_cores:
        read_a, read_b = make_reader(as_u32, np.uint32), gemm.matrix_reader(as_u32, np.uint32)
    else:
        read_a = make_reader(decoder(a.dtype, acc), acc)
        read_b = gemm.matrix_reader(decoder(b.dtype, acc), acc)
    has_bias = bias is not None
    bias = _xp(out).broadcast_to(bias, (z, n)) if has_bias else _xp(out).zeros((1, 1), np.float32)
    parts = (read_a, read_b, decoder(bias.dtype, acc), kernels.activation_fn(activation_name, acc),
             encoder(out.dtype, acc))
    a_kfast = reader == "patch" or abs(a.strides[2]) <= abs(a.strides[1])
    b_kfast = abs(b.strides[1]) < abs(b.strides[2])
    if activation_name not in kernels.FUSED:
        raise ValueError(f"The GEMM kernels fuse only the activations {kernels.FUSED}. "
                         f"Received: activation_name={activation_name!r}")
    if tensor_cores:
        from nbmp.backend.cuda import mma

        if reader == "patch":
            tile = mma.PATCH
        else:
            tile = mma.NARROW if n <= mma.NARROW.bn else mma.WIDE
        kernel = mma.mma_kernel(tile, *parts, has_bias, a_kfast, b_kfast,
                                dtypes.canonical_name(a.dtype))
    else:
        big = acc != _F64 and m >= gemm.LARGE.bm and n >= gemm.LARGE.bn
        tile = gemm.LARGE if big and _tiles(gemm.LARGE, m, n) * z >= sms else gemm.SMALL
        kernel = gemm.simt_kernel(tile, *parts, acc, has_bias, a_kfast, b_kfast)
    grid = (-(-m // tile.bm), -(-n // tile.bn), min(z, 65535))
    return (kernel, grid, tile.threads, _bits(a, tensor_cores), _bits(b, tensor_cores), _bits(bias),
            _bits(out), m, n, k, geom)


def _tiles(tile: Any, m: int, n: int) -> int:
    return -(-m // tile.bm) * -(-n // tile.bn)
