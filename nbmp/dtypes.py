"""The one place for dtype knowledge: names, bfloat16, floating-point facts and promotion.

>>> from nbmp import dtypes
>>> dtypes.canonical_name("half"), dtypes.is_floating("bfloat16")
('float16', True)
>>> dtypes.finfo("float16").max
65504.0
>>> dtypes.result_type("bfloat16", 2.5)   # Python scalars are weak (NEP 50)
'bfloat16'
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

__all__ = [
    "bfloat16",
    "FLOATING",
    "SUPPORTED",
    "FloatInfo",
    "canonical_name",
    "as_numpy",
    "is_floating",
    "is_half",
    "finfo",
    "finfo_table",
    "result_type",
]

#: The bfloat16 NumPy dtype, ml_dtypes', which is imported on first use of this name or of
#: ``as_numpy("bfloat16")``, not with nbmp: ml_dtypes 0.7.0 takes over a second to import.
bfloat16: np.dtype  # the module's __getattr__ loads it

#: Floating-point dtype names nbmp computes in, narrowest first.
FLOATING: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

#: Every dtype name nbmp accepts.
SUPPORTED: tuple[str, ...] = FLOATING + (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
)

_ALIASES = {"half": "float16", "float": "float32", "single": "float32", "double": "float64"}
#: NumPy dtype -> name, for the common case (every operation asks, and ``dtype.name`` is slow);
#: bfloat16 joins when ml_dtypes is loaded (``_load_bfloat16``).
_NAMES: dict[Any, str] = {np.dtype(name): name for name in SUPPORTED if name != "bfloat16"}
_DTYPES = {name: dtype for dtype, name in _NAMES.items()}
#: Every hashable spelling of a supported dtype that maps to its name directly: names, aliases,
#: NumPy dtypes and scalar types (``canonical_name`` is asked several times per operation).
_CANONICAL: dict[Any, str] = {**{name: name for name in SUPPORTED}, **_ALIASES, **_NAMES,
                              **{dtype.type: name for dtype, name in _NAMES.items()}}


def _load_bfloat16() -> np.dtype:
    """Import ml_dtypes and enter its bfloat16 in the tables above and as ``bfloat16``."""
    import ml_dtypes

    dtype = np.dtype(ml_dtypes.bfloat16)
    _NAMES[dtype] = _CANONICAL[dtype] = _CANONICAL[dtype.type] = "bfloat16"
    _DTYPES["bfloat16"] = dtype
    globals()["bfloat16"] = dtype  # later reads of ``dtypes.bfloat16`` skip __getattr__
    return dtype


def __getattr__(name: str) -> Any:
    if name == "bfloat16":
        return _load_bfloat16()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion lists ``bfloat16`` before it is loaded
    return sorted({*globals(), "bfloat16"})


class DTypeTable(dict[Any, Any]):
    """``{NumPy dtype: value}`` written with dtype names, for the kernels' tables. bfloat16's
    entry waits for ml_dtypes, so that building a table does not import it, and is found by
    ``table[dtype]`` and ``dtype in table`` whether nbmp has loaded ml_dtypes yet or not.

    >>> table = DTypeTable({"float16": "half", "bfloat16": "brain"})
    >>> import ml_dtypes; table[np.dtype(ml_dtypes.bfloat16)], np.dtype("float32") in table
    ('brain', False)
    """

    def __init__(self, by_name: dict[str, Any]) -> None:
        super().__init__((np.dtype(name), v) for name, v in by_name.items() if name != "bfloat16")
        self._bfloat16 = by_name.get("bfloat16", _ABSENT)

    def _holds_bfloat16(self, key: Any) -> bool:
        """Whether `key` is bfloat16's dtype and the table has an entry for it, which then
        becomes a plain entry (``dtype.name`` takes microseconds; the kernels ask every call)."""
        if self._bfloat16 is _ABSENT or not isinstance(key, np.dtype) or key.type.__name__ != "bfloat16":
            return False
        self[key] = self._bfloat16
        return True

    def __missing__(self, key: Any) -> Any:
        if not self._holds_bfloat16(key):
            raise KeyError(key)
        return self._bfloat16

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self, key) or self._holds_bfloat16(key)


_ABSENT = object()


def canonical_name(dtype: Any) -> str:
    """The canonical name of a dtype given as a name, a NumPy dtype or type, or an object with `.dtype`.

    >>> canonical_name(np.float16), canonical_name("bfloat16"), canonical_name(np.dtype("int32"))
    ('float16', 'bfloat16', 'int32')
    >>> canonical_name(float)  # as Keras reads it (NumPy: float64)
    'float32'
    """
    try:
        return _CANONICAL[dtype]
    except (KeyError, TypeError):  # not one of those spellings, or unhashable
        pass
    given = getattr(dtype, "dtype", None)  # arrays, Arrays, Variables
    if isinstance(given, np.dtype) and given in _NAMES:
        return _NAMES[given]
    if isinstance(dtype, str):  # every name and alias is in _CANONICAL
        raise ValueError(
            f"Unknown dtype {dtype!r}. Valid: {', '.join(SUPPORTED)}. "
            f"Received: dtype={dtype!r} (of type str)"
        )
    if dtype is None or isinstance(dtype, bool):
        raise TypeError(f"Expected a dtype name or NumPy dtype. Received: dtype={dtype!r}")
    # arrays, Arrays and Variables carry a .dtype; scalar types (np.float32) are dtypes already
    candidate = dtype if isinstance(dtype, (type, np.dtype)) else getattr(dtype, "dtype", dtype)
    if candidate is float:  # Keras' (and TensorFlow's) reading of it, as the name "float"
        candidate = np.float32
    elif candidate is int:
        candidate = np.int64
    try:
        np_dtype = np.dtype(candidate)
    except TypeError:
        raise TypeError(
            f"Expected a dtype name or NumPy dtype. Valid names: {', '.join(SUPPORTED)}. "
            f"Received: dtype={dtype!r} (of type {type(dtype).__name__})"
        ) from None
    if np_dtype.name in SUPPORTED:
        if np_dtype.name == "bfloat16":  # ml_dtypes', imported by whoever made it: the fast tables
            _load_bfloat16()             # know it from now on
        return np_dtype.name
    raise ValueError(
        f"Unsupported dtype {np_dtype.name!r}. Valid: {', '.join(SUPPORTED)}. "
        f"Received: dtype={dtype!r}"
    )


def as_numpy(dtype: Any) -> np.dtype:
    """The NumPy dtype for a dtype name or object (bfloat16 is ml_dtypes')."""
    name = canonical_name(dtype)
    return _DTYPES[name] if name in _DTYPES else _load_bfloat16()  # the one name added on use


def is_floating(dtype: Any) -> bool:
    """Whether `dtype` is one of nbmp's floating-point dtypes (bfloat16 included).

    >>> is_floating("bfloat16"), is_floating("int32")
    (True, False)
    """
    return canonical_name(dtype) in FLOATING


def is_half(dtype: Any) -> bool:
    """Whether `dtype` is a 16-bit float (float16 or bfloat16)."""
    return canonical_name(dtype) in ("float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class FloatInfo:
    """Facts about a floating-point format, in the units a course on mixed precision uses.

    `mantissa_bits` counts the stored fraction bits (10 for float16); precision is one more.
    """

    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float

    @property
    def decimal_digits(self) -> float:
        """Decimal digits of precision, log10(2**(mantissa_bits + 1))."""
        return float(np.log10(2.0) * (self.mantissa_bits + 1))

    def __repr__(self) -> str:
        return (
            f"FloatInfo({self.name}: {self.bits} bits = 1 sign + {self.exponent_bits} exponent + "
            f"{self.mantissa_bits} mantissa, max={self.max:.6g}, "
            f"smallest_normal={self.smallest_normal:.6g}, "
            f"smallest_subnormal={self.smallest_subnormal:.6g}, eps={self.eps:.6g})"
        )


@functools.cache
def _make_finfo(name: str) -> FloatInfo:
    if name == "bfloat16":
        import ml_dtypes

        info = ml_dtypes.finfo(as_numpy(name))
    else:
        info = np.finfo(as_numpy(name))
    return FloatInfo(
        name=name,
        bits=int(info.bits),
        exponent_bits=int(info.nexp),
        mantissa_bits=int(info.nmant),
        max=float(info.max),
        smallest_normal=float(info.smallest_normal),
        smallest_subnormal=float(info.smallest_subnormal),
        eps=float(info.eps),
    )


def finfo(dtype: Any) -> FloatInfo:
    """Floating-point facts for float16, bfloat16, float32 or float64.

    >>> finfo("bfloat16").mantissa_bits, finfo("float16").smallest_subnormal
    (7, 5.960464477539063e-08)
    """
    name = canonical_name(dtype)
    if name not in FLOATING:
        raise ValueError(f"finfo needs a floating dtype ({', '.join(FLOATING)}). Received: {name!r}")
    return _make_finfo(name)


def finfo_table() -> str:
    """A printable table comparing the four floating formats.

    >>> print(finfo_table().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    dtype  bits  exp  mant  max  smallest normal  smallest subnormal  eps  digits
    """
    header = ("dtype", "bits", "exp", "mant", "max", "smallest normal", "smallest subnormal",
              "eps", "digits")
    rows = [header] + [
        (i.name, str(i.bits), str(i.exponent_bits), str(i.mantissa_bits),
         f"{i.max:.0f}" if i.max < 1e6 else f"{i.max:.4g}",  # float16's 65504 exactly
         f"{i.smallest_normal:.4g}", f"{i.smallest_subnormal:.4g}", f"{i.eps:.4g}",
         f"{i.decimal_digits:.1f}")
        for i in map(_make_finfo, FLOATING)
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _is_weak_scalar(x: Any) -> bool:
    """Python bool/int/float (not NumPy scalars): weak in promotion, as NEP 50 says."""
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _operand_dtype(x: Any) -> np.dtype:
    if isinstance(x, complex):
        raise TypeError(f"Complex values are not supported. Received: {x!r}")
    return as_numpy(x if isinstance(x, (str, np.dtype, type)) else getattr(x, "dtype", x))


def result_type(*operands: Any) -> str:
    """The dtype name of an operation on `operands` (dtypes, arrays, or Python scalars).

    NumPy 2 rules (NEP 50: Python scalars are weak), extended to bfloat16: bfloat16 with
    float16 gives float32, bfloat16 with a Python scalar or small int stays bfloat16.

    >>> result_type("float16", 1e5), result_type("bfloat16", "float16"), result_type("int32", 1.5)
    ('float16', 'float32', 'float64')
    """
    if not operands:
        raise ValueError("result_type needs at least one operand")
    first = _NAMES.get(getattr(operands[0], "dtype", None))  # arrays of one dtype: the common case
    if first is not None:
        for x in operands[1:]:
            if _NAMES.get(getattr(x, "dtype", None)) != first:
                break
        else:
            return first
    strong: list[np.dtype] = []
    weak: list[Any] = []
    for x in operands:
        if _is_weak_scalar(x):
            weak.append(x)
        else:
            given = getattr(x, "dtype", None)  # an array of a dtype nbmp knows, or else the slow way
            strong.append(given if isinstance(given, np.dtype) and given in _NAMES else _operand_dtype(x))
    if len(strong) == 1 and _NAMES.get(strong[0]) in FLOATING:  # Python scalars beside floats: the
        return _NAMES[strong[0]]                                     # floats' (NumPy's answer, sooner)
    if strong:  # a weak scalar's type decides, not its value (NEP 50): answers are kept
        return _promote(tuple(strong), tuple(type(x) for x in weak))
    return _promote_values((), weak)


@functools.lru_cache(maxsize=512)
def _promote(strong: tuple[np.dtype, ...], weak_types: tuple[type, ...]) -> str:
    """``result_type`` of arrays of the `strong` dtypes and Python scalars of `weak_types` (mixed
    dtypes: NumPy's promotion and ``dtype.name`` took 15 us a call, every operation asks)."""
    return _promote_values(strong, [False if issubclass(t, bool) else 0 if issubclass(t, int) else 0.0
                                    for t in weak_types])


def _promote_values(strong: tuple[np.dtype, ...], weak: list[Any]) -> str:
    # NumPy cannot promote bfloat16: let it stand in as float16, then map the answer back.
    halves = [_NAMES.get(dt) == "bfloat16" for dt in strong]
    stand_ins = [np.dtype(np.float16) if half else dt for dt, half in zip(strong, halves)]
    name = np.result_type(*stand_ins, *weak).name
    if name == "float16" and any(halves):
        return "float32" if np.dtype(np.float16) in strong else "bfloat16"
    return name
