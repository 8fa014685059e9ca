"""``Lambda`` (a function as a layer) and ``Input`` (a model's input declaration)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nbmp import dtypes
from nbmp.array import Array
from nbmp.layers.layer import Layer
from nbmp.ops._core import is_int


class Lambda(Layer):
    """Wraps `function` (Array -> Array) as a layer.

    >>> import numpy as np, nbmp
    >>> to_f32 = nbmp.layers.Lambda(lambda x: nbmp.ops.cast(x, "float32"))
    >>> to_f32(np.ones(2, np.float16)).dtype
    dtype('float32')
    """

    def __init__(self, function: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable. Received: {function!r}")
        self.function = function

    def call(self, inputs: Array) -> Any:
        return self.function(inputs)

    def get_config(self) -> dict[str, Any]:
        """The config holds the function object itself: it round-trips in this process only."""
        return {**super().get_config(), "function": self.function}


class Input:
    """Declares a model's input: per-sample `shape` (an int or a sequence of ints, None for
    any size) and, optionally, the `dtype` inputs are converted to (``None`` keeps the data's
    own dtype).

    >>> Input((100,), dtype="float16")
    <Input shape=(None, 100) dtype=float16>
    """

    def __init__(self, shape: int | Sequence[int | None], dtype: Any = None,
                 name: str | None = None) -> None:
        dims: tuple[Any, ...] | None = None
        if is_int(shape):
            dims = (shape,)
        elif isinstance(shape, Sequence) and not isinstance(shape, (str, bytes)):
            dims = tuple(shape)
        if dims is None or not all(d is None or (is_int(d) and d > 0) for d in dims):
            raise ValueError("Input shape must be a sequence of positive ints (or None). "
                             f"Received: shape={shape!r} (of type {type(shape).__name__})")
        self.shape = (None,) + tuple(None if d is None else int(d) for d in dims)
        self.dtype = None if dtype is None else dtypes.canonical_name(dtype)
        self.name = name or "input"

    def __repr__(self) -> str:
        return f"<Input shape={self.shape} dtype={self.dtype}>"
