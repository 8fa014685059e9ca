"""Half-precision matrix products: nbmp's kernels next to OpenBLAS sgemm, NumPy and torch.

Run ``python benchmarks/bench_matmul.py`` from the repository root (``--quick`` for a short
run, ``--help`` for the options). Columns, all in GFLOP/s (``2*M*N*K / t``):

* ``sgemm f32``: ``a32 @ b32`` on the float32 data the half inputs are rounded from (OpenBLAS);
* ``nbmp``: ``nbmp.ops.matmul`` / ``nbmp.ops.dense`` on nbmp Arrays made outside the timing;
* ``np upcast``: ``(a.astype(float32) @ b.astype(float32)).astype(dtype)``, ml_dtypes for bf16;
* ``torch``: ``torch.matmul`` on bfloat16 tensors (only when torch is importable): tensors
  torch allocated, or with ``--torch-memory numpy`` the NumPy arrays nbmp reads. oneDNN reads
  rows of A straight into AMX tiles: torch's own tensors are 64-byte aligned, NumPy's 16-byte
  aligned, and on these torch ran at 0.6-0.9x its speed on its own (nbmp packs A, either way).

``--layouts nn,nt,tn`` adds ``matmul`` rows with transposed operands (``nt``: ``a @ b.T`` of a
C-ordered array, as ``x @ W.T`` with torch-layout weights or a backward pass's ``g @ W.T``;
``tn``: ``a.T @ b``), the same views on every side, never copied.

Ratios are speed ratios, nbmp over the other column: above 1 means nbmp is faster. The
``dense`` rows (the non-square shapes) time ``relu(x @ kernel + bias)`` on every side: the
public ``nbmp.ops.dense``, and, when the CPU backend offers one, its gemm with the kernel
packed once beforehand (``packed`` rows; packing is not timed, as for a layer's weights).

Every result of nbmp is checked once (outside the timing) against float32 arithmetic on the
same half-precision inputs: ``check`` gives max|nbmp - ref| / max|ref|, and says ``MISMATCH``
when that is beyond a loose bound (a few roundings of the dtype).
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _timing  # first: clears the OpenBLAS overrides before NumPy loads

# isort: split

import numpy as np

DEFAULT_SHAPES = "512,1024,2048,256x1024x1024,64x784x512"
LAYOUTS = ("nn", "nt", "tn", "tt")


def parse_layouts(text: str) -> list[str]:
    """``"nn,nt"``: for each operand, ``n`` as it is or ``t`` a transposed view."""
    layouts = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not layouts or any(t not in LAYOUTS for t in layouts):
        raise argparse.ArgumentTypeError(f"layouts are {', '.join(LAYOUTS)}; got {text!r}")
    return layouts


def transposed_view(x: np.ndarray, transposed: bool) -> np.ndarray:
    """`x`, or the same values as the transposed view of a C-ordered copy of ``x.T``."""
    return np.ascontiguousarray(x.T).T if transposed else x


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"n"`` is the square ``(n, n, n)``; ``"MxKxN"`` is ``a`` (M, K) times ``b`` (K, N)."""
    parts = _timing.parse_sizes(text, "N or MxKxN", (1, 3))
    m, k, n = parts * 3 if len(parts) == 1 else parts
    return m, k, n


@dataclass
class Row:
    shape: tuple[int, int, int]
    op: str
    dtype: str
    f32: float | None = None
    nbmp: float | None = None
    upcast: float | None = None
    torch: float | None = None
    check: str = "-"


class Bench:
    def __init__(self, args: argparse.Namespace, torch: Any) -> None:
        self.args, self.torch = args, torch
        self.timer = _timing.make_timer(args)
        self.first_calls: list[tuple[str, str, str, float, float | None]] = []
        self.seen: set[tuple[str, str]] = set()
        self.notes: list[str] = []
        self.rng = np.random.default_rng(0)

    def torch_bf16(self, x32: np.ndarray, xh: np.ndarray) -> Any:
        """The torch operand for nbmp's ``xh`` (bf16 values of `x32`): a tensor torch allocates
        (``--torch-memory torch``: 64-byte aligned, as a torch user's tensors are), or the very
        array nbmp reads (``numpy``: NumPy aligns to 16 bytes only), with `x32`'s strides."""
        if self.args.torch_memory == "numpy":
            return self.torch.from_numpy(xh.view(np.int16)).view(self.torch.bfloat16)
        return self.torch.from_numpy(x32).to(self.torch.bfloat16)  # .to keeps the strides of views

    def seconds(self, key: str, flops: float, fn: Callable[[], Any]) -> float | None:
        """The block's time, or None when ``key`` was already too slow at a smaller size."""
        return self.timer.timed(key, flops, fn)

    def nbmp_block(self, label: str, dtype: str, shape: str, flops: float, fn: Callable[[], Any],
                   ref: np.ndarray) -> tuple[float | None, str]:
        """First call (recorded once per kernel and dtype), correctness check, then the block."""
        key = f"nbmp {label} {dtype}"
        if self.timer.too_slow(key, flops):
            return None, "skipped"
        try:
            t_first, result = _timing.first_call(fn)
        except Exception as e:  # a kernel under construction: report, keep benchmarking
            self.notes.append(f"{label} {dtype} {shape}: failed with {type(e).__name__}: {e}")
            return None, "ERROR"
        if hasattr(result, "numpy"):
            result = result.numpy()
        check = _timing.check_cell(_timing.rel_error(result, ref), dtype)
        t = self.seconds(key, flops, fn)
        if (label, dtype) not in self.seen:
            self.seen.add((label, dtype))
            self.first_calls.append((label, dtype, shape, t_first, t))
        return t, check


