"""Layer and batch normalization of half-precision arrays: ``nbmp.ops.moments`` and
``nbmp.ops.normalize`` next to NumPy and torch.

Run ``python benchmarks/bench_normalization.py`` from the repository root (``--quick`` for a
short run, ``--help`` for the options). Each case is a (rows, features) array; two operations:

* ``layer norm``: the statistics of each row (``moments`` over the last axis, kept), then
  ``normalize`` with a scale and an offset per feature, as ``LayerNormalization`` does;
* ``batch norm``: the statistics of each feature over all rows (``moments`` over axis 0), then
  ``normalize``, as ``BatchNormalization`` does in training.

Columns, in billions of input elements a second:

* ``nbmp``: the two ops on an nbmp Array made outside the timing;
* ``np upcast``: the NumPy way (nbmp's before its kernels): a float32 copy, its mean, the
  variance as the mean of the squared deviations, the normalization in float32 steps, a cast
  back to the half dtype;
* ``torch f32`` / ``torch bf16``: ``torch.nn.functional.layer_norm`` / ``batch_norm``
  (``training=True``) on float32 / bfloat16 tensors; only when torch is importable.

Every result of nbmp is checked once (outside the timing) against float64 arithmetic on the same
inputs; ``check`` says ``MISMATCH`` when the error is beyond a loose bound.
"""

from __future__ import annotations

from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np

Row = _timing.RateRow

EPSILON = 1e-3
OPERATIONS = {"layer norm": -1, "batch norm": 0}  # the axis the statistics are taken over


def parse_case(text: str) -> tuple[int, int]:
    rows, features = _timing.parse_sizes(text, "ROWSxFEATURES", (2,))
    return rows, features


def upcast(x: np.ndarray, axis: int, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The float32 path through NumPy."""
    x32 = x.astype(np.float32)
    mean = x32.mean(axis, keepdims=True)
    variance = np.square(x32 - mean).mean(axis, keepdims=True)
    return ((x32 - mean) / np.sqrt(variance + np.float32(EPSILON)) * scale + offset).astype(x.dtype)


def exact(x: np.ndarray, axis: int, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    mean = x64.mean(axis, keepdims=True)
    return (x64 - mean) / np.sqrt(x64.var(axis, keepdims=True) + EPSILON) * scale + offset


def torch_norm(torch: Any, tx: Any, axis: int, ts: Any, to: Any) -> Any:
    """torch's layer norm (`axis` -1) or training batch norm (`axis` 0) of `tx`, scale `ts` and
    offset `to` tensors of its dtype."""
    functional = torch.nn.functional
    if axis == -1:
        return functional.layer_norm(tx, tx.shape[-1:], ts, to, EPSILON)
    return functional.batch_norm(tx, None, None, ts, to, True, 0.0, EPSILON)


def run_case(timer: _timing.Timer, nbmp: Any, torch: Any, case: tuple[int, int], dtypes: list[str],
             first_calls: list[tuple[str, str, float, float | None]]) -> list[Row]:
    rows, features = case
    rng = np.random.default_rng(0)
    x32 = rng.normal(2.0, 3.0, (rows, features)).astype(np.float32)
    scale, offset = (rng.normal(1.0, 0.5, features).astype(np.float32) for _ in range(2))
    size = x32.size

    def rate(t: float | None) -> float | None:
        return None if t is None else size / t / 1e9

    def op(nx: Any, axis: int) -> Any:
        mean, variance = nbmp.ops.moments(nx, axis, keepdims=True)
        return nbmp.ops.normalize(nx, mean, variance, offset, scale, epsilon=EPSILON)

    result = []
    for name, axis in OPERATIONS.items():
        t_f32 = None
        if torch is not None:
            tx32, ts, to = (torch.from_numpy(v) for v in (x32, scale, offset))
            t_f32 = timer.timed(f"torch {name} f32", size, lambda tx32=tx32, axis=axis, ts=ts, to=to:
                                torch_norm(torch, tx32, axis, ts, to))
        for dt in dtypes:
            xh = x32.astype(_timing.DTYPES[dt])
            nx = nbmp.asarray(xh)
            t_first, got = _timing.first_call(lambda nx=nx, axis=axis: op(nx, axis))
            check = _timing.check_cell(_timing.rel_error(got.numpy(), exact(xh, axis, scale, offset)), dt)
            t_nbmp = timer.timed(f"nbmp {name} {dt}", size, lambda nx=nx, axis=axis: op(nx, axis))
            _timing.note_first_call(first_calls, name, dt, t_first, t_nbmp)
            t_up = timer.timed(f"numpy {name} {dt}", size,
                               lambda xh=xh, axis=axis: upcast(xh, axis, scale, offset))
            t_bf16 = None
            if torch is not None and dt == "bf16":
                tx16, ts, to = (torch.from_numpy(v).to(torch.bfloat16) for v in (x32, scale, offset))
                t_bf16 = timer.timed(f"torch {name} bf16", size, lambda tx16=tx16, axis=axis, ts=ts, to=to:
                                     torch_norm(torch, tx16, axis, ts, to))
            result.append(Row(case, name, dt, rate(t_nbmp), rate(t_up), rate(t_f32), rate(t_bf16), check))
    return result


def main(argv: list[str] | None = None) -> None:
    _timing.upcast_table_main(
        __doc__.split("\n\n")[0], argv, "4096x256,1024x1024", "comma-separated ROWSxFEATURES cases",
        parse_case, run_case, ["rows x features", "operation", "dtype"],
        lambda r: [f"{r.case[0]}x{r.case[1]}", r.op, r.dtype], "G elements/s", 3, "op")


if __name__ == "__main__":
    main()
