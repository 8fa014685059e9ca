"""The arrays the kernels read, as one Numba type whatever the caller's array allows.

Numba compiles a kernel once for each set of argument types, and a read-only array is a type
of its own. nbmp's Arrays keep read-only storage, a user's NumPy array is writable, and the
empty placeholders for what a call lacks (no bias, weights packed beforehand) were writable
too: a session that met several of these compiled each kernel again, 5-16 s a time (a bf16
product on AMX tiles twice over, an fp16 one with weights packed and one without). The kernels
never write what they read, so they take all of it read-only.

>>> import numpy as np
>>> read_only(np.ones(3)).flags.writeable
False
"""

from __future__ import annotations

import numpy as np

__all__ = ["read_only", "EMPTY"]


def read_only(x: np.ndarray) -> np.ndarray:
    """`x` itself if it cannot be written, else a read-only view of it (no copy)."""
    if not x.flags.writeable:
        return x
    view = x.view()
    view.flags.writeable = False
    return view


class _Empty(dict):
    """``EMPTY[dtype]``: a read-only empty array of `dtype`, made once."""

    def __missing__(self, dtype: np.dtype) -> np.ndarray:
        self[dtype] = empty = read_only(np.empty(0, dtype))
        return empty


#: Read-only empty arrays by dtype: the placeholders for an input a call does not have.
EMPTY: dict[np.dtype, np.ndarray] = _Empty()
