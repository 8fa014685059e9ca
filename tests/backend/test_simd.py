"""``simd.prefer_wide_vectors`` and ``vmath``'s multiply-add: what they make LLVM emit."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from nbmp.backend.cpu import simd, vmath


def _scale(x):
    simd.prefer_wide_vectors()
    for i in range(np.uint64(x.size)):
        x[i] = x[i] * np.float32(3) + np.float32(1)


def test_prefer_wide_vectors_marks_the_calling_function():
    kernel = njit(_scale)  # not cached: its IR can be read
    x = np.arange(64, dtype=np.float32)
    kernel(x)
    np.testing.assert_array_equal(x, np.arange(64, dtype=np.float32) * 3 + 1)
    ir = "".join(kernel.inspect_llvm().values())
    assert ('"prefer-vector-width"="512"' in ir) == (simd.WIDTH == 16)


@pytest.mark.skipif(simd.WIDTH != 16, reason="needs an AVX-512 target")
def test_loops_vectorise_across_whole_avx512_registers():
    kernel = njit(_scale)
    kernel(np.zeros(64, np.float32))
    assert "zmm" in "".join(kernel.inspect_asm().values())


@njit
def _mul_add_all(a, b, c):
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = vmath._mul_add(a[i], b[i], c[i])
    return out


def test_mul_add_rounds_once_where_the_cpu_fuses():
    # (1 + 2^-12)^2 - 1 = 2^-11 + 2^-24: a separate multiply rounds the 2^-24 away
    a = np.full(40, 1 + 2.0**-12, np.float32)
    c = np.full(40, -1, np.float32)
    got = _mul_add_all(a, a, c)
    fused = np.float32(2.0**-11 + 2.0**-24)
    separate = np.float32(np.float32(a[0] * a[0]) - 1)
    assert fused != separate
    assert (got == (fused if "+fma" in simd.target_features().split(",") else separate)).all()
