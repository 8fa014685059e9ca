"""Dtype policies (Keras 3 ``DTypePolicy``, tf.keras ``Policy``) and the global policy.

A policy names two dtypes: the *compute* dtype a layer computes in and the *variable* dtype
its weights are stored in. ``"mixed_float16"`` computes in float16 and keeps float32 weights.

>>> import nbmp
>>> p = nbmp.DTypePolicy("mixed_float16")
>>> p, p.compute_dtype, p.variable_dtype
(<DTypePolicy "mixed_float16">, 'float16', 'float32')
>>> with nbmp.policy_scope("mixed_bfloat16"):
...     nbmp.global_policy()
<DTypePolicy "mixed_bfloat16">
>>> nbmp.global_policy()
<DTypePolicy "float32">
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from nbmp import dtypes

__all__ = [
    "DTypePolicy",
    "PolicyLike",
    "as_policy",
    "global_policy",
    "set_global_policy",
    "dtype_policy",
    "set_dtype_policy",
    "policy_scope",
    "floatx",
    "set_floatx",
    "serialize",
    "deserialize",
]

_MIXED = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
_INFER = "_infer"
#: TF 1.14 names, accepted only by ``nbmp.mixed_precision.experimental.Policy``.
_TF114_NAMES = ("infer", "infer_float32_vars")


class DTypePolicy:
    """A dtype policy for a layer: which dtype it computes in and which it stores weights in.

    Names: any dtype name (``"float32"``, ``"float64"``, ``"float16"``, ``"bfloat16"``,
    ``"int32"``, ...) sets both dtypes; ``"mixed_float16"`` / ``"mixed_bfloat16"`` compute in the
    16-bit type with float32 variables; ``"_infer"`` leaves both unset until a layer sees its
    first input, then the layer takes that input's dtype. No name: ``floatx()``'s.

    >>> DTypePolicy("float64").compute_dtype
    'float64'
    >>> DTypePolicy("_infer").compute_dtype is None
    True
    """

    _extra_names: tuple[str, ...] = ()

    def __init__(self, name: str | None = None) -> None:
        if name is None:  # Keras 3: floatx()
            name = floatx()
        if not isinstance(name, str):
            raise TypeError(
                f"{type(self).__name__} name must be a string such as 'mixed_float16'. "
                f"Received: name={name!r} (of type {type(name).__name__})"
            )
        self._compute_dtype, self._variable_dtype = self._parse(name)
        compute = self._compute_dtype
        # "half" is the "float16" policy
        self._name = compute if compute is not None and compute == self._variable_dtype else name

    def _parse(self, name: str) -> tuple[str | None, str | None]:
        if name in _MIXED:
            return _MIXED[name], "float32"
        if name == _INFER or name == "infer" and "infer" in self._extra_names:
            return None, None
        if name == "infer_float32_vars" and name in self._extra_names:
            return None, "float32"
        try:
            dtype = dtypes.canonical_name(name)
        except ValueError:
            valid = list(_MIXED) + [_INFER, *self._extra_names, *dtypes.SUPPORTED]
            hint = ""
            if name in _TF114_NAMES:
                hint = (f" {name!r} is a TF 1.14 name: use "
                        "nbmp.mixed_precision.experimental.Policy for it.")
            raise ValueError(
                f"Unknown policy {name!r}.{hint} Valid: {', '.join(map(repr, valid))}. "
                f"Received: name={name!r} (of type str)"
            ) from None
        return dtype, dtype

    @property
    def name(self) -> str:
        """The policy's name, e.g. ``"mixed_float16"``."""
        return self._name

    @property
    def compute_dtype(self) -> str | None:
        """The dtype layers compute in (``None`` until inferred, for ``"_infer"``)."""
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str | None:
        """The dtype layers create their weights in (``None`` for ``"_infer"``)."""
        return self._variable_dtype

    @property
    def is_mixed(self) -> bool:
        """Whether compute and variable dtypes differ (weights will autocast)."""
        return self._compute_dtype != self._variable_dtype

    @property
    def infers_compute_dtype(self) -> bool:
        """Whether the compute dtype comes from a layer's input rather than the policy."""
        return self._compute_dtype is None

    @property
    def casts_inputs(self) -> bool:
        """Whether layers cast their floating inputs to the compute dtype under this policy."""
        return self._name != "infer_float32_vars"

    def get_config(self) -> dict[str, Any]:
        """``{"name": ...}``; ``from_config`` rebuilds an equal policy."""
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DTypePolicy:
        """Rebuild a policy from ``get_config()``'s output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DTypePolicy):
            return NotImplemented
        return self._name == other._name

    def __hash__(self) -> int:
        return hash(("DTypePolicy", self._name))

    def __repr__(self) -> str:
        return f'<{type(self).__name__} "{self._name}">'

    def _repr_html_(self) -> str:
        return (
            f"<b>{type(self).__name__}</b> <code>{self._name}</code>: "
            f"compute <code>{self._compute_dtype}</code>, "
            f"variables <code>{self._variable_dtype}</code>"
        )


PolicyLike = str | DTypePolicy | None


def as_policy(policy: Any, cls: type[DTypePolicy] = DTypePolicy) -> DTypePolicy:
    """A policy from a policy, a policy name or a dtype (``np.float16``, ``"float64"``...).

    ``None`` gives the global policy.
    """
    if policy is None:
        return global_policy()
    if isinstance(policy, DTypePolicy):
        return policy
    if isinstance(policy, str):
        return cls(policy)
    if isinstance(policy, dict):
        return deserialize(policy)
    try:
        name = dtypes.canonical_name(policy)
    except TypeError:
        raise TypeError(
            "Expected a policy, a policy name (such as 'mixed_float16') or a dtype. "
            f"Received: {policy!r} (of type {type(policy).__name__})"
        ) from None
    except ValueError:  # a dtype, but none a policy can name
        name = str(getattr(policy, "name", None) or getattr(policy, "__name__", policy))
    return cls(name)


# ---- global state -------------------------------------------------------------------------
# The process-wide policy, plus a per-thread stack that policy_scope pushes onto, so that a
# scope in one thread never leaks into another.
_global: DTypePolicy | None = None
_floatx = "float32"
_local = threading.local()


def _scope_stack() -> list[DTypePolicy | None]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _current() -> DTypePolicy | None:
    stack = _scope_stack()
    return stack[-1] if stack else _global


def global_policy() -> DTypePolicy:
    """The policy layers use when none is passed; built from ``floatx()`` if none was set.

    >>> global_policy()
    <DTypePolicy "float32">
    """
    return _current() or DTypePolicy(_floatx)


def set_global_policy(policy: PolicyLike) -> None:
    """Set the global policy (``None`` resets it to one built from ``floatx()``).

    Only floating-point policies (and the inferring ones) can be global.

    >>> set_global_policy("mixed_float16"); global_policy()
    <DTypePolicy "mixed_float16">
    >>> set_global_policy(None)
    """
    _set_current(_checked_global(policy, DTypePolicy, "set_global_policy"))


def _checked_global(policy: PolicyLike, cls: type[DTypePolicy], caller: str) -> DTypePolicy | None:
    """`policy` as the global policy `caller` sets: a floating policy of class `cls`, or None."""
    if policy is None:
        return None
    if not isinstance(policy, (str, DTypePolicy)):
        raise TypeError(
            f"{caller} expects a policy, a policy name or None. "
            f"Received: policy={policy!r} (of type {type(policy).__name__})"
        )
    resolved = as_policy(policy, cls)
    if resolved.compute_dtype is not None and not dtypes.is_floating(resolved.compute_dtype):
        raise ValueError(
            "Only floating-point policies can be set as the global policy, such as 'float32' "
            f"and 'mixed_float16'. Received: policy={resolved.name!r}"
        )
    return resolved


def _set_current(policy: DTypePolicy | None) -> None:
    global _global
    stack = _scope_stack()
    if stack:
        stack[-1] = policy  # inside a scope: changes last only until the scope exits
    else:
        _global = policy


#: Keras 3 names.
dtype_policy = global_policy
set_dtype_policy = set_global_policy


@contextlib.contextmanager
def policy_scope(policy: PolicyLike) -> Iterator[DTypePolicy]:
    """Use `policy` as the global policy inside a ``with`` block (this thread only).

    >>> with policy_scope("mixed_float16") as p:
    ...     p.compute_dtype
    'float16'
    """
    resolved = _checked_global(policy, DTypePolicy, "policy_scope")
    stack = _scope_stack()
    stack.append(resolved)
    try:
        yield global_policy()
    finally:
        stack.pop()


def floatx() -> str:
    """The default float dtype name (``"float32"`` unless changed with ``set_floatx``)."""
    return _floatx


def set_floatx(value: str) -> None:
    """Set the default float dtype: one of float16, bfloat16, float32, float64.

    >>> set_floatx("float64"); global_policy(); set_floatx("float32")
    <DTypePolicy "float64">
    """
    global _floatx
    try:
        name = dtypes.canonical_name(value)
    except (TypeError, ValueError):
        name = None
    if name is None or not dtypes.is_floating(name):
        raise ValueError(
            f"floatx must be a floating dtype ({', '.join(dtypes.FLOATING)}). Received: {value!r}"
        )
    _floatx = name


def serialize(policy: DTypePolicy) -> dict[str, Any]:
    """A JSON-ready description of `policy` that ``deserialize`` turns back into it."""
    return {"class_name": type(policy).__name__, "module": type(policy).__module__,
            "config": policy.get_config()}


def deserialize(config: dict[str, Any]) -> DTypePolicy:
    """Inverse of ``serialize``."""
    from nbmp import mixed_precision  # noqa: F401  (registers the tf.keras-named classes)

    if not isinstance(config, dict):
        raise TypeError(f"deserialize expects the dict serialize() gives. Received: {config!r} "
                        f"(of type {type(config).__name__}); for a policy name use DTypePolicy(name)")
    classes: dict[str, type[DTypePolicy]] = {
        c.__name__ + "@" + c.__module__: c for c in _all_subclasses(DTypePolicy)}
    # Keras 3's configs name a module under "keras" (FloatDTypePolicy in 3.x before DTypePolicy
    # took its place), tf.keras 2's none: their classes by name
    classes.update({"DTypePolicy": DTypePolicy, "FloatDTypePolicy": DTypePolicy,
                    "Policy": mixed_precision.Policy})
    name, module = config.get("class_name"), config.get("module")
    cls = None
    if isinstance(name, str) and (module is None or isinstance(module, str)):
        cls = classes.get(f"{name}@{module}") or (
            classes.get(name) if module is None or module.split(".")[0] in ("keras", "tf") else None)
    if cls is None or not isinstance(config.get("config"), dict):
        raise ValueError(f"Not a policy config: expected {{'class_name': ..., 'module': ..., 'config': "
                         f"{{'name': ...}}}} with one of the classes {sorted(k for k in classes if '@' in k)}"
                         f" (or Keras' DTypePolicy, Policy). Received: {config!r}")
    return cls.from_config(config["config"])


def _all_subclasses(cls: type[DTypePolicy]) -> list[type[DTypePolicy]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _all_subclasses(sub)
    return found
