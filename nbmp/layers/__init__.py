"""Layers: the ``Layer`` base class (Dense, Conv2D and friends build on it).

>>> import nbmp
>>> nbmp.layers.Layer(dtype="mixed_bfloat16").compute_dtype
'bfloat16'
"""

from nbmp.layers.layer import Layer

__all__ = ["Layer"]
