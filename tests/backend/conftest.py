"""Fixtures shared by the CPU kernel tests."""

from __future__ import annotations

import pytest

from nbmp.backend.cpu import amx, simd

#: The bf16 paths to test on this CPU: its default, and on a CPU with AMX also the
#: ``vdpbf16ps`` pairs it has but does not pick (exposed by reporting AMX unavailable).
BF16_PATHS = ["default", *(["pairs"] if simd.DOT_BF16 and amx.available() else [])]


@pytest.fixture(params=BF16_PATHS)
def bf16_path(request, monkeypatch):
    """Runs the test once per bf16 path of ``BF16_PATHS``."""
    if request.param == "pairs":
        monkeypatch.setattr(amx, "available", lambda: False)
    return request.param
