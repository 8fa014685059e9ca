"""Elementwise kernels (cast, activation) and the activation device functions GEMM epilogues share.

Kernels are built by small factories from device functions (decode, activate, encode) and cached
per combination: numba-cuda specialises each one for the array types it is launched with. No
``fastmath``: it would let the compiler drop NaN and infinity handling.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda

from nbmp.backend import reference

__all__ = ["THREADS", "FUSED", "activation_fn", "map_kernel"]

#: Threads per block of the elementwise kernels.
THREADS = 256

#: Activations the GEMM kernels apply in their epilogue. The others (exp, tanh, erf) inlined for
#: each of a thread's 64 accumulators stop the compiler from unrolling the epilogue, and the whole
#: accumulator tile moves to local memory (the compile check sees a stack frame). They run as a
#: second elementwise kernel on the float32 (or float64) GEMM result instead: still one rounding.
FUSED = (None, "linear", "relu")


@functools.cache
def activation_fn(name, acc):
    """Device function applying activation `name` (``None``: identity) in the `acc` dtype.

    gelu is the exact one, ``x * Phi(x)`` with ``erfc`` (``1 + erf`` would cancel for x below
    about -5); sigmoid is ``1 / (1 + exp(-x))`` written as ``e / (1 + e)`` with ``e = exp(x)`` for
    negative x (``exp(-x)`` would overflow below about -88.7 and give 0).
    """
    acc = np.dtype(acc).type
    zero, half, one, rsqrt2 = acc(0), acc(0.5), acc(1), acc(1 / math.sqrt(2))
    if name is None or name == "linear":
        def fn(v):
            return v
    elif name == "relu":
        def fn(v):
            return zero if v <= zero else v  # NaN stays NaN; -0.0 gives +0.0, as on the CPU
    elif name == "sigmoid":
        def fn(v):
            e = math.exp(-abs(v))
            return (e if v < zero else one) / (one + e)
    elif name == "tanh":
        def fn(v):
            return math.tanh(v)
    elif name == "gelu":
        floor = acc(reference.GELU_FLOOR)

        def fn(v):
            v = v if not v < floor else floor  # -inf gives -0.0, not -inf * 0; NaN stays NaN
            return half * v * math.erfc(-v * rsqrt2)
    else:
        raise ValueError(f"Unknown activation {name!r}. Valid: {', '.join(reference.ACTIVATIONS)}")
    return cuda.jit(device=True)(fn)


@functools.cache
def map_kernel(decode, activate, encode):
    """Kernel ``out[i] = encode(activate(decode(x[i])))`` over 1-D arrays, grid-stride loop."""

    @cuda.jit
    def kernel(x, out):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            out[i] = encode(activate(decode(x[i])))

    return kernel
