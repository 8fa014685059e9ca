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

On a ``"cuda"`` device (see ``nbmp.devices()``) the data lives in GPU memory, CuPy arrays (NumPy
arrays under the CUDA simulator); ``.to()`` and ``.numpy()`` are the explicit transfers, and
``np.asarray`` of a "cuda" Array raises instead of copying silently.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.devices import check_device

__all__ = ["Array", "Operators", "asarray", "is_foreign_array"]


class Operators:
    """Python's operators as ``nbmp.ops``, for Arrays and for Variables (which read their value,
    autocast inside a layer's call): arithmetic, ``@``, elementwise comparisons giving boolean
    Arrays, ``& | ^ ~`` (logical on booleans, bitwise on integers), ``in``, and formatting of
    0-d values (``f"{loss:.4f}"``)."""

    __slots__ = ()

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's operators and ufuncs on Arrays: the arithmetic and comparisons nbmp has
        (``ndarray + Array``, ``np.maximum(a, x)``) run as nbmp's and give an Array; the rest
        (``np.sin(x)``, ``np.add.reduce(x)``) run in NumPy on the data and give an ndarray. An
        ``out=`` (``ndarray += Array`` included) is refused: it would write NumPy's rounding."""
        if kwargs.get("out") is not None:
            raise TypeError(f"np.{ufunc.__name__} cannot write its result into an array (out=, or an "
                            "in-place operator such as ndarray += Array): nbmp computes a new Array. "
                            "Write x = x + y instead")
        op = _UFUNC_OPS.get(ufunc.__name__) if method == "__call__" and not kwargs else None
        if op is not None:
            return getattr(_ops, op)(*inputs)
        host = [np.asarray(x) if isinstance(x, Operators) else x for x in inputs]
        return getattr(ufunc, method)(*host, **kwargs)

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

    def __floordiv__(self, other: Any) -> Array:
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Array:
        return _ops.floor_divide(other, self)

    def __mod__(self, other: Any) -> Array:
        return _ops.mod(self, other)

    def __rmod__(self, other: Any) -> Array:
        return _ops.mod(other, self)

    def __pow__(self, other: Any) -> Array:
        return _ops.power(self, other)

    def __rpow__(self, other: Any) -> Array:
        return _ops.power(other, self)

    def __matmul__(self, other: Any) -> Array:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Array:
        return _ops.matmul(other, self)

    def __and__(self, other: Any) -> Array:
        return _ops.bitwise_and(self, other)

    def __rand__(self, other: Any) -> Array:
        return _ops.bitwise_and(other, self)

    def __or__(self, other: Any) -> Array:
        return _ops.bitwise_or(self, other)

    def __ror__(self, other: Any) -> Array:
        return _ops.bitwise_or(other, self)

    def __xor__(self, other: Any) -> Array:
        return _ops.bitwise_xor(self, other)

    def __rxor__(self, other: Any) -> Array:
        return _ops.bitwise_xor(other, self)

    def __invert__(self) -> Array:
        return _ops.bitwise_invert(self)

    def __neg__(self) -> Array:
        return _ops.negative(self)

    def __pos__(self) -> Array:
        return asarray(self)

    def __abs__(self) -> Array:
        return _ops.abs(self)

    # ---- comparisons (elementwise, as NumPy's) -----------------------------------------
    def __eq__(self, other: Any) -> Array:  # type: ignore[override]
        try:
            return _ops.equal(self, other)
        except TypeError:  # not array-like (None, a string): Python's identity answer
            return NotImplemented

    def __ne__(self, other: Any) -> Array:  # type: ignore[override]
        try:
            return _ops.not_equal(self, other)
        except TypeError:
            return NotImplemented

    def __lt__(self, other: Any) -> Array:
        return _ops.less(self, other)

    def __le__(self, other: Any) -> Array:
        return _ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Array:
        return _ops.greater(self, other)

    def __ge__(self, other: Any) -> Array:
        return _ops.greater_equal(self, other)

    def __contains__(self, value: Any) -> bool:
        """``value in x``: whether any element equals `value` (NumPy's rule; ``None`` is in none)."""
        equal = self == value
        if isinstance(equal, Array):
            return bool(equal.size) and bool(_ops.max(equal).item())
        return equal is True  # Python's answer for what is not array-like

    def __format__(self, spec: str) -> str:
        """``format(x, spec)``: a 0-d value formats as its number (``f"{loss:.4f}"``), as NumPy's."""
        if not spec:
            return str(self)
        value = asarray(self)
        if value.ndim:
            raise TypeError(f"Format spec {spec!r} formats a 0-d array (one number); this one has "
                            f"shape {value.shape}. Format x.item() of a one-element array, or x.tolist()")
        return format(value._host(), spec)


