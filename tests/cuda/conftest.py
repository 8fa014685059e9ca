"""The CUDA tests run on a GPU or, in CI, in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``):
the simulator runs a Python thread per CUDA thread, so shapes stay tiny (one or two blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from nbmp.devices import cuda_status


@pytest.fixture(scope="session")
def cuda_backend():
    """The CUDA backend module; the test is skipped where the "cuda" device is not usable."""
    usable, why = cuda_status()
    if not usable:
        pytest.skip(f"no 'cuda' device: {why}")
    from nbmp.backend import cuda

    return cuda


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
