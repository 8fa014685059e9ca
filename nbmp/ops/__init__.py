"""Device-neutral operations on Arrays: the one path every computation in nbmp takes.

They accept Arrays, Variables, NumPy arrays, nested lists and Python scalars, follow NumPy 2
promotion (NEP 50, extended to bfloat16), compute 16-bit floats with float32 accumulation, and
dispatch to the backend of the operands' device.

>>> import nbmp
>>> x = nbmp.asarray([[1.0, -2.0]], dtype="float16")
>>> nbmp.ops.relu(x)
Array([[1., 0.]], dtype=float16, device='cpu')
"""

from nbmp.ops.activations import gelu, linear, relu, sigmoid, softmax, tanh
from nbmp.ops.activations import get as get_activation
from nbmp.ops.cast import cast
from nbmp.ops.conv import conv2d
from nbmp.ops.elementwise import (
    abs,
    add,
    bitwise_and,
    bitwise_invert,
    bitwise_or,
    bitwise_xor,
    divide,
    equal,
    exp,
    floor_divide,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    not_equal,
    power,
    sqrt,
    square,
    subtract,
)
from nbmp.ops.linalg import dense, matmul
from nbmp.ops.normalization import moments, normalize
from nbmp.ops.pooling import avg_pool2d, max_pool2d
from nbmp.ops.reductions import max, mean, min, sum
from nbmp.ops.shape import concatenate, getitem, reshape, transpose

__all__ = [
    "abs", "add", "avg_pool2d", "bitwise_and", "bitwise_invert", "bitwise_or", "bitwise_xor", "cast",
    "concatenate", "conv2d", "dense", "divide", "equal", "exp", "floor_divide", "gelu",
    "get_activation", "getitem", "greater", "greater_equal", "less", "less_equal", "linear",
    "log", "matmul", "max", "max_pool2d", "maximum", "mean", "min", "minimum", "mod", "moments",
    "multiply", "negative", "normalize", "not_equal", "power", "relu", "reshape", "sigmoid",
    "softmax", "sqrt", "square", "subtract", "sum", "tanh", "transpose",
]
