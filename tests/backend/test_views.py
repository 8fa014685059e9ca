"""Each kernel compiles once per dtype, whether its inputs are read-only (nbmp's Arrays), writable
(users' NumPy arrays), present or left out (no bias, weights packed beforehand)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

from nbmp import dtypes
from nbmp.backend.cpu import activations, conv, gemm, pool

cast = sys.modules["nbmp.backend.cpu.cast"]  # (the package's ``cast`` is a function)
MODULES = (gemm, conv, pool, cast, activations)


def _compiled() -> int:
    return sum(len(v.signatures) for m in MODULES for v in vars(m).values() if isinstance(v, CPUDispatcher))


def _frozen(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.flags.writeable = False
    return x


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_read_only_and_left_out_inputs_compile_nothing_more(dtype):
    dt = dtypes.as_numpy(dtype)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((70, 40)).astype(dt), rng.standard_normal((40, 48)).astype(dt)
    bias = rng.standard_normal(48).astype(np.float32)
    image = rng.standard_normal((2, 6, 6, 32)).astype(dt)
    kernel = rng.standard_normal((3, 3, 32, 8)).astype(dt)
    conv_args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1, "relu", dt)

    def every_kernel(a, b, bias, image, kernel):
        gemm.gemm(a, b, dt, bias, "relu")
        gemm.gemm(a, gemm.pack_b(b), dt)
        conv.conv2d(image, kernel, bias[:8] if bias is not None else None, *conv_args)
        pool.pool2d(image, "avg", (2, 2), (2, 2), ((0, 0), (0, 0)))
        cast.cast(image, np.float64)
        activations.activation(image, "gelu")

    every_kernel(a, b, None, image, kernel)  # compiled, or loaded from the cache
    every_kernel(a, b, bias, image, kernel)
    before = _compiled()
    every_kernel(*map(_frozen, (a, b, bias, image, kernel)))
    every_kernel(_frozen(a), b, _frozen(bias), image, _frozen(kernel))
    assert _compiled() == before
