"""Models: ``Sequential``.

>>> import nbmp
>>> nbmp.models.Sequential([nbmp.layers.Dense(2)], name="tiny")
<Sequential name=tiny, layers=1, built=False>
"""

from nbmp.models.sequential import Sequential

__all__ = ["Sequential"]