def gemm_backend() -> Any:
    """The CPU backend's gemm module when it offers ``pack_b`` and ``gemm``, else None."""
    try:
        mod = importlib.import_module("nbmp.backend.cpu.gemm")
    except ImportError:
        return None
    return mod if hasattr(mod, "pack_b") and hasattr(mod, "gemm") else None


def run_shape(bench: Bench, nbmp: Any, gemm: Any, shape: tuple[int, int, int],
              dtypes: list[str]) -> list[Row]:
    m, k, n = shape
    flops = 2.0 * m * n * k
    label = f"{m}x{k}x{n}"
    rng, torch = bench.rng, bench.torch
    a32 = rng.standard_normal((m, k), dtype=np.float32)
    b32 = rng.standard_normal((k, n), dtype=np.float32)
    bias32 = rng.standard_normal(n, dtype=np.float32)

    def gf(t: float | None) -> float | None:
        return None if t is None else flops / t / 1e9

    rows = []
    for layout in bench.args.layouts:
        op = "matmul" if layout == "nn" else f"matmul {layout}"
        av, bv = transposed_view(a32, layout[0] == "t"), transposed_view(b32, layout[1] == "t")
        t_sgemm = bench.seconds(f"sgemm f32 {layout}", flops, lambda av=av, bv=bv: av @ bv)
        for dt in dtypes:
            npdt = _timing.DTYPES[dt]
            ah, bh = av.astype(npdt), bv.astype(npdt)  # astype keeps the memory order
            ref = ah.astype(np.float32) @ bh.astype(np.float32)  # float32 rounding: far inside the bound
            na, nb = nbmp.asarray(ah), nbmp.asarray(bh)
            t_nbmp, check = bench.nbmp_block(op, dt, label, flops,
                                             lambda na=na, nb=nb: nbmp.ops.matmul(na, nb), ref)
            t_up = bench.seconds(f"numpy upcast {op} {dt}", flops, lambda ah=ah, bh=bh, npdt=npdt:
                                 (ah.astype(np.float32) @ bh.astype(np.float32)).astype(npdt))
            t_torch = None
            if torch is not None and dt == "bf16":
                ta, tb = bench.torch_bf16(av, ah), bench.torch_bf16(bv, bh)
                t_torch = bench.seconds(f"torch {op} bf16", flops, lambda ta=ta, tb=tb: torch.matmul(ta, tb))
            rows.append(Row(shape, op, dt, gf(t_sgemm), gf(t_nbmp), gf(t_up), gf(t_torch), check))
    if m == k == n:
        return rows

    # dense: relu(x @ kernel + bias), the float32 epilogue in place on the NumPy sides
    def f32_dense() -> np.ndarray:
        y = a32 @ b32
        y += bias32
        return np.maximum(y, 0, out=y)

    t_f32 = bench.seconds("sgemm f32 dense", flops, f32_dense)
    for dt in dtypes:
        npdt = _timing.DTYPES[dt]
        xh, kh, bh = a32.astype(npdt), b32.astype(npdt), bias32.astype(npdt)
        ref = np.maximum(xh.astype(np.float32) @ kh.astype(np.float32) + bh.astype(np.float32), 0)
        nx, nk, nbias = nbmp.asarray(xh), nbmp.asarray(kh), nbmp.asarray(bh)
        t_nbmp, check = bench.nbmp_block(
            "dense", dt, label, flops,
            lambda nx=nx, nk=nk, nbias=nbias: nbmp.ops.dense(nx, nk, nbias, activation="relu"), ref)

        def upcast_dense(xh=xh, kh=kh, bh=bh, npdt=npdt) -> np.ndarray:
            y = xh.astype(np.float32) @ kh.astype(np.float32)
            y += bh.astype(np.float32)
            return np.maximum(y, 0, out=y).astype(npdt)

        t_up = bench.seconds(f"numpy upcast dense {dt}", flops, upcast_dense)
        t_torch = None
        if torch is not None and dt == "bf16":
            tx, tk, tbias = (bench.torch_bf16(v, h) for v, h in ((a32, xh), (b32, kh), (bias32, bh)))
            t_torch = bench.seconds("torch dense bf16", flops,
                                    lambda tx=tx, tk=tk, tbias=tbias: torch.relu(torch.addmm(tbias, tx, tk)))
        rows.append(Row(shape, "dense", dt, gf(t_f32), gf(t_nbmp), gf(t_up), gf(t_torch), check))
        if gemm is None:
            continue
        try:
            t_pack, packed = _timing.first_call(lambda kh=kh: gemm.pack_b(kh))
        except Exception as e:  # a backend under construction: report, keep going
            bench.notes.append(f"gemm.pack_b {dt} {label}: failed with {type(e).__name__}: {e}")
            continue
        if ("pack_b", dt) not in bench.seen:
            bench.seen.add(("pack_b", dt))
            bench.first_calls.append(("pack_b", dt, f"{k}x{n}", t_pack, None))
        bias_acc = bh.astype(np.float32)
        t_packed, check = bench.nbmp_block(
            "dense packed", dt, label, flops,
            lambda xh=xh, packed=packed, npdt=npdt, bias_acc=bias_acc:
                gemm.gemm(xh, packed, npdt, bias_acc, "relu"), ref)
        rows.append(Row(shape, "dense packed", dt, gf(t_f32), gf(t_packed), gf(t_up), gf(t_torch), check))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _timing.add_common_options(parser, DEFAULT_SHAPES,
                               "comma-separated N (square) or MxKxN; the non-square ones also get dense rows")
    parser.add_argument("--layouts", type=parse_layouts, default="nn",
                        help="matmul operands: n as they are, t a transposed view (nn, nt, tn, tt)")
    parser.add_argument("--torch-memory", choices=("torch", "numpy"), default="torch",
                        help="torch's operands: tensors torch allocates (64-byte aligned), or the "
                             "NumPy arrays nbmp reads (16-byte aligned)")
    args = _timing.parse_args(parser, argv)
    shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]

    nbmp, t_import, torch, torch_line = _timing.start(args)
    gemm = gemm_backend()
    bench = Bench(args, torch)
    bench.first_calls.append(("import nbmp", "-", "-", t_import, None))

    t0 = time.perf_counter()

    def one_round() -> list[Row]:
        return [row for shape in shapes for row in run_shape(bench, nbmp, gemm, shape, args.dtypes)]

    rounds = _timing.Rounds([one_round() for _ in range(args.rounds)], args.stat)

    print(f"\n{_timing.rates_heading(args)}")
    table = [[f"{r.shape[0]}x{r.shape[1]}x{r.shape[2]}", r.op, r.dtype,
              _timing.fmt_rate(r.f32), _timing.fmt_rate(r.nbmp), _timing.fmt_rate(r.upcast),
              _timing.fmt_rate(r.torch), rounds.ratio(i, "nbmp", "f32"),
              rounds.ratio(i, "nbmp", "upcast"), rounds.ratio(i, "nbmp", "torch"), r.check]
             for i, r in enumerate(rounds.rows)]
    _timing.print_table(["M x K x N", "op", "dtype", "sgemm f32", "nbmp", "np upcast", "torch bf16",
                         "nbmp/sgemm", "nbmp/upcast", "nbmp/torch", "check"], table, left=3)
    print("dense rows: relu(x @ kernel + bias) on every side (sgemm f32 = float32 matmul plus the "
          "epilogue in NumPy);\n  packed rows: the backend gemm with the kernel packed beforehand.")
    if gemm is None:
        print("  (no packed rows: this nbmp's CPU backend has no gemm.pack_b)")
    if torch is None:
        print(f"  {torch_line}")
    else:
        memory = "the NumPy arrays nbmp reads" if args.torch_memory == "numpy" else "tensors it allocated"
        print(f"  torch read {memory} (--torch-memory)")

    _timing.print_closing(bench.first_calls, ["kernel", "dtype", "shape", "first call", "steady"],
                          bench.notes + bench.timer.skipped, t0)


if __name__ == "__main__":
    main()
