"""Variables: mutable, named values stored in their own dtype that autocast inside layers.

One class does both jobs (as in Keras 3): a float32 ``Variable`` reads as float32 everywhere,
except inside the call of a layer whose compute dtype differs (an *autocast scope*), where it
reads in that compute dtype. Assignments always go to the stored value at full precision.

>>> import nbmp
>>> v = nbmp.Variable([1.0, 2.0], name="w")
>>> v.dtype
dtype('float32')
>>> with nbmp.variables.autocast_scope("float16"):
...     v.dtype, (v * 2).dtype
(dtype('float16'), dtype('float16'))
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.array import Array, Operators, asarray

__all__ = ["Variable", "autocast_scope", "autocast_dtype"]

_local = threading.local()


def autocast_dtype() -> str | None:
    """The dtype floating variables read as right now (None: their own dtype)."""
    return getattr(_local, "dtype", None)


class autocast_scope:  # noqa: N801 - a context manager, named as the function it replaced
    """Make floating variables read as `dtype` inside the block (None turns autocast off).

    A class rather than a generator function: every layer call enters one, and this costs a
    third as much. A scope is entered once at a time (entering it again inside its own block
    raises, as a generator-based one would).
    """

    __slots__ = ("_dtype", "_previous")

    def __init__(self, dtype: str | None) -> None:
        if dtype is not None and not dtypes.is_floating(dtype):
            raise ValueError(f"autocast_scope needs a floating dtype or None. Received: {dtype!r}")
        self._dtype = None if dtype is None else dtypes.canonical_name(dtype)

    def __enter__(self) -> None:
        if hasattr(self, "_previous"):
            raise RuntimeError("this autocast_scope is already active: nest a new autocast_scope(...)")
        self._previous = getattr(_local, "dtype", None)
        _local.dtype = self._dtype

    def __exit__(self, *exc_info: object) -> None:
        _local.dtype = self._previous
        del self._previous


class Variable(Operators):
    """A named, assignable value (weights are Variables).

    Operators (``v * 2``, ``v @ x``, ``v > 0``) read the value, as ``v.value`` does (autocast
    inside a layer's call) and give Arrays. Comparisons are elementwise, as NumPy's, so a
    Variable is found in a list only as itself (``v in layer.weights``; another Variable of
    several elements there raises NumPy's "truth value ... is ambiguous": look for it with
    ``any(w is v for w in weights)``); it hashes by identity, so it can key a dict.

    Args:
        initial_value: anything ``nbmp.asarray`` accepts.
        dtype: the stored dtype (default: that of `initial_value`).
        name: a name such as ``"dense/kernel"``.
        trainable: Keras' flag for whether training updates it (nbmp runs models forward only:
            it has no optimizers yet).
        autocast: whether it reads in the active autocast dtype inside a layer's call.
        device: where the value lives (``"cpu"`` or ``"cuda"``); default: where `initial_value`
            is (the CPU for NumPy arrays and Python values). Assigned values are moved there.

    >>> v = Variable(1.0)
    >>> v.assign_add(2.0).numpy()
    array(3., dtype=float32)
    """

    def __init__(self, initial_value: Any, dtype: Any = None, name: str | None = None,
                 trainable: bool = True, autocast: bool = True, device: str | None = None) -> None:
        self._value = asarray(initial_value, dtype=dtype, device=device)
        self._name = "variable" if name is None else str(name)
        self.trainable = bool(trainable)
        self.autocast = bool(autocast)

    # ---- storage ------------------------------------------------------------------------
    @property
    def _value(self) -> Array:
        return self._state[0]

    @_value.setter
    def _value(self, value: Array) -> None:
        """Keep a private copy (a caller's array may change later) and forget derived reads.

        The value and its autocast reads (dtype name -> Array) are one attribute, replaced at
        once: a read made while another thread assigns caches its cast beside the value it was
        cast from, never beside the new one.
        """
        self._state: tuple[Array, dict[str, Array]] = (Array._frozen(value._data.copy(), value.device), {})

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a Variable pickled before its value and autocast reads were one
        attribute (``_stored`` and ``_autocast_reads``)."""
        if "_state" not in state and "_stored" in state:
            state = {**state, "_state": (state["_stored"], {})}
            state.pop("_stored")
            state.pop("_autocast_reads", None)
        self.__dict__.update(state)

    # ---- reading ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The variable's name."""
        return self._name

    @property
    def true_dtype(self) -> np.dtype:
        """The dtype the value is stored in, whatever the autocast scope."""
        return self._value.dtype

    @property
    def true_value(self) -> Array:
        """The stored value, whatever the autocast scope."""
        return self._value

    @property
    def dtype(self) -> np.dtype:
        """The dtype it reads as: the autocast dtype inside a mixed layer's call, else stored."""
        return self.value.dtype

    @property
    def value(self) -> Array:
        """The current value as an Array, cast to the autocast dtype when one is active."""
        target = getattr(_local, "dtype", None)  # autocast_dtype(), inlined: read on every call
        stored, reads = self._state
        if target is None or not self.autocast:
            return stored
        read = reads.get(target)
        if read is None:  # once per value and dtype: the same Array until the next assign
            read = reads[target] = _read_as(stored, target)
        return read

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def device(self) -> str:
        """Where the value lives: ``"cpu"`` or ``"cuda"``."""
        return self._value.device

    def numpy(self) -> np.ndarray:
        """A NumPy copy of the value as read now (stored dtype outside an autocast scope)."""
        return self.value.numpy()

    def _nbmp_array(self) -> Array:
        return self.value

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.value.__array__(dtype=dtype, copy=copy)

    # ---- writing ------------------------------------------------------------------------
    def assign(self, value: Any) -> Variable:
        """Replace the stored value (cast to the stored dtype, at full precision, and moved to the
        variable's device). Python numbers go straight to the stored dtype: an int out of its
        range raises OverflowError, as ``asarray`` does.

        >>> Variable(np.uint8(0)).assign(300)
        Traceback (most recent call last):
        ...
        OverflowError: Python ints outside uint8's range [0, 255]. Received: 300
        """
        value = _stored(value)  # another Variable: at full precision
        if hasattr(value, "dtype"):  # an array: cast from its own dtype
            new = asarray(value, device=self.device).astype(self._value.dtype)
        else:
            new = asarray(value, dtype=self._value.dtype, device=self.device)
        if new.shape != self.shape:
            raise ValueError(f"Cannot assign a value of shape {new.shape} to variable "
                             f"{self._name!r} of shape {self.shape}")
        self._value = new
        return self

    def assign_add(self, delta: Any) -> Variable:
        """Add `delta` to the stored value, computed in the stored dtype."""
        return self.assign(self._value + _stored(delta))

    def assign_sub(self, delta: Any) -> Variable:
        """Subtract `delta` from the stored value, computed in the stored dtype."""
        return self.assign(self._value - _stored(delta))

    def __getitem__(self, key: Any) -> Array:
        return self.value[key]

    __hash__ = object.__hash__  # by identity, though ``==`` is elementwise

    def tolist(self) -> Any:
        """The value as (nested lists of) Python numbers."""
        return self.value.tolist()

    def item(self) -> Any:
        """The value of a one-element Variable as a Python number."""
        return self.value.item()

    # ---- Python conversions read the (autocast) value too --------------------------------
    def __bool__(self) -> bool:
        return bool(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return self.value.__index__()

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self) -> Iterator[Array]:
        return iter(self.value)

    @property
    def T(self) -> Array:
        return self.value.T

    __array_priority__ = 100

    def __repr__(self) -> str:
        shown = self.dtype.name
        stored = self.true_dtype.name
        dtype = shown if shown == stored else f"{stored} (reads as {shown})"
        return f"<Variable {self._name!r} shape={self.shape} dtype={dtype}>"


def _stored(value: Any) -> Any:
    """Values read at full precision: an autocast Variable gives its stored value."""
    return value._value if isinstance(value, Variable) else value


def _read_as(stored: Array, target: str) -> Array:
    """`stored` as read in autocast dtype `target`: cast if floating, else as stored."""
    if not dtypes.is_floating(stored.dtype) or target == dtypes.canonical_name(stored.dtype):
        return stored
    cast = stored.astype(target)
    return Array._frozen(cast._data, cast.device)
