"""``python -m nbmp``: what nbmp finds on this machine, and mixed precision at a glance."""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np


def _versions() -> str:
    import ml_dtypes
    import numba

    import nbmp

    return (f"nbmp {nbmp.__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"Numba {numba.__version__}, ml_dtypes {ml_dtypes.__version__}")


def _dense_table(batch: int, features: int, units: int, seed: int) -> list[tuple[str, ...]]:
    """One Dense computation per policy, next to the float64 result of the same weights."""
    import nbmp
    from nbmp.backend import reference

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, features)).astype(np.float32)
    kernel = (rng.standard_normal((features, units)) / np.sqrt(features)).astype(np.float32)
    bias = rng.standard_normal(units).astype(np.float32) * 0.1
    exact = reference.dense(x, kernel, bias, "relu")
    rows = []
    for name in ("float32", "mixed_float16", "mixed_bfloat16"):
        policy = nbmp.DTypePolicy(name)
        compute = policy.compute_dtype
        with nbmp.variables.autocast_scope(compute if policy.is_mixed else None):
            weights = nbmp.Variable(kernel), nbmp.Variable(bias)
            nbmp.ops.dense(nbmp.asarray(x).astype(compute), *weights, activation="relu")  # warm-up
            start = time.perf_counter()
            y = nbmp.ops.dense(nbmp.asarray(x).astype(compute), *weights, activation="relu")
            seconds = time.perf_counter() - start
        err = np.abs(y.numpy().astype(np.float64) - exact)
        rel = err.max() / max(np.abs(exact).max(), 1e-30)
        rows.append((name, compute, y.dtype.name, f"{seconds * 1e3:.2f}", f"{err.max():.2e}",
                     f"{rel:.2e}"))
    return rows


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbmp", description=__doc__)
    parser.add_argument("--batch", type=int, default=256, help="rows of the Dense input")
    parser.add_argument("--features", type=int, default=512, help="input features")
    parser.add_argument("--units", type=int, default=256, help="output units")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import nbmp

    print(_versions())
    print(f"devices: {', '.join(nbmp.devices())}")
    print(f"global policy: {nbmp.global_policy()!r}  (floatx {nbmp.floatx()})")
    print()
    print(f"Dense {args.batch}x{args.features} @ {args.features}x{args.units} + bias, relu; "
          "error against float64 from the same float32 weights:")
    _print_table(("policy", "compute", "output", "ms", "max abs err", "max rel err"),
                 _dense_table(args.batch, args.features, args.units, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
