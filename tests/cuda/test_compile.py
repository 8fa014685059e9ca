"""Compile-and-link check of the CUDA kernels for real GPUs, with no GPU present.

Each kernel the backend can launch is compiled to LTO-IR for sm_80 and sm_90 with
``cuda.compile_all`` (``mma.cu`` goes through NVRTC), linked into a cubin by nvJitLink
(``cuda.core.Linker``) with ptxas' verbose log, and checked for register spills and local-memory
stack frames; the tensor-core kernels' linked PTX must contain ``mma.sync`` (the call inlined).

The compilation runs in a subprocess without the simulator (this file is its script), so the check
works whether or not the test session itself runs under ``NUMBA_ENABLE_CUDASIM=1``. It needs
``numba-cuda[cu12]`` (NVVM, NVRTC and nvJitLink wheels) and is skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

CCS = [(8, 0), (9, 0)]


def _missing_toolchain() -> str | None:
    """Why the check cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install 'numba-cuda[cu12]')"
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
    except ImportError:
        return "numba-cuda is not installed (pip install 'numba-cuda[cu12]')"
    for lib in ("nvvm", "nvrtc", "nvJitLink"):
        try:
            load_nvidia_dynamic_lib(lib)
        except Exception as e:  # the loader raises several kinds of not-found errors
            return f"{lib} not found ({type(e).__name__}); pip install 'numba-cuda[cu12]'"
    return None


