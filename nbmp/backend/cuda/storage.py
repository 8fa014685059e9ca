"""Where ``"cuda"`` Arrays keep their data: CuPy arrays on a GPU, NumPy arrays under the simulator.

``to_device`` and ``to_host`` are the only transfers nbmp makes, and only when asked
(``Array.to``, ``Array.numpy``, ``nbmp.asarray(..., device=...)``). bfloat16 crosses as its uint16
bits, so the transfer never depends on how the array library treats that dtype.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp.devices import check_device, cuda_simulated

__all__ = ["array_module", "to_device", "to_host"]


def array_module(like: Any = None) -> ModuleType:
    """The module of the device arrays: NumPy under the simulator (or for NumPy `like`), else CuPy."""
    if cuda_simulated() or isinstance(like, np.ndarray):
        return np
    check_device("cuda")
    import cupy

    return cupy


def to_device(host: np.ndarray) -> Any:
    """A device copy of the NumPy array `host` (under the simulator: `host` itself)."""
    xp = array_module()
    if xp is np:
        return host
    if host.dtype == dtypes.bfloat16:
        return xp.asarray(host.view(np.uint16)).view(host.dtype)
    return xp.asarray(host)


def to_host(data: Any) -> np.ndarray:
    """A new NumPy array with the values of the device array `data`."""
    if isinstance(data, np.ndarray):
        return data.copy()
    if data.dtype == dtypes.bfloat16:
        return data.view(np.uint16).get().view(dtypes.bfloat16)
    return data.get()