class Array(Operators):
    """An immutable n-d array on a device. Build one with ``nbmp.asarray``."""

    __slots__ = ("_data", "_device", "_memo")

    def __init__(self, data: Any, device: str = "cpu") -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"Unknown device {device!r}. Valid: 'cpu', 'cuda'")
        if not isinstance(data, np.ndarray) and (device == "cpu" or not _is_cupy(data)):
            raise TypeError(f"Array wraps a NumPy array (or a CuPy array on 'cuda'); use "
                            f"nbmp.asarray(). Received: {type(data)} for device {device!r}")
        dtypes.canonical_name(data.dtype)  # rejects unsupported dtypes with a clear error
        if not data.dtype.isnative:  # big-endian data on a little-endian CPU: the kernels need native
            data = data.astype(data.dtype.newbyteorder("="))
        view = data.view()
        if isinstance(view, np.ndarray):
            view.setflags(write=False)  # 0.6 us, where ``view.flags.writeable = False`` took 1.0
        self._data = view
        self._device = device
        self._memo: dict[Any, Any] | None = None  # see _frozen

    @classmethod
    def _frozen(cls, data: Any, device: str) -> Array:
        """An Array over `data` that nothing else references (a private copy, or a fresh result):
        its values never change, so forms derived from them (a packed weight matrix) are
        memoized on it by ``_derived``. Variables keep their values this way. The storage itself
        is made read-only, so that no view of it can be made writable again."""
        if isinstance(data, np.ndarray):
            data.setflags(write=False)
        arr = cls(data, device)
        arr._memo = {}
        return arr

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled: the values and device (not memoized derived forms); unpickled, over storage of
        its own, read-only."""
        return Array._frozen, (self._data, self._device)

    def __copy__(self) -> Array:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Array:
        return Array._frozen(self._data.copy(), self._device)

    @property
    def _is_frozen(self) -> bool:
        """Whether this Array's values can never change (see ``_frozen``)."""
        return self._memo is not None

    def _derived(self, key: Any, make: Any) -> Any:
        """``make()``, computed once per `key` for a frozen Array, every time otherwise."""
        if self._memo is None:
            return make()
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

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
        """Where the data lives: ``"cpu"`` or ``"cuda"``."""
        return self._device

    @property
    def nbytes(self) -> int:
        """Bytes of storage."""
        return self._data.nbytes

    # ---- conversion --------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A writable NumPy copy of the data (copied from the GPU for a "cuda" Array)."""
        if self._device == "cpu":
            return self._data.copy()
        from nbmp.backend.cuda.storage import to_host

        return to_host(self._data)

    def to(self, device: str) -> Array:
        """This array on `device` (``"cpu"`` or ``"cuda"``): itself if already there, else a copy.

        >>> x = asarray([1.0, 2.0])
        >>> x.to("cpu") is x
        True
        """
        target = check_device(device)
        if target == self._device:
            return self
        if target == "cpu":
            return Array(self.numpy(), "cpu")
        from nbmp.backend.cuda.storage import to_device

        return Array(to_device(self._data), "cuda")

    def tolist(self) -> Any:
        """The values as (nested lists of) Python numbers."""
        return self._host().tolist()

    def item(self) -> Any:
        """The value of a one-element array as a Python number (``loss.item()``).

        >>> asarray([[2.5]], dtype="float16").item()
        2.5
        """
        if self.size != 1:
            raise ValueError(f"item() needs an array of one element. Received shape {self.shape} "
                             f"({self.size} elements)")
        return self._host().item()

    def astype(self, dtype: Any) -> Array:
        """This array cast to `dtype` (rounded to nearest even)."""
        return _ops.cast(self, dtype)

    def _host(self) -> np.ndarray:
        """The data as a NumPy array: the storage itself on the CPU, a copy from a GPU."""
        return self._data if self._device == "cpu" else self.numpy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self._device != "cpu":
            raise TypeError(f"An Array on the {self._device!r} device is not converted to NumPy "
                            "implicitly (that would be a hidden copy from the GPU). Call x.numpy(), "
                            "or x.to('cpu') for an Array.")
        data = self._data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:
                raise ValueError(f"Converting {data.dtype} to {np.dtype(dtype)} needs a copy")
            return data.astype(dtype)
        return data.copy() if copy else data

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """The CUDA Array Interface (version 3) of a "cuda" Array, so Numba kernels, CuPy and
        PyTorch can read it in place. Not for bfloat16, which the interface cannot describe.
        Under the simulator the pointer is the NumPy storage's host address."""
        if self._device != "cuda":
            raise AttributeError(f"__cuda_array_interface__: the Array is on {self._device!r}; "
                                 "move it with x.to('cuda')")
        if dtypes.canonical_name(self.dtype) == "bfloat16":
            raise AttributeError("__cuda_array_interface__ cannot describe bfloat16 (no typestr "
                                 "for it); export x.astype('float32'), or use DLPack")
        if not isinstance(self._data, np.ndarray):
            return self._data.__cuda_array_interface__
        host = self._data.__array_interface__
        return {"shape": self.shape, "typestr": host["typestr"], "data": (host["data"][0], True),
                "strides": None if self._data.flags.c_contiguous else self._data.strides,
                "version": 3}

    def __dlpack__(self, **kwargs: Any) -> Any:
        if dtypes.canonical_name(self.dtype) == "bfloat16" and isinstance(self._data, np.ndarray):
            raise BufferError(
                "bfloat16 Arrays cannot be exported through DLPack from NumPy storage. "
                "Use x.numpy().view(np.uint16) for the raw bits."
            )
        if self._is_frozen:  # a Variable's value: consumers that ignore DLPack's read-only flag
            if kwargs.get("copy") is False:  # (torch) could change it under its memoized forms
                raise BufferError("This Array's values must never change (a Variable's value, whose "
                                  "packed forms are kept): it is exported as a copy, not with "
                                  "copy=False")
            kwargs.pop("copy", None)
            return self._data.copy().__dlpack__(**kwargs)
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._data.__dlpack_device__()

    def __bool__(self) -> bool:
        return bool(self._host())

    def __float__(self) -> float:
        return float(self._host())

    def __int__(self) -> int:
        return int(self._host())

    def __index__(self) -> int:
        return self._host().__index__()

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d Array")
        return self.shape[0]

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
        if not shape:
            raise TypeError("reshape() takes a shape: ints, or one tuple or list of them. Received none")
        one = len(shape) == 1 and isinstance(shape[0], (tuple, list, Array, np.ndarray))
        return _ops.reshape(self, shape[0] if one else shape)

    def __getitem__(self, key: Any) -> Array:
        return _ops.getitem(self, key)

    __hash__ = None  # type: ignore[assignment]  # elementwise ==, as NumPy's

    # ---- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        data = self._host()
        body = np.array2string(data, separator=", ", prefix="Array(", threshold=200,
                               formatter=_formatter(data, 200))
        shape = f", shape={self.shape}" if self.size == 0 and self.ndim != 1 else ""  # as NumPy's
        return f"Array({body}{shape}, dtype={self.dtype.name}, device={self._device!r})"

    def _repr_html_(self) -> str:
        return _html_summary(self)


