"""TF 1.14 names: ``Policy("infer")`` and ``Policy("infer_float32_vars")``, ``set_policy``.

``"infer"`` is TF 1.14's name for ``"_infer"``: a layer takes the dtype of its first input.
``"infer_float32_vars"`` computes in the dtype of the first floating input (inputs are not
cast), creates variables in float32 and reads them in the compute dtype.

>>> from nbmp.mixed_precision import experimental
>>> p = experimental.Policy("infer_float32_vars")
>>> p.default_variable_dtype, p.should_cast_variables
('float32', True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nbmp import policy as _policy
from nbmp.policy import DTypePolicy, PolicyLike

__all__ = ["Policy", "global_policy", "set_policy", "policy_scope"]


class Policy(DTypePolicy):
    """A policy that also accepts the TF 1.14 names ``"infer"`` and ``"infer_float32_vars"``.

    >>> Policy("infer")
    <Policy "infer">
    """

    _extra_names = ("infer", "infer_float32_vars")

    @property
    def default_variable_dtype(self) -> str | None:
        """The dtype variables are created in, or None if it comes from the inputs."""
        return self.variable_dtype

    @property
    def should_cast_variables(self) -> bool:
        """Whether variables are read in a dtype other than the one they are stored in."""
        return self.variable_dtype is not None and self.compute_dtype != self.variable_dtype


def global_policy() -> DTypePolicy:
    """The global policy (shared with ``nbmp.global_policy``)."""
    return _policy._current() or Policy(_policy.floatx())


def set_policy(policy: PolicyLike) -> None:
    """TF 1.14's ``set_policy``: set the global policy (TF 1.14 names allowed)."""
    _policy._set_current(_policy._checked_global(policy, Policy, "set_policy"))


@contextlib.contextmanager
def policy_scope(policy: PolicyLike) -> Iterator[DTypePolicy]:
    """Use `policy` globally inside a ``with`` block (this thread only)."""
    with _policy.policy_scope(_policy._checked_global(policy, Policy, "policy_scope")) as active:
        yield active
