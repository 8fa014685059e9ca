"""Threads for the CPU kernels: a pool of Python threads running ``nogil`` Numba functions.

nbmp does not use Numba's ``parallel=True``. Each of Numba's threading layers has a catch:

- ``omp`` (GNU OpenMP, Numba's pick on Linux without TBB): a process that forks after using it
  kills its children (``multiprocessing``'s default start method on Linux forks);
- ``workqueue`` (always present): aborts the process when two Python threads launch parallel
  kernels at the same time;
- ``tbb``: safe for both, but only where the TBB library is installed and loadable;

and a ``parallel=True`` kernel compiles two to three times slower than the serial one.
Instead, a kernel is written as one thread's share of the work, ``share(th, nthreads, go, *args)``
compiled with ``nogil=True``, and ``parallel`` runs the shares on a process-wide pool of
Python threads (share 0 in the calling thread). Such kernels release the GIL, so the shares
run truly in parallel.

Hand-off: waking a sleeping thread costs 50-200 microseconds here, a good part of a small
product, so the pool's threads spin (``spin``, without the GIL) for ``SPIN_SECONDS`` after
their last share before they sleep, and the caller spins as long for their results. A worker
that sees work needs the GIL to run Python; were it posted while the caller holds the GIL (as
it does until its own share's native code starts), the worker would sleep on the GIL and wake
tens of microseconds later (64x784x512: the worker started 30 microseconds after the caller,
median). So share 0 posts the work itself, from native code: its first statement is
``spin.start_workers(go)`` (``go`` is empty for the other shares, and if share 0 never posts,
the pool does after it returns). Back-to-back calls then start both threads within microseconds.
At the end likewise: a worker reports its share done from native code (``spin.serve_wait``),
after its Python epilogue, so the caller that sees it finds the GIL free; were it reported
under the GIL, the caller would often sleep on the GIL (64x784x512: the worker's share ended 30
microseconds after the caller's, median, though both took 64 alone).

Placement (Linux): a spinning worker is always runnable, so the scheduler may leave it on the
caller's CPU while another CPU idles; the two shares then run one after the other, for as long
as both threads keep running (the scheduler rarely moves a thread that has just run). On a
2-core machine this was seen for tens of calls at a time: 64x784x512 took 330 microseconds
instead of 190. So before each call the pool moves its threads off the caller's CPU (their
CPU affinity: every CPU the pool's creator could use but that one), when that CPU changed,
unless there are more threads than CPUs.

Sharing out: a share must not wait for another (when the pool is busy they run one after the
other, below), but it may take work the others have not started. The AMX kernels and the
convolutions cut each share into items and ``spin.claim`` them, each share its own first,
then what is left of the others': a thread slowed down (its core busy with another program,
which on a shared virtual machine halved a CPU's AMX speed for tenths of a second at a time)
or started late does less, rather than all waiting for it.

Small calls do not come here at all: a kernel call with less work than its limit runs in the
calling thread (``gemm.thread_count``; on the 2-core virtual machine measured, a 64x256x256 bf16
product ran twice as fast alone as on two threads, and two broke even at 64x784x512).

Any number of Python threads may call nbmp at once:
a call that finds the pool busy runs all its shares in its own thread. A forked child gets a
fresh pool. The thread count is ``NUMBA_NUM_THREADS`` (default: the number of CPUs),
changeable with ``set_num_threads``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numba.core import config

from nbmp.backend.cpu.spin import serve_wait, wait_all, wait_while

__all__ = ["SPIN_SECONDS", "get_num_threads", "parallel", "set_num_threads"]

#: How long an idle pool thread, or a caller waiting for the pool, spins before it sleeps.
SPIN_SECONDS = 0.002

_num_threads = max(1, int(config.NUMBA_NUM_THREADS))


def _cpu_probe() -> Callable[[], int] | None:
    """libc's ``sched_getcpu`` (the CPU the calling thread runs on) where threads can be
    placed (Linux), else None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        return ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None


_current_cpu = _cpu_probe()
_pool: _Pool | None = None
_pool_lock = threading.Lock()  # one pool, even when several threads make the first call at once


@functools.cache
def _spin_rounds() -> int:
    """How many rounds of ``spin``'s loops take about ``SPIN_SECONDS`` here (measured once)."""
    flag = np.zeros(1, np.int64)
    wait_while(flag, 0, 0, 1)  # compile (or load from the cache) outside the timing
    wait_all(flag, 0, 1)
    sample = 4096
    start = time.perf_counter()
    wait_while(flag, 0, 0, sample)
    per_round = max(time.perf_counter() - start, 1e-9) / sample
    return max(1, int(SPIN_SECONDS / per_round))


#: ``go`` for the shares that start no workers.
_NO_GO = np.zeros(0, np.int64)