def asarray(x: Any, dtype: Any = None, device: str | None = None) -> Array:
    """An Array from an Array, a Variable, a NumPy array, a nested list or a Python scalar.

    Python floats become ``floatx()`` (float32 by default) unless `dtype` says otherwise;
    NumPy arrays keep their dtype and are not copied when no cast is needed. An explicit
    `device` moves the data there (``x.to(device)``); by default an Array stays where it is and
    anything else goes to the CPU.

    >>> asarray([1, 2.5], dtype="bfloat16")
    Array([1. , 2.5], dtype=bfloat16, device='cpu')
    >>> asarray([1.0], device="gpu")
    Traceback (most recent call last):
    ...
    ValueError: Unknown device 'gpu'. Valid: 'cpu', 'cuda'. Received: device='gpu' (of type str)
    """
    if device is not None:
        check_device(device)
    if isinstance(x, Array) or hasattr(x, "_nbmp_array"):
        arr = x if isinstance(x, Array) else x._nbmp_array()
    elif isinstance(x, np.ndarray | np.generic):
        arr = Array(np.asarray(x))
    elif _is_cupy(x):
        arr = Array(x, check_device("cuda"))
    elif is_foreign_array(x):  # its own dtype, not floatx as for Python floats
        arr = Array(_from_foreign(x))
    else:
        arr = Array(_from_python(x, dtype))
    if device is not None:
        arr = arr.to(device)
    return arr if dtype is None or arr.dtype == dtypes.as_numpy(dtype) else _ops.cast(arr, dtype)


