"""Layers: the ``Layer`` base class and Keras' everyday layers, honouring dtype policies.

>>> import nbmp
>>> nbmp.layers.Dense(4, dtype="mixed_bfloat16").compute_dtype
'bfloat16'
"""

from nbmp.layers.activation import Activation
from nbmp.layers.conv import Conv2D
from nbmp.layers.core import Input, Lambda
from nbmp.layers.dense import Dense
from nbmp.layers.input_spec import InputSpec
from nbmp.layers.layer import Layer
from nbmp.layers.normalization import BatchNormalization, LayerNormalization
from nbmp.layers.pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from nbmp.layers.reshaping import Flatten, Reshape

__all__ = [
    "Activation", "AveragePooling2D", "BatchNormalization", "Conv2D", "Dense", "Flatten",
    "GlobalAveragePooling2D", "Input", "InputSpec", "Lambda", "Layer", "LayerNormalization",
    "MaxPooling2D", "Reshape",
]
