"""GPU table: nbmp's CUDA kernels against CuPy (cuBLAS) in one run.

Run ``python benchmarks/bench_gpu.py`` on a machine with an NVIDIA GPU and ``nbmp[cuda12]``.
Cases: fp16 and bf16 matmul at 4096 and 8192 (tensor-core kernels on sm_80+), and conv2d
N=32, 32x32, 64 -> 64 channels, 3x3, "same" (an implicit GEMM of 32768 x 64 x 576); each is
compared with CuPy's fp16 and fp32 matmul of the same M, N, K. Times are CUDA-event medians
after a warm-up (which includes compilation); GFLOP/s counts 2 M N K.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable

import numpy as np

import nbmp
from nbmp.devices import cuda_simulated, cuda_status

REPEATS = 10


def gpu_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median seconds of `fn` on the current stream (CUDA events), after one warm-up call."""
    import cupy

    fn()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def cupy_matmul(m: int, n: int, k: int, dtype: str) -> float:
    """Seconds of CuPy's ``a @ b`` for (m, k) x (k, n) in `dtype`."""
    import cupy

    a = cupy.random.standard_normal((m, k), dtype=np.float32).astype(dtype)
    b = cupy.random.standard_normal((k, n), dtype=np.float32).astype(dtype)
    return gpu_time(lambda: a @ b)


def nbmp_cases() -> list[tuple[str, tuple[int, int, int], Callable[[], object]]]:
    """(name, (M, N, K), call) for every nbmp case."""
    rng = np.random.default_rng(0)
    cases = []
    for dtype in ("float16", "bfloat16"):
        for size in (4096, 8192):
            a = nbmp.asarray(rng.standard_normal((size, size), np.float32), dtype, device="cuda")
            b = nbmp.asarray(rng.standard_normal((size, size), np.float32), dtype, device="cuda")
            cases.append((f"matmul {dtype} {size}", (size, size, size),
                          lambda a=a, b=b: nbmp.ops.matmul(a, b)))
        x = nbmp.asarray(rng.standard_normal((32, 32, 32, 64), np.float32), dtype, device="cuda")
        w = nbmp.asarray(rng.standard_normal((3, 3, 64, 64), np.float32), dtype, device="cuda")
        cases.append((f"conv2d {dtype} N=32 32x32 64->64 3x3", (32 * 32 * 32, 64, 9 * 64),
                      lambda x=x, w=w: nbmp.ops.conv2d(x, w, padding="same")))
    return cases


def main() -> None:
    usable, why = cuda_status()
    if not usable or cuda_simulated():
        sys.exit(f"bench_gpu.py needs an NVIDIA GPU (not the simulator): {why}")
    import cupy

    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, "
          f"nbmp {nbmp.__version__}, CuPy {cupy.__version__}")
    print(f"{'case':<40}{'ms':>9}{'GFLOP/s':>10}{'vs CuPy f16':>13}{'vs CuPy f32':>13}")
    baselines: dict[tuple[int, int, int], tuple[float, float]] = {}
    for name, (m, n, k), call in nbmp_cases():
        if (m, n, k) not in baselines:
            baselines[(m, n, k)] = (cupy_matmul(m, n, k, "float16"), cupy_matmul(m, n, k, "float32"))
        f16, f32 = baselines[(m, n, k)]
        seconds = gpu_time(call)
        gflops = 2 * m * n * k / seconds / 1e9
        print(f"{name:<40}{seconds * 1e3:>9.2f}{gflops:>10.0f}{f16 / seconds:>13.2f}{f32 / seconds:>13.2f}")
    for (m, n, k), (f16, f32) in baselines.items():
        for label, seconds in (("float16", f16), ("float32", f32)):
            print(f"{'CuPy matmul ' + label + f' {m}x{n}x{k}':<40}{seconds * 1e3:>9.2f}"
                  f"{2 * m * n * k / seconds / 1e9:>10.0f}")


if __name__ == "__main__":
    main()