@pytest.fixture(scope="module")
def reports() -> dict[tuple[int, int], list[dict]]:
    reason = _missing_toolchain()
    if reason:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    runs = {cc: subprocess.Popen([sys.executable, __file__, f"{cc[0]}{cc[1]}"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for cc in CCS}
    out = {}
    for cc, run in runs.items():  # the architectures compile in parallel
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr[-4000:]
        out[cc] = json.loads(stdout.splitlines()[-1])
    return out


@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_kernels_link_without_spills(reports, cc):
    for r in reports[cc]:
        assert r["registers"] > 0, r
        assert r["spill_stores"] == r["spill_loads"] == r["stack_frame"] == 0, r


@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_tensor_core_kernels_inline_mma_sync(reports, cc):
    tc = [r for r in reports[cc] if r["tensor_cores"]]
    assert [r["name"] for r in tc] == [r["name"] for r in reports[cc] if r["name"].startswith("mma")]
    for r in tc:
        kind = "bf16" if "bfloat16" in r["name"] else "f16"
        assert r["mma"] and all(f".f32.{kind}.{kind}.f32" in line for line in r["mma"]), r
        assert r["calls"] == 0, r  # mma.cu's function was inlined


def _cases():
    """(name, reader, a, b, bias, activation, out, geom, device) for each kernel variant."""
    import ml_dtypes

    f16, bf16, f32, f64 = np.float16, ml_dtypes.bfloat16, np.float32, np.float64
    old, new = ((7, 5), 1), ((8, 0), 1)

    def mat(*shape, dtype):
        return np.zeros(shape, dtype)

    x, w = mat(2, 8, 8, 64, dtype=f16), mat(576, 1, 64, dtype=f16).transpose(1, 0, 2)
    conv_out = mat(128, 1, 64, dtype=f16).transpose(1, 0, 2)
    geom = (8, 8, 3, 64, 1, 1, 1, 1, 1, 1)
    cases = []
    for dt in (f16, bf16):
        name = np.dtype(dt).name
        a, b, o = mat(1, 256, 256, dtype=dt), mat(1, 256, 256, dtype=dt), mat(1, 256, 256, dtype=dt)
        cases += [(f"simt-large-{name}", "matrix", a, b, None, None, o, (0,), old),
                  (f"mma-wide-{name}", "matrix", a, b, None, None, o, (0,), new),
                  (f"mma-wide-{name}-bias-relu-bT", "matrix", a, b.transpose(0, 2, 1),
                   mat(1, 256, dtype=f32), "relu", o, (0,), new),  # ops pass float32 biases
                  (f"mma-narrow-{name}-aT", "matrix", a.transpose(0, 2, 1), b[..., :64], None,
                   "relu", o[..., :64], (0,), new)]
    a32 = mat(1, 256, 256, dtype=f32)
    cases += [("simt-large-float32-bias-relu", "matrix", a32, a32, mat(1, 256, dtype=f32), "relu",
               a32, (0,), new),
              ("simt-small-float64", "matrix", mat(1, 64, 64, dtype=f64), mat(1, 64, 64, dtype=f64),
               None, "relu", mat(1, 64, 64, dtype=f64), (0,), new),
              ("simt-conv-float16-bias-relu", "patch", x, w, mat(1, 64, dtype=f16), "relu",
               conv_out, geom, old),
              ("mma-patch-conv-float16-bias-relu", "patch", x, w, mat(1, 64, dtype=f16), "relu",
               conv_out, geom, new),
              ("mma-patch-conv-bfloat16", "patch", x.astype(bf16), w.astype(bf16), None, None,
               conv_out.astype(bf16), geom, new)]
    return cases


def _link(codes, arch, ptx):
    from cuda.core import Linker, LinkerOptions, ObjectCode

    objs = [ObjectCode.from_ltoir(c) if isinstance(c, bytes) else c for c in codes]
    linker = Linker(*objs, options=LinkerOptions(arch=arch, link_time_optimization=True,
                                                 verbose=not ptx, ptx=ptx))
    code = linker.link("ptx" if ptx else "cubin")
    return code.code.decode() if ptx else linker.get_info_log()


def _compile(kernel, args, cc):
    from numba import cuda, typeof

    sig = tuple(typeof(x) for x in args)
    codes, _ = cuda.compile_all(kernel.py_func, sig, device=False, abi="numba", output="ltoir",
                                cc=cc)
    log = _link(codes, f"sm_{cc[0]}{cc[1]}", ptx=False)
    ptx = _link(codes, f"sm_{cc[0]}{cc[1]}", ptx=True)

    def stat(pattern):
        return int(re.search(pattern, log).group(1))

    return {"registers": stat(r"Used (\d+) registers"),
            "spill_stores": stat(r"(\d+) bytes spill stores"),
            "spill_loads": stat(r"(\d+) bytes spill loads"),
            "stack_frame": stat(r"(\d+) bytes stack frame"),
            "mma": [line.strip() for line in ptx.splitlines() if "mma.sync" in line][:2],
            "calls": sum(line.strip().startswith("call") for line in ptx.splitlines())}


def main(cc: tuple[int, int]) -> list[dict]:
    """Compile every case for `cc`; numba-cuda types device functions for the current device,
    so a stand-in device with that compute capability is installed first."""
    from types import SimpleNamespace

    import numba.cuda.dispatcher

    numba.cuda.dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
    from nbmp.backend import cuda as backend
    from nbmp.backend.cuda import kernels
    from nbmp.backend.cuda.halfbits import decoder, encoder

    reports = []
    for name, reader, a, b, bias, act, out, geom, device in _cases():
        kernel, _, threads, *args = backend.plan(reader, a, b, bias, act, out, geom, device)
        r = _compile(kernel, args, cc)
        tensor_cores = kernel.py_func.__module__ == "nbmp.backend.cuda.mma"  # what plan() chose
        reports.append({"name": name, "threads": threads, "tensor_cores": tensor_cores, **r})
    import ml_dtypes

    for src, dst, act in [(np.float32, ml_dtypes.bfloat16, None), (np.float64, np.float16, None),
                          (np.float16, np.float16, "gelu"), (np.float32, np.float16, "tanh")]:
        acc = np.float64 if np.float64 in (src, dst) else np.float32
        kernel = kernels.map_kernel(decoder(src, acc), kernels.activation_fn(act, acc),
                                    encoder(dst, acc))
        bits = [np.zeros(4, np.uint16 if d == ml_dtypes.bfloat16 else d) for d in (src, dst)]
        r = _compile(kernel, bits, cc)
        reports.append({"name": f"map-{np.dtype(src).name}-{np.dtype(dst).name}-{act}",
                        "threads": kernels.THREADS, "tensor_cores": False, **r})
    return reports


if __name__ == "__main__":
    arg = sys.argv[1]
    print(json.dumps(main((int(arg[:-1]), int(arg[-1])))))
