"""Shared helpers for the benchmark scripts: options, timing blocks, result checks, tables and
the machine description.

Import this module before NumPy. On import it removes ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` from the environment, since OpenBLAS reads them once when NumPy loads
(a forced core type or L2 size picks other sgemm kernels than the machine's own); if NumPy
was already imported with either of them set, the script starts itself again without them.

Timing model: each implementation is timed as one *block* (warm-up calls, then ``repeats``
timed calls, median and best kept), with a pause before every block. On a 2-core machine
the OpenBLAS, Numba and torch thread pools each spin for a while after their last call;
interleaving them slows all of them, so blocks are never interleaved.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Most timed calls in one block (see ``Timer``).
MAX_REPEATS = 2000
_REEXEC_FLAG = "NBMP_BENCH_REEXEC"


def scrub_openblas_env() -> list[str]:
    """Drop the OpenBLAS tuning overrides from this process's environment (returns their names).

    ``os.environ`` edits reach the C environment, so this is enough when NumPy is not loaded
    yet; otherwise the interpreter is replaced by a fresh one with the same command line.
    """
    found = [name for name in OPENBLAS_OVERRIDES if name in os.environ]
    for name in found:
        del os.environ[name]
    if found and "numpy" in sys.modules and not os.environ.get(_REEXEC_FLAG):
        os.environ[_REEXEC_FLAG] = ",".join(found)  # tells the new process what was removed
        sys.stdout.flush()
        sys.stderr.flush()
        argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
        os.execv(sys.executable, [sys.executable, *argv[1:]])
    return found or [name for name in os.environ.pop(_REEXEC_FLAG, "").split(",") if name]


SCRUBBED = scrub_openblas_env()

import ml_dtypes  # noqa: E402 - only after the scrub
import numpy as np  # noqa: E402

DTYPES = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
_ALIASES = {"f16": "f16", "fp16": "f16", "float16": "f16", "half": "f16",
            "bf16": "bf16", "bfloat16": "bf16"}
#: Loose bound on max|result - ref| / max|ref|: a few units of the output dtype's rounding.
TOLERANCE = {"f16": 4 * 2.0**-11, "bf16": 4 * 2.0**-8}


# --- command line -------------------------------------------------------------------------


def parse_dtypes(text: str) -> list[str]:
    """``"f16,bf16"`` (aliases: fp16, float16, half, bfloat16) as a list of short names."""
    try:
        names = [_ALIASES[t.strip().lower()] for t in text.split(",") if t.strip()]
    except KeyError as e:
        raise argparse.ArgumentTypeError(f"unknown dtype {e.args[0]!r}; use f16, bf16") from None
    return list(dict.fromkeys(names))


def add_common_options(parser: argparse.ArgumentParser, shapes: str, shapes_help: str) -> None:
    parser.add_argument("--shapes", default=shapes, help=shapes_help)
    parser.add_argument("--dtypes", type=parse_dtypes, default="f16,bf16", help="f16 and/or bf16")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per block")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before each block")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of sleep before each block")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds a block of fast calls runs at least (more repeats, up to "
                             f"{MAX_REPEATS}): the first calls after the pause, slower while idle CPUs "
                             "wake up, then weigh little")
    parser.add_argument("--budget", type=float, default=4.0,
                        help="seconds per block: slow implementations get fewer repeats (at least 3, or "
                             "one when a single call takes longer), and are skipped at sizes where their "
                             "rate so far predicts a call longer than 3 budgets")
    parser.add_argument("--stat", choices=("median", "best"), default="median",
                        help="which time of a block the table reports")
    parser.add_argument("--rounds", type=int, default=argparse.SUPPRESS,
                        help="passes over the whole table, one after another (default 3, 1 with --quick); "
                             "each cell reports the median of its rounds (their best, with --stat best), "
                             "so that on a machine whose speed drifts (a shared virtual machine) every "
                             "column meets the fast and slow spells alike, and from 3 rounds on each ratio "
                             "shows its lowest and highest round")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch columns even if installed")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 repeats, 1 warm-up, 0.25 s pauses, 1 s budget, 1 round")


def parse_sizes(text: str, form: str, counts: Sequence[int]) -> list[int]:
    """``"AxBxC"`` as positive ints, as many as one of `counts`; else a SystemExit naming `form`.

    >>> parse_sizes("32x26X26x32", "NxHxWxC", (4,))
    [32, 26, 26, 32]
    """
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in counts or min(parts) < 1:
        raise SystemExit(f"--shapes: each case must be {form} with positive sizes, got {text!r}")
    return parts


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.pause, args.budget, args.min_time = 3, 1, 0.25, 1.0, 0.05
    if "rounds" not in vars(args):  # not given (SUPPRESS keeps "(default: None)" out of --help)
        args.rounds = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def make_timer(args: argparse.Namespace) -> Timer:
    return Timer(repeats=args.repeats, warmup=args.warmup, pause_s=args.pause, budget_s=args.budget,
                 min_time_s=args.min_time, stat=args.stat)


def _of_rounds(args: argparse.Namespace) -> str:
    return f", {args.stat} of {args.rounds} rounds" if args.rounds > 1 else ""


def settings_line(args: argparse.Namespace) -> str:
    return (f"blocks: {args.warmup} warm-up, {args.repeats} repeats (more to fill {args.min_time} s), "
            f"{args.stat} reported{_of_rounds(args)}, "
            f"{args.pause} s pause, {args.budget} s budget")


def rates_heading(args: argparse.Namespace) -> str:
    """The line above a table of rates: which statistic it shows."""
    spread = " [lowest-highest round]" if args.rounds >= 3 else ""
    paired = (f", the median of each round's own ratio{spread}"
              if args.rounds > 1 and args.stat == "median" else "")
    return (f"GFLOP/s ({args.stat} of each block{_of_rounds(args)}; "
            f"ratios are nbmp's speed over the other column's{paired})")


def merge_rounds(rounds: Sequence[Sequence[Any]], stat: str) -> list[Any]:
    """The rows of several passes over one table (dataclasses, in the same order) as one.

    A rate (float, or None where skipped) becomes the highest of the rounds for ``stat ==
    "best"``, else their median; a ``check`` cell the first that is not "ok"; anything else
    is the first round's.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class R:
    ...     name: str
    ...     rate: float | None
    ...     check: str = "ok"
    >>> merge_rounds([[R("a", 1.0), R("b", None)], [R("a", 3.0, "MISMATCH"), R("b", 2.0)]], "best")
    [R(name='a', rate=3.0, check='MISMATCH'), R(name='b', rate=2.0, check='ok')]
    """
    merged = []
    for cells in zip(*rounds, strict=True):
        first = cells[0]
        values = {}
        for f in fields(first):
            column = [getattr(c, f.name) for c in cells]
            if f.name == "check":
                values[f.name] = next((v for v in column if not str(v).startswith("ok")), column[0])
            elif all(v is None or isinstance(v, float) for v in column):
                rates = [v for v in column if v is not None]
                best = max if stat == "best" else statistics.median
                values[f.name] = best(rates) if rates else None
            else:
                values[f.name] = column[0]
        merged.append(replace(first, **values))
    return merged


class Rounds:
    """Several passes over one table: ``rows`` merged as by ``merge_rounds``, and ``ratio``.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class R:
    ...     mine: float | None
    ...     theirs: float | None
    >>> t = Rounds([[R(1.0, 2.0)], [R(3.0, 1.0)], [R(2.0, 4.0)]], "median")
    >>> t.rows, t.ratio(0, "mine", "theirs")  # rounds' ratios 0.5, 3 and 0.5; medians 2 and 2
    ([R(mine=2.0, theirs=2.0)], '0.50x [0.50-3.00]')
    >>> Rounds(t.rounds, "best").ratio(0, "mine", "theirs")
    '0.75x'
    """

    def __init__(self, rounds: Sequence[Sequence[Any]], stat: str) -> None:
        self.rounds, self.stat = [list(r) for r in rounds], stat
        self.rows = merge_rounds(self.rounds, stat)

    def ratio(self, index: int, num: str, den: str) -> str:
        """Row ``index``'s ``num / den`` as ``"1.23x"``. With ``stat == "median"`` it is the median
        over the rounds of each round's own ratio: the two blocks of a round ran seconds apart,
        so a change of the machine's speed between rounds (a shared virtual machine's slow and
        fast spells) cancels out of it, and the lowest and highest round follow in brackets (from
        three rounds on), to show how far one round's ratio can be trusted on this machine.
        With ``"best"``, the best rate over the best rate."""
        if self.stat == "best":
            row = self.rows[index]
            return fmt_ratio(getattr(row, num), getattr(row, den))
        pairs = ((getattr(r[index], num), getattr(r[index], den)) for r in self.rounds)
        ratios = [n / d for n, d in pairs if n is not None and d]
        if not ratios:
            return "-"
        spread = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if len(ratios) >= 3 else ""
        return f"{statistics.median(ratios):.2f}x{spread}"


# --- correctness --------------------------------------------------------------------------


def rel_error(result: Any, ref: np.ndarray) -> float:
    """max|result - ref| / max|ref| in float64 (inf when the result has a NaN or an inf)."""
    got = np.asarray(result, dtype=np.float64)
    if got.shape != ref.shape or not np.isfinite(got).all():
        return float("inf")
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(got - ref).max()) / scale


def check_cell(err: float, dtype: str) -> str:
    """``ok 3e-04`` within the loose bound for `dtype`, else ``MISMATCH 1.2e-01``."""
    return f"ok {err:.0e}" if err <= TOLERANCE[dtype] else f"MISMATCH {err:.1e}"


# --- timing -------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall times (seconds) of one block. ``single``: the warm-up call alone took longer than the
    block's budget, so that call is the only sample."""

    times: list[float] = field(default_factory=list)
    single: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    def seconds(self, stat: str) -> float:
        return self.best if stat == "best" else self.median


