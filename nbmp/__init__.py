"""nbmp: mixed-precision arrays and layers on Numba kernels, with Keras-style dtype policies.

>>> import nbmp, numpy as np
>>> nbmp.set_global_policy("mixed_float16")
>>> layer = nbmp.layers.Layer()
>>> layer.compute_dtype, layer.variable_dtype
('float16', 'float32')
>>> nbmp.set_global_policy(None)
"""

from nbmp import dtypes, initializers, layers, mixed_precision, models, ops, variables
from nbmp.array import Array, asarray
from nbmp.devices import devices
from nbmp.initializers import set_random_seed
from nbmp.models import Sequential
from nbmp.policy import (
    DTypePolicy,
    dtype_policy,
    floatx,
    global_policy,
    policy_scope,
    set_dtype_policy,
    set_floatx,
    set_global_policy,
)
from nbmp.variables import Variable

__version__ = "0.1.0"

__all__ = [
    "Array",
    "DTypePolicy",
    "Sequential",
    "Variable",
    "asarray",
    "devices",
    "dtype_policy",
    "dtypes",
    "floatx",
    "global_policy",
    "initializers",
    "layers",
    "mixed_precision",
    "models",
    "ops",
    "policy_scope",
    "set_dtype_policy",
    "set_floatx",
    "set_global_policy",
    "set_random_seed",
    "variables",
]
