"""``InputSpec``: what a built layer accepts, checked before any computation or state change."""

from __future__ import annotations

from typing import Any


class InputSpec:
    """Constraints on a layer's first input: rank and the size of some axes.

    >>> spec = InputSpec(min_ndim=2, axes={-1: 4})
    >>> spec.check("dense", (3, 5))
    Traceback (most recent call last):
    ...
    ValueError: Layer 'dense' expects inputs of shape (..., 4) (axis -1 of size 4). Received shape (3, 5)
    """

    def __init__(self, ndim: int | None = None, min_ndim: int | None = None,
                 axes: dict[int, int] | None = None) -> None:
        self.ndim, self.min_ndim, self.axes = ndim, min_ndim, dict(axes or {})

    def __repr__(self) -> str:
        given = {"ndim": self.ndim, "min_ndim": self.min_ndim, "axes": self.axes or None}
        return "InputSpec(" + ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None) + ")"

    def describe(self) -> str:
        """The accepted shapes, in words: ``(None, None, None, 3) (4-D)``, ``(..., 4)`` or
        ``(...) (at least 1-D)``.

        >>> InputSpec(ndim=4, axes={-1: 3})
        InputSpec(ndim=4, axes={-1: 3})
        """
        if self.ndim is not None:
            dims = ["None"] * self.ndim
            for axis, size in self.axes.items():
                dims[axis] = str(size)
            return "(" + ", ".join(dims) + f") ({self.ndim}-D)"
        tail = [str(self.axes[a]) if a in self.axes else "None" for a in sorted(self.axes)]
        if tail:
            return "(..., " + ", ".join(tail) + ")"
        return f"(...) (at least {self.min_ndim}-D)" if self.min_ndim else "(...)"

    def check(self, layer_name: str, shape: Any) -> None:
        """Raise ValueError naming the expected and received shapes if `shape` does not fit."""
        if shape is None or not isinstance(shape, tuple):
            return
        ok = (self.ndim is None or len(shape) == self.ndim) and (
            self.min_ndim is None or len(shape) >= self.min_ndim)
        if ok:
            for axis, size in self.axes.items():
                if -len(shape) <= axis < len(shape) and shape[axis] != size:
                    ok = False
        if not ok:
            details = ", ".join(f"axis {a} of size {s}" for a, s in self.axes.items())
            raise ValueError(
                f"Layer {layer_name!r} expects inputs of shape {self.describe()}"
                f"{f' ({details})' if details else ''}. Received shape {shape}"
            )