class _Pool:
    """``workers`` threads that run shares posted to them; the calling thread takes part too.

    Worker ``w`` runs the shares of generation ``posted[w]`` (a counter bumped after the job
    is stored in ``jobs[w]``: by share 0 through ``go = [generation, *posted]``, or by the
    pool) and then sets ``done[w]`` to it (from ``serve_wait``, once it holds no GIL); both
    sides spin on those counters, then sleep on ``wake`` (``sleepers`` counts who sleeps
    there). Neither sleeps while the other is about to set the counter it waits for from
    native code, which wakes no one: a worker whose ``pending`` generation is newer than the
    last it ran, nor a caller whose worker is ``finishing`` the generation it waits for.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.rounds = _spin_rounds()
        self.go = np.zeros(workers + 1, np.int64)
        self.posted = self.go[1:]
        self.pending = [0] * workers
        self.finishing = [0] * workers
        self.done = np.zeros(workers, np.int64)
        self.jobs: list[Any] = [None] * workers
        self.errors: list[BaseException | None] = [None] * workers
        self.busy = threading.Lock()  # one call at a time
        self.wake = threading.Condition()
        self.sleepers = 0
        self.generation = 0
        self.tids: list[int | None] = [None] * workers  # native thread ids, for their affinity
        allowed = os.sched_getaffinity(0) if _current_cpu is not None else set()
        # placed only when the workers fit beside the caller (else they would share fewer CPUs)
        self.cpus = allowed if len(allowed) > workers else set()
        self.kept_off = -1  # the CPU the workers are kept off
        for w in range(workers):
            threading.Thread(target=self._serve, args=(w,), name=f"nbmp-{w + 1}", daemon=True).start()

    def _serve(self, w: int) -> None:
        self.tids[w] = threading.get_native_id()
        seen = 0
        while True:
            generation = int(serve_wait(self.posted, self.done, w, seen, self.rounds))
            if generation == seen:
                with self.wake:
                    if self.pending[w] > seen:  # share 0 is about to post it: spin on
                        continue
                    self.sleepers += 1
                    while self.posted[w] == seen:
                        self.wake.wait()
                    self.sleepers -= 1
                generation = int(self.posted[w])
            seen = generation
            job, self.jobs[w] = self.jobs[w], None
            if job is None:
                self.done[w] = generation
                return  # the pool was retired
            share, ths, count, args = job
            try:
                for th in ths:
                    share(th, count, _NO_GO, *args)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self.errors[w] = error
            with self.wake:
                if self.sleepers:  # someone sleeps: report it here, and wake them
                    self.done[w] = generation
                    self.wake.notify_all()
                else:  # serve_wait reports it, after this thread let go of the GIL
                    self.finishing[w] = generation

    def _keep_off(self, cpu: int) -> None:
        """Let the workers run on any of ``cpus`` but `cpu` (the caller's), if they can."""
        if cpu == self.kept_off:  # the usual case: nothing to do
            return
        others = self.cpus - {cpu}
        if not others or None in self.tids:
            return
        try:
            for tid in self.tids:
                os.sched_setaffinity(tid, others)
        except OSError:  # the CPUs allowed changed since the pool began: leave placement alone
            self.cpus = set()
            return
        self.kept_off = cpu

    def _post(self, jobs: list[Any]) -> np.ndarray:
        """Store `jobs` for the first ``len(jobs)`` workers under a new generation; the ``go``
        that posts them from share 0, or (when a worker sleeps) ``_NO_GO``, posted already."""
        self.generation += 1
        for w, job in enumerate(jobs):
            self.errors[w] = None
            self.jobs[w] = job
        with self.wake:
            if not self.sleepers:
                self.pending[:len(jobs)] = [self.generation] * len(jobs)
                self.go[0] = self.generation
                return self.go[:len(jobs) + 1]
        self._post_rest(len(jobs))
        return _NO_GO

    def _post_rest(self, workers: int) -> None:
        """Post the generation to the first `workers` workers (where share 0 does not), waking them."""
        with self.wake:
            self.posted[:workers] = self.generation
            self.wake.notify_all()

    def _join(self, workers: int) -> None:
        if self.posted[workers - 1] != self.generation:  # share 0 did not post (start_workers)
            self._post_rest(workers)
        generation, done = self.generation, self.done[:workers]
        while not wait_all(done, generation, self.rounds):
            with self.wake:
                if any(self.finishing[w] == generation != done[w] for w in range(workers)):
                    continue  # a worker is about to report, without waking anyone: spin on
                self.sleepers += 1
                while not (done == generation).all():
                    self.wake.wait()
                self.sleepers -= 1

    def run(self, share: Callable[..., Any], count: int, args: tuple[Any, ...]) -> None:
        """Shares ``0..count-1``, share ``th`` on participant ``th % (workers + 1)`` (0: the caller)."""
        if not self.busy.acquire(blocking=False):  # another Python thread is using the pool
            for th in range(count):
                share(th, count, _NO_GO, *args)
            return
        try:
            if self.cpus:
                self._keep_off(_current_cpu())
            every = min(count, self.workers + 1)
            go = self._post([(share, range(w + 1, count, every), count, args)
                             for w in range(every - 1)])
            try:
                for th in range(0, count, every):
                    share(th, count, go, *args)
                    go = _NO_GO
            finally:
                self._join(every - 1)
            for error in self.errors[:every - 1]:
                if error is not None:
                    raise error
        finally:
            self.busy.release()

    def retire(self) -> None:
        """Let the threads end (after the call in progress, if any)."""
        with self.busy:
            self._post([None] * self.workers)
            self._post_rest(self.workers)


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # its threads did not survive the fork


os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads() -> int:
    """How many threads the CPU kernels use."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use `n` threads (>= 1) in the CPU kernels from now on."""
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads needs a positive int. Received: {n!r}")
    with _pool_lock:
        _num_threads = n
        if _pool is not None:
            _pool.retire()
            _pool = None


def parallel(share: Callable[..., Any], *args: Any, nthreads: int | None = None) -> None:
    """Run ``share(th, nthreads, go, *args)`` for every ``th`` in ``range(nthreads)``, in parallel.

    `share` must be a ``nogil`` Numba function whose first statement is
    ``spin.start_workers(go)``. Share 0 runs in the calling thread; an exception in any share
    is raised here after all have finished.
    """
    global _pool
    count = _num_threads if nthreads is None else nthreads
    if count == 1:
        share(0, 1, _NO_GO, *args)
        return
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _Pool(_num_threads - 1)
            pool = _pool
    pool.run(share, count, args)
