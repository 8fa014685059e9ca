"""Which devices nbmp can compute on.

>>> import nbmp
>>> nbmp.devices()
['cpu']
"""

from __future__ import annotations

__all__ = ["devices", "check_device"]

_KNOWN = ("cpu",)


def devices() -> list[str]:
    """The device names usable in this process, ``"cpu"`` first."""
    return list(_KNOWN)


def check_device(device: object) -> str:
    """`device` if it names a usable device, else a ValueError listing the usable ones."""
    if not isinstance(device, str) or device not in _KNOWN:
        raise ValueError(
            f"Unknown device {device!r}. Valid: {', '.join(map(repr, _KNOWN))}. "
            f"Received: device={device!r} (of type {type(device).__name__})"
        )
    return device
