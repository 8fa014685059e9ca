"""``nbmp.layers.Layer``: the base of every layer, where policies meet computation.

A layer owns a dtype policy. When called it

1. resolves an inferring policy (``"_infer"``) from its first input, once;
2. casts every floating array in its arguments (positional and keyword, nested in lists,
   tuples and dicts) to the compute dtype, as Keras 3 does. (tf.keras 2.x cast only the
   first argument, which its own docs call a bug.) Integers, booleans and Python scalars are
   never cast, and nothing is cast to a non-floating compute dtype;
3. builds itself from the first input's shape on the first call;
4. runs ``call`` with its float32 variables reading in the compute dtype (autocast).

>>> import nbmp, numpy as np
>>> class SimpleDense(nbmp.layers.Layer):
...     def build(self, input_shape):
...         self.kernel = self.add_weight("kernel", (input_shape[-1], 10))
...     def call(self, inputs):
...         return inputs @ self.kernel
>>> layer = SimpleDense(dtype="mixed_float16")
>>> y = layer(np.ones((2, 4), np.float32))
>>> y.dtype, layer.kernel.dtype
(dtype('float16'), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nbmp import dtypes, initializers
from nbmp.array import Array, asarray, is_foreign_array
from nbmp.devices import check_device
from nbmp.layers.input_spec import InputSpec
from nbmp.ops._core import is_int
from nbmp.policy import DTypePolicy, PolicyLike, as_policy, floatx, serialize
from nbmp.variables import Variable, autocast_dtype, autocast_scope

__all__ = ["Layer"]

_name_counts: dict[str, int] = {}
_TF_WEIGHT_ARGS = ("name", "shape", "dtype", "initializer")  # tf.keras' 5th is a regularizer
_KERAS3_WEIGHT_ARGS = ("shape", "initializer", "dtype", "trainable", "autocast", "name")


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``... across the process."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _snake_case(name: str) -> str:
    """Keras 3's ``to_snake_case``: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def positive_int(value: Any, name: str, owner: str) -> int:
    """`value` as an int if it is a positive integer (NumPy's included), else a ValueError."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{owner} {name} must be a positive int. Received: {name}={value!r} "
                         f"(of type {type(value).__name__})")
    return int(value)


def channels_last(data_format: Any, owner: str) -> str:
    """Keras' `data_format` argument of an image layer, which nbmp takes as "channels_last" (NHWC)
    only; None is Keras' default, the channels-last ``image_data_format()``."""
    if data_format is None or (isinstance(data_format, str) and data_format.lower() == "channels_last"):
        return "channels_last"
    raise ValueError(f"nbmp's {owner} supports data_format='channels_last' (NHWC, also None) only. "
                     f"Received: data_format={data_format!r}")


