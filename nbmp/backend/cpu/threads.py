"""Threads for the CPU kernels: a pool of Python threads running ``nogil`` Numba functions.

nbmp does not use Numba's ``parallel=True``. Each of Numba's threading layers has a catch:

- ``omp`` (GNU OpenMP, Numba's pick on Linux without TBB): a process that forks after using it
  kills its children (``multiprocessing``'s default start method on Linux forks);
- ``workqueue`` (always present): aborts the process when two Python threads launch parallel
  kernels at the same time;
- ``tbb``: safe for both, but only where the TBB library is installed and loadable;

and a ``parallel=True`` kernel compiles two to three times slower than the serial one.
Instead, a kernel is written as one thread's share of the work, ``share(th, nthreads, *args)``
compiled with ``nogil=True``, and ``parallel`` runs the shares on a process-wide pool of Python
threads (share 0 in the calling thread). Such kernels release the GIL, so the shares run truly
in parallel; any number of Python threads may call nbmp at once (their shares queue on the one
pool); a forked child gets a fresh pool. The thread count is ``NUMBA_NUM_THREADS`` (default:
the number of CPUs), changeable with ``set_num_threads``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from numba.core import config

__all__ = ["get_num_threads", "parallel", "set_num_threads"]

_num_threads = max(1, int(config.NUMBA_NUM_THREADS))
_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _pool
    _pool = None  # its threads did not survive the fork


os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads() -> int:
    """How many threads the CPU kernels use."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use `n` threads (>= 1) in the CPU kernels from now on."""
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads needs a positive int. Received: {n!r}")
    _num_threads = n
    if _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None


def parallel(share: Callable[..., Any], *args: Any, nthreads: int | None = None) -> None:
    """Run ``share(th, nthreads, *args)`` for every ``th`` in ``range(nthreads)``, in parallel.

    `share` must be a ``nogil`` Numba function. Share 0 runs in the calling thread; an
    exception in any share is raised here after all have finished.
    """
    global _pool
    count = _num_threads if nthreads is None else nthreads
    if count == 1:
        share(0, 1, *args)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="nbmp")
    futures = [_pool.submit(share, th, count, *args) for th in range(1, count)]
    try:
        share(0, count, *args)
    finally:
        for future in futures:
            future.result()
