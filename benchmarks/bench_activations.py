"""Elementwise activations of half-precision arrays: ``nbmp.ops.relu`` / ``sigmoid`` / ``tanh`` /
``gelu`` next to NumPy and torch.

Run ``python benchmarks/bench_activations.py`` from the repository root (``--quick`` for a short
run, ``--help`` for the options). Columns, in billions of elements a second:

* ``nbmp``: the op on an nbmp Array made outside the timing;
* ``np upcast``: the NumPy way (``nbmp.backend.reference.activation`` in float32): a float32
  copy, NumPy's ufuncs (gelu: ``math.erfc`` an element at a time, NumPy having no erfc), a cast
  back to the half dtype;
* ``torch f32`` / ``torch bf16``: ``torch.relu`` / ``sigmoid`` / ``tanh`` /
  ``torch.nn.functional.gelu`` (exact, as nbmp's); only when torch is importable.

Every result of nbmp is checked once (outside the timing) against float64 arithmetic on the same
inputs; ``check`` says ``MISMATCH`` when the error is beyond a loose bound.
"""

from __future__ import annotations

import importlib
from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np

Row = _timing.RateRow

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")


def run_size(timer: _timing.Timer, nbmp: Any, torch: Any, size: int, dtypes: list[str],
             first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    x32 = np.random.default_rng(0).standard_normal(size, dtype=np.float32) * 3
    return [row for name in ACTIVATIONS
            for row in run_activation(timer, nbmp, torch, x32, name, dtypes, first_calls)]


def run_activation(timer: _timing.Timer, nbmp: Any, torch: Any, x32: np.ndarray, name: str,
                   dtypes: list[str], first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    reference = importlib.import_module("nbmp.backend.reference")
    size = x32.size

    def rate(t: float | None) -> float | None:
        return None if t is None else size / t / 1e9

    op = getattr(nbmp.ops, name)
    torch_op = t_f32 = None
    if torch is not None:
        torch_op = getattr(torch.nn.functional if name == "gelu" else torch, name)
        tx32 = torch.from_numpy(x32)
        t_f32 = timer.timed(f"torch {name} f32", size, lambda: torch_op(tx32))
    rows = []
    for dt in dtypes:
        xh = x32.astype(_timing.DTYPES[dt])
        nx = nbmp.asarray(xh)
        t_first, result = _timing.first_call(lambda nx=nx: op(nx))
        exact = reference.activation(xh.astype(np.float64), name)
        check = _timing.check_cell(_timing.rel_error(result.numpy(), exact), dt)
        t_nbmp = timer.timed(f"nbmp {name} {dt}", size, lambda nx=nx: op(nx))
        _timing.note_first_call(first_calls, name, dt, t_first, t_nbmp)
        t_up = timer.timed(f"numpy {name} {dt}", size, lambda xh=xh: reference.activation(
            xh.astype(np.float32), name).astype(xh.dtype))
        t_bf16 = None
        if torch_op is not None and dt == "bf16":
            tx16 = torch.from_numpy(x32).to(torch.bfloat16)
            t_bf16 = timer.timed(f"torch {name} bf16", size, lambda tx16=tx16: torch_op(tx16))
        rows.append(Row(size, name, dt, rate(t_nbmp), rate(t_up), rate(t_f32), rate(t_bf16), check))
    return rows


def main(argv: list[str] | None = None) -> None:
    _timing.upcast_table_main(
        __doc__.split("\n\n")[0], argv, "65536,1048576", "comma-separated element counts",
        lambda text: _timing.parse_sizes(text, "N", (1,))[0], run_size, ["elements", "activation", "dtype"],
        lambda r: [str(r.case), r.op, r.dtype], "G elements/s", 3, "op")


if __name__ == "__main__":
    main()