#: NumPy ufunc name -> the nbmp op ``Array.__array_ufunc__`` runs for it (the same name but one).
_UFUNC_OPS = {
    **{name: name for name in (
        "add", "subtract", "multiply", "divide", "power", "matmul", "maximum", "minimum", "negative",
        "exp", "log", "sqrt", "square", "equal", "not_equal", "less", "less_equal", "greater",
        "greater_equal", "floor_divide", "bitwise_and", "bitwise_or", "bitwise_xor")},
    "absolute": "abs", "remainder": "mod", "invert": "bitwise_invert",
}


def _formatter(data: np.ndarray, threshold: int) -> Any:  # (NumPy types it as a private dict)
    """``np.array2string``'s formatter for `data` shown up to `threshold` elements: NumPy's own
    (None), but for bfloat16, which NumPy prints as the float32 it converts to."""
    if dtypes.canonical_name(data.dtype) != "bfloat16":
        return None
    return {"all": _bfloat16_text(data, threshold)}


def _bfloat16_text(data: np.ndarray, threshold: int) -> Any:
    """A formatter for bfloat16 elements: the fewest digits that read back as the same value
    (``0.1``, not ``0.100098``; ``20.``, not ``2e+01``), laid out by NumPy itself, as it lays out
    float16: it formats those decimal values of the elements shown (its summary of arrays over
    `threshold` elements), which picks positional or scientific notation by its rule for all
    floats and lines up the decimal points (``[0.5 , 0.25, 1.  ]``)."""
    shown = _shown(data, threshold).ravel()
    decimals = np.array([_decimal(v) for v in shown], np.float64)
    texts = np.array2string(decimals, separator="|", threshold=decimals.size + 1,
                            max_line_width=sys.maxsize)[1:-1].split("|") if decimals.size else []
    laid_out = dict(zip((_key(v) for v in shown), texts))
    # (every element NumPy shows is among those; should one not be, it gets its digits unpadded)
    return lambda v: laid_out.get(_key(v)) or np.format_float_positional(_decimal(v), unique=True)


def _decimal(v: Any) -> float:
    """The fewest-digit number that reads back as the 16-bit `v` (nan and infinities as they are)."""
    return _fewest_digits(v) if np.isfinite(v) else float(v)


def _key(v: Any) -> str:
    """A dict key for the value of a float element: -0.0 apart from 0.0, NaN equal to NaN."""
    return repr(float(v))


def _shown(data: np.ndarray, threshold: int) -> np.ndarray:
    """The elements ``np.array2string`` shows: all up to `threshold`, else the first and last
    ``edgeitems`` (NumPy's print option) along each longer axis."""
    if data.size <= threshold:
        return data
    edgeitems = np.get_printoptions()["edgeitems"]
    for axis in range(data.ndim):
        if data.shape[axis] > 2 * edgeitems:
            ends = np.r_[0:edgeitems, data.shape[axis] - edgeitems:data.shape[axis]]
            data = np.take(data, ends, axis=axis)
    return data


