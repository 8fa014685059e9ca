"""``Sequential``: a stack of layers, each feeding the next."""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from nbmp import dtypes
from nbmp import layers as layers_module
from nbmp.array import Array, asarray
from nbmp.layers.core import Input
from nbmp.layers.layer import Layer, positive_int
from nbmp.models import weights_file
from nbmp.ops import cast, concatenate
from nbmp.ops._core import is_int
from nbmp.policy import floatx


class Sequential(Layer):
    """Layers applied in order, like ``keras.Sequential``.

    >>> import numpy as np, nbmp
    >>> model = nbmp.Sequential([nbmp.layers.Input((4,)), nbmp.layers.Dense(8, activation="relu"),
    ...                          nbmp.layers.Dense(2)], name="mlp")
    >>> model.predict(np.ones((3, 4), np.float32), verbose=0).shape
    (3, 2)
    >>> sum(w.size for w in model.get_weights())
    58
    """

    def __init__(self, layers: Iterable[Layer | Input] | None = None, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input: Input | None = None
        self._output_shapes: dict[int, tuple[int, ...]] = {}
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers, in order (the Input declaration is not a layer)."""
        return list(self._stack)

    def add(self, layer: Layer | Input) -> None:
        """Append a layer (or, first, an ``Input`` declaring the input shape and dtype)."""
        if isinstance(layer, Input):
            if self._stack or self._input is not None:
                raise ValueError("An Input can only be the first entry of a Sequential model")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add needs a Layer or an Input. Received: {layer!r}")
        was_built = self.built
        self._stack.append(layer)
        self.built = False
        if self._input is not None and None not in self._input.shape[1:]:
            try:
                self._build_from_input()
            except BaseException:  # a layer that does not fit is not kept: the model stays usable
                self._stack.pop()
                self.built = was_built
                raise
        if not self.trainable:  # a frozen model freezes what joins it (Keras sets it on the tree)
            layer.trainable = False

    def pop(self) -> Layer:
        """Remove the last layer and return it (as Keras' ``Sequential.pop``).

        >>> from nbmp import layers
        >>> model = Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2)])
        >>> model.pop().units, len(model.layers), model(np.ones((1, 4), np.float32)).shape
        (2, 1, (1, 3))
        """
        if not self._stack:
            raise ValueError(f"Model {self.name!r} has no layers to pop")
        layer = self._stack.pop()
        self._output_shapes.pop(id(layer), None)
        return layer

    def _build_from_input(self) -> None:
        assert self._input is not None
        self.build(self._input.shape)

    def build(self, input_shape: Any) -> None:
        """Build every layer (create the weights) for inputs of `input_shape` (the batch size may
        be None), by running a one-sample batch of zeros through the model."""
        dims = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
        if not dims or not all(is_int(d) and d >= 0 for d in dims[1:]):
            raise ValueError(f"Sequential.build needs an input shape with every dimension after the "
                             f"batch known, such as (None, 784). Received: input_shape={input_shape!r}")
        # an Input without a dtype stands for floating data: floatx, as Keras' Input (not the
        # model's compute dtype, which "_infer" layers would take for the data's)
        dtype = (self._input.dtype if self._input is not None else None) or floatx()
        self(np.zeros((1, *dims[1:]), dtypes.as_numpy(dtype)))

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        if self._input is not None and self._input.dtype is not None:
            inputs = cast(asarray(inputs), self._input.dtype)
        if not isinstance(inputs, Array):
            inputs = asarray(inputs)
        if self._input is not None:
            self._check_input(inputs.shape)
        x: Any = inputs
        for layer in self._stack:
            x = layer(x, training=training)  # a layer whose call() does not take it drops it
            if not isinstance(x, Array):
                raise ValueError(f"Each layer of a Sequential model returns one array. Layer "
                                 f"{layer.name!r} returned a {type(x).__name__}; use a layer that "
                                 "returns one array, or call the layers yourself")
            self._output_shapes[id(layer)] = tuple(x.shape)
        self.built = True
        return x

    def _check_input(self, shape: tuple[int, ...]) -> None:
        assert self._input is not None
        expected = self._input.shape
        if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
            raise ValueError(f"Model {self.name!r} expects inputs of shape {expected}. "
                             f"Received shape {shape}")

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self(inputs, training=training)

    # ---- inference ----------------------------------------------------------------------
    def predict(self, x: Any, batch_size: int | None = 32, verbose: str | int = "auto") -> Array:
        """Outputs for `x`, computed in batches of `batch_size` (None: 32, as Keras), with a
        progress bar when tqdm is installed and ``verbose`` asks for one: 1, or "auto" on a
        terminal or in a notebook (0 and 2, Keras' silent and one-line modes, show none)."""
        data = asarray(x)
        batch_size = positive_int(32 if batch_size is None else batch_size, "batch_size", "predict")
        if verbose not in ("auto", 0, 1, 2):  # True and False are 1 and 0
            raise ValueError(f"predict: verbose must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
        if len(data) == 0:
            return self(data)
        starts = range(0, len(data), batch_size)
        outputs = [self(data[s:s + batch_size]) for s in _progress(starts, verbose, self.name)]
        return outputs[0] if len(outputs) == 1 else concatenate(outputs, axis=0)

    # ---- weights ------------------------------------------------------------------------
    def save_weights(self, path: str | os.PathLike[str]) -> None:
        """Write the weights to a ``.npz`` file (bit-exact, bfloat16 included)."""
        if not os.fspath(path).endswith(".npz"):
            raise ValueError(f"save_weights writes .npz files. Received: {os.fspath(path)!r}")
        weights_file.save(path, [w.name for w in self.weights], self.get_weights())

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Read weights written by ``save_weights``; on any mismatch nothing changes."""
        _, values = weights_file.load(path)
        if not self.built:
            raise ValueError(f"Model {self.name!r} is not built, so it has no weights to load into: "
                             "call it on a batch, or start it with an Input, first")
        variables = self.weights
        for w, v in zip(variables, values):
            if v.dtype != w.true_dtype:
                raise ValueError(f"Weight {w.name!r} is stored as {w.true_dtype}; the file has "
                                 f"{v.dtype}. No weight was changed")
        self.set_weights(values)

    # ---- config and display -------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        inp = None if self._input is None else {"shape": self._input.shape[1:], "dtype": self._input.dtype}
        return {**super().get_config(), "input": inp,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self._stack]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        stack: list[Any] = []
        if config.get("input"):
            stack.append(Input(tuple(config["input"]["shape"]), config["input"]["dtype"]))
        for entry in config["layers"]:
            layer_cls = getattr(layers_module, entry["class_name"], None)
            if layer_cls is None and entry["class_name"] == "Sequential":
                layer_cls = Sequential
            if layer_cls is None:
                raise ValueError(f"Unknown layer class {entry['class_name']!r} in config")
            stack.append(layer_cls.from_config(entry["config"]))
        options = {k: config[k] for k in ("name", "trainable", "dtype", "autocast") if k in config}
        return cls(stack, **options)

    def _summary_rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for layer in self._stack:
            shape = self._output_shapes.get(id(layer))
            out = "?" if shape is None else str((None,) + tuple(shape[1:]))
            params = sum(w.size for w in layer.weights)
            p = layer.dtype_policy
            rows.append((f"{layer.name} ({type(layer).__name__})", out, f"{params:,}", p.name,
                         str(layer.variable_dtype), str(layer.compute_dtype)))
        return rows

    def summary(self, print_fn: Any = print) -> None:
        """Print a table: per layer its output shape, parameter count and dtypes."""
        header = ("Layer (type)", "Output shape", "Params", "Policy", "Variable dtype", "Compute dtype")
        rows = self._summary_rows()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        line = "  ".join("-" * w for w in widths)
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        print_fn(f'Model: "{self.name}"')
        for text in [fmt(header), line, *map(fmt, rows), line, *self._totals()]:
            print_fn(text)

    def _totals(self) -> list[str]:
        """The summary's last lines: parameters in all (and their bytes), trainable or not."""
        total = sum(w.size for w in self.weights)
        trainable = sum(w.size for w in self.trainable_weights)
        weight_bytes = sum(w.true_value.nbytes for w in self.weights)
        return [f"Total params: {total:,} ({_bytes(weight_bytes)})", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}"]

    def _repr_html_(self) -> str:
        """``summary()`` as an HTML table, for notebooks."""
        header = ("Layer (type)", "Output shape", "Params", "Policy", "Variable dtype", "Compute dtype")
        cells = lambda r, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r)  # noqa: E731
        body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in self._summary_rows())
        totals = "<br>".join(html.escape(t) for t in self._totals())
        return (f"<div><b>Model \"{html.escape(self.name)}\"</b><table><tr>{cells(header, 'th')}</tr>"
                f"{body}</table><p>{totals}</p></div>")

    def __repr__(self) -> str:
        return f"<Sequential name={self.name}, layers={len(self._stack)}, built={self.built}>"


def _bytes(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"


def _progress(items: range, verbose: str | int, name: str) -> Iterator[int] | range:
    """`items`, wrapped in a tqdm bar when asked for (1; "auto": on a terminal or in a notebook)."""
    show = verbose == 1 or (verbose == "auto" and (sys.stderr.isatty() or "ipykernel" in sys.modules))
    if not show or len(items) < 2:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return iter(tqdm(items, desc=f"predict {name}", unit="batch", leave=False))
