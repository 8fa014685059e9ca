"""The CPU kernels' threads: concurrent Python threads, forked children, the thread count."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time

import numpy as np
import pytest

from nbmp import dtypes
from nbmp.backend.cpu import conv2d, gemm, spin, threads
from nbmp.backend.cpu.cast import PARALLEL_MIN, cast

# bf16 runs on AMX tiles where the CPU has them (threaded with ``every_call_threaded``).
A = np.ones((200, 300), np.float16)
B = np.ones((300, 150), np.float16)
A_BF16, B_BF16 = A.astype(dtypes.bfloat16), B.astype(dtypes.bfloat16)
BIG = np.linspace(-60_000, 60_000, 2 * PARALLEL_MIN, dtype=np.float32)
# 32 channels a group: the bf16 convolution reads its tiles from the image in place on AMX
IMAGE, FILTERS = np.ones((2, 10, 20, 32), dtypes.bfloat16), np.ones((3, 3, 32, 40), dtypes.bfloat16)


def _convolution_is_right() -> bool:
    out = conv2d(IMAGE, FILTERS, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, None, np.float32)
    return bool((out == 3 * 3 * 32).all())


def _products_are_right() -> bool:
    return bool((gemm.gemm(A, B, np.float32) == 300).all()
                and (gemm.gemm(A_BF16, B_BF16, np.float32) == 300).all()
                and (cast(BIG, np.float16) == BIG.astype(np.float16)).all()
                and _convolution_is_right())


def test_kernels_from_four_python_threads_at_once(every_call_threaded):
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        results.extend(_products_are_right() for _ in range(10))

    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert results == [True] * 40


def _child(queue):
    queue.put(_products_are_right())


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_kernels_in_a_forked_child_after_the_parent_used_them(every_call_threaded):
    assert _products_are_right()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert queue.get(timeout=1) is True


def test_thread_count_can_change_and_rejects_nonsense(every_call_threaded):
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(1)
        assert _products_are_right()
        threads.set_num_threads(3)
        assert _products_are_right()
    finally:
        threads.set_num_threads(before)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match=f"Received: {bad!r}"):
            threads.set_num_threads(bad)


def test_an_error_in_a_share_reaches_the_caller():
    def share(th, nthreads, go):
        if th == nthreads - 1:
            raise ArithmeticError(f"share {th}")

    with pytest.raises(ArithmeticError, match="share"):
        threads.parallel(share, nthreads=2)


def test_more_shares_than_threads_each_run_once():
    ran: list[int] = []
    lock = threading.Lock()

    def share(th, nthreads, go):
        with lock:
            ran.append((th, nthreads))

    threads.parallel(share, nthreads=threads.get_num_threads() + 3)
    count = threads.get_num_threads() + 3
    assert sorted(ran) == [(th, count) for th in range(count)]


def test_a_share_slower_than_the_spin_and_a_pool_gone_to_sleep():
    # the caller's wait outlasts SPIN_SECONDS and falls back to sleeping; afterwards the pool's
    # threads have gone to sleep too, and the next call has to wake them
    finished: list[int] = []

    def share(th, nthreads, go):
        if th > 0:
            time.sleep(10 * threads.SPIN_SECONDS)
        finished.append(th)

    threads.parallel(share, nthreads=2)
    assert sorted(finished) == [0, 1]
    time.sleep(10 * threads.SPIN_SECONDS)
    assert _products_are_right()


def test_share_0_starts_the_other_shares_and_the_pool_does_if_it_does_not(monkeypatch):
    # a worker asleep when the call begins is posted its share at once (share 0 cannot wake it):
    # the pool's threads spin long after each call here, so that none falls asleep in between
    threads.parallel(lambda th, nthreads, go: None, nthreads=2)
    monkeypatch.setattr(threads._pool, "rounds", 100 * threads._pool.rounds)

    def run(starts: bool) -> bool:
        """Whether share 1 began while share 0 was still running."""
        began = threading.Event()
        overlapped: list[bool] = []

        def share(th, nthreads, go):
            if th == 0:
                if starts:
                    spin.start_workers(go)
                overlapped.append(began.wait(timeout=0.2))
            else:
                began.set()

        threads.parallel(share, nthreads=2)
        assert began.is_set()  # share 1 ran in the end either way
        return overlapped == [True]

    assert run(starts=True)
    assert not run(starts=False)  # posted by the pool only after share 0 returned
    assert run(starts=True)
    assert _products_are_right()


def test_shares_ending_at_any_time_around_the_spin_never_hang_the_pool():
    # the worker's share ends within or after the caller's spin, or about when the caller gives
    # up spinning (aiming at the race between a worker reporting from native code and a caller
    # going to sleep, which the GIL keeps microseconds wide); or the caller's ends last
    threads.parallel(lambda th, nthreads, go: None, nthreads=2)  # the pool, its spin measured
    never = np.zeros(1, np.int64)
    start = time.perf_counter()
    spin.wait_all(never, 1, threads._pool.rounds)
    spin_time = time.perf_counter() - start
    rng = np.random.default_rng(0)
    lengths = np.zeros((400, 2))
    lengths[:300, 1] = rng.uniform(0.7, 1.3, 300) * spin_time
    lengths[300:] = rng.choice([0.0, 0.5, 2.0], size=(100, 2)) * spin_time
    ran: list[tuple[int, int]] = []

    def share(th, nthreads, go, call):
        spin.start_workers(go)
        time.sleep(lengths[call, th])
        ran.append((call, th))

    def calls():
        for call in range(len(lengths)):
            threads.parallel(share, call, nthreads=2)

    caller = threading.Thread(target=calls, daemon=True)
    caller.start()
    caller.join(timeout=120)
    assert not caller.is_alive(), "the pool hung"
    assert sorted(ran) == [(call, th) for call in range(len(lengths)) for th in (0, 1)]


def test_spin_waits_see_a_flag_another_thread_sets():
    flags = np.zeros(2, np.int64)
    rounds = threads._spin_rounds() * 2000  # seconds, if the load were hoisted out of the loop

    def later():
        time.sleep(0.01)
        flags[1] = 5
        time.sleep(0.01)
        flags[0] = 5

    setter = threading.Thread(target=later)
    setter.start()
    assert spin.wait_while(flags, 1, 0, rounds) == 5
    assert spin.wait_all(flags, 5, rounds)
    setter.join()
    assert spin.wait_while(flags, 0, 5, 10) == 5  # unchanged: gives up after its rounds
    assert not spin.wait_all(flags, 6, 10)


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nbmp-")]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="thread placement: Linux with two or more CPUs")
def test_the_pools_threads_keep_off_the_callers_cpu():
    before, cpus = threads.get_num_threads(), os.sched_getaffinity(0)
    retired = _pool_threads()
    try:
        threads.set_num_threads(2)
        for t in retired:
            t.join(timeout=10)
        threads.parallel(lambda th, nthreads, go: None)  # a fresh pool, its thread started
        for cpu in sorted(cpus)[:2]:
            os.sched_setaffinity(0, {cpu})  # the caller on `cpu` alone
            threads.parallel(lambda th, nthreads, go: None)
            workers = _pool_threads()
            assert len(workers) == 1
            assert os.sched_getaffinity(workers[0].native_id) == cpus - {cpu}
        os.sched_setaffinity(0, cpus)
        retired = _pool_threads()
        threads.set_num_threads(len(cpus) + 1)  # more threads than CPUs: left where they are
        for t in retired:
            t.join(timeout=10)
        threads.parallel(lambda th, nthreads, go: None)  # the pool, made while any CPU may be used
        os.sched_setaffinity(0, {min(cpus)})
        threads.parallel(lambda th, nthreads, go: None)
        assert [os.sched_getaffinity(t.native_id) for t in _pool_threads()] == [cpus] * len(cpus)
    finally:
        os.sched_setaffinity(0, cpus)
        threads.set_num_threads(before)
    assert _products_are_right()


def test_small_calls_run_in_the_calling_thread_alone(monkeypatch, use_threads):
    """Up to the kernels' limits (multiply-adds; slots packed; elements cast) a call runs in the
    calling thread: handing work to the pool costs more than a second thread saves there."""
    use_threads(2)
    counts: list[int | None] = []
    parallel = threads.parallel

    def counting(share, *args, nthreads=None):
        counts.append(nthreads)
        return parallel(share, *args, nthreads=nthreads)

    monkeypatch.setattr(threads, "parallel", counting)

    def threads_of(run) -> list[int | None]:
        counts.clear()
        run()
        return counts[:]

    def product(dtype, m):  # m x 256 x 256: at the limit of AMX products with m = 256
        return lambda: gemm.gemm(np.ones((m, 256), dtype), np.ones((256, 256), dtype), np.float32)

    limit = gemm.SERIAL_MAX // (256 * 256)
    assert threads_of(product(np.float16, limit)) == [1]
    assert threads_of(product(np.float16, limit + 1)) == [2]
    if gemm.TILES in gemm._layouts(dtypes.bfloat16):  # AMX: faster, so longer alone
        limit = gemm.SERIAL_MAX_TILES // (256 * 256)
        assert threads_of(product(dtypes.bfloat16, limit))[-1] == 1
        assert threads_of(product(dtypes.bfloat16, limit + 1))[-1] == 2
    slots = gemm.PACK_SERIAL_MAX // gemm.NR  # rows of one panel of float32 slots
    assert threads_of(lambda: gemm.pack_b(np.ones((slots, gemm.NR), np.float32))) == [1]
    assert threads_of(lambda: gemm.pack_b(np.ones((slots + 1, gemm.NR), np.float32))) == [2]
    assert threads_of(lambda: cast(np.ones(PARALLEL_MIN - 1, np.float32), np.float16)) == [1]
    assert threads_of(lambda: cast(np.ones(PARALLEL_MIN, np.float32), np.float16)) == [None]  # all
