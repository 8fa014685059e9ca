"""Which devices are usable, and the errors that say why "cuda" is not."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import nbmp
from nbmp.devices import check_device, cuda_status


@pytest.fixture
def fresh_status():
    """cuda_status() is cached: recompute it under the test's patches, and restore after."""
    cuda_status.cache_clear()
    yield
    cuda_status.cache_clear()


def _hide(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in names else real(name, *a))


def test_cpu_is_always_first():
    assert nbmp.devices()[0] == "cpu"
    assert set(nbmp.devices()) <= {"cpu", "cuda"}
    assert check_device("cpu") == "cpu"


def test_unknown_device_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown device 'tpu'\. Valid: 'cpu', 'cuda'\. "
                                         r"Received: device='tpu' \(of type str\)"):
        nbmp.asarray([1.0], device="tpu")


def test_without_numba_cuda_cuda_is_refused_naming_the_extra_and_the_simulator(monkeypatch,
                                                                               fresh_status):
    _hide(monkeypatch, "numba_cuda", "numba.cuda")
    assert nbmp.devices() == ["cpu"]
    with pytest.raises(RuntimeError, match=r"numba-cuda package is not installed.*nbmp\[cuda12\]"
                                           r".*NUMBA_ENABLE_CUDASIM=1"):
        nbmp.asarray([1.0], device="cuda")
    with pytest.raises(RuntimeError, match="not available"):
        nbmp.asarray([1.0]).to("cuda")


def test_the_deprecated_builtin_numba_cuda_is_named(monkeypatch, fresh_status):
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "numba.cuda" else None)
    usable, why = cuda_status()
    assert not usable and "built-in numba.cuda" in why and "deprecated" in why


def test_simulator_makes_cuda_usable_without_cupy(monkeypatch, fresh_status):
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed")
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    _hide(monkeypatch, "cupy")
    usable, why = cuda_status()
    assert usable and "simulat" in why


def test_simulated_cuda_in_a_fresh_process():
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed")
    code = ("import nbmp, numpy as np; x = nbmp.asarray([1.5, 2.0], 'float16', device='cuda'); "
            "print(nbmp.devices(), (x @ x).device, (x @ x).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}).stdout
    assert out.split("]")[0] == "['cpu', 'cuda'" and out.split("]", 1)[1].split() == ["cuda", "6.25"]


def test_cpu_arrays_have_no_cuda_interface_and_convert_to_numpy():
    x = nbmp.asarray([1.0, 2.0])
    assert x.device == "cpu" and not hasattr(x, "__cuda_array_interface__")
    assert np.asarray(x).tolist() == [1.0, 2.0] and x.to("cpu") is x
