"""Weight initializers, Keras names, drawing from a seedable NumPy generator.

Values are drawn in float64 and rounded once to the weight's dtype.

>>> import nbmp
>>> nbmp.set_random_seed(0)
>>> init = nbmp.initializers.get("glorot_uniform")
>>> init((2, 3), "float32").shape
(2, 3)
>>> nbmp.initializers.get({"class_name": "Constant", "config": {"value": 0.5}})((2,), "float16")
array([0.5, 0.5], dtype=float16)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.ops._core import is_int, is_real

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal",
    "LecunUniform", "VarianceScaling",
    "get", "set_random_seed",
]

_generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed the generator that unseeded initializers draw from (reproducible weights).

    >>> set_random_seed(1); a = get("random_normal")((3,), "float32")
    >>> set_random_seed(1); b = get("random_normal")((3,), "float32")
    >>> bool((a == b).all())
    True
    """
    global _generator
    _generator = np.random.default_rng(_checked_seed(seed, "set_random_seed"))


def _checked_seed(seed: Any, who: str) -> Any:
    """`seed` if NumPy's generators take it: None or an int >= 0."""
    if seed is not None and not (is_int(seed) and int(seed) >= 0):
        raise ValueError(f"{who}: seed must be an int >= 0 or None. Received: seed={seed!r}")
    return seed


def _number(value: Any, name: str, who: str, at_least: float | None = None, finite: bool = True) -> float:
    """`value` as a float, if it is a real number: a Python or NumPy one, a 0-d array, a Decimal
    (finite, at least `at_least`, as asked); not a string."""
    try:
        number = float(value) if not isinstance(value, (str, bytes)) else None
    except (TypeError, ValueError):
        number = None
    if (number is None or (finite and not math.isfinite(number))
            or (at_least is not None and not number >= at_least)):
        what = "a finite number" if finite else "a number"
        what += f" >= {at_least:g}" if at_least is not None else ""
        raise ValueError(f"{who}: {name} must be {what}. Received: {name}={value!r}")
    return number


class Initializer:
    """Base class: ``initializer(shape, dtype) -> np.ndarray``."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _checked_seed(seed, type(self).__name__)

    def _generator(self) -> np.random.Generator:
        """The global generator, or, seeded, a fresh one: the same values on every call, as Keras 3
        (two layers sharing one seeded initializer start equal)."""
        return _generator if self.seed is None else np.random.default_rng(self.seed)

    #: Whether it draws random floating values (which an integer or bool weight would truncate).
    random = True

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32") -> np.ndarray:
        if self.random and not dtypes.is_floating(dtype):
            raise ValueError(f"{type(self).__name__} draws random floating values, which a "
                             f"{dtypes.canonical_name(dtype)} weight would truncate: give the weight a "
                             f"floating dtype, or use zeros, ones or constant. Received: dtype={dtype!r}")
        values = np.asarray(self.sample(tuple(int(d) for d in shape)), np.float64)
        with np.errstate(over="ignore"):
            return values.astype(dtypes.as_numpy(dtype))

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed} if self.seed is not None else {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    random = False

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    random = False

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to `value`."""

    random = False

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = _number(value, "value", "Constant", finite=False)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal with `mean` and `stddev`."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        who = type(self).__name__
        self.mean, self.stddev = _number(mean, "mean", who), _number(stddev, "stddev", who, at_least=0)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._generator().normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(Initializer):
    """Uniform in [`minval`, `maxval`)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval = _number(minval, "minval", "RandomUniform")
        self.maxval = _number(maxval, "maxval", "RandomUniform")

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._generator().uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal samples, redrawn where |z| > 2."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2
    return z


class TruncatedNormal(RandomNormal):
    """Normal, redrawn where more than two standard deviations from the mean."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.mean + self.stddev * _truncated_standard_normal(self._generator(), shape)


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight shape: Dense (in, out) or a conv kernel (..., in, out)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class VarianceScaling(Initializer):
    """Scale / fan (fan_in, fan_out or their average), normal (truncated) or uniform."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None) -> None:
        super().__init__(seed)
        if not is_real(scale) or not scale > 0:
            raise ValueError(f"scale must be a number > 0. Received: scale={scale!r}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg'. Received: {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError("distribution must be 'truncated_normal', 'untruncated_normal' or "
                             f"'uniform'. Received: {distribution!r}")
        self.scale: float = float(scale)
        self.mode: str = mode
        self.distribution: str = distribution

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        rng = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0, math.sqrt(variance), shape)
        # 0.8796... is the stddev of a standard normal truncated to [-2, 2]
        return math.sqrt(variance) / 0.87962566103423978 * _truncated_standard_normal(rng, shape)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class GlorotUniform(VarianceScaling):
    """Uniform with limit sqrt(6 / (fan_in + fan_out)), Keras' default for kernels."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "uniform", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class GlorotNormal(VarianceScaling):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out))."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class HeNormal(VarianceScaling):
    """Truncated normal with stddev sqrt(2 / fan_in), for ReLU networks."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "truncated_normal", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class HeUniform(VarianceScaling):
    """Uniform with limit sqrt(6 / fan_in)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(2.0, "fan_in", "uniform", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class LecunNormal(VarianceScaling):
    """Truncated normal with stddev sqrt(1 / fan_in)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "truncated_normal", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


class LecunUniform(VarianceScaling):
    """Uniform within +-sqrt(3 / fan_in)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(1.0, "fan_in", "uniform", seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


_BY_NAME: dict[str, type[Initializer]] = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "variance_scaling": VarianceScaling,
}
_BY_CLASS = {cls.__name__: cls for cls in _BY_NAME.values()}


def get(identifier: Any) -> Initializer:
    """An initializer from a name (``"he_normal"`` or ``"HeNormal"``), a config dict, an
    Initializer or its class, or a callable."""
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, str) and identifier in _BY_CLASS:
        return _BY_CLASS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(
        f"Unknown initializer {identifier!r}. Valid names: {', '.join(_BY_NAME)}; or an "
        "Initializer, a callable (shape, dtype) -> array, or a {'class_name', 'config'} dict."
    )


def serialize(initializer: Any) -> Any:
    """A JSON-ready description ``get`` understands (callables are returned as they are)."""
    if isinstance(initializer, Initializer):
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    return initializer
