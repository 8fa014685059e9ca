"""Arithmetic on half-precision arrays: ``x + y``, ``x * bias`` (a row broadcast) and ``x / 3.0`` on
nbmp Arrays next to NumPy and torch.

Run ``python benchmarks/bench_arithmetic.py`` from the repository root (``--quick`` for a short
run, ``--help`` for the options). Columns, in billions of result elements a second:

* ``nbmp``: the operator on nbmp Arrays made outside the timing;
* ``numpy``: the same operator on the NumPy arrays: NumPy's own float16 loops, ml_dtypes'
  bfloat16 ones (both compute in float32 and round once, as nbmp: the same values);
* ``torch f32`` / ``torch bf16``: the operator on torch tensors of float32 / bfloat16; only
  when torch is importable.

Every result of nbmp is checked once (outside the timing) against float64 arithmetic on the same
inputs; ``check`` says ``MISMATCH`` when the error is beyond a loose bound.
"""

from __future__ import annotations

import operator
from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np

Row = _timing.RateRow

#: name -> (operation, how the right operand is made from the left one's rows)
CASES = {
    "x + y": (operator.add, lambda x: x[::-1].copy()),
    "x * bias": (operator.mul, lambda x: x[0].copy()),
    "x / 3.0": (operator.truediv, lambda x: 3.0),
}
ROW = 256  # elements in a row of x (the bias's length)


def run_size(timer: _timing.Timer, nbmp: Any, torch: Any, size: int, dtypes: list[str],
             first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    x32 = np.random.default_rng(0).standard_normal((max(size // ROW, 1), ROW), dtype=np.float32) * 3
    return [row for case in CASES for row in run_case(timer, nbmp, torch, x32, case, dtypes, first_calls)]


def _tensor(torch: Any, v: Any, dtype: Any) -> Any:
    return torch.from_numpy(v).to(dtype) if isinstance(v, np.ndarray) else v


def run_case(timer: _timing.Timer, nbmp: Any, torch: Any, x32: np.ndarray, case: str, dtypes: list[str],
             first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    op, right = CASES[case]
    size = x32.size
    y32 = right(x32)

    def rate(t: float | None) -> float | None:
        return None if t is None else size / t / 1e9

    t_f32 = None
    if torch is not None:
        tx, ty = _tensor(torch, x32, torch.float32), _tensor(torch, y32, torch.float32)
        t_f32 = timer.timed(f"torch {case} f32", size, lambda: op(tx, ty))
    rows = []
    for dt in dtypes:
        half = _timing.DTYPES[dt]
        xh, yh = x32.astype(half), (y32.astype(half) if isinstance(y32, np.ndarray) else y32)
        nx, ny = nbmp.asarray(xh), (nbmp.asarray(yh) if isinstance(yh, np.ndarray) else yh)
        t_first, result = _timing.first_call(lambda nx=nx, ny=ny: op(nx, ny))
        exact = op(xh.astype(np.float64), np.asarray(yh, xh.dtype).astype(np.float64))
        check = _timing.check_cell(_timing.rel_error(result.numpy(), exact), dt)
        t_nbmp = timer.timed(f"nbmp {case} {dt}", size, lambda nx=nx, ny=ny: op(nx, ny))
        _timing.note_first_call(first_calls, case, dt, t_first, t_nbmp)
        t_np = timer.timed(f"numpy {case} {dt}", size, lambda xh=xh, yh=yh: op(xh, yh))
        t_bf16 = None
        if torch is not None and dt == "bf16":
            tx, ty = _tensor(torch, x32, torch.bfloat16), _tensor(torch, y32, torch.bfloat16)
            t_bf16 = timer.timed(f"torch {case} bf16", size, lambda tx=tx, ty=ty: op(tx, ty))
        rows.append(Row(size, case, dt, rate(t_nbmp), rate(t_np), rate(t_f32), rate(t_bf16), check))
    return rows


def main(argv: list[str] | None = None) -> None:
    _timing.upcast_table_main(
        __doc__.split("\n\n")[0], argv, "4096,65536,1048576", "comma-separated element counts",
        lambda text: _timing.parse_sizes(text, "N", (1,))[0], run_size, ["elements", "operation", "dtype"],
        lambda r: [str(r.case), r.op, r.dtype], "G elements/s", 3, "op", upcast_header="numpy")


if __name__ == "__main__":
    main()
