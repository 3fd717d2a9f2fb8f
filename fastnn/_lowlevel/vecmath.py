"""Exponential, ``expm1`` and ``tanh`` made of plain arithmetic, so loops vectorise.

Numba lowers ``math.exp`` and ``math.tanh`` to calls into the C library, one
element at a time: the pip build of llvmlite is not patched for Intel's SVML
(``numba -s``), so LLVM has no vector versions to call instead. The functions
here use only multiplications, additions, divisions, rounding and integer bit
operations, which LLVM turns into SIMD code when they are called inside a loop
over an array.

Method: write ``x = n ln2 + r`` with ``n`` an integer and ``|r| <= ln2 / 2``,
so that ``exp(x) = 2**n exp(r)``.

- ``ln2`` is split into a head of 9 significant bits, whose products with
  ``n`` are exact, and a tail (Cody and Waite's argument reduction), so ``r``
  carries no cancellation error.
- ``exp(r)`` is its Taylor polynomial, of degree 7 in float32 and 13 in
  float64; the truncation errors are below 6e-9 and 5e-18 relative.
- ``2**n`` is built from its IEEE 754 bit pattern, in two factors
  ``2**(n // 2) * 2**(n - n // 2)`` that are both normal numbers, so results
  that underflow to subnormals or zero, or overflow to infinity, come out as
  they would from the true value.
- ``x`` is clamped to ``[-limit, limit]``, past which the result is 0 or inf
  in that precision, and NaN is passed through.
- ``expm1(x) = 2**n (exp(r) - 1) + (2**n - 1)``, where ``exp(r) - 1`` is the
  same polynomial without its constant term, times ``r``: no cancellation
  near 0, where ``exp(x) - 1`` would lose every digit.
- ``tanh(x) = sign(x) * |u| / (u + 2)`` with ``u = expm1(-2 |x|)`` in
  ``[-1, 0]``, accurate for small and large ``|x|`` alike.

Accuracy, against numpy over the whole range (``test_kernels.py``): the
exponential within 1 unit in the last place, ``tanh`` within 3; both exact at
0, +-inf and NaN.
"""

import math
from decimal import Decimal, localcontext

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from .._config import JIT_OVERLOAD

LN2_HEAD_NUMERATOR, LN2_HEAD_DENOMINATOR = 355, 512


def ln2_split():
    """``(head, tail)`` with ``head = 355 / 512`` and ``head + tail = ln 2``.

    The tail is ``ln 2 - head`` rounded to float64 from a 40-digit ``ln 2``.
    """
    with localcontext() as ctx:
        ctx.prec = 40
        head = Decimal(LN2_HEAD_NUMERATOR) / LN2_HEAD_DENOMINATOR
        return float(head), float(Decimal(2).ln() - head)


@intrinsic
def float_from_bits(typingctx, bits):
    """The float whose IEEE 754 bit pattern is ``bits``.

    int32 gives float32 and int64 gives float64.
    """
    result = {types.int32: types.float32, types.int64: types.float64}.get(bits)
    if result is None:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))

    return result(bits), codegen


def make_exp(ftype, itype, degree, limit, mantissa_bits, exponent_bias):
    """The exponential for one float type, with that type's constants.

    Parameters
    ----------
    ftype, itype : numpy scalar type
        The float type and the integer type of the same width.
    degree : int
        Degree of the Taylor polynomial of ``exp(r)``.
    limit : float
        Inputs are clamped to ``[-limit, limit]``; beyond it the result is
        0 or inf in ``ftype``, and ``2**(n // 2)`` stays a normal number.
    mantissa_bits, exponent_bias : int
        The IEEE 754 layout of ``ftype``.
    """
    head, tail = (ftype(v) for v in ln2_split())
    log2e, half, unit = ftype(1.0 / math.log(2.0)), ftype(0.5), ftype(1.0)
    lo, hi = ftype(-limit), ftype(limit)
    coefficients = tuple(ftype(1.0 / math.factorial(k)) for k in range(degree, -1, -1))
    shift, bias, one = itype(mantissa_bits), itype(exponent_bias), itype(1)

    def reduce(x):
        """``r`` and the two factors of ``2**n``, for ``x = n ln2 + r``."""
        t = x if x > lo else lo
        t = t if t < hi else hi
        n = np.floor(t * log2e + half)
        r = (t - n * head) - n * tail
        power = itype(n)
        half_power = power >> one
        first = float_from_bits(itype((half_power + bias) << shift))
        second = float_from_bits(itype((power - half_power + bias) << shift))
        return r, first, second

    reduce = njit(reduce, inline="always", **JIT_OVERLOAD)

    def exp(x):
        r, first, second = reduce(x)
        p = coefficients[0]
        for k in range(1, degree + 1):
            p = p * r + coefficients[k]
        result = (p * first) * second
        return result if x == x else x

    def expm1(x):
        r, first, second = reduce(x)
        q = coefficients[0]
        for k in range(1, degree):
            q = q * r + coefficients[k]
        scale = first * second
        result = scale * (q * r) + (scale - unit)
        return result if x == x else x

    return exp, expm1


def make_tanh(expm1, ftype):
    """``tanh`` for one float type, from that type's ``expm1``."""
    minus_two, two = ftype(-2.0), ftype(2.0)

    def tanh(x):
        u = expm1(minus_two * abs(x))
        return math.copysign(abs(u) / (u + two), x)

    return tanh


EXP_FLOAT32, EXPM1_FLOAT32 = make_exp(np.float32, np.int32, 7, 130.0, 23, 127)
EXP_FLOAT64, EXPM1_FLOAT64 = make_exp(np.float64, np.int64, 13, 1400.0, 52, 1023)
TANH_FLOAT32 = make_tanh(njit(EXPM1_FLOAT32, **JIT_OVERLOAD), np.float32)
TANH_FLOAT64 = make_tanh(njit(EXPM1_FLOAT64, **JIT_OVERLOAD), np.float64)


def by_precision(function, float32_impl, float64_impl):
    """Compile calls of ``function`` in jitted code by the argument's type.

    float32 arguments get ``float32_impl`` and float64 ones ``float64_impl``;
    ``function`` itself is what Python calls.
    """
    impls = {types.float32: float32_impl, types.float64: float64_impl}
    overload(function, jit_options=JIT_OVERLOAD)(lambda x: impls.get(x))


def vector_exp(x):
    """``e**x`` in the precision of ``x``; vectorises in jitted loops.

    Called from Python, this is ``math.exp``; in jitted code it is the
    arithmetic version above, for float32 and float64 arguments.
    """
    return math.exp(x)


def float32_fast_exp(x):
    """``e**x``: vectorising arithmetic in float32, the C library's in float64.

    float32 loops get the arithmetic version above. float64 keeps
    ``math.exp``, whose results are numpy's (correctly rounded but for rare
    cases), so that float64 fits keep scikit-learn's numbers to the last bit
    where L-BFGS's line search would tell them apart.
    """
    return math.exp(x)


def vector_tanh(x):
    """``tanh(x)`` in the precision of ``x``; vectorises in jitted loops.

    Called from Python, this is ``math.tanh``; in jitted code it is the
    arithmetic version above, for float32 and float64 arguments.
    """
    return math.tanh(x)


by_precision(vector_exp, EXP_FLOAT32, EXP_FLOAT64)
by_precision(float32_fast_exp, EXP_FLOAT32, lambda x: math.exp(x))
by_precision(vector_tanh, TANH_FLOAT32, TANH_FLOAT64)