def _fewest_digits(v: Any) -> float:
    """The number with the fewest significant digits that rounds to the finite 16-bit `v`."""
    x = float(v)
    with np.errstate(over="ignore"):  # 7e+04 is tried for float16's 65504
        return next(float(f"{x:.{d}g}") for d in range(1, 10) if type(v)(float(f"{x:.{d}g}")) == v)


def is_foreign_array(x: Any) -> bool:
    """Whether `x` is another library's array (CuPy's, torch's, anything with ``__array__``),
    which ``asarray`` takes with its dtype. Not an Array, a NumPy array or a Python value."""
    if isinstance(x, (Array, np.ndarray, np.generic, list, tuple, str, bytes, numbers.Number)):
        return False
    if hasattr(x, "_nbmp_array"):  # a Variable
        return False
    return _is_cupy(x) or hasattr(x, "__array__") or hasattr(x, "__array_interface__")


def _from_foreign(x: Any) -> np.ndarray:
    """A host array of another library's array `x`, as NumPy reads it (dtype kept)."""
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"Cannot make an Array from this {type(x).__module__}.{type(x).__name__}: "
                        f"NumPy could not read it ({e})") from None


def _is_cupy(x: Any) -> bool:
    """Whether `x` is a CuPy array (checked without importing CuPy)."""
    return type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__")


def array_module(x: Array) -> ModuleType:
    """The array module of `x`'s storage: NumPy, or CuPy for a "cuda" Array on a GPU."""
    if isinstance(x._data, np.ndarray):
        return np
    import cupy

    return cupy


def _from_python(x: Any, dtype: Any) -> np.ndarray:
    from nbmp.policy import floatx

    if isinstance(x, (str, bytes, dict, set)) or x is None:
        raise TypeError(f"Cannot make an Array from {type(x).__name__}. Received: {x!r}")
    try:
        data = np.asarray(x)
    except (TypeError, ValueError):  # ragged lists; or 0-d bfloat16 Arrays, which NumPy takes
        data = _leaves_as_numpy(x)  # for numbers (float(x)) that ml_dtypes' bfloat16 refuses
    if data.dtype == object and data.size and all(_is_real(v) for v in data.flat):
        # ints past 64 bits, or other real numbers (Fraction): floats, if they may be
        if all(isinstance(v, numbers.Integral) for v in data.flat) and not (
                dtype is not None and dtypes.is_floating(dtype)):
            raise OverflowError(f"Python ints beyond 64 bits (int64 and uint64 hold at most "
                                f"{np.iinfo(np.uint64).max}); a floating dtype= takes them. "
                                f"Received: {x!r:.200}")
        # floats for a narrower dtype: rounded to odd, so that its rounding from float64 is the
        # one rounding of the exact value (float(v) rounds to nearest: a second rounding after it
        # can go the wrong way)
        narrow = dtypes.canonical_name(dtype if dtype is not None else floatx()) != "float64"
        data = np.array([_to_float64(v, narrow) for v in data.flat], np.float64).reshape(data.shape)
    text_or_records = data.dtype.kind in "USV" and data.dtype != dtypes.bfloat16  # (kind V too)
    if data.dtype == object or text_or_records:
        raise TypeError(
            "Cannot make an Array from this value: it is not a (rectangular) nested list of "
            f"numbers. Received: {x!r:.200}"
        )
    held = _stacked_dtype(x) if data.dtype.kind in "biuf" else None
    if held is not None and dtype is None:  # a list of arrays (asarray([a, b])): their dtype
        return data.astype(dtypes.as_numpy(held))
    if data.dtype == np.float64 and dtype is None:
        data = data.astype(floatx() if floatx() != "bfloat16" else dtypes.bfloat16)
        return data
    target = np.dtype(np.int32) if dtype is None else dtypes.as_numpy(dtype)
    floats = data.dtype.kind == "f" and held is None
    if data.size and target.kind in "iu" and (data.dtype.kind in "iu" or floats):  # no wrapping
        if floats and not np.isfinite(data).all():
            raise ValueError(f"Cannot convert nan or inf to {target.name}. Received: {x!r:.200}")
        # floats truncated toward 0, as NumPy; the bounds compared exactly, as Python ints
        low, high = (int(np.trunc(v)) if floats else int(v) for v in (data.min(), data.max()))
        info = np.iinfo(target)
        if low < info.min or high > info.max:
            default = " (the default integer dtype: pass a wider dtype=, int64 or uint64)"
            raise OverflowError(f"Python {'floats' if floats else 'ints'} outside {target.name}'s range "
                                f"[{info.min}, {info.max}]{default if dtype is None else ''}. "
                                f"Received: {x!r:.200}")
    if data.dtype == np.int64 and dtype is None:
        data = data.astype(np.int32)
    return data


