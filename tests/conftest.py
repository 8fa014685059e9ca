"""Shared fixtures: global policy state restores itself after every test; the CPU kernels' bf16 paths."""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

from nbmp import policy
from nbmp.backend.cpu import amx, arithmetic, gemm, normalization, pool, simd, threads

# the module: the package's ``cast`` is its public function
cast_kernels = importlib.import_module("nbmp.backend.cpu.cast")
softmax_kernels = importlib.import_module("nbmp.backend.cpu.softmax")

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _restore_global_policy():
    """Each test starts from float32 with no global policy set, and leaves it so."""
    saved = (policy._global, policy._floatx)
    policy._global, policy._floatx = None, "float32"
    yield
    policy._global, policy._floatx = saved


#: The bf16 paths to test on this CPU: its default, and on a CPU with AMX also the
#: ``vdpbf16ps`` pairs it has but does not pick (exposed by reporting AMX unavailable).
BF16_PATHS = ["default", *(["pairs"] if simd.DOT_BF16 and amx.available() else [])]


@pytest.fixture(params=BF16_PATHS)
def bf16_path(request, monkeypatch):
    """Runs the test once per bf16 path of ``BF16_PATHS``."""
    if request.param == "pairs":
        monkeypatch.setattr(amx, "available", lambda: False)
    return request.param


@pytest.fixture
def every_call_threaded(monkeypatch):
    """Until the test ends, kernel calls however small run on all the kernels' threads (their
    limits for running in the calling thread alone are 0), so that test-sized products,
    convolutions, casts, poolings, arithmetic, softmax and normalization take the threaded paths."""
    for limit in ("SERIAL_MAX", "SERIAL_MAX_TILES", "PACK_SERIAL_MAX"):
        monkeypatch.setattr(gemm, limit, 0)
    monkeypatch.setattr(cast_kernels, "PARALLEL_MIN", 0)
    monkeypatch.setattr(pool, "PARALLEL_MIN", 0)
    monkeypatch.setattr(arithmetic, "PARALLEL_MIN", 0)
    monkeypatch.setattr(softmax_kernels, "PARALLEL_MIN", 0)
    monkeypatch.setattr(normalization, "PARALLEL_MIN", 0)


@pytest.fixture
def use_threads():
    """``use_threads(n)``: the CPU kernels use `n` threads until the test ends (then the count
    it started with, and a fresh pool)."""
    before = threads.get_num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)


@pytest.fixture
def lone_share(monkeypatch, use_threads, every_call_threaded):
    """``lone_share(*shares)``: from then on the kernels use 3 threads, and a parallel call of one
    of `shares` runs its share 0 alone, as when the other threads start too late to take any
    work (other kernels run as usual). What the other shares would have done, share 0 must do."""

    def arm(*shares):
        parallel = threads.parallel

        def first_only(share, *args, nthreads):
            if share not in shares:
                return parallel(share, *args, nthreads=nthreads)
            assert nthreads == 3, "a product too small for threads tests nothing here"
            share(0, nthreads, threads._NO_GO, *args)

        use_threads(3)
        monkeypatch.setattr(threads, "parallel", first_only)

    return arm
