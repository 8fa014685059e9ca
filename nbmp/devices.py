"""Which devices nbmp can compute on: ``"cpu"`` always, ``"cuda"`` when it is usable.

``"cuda"`` needs the ``numba-cuda`` package (``pip install nbmp[cuda12]`` or ``nbmp[cuda13]``,
which also bring CuPy) and an NVIDIA GPU; or, without a GPU, that package and
``NUMBA_ENABLE_CUDASIM=1``, which runs the same CUDA kernels in Numba's simulator on NumPy
storage (slow, for tests and teaching).
Nothing CUDA is imported until a CUDA device is asked for.

>>> import nbmp
>>> "cpu" in nbmp.devices()
True
"""

from __future__ import annotations

import functools
import importlib.util
import os

__all__ = ["devices", "check_device", "cuda_status", "cuda_simulated"]

CUDA_HELP = ("install the CUDA extra, `pip install nbmp[cuda12]` (or nbmp[cuda13] for CUDA 13 "
             "drivers), on a machine with an NVIDIA GPU; without one, with the extra installed, set "
             "NUMBA_ENABLE_CUDASIM=1 before starting Python to run the CUDA kernels in Numba's simulator")


def cuda_simulated() -> bool:
    """Whether CUDA kernels run in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


@functools.cache
def cuda_status() -> tuple[bool, str]:
    """(usable, why): whether the ``"cuda"`` device works here, and a sentence saying why."""
    if importlib.util.find_spec("numba_cuda") is None:
        if importlib.util.find_spec("numba.cuda") is not None:
            return False, ("only Numba's built-in numba.cuda is installed, which is deprecated and "
                           f"not supported by nbmp: {CUDA_HELP}")
        return False, f"the numba-cuda package is not installed: {CUDA_HELP}"
    if cuda_simulated():
        return True, "simulated: Numba's CUDA simulator on NumPy storage (NUMBA_ENABLE_CUDASIM=1)"
    if importlib.util.find_spec("cupy") is None:
        return False, f"CuPy is not installed (nbmp keeps GPU arrays in CuPy): {CUDA_HELP}"
    try:
        from numba import cuda

        if not cuda.is_available():
            return False, f"no usable NVIDIA GPU or driver was found: {CUDA_HELP}"
        name = cuda.get_current_device().name
    except Exception as err:  # a broken driver or toolkit must not break nbmp on the CPU
        return False, f"CUDA failed to start ({type(err).__name__}: {err}): {CUDA_HELP}"
    return True, f"GPU: {name.decode() if isinstance(name, bytes) else name}"


def devices() -> list[str]:
    """The device names usable in this process, ``"cpu"`` first."""
    return ["cpu", "cuda"] if cuda_status()[0] else ["cpu"]


def check_device(device: object) -> str:
    """`device` if it names a usable device, else an error saying what is valid and why not."""
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        usable, why = cuda_status()
        if not usable:
            raise RuntimeError(f"The 'cuda' device is not available: {why}")
        return "cuda"
    raise ValueError(
        f"Unknown device {device!r}. Valid: 'cpu', 'cuda'. "
        f"Received: device={device!r} (of type {type(device).__name__})"
    )