class Timer:
    """Times blocks: pause, ``warmup`` calls, then ``repeats`` timed calls.

    A block whose warm-up call is slow gets fewer repeats (at least ``min_repeats``), so
    that one slow implementation keeps to roughly ``budget_s`` per block; a warm-up call
    longer than the whole budget is taken as the block's only sample. A block of fast calls
    gets more repeats (at most ``MAX_REPEATS``), to run for about ``min_time_s``: after the
    pause the first calls of every implementation are slow (on a virtual machine, for a few
    milliseconds, while the idle virtual CPUs are woken), and a block of ten 0.2 ms calls
    would measure mostly that.
    """

    #: Skip a block whose predicted single call exceeds this many budgets.
    SKIP_FACTOR = 3.0

    def __init__(self, repeats: int = 10, warmup: int = 2, pause_s: float = 0.5,
                 budget_s: float = 4.0, min_repeats: int = 3, stat: str = "median",
                 min_time_s: float = 0.0) -> None:
        self.repeats, self.warmup, self.pause_s = repeats, max(warmup, 1), pause_s
        self.min_time_s = min_time_s
        self.budget_s, self.min_repeats, self.stat = budget_s, min(min_repeats, repeats), stat
        self.rates: dict[str, float] = {}
        self.skipped: list[str] = []

    def predicted(self, key: str, work: float) -> float | None:
        """Seconds one call of ``key`` should take for ``work``, from its last measured rate."""
        rate = self.rates.get(key)
        return None if rate is None else work / rate

    def too_slow(self, key: str, work: float) -> bool:
        """True (and noted in ``skipped``) when ``key`` is predicted to overrun its budget."""
        guess = self.predicted(key, work)
        if guess is None or guess <= self.SKIP_FACTOR * self.budget_s:
            return False
        self.skipped.append(f"{key}: skipped at work {work:.3g}, predicted {guess:.1f} s per call "
                            f"(raise --budget to {guess / self.SKIP_FACTOR:.0f} or more to time it)")
        return True

    def timed(self, key: str, work: float, fn: Callable[[], Any]) -> float | None:
        """Seconds per call of ``fn`` (the reported statistic), or None when skipped as too slow.
        ``work`` (e.g. flops) lets later, larger cases of ``key`` be predicted."""
        if self.too_slow(key, work):
            return None
        t = self.block(fn).seconds(self.stat)
        self.rates[key] = work / t
        return t

    def pause(self) -> None:
        """Let the previous block's thread pool go idle."""
        time.sleep(self.pause_s)

    def block(self, fn: Callable[[], Any]) -> Timing:
        self.pause()
        t_call = 0.0
        for _ in range(self.warmup):
            t0 = time.perf_counter()
            fn()
            t_call = time.perf_counter() - t0
            if t_call > self.budget_s:
                return Timing([t_call], single=True)
        n = self.repeats
        if t_call > 0 and t_call * n > self.budget_s:
            n = max(self.min_repeats, math.ceil(self.budget_s / t_call))
        elif t_call > 0 and t_call * n < self.min_time_s:
            n = min(MAX_REPEATS, math.ceil(self.min_time_s / t_call))
        timing = Timing()
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            timing.times.append(time.perf_counter() - t0)
        return timing


