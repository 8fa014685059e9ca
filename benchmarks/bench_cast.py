"""Bulk half-precision casts: nbmp's Numba kernels vs NumPy / ml_dtypes ``astype``.

Run ``python benchmarks/bench_cast.py``. Each case is timed as a block (warm-up,
then the median of repeats, see ``_timing.Timer``) with a pause between blocks,
so thread pools do not interfere. Throughput counts elements converted per second, allocation of
the result included on both sides.
"""

from __future__ import annotations

import argparse
import importlib
import os

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import llvmlite.binding as ll
import ml_dtypes
import numba
import numpy as np

# ``nbmp.backend.cpu.cast`` (the module), not the package attribute of that name
cast_mod = importlib.import_module("nbmp.backend.cpu.cast")
halfbits = importlib.import_module("nbmp.backend.cpu.halfbits")

F16, BF16, F32 = np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32)
CASES = [("f32 -> f16", F32, F16), ("f16 -> f32", F16, F32),
         ("f32 -> bf16", F32, BF16), ("bf16 -> f32", BF16, F32)]
SIZES = [1 << 20, 1 << 24]
PAUSE_S = 0.3


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls and a pause."""
    timer = _timing.Timer(repeats=repeats, warmup=warmup, pause_s=PAUSE_S, budget_s=float("inf"))
    return timer.block(fn).median


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    print(f"CPU {ll.get_host_cpu_name()}, numba threads {numba.get_num_threads()}, "
          f"hardware fp16 path: {halfbits.HARDWARE_F16}")
    print(f"numpy {np.__version__}, ml_dtypes {ml_dtypes.__version__}, numba {numba.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} (other busy processes distort the parallel numbers)")
    rng = np.random.default_rng(0)
    head = f"{'elements':>10}  {'cast':<12}{'nbmp Gelem/s':>14}{'astype Gelem/s':>16}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for n in SIZES:
        base = (rng.standard_normal(n) * 100).astype(np.float32)
        repeats = 30 if n <= 1 << 20 else 11
        for name, src, dst in CASES:
            x = base.astype(src)
            t_nbmp = median_seconds(lambda x=x, dst=dst: cast_mod.cast(x, dst), repeats)
            t_np = median_seconds(lambda x=x, dst=dst: x.astype(dst), repeats)
            print(f"{n:>10}  {name:<12}{n / t_nbmp / 1e9:>14.2f}{n / t_np / 1e9:>16.2f}"
                  f"{t_np / t_nbmp:>7.1f}x")


if __name__ == "__main__":
    main()
