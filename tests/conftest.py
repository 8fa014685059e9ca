"""Shared fixtures: global policy state restores itself after every test."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from nbmp import policy

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _restore_global_policy():
    """Each test starts from float32 with no global policy set, and leaves it so."""
    saved = (policy._global, policy._floatx)
    policy._global, policy._floatx = None, "float32"
    yield
    policy._global, policy._floatx = saved