def start(args: argparse.Namespace) -> tuple[Any, float, Any, str]:
    """Import nbmp (timed: its first call) and torch (unless ``--no-torch``), and print the
    machine: ``(nbmp, seconds its import took, torch or None, a line describing torch)``."""
    import importlib

    t_import, nbmp = first_call(lambda: importlib.import_module("nbmp"))
    torch, torch_line = import_torch(args.no_torch)
    describe_machine([torch_line, f"nbmp {nbmp.__version__}; {settings_line(args)}"])
    return nbmp, t_import, torch, torch_line


def upcast_table_main(description: str, argv: Sequence[str] | None, default_shapes: str, shapes_help: str,
                      parse_case: Callable[[str], Any], run_case: Callable[..., list[Any]],
                      label_headers: Sequence[str], labels: Callable[[Any], list[str]], unit: str,
                      digits: int, kernel_header: str, upcast_header: str = "np upcast") -> None:
    """The whole of a script whose rows hold the rates ``nbmp``, ``upcast``, ``torch_f32``,
    ``torch_bf16`` and a ``check`` (``RateRow``: bench_pool, bench_activations, bench_arithmetic): options,
    `args.rounds` passes of ``run_case(timer, nbmp, torch, case, dtypes, first_calls)`` over the
    parsed cases, the table (`labels` gives a row's first cells, under `label_headers`; rates in
    `unit`; the ``upcast`` column headed `upcast_header`), the first calls."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_common_options(parser, default_shapes, shapes_help)
    args = parse_args(parser, argv)
    cases = [parse_case(s) for s in args.shapes.split(",") if s.strip()]

    nbmp, t_import, torch, torch_line = start(args)
    timer = make_timer(args)
    first_calls: list[tuple[str, str, float, float | None]] = [("import nbmp", "-", t_import, None)]

    t0 = time.perf_counter()
    rounds = Rounds([[row for case in cases
                      for row in run_case(timer, nbmp, torch, case, args.dtypes, first_calls)]
                     for _ in range(args.rounds)], args.stat)

    print(f"\n{rates_heading(args).replace('GFLOP/s', unit)}")
    others = ("upcast", "torch_f32", "torch_bf16")
    print_table(
        [*label_headers, "nbmp", upcast_header, "torch f32", "torch bf16",
         f"nbmp/{upcast_header.split()[-1]}", "nbmp/torch-f32", "nbmp/torch-bf16", "check"],
        [[*labels(r), *(fmt_rate(getattr(r, k), digits) for k in ("nbmp", *others)),
          *(rounds.ratio(i, "nbmp", k) for k in others), r.check]
         for i, r in enumerate(rounds.rows)], left=len(label_headers))
    if torch is None:
        print(f"  {torch_line}")

    print_closing(first_calls, [kernel_header, "dtype", "first call", "steady"], timer.skipped, t0)


@dataclass
class RateRow:
    """A row of an ``upcast_table_main`` table: its case (a shape or an element count), the
    operation, the dtype, the rates (None where not measured) and the ``check`` cell."""
    case: Any
    op: str
    dtype: str
    nbmp: float | None = None
    upcast: float | None = None
    torch_f32: float | None = None
    torch_bf16: float | None = None
    check: str = "-"


def note_first_call(first_calls: list[tuple[str, str, float, float | None]], op: str, dtype: str,
                    t_first: float, t_steady: float | None) -> None:
    """Add an operation's first call to `first_calls`, once per operation and dtype."""
    if not any(f[0] == op and f[1] == dtype for f in first_calls):
        first_calls.append((op, dtype, t_first, t_steady))


