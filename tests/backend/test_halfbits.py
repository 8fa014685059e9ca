"""Half-precision conversions (nbmp.backend.cpu.halfbits) and bulk casts (nbmp.backend.cpu.cast).

References: NumPy for float16, ml_dtypes for bfloat16, and an exact integer
oracle for float64 -> half (ml_dtypes rounds float64 -> bfloat16 twice, via
float32). Non-NaN results must match bit for bit; a NaN must give a NaN of
the same sign (payloads differ between implementations).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

# import_module: the package also exports a function named ``cast``
hb = importlib.import_module("nbmp.backend.cpu.halfbits")
cm = importlib.import_module("nbmp.backend.cpu.cast")

F16, BF16 = np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = [F16, BF16, F32, F64]
ALL_BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
needs_f16c = pytest.mark.skipif(not hb.target_has_f16c(), reason="target CPU lacks F16C")

TO_F32 = {
    "f16_hw": pytest.param(hb.f16_to_f32_hw, F16, marks=needs_f16c),
    "f16_int": pytest.param(hb.f16_to_f32_int, F16),
    "bf16": pytest.param(hb.bf16_to_f32, BF16),
}
FROM_F32 = {
    "f16_hw": pytest.param(hb.f32_to_f16_hw, F16, marks=needs_f16c),
    "f16_int": pytest.param(hb.f32_to_f16_int, F16),
    "bf16": pytest.param(hb.f32_to_bf16, BF16),
}


@njit
def _vmap(fn, src, out):
    for i in range(src.size):
        out[i] = fn(src[i])
    return out


def _apply(fn, src, out_dtype):
    return _vmap(fn, src, np.empty(src.size, out_dtype))


def assert_same_floats(got: np.ndarray, want: np.ndarray) -> None:
    """Bit-identical, except that a NaN only needs to be a NaN of the same sign."""
    assert got.shape == want.shape and got.dtype == want.dtype
    with np.errstate(invalid="ignore"):  # ml_dtypes warns on NaN
        g, w = got.astype(F64), want.astype(F64)  # exact for all four formats
    nan = np.isnan(w)
    assert np.array_equal(np.isnan(g), nan), "NaN-ness differs"
    assert np.array_equal(np.signbit(g), np.signbit(w)), "signs differ"
    bits = np.dtype(f"u{got.itemsize}")
    bad = np.flatnonzero(got.view(bits).ravel()[~nan.ravel()] != want.view(bits).ravel()[~nan.ravel()])
    assert bad.size == 0, (
        f"{bad.size} mismatches, first inputs at {bad[:5]}: "
        f"got {got.ravel()[~nan.ravel()][bad[:5]]}, want {want.ravel()[~nan.ravel()][bad[:5]]}")


def round_f64_oracle(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Finite float64 -> float16/bfloat16 rounded once to nearest-even, exactly.

    Rounds the integer significand to the target's quantum in integers, then
    encodes the (now representable) value with astype, which is then exact.
    """
    mant, emin = (10, -14) if dtype == F16 else (7, -126)
    a = np.abs(x).view(np.int64)
    e = np.maximum(a >> 52, 1) - 1075  # value = m * 2**e
    m = (a & ((1 << 52) - 1)) | np.where(a >> 52 > 0, 1 << 52, 0)
    q = np.maximum(e + 52, emin) - mant  # quantum (ulp) of the result
    s = np.minimum(q - e, 62)
    n, rem, half = m >> s, m & ((1 << s) - 1), 1 << (s - 1)
    n += (rem > half) | ((rem == half) & (n & 1 == 1))
    with np.errstate(over="ignore"):
        return np.copysign(np.ldexp(n.astype(F64), q), x).astype(dtype)


def reference_cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    with np.errstate(all="ignore"):
        want = x.astype(dtype)
    if x.dtype == F64 and dtype in (F16, BF16):
        fin = np.isfinite(x)
        want[fin] = round_f64_oracle(x[fin], dtype)
    return want


def boundary_f32(dtype: np.dtype) -> np.ndarray:
    """Every finite half value, every halfway point between neighbours, and +-1, +-2 float32 ulps."""
    pos = ALL_BITS[: (0x7C00 if dtype == F16 else 0x7F80)].view(dtype).astype(F64)
    nxt = np.append(pos[1:], 2.0 ** (16 if dtype == F16 else 128))
    core = np.concatenate([pos, (pos + nxt) / 2]).astype(F32)
    up, down = np.nextafter(core, F32.type(np.inf)), np.nextafter(core, F32.type(-np.inf))
    vals = np.concatenate([core, up, down, np.nextafter(up, F32.type(np.inf)),
                           np.nextafter(down, F32.type(-np.inf))])
    return np.concatenate([vals, -vals])


