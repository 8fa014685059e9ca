"""Compute backends: ``reference`` (the float64 oracle) and ``cpu`` (Numba kernels).

Backends take and return NumPy arrays and know nothing of policies or layers; ``nbmp.ops``
validates arguments and picks the backend for an Array's device.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["for_device"]


def for_device(device: str) -> ModuleType:
    """The backend module that computes on `device`."""
    if device == "cpu":
        from nbmp.backend import cpu

        return cpu
    raise ValueError(f"No backend for device {device!r}")