def _to_float64(v: Any, odd: bool) -> float:
    """Real number `v` as a float64: rounded to nearest, or, if `odd` and `v` is an int or a
    fraction that float64 does not hold, truncated with the last bit set ("round to odd"), which
    a later rounding to 24 bits or fewer rounds as it would the exact value.

    >>> _to_float64(2**70 + 2**46 + 1, odd=True) == 2**70 + 2**46 + 2**18
    True
    """
    if not (odd and isinstance(v, numbers.Rational)) or v == 0:
        return float(v)
    p, q = abs(int(v.numerator)), int(v.denominator)
    shift = 55 - (p.bit_length() - q.bit_length())  # p * 2**shift / q: 54 to 56 bits
    m, rest = divmod(p << shift, q) if shift >= 0 else divmod(p, q << -shift)
    extra = m.bit_length() - 53
    inexact = rest != 0 or m & ((1 << extra) - 1) != 0
    m = m >> extra | int(inexact)
    return math.copysign(math.ldexp(m, extra - shift), v)


def _stacked_dtype(x: Any) -> Any:
    """The dtype NumPy promotion gives the items of `x` if it is a list or tuple of arrays (or
    NumPy scalars) only, as ``asarray([a, b])`` stacks them; else None (its Python numbers make
    floatx). Only the first item is looked at when it is no array: lists of numbers cost nothing."""
    if not isinstance(x, (list, tuple)) or not x or not hasattr(x[0], "dtype"):
        return None
    if not all(hasattr(v, "dtype") for v in x):
        return None
    return dtypes.result_type(*(v.dtype for v in x))


def _leaves_as_numpy(x: Any) -> np.ndarray:
    """``np.asarray(x)`` of nested lists whose Arrays (and Variables) are first made NumPy
    arrays (a "cuda" one raises its own error); an object array when the lists are ragged."""
    def leaf(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [leaf(u) for u in v]
        return np.asarray(v) if isinstance(v, Array) or hasattr(v, "_nbmp_array") else v

    leaves = leaf(x)
    try:
        return np.asarray(leaves)
    except (TypeError, ValueError):
        return np.empty(0, object)


def _is_real(v: Any) -> bool:
    """Whether `v` is a Python or NumPy real number, booleans included."""
    return isinstance(v, (numbers.Real, np.bool_))


def _html_summary(x: Array) -> str:
    data = x._host()
    stats = ""
    if data.size and dtypes.is_floating(data.dtype):
        f = data.astype(np.float64)
        finite = f[np.isfinite(f)]
        parts = [f"nan: {int(np.isnan(f).sum())}", f"inf: {int(np.isinf(f).sum())}"]
        if finite.size:
            low, high, mean = finite.min(), finite.max(), finite.mean()  # the mean exact, not rounded
            if dtypes.is_half(data.dtype):  # as the repr shows 16-bit values: 0.1, not 0.0999756
                low, high = (_fewest_digits(data.dtype.type(v)) for v in (low, high))
                held = data.dtype.type(mean)
                mean = _fewest_digits(held) if float(held) == mean else mean  # one of its values
            parts = [f"min {low:.6g}", f"max {high:.6g}", f"mean {mean:.6g}"] + parts
        stats = "<br>" + ", ".join(parts)
    values = np.array2string(data, separator=", ", threshold=100, formatter=_formatter(data, 100))
    return (
        f"<div><b>nbmp.Array</b> shape <code>{x.shape}</code> dtype <code>{x.dtype.name}</code> "
        f"device <code>{x.device}</code>{stats}<pre>{values}</pre></div>"
    )


from nbmp import ops as _ops  # noqa: E402  (ops imports Array: bind after the class exists)
