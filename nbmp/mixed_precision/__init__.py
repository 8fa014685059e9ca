"""tf.keras 2.x names for dtype policies: ``nbmp.mixed_precision.Policy`` and friends.

They share the one global state with ``nbmp.set_global_policy`` / ``nbmp.set_dtype_policy``;
the Keras 3 names ``dtype_policy`` and ``set_dtype_policy`` are here too, as in
``keras.mixed_precision``.

>>> from nbmp import mixed_precision
>>> mixed_precision.set_global_policy("mixed_float16")
>>> mixed_precision.global_policy()
<Policy "mixed_float16">
>>> mixed_precision.set_global_policy(None)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nbmp import policy as _policy
from nbmp.mixed_precision import experimental
from nbmp.policy import DTypePolicy, PolicyLike, dtype_policy, set_dtype_policy

__all__ = ["Policy", "dtype_policy", "experimental", "global_policy", "policy_scope",
           "set_dtype_policy", "set_global_policy"]


class Policy(DTypePolicy):
    """``tf.keras.mixed_precision.Policy``: the same as ``nbmp.DTypePolicy``, tf.keras's repr.

    >>> Policy("mixed_bfloat16")
    <Policy "mixed_bfloat16">
    """


def global_policy() -> DTypePolicy:
    """The global policy (a ``Policy`` built from ``floatx()`` when none was set)."""
    return _policy._current() or Policy(_policy.floatx())


def set_global_policy(policy: PolicyLike) -> None:
    """Set the global policy; strings become ``Policy`` objects. ``None`` resets it."""
    _policy._set_current(_policy._checked_global(policy, Policy, "set_global_policy"))


@contextlib.contextmanager
def policy_scope(policy: PolicyLike) -> Iterator[DTypePolicy]:
    """Use `policy` globally inside a ``with`` block (this thread only)."""
    with _policy.policy_scope(_policy._checked_global(policy, Policy, "policy_scope")) as active:
        yield active
