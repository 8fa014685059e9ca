"""``python -m nbmp``: what nbmp finds here, and one CNN run under each precision policy.

The same weights and batch go through a small CNN in float32, mixed_float16 and mixed_bfloat16;
the table shows time per batch, the output's error against float64, and the memory of weights
and activations.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SIZES = {  # batch, image side, channels of the two conv layers, dense units
    "tiny": (4, 8, (4, 8), 16),
    "small": (32, 32, (16, 32), 64),
    "medium": (64, 32, (32, 64), 128),
}
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def versions() -> str:
    import ml_dtypes
    import numba

    import nbmp

    return (f"nbmp {nbmp.__version__}, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"Numba {numba.__version__}, ml_dtypes {ml_dtypes.__version__}")


def build_cnn(policy: str, size: str) -> Any:
    """A small CNN (two conv blocks, two dense layers, a float32 softmax) under `policy`."""
    import nbmp
    from nbmp import layers

    _, side, (c1, c2), units = SIZES[size]
    with nbmp.policy_scope(policy):
        return nbmp.Sequential([
            layers.Input((side, side, 3)),
            layers.Conv2D(c1, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(c2, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(units, activation="relu"),
            layers.Dense(10),
            layers.Activation("softmax", dtype="float32"),
        ], name=f"cnn_{policy}")


def run_policy(model: Any, batch: Any, repeats: int) -> tuple[np.ndarray, float, int]:
    """(output, median seconds per batch, bytes of all layer outputs)."""
    model(batch)  # warm-up: first calls compile kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = model(batch)
        times.append(time.perf_counter() - start)
    activation_bytes, x = 0, batch
    for layer in model.layers:
        x = layer(x)
        activation_bytes += x.nbytes
    return out.numpy(), statistics.median(times), activation_bytes


def table(size: str, policies: tuple[str, ...], repeats: int, seed: int,
          device: str = "cpu") -> list[tuple[str, ...]]:
    """One row per policy, run on `device`; every model gets the float32 model's weights (the
    float64 reference runs on the CPU)."""
    import nbmp

    n, side = SIZES[size][:2]
    nbmp.set_random_seed(seed)
    batch = np.random.default_rng(seed).standard_normal((n, side, side, 3)).astype(np.float32)
    weights = build_cnn("float32", size).get_weights()
    reference = build_cnn("float64", size)
    reference.set_weights(weights)
    exact = reference(batch.astype(np.float64)).numpy()
    rows = []
    for policy in policies:
        model = build_cnn(policy, size)
        model.set_weights(weights)
        model.to(device)
        out, seconds, act_bytes = run_policy(model, nbmp.asarray(batch, device=device), repeats)
        err = np.abs(out.astype(np.float64) - exact)
        weight_bytes = sum(w.nbytes for w in model.get_weights())
        agree = float(np.mean(out.argmax(-1) == exact.argmax(-1)))
        rows.append((policy, device, model.layers[0].compute_dtype, f"{seconds * 1e3:.1f}",
                     f"{err.max():.1e}", f"{agree:.0%}", _kib(weight_bytes), _kib(act_bytes)))
    return rows


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an int of at least `least`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}. Received: {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbmp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="small", help="model and batch size")
    parser.add_argument("--policy", choices=POLICIES, action="append",
                        help="a policy to run (repeatable; default: all three)")
    parser.add_argument("--device", action="append",
                        help="a device to run on (repeatable; default: the CPU, and the GPU when a "
                             "real one is usable)")
    parser.add_argument("--repeats", type=_at_least(1), default=5, help="timed runs per policy (median)")
    parser.add_argument("--seed", type=_at_least(0), default=0, help="seed of the weights and the batch")
    args = parser.parse_args(argv)

    import nbmp

    print(versions())
    print(f"devices: {', '.join(nbmp.devices())}")
    print(f"global policy: {nbmp.global_policy()!r}  (floatx {nbmp.floatx()})")
    from nbmp.devices import cuda_simulated, cuda_status

    usable = nbmp.devices()
    for device in args.device or ():
        if device not in usable:
            why = f" ({cuda_status()[1]})" if device == "cuda" else ""
            parser.error(f"device {device!r} is not usable here{why}; usable: {', '.join(usable)}")
    run_on = args.device or [d for d in usable if d == "cpu" or not cuda_simulated()]
    if "cuda" in run_on and cuda_simulated():
        print("note: 'cuda' is Numba's CUDA simulator here (NUMBA_ENABLE_CUDASIM=1): results are "
              "real, times are not")
    n, side, channels, units = SIZES[args.size]
    print(f"\nCNN on a batch of {n} images {side}x{side}x3 (conv {channels[0]}, conv {channels[1]}, "
          f"dense {units}, dense 10, softmax in float32).")
    print("Error: max |output - float64 output| over the softmax probabilities, same weights;")
    print("top-1: how often the predicted class matches float64's.\n")
    header = ("policy", "device", "compute", "ms/batch", "max err", "top-1", "weights", "activations")
    rows = [row for device in run_on
            for row in table(args.size, tuple(args.policy or POLICIES), args.repeats, args.seed, device)]
    print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