class Layer:
    """Base class for layers: subclass it and override ``build`` and ``call``.

    Variables and layers held in attributes (directly or in lists, tuples and dicts) are the
    layer's weights and sublayers, in the order the attributes were first assigned; they are
    found by walking the attributes on each access (so a layer that holds its parent has the
    parent's weights among its own).

    Args:
        trainable: whether the layer's weights are trained.
        dtype: a policy, a policy name (``"mixed_float16"``) or None for the global policy.
        autocast: if False, the layer does not cast its inputs (nor its variables).
        name: the layer's name (unique by default).
    """

    _trainable: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A ``build`` a subclass defines marks the layer built when it returns, also when
        called by hand (``layer.build(shape)``), as in Keras: the first call then keeps
        those weights instead of building again."""
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is None:
            return

        @functools.wraps(build)
        def build_and_mark(self: Layer, *args: Any, **kwargs: Any) -> Any:
            if args and _is_flat_shape(args[0]):  # build([None, 3]), as Keras takes it
                args = (tuple(args[0]),) + args[1:]
            result = build(self, *args, **kwargs)
            if type(self).build is build_and_mark:  # the outermost build (not a super().build())
                self.built = True
            return result

        cls.build = build_and_mark  # type: ignore[method-assign]

    def __init__(self, trainable: bool = True, dtype: PolicyLike = None, autocast: bool = True,
                 name: str | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}. "
                            f"Valid: {', '.join(_init_arguments(type(self)))}"
                            + (". A model takes its input shape from an Input: Sequential([nbmp.layers"
                               ".Input((784,)), ...])" if "input_shape" in kwargs else ""))
        self._own_weights: list[Variable] = []  # first: a layer's own weights come first
        self._dtype_policy = as_policy(dtype)
        self._inferred_compute_dtype: str | None = None
        self._weights_dtype: str | None = None  # of the weights made in the policy's dtype
        self.name = name if name is not None else unique_name(_snake_case(type(self).__name__))
        self._trainable = bool(trainable)  # not the setter: sublayers keep their own flag
        self.autocast = bool(autocast)
        self.built = False
        self.input_spec: InputSpec | None = None

    @property
    def trainable(self) -> bool:
        """Whether the layer's weights are trained. Setting it sets it on every sublayer too,
        as in Keras (a frozen model's BatchNormalization runs in inference mode)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for layer in self._tracked()[0]:
            layer._trainable = bool(value)

    # ---- dtypes -------------------------------------------------------------------------
    @property
    def dtype_policy(self) -> DTypePolicy:
        """The layer's policy (for ``"_infer"``, the inferred one after the first call). It can be
        set, as in Keras 3 (a policy, its name, or None for the global one): weights already made
        keep their dtype, later calls compute in the new compute dtype.

        >>> layer = Layer()
        >>> layer.dtype_policy = "mixed_float16"
        >>> layer.compute_dtype, layer.variable_dtype
        ('float16', 'float32')
        """
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value: PolicyLike) -> None:
        self._dtype_policy = as_policy(value)
        self._inferred_compute_dtype = None

    @property
    def compute_dtype(self) -> str | None:
        """The dtype the layer computes in (None until inferred; for ``"infer_float32_vars"``, the
        input's of the call this thread is in, else of the last call)."""
        policy = self._dtype_policy.compute_dtype
        if policy is not None:
            return policy
        calls = getattr(_this_thread, "compute_dtypes", None)
        return (calls.get(id(self)) if calls else None) or self._inferred_compute_dtype

    @property
    def variable_dtype(self) -> str | None:
        """The dtype the layer creates its weights in (None until inferred)."""
        return self._dtype_policy.variable_dtype

    @property
    def dtype(self) -> str | None:
        """The variable dtype, as in Keras."""
        return self.variable_dtype

    # ---- weights ------------------------------------------------------------------------
    @property
    def weights(self) -> list[Variable]:
        """All weights: this layer's, then its sublayers' (those held in attributes, directly
        or in lists, tuples and dicts), each once."""
        return self._tracked()[1]

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights training would update (Keras' split; nbmp has no optimizers yet): none
        from a layer that is not trainable, nor from its sublayers."""
        return self._tracked(trainable_only=True)[1]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The weights training would leave alone (moving statistics, frozen layers' weights)."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def _tracked(self, trainable_only: bool = False) -> tuple[list[Layer], list[Variable]]:
        """This layer and its sublayers, depth first in attribute order, and their variables,
        each once (a cycle of layers ends where it started). With `trainable_only`, the walk
        stops at layers that are not trainable and keeps only trainable variables."""
        layers: list[Layer] = []
        variables: list[Variable] = []
        seen: set[int] = set()

        def visit(layer: Layer) -> None:
            if id(layer) in seen or (trainable_only and not layer._trainable):
                return
            seen.add(id(layer))
            layers.append(layer)
            held_variables, held_layers = _held(layer)
            for v in held_variables:
                if id(v) not in seen and (v.trainable or not trainable_only):
                    seen.add(id(v))
                    variables.append(v)
            for sub in held_layers:
                visit(sub)

        visit(self)
        return layers, variables

    def to(self, device: str) -> Layer:
        """Move every weight (sublayers' included) to `device`, in place; returns the layer.

        A layer builds its weights on its first input's device (an unbuilt layer has none to
        move: `device` is only checked); a model built on the CPU (a ``Sequential`` with an
        ``Input``) moves to the GPU with ``model.to("cuda")``.

        >>> import nbmp
        >>> layer = nbmp.layers.Dense(2)
        >>> layer.build((None, 3))
        >>> layer.to("cpu").kernel.device
        'cpu'
        """
        device = check_device(device)
        moved = [w._value.to(device) for w in self.weights]  # all or nothing
        for w, value in zip(self.weights, moved):
            w._value = value
        return self

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight's stored value, in ``model.weights`` order."""
        return [w.true_value.numpy() for w in self.weights]

    def set_weights(self, values: list[Any]) -> None:
        """Set every weight, each value converted to its weight's dtype; every value is checked
        (shape, a supported dtype) before any weight changes."""
        variables = self.weights
        if len(values) != len(variables):
            raise ValueError(f"Layer {self.name!r} has {len(variables)} weights. Received {len(values)} "
                             "values")
        arrays = []
        for w, v in zip(variables, values):
            try:
                array = asarray(v, dtype=w.true_dtype)  # Python floats straight to it, not via floatx
            except (TypeError, ValueError) as e:
                raise type(e)(f"Weight {w.name!r}: {e}; no weight was changed") from None
            if array.shape != w.shape:
                raise ValueError(f"Weight {w.name!r} has shape {w.shape}. Received shape {array.shape}; "
                                 "no weight was changed")
            arrays.append(array)
        for w, v in zip(variables, arrays):
            w.assign(v)

    def add_weight(self, *args: Any, **kwargs: Any) -> Variable:
        """Create a weight (a Variable), stored in the layer's variable dtype by default.

        Arguments: ``name``, ``shape``, ``initializer`` (name, Initializer or callable;
        default glorot_uniform for floats, zeros otherwise), ``dtype``, ``trainable``,
        ``autocast``. Positional order follows tf.keras when the first argument is a string
        (``add_weight("kernel", (3, 4), "float32", "zeros")``: name, shape, dtype, initializer)
        and Keras 3 otherwise (``add_weight((3, 4), "zeros")``: shape, initializer, dtype, ...).
        """
        order = _TF_WEIGHT_ARGS if args and isinstance(args[0], str) else _KERAS3_WEIGHT_ARGS
        if len(args) > len(order):
            raise TypeError(f"add_weight takes at most {len(order)} positional arguments "
                            f"({', '.join(order)}). Received {len(args)}")
        params = dict(zip(order, args))
        clash = set(params) & set(kwargs)
        unknown = set(kwargs) - set(_KERAS3_WEIGHT_ARGS)
        if clash or unknown:
            raise TypeError(f"add_weight: repeated arguments {sorted(clash)} or unknown ones "
                            f"{sorted(unknown)}. Valid: {', '.join(_KERAS3_WEIGHT_ARGS)}")
        params.update(kwargs)
        return self._add_weight(**params)

    def _add_weight(self, shape: Any = (), initializer: Any = None, dtype: Any = None,
                    trainable: bool = True, autocast: bool = True, name: str | None = None
                    ) -> Variable:
        shape = _weight_shape(shape, name)
        if dtype is None:  # the policy's: remembered, should the policy change later
            dtype_name = self._weights_dtype = self.variable_dtype or floatx()
        else:
            dtype_name = dtypes.canonical_name(dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtypes.is_floating(dtype_name) else "zeros"
        returned = initializers.get(initializer)(shape, dtype_name)
        try:
            value = asarray(returned, dtype=dtype_name)
        except TypeError:
            raise TypeError(f"Initializer {initializer!r} must return an array of shape {shape}. "
                            f"Received: {returned!r:.200}") from None
        if value.shape != shape:
            raise ValueError(f"Initializer {initializer!r} returned an array of shape "
                             f"{value.shape}; expected shape {shape}")
        variable = Variable(value, dtype=dtype_name, name=f"{self.name}/{name or 'weight'}",
                            trainable=trainable, autocast=autocast,
                            device=getattr(self, "_build_device", "cpu"))
        self._own_weights.append(variable)
        return variable

    # ---- the call protocol --------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create weights from the first input's shape. Override in subclasses."""

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation, on Arrays in the compute dtype. Override in subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            first = _as_input(args[0])
            args = (first,) + args[1:]
        else:  # the input is the keyword argument named as call()'s first parameter
            name, required = _input_parameter(type(self).call)
            if name in kwargs:
                first = kwargs[name] = _as_input(kwargs[name])
            elif required:
                received = f"keyword arguments {sorted(kwargs)}" if kwargs else "no arguments"
                by_name = f" or layer({name}=...)" if name else ""
                raise TypeError(f"Layer {self.name!r} was called without an input: call it as "
                                f"layer(inputs){by_name}. Received {received}")
            else:
                first = None
        if "training" in kwargs and not _takes_training(type(self).call):
            del kwargs["training"]  # as Keras: only a call() that takes it is given it
        input_shape = _shapes(first)
        if self.built:
            this_call = self._resolve_policy(first)[1]
        else:
            with _FIRST_CALLS:  # one thread infers the policy and builds; the others find it built
                this_call = self._first_build(first, input_shape)
        if this_call is None:
            return self._call_in_policy(args, kwargs, input_shape)
        calls = _this_thread.__dict__.setdefault("compute_dtypes", {})
        outer = calls.get(id(self))
        calls[id(self)] = this_call  # "infer_float32_vars": this call's dtype, in this thread
        try:
            return self._call_in_policy(args, kwargs, input_shape)
        finally:
            if outer is None:
                calls.pop(id(self), None)
            else:
                calls[id(self)] = outer

    def _call_in_policy(self, args: tuple[Any, ...], kwargs: dict[str, Any], input_shape: Any) -> Any:
        """``call`` on the inputs cast to the compute dtype, in its autocast scope."""
        cast_to = self._input_cast_dtype()
        args = _map_arrays(args, cast_to)
        kwargs = _map_arrays(kwargs, cast_to) if kwargs else kwargs
        if self.input_spec is not None:
            self.input_spec.check(self.name, input_shape)
        with self._autocast():
            outputs = self.call(*args, **kwargs)
        return _map_arrays(outputs, None)

    def _first_build(self, first: Any, input_shape: Any) -> str | None:
        """A first call's policy inference and build, unless another thread's first call did them
        meanwhile; a policy inferred by a failed build is forgotten. Returns this call's compute
        dtype for ``"infer_float32_vars"`` (see ``_resolve_policy``)."""
        before, this_call = self._resolve_policy(first)
        if self.built:
            return this_call
        try:
            self._build_once(input_shape, _input_device(first))
        except BaseException as err:
            inferred = self._dtype_policy.name
            self._dtype_policy, self._inferred_compute_dtype = before
            if (isinstance(err, ValueError) and before[0].name != inferred
                    and not dtypes.is_floating(inferred)):
                raise ValueError(f"{err} (the layer's {before[0].name!r} policy took {inferred} from "
                                 "its first input: give the layer a floating dtype= or pass "
                                 "floating inputs)") from err
            raise
        return this_call

    def _resolve_policy(self, first: Any) -> tuple[tuple[DTypePolicy, str | None], str | None]:
        """Infer the compute dtype from the first input, if the policy says so. Returns the policy
        state before (for ``__call__`` to restore if the layer's first call fails) and, for
        ``"infer_float32_vars"``, which follows each call's input, this call's compute dtype."""
        before = (self._dtype_policy, self._inferred_compute_dtype)
        policy = self._dtype_policy
        if policy.compute_dtype is None:
            found = _input_dtype(first, floating_only=policy.variable_dtype is not None)
            if policy.variable_dtype is None:  # "_infer" / "infer": fixed from now on
                self._dtype_policy = type(policy)(found or floatx())  # a Policy stays a Policy
            else:
                this_call = self._inferred_compute_dtype = found or "float32"  # also shown after it
                return before, this_call
        return before, None

    def _input_cast_dtype(self) -> str | None:
        compute = self.compute_dtype
        if (not self.autocast or not self._dtype_policy.casts_inputs or compute is None
                or not dtypes.is_floating(compute)):
            return None
        return compute

    def _build_once(self, input_shape: Any, device: str) -> None:
        """Build with the weights on `device`, the first input's device."""
        attributes, created = dict(vars(self)), len(self._own_weights)
        self._build_device = device
        try:
            with autocast_scope(None):
                self.build(input_shape)
        except BaseException:  # no half-built layer: its attributes and weights are as before
            vars(self).clear()
            vars(self).update(attributes)
            del self._own_weights[created:]
            raise
        del self._build_device
        self.built = True

    def _floating_input(self, inputs: Any) -> Any:
        """`inputs` in the dtype the layer computes in if it is an integer or boolean Array, for
        layers that compute with their floating weights or take a mean (the compute dtype; the
        variables' own with ``autocast=False``): Keras 3's promotion gives that dtype, NumPy's
        float64."""
        if isinstance(inputs, Array) and inputs.dtype.kind in "biu":
            target = self._input_cast_dtype() or self.variable_dtype or self.compute_dtype
            if target is not None and dtypes.is_floating(target):
                return inputs.astype(target)
        return inputs

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        """Keras 3's rule for the autocast scope around ``call``; also where the policy's
        variable dtype is the compute dtype but the weights were made in another (a policy
        set on a built layer, or ``"_infer"`` built before its first call)."""
        compute = self.compute_dtype
        made_in = self._weights_dtype or self.variable_dtype
        floating = compute is not None and dtypes.is_floating(compute)
        if autocast_dtype() is not None:
            if not self.autocast or not floating:
                return autocast_scope(None)
            if autocast_dtype() != compute:
                return autocast_scope(compute)
        elif floating and self.autocast and (compute != self.variable_dtype or compute != made_in):
            return autocast_scope(compute)
        return contextlib.nullcontext()

    # ---- config and display -------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; ``from_config`` rebuilds an equivalent (unbuilt) layer."""
        return {"name": self.name, "trainable": self.trainable,
                "dtype": serialize(self._dtype_policy), "autocast": self.autocast}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return (f'<{type(self).__name__} name={self.name}, built={self.built}, '
                f'dtype_policy="{self._dtype_policy.name}">')


#: Held by a layer's first call while it infers the policy and builds (not while it calls), so
#: that layers called for the first time from several threads at once are built once.
#: Reentrant: a layer's build may build its sublayers.
_FIRST_CALLS = threading.RLock()
#: ``compute_dtypes``: id(layer) -> the compute dtype an ``"infer_float32_vars"`` layer takes from
#: the input of the call this thread is making (threads sharing the layer each have their own).
_this_thread = threading.local()


# ---- argument handling ----------------------------------------------------------------------
def _init_arguments(cls: type) -> list[str]:
    """The named arguments of `cls`'s constructors, its own first, down to ``Layer``'s."""
    names: list[str] = []
    for klass in cls.__mro__[:cls.__mro__.index(Layer) + 1]:
        if "__init__" in vars(klass):
            for p in list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]:
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names:
                    names.append(p.name)
    return names


def _is_flat_shape(x: Any) -> bool:
    """Whether `x` is a shape given as a list: ints and Nones."""
    return isinstance(x, list) and all(d is None or is_int(d) for d in x)


def _is_number_tree(x: Any) -> bool:
    if isinstance(x, list):
        return len(x) > 0 and all(_is_number_tree(i) for i in x)
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _as_input(x: Any) -> Any:
    """The input (call()'s first argument): a nested list of numbers is data, so it becomes an
    Array, as does another library's array (torch's, CuPy's); text is refused."""
    if is_foreign_array(x):
        return asarray(x)
    if isinstance(x, (list, str, bytes)):
        if not isinstance(x, list):
            raise TypeError("A layer's input is an array (an nbmp Array, a NumPy array or a nested "
                            f"list of numbers) or a structure of them. Received: {x!r:.100} "
                            f"(of type {type(x).__name__})")
        if _is_number_tree(x):
            return asarray(x)
    return x


@functools.cache
def _takes_training(call: Callable[..., Any]) -> bool:
    """Whether `call` (a layer class's ``call``) takes ``training`` (by name or ``**kwargs``):
    looked up once per function (``inspect.signature`` on every call of every layer took 40%
    of a small model's forward)."""
    params = inspect.signature(call).parameters.values()
    return any(p.name == "training" or p.kind == p.VAR_KEYWORD for p in params)


def _weight_shape(shape: Any, name: str | None) -> tuple[int, ...]:
    """`shape` (an int or a sequence of them, each >= 0) as a tuple, else a clear error."""
    if shape is None:
        dims: Any = ()
    elif is_int(shape):
        dims = (shape,)
    else:
        dims = shape if isinstance(shape, (tuple, list)) else None
    if dims is None or not all(is_int(d) and d >= 0 for d in dims):
        raise ValueError(f"add_weight: the shape of weight {name!r} must be an int or a tuple of "
                         f"ints >= 0 (every dimension known). Received: shape={shape!r}")
    return tuple(int(d) for d in dims)


@functools.cache
def _input_parameter(call: Callable[..., Any]) -> tuple[str | None, bool]:
    """The name of `call`'s first parameter after ``self`` (None if it cannot be given by
    keyword) and whether it is required: inspected once per function, not on every call."""
    params = list(inspect.signature(call).parameters.values())[1:2]
    if not params or params[0].kind in (params[0].VAR_POSITIONAL, params[0].VAR_KEYWORD):
        return None, False
    param = params[0]
    name = None if param.kind == param.POSITIONAL_ONLY else param.name
    return name, param.default is param.empty


def _held(layer: Layer) -> tuple[list[Variable], list[Layer]]:
    """The variables and other layers `layer` holds in its attributes, directly or in lists,
    tuples and dicts (nested), in attribute order: its own weights (the first attribute) first."""
    variables: list[Variable] = []
    layers: list[Layer] = []
    seen: set[int] = set()

    def visit(value: Any) -> None:
        if isinstance(value, Variable):
            variables.append(value)
        elif isinstance(value, Layer):
            layers.append(value)
        elif isinstance(value, (list, tuple, dict)) and id(value) not in seen:
            seen.add(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                visit(item)

    for value in vars(layer).values():
        visit(value)
    return variables, layers


def _map_arrays(tree: Any, cast_to: str | None) -> Any:
    """Arrays for NumPy arrays (and other libraries'), floating ones cast to `cast_to`; structure
    kept."""
    # (a Variable: its value, as read here)
    if isinstance(tree, (np.ndarray, np.generic, Variable)) or is_foreign_array(tree):
        tree = asarray(tree)
    if isinstance(tree, Array):
        name = dtypes.canonical_name(tree.dtype)
        if cast_to is not None and name != cast_to and name in dtypes.FLOATING:
            return tree.astype(cast_to)
        return tree
    if isinstance(tree, dict):
        return {k: _map_arrays(v, cast_to) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        mapped = [_map_arrays(v, cast_to) for v in tree]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else type(tree)(mapped)
    return tree


def _leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree


def _input_device(first: Any) -> str:
    """The device of the first Array in `first` (the CPU if there is none)."""
    return next((leaf.device for leaf in _leaves(first) if isinstance(leaf, Array)), "cpu")


def _input_dtype(first: Any, floating_only: bool) -> str | None:
    """The dtype of the first (floating, if asked) array-like in `first`."""
    for leaf in _leaves(first):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or isinstance(leaf, type):
            continue
        name = dtypes.canonical_name(dtype)
        if not floating_only or dtypes.is_floating(name):
            return name
    return None


def _shapes(tree: Any) -> Any:
    """Shapes of the arrays in `tree`, in the same structure (what ``build`` receives)."""
    if hasattr(tree, "shape") and not isinstance(tree, type):
        return tuple(tree.shape)
    if isinstance(tree, dict):
        return {k: _shapes(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        shapes = [_shapes(v) for v in tree]
        return type(tree)(*shapes) if hasattr(tree, "_fields") else type(tree)(shapes)
    return None

