"""Saving weights to ``.npz`` exactly, bfloat16 included (NumPy cannot store ml_dtypes types,
so 16-bit floats are stored as their raw bits with the dtype name beside them)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nbmp import dtypes


def save(path: str | os.PathLike[str], names: list[str], values: list[np.ndarray]) -> None:
    """Write `values` (with their `names`) to `path`, bit-exact."""
    arrays: dict[str, Any] = {
        "names": np.array(names, dtype=np.str_),
        "dtypes": np.array([v.dtype.name for v in values], dtype=np.str_),
    }
    for i, v in enumerate(values):
        arrays[f"w{i}"] = v.view(np.uint16) if v.dtype.name == "bfloat16" else v
    np.savez(path, **arrays)


def load(path: str | os.PathLike[str]) -> tuple[list[str], list[np.ndarray]]:
    """The names and values written by ``save``."""
    with np.load(path, allow_pickle=False) as data:
        if "names" not in data or "dtypes" not in data:
            raise ValueError(f"{os.fspath(path)!r} is not an nbmp weights file (no names/dtypes)")
        names = [str(n) for n in data["names"]]
        kinds = [str(d) for d in data["dtypes"]]
        values = [data[f"w{i}"].view(dtypes.as_numpy(kind)) if kind == "bfloat16" else data[f"w{i}"]
                  for i, kind in enumerate(kinds)]
    return names, values
