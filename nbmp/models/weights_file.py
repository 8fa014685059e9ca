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
    not_ours = f"{os.fspath(path)!r} is not an nbmp weights file (one that save_weights writes)"
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as e:  # not a zip archive or a .npy: NumPy takes it for pickled data
        raise ValueError(f"{not_ours}: NumPy cannot read it as .npz ({e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{not_ours}: it holds one array, not an .npz archive")
    with data:
        if "names" not in data or "dtypes" not in data:
            raise ValueError(f"{not_ours}: no names/dtypes")
        names = [str(n) for n in data["names"]]
        kinds = [str(d) for d in data["dtypes"]]
        missing = [f"w{i}" for i in range(len(kinds)) if f"w{i}" not in data]
        if missing:
            raise ValueError(f"{not_ours}: it lists {len(kinds)} weights but lacks {', '.join(missing)}")
        values = [data[f"w{i}"].view(dtypes.as_numpy(kind)) if kind == "bfloat16" else data[f"w{i}"]
                  for i, kind in enumerate(kinds)]
    return names, values
