"""float32 exp, sigmoid, tanh and gelu in plain arithmetic, so that loops over them vectorise.

The C library's ``expf``, ``tanhf`` and ``erfcf`` run one element a call: a bf16 Dense product
with a fused gelu took 6-8x as long as with relu (64x784x512 and 256x1024x1024 on AMX), and
torch's vectorised activations ran 3-50x ``nbmp.ops``'. Written with multiplies, adds, a floor
and exponent bits instead, the functions here become vector code in a loop (``activate_span``,
which the GEMM epilogue and ``activations`` run over float32 buffers). Those bf16 products,
against the C library's functions in the same process: sigmoid 1.7-2.6x, tanh 4.2-5.4x, gelu
1.7-3.1x faster (fp16: 1.3x, 2.0x, 1.6x); over 1M values alone, 4x, 18x and 9x.

- ``exp32``: ``x = n ln 2 + r`` with ``n`` the nearest integer and ``r`` taken off in two steps
  (ln 2's leading bits first, whose product with ``n`` is exact), ``e^r`` from its Taylor series
  to ``r^7`` (``|r| <= 0.35``: the next term is below 1e-8), times ``2^n`` made from exponent bits
  in two halves, so that results down to the subnormals round once; 0 below -104 without
  computing it (an underflowing multiply costs a microcode assist on x86);
- ``sigmoid32``: ``e / (1 + e)`` below 0, else ``1 / (1 + e)``, with ``e = exp(-|x|)``;
- ``tanh32``: below 0.625 in magnitude ``x Q(x^2)``, above ``1 - 2 / (exp(2|x|) + 1)``;
- ``gelu32``: ``x Phi(x) = x erfc(-x / sqrt 2) / 2``; for ``w = |x| / sqrt 2`` below 0.5, erf's
  Taylor series to ``w^13``, above, ``erfc(w) = exp(-w^2) G(1 / (1 + w))``.

``Q`` (degree 6 in ``x^2``) and ``G`` (degree 10) are least-squares fits of ``tanh(x) / x`` and
``erfc(w) exp(w^2)``, weighted for relative error, in float64, rounded to float32; ``w^2`` is
carried in two parts (Dekker's exact product), so that exp(-w^2) does not magnify its rounding
(which the C library's erfc of a rounded ``x / sqrt 2`` did: x^2 / 2 ulps, 50 at x = -10).
Against float64 on the same inputs (``tests/backend/test_vmath.py``: every fp16 and bf16 value,
two million float32 bit patterns, dense grids), in float32 ulps: exp 1.2, sigmoid 2.3, tanh 1.3,
gelu 6.0. NaN stays NaN, infinities give the limits, -0.0 stays -0.0 in tanh and gelu.

Results that are float32 subnormals (gelu near x = -14, sigmoid from -87 to -104) are exact as
above, but each operation that makes one costs a microcode assist on x86 (for every lane of its
vector): so no step makes one before the last, and results below -104 in exp are 0 outright.

Not compiled with fastmath's ``reassoc``, which would fold the two-step reduction into one
(nor its ``contract``: the GEMM epilogue and ``activations`` get the same values). The
polynomials use explicit multiply-adds instead (``_mul_add``), fused where the CPU has FMA, and
``activate_span`` vectorises its loops 16 lanes wide on AVX-512 (``simd.prefer_wide_vectors``):
over 64K-1M fp16, bf16 and float32 values on one core of an AVX-512 Xeon, sigmoid 1.3-1.5x,
tanh 1.3-1.6x, gelu 1.5-1.9x faster than with separate multiplies and adds 8 lanes wide (the
errors above hold for both).

>>> import numpy as np
>>> x = np.array([-1.0, 0.0, 2.0], np.float32)
>>> activate_span(x, 0, 3, 4); x.round(4)
array([-0.1587,  0.    ,  1.9545], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from nbmp.backend.cpu import halfbits, simd, versions
from nbmp.backend.cpu.halfbits import _bits_f32
from nbmp.backend.reference import GELU_FLOOR

__all__ = ["KERNEL_VERSION", "activate_span", "exp32", "exp_span", "gelu32", "sigmoid32", "tanh32"]

#: Bumped with every change here: the GEMM epilogue's cached kernels hold a copy of this code
#: (see ``gemm.KERNEL_VERSION``).
KERNEL_VERSION = "vmath-5/simd-9/halfbits-1"
versions.require(__name__, KERNEL_VERSION, simd.KERNEL_VERSION, halfbits.KERNEL_VERSION)

#: fastmath off, said explicitly: a function compiled for a caller takes the caller's fastmath
#: unless it sets its own (the GEMM epilogue's reassociated products, and made gelu's results
#: near the subnormals several steps off)
_FLAGS = dict(cache=True, error_model="numpy", nogil=True, fastmath=False)
_F = np.float32
_ZERO, _HALF, _ONE, _TWO = _F(0), _F(0.5), _F(1), _F(2)
_LOG2E = _F(1.4426950408889634)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)  # ln 2 = HI + LO; HI has 9 bits
_RSQRT2 = _F(0.7071067811865476)
# Polynomial coefficients, the highest power first (``_horner``):
#: e^r = sum of r^k / k!, k <= 7
_EXP = tuple(_F(1 / math.factorial(k)) for k in range(7, -1, -1))
#: tanh(x) / x = Q(x^2) for |x| < 0.625
_Q = tuple(_F(c) for c in (0.002165724290534854, -0.008199901320040226, 0.021708467975258827,
                           -0.053947802633047104, 0.13333208858966827, -0.3333333134651184, 1.0))
#: 2 / sqrt(pi) * (-1)^k / (k! (2k + 1)): erf(w) = w * sum of these times (w^2)^k, k <= 6
_ERF = tuple(_F(2 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)))
             for k in range(6, -1, -1))
#: erfc(w) exp(w^2) = G(1 / (1 + w)) for w >= 0.5
_G = tuple(_F(c) for c in (-1.7218091487884521, 6.128042221069336, -8.664565086364746, 5.466458797454834,
                           -0.544241726398468, -0.8555888533592224, -0.21620817482471466, 0.27031609416007996,
                           0.56533282995224, 0.5641308426856995, 1.2499151580414036e-06))
_FLOOR = _F(GELU_FLOOR)
_TWO_M64 = _F(2.0**-64)


@intrinsic
def _mul_add(typingctx, a, b, c):
    """``a * b + c`` of float32 values, fused into one rounding where the CPU has FMA (LLVM's
    ``fmuladd``: the same choice wherever the code is compiled for one CPU, unlike fastmath's
    ``contract``, which follows the caller's flags)."""
    if not (a == b == c == types.float32):
        return None

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fmuladd.f32", (), ir.FunctionType(f32, [f32] * 3))
        return builder.call(fn, args)

    return types.float32(a, b, c), codegen


@njit(inline="always", **_FLAGS)
def _horner(x, coefficients):
    """The polynomial with `coefficients` (the highest power first) at `x` (multiply-adds)."""
    p = coefficients[0]
    for i in range(1, len(coefficients)):
        p = _mul_add(p, x, coefficients[i])
    return p


@njit(inline="always", **_FLAGS)
def _pow2(k):
    """2.0**k as float32, for integer -126 <= k <= 127."""
    return _bits_f32(np.uint32((k + 127) << 23))


@njit(inline="always", **_FLAGS)
def _exp_scaled(x, k):
    """e**x * 2**k for float32 `x` and integer 0 <= `k` <= 64 (see the module's notes)."""
    # Below -104, e**x rounds to 0. Such lanes compute e**0 instead and take 0 after: a result
    # that underflows costs a microcode assist (x86 without flush-to-zero), for the whole vector
    # that holds it.
    deep = x < _F(-104)
    y = _ZERO if deep else min(max(x, _F(-104)), _F(100))  # inf beyond 100; n's halves in range
    nf = np.floor(y * _LOG2E + _HALF)  # (math.floor calls the C library's floorf)
    n = np.int32(nf)
    r = (y - nf * _LN2_HI) - nf * _LN2_LO
    p = _horner(r, _EXP)
    h = n >> 1
    e = _ZERO if deep else p * _pow2(h) * _pow2(n - h + k)
    return e if x == x else x  # (min and max dropped a NaN)


@njit(inline="always", **_FLAGS)
def exp32(x):
    """e**x of float32 `x` (see the module's notes)."""
    return _exp_scaled(x, 0)


@njit(inline="always", **_FLAGS)
def sigmoid32(x):
    """1 / (1 + e**-x) of float32 `x`, without overflow: tiny values far left stay."""
    e = exp32(-abs(x))
    return (e if x < _ZERO else _ONE) / (_ONE + e)


@njit(inline="always", **_FLAGS)
def tanh32(x):
    """tanh of float32 `x`."""
    t = abs(x)
    s = t * t
    q = _horner(s, _Q)
    large = _ONE - _TWO / (exp32(_TWO * t) + _ONE)
    return math.copysign(t * q if t < _F(0.625) else large, x)


@njit(inline="always", **_FLAGS)
def gelu32(x):
    """x Phi(x) of float32 `x` (Phi: the standard normal CDF), x below ``GELU_FLOOR`` taken as it."""
    x = x if not x < _FLOOR else _FLOOR  # -inf * Phi(-inf) would be NaN: -0.0 there already
    a = min(abs(x), _F(20))  # erfc(20 / sqrt 2) = 0 in float32
    w = a * _RSQRT2
    s = w * w
    # a^2 = hi + lo exactly (Dekker's product: a's halves of 12 bits multiply exactly): exp(-hi/2)
    # alone would carry hi's rounding, magnified a^2/2 times (a = 4: 8 ulps; 10: 50)
    c = a * _F(4097)
    ah = c - (c - a)
    al = a - ah
    hi = a * a
    lo = ((ah * ah - hi) + _TWO * ah * al) + al * al
    erf_small = w * _horner(s, _ERF)
    t = _ONE / (_ONE + w)
    g = _horner(t, _G)
    # erfc(w) * 2**64: normal down to where erfc(w) is 0 in float32. A vector computes both
    # signs' formulas in every lane, so each formula takes 0 in the other sign's lanes: then only
    # a result that is itself subnormal makes one (each costs a microcode assist: _exp_scaled).
    erfc_scaled = _exp_scaled(-_HALF * hi, 64) * (_ONE - _HALF * lo) * g
    small = w < _HALF
    negative = x < _ZERO
    # x >= 0: 1 + erf(w); erfc(w) is below 1e-35 from w = 9 on, nothing beside 2
    tail = _ZERO if negative or not w < _F(9) else erfc_scaled
    positive = _HALF * x * (_ONE + (erf_small if small else _ONE - tail * _TWO_M64))
    # x < 0: erfc(w)
    far = (_HALF * x * (erfc_scaled if negative else _ZERO)) * _TWO_M64
    if not negative:
        return positive
    return _HALF * x * (_ONE - erf_small) if small else far


@njit(**_FLAGS)
def activate_span(buf, start, stop, act):
    """``buf[start:stop] = activation(buf[start:stop])`` in place, for float32 `buf` and activation
    number `act` (``gemm.ACTIVATIONS``: 0 none, 1 relu, 2 sigmoid, 3 tanh, 4 gelu)."""
    simd.prefer_wide_vectors()
    # unsigned indices: a signed one is tested for wrap-around, which keeps LLVM from vectorising
    at, count = np.uint64(start), np.uint64(max(stop - start, 0))
    if act == 1:
        for k in range(count):
            v = buf[at + k]
            buf[at + k] = _ZERO if v <= _ZERO else v  # -0.0 to +0.0, as NumPy's maximum; NaN stays
    elif act == 2:
        for k in range(count):
            buf[at + k] = sigmoid32(buf[at + k])
    elif act == 3:
        for k in range(count):
            buf[at + k] = tanh32(buf[at + k])
    elif act == 4:
        for k in range(count):
            buf[at + k] = gelu32(buf[at + k])


@njit(**_FLAGS)
def exp_span(buf, start, stop, shift):
    """``buf[start:stop] = exp(buf[start:stop] - shift)`` in place, for float32 `buf` (softmax's
    step; a separate function, so that its callers' fastmath does not reach ``exp32``)."""
    simd.prefer_wide_vectors()
    at, count = np.uint64(start), np.uint64(max(stop - start, 0))
    for k in range(count):
        buf[at + k] = exp32(buf[at + k] - shift)
