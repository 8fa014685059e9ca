"""Half-precision 2-D pooling: ``nbmp.ops.max_pool2d`` / ``avg_pool2d`` next to NumPy and torch.

Run ``python benchmarks/bench_pool.py`` from the repository root (``--quick`` for a short run,
``--help`` for the options). Each case (NHWC input, batch x height x width x channels) is pooled
two ways: ``max 2x2/2`` (2x2 windows, stride 2, "valid") and ``avg 3x3/2`` (3x3 windows,
stride 2, "same", padded positions not counted). Columns, in billions of input elements per
second (the same count on every side, so ratios are speed ratios):

* ``nbmp``: the ops on nbmp Arrays made outside the timing;
* ``np upcast``: the NumPy way (``nbmp.backend.reference.pool2d`` in float32): a float32 copy,
  the windows as a ``sliding_window_view``, folded a window offset at a time (``np.maximum``
  or sums over counts), a cast back to the half dtype;
* ``torch f32`` / ``torch bf16``: ``torch.nn.functional.max_pool2d`` / ``avg_pool2d`` on
  channels_last tensors (``padding=1, count_include_pad=False`` for the average: as many
  windows and as much work as "same" here, though for even sizes torch pads one pixel on both
  sides where "same" pads (0, 1)); only when torch is importable.

Every result of nbmp is checked once (outside the timing) against float64 arithmetic on the
same inputs; ``check`` says ``MISMATCH`` when the error is beyond a loose bound.
"""

from __future__ import annotations

import importlib
from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np

Row = _timing.RateRow

DEFAULT_SHAPES = "32x26x26x32,32x56x56x64"
#: (name, kind, window, stride, padding)
POOLINGS = (("max 2x2/2", "max", 2, 2, "valid"), ("avg 3x3/2", "avg", 3, 2, "same"))


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """``"NxHxWxC"``: batch, height, width, channels."""
    n, h, w, c = _timing.parse_sizes(text, "NxHxWxC", (4,))
    return n, h, w, c


def run_shape(timer: _timing.Timer, nbmp: Any, torch: Any, shape: tuple[int, int, int, int],
              dtypes: list[str], first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    x32 = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return [row for pooling in POOLINGS
            for row in run_pooling(timer, nbmp, torch, x32, pooling, dtypes, first_calls)]


def run_pooling(timer: _timing.Timer, nbmp: Any, torch: Any, x32: np.ndarray,
                pooling: tuple[str, str, int, int, str], dtypes: list[str],
                first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    name, kind, window, stride, padding = pooling
    elements = float(x32.size)
    reference = importlib.import_module("nbmp.backend.reference")

    def rate(t: float | None) -> float | None:
        return None if t is None else elements / t / 1e9

    op = getattr(nbmp.ops, f"{kind}_pool2d")
    pads = tuple(nbmp.ops.conv.same_padding(size, window, stride, 1) if padding == "same" else (0, 0)
                 for size in x32.shape[1:3])
    torch_pool = tx32 = t_f32 = None
    if torch is not None:
        extra = {"padding": 1, "count_include_pad": False} if kind == "avg" else {}

        def torch_pool(tx: Any) -> Any:
            return getattr(torch.nn.functional, f"{kind}_pool2d")(tx, window, stride, **extra)

        tx32 = torch.from_numpy(x32).permute(0, 3, 1, 2)  # NHWC memory: channels_last
        t_f32 = timer.timed(f"torch {name} f32", elements, lambda: torch_pool(tx32))
    rows = []
    for dt in dtypes:
        xh = x32.astype(_timing.DTYPES[dt])
        exact = reference.pool2d(xh, kind, (window, window), (stride, stride), pads)
        nx = nbmp.asarray(xh)
        t_first, result = _timing.first_call(lambda nx=nx: op(nx, window, stride, padding))
        check = _timing.check_cell(_timing.rel_error(result.numpy(), exact), dt)
        t_nbmp = timer.timed(f"nbmp {name} {dt}", elements, lambda nx=nx: op(nx, window, stride, padding))
        _timing.note_first_call(first_calls, f"{kind}_pool2d", dt, t_first, t_nbmp)
        t_up = timer.timed(f"numpy {name} {dt}", elements, lambda xh=xh: reference.pool2d(
            xh, kind, (window, window), (stride, stride), pads, np.float32).astype(xh.dtype))
        t_bf16 = None
        if torch_pool is not None and dt == "bf16":
            tx16 = tx32.to(torch.bfloat16)  # keeps channels_last
            t_bf16 = timer.timed(f"torch {name} bf16", elements, lambda tx16=tx16: torch_pool(tx16))
        rows.append(Row(x32.shape, name, dt, rate(t_nbmp), rate(t_up), rate(t_f32), rate(t_bf16), check))
    return rows


def main(argv: list[str] | None = None) -> None:
    _timing.upcast_table_main(
        __doc__.split("\n\n")[0], argv, DEFAULT_SHAPES, "comma-separated NxHxWxC input shapes", parse_shape,
        run_shape, ["N x H x W x C", "pooling", "dtype"],
        lambda r: ["x".join(map(str, r.case)), r.op, r.dtype], "G input elements/s", 2, "kernel")


if __name__ == "__main__":
    main()
