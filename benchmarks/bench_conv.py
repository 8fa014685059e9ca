"""Half-precision 2-D convolution: ``nbmp.ops.conv2d`` next to torch and a NumPy im2col.

Run ``python benchmarks/bench_conv.py`` from the repository root (``--quick`` for a short run,
``--help`` for the options). The default case is a ResNet-style layer: batch 32, 32x32 pixels,
64 -> 64 channels, 3x3 kernel, stride 1, "same" padding, NHWC input and HWIO kernel as in Keras.
Columns, all in GFLOP/s (``2 * N * OH * OW * KH * KW * Cin * Cout / t``):

* ``nbmp``: ``nbmp.ops.conv2d`` on nbmp Arrays made outside the timing;
* ``torch f32`` / ``torch bf16``: ``torch.nn.functional.conv2d`` on channels_last tensors in
  float32 / bfloat16 (only when torch is importable; it is not an nbmp dependency);
* ``np im2col``: the NumPy upcast path: float32 copy of the input, im2col through
  ``sliding_window_view``, one float32 matmul (OpenBLAS), cast back to the half dtype.

Ratios are speed ratios, nbmp over the other column: above 1 means nbmp is faster. Every
result of nbmp is checked once (outside the timing) against float64 arithmetic on the same
half-precision inputs; ``check`` says ``MISMATCH`` when the error is beyond a loose bound.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DEFAULT_SHAPES = "32x32x32x64x64x3"


@dataclass(frozen=True)
class ConvCase:
    n: int
    h: int
    w: int
    cin: int
    cout: int
    k: int

    @property
    def flops(self) -> float:  # stride 1, "same": the output is h x w
        return 2.0 * self.n * self.h * self.w * self.k * self.k * self.cin * self.cout

    def __str__(self) -> str:
        return f"{self.n}x{self.h}x{self.w} {self.cin}->{self.cout} k{self.k}"


def parse_case(text: str) -> ConvCase:
    """``"NxHxWxCINxCOUTxK"``: batch, height, width, channels in and out, kernel size."""
    return ConvCase(*_timing.parse_sizes(text, "NxHxWxCINxCOUTxK", (6,)))


def conv2d_im2col(x: np.ndarray, kernel: np.ndarray, acc: Any = np.float32) -> np.ndarray:
    """NHWC `x` convolved with HWIO `kernel`, stride 1, "same" padding, computed in `acc`.

    1. One pass copies `x` into a zero-bordered buffer in `acc` (the upcast and the padding
       together); "same" puts the odd pixel of padding at the end, as TensorFlow does.
    2. ``sliding_window_view`` gives every output pixel its (Cin, KH, KW) patch, as a view.
    3. Reshaping the view to (N*H*W, Cin*KH*KW) copies it: that copy is the im2col matrix.
    4. The kernel, reordered to the same (Cin, KH, KW) order, is a (Cin*KH*KW, Cout) matrix,
       and the convolution is one matrix product.
    """
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.zeros((n, h + kh - 1, w + kw - 1, cin), acc)
    padded[:, top:top + h, left:left + w, :] = x
    patches = sliding_window_view(padded, (kh, kw), axis=(1, 2))  # (n, h, w, cin, kh, kw)
    cols = patches.reshape(n * h * w, cin * kh * kw)
    weights = kernel.astype(acc).transpose(2, 0, 1, 3).reshape(cin * kh * kw, cout)
    return (cols @ weights).reshape(n, h, w, cout)


@dataclass
class Row:
    case: ConvCase
    dtype: str
    nbmp: float | None = None
    torch_f32: float | None = None
    torch_bf16: float | None = None
    im2col: float | None = None
    check: str = "-"


def run_case(timer: _timing.Timer, nbmp: Any, torch: Any, case: ConvCase, dtypes: list[str],
             first_calls: list[tuple[str, str, float, float | None]], notes: list[str]) -> list[Row]:
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((case.n, case.h, case.w, case.cin), dtype=np.float32)
    k32 = rng.standard_normal((case.k, case.k, case.cin, case.cout), dtype=np.float32)
    k32 *= 1 / np.sqrt(case.k * case.k * case.cin)  # He-like scale: outputs of order 1
    flops = case.flops

    def gf(t: float | None) -> float | None:
        return None if t is None else flops / t / 1e9

    t_f32 = tx32 = tk32 = None
    if torch is not None:
        functional = torch.nn.functional
        # NHWC memory seen as NCHW: exactly torch's channels_last layout, no copy
        tx32 = torch.from_numpy(x32).permute(0, 3, 1, 2)
        tk32 = torch.from_numpy(k32).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        y_torch = functional.conv2d(tx32, tk32, padding="same").permute(0, 2, 3, 1).numpy()
        err = _timing.rel_error(conv2d_im2col(x32, k32), y_torch.astype(np.float64))
        if err > 1e-5:
            notes.append(f"{case}: NumPy im2col and torch float32 disagree (relative error {err:.1e})")
        t_f32 = timer.timed("torch conv f32", flops,
                            lambda: functional.conv2d(tx32, tk32, padding="same"))
    rows = []
    for dt in dtypes:
        npdt = _timing.DTYPES[dt]
        xh, kh = x32.astype(npdt), k32.astype(npdt)
        ref = conv2d_im2col(xh, kh, np.float64)
        nx, nk = nbmp.asarray(xh), nbmp.asarray(kh)

        def conv(nx=nx, nk=nk) -> Any:
            return nbmp.ops.conv2d(nx, nk, padding="same")

        t_nbmp, check = None, "skipped"
        key = f"nbmp conv2d {dt}"
        if not timer.too_slow(key, flops):
            try:
                t_first, result = _timing.first_call(conv)
            except Exception as e:  # a kernel under construction: report, keep benchmarking
                notes.append(f"nbmp conv2d {dt} {case}: failed with {type(e).__name__}: {e}")
                check = "ERROR"
            else:
                check = _timing.check_cell(_timing.rel_error(result.numpy(), ref), dt)
                t_nbmp = timer.timed(key, flops, conv)
                _timing.note_first_call(first_calls, "conv2d", dt, t_first, t_nbmp)
        t_bf16 = None
        if torch is not None and dt == "bf16":
            tx16 = tx32.to(torch.bfloat16)  # keeps channels_last
            tk16 = tk32.to(torch.bfloat16)
            t_bf16 = timer.timed("torch conv bf16", flops, lambda tx16=tx16, tk16=tk16:
                                 torch.nn.functional.conv2d(tx16, tk16, padding="same"))
        t_im2col = timer.timed(f"numpy im2col {dt}", flops,
                               lambda xh=xh, kh=kh, npdt=npdt: conv2d_im2col(xh, kh).astype(npdt))
        rows.append(Row(case, dt, gf(t_nbmp), gf(t_f32), gf(t_bf16), gf(t_im2col), check))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _timing.add_common_options(parser, DEFAULT_SHAPES,
                               "comma-separated NxHxWxCINxCOUTxK cases (stride 1, padding same)")
    args = _timing.parse_args(parser, argv)
    cases = [parse_case(s) for s in args.shapes.split(",") if s.strip()]

    nbmp, t_import, torch, torch_line = _timing.start(args)
    timer = _timing.make_timer(args)
    first_calls: list[tuple[str, str, float, float | None]] = [("import nbmp", "-", t_import, None)]
    notes: list[str] = []

    t0 = time.perf_counter()

    def one_round() -> list[Row]:
        return [row for case in cases
                for row in run_case(timer, nbmp, torch, case, args.dtypes, first_calls, notes)]

    rounds = _timing.Rounds([one_round() for _ in range(args.rounds)], args.stat)

    print(f"\n{_timing.rates_heading(args)}")
    fr, ratio = _timing.fmt_rate, rounds.ratio
    _timing.print_table(
        ["case (NxHxW Cin->Cout k)", "dtype", "nbmp", "torch f32", "torch bf16", "np im2col",
         "nbmp/torch-f32", "nbmp/torch-bf16", "nbmp/im2col", "check"],
        [[str(r.case), r.dtype, fr(r.nbmp), fr(r.torch_f32), fr(r.torch_bf16), fr(r.im2col),
          ratio(i, "nbmp", "torch_f32"), ratio(i, "nbmp", "torch_bf16"), ratio(i, "nbmp", "im2col"),
          r.check]
         for i, r in enumerate(rounds.rows)], left=2)
    if torch is None:
        print(f"  {torch_line}")

    _timing.print_closing(first_calls, ["kernel", "dtype", "first call", "steady"], notes + timer.skipped, t0)


if __name__ == "__main__":
    main()