def random_f32(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(F32)


SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.5, 1 / 3, 65504.0, 65519.99, 65520.0,
     -65520.0, 2.0**-24, 2.0**-25, 3 * 2.0**-25, 2.0**-26, 2.0**-14, 6.1e-5, 1e-8, 2.0**-133,
     2.0**-134, 1e-40, 3.4028234663852886e38, 3.4e38, 1e39, 1 + 2.0**-11 + 2.0**-40,
     1 + 2.0**-8 + 2.0**-40, 5e-324, 1e300])


# --- element conversions ------------------------------------------------------

@pytest.mark.parametrize("fn, dtype", TO_F32.values(), ids=TO_F32.keys())
def test_to_f32_exhaustive(fn, dtype):
    assert_same_floats(_apply(fn, ALL_BITS, F32), ALL_BITS.view(dtype).astype(F32))


@pytest.mark.parametrize("fn, dtype", FROM_F32.values(), ids=FROM_F32.keys())
def test_from_f32_boundaries_and_random(fn, dtype):
    with np.errstate(all="ignore"):
        x = np.concatenate([boundary_f32(dtype), random_f32(3_000_000, seed=1), SPECIALS.astype(F32)])
        want = x.astype(dtype)
    assert_same_floats(_apply(fn, x, np.uint16).view(dtype), want)


@needs_f16c
def test_hardware_and_integer_fp16_paths_are_bit_identical():
    assert np.array_equal(_apply(hb.f16_to_f32_hw, ALL_BITS, F32).view(np.uint32),
                          _apply(hb.f16_to_f32_int, ALL_BITS, F32).view(np.uint32))
    x = np.concatenate([boundary_f32(F16), random_f32(1_000_000, seed=2)])  # NaN payloads too
    assert np.array_equal(_apply(hb.f32_to_f16_hw, x, np.uint16), _apply(hb.f32_to_f16_int, x, np.uint16))


def test_nan_stays_quiet_nan_with_sign():
    nans = np.array([0x7F800001, 0xFF800001, 0x7FC00000, 0xFFFFFFFF, 0x7F80FFFF], np.uint32).view(F32)
    for fn, dtype in [(hb.f32_to_f16_int, F16), (hb.f32_to_bf16, BF16)]:
        out = _apply(fn, nans, np.uint16)
        assert np.isnan(out.view(dtype).astype(F32)).all()
        assert np.array_equal(out >> 15, [0, 1, 0, 1, 0])


def test_f64_oracle_agrees_with_numpy_float16():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200_000) * np.exp2(rng.integers(-30, 18, 200_000))
    with np.errstate(over="ignore"):
        assert_same_floats(round_f64_oracle(x, F16), x.astype(F16))


@pytest.mark.parametrize("dtype", [F16, BF16], ids=["f16", "bf16"])
def test_f64_rounds_once(dtype):
    rng = np.random.default_rng(5)
    halves = ALL_BITS[: (0x7C00 if dtype == F16 else 0x7F80)].view(dtype).astype(F64)
    mid = (halves[:-1] + halves[1:]) / 2
    tiny = np.abs(mid) * 2.0**-40 + 2.0**-1060
    x = np.concatenate([mid, mid + tiny, mid - tiny, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf),
                        rng.standard_normal(100_000) * np.exp2(rng.integers(-140, 130, 100_000))])
    x = np.concatenate([x, -x])
    with np.errstate(all="ignore"):
        double = x.astype(F32).astype(dtype)
    want = round_f64_oracle(x, dtype)
    assert np.count_nonzero(double != want) > 1000  # the set catches double rounding
    assert_same_floats(cm.cast(x, dtype), want)


def test_target_feature_detection(monkeypatch):
    from numba.core import config
    monkeypatch.setattr(config, "CPU_NAME", "generic")
    monkeypatch.setattr(config, "CPU_FEATURES", "")
    assert not hb.target_has_f16c()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+f16c,-f16c")
    assert not hb.target_has_f16c()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+f16c")
    host = hb.ll.get_host_cpu_features().get("f16c", False)
    assert hb.target_has_f16c() == host