def first_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by one call of ``fn`` (a first call: compilation or cache load) and its result."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# --- formatting ---------------------------------------------------------------------------


def fmt_rate(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_ratio(num: float | None, den: float | None) -> str:
    """``num / den`` as ``"1.23x"``; pass rates (nbmp's first) so that above 1 means nbmp is faster."""
    if num is None or den is None or den <= 0:
        return "-"
    return f"{num / den:.2f}x"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> None:
    """A plain text table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).ljust(w) if i < left else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


# --- machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for row in f:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def blas_description() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older NumPy or an unusual build: just say so
        return "unknown"
    text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    config = blas.get("openblas configuration")
    return f"{text} ({config})" if config else text


def describe_machine(extra: Sequence[str] = ()) -> None:
    """Print the CPU, cores, load, library versions, thread counts and BLAS."""
    import numba

    print(f"CPU: {cpu_model()}; {usable_cores()} usable cores (os.cpu_count()={os.cpu_count()}), "
          f"host ISA for Numba: {numba_cpu_name()}")
    print(load_line())
    from nbmp.backend.cpu import gemm, threads

    bf16_path = {gemm.TILES: "AMX tiles (tdpbf16ps)", True: "AVX512-BF16 pairs (vdpbf16ps)",
                 False: "float32 FMA"}[gemm._layouts(ml_dtypes.bfloat16)[0]]
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"ml_dtypes {ml_dtypes.__version__}; nbmp kernels on {threads.get_num_threads()} threads, "
          f"bf16 x bf16 on {bf16_path}")
    print(f"numpy BLAS: {blas_description()}")
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
               if k in os.environ}
    if threads:
        print("thread settings: " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    if SCRUBBED:
        print(f"removed from the environment before NumPy loaded: {', '.join(SCRUBBED)}")
    for row in extra:
        print(row)


def load_line() -> str:
    """The 1-minute load average, with a warning when other work is likely competing."""
    load = os.getloadavg()[0]
    text = f"load average {load:.2f} (other busy processes distort every number)"
    if load >= 0.5 * usable_cores():
        text = f"WARNING: the machine is busy, {text}"
    return text


def print_closing(first_calls: Sequence[Sequence[Any]], headers: Sequence[str], notes: Sequence[str],
                  t0: float) -> None:
    """The first call of each nbmp kernel next to its steady state (each row's last two cells,
    seconds or None), the notes once each, then the footer."""
    print("\nnbmp first calls (compilation or on-disk cache load) vs the steady state:")
    print_table(headers, [[*row[:-2], fmt_seconds(row[-2]), fmt_seconds(row[-1])] for row in first_calls],
                left=len(headers) - 2)
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    print_footer(t0)


def print_footer(t0: float) -> None:
    """The load now and the elapsed time since ``t0``."""
    print(f"\n{load_line()}; "
          f"benchmark took {time.perf_counter() - t0:.1f} s")


def numba_cpu_name() -> str:
    try:
        import llvmlite.binding as ll

        return ll.get_host_cpu_name()
    except Exception:  # informational only
        return "?"


# --- optional torch -----------------------------------------------------------------------


def import_torch(disabled: bool) -> tuple[Any, str]:
    """``(torch module or None, a line describing it)``; torch is optional, never required."""
    if disabled:
        return None, "torch: disabled by --no-torch (its columns are skipped)"
    try:
        import torch
    except ImportError:
        return None, "torch: not installed (its columns are skipped; it is not an nbmp dependency)"
    return torch, f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
