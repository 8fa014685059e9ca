"""Saving weights to ``.npz`` exactly, bfloat16 included (NumPy cannot store ml_dtypes types,
so 16-bit floats are stored as their raw bits with the dtype name beside them)."""

from __future__ import annotations

import os
import zipfile
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
    """The names and values written by ``save``; a file it did not write is a ValueError
    saying why (a missing file stays FileNotFoundError)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as e:  # empty, truncated, not an archive
        raise _not_ours(path, f"NumPy cannot read it as .npz ({e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _not_ours(path, "it holds one array, not an .npz archive")
    with data:
        def read(key: str) -> np.ndarray:
            try:
                return data[key]
            except (ValueError, EOFError, zipfile.BadZipFile) as e:  # object arrays, damaged members
                raise _not_ours(path, f"its arrays cannot be read ({e})") from None

        if "names" not in data or "dtypes" not in data:
            raise _not_ours(path, "no names/dtypes")
        names = [str(n) for n in read("names")]
        kinds = [str(d) for d in read("dtypes")]
        missing = [f"w{i}" for i in range(len(kinds)) if f"w{i}" not in data]
        if missing:
            raise _not_ours(path, f"it lists {len(kinds)} weights but lacks {', '.join(missing)}")
        values = [read(f"w{i}") for i in range(len(kinds))]
    return names, [v.view(dtypes.as_numpy(k)) if k == "bfloat16" else v for v, k in zip(values, kinds)]


def _not_ours(path: Any, why: str) -> ValueError:
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    return ValueError(f"{name!r} is not an nbmp weights file (one that save_weights writes): {why}")
