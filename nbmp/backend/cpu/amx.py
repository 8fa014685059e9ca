"""Intel AMX tiles for Numba kernels: ``tdpbf16ps``, a 16 x 16 x 32 bf16 product per instruction.

AMX (Sapphire Rapids and later Xeons) adds eight tile registers of up to 16 rows x 64 bytes
and a unit that multiplies them: ``tdpbf16ps`` adds the product of a 16 x 32 bf16 tile ``A``
and a 32 x 16 bf16 tile ``B`` to a 16 x 16 float32 tile ``C``, 8,192 multiply-adds, as
many as 256 AVX-512 FMAs. ``B`` lies in memory as pairs, as ``vdpbf16ps`` reads them: row
``q`` of the tile holds ``B[2q, c]`` and ``B[2q + 1, c]`` side by side, for each column ``c``.
Like ``vdpbf16ps`` it reads bf16 subnormals as zero and flushes subnormal results.

The intrinsics here take tile numbers as literals (LLVM's ``llvm.x86.tileloadd64`` family,
as C's ``_tile_loadd(1, p, stride)``): a kernel names its registers, and ``configure``
(``ldtilecfg``) with ``CONFIG`` gives every tile 16 rows of 64 bytes. They type only where
the compile target has AMX-BF16 (``TARGET_AMX``; ``NUMBA_CPU_NAME=generic`` has not).

Linux hands AMX to a process only on request (``arch_prctl(ARCH_REQ_XCOMP_PERM)``): a tile
instruction before that kills the process with SIGILL. ``available()`` makes the request
once, and says whether kernels may use the tiles.

>>> int(CONFIG[0]), [int(b) for b in CONFIG[16:32].view(np.uint16)], [int(r) for r in CONFIG[48:56]]
(1, [64, 64, 64, 64, 64, 64, 64, 64], [16, 16, 16, 16, 16, 16, 16, 16])
>>> available() <= TARGET_AMX   # never without the instructions in the compile target
True
"""

from __future__ import annotations

import ctypes
import functools
import sys

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from nbmp.backend.cpu.simd import target_features

__all__ = ["CONFIG", "KERNEL_VERSION", "TARGET_AMX", "available", "configure", "dot_bf16", "load",
           "release", "store", "zero"]

#: Bumped with every change to the intrinsics here (see ``gemm.KERNEL_VERSION``).
KERNEL_VERSION = "amx-1"

#: Whether Numba compiles for a CPU with AMX tiles and their bf16 product.
TARGET_AMX = {"+amx-tile", "+amx-bf16"} <= set(target_features().split(","))

#: ``ldtilecfg``'s 64-byte operand: palette 1, tiles 0-7 of 16 rows x 64 bytes.
CONFIG = np.zeros(64, np.uint8)
CONFIG[0] = 1
CONFIG[16:32].view(np.uint16)[:] = 64
CONFIG[48:56] = 16

_ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA, _SYS_ARCH_PRCTL_X86_64 = 0x1023, 18, 158


@functools.cache
def available() -> bool:
    """Whether kernels may run tile instructions: the target has them and Linux granted them."""
    if not (TARGET_AMX and sys.platform == "linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_ARCH_PRCTL_X86_64, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0


_I8, _I64 = ir.IntType(8), ir.IntType(64)
_I8P = _I8.as_pointer()


def _call(builder, name, argtys, args):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), argtys), name)
    builder.call(fn, args)


def _tiles(*ts):
    """The literal tile numbers of `ts` (0-7), or None."""
    if TARGET_AMX and all(isinstance(t, types.IntegerLiteral) and 0 <= t.literal_value < 8 for t in ts):
        return [ir.Constant(_I8, t.literal_value) for t in ts]
    return None


def _byte_pointer(context, builder, arrty, arr, idxty, idx):
    """``&arr.flat[idx]`` (1-D contiguous array) as ``i8*``."""
    data = context.make_array(arrty)(context, builder, arr).data
    idx = context.cast(builder, idx, idxty, types.intp)
    return builder.bitcast(builder.gep(data, [idx], inbounds=True), _I8P)


@intrinsic
def configure(typingctx, config):
    """``ldtilecfg``: shape the tiles as the 64 bytes of `config` say (``CONFIG``) and zero them."""
    if not (TARGET_AMX and isinstance(config, types.Array) and config.dtype == types.uint8):
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(ir.IntType(64), 0)
        _call(builder, "llvm.x86.ldtilecfg", [_I8P],
              [_byte_pointer(context, builder, sig.args[0], args[0], types.int64, zero)])
        return context.get_dummy_value()

    return types.void(config), codegen


@intrinsic
def release(typingctx):
    """``tilerelease``: back to the initial state (the OS then saves no tile data for the thread)."""
    if not TARGET_AMX:
        return None

    def codegen(context, builder, sig, args):
        _call(builder, "llvm.x86.tilerelease", [], [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic(prefer_literal=True)
def zero(typingctx, tile):
    """``tilezero``: tile `tile` (a literal) to zeros."""
    consts = _tiles(tile)
    if consts is None:
        return None

    def codegen(context, builder, sig, args):
        _call(builder, "llvm.x86.tilezero", [_I8], consts)
        return context.get_dummy_value()

    return types.void(tile), codegen


def _memory_op(llvm_name, doc):
    @intrinsic(prefer_literal=True)
    def op(typingctx, tile, arr, i, stride):
        consts = _tiles(tile)
        if consts is None or not (isinstance(arr, types.Array) and arr.ndim == 1
                                  and isinstance(i, types.Integer) and isinstance(stride, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            ptr = _byte_pointer(context, builder, sig.args[1], args[1], sig.args[2], args[2])
            step = context.cast(builder, args[3], sig.args[3], types.int64)
            _call(builder, llvm_name, [_I8, _I8P, _I64], [consts[0], ptr, step])
            return context.get_dummy_value()

        return types.void(tile, arr, i, stride), codegen

    op.__doc__ = doc
    return op


load = _memory_op("llvm.x86.tileloadd64", "``tileloadd``: tile `tile` from the rows at ``arr[i:]``, "
                  "`stride` bytes apart (``arr`` 1-D, contiguous; unchecked).")
store = _memory_op("llvm.x86.tilestored64", "``tilestored``: tile `tile` to the rows at ``arr[i:]``, "
                   "`stride` bytes apart (``arr`` 1-D, contiguous; unchecked).")


@intrinsic(prefer_literal=True)
def dot_bf16(typingctx, c, a, b):
    """``tdpbf16ps``: float32 tile `c` += bf16 tile `a` @ bf16 pairs tile `b` (literal tile numbers)."""
    consts = _tiles(c, a, b)
    if consts is None:
        return None

    def codegen(context, builder, sig, args):
        _call(builder, "llvm.x86.tdpbf16ps", [_I8] * 3, consts)
        return context.get_dummy_value()

    return types.void(c, a, b), codegen
