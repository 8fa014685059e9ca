"""Activations, computed in float32 (or float64) and rounded once to the input dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array
from nbmp.backend.reference import ACTIVATIONS as FUSABLE
from nbmp.ops._core import as_array, as_axes, backend, is_int, work_dtype, wrap, xp

__all__ = ["relu", "sigmoid", "tanh", "gelu", "softmax", "linear", "get", "epilogue", "FUSABLE"]


def _apply(x: Any, name: str) -> Array:
    x = as_array(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{name} needs a floating input. Received dtype {x.dtype.name}")
    return wrap(backend(x).activation(x._data, name), x)


def relu(x: Any) -> Array:
    """``max(x, 0)``."""
    return _apply(x, "relu")


def sigmoid(x: Any) -> Array:
    """``1 / (1 + exp(-x))``."""
    return _apply(x, "sigmoid")


def tanh(x: Any) -> Array:
    """Hyperbolic tangent."""
    return _apply(x, "tanh")


def gelu(x: Any) -> Array:
    """Exact GELU, ``x * Phi(x)`` (Phi: the standard normal CDF)."""
    return _apply(x, "gelu")


def linear(x: Any) -> Array:
    """The identity."""
    return as_array(x)


def softmax(x: Any, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along `axis`, computed stably in float32 for 16-bit inputs (on
    the CPU, along the last axis, a row at a time in one pass for 16-bit and float32 inputs).

    >>> import nbmp
    >>> nbmp.ops.softmax(nbmp.asarray([0.0, 0.0], dtype="float16"))
    Array([0.5, 0.5], dtype=float16, device='cpu')
    """
    x = as_array(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"softmax needs a floating input. Received dtype {x.dtype.name}")
    checked = as_axes(axis)
    rank = max(x.ndim, 1)  # (a 0-d x takes axis 0 or -1, as NumPy's reductions)
    axes: tuple[int, ...] = () if checked is None else (checked,) if is_int(checked) else checked
    if any(not -rank <= a < rank for a in axes) or len({a % rank for a in axes}) < len(axes):
        raise ValueError(f"softmax: axis must be distinct ints from {-rank} to {rank - 1} for an array of "
                         f"shape {x.shape}. Received: axis={axis!r}")
    if x.size == 0:  # nothing to normalise (and no maximum to subtract)
        return x
    be, mod = backend(x), xp(x)
    last = x.ndim >= 1 and len(axes) == 1 and axes[0] % rank == rank - 1
    if last and x.dtype != np.float64 and hasattr(be, "softmax"):  # a row at a time, one pass
        return wrap(be.softmax(x._data), x)
    work = be.cast(x._data, work_dtype(x.dtype))
    with np.errstate(all="ignore"):
        e = mod.exp(work - mod.max(work, axis=checked, keepdims=True))
        y = e / mod.sum(e, axis=checked, keepdims=True)
    return wrap(be.cast(y, x.dtype), x)


_BY_NAME: dict[str, Callable[..., Array]] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "gelu": gelu, "softmax": softmax,
    "linear": linear,
}


def get(identifier: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """An activation function from its name, a callable, or ``None`` (linear)."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]
    raise ValueError(
        f"Unknown activation {identifier!r}. Valid: {', '.join(_BY_NAME)} or a callable. "
        f"Received: {identifier!r} (of type {type(identifier).__name__})"
    )


def epilogue(activation: str | Callable[..., Any] | None) -> tuple[str | None, Callable[..., Any] | None]:
    """`activation` as a kernel takes it: ``(name, None)`` for one its epilogue fuses (or
    ``(None, None)`` for none), else ``(None, function)`` to apply to the float32 result;
    an unknown one is refused here, before any work.

    >>> epilogue("relu"), epilogue("softmax")[1] is softmax
    (('relu', None), True)
    """
    if activation is None:
        return None, None
    if isinstance(activation, str) and activation.lower() in FUSABLE:
        return activation.lower(), None
    return None, get(activation)
