"""``nbmp.Array``: the value type layers take and return.

An Array is an immutable n-d array with a dtype (bfloat16 included) and a device. Its
arithmetic goes through ``nbmp.ops``: on 16-bit floats it computes in float32 and rounds once.

>>> import nbmp, numpy as np
>>> x = nbmp.asarray([[1.0, 2.0], [3.0, 4.0]], dtype="float16")
>>> x
Array([[1., 2.],
       [3., 4.]], dtype=float16, device='cpu')
>>> (x * 1e5).numpy()  # NEP 50: the Python scalar is weak, so the result is float16
array([[inf, inf],
       [inf, inf]], dtype=float16)
>>> (x @ x).dtype
dtype('float16')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.devices import check_device

__all__ = ["Array", "asarray"]


class Array:
    """An immutable n-d array on a device. Build one with ``nbmp.asarray``."""

    __slots__ = ("_data", "_device")
    # NumPy defers binary operators to Array's reflected ones (ndarray + Array -> Array).
    __array_priority__ = 100

    def __init__(self, data: np.ndarray, device: str = "cpu") -> None:
        if not isinstance(data, np.ndarray):
            raise TypeError(f"Array wraps a NumPy array; use nbmp.asarray(). Received: {type(data)}")
        dtypes.canonical_name(data.dtype)  # rejects unsupported dtypes with a clear error
        view = data.view()
        view.flags.writeable = False
        self._data = view
        self._device = device

    # ---- metadata ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype (``ml_dtypes.bfloat16`` for bfloat16); compares equal to its name."""
        return self._data.dtype

    @property
    def device(self) -> str:
        """Where the data lives: ``"cpu"``."""
        return self._device

    @property
    def nbytes(self) -> int:
        """Bytes of storage."""
        return self._data.nbytes

    # ---- conversion --------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A writable NumPy copy of the data."""
        return self._data.copy()

    def tolist(self) -> Any:
        """The values as (nested lists of) Python numbers."""
        return self._data.tolist()

    def astype(self, dtype: Any) -> Array:
        """This array cast to `dtype` (rounded to nearest even)."""
        return _ops.cast(self, dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self._data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:
                raise ValueError(f"Converting {data.dtype} to {np.dtype(dtype)} needs a copy")
            return data.astype(dtype)
        return data.copy() if copy else data

    def __dlpack__(self, **kwargs: Any) -> Any:
        if self.dtype == dtypes.bfloat16:
            raise BufferError(
                "bfloat16 Arrays cannot be exported through DLPack from NumPy storage. "
                "Use x.numpy().view(np.uint16) for the raw bits."
            )
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._data.__dlpack_device__()

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        return self._data.__index__()

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Array]:
        for i in range(len(self)):
            yield self[i]

    # ---- shape -------------------------------------------------------------------------
    @property
    def T(self) -> Array:
        """The transpose (a view: no data is copied)."""
        return _ops.transpose(self)

    def reshape(self, *shape: Any) -> Array:
        """This array with a new shape (``-1`` infers one dimension)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    def __getitem__(self, key: Any) -> Array:
        return _ops.getitem(self, key)

    # ---- arithmetic (through nbmp.ops) -------------------------------------------------
    def __add__(self, other: Any) -> Array:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Array:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Array:
        return _ops.subtract(self, other)

    def __rsub__(self, other: Any) -> Array:
        return _ops.subtract(other, self)

    def __mul__(self, other: Any) -> Array:
        return _ops.multiply(self, other)

    def __rmul__(self, other: Any) -> Array:
        return _ops.multiply(other, self)

    def __truediv__(self, other: Any) -> Array:
        return _ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Array:
        return _ops.divide(other, self)

    def __pow__(self, other: Any) -> Array:
        return _ops.power(self, other)

    def __matmul__(self, other: Any) -> Array:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Array:
        return _ops.matmul(other, self)

    def __neg__(self) -> Array:
        return _ops.negative(self)

    def __abs__(self) -> Array:
        return _ops.abs(self)

    # ---- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Array(", threshold=200)
        return f"Array({body}, dtype={self.dtype.name}, device={self._device!r})"

    def _repr_html_(self) -> str:
        return _html_summary(self)


def asarray(x: Any, dtype: Any = None, device: str | None = None) -> Array:
    """An Array from an Array, a Variable, a NumPy array, a nested list or a Python scalar.

    Python floats become ``floatx()`` (float32 by default) unless `dtype` says otherwise;
    NumPy arrays keep their dtype and are not copied when no cast is needed.

    >>> asarray([1, 2.5], dtype="bfloat16")
    Array([1, 2.5], dtype=bfloat16, device='cpu')
    """
    target_device = check_device(device if device is not None else getattr(x, "device", "cpu"))
    if isinstance(x, Array) or hasattr(x, "_nbmp_array"):
        arr = x if isinstance(x, Array) else x._nbmp_array()
        if target_device != arr.device:
            raise ValueError(f"Moving data from {arr.device!r} to {target_device!r} is not supported")
        return arr if dtype is None else _ops.cast(arr, dtype)
    if isinstance(x, np.ndarray | np.generic):
        data = np.asarray(x)
    else:
        data = _from_python(x, dtype)
    if dtype is not None:
        target = dtypes.as_numpy(dtype)
        if data.dtype != target:
            return _ops.cast(Array(data, target_device), target)
    return Array(data, target_device)


def _from_python(x: Any, dtype: Any) -> np.ndarray:
    from nbmp.policy import floatx

    if isinstance(x, (str, bytes, dict, set)) or x is None:
        raise TypeError(f"Cannot make an Array from {type(x).__name__}. Received: {x!r}")
    try:
        data = np.asarray(x)
    except ValueError:
        data = np.empty(0, object)  # ragged nested lists
    if data.dtype == object or data.dtype.kind in "USV":
        raise TypeError(
            "Cannot make an Array from this value: it is not a (rectangular) nested list of "
            f"numbers. Received: {x!r:.200}"
        )
    if data.dtype == np.float64 and dtype is None:
        data = data.astype(floatx() if floatx() != "bfloat16" else dtypes.bfloat16)
    elif data.dtype == np.int64 and dtype is None:
        data = data.astype(np.int32)
    return data


def _html_summary(x: Array) -> str:
    data = x._data
    stats = ""
    if data.size and dtypes.is_floating(data.dtype):
        f = data.astype(np.float64)
        finite = f[np.isfinite(f)]
        parts = [f"nan: {int(np.isnan(f).sum())}", f"inf: {int(np.isinf(f).sum())}"]
        if finite.size:
            parts = [f"min {finite.min():.6g}", f"max {finite.max():.6g}",
                     f"mean {finite.mean():.6g}"] + parts
        stats = "<br>" + ", ".join(parts)
    values = np.array2string(data, separator=", ", threshold=100)
    return (
        f"<div><b>nbmp.Array</b> shape <code>{x.shape}</code> dtype <code>{x.dtype.name}</code> "
        f"device <code>{x.device}</code>{stats}<pre>{values}</pre></div>"
    )


from nbmp import ops as _ops  # noqa: E402  (ops imports Array: bind after the class exists)
