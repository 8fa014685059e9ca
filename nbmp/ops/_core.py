"""What every op shares: turning arguments into Arrays, picking the backend and the array module
(NumPy or CuPy, which mirror each other) for the operands' device, elementwise rules."""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array, array_module, asarray
from nbmp.backend import for_device
from nbmp.policy import floatx


def is_int(value: Any) -> bool:
    """Whether `value` is an integer, a Python or a NumPy one (booleans are not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether `value` is a real number, a Python or a NumPy one (booleans are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_axes(axis: Any) -> Any:
    """An axis argument as NumPy takes it: None, an int, or a tuple of ints (from any sequence
    of them); anything else (``True``, ``"0"``, ``1.0``) is a TypeError saying what came."""
    if axis is None or is_int(axis):
        return axis
    if isinstance(axis, (list, tuple)) and all(is_int(a) for a in axis):
        return tuple(axis)
    raise TypeError(f"An axis must be None, an int or a sequence of ints. Received: {axis!r}")


def as_flag(value: Any, name: str) -> bool:
    """A bool argument such as ``keepdims``, as a bool (NumPy's bools too); else a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False. Received: {value!r}")


def is_weak_scalar(x: Any) -> bool:
    """Python bool/int/float: weak in promotion (NEP 50), never cast by layers."""
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def as_array(x: Any, name: str = "x") -> Array:
    """`x` as an Array (Variables read their value, in the active autocast dtype)."""
    try:
        return asarray(x)
    except TypeError as e:
        raise TypeError(f"Argument {name!r}: {e}") from None


_ARRAY_OR_WEAK = {Array, bool, int, float}


def operands(args: tuple[Any, ...], names: tuple[str, ...] = ("x", "y")) -> tuple[Any, ...]:
    """`args` as Arrays, Python scalars beside an Array kept as they are (weak, NEP 50).

    Python scalars alone become Arrays in Keras' default dtypes (``floatx()``, int32, bool),
    as ``asarray`` makes them: ``exp(1.0)`` is float32, as ``exp(asarray(1.0))``, not float64.
    """
    if len(args) == 2 and {type(args[0]), type(args[1])} <= _ARRAY_OR_WEAK and Array in map(type, args):
        return args  # two Arrays, or an Array and a Python scalar: the common cases, sooner
    ops = tuple(x if is_weak_scalar(x) else as_array(x, n) for x, n in zip(args, names))
    if any(isinstance(x, Array) for x in ops):
        return ops
    kind = np.result_type(*ops).kind
    default = "bool" if kind == "b" else "int32" if kind in "iu" else floatx()
    return tuple(asarray(x, dtype=default) for x in ops)


def common_device(*arrays: Any) -> str:
    """The one device shared by the Arrays in `arrays` (scalars ignored)."""
    device = None
    for a in arrays:  # the common case, every operand on one device, without building a set
        if isinstance(a, Array):
            if device is None:
                device = a._device
            elif a._device != device:
                break
    else:
        return "cpu" if device is None else device
    shapes = ", ".join(f"{a.shape} on {a.device!r}" for a in arrays if isinstance(a, Array))
    raise ValueError(f"Operands live on different devices: {shapes}. nbmp never copies between "
                     "devices implicitly: move them to one with x.to('cuda') or x.to('cpu') "
                     "(a layer's or model's weights: layer.to('cuda'))")


def xp(*arrays: Any) -> ModuleType:
    """The array module (NumPy or CuPy) of the operands' storage."""
    common_device(*arrays)
    return next((array_module(a) for a in arrays if isinstance(a, Array)), np)


def backend(*arrays: Any) -> Any:
    """The backend module for the operands' device."""
    return for_device(common_device(*arrays))


def work_dtype(dtype: Any) -> np.dtype:
    """The dtype elementwise math runs in: float32 for 16-bit floats, else `dtype` itself."""
    return np.dtype(np.float32) if dtypes.is_half(dtype) else dtypes.as_numpy(dtype)


def wrap(data: np.ndarray, like: Any) -> Array:
    """An Array on the operands' device."""
    return Array(data, common_device(*like) if isinstance(like, tuple) else like.device)


def elementwise(fn_name: str, *args: Any, out_dtype: str | None = None,
                names: tuple[str, ...] = ("x", "y"), comparison: bool = False) -> Array:
    """Apply the NumPy (or, on a GPU, CuPy) function `fn_name` elementwise with nbmp's rules.

    Result dtype by ``nbmp.dtypes.result_type`` (NEP 50, bfloat16-aware) unless `out_dtype`
    is given; 16-bit floats are computed in float32 and rounded once, Python scalars first rounded
    to them (``weak_value``): +, -, * and / of halves in one pass where the backend has a kernel
    for the operands' shapes (``binary``), the rest through float32 copies. A `comparison` gives
    bools: halves compared in float32, other arrays as NumPy compares them (int64 with uint64
    exactly, not through float64).
    """
    ops = operands(args, names)
    out = out_dtype or dtypes.result_type(*ops)
    work = work_dtype(out)
    be = backend(*ops)
    if work != out and len(ops) == 2 and not comparison and hasattr(be, "binary"):  # halves, one pass
        x, y = (a._data if isinstance(a, Array) else weak_value(a, out) for a in ops)
        result = be.binary(fn_name, x, y, out)
        if result is not None:
            return wrap(result, ops)
    mod = xp(*ops)
    values = [weak_value(a, out) if not isinstance(a, Array)
              else a._data if comparison and not dtypes.is_half(a.dtype)
              else in_dtype(be, a._data, work) for a in ops]
    if comparison:
        out = "bool"
    with np.errstate(all="ignore"):
        result = mod.asarray(getattr(mod, fn_name)(*values))
    if result.dtype != dtypes.as_numpy(out):
        result = be.cast(result, out)
    return wrap(result, ops)


def weak_value(x: Any, dtype: Any) -> Any:
    """A Python scalar `x` as NEP 50 takes it beside an array of `dtype`: a 16-bit float rounds
    it to that dtype (``0.1`` to float16 ``0.09998``, which a float16 array holding 0.1 equals;
    ``1e5`` to inf), since the math itself runs in float32; other dtypes take it as it is."""
    if not dtypes.is_half(dtype) or isinstance(x, bool):
        return x
    if -65504 <= x <= 65504:  # within both halves' ranges: no overflow to silence (errstate: 3 us)
        return float(np.asarray(x, dtypes.as_numpy(dtype)))
    with np.errstate(over="ignore"):
        return float(np.asarray(x, dtypes.as_numpy(dtype)))


def in_dtype(be: Any, data: np.ndarray, dtype: Any) -> np.ndarray:
    """`data` cast to `dtype` by backend `be`, or itself when it has that dtype already."""
    return data if data.dtype == dtype else be.cast(data, dtype)
