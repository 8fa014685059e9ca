"""Spin-waiting without the GIL: the native half of ``threads``' hand-off between threads.

Waking a sleeping thread costs tens to hundreds of microseconds (more on a virtual machine,
whose idle virtual CPU has to be woken by the host), as much as a whole 512 x 512 product
takes. So a thread that expects work or a result soon watches a flag in a loop instead, for a
bounded number of rounds, as BLAS libraries do. These loops are ``nogil`` Numba functions, so
the other threads run Python (and take the GIL) meanwhile.

The flags are ``int64`` NumPy arrays. Another thread writes them, from Python under the GIL or
from native code with an atomic release store, so every write it made before is visible once the
flag is; the loops read them with an atomic acquire load (a plain load could legally be hoisted
out of the loop by LLVM) and give way between reads (``sched_yield``), so a spinning thread
never keeps a runnable one waiting.

>>> import numpy as np
>>> flags = np.zeros(2, np.int64)
>>> wait_while(flags, 1, 0, 100)   # flags[1] stays 0: gives up after 100 rounds
0
>>> flags[:] = 7
>>> wait_all(flags, 7, 100)        # all already 7: returns at once
True
>>> start_workers(np.array([8, 7, 7]))   # what a share running in the caller does first
"""

from __future__ import annotations

import platform
import sys

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["KERNEL_VERSION", "claim", "publish", "serve_wait", "start_workers", "wait_all", "wait_for",
           "wait_while"]

#: Bumped with every change to the code here: kernels elsewhere call ``start_workers``, and their
#: cached machine code holds a copy of it (see ``gemm.KERNEL_VERSION``).
KERNEL_VERSION = "spin-3"

#: How a spinning thread gives way between reads: ``sched_yield`` where there is one (POSIX), as
#: OpenBLAS's threads do; on Windows the CPU's spin-loop hint (x86 ``pause``, Arm ``yield``;
#: ``platform.machine()`` says AMD64 / ARM64 there). ``pause`` alone measured badly on a virtual
#: machine: the hypervisor takes a pausing loop for a lock holder's victim and deschedules the
#: virtual CPU, for milliseconds at a time.
_YIELD_CALL = sys.platform != "win32"
_HINT = {"amd64": ("llvm.x86.sse2.pause", []),
         "arm64": ("llvm.aarch64.hint", [1])}.get(platform.machine().lower())


def _is_flag(flags, i):
    return (isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.ndim == 1
            and isinstance(i, types.Integer))


def _flag_pointer(context, builder, sig, args):
    """Pointer to ``flags[i]`` for an intrinsic called as ``(flags, i, ...)`` (no bounds check)."""
    array = context.make_array(sig.args[0])(context, builder, args[0])
    index = context.cast(builder, args[1], sig.args[1], types.intp)
    return cgutils.get_item_pointer(context, builder, sig.args[0], array, [index], wraparound=False)


@intrinsic
def _load_acquire(typingctx, flags, i):
    """``flags[i]`` of a 1-D int64 array, read with an atomic acquire load (no bounds check)."""
    if not _is_flag(flags, i):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_flag_pointer(context, builder, sig, args), "acquire", 8)

    return types.int64(flags, i), codegen


@intrinsic
def _store_release(typingctx, flags, i, value):
    """``flags[i] = value`` for a 1-D int64 array, an atomic release store (no bounds check):
    a thread that reads the new value with ``_load_acquire`` also sees every earlier write."""
    if not (_is_flag(flags, i) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(value, _flag_pointer(context, builder, sig, args), "release", 8)
        return context.get_dummy_value()

    return types.none(flags, i, value), codegen


@intrinsic
def claim(typingctx, flags, i):
    """``flags[i] += 1`` as one atomic step (a 1-D int64 array, no bounds check); returns the
    value before. Threads that share work take the next item this way: each item goes to
    exactly one of them, whichever comes first, so a faster thread takes more."""
    if not _is_flag(flags, i):
        return None

    def codegen(context, builder, sig, args):
        one = ir.Constant(ir.IntType(64), 1)
        return builder.atomic_rmw("add", _flag_pointer(context, builder, sig, args), one, "acq_rel")

    return types.int64(flags, i), codegen


@intrinsic
def _give_way(typingctx):
    """Let other threads run for a moment (see ``_YIELD_CALL``)."""

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        if _YIELD_CALL:
            call = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, []), "sched_yield")
            builder.call(call, [])
        elif _HINT is not None:
            name, constants = _HINT
            hint = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i32] * len(constants)), name)
            builder.call(hint, [ir.Constant(i32, c) for c in constants])
        return context.get_dummy_value()

    return types.none(), codegen


@njit(cache=True, nogil=True)
def wait_while(flags, i, value, rounds):
    """Spin while ``flags[i] == value``, at most `rounds` times; return ``flags[i]``."""
    for _ in range(rounds):
        now = _load_acquire(flags, i)
        if now != value:
            return now
        _give_way()
    return _load_acquire(flags, i)


@njit(cache=True, nogil=True)
def serve_wait(posted, done, i, seen, rounds):
    """``done[i] = seen``, then ``wait_while(posted, i, seen, rounds)``: how a worker reports a
    job finished without holding the GIL, so the caller that sees it can take the GIL at once."""
    _store_release(done, i, seen)
    return wait_while(posted, i, seen, rounds)


@njit(cache=True, nogil=True)
def wait_all(flags, value, rounds):
    """Spin until every ``flags[j] == value``, at most `rounds` times; return whether they are."""
    for _ in range(rounds):
        j = 0
        while j < flags.size and _load_acquire(flags, j) == value:
            j += 1
        if j == flags.size:
            return True
        _give_way()
    return False


@njit(cache=True, nogil=True)
def publish(flags, i, value):
    """``flags[i] = value`` (a release store): whoever reads it with ``wait_for`` also sees every
    write this thread made before, such as the data it announces."""
    _store_release(flags, i, value)


@njit(cache=True, nogil=True)
def wait_for(flags, i):
    """Spin, giving way between reads, until ``flags[i]`` is not 0; return it. Only for a
    value that a running thread is about to publish (it has no bound)."""
    while True:
        now = _load_acquire(flags, i)
        if now != 0:
            return now
        _give_way()


@njit(cache=True, nogil=True)
def start_workers(go):
    """Set ``go[1:]`` (the flags workers spin on) to ``go[0]``: a no-op for an empty `go`.

    Called first thing by a share that ``threads.parallel`` runs in the calling thread, so that
    the workers start while the caller holds no GIL (see ``threads``).
    """
    for j in range(1, go.size):
        _store_release(go, j, go[0])
