"""Compute backends: ``reference`` (the float64 oracle), ``cpu`` and ``cuda`` (Numba kernels).

Backends take and return the storage arrays of one device (NumPy on the CPU; CuPy on a GPU, or
NumPy under the CUDA simulator) and know nothing of policies or layers; ``nbmp.ops`` validates
arguments and picks the backend for an Array's device. The CUDA backend is imported on first use.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["for_device"]


_loaded: dict[str, ModuleType] = {}


def for_device(device: str) -> ModuleType:
    """The backend module that computes on `device` (``"cpu"`` or ``"cuda"``)."""
    module = _loaded.get(device)
    if module is None:
        module = _loaded[device] = _load(device)
    return module


def _load(device: str) -> ModuleType:
    if device == "cpu":
        from nbmp.backend import cpu

        return cpu
    if device == "cuda":
        from nbmp.devices import check_device

        check_device(device)  # a clear error before numba.cuda is imported
        from nbmp.backend import cuda

        return cuda
    raise ValueError(f"No backend for device {device!r}. Valid: 'cpu', 'cuda'")
