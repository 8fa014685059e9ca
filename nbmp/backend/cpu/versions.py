"""Cache version keys of the modules whose kernels Numba caches on disk.

Numba's cache hashes only the source file of a cached function. A module whose kernels inline
code from other modules (simd's and amx's intrinsics, halfbits' conversions, gemm's micro-kernel
in conv) names their versions in its own ``KERNEL_VERSION`` string and checks it at import with
``require``: bumping a version there then forces an edit of the string here, which gives the
cached kernels a fresh cache.

>>> require("m", "m-1/simd-7", "simd-7")
>>> require("m", "m-1/simd-6", "simd-7")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
RuntimeError: m was built against other simd versions: update KERNEL_VERSION ... to end with 'simd-7'
"""

from __future__ import annotations

__all__ = ["require"]


def require(module: str, version: str, *parts: str) -> None:
    """Raise unless `version` ends with the versions `parts` of the modules `module` inlines."""
    expected = "/".join(parts)
    if not version.endswith("/" + expected):
        names = "/".join(part.split("-")[0] for part in parts)
        raise RuntimeError(f"{module} was built against other {names} versions: update KERNEL_VERSION "
                           f"(now {version!r}) to end with {expected!r}")