def test_generic_cpu_uses_integer_path(tmp_path):
    """NUMBA_CPU_NAME=generic has no F16C: the hardware intrinsic would crash there."""
    code = textwrap.dedent("""
        import importlib, numpy as np, ml_dtypes
        hb = importlib.import_module("nbmp.backend.cpu.halfbits")
        cm = importlib.import_module("nbmp.backend.cpu.cast")
        assert not hb.HARDWARE_F16
        bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
        for dt in (np.float16, ml_dtypes.bfloat16):
            ref = bits.view(dt).astype(np.float32)
            got = cm.cast(bits.view(dt), np.float32)
            ok = np.isnan(ref) | (got.view(np.uint32) == ref.view(np.uint32))
            assert ok.all() and np.isnan(got[np.isnan(ref)]).all()
            x = np.random.default_rng(0).integers(0, 2**32, 300_000, dtype=np.uint64)
            x = np.concatenate([x.astype(np.uint32).view(np.float32), ref])
            with np.errstate(all="ignore"):
                ref16 = x.astype(dt)
            got16 = cm.cast(x, dt)
            nan = np.isnan(x)
            assert np.array_equal(got16.view(np.uint16)[~nan], ref16.view(np.uint16)[~nan])
            assert np.isnan(got16[nan].astype(np.float32)).all()
        print("OK")
    """)
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


# --- bulk casts ---------------------------------------------------------------

PAIRS = [(s, d) for s in FLOATS for d in FLOATS]


@pytest.mark.parametrize("src, dst", PAIRS, ids=[f"{s.name}-{d.name}" for s, d in PAIRS])
def test_cast_special_values_all_pairs(src, dst):
    with np.errstate(all="ignore"):
        x = SPECIALS.astype(src)
    x = np.concatenate([x, ALL_BITS.view(src)]) if src.itemsize == 2 else x
    x_before = x.copy()
    got = cm.cast(x, dst)
    assert got.dtype == dst and got.flags.c_contiguous and not np.shares_memory(got, x)
    assert_same_floats(got, reference_cast(x, dst))
    assert np.array_equal(x.view(np.uint8), x_before.view(np.uint8))


def test_cast_fp16_range_edges():
    got = cm.cast(np.array([65504, 65519.99, 65520, -65520, 2.0**-25, 3 * 2.0**-25], F32), F16)
    assert got.tolist()[:4] == [65504, 65504, np.inf, -np.inf]
    assert got[4] == 0 and got[5] == 2.0**-23


@pytest.mark.parametrize("src, dst", [(F32, F16), (F16, F32), (F32, BF16), (BF16, F32), (F64, F16),
                                      (F64, BF16), (F16, BF16), (BF16, F64)], ids=str)
def test_cast_parallel_path(src, dst):
    x = (np.random.default_rng(6).standard_normal(cm.PARALLEL_MIN + 999) * 300).astype(src)
    assert_same_floats(cm.cast(x, dst), reference_cast(x, dst))


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (7,), (5, 6), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("dst", [F16, BF16, F32], ids=lambda d: d.name)
def test_cast_shapes(shape, dst):
    x = np.random.default_rng(7).standard_normal(shape)
    got = cm.cast(x, dst)
    assert got.shape == x.shape and got.flags.c_contiguous
    assert_same_floats(got, reference_cast(x, dst))


@pytest.mark.parametrize("view", [lambda a: a[::2], lambda a: a.T, lambda a: a[::-1, 1::3],
                                  lambda a: a[:, 5]], ids=["step", "T", "neg", "column"])
@pytest.mark.parametrize("src, dst", [(F32, F16), (F16, F32), (BF16, F32), (F32, BF16), (F16, F16)], ids=str)
def test_cast_non_contiguous(view, src, dst):
    x = view(np.random.default_rng(8).standard_normal((40, 30)).astype(src))
    got = cm.cast(x, dst)
    assert got.shape == x.shape and got.flags.c_contiguous
    assert_same_floats(got, reference_cast(x, dst))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), src=st.sampled_from(FLOATS), dst=st.sampled_from(FLOATS))
def test_cast_hypothesis(data, src, dst):
    x = data.draw(hnp.arrays(F64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7),
                             elements=st.floats(allow_nan=True, allow_infinity=True)))
    with np.errstate(all="ignore"):
        x = x.astype(src)
    if x.ndim:
        step = data.draw(st.sampled_from([1, 2, -1, -3]))
        x = x[::step]
    assert_same_floats(cm.cast(x, dst), reference_cast(x, dst))


def test_cast_same_dtype_copies():
    x = np.arange(6, dtype=F32).reshape(2, 3).T
    got = cm.cast(x, F32)
    assert got.flags.c_contiguous and not np.shares_memory(got, x) and np.array_equal(got, x)


@pytest.mark.parametrize("x, dtype", [(np.arange(3), F16), (np.ones(3, F32), np.int32),
                                      (np.ones(3, F32), "float8")], ids=["int-input", "int-out", "bad-name"])
def test_cast_rejects_other_dtypes(x, dtype):
    with pytest.raises(TypeError, match="Valid: float16, bfloat16, float32, float64. Received"):
        cm.cast(x, dtype)
