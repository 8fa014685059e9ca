"""Threading for the CPU kernels: the Numba threading layer, and one parallel launch at a time.

Numba runs ``parallel=True`` kernels on one of three threading layers, each with a catch:

- ``omp`` (GNU OpenMP, Numba's default pick on Linux without TBB): a process that forks after
  using it kills its children (``multiprocessing``'s default start method on Linux forks);
- ``workqueue`` (always present): aborts the process when two Python threads launch parallel
  kernels at the same time;
- ``tbb``: safe for both, but only where the TBB library is installed and loadable.

nbmp asks Numba to prefer ``tbb``, then ``workqueue`` (unless the user set
``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY``), and ``launch`` runs parallel
kernels under a process-wide lock: any number of Python threads may call nbmp at once (their
kernels take turns, each using every core), and forked children work. If the layer in use is
GNU OpenMP anyway (chosen by the user, or by other code of the process first), a forked child
gets a clear error instead of being killed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from numba.core import config

__all__ = ["launch"]

if "NUMBA_THREADING_LAYER" not in os.environ and "NUMBA_THREADING_LAYER_PRIORITY" not in os.environ:
    config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]

_lock = threading.Lock()
_parent_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_fork_safety() -> None:
    if os.getpid() == _parent_pid:
        return
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran yet in the parent: this process picks its own
        return
    if layer == "omp":
        raise RuntimeError(
            "nbmp's parallel CPU kernels cannot run in a process forked from one that used GNU "
            "OpenMP (Numba's threading layer is 'omp' here). Use multiprocessing's 'spawn' or "
            "'forkserver' start method, or run with NUMBA_THREADING_LAYER=workqueue or tbb."
        )


def launch(kernel: Callable[..., Any], *args: Any) -> Any:
    """Call the ``parallel=True`` Numba function `kernel` with `args`, one launch at a time."""
    _check_fork_safety()
    with _lock:
        return kernel(*args)
