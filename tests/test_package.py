"""The package as a user meets it: import cost, no CUDA at import, the demo."""

import subprocess
import sys

import pytest

import nbmp


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True).stdout


def test_import_does_not_import_numba_cuda():
    out = _run("import sys, nbmp; print('numba.cuda' in sys.modules, 'numba_cuda' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_import_takes_well_under_a_second_beyond_numpy():
    code = ("import time; t0 = time.perf_counter(); import numpy; "
            "t1 = time.perf_counter(); import nbmp; t2 = time.perf_counter(); print(t2 - t1)")
    best = min(float(_run(code)) for _ in range(3))
    assert best < 0.5, f"import nbmp took {best:.3f} s beyond numpy's own import"


def test_import_loads_neither_numba_nor_ml_dtypes_until_used():
    # ml_dtypes 0.7.0 takes over a second to import: nbmp loads it when bfloat16 is first used
    out = _run("import sys, nbmp; print('numba' in sys.modules, 'ml_dtypes' in sys.modules); "
               "nbmp.DTypePolicy('mixed_bfloat16'); print('ml_dtypes' in sys.modules); "
               "x = nbmp.asarray([1.5], dtype='bfloat16'); print('ml_dtypes' in sys.modules, x.dtype)")
    assert out.split() == ["False", "False", "False", "True", "bfloat16"]


def test_float32_and_float16_kernels_do_not_load_ml_dtypes():
    out = _run("import sys, numpy as np, nbmp; x = nbmp.asarray(np.ones((2, 3), np.float16)); "
               "nbmp.ops.matmul(x, x.T); nbmp.ops.cast(x, 'float32'); "
               "nbmp.ops.conv2d(np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 2), np.float32)); "
               "print('numba' in sys.modules, 'ml_dtypes' in sys.modules)")
    assert out.split() == ["True", "False"]


def test_bfloat16_made_before_nbmp_first_saw_it():
    # arrays of ml_dtypes' bfloat16 that reach nbmp before anything in nbmp loaded it
    out = _run("import ml_dtypes, numpy as np, nbmp; bf = np.zeros(2, ml_dtypes.bfloat16); "
               "print(nbmp.dtypes.canonical_name(bf.dtype), nbmp.dtypes.result_type(bf, np.float16), "
               "nbmp.dtypes.result_type(bf, 2.5), nbmp.asarray(bf).dtype == nbmp.dtypes.bfloat16)")
    assert out.split() == ["bfloat16", "float32", "bfloat16", "True"]


def test_public_api():
    for name in ["DTypePolicy", "Array", "Variable", "asarray", "global_policy", "set_global_policy",
                 "dtype_policy", "set_dtype_policy", "policy_scope", "floatx", "set_floatx",
                 "devices", "ops", "layers", "mixed_precision", "dtypes"]:
        assert name in nbmp.__all__ and hasattr(nbmp, name)
    assert nbmp.mixed_precision.experimental.set_policy


def test_demo_prints_devices_versions_and_a_row_per_policy():
    out = subprocess.run([sys.executable, "-m", "nbmp", "--size", "tiny", "--repeats", "1"],
                         check=True, capture_output=True, text=True).stdout
    assert "devices: cpu" in out and "global policy" in out and "Numba" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("float32", "mixed_"))]
    assert [r[0] for r in rows] == ["float32", "mixed_float16", "mixed_bfloat16"]
    assert [r[1:3] for r in rows] == [["cpu", "float32"], ["cpu", "float16"], ["cpu", "bfloat16"]]
    errors = [float(r[4]) for r in rows]
    assert errors[0] < 1e-5 and errors[0] < errors[1] < errors[2] < 0.05


def test_demo_options():
    run = lambda *a: subprocess.run([sys.executable, "-m", "nbmp", *a], capture_output=True,  # noqa: E731
                                    text=True)
    assert "--policy" in run("--help").stdout
    one = run("--size", "tiny", "--policy", "mixed_bfloat16", "--repeats", "1").stdout
    assert "mixed_bfloat16" in one and "mixed_float16" not in one
    bad = run("--device", "tpu")
    assert bad.returncode != 0 and "usable: cpu" in bad.stderr
    zero = run("--repeats", "0")
    assert zero.returncode == 2 and "--repeats: must be at least 1. Received: 0" in zero.stderr
    negative = run("--seed", "-1")  # was a traceback from set_random_seed
    assert negative.returncode == 2 and "--seed: must be at least 0. Received: -1" in negative.stderr


def test_the_demo_says_why_cuda_is_not_usable(monkeypatch, capsys):
    import importlib

    from nbmp import __main__

    devices = importlib.import_module("nbmp.devices")  # the module, not nbmp.devices()
    monkeypatch.setattr(devices, "cuda_status", lambda: (False, "no usable NVIDIA GPU or driver was found"))
    monkeypatch.setattr(nbmp, "devices", lambda: ["cpu"])
    with pytest.raises(SystemExit):
        __main__.main(["--device", "cuda"])
    assert "'cuda' is not usable here (no usable NVIDIA GPU or driver was found); usable: cpu" in (
        capsys.readouterr().err)
