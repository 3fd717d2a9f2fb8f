"""Hidden-layer activations f and their derivatives f', side by side.

Each activation is chosen inside the kernels by a small integer code (see
:data:`ACTIVATION_CODES`) so that no Python function is ever passed into jitted
code. Every scalar function ``f(z)`` sits directly above its derivative
``f_prime(z, a)``, which receives both the pre-activation ``z`` and the
activation ``a = f(z)`` so it can use whichever is cheaper.

The array kernels at the bottom fuse the bias add with the activation
(``A = f(Z + b)``) and the chain-rule product (``delta *= f'(Z)``) into one
pass over the layer. relu, tanh and logistic have a kernel each, the other
activations share one through the scalar functions, and
:func:`inplace_bias_activation` / :func:`inplace_activation_derivative` pick
among them by the code at run time. The layers call :func:`bias_activation`
and :func:`activation_derivative`, which take the code at compile time
instead when it is static (:mod:`fastnn._kernels.codes`), so that a kernel
compiled for one activation holds that activation's loop alone.
"""

import math

from numba import njit
from numba.extending import overload

from .._config import JIT, JIT_INLINE, JIT_INTERNAL, JIT_OVERLOAD
from .._lowlevel.vecmath import float32_fast_exp, vector_tanh
from .codes import code_value, static_value

IDENTITY, LOGISTIC, TANH, RELU, LEAKY_RELU, ELU, GELU, SILU, SOFTPLUS = range(9)
# tanh through the C library's ``tanh`` instead of the vectorised one: the
# same values as numpy's but for rare last-bit differences, for objectives
# whose optimiser tells those apart (L-BFGS's line search).
LIBRARY_TANH = 9

ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "gelu": GELU,
    "silu": SILU,
    "softplus": SOFTPLUS,
}

LEAKY_SLOPE = 0.01  # scikit-learn-style leaky relu slope for z < 0
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(**JIT_INTERNAL)
def logistic(z):
    """Logistic sigmoid ``1 / (1 + exp(-z))``, as scipy's ``expit`` computes it.

    For very negative ``z``, ``exp(-z)`` overflows to inf and the quotient is
    0, the correct limit. Without a branch, float32 loops over it vectorise;
    in float64 it rounds exactly as scikit-learn's ``expit``.
    """
    return 1.0 / (1.0 + float32_fast_exp(-z))


@njit(**JIT_INTERNAL)
def logistic_prime(z, a):
    """Derivative of the logistic: a (1 - a)."""
    return a * (1.0 - a)


@njit(**JIT_INTERNAL)
def tanh_prime(z, a):
    """Derivative of tanh: 1 - a**2."""
    return 1.0 - a * a


@njit(**JIT_INTERNAL)
def relu(z):
    """Rectified linear unit max(z, 0)."""
    return z if z > 0 else 0.0


@njit(**JIT_INTERNAL)
def relu_prime(z, a):
    """Derivative of relu: 1 where z > 0, else 0."""
    return 1.0 if z > 0 else 0.0


@njit(**JIT_INTERNAL)
def leaky_relu(z):
    """Leaky relu: z for z > 0, else 0.01 z."""
    return z if z > 0 else LEAKY_SLOPE * z


@njit(**JIT_INTERNAL)
def leaky_relu_prime(z, a):
    """Derivative of leaky relu: 1 for z > 0, else 0.01."""
    return 1.0 if z > 0 else LEAKY_SLOPE


@njit(**JIT_INTERNAL)
def elu(z):
    """Exponential linear unit: z for z > 0, else exp(z) - 1."""
    return z if z > 0 else math.expm1(z)


@njit(**JIT_INTERNAL)
def elu_prime(z, a):
    """Derivative of elu: 1 for z > 0, else exp(z) = a + 1."""
    return 1.0 if z > 0 else a + 1.0


@njit(**JIT_INTERNAL)
def gelu(z):
    """Gaussian error linear unit z * Phi(z), with the exact normal CDF Phi."""
    return 0.5 * z * (1.0 + math.erf(z * INV_SQRT2))


@njit(**JIT_INTERNAL)
def gelu_prime(z, a):
    """Derivative of gelu: Phi(z) + z * phi(z)."""
    cdf = 0.5 * (1.0 + math.erf(z * INV_SQRT2))
    return cdf + z * INV_SQRT2PI * math.exp(-0.5 * z * z)


@njit(**JIT_INTERNAL)
def silu(z):
    """Sigmoid linear unit z * sigmoid(z)."""
    return z * logistic(z)


@njit(**JIT_INTERNAL)
def silu_prime(z, a):
    """Derivative of silu: s + z s (1 - s), with s = sigmoid(z)."""
    s = logistic(z)
    return s * (1.0 + z * (1.0 - s))


@njit(**JIT_INTERNAL)
def softplus(z):
    """Softplus log(1 + exp(z)), computed without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(**JIT_INTERNAL)
def softplus_prime(z, a):
    """Derivative of softplus: sigmoid(z)."""
    return logistic(z)


@njit(**JIT)
def activation(z, code):
    """Apply the activation selected by ``code`` to the scalar ``z``."""
    if code == RELU:
        return relu(z)
    if code == IDENTITY:
        return z
    if code == LOGISTIC:
        return logistic(z)
    if code == TANH:
        return vector_tanh(z)
    if code == LIBRARY_TANH:
        return math.tanh(z)
    if code == LEAKY_RELU:
        return leaky_relu(z)
    if code == ELU:
        return elu(z)
    if code == GELU:
        return gelu(z)
    if code == SILU:
        return silu(z)
    return softplus(z)


@njit(**JIT)
def activation_prime(z, a, code):
    """Derivative f'(z) of the activation selected by ``code``; ``a = f(z)``."""
    if code == RELU:
        return relu_prime(z, a)
    if code == IDENTITY:
        return 1.0
    if code == LOGISTIC:
        return logistic_prime(z, a)
    if code == TANH or code == LIBRARY_TANH:
        return tanh_prime(z, a)
    if code == LEAKY_RELU:
        return leaky_relu_prime(z, a)
    if code == ELU:
        return elu_prime(z, a)
    if code == GELU:
        return gelu_prime(z, a)
    if code == SILU:
        return silu_prime(z, a)
    return softplus_prime(z, a)


@njit(**JIT_INLINE)
def inplace_bias_relu(Z, b, A):
    """``Z += b`` then ``A = relu(Z)``, one pass over the layer."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = z if z > 0 else 0.0


@njit(**JIT_INLINE)
def inplace_bias_tanh(Z, b, A):
    """``Z += b`` then ``A = tanh(Z)`` (vectorised tanh), one pass."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = vector_tanh(z)


@njit(**JIT_INLINE)
def inplace_bias_logistic(Z, b, A):
    """``Z += b`` then ``A = logistic(Z)``, one pass over the layer."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = logistic(z)


@njit(**JIT_INLINE)
def inplace_bias_by_code(Z, b, A, code):
    """``Z += b`` then ``A = f(Z)`` through the scalar :func:`activation`."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = activation(z, code)


@njit(**JIT)
def inplace_bias_activation(Z, b, A, code):
    """Fused ``Z += b`` then ``A = f(Z)``, one pass over the layer.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_units)
        Weighted sums X @ W; the bias is added in place.
    b : ndarray of shape (n_units,)
        Bias of the layer.
    A : ndarray of shape (n_samples, n_units)
        Output buffer for the activations; may be ``Z`` itself.
    code : int
        Activation code from :data:`ACTIVATION_CODES`.
    """
    if code == RELU:
        inplace_bias_relu(Z, b, A)
    elif code == TANH:
        inplace_bias_tanh(Z, b, A)
    elif code == LOGISTIC:
        inplace_bias_logistic(Z, b, A)
    else:
        inplace_bias_by_code(Z, b, A, code)


@njit(**JIT_INLINE)
def inplace_relu_derivative(Z, A, delta):
    """``delta *= relu'(Z)``: zero where ``Z <= 0`` (``A`` is not needed)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            if Z[i, j] <= 0:
                delta[i, j] = 0.0


@njit(**JIT_INLINE)
def inplace_tanh_derivative(Z, A, delta):
    """``delta *= 1 - A**2``, with ``A = tanh(Z)``."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            delta[i, j] *= tanh_prime(Z[i, j], A[i, j])


@njit(**JIT_INLINE)
def inplace_logistic_derivative(Z, A, delta):
    """``delta *= A``, then ``delta *= 1 - A``, with ``A = logistic(Z)``.

    In scikit-learn's order of rounding.
    """
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            delta[i, j] = delta[i, j] * A[i, j] * (1.0 - A[i, j])


@njit(**JIT_INLINE)
def inplace_derivative_by_code(Z, A, delta, code):
    """``delta *= f'(Z)`` through the scalar :func:`activation_prime`."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            delta[i, j] *= activation_prime(Z[i, j], A[i, j], code)


@njit(**JIT)
def inplace_activation_derivative(Z, A, delta, code):
    """Chain rule through the activation: ``delta *= f'(Z)``, in place.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_units)
        Pre-activations of the layer.
    A : ndarray of shape (n_samples, n_units)
        Activations f(Z) of the layer.
    delta : ndarray of shape (n_samples, n_units)
        dL/dA on entry, dL/dZ on exit.
    code : int
        Activation code from :data:`ACTIVATION_CODES`.
    """
    if code == RELU:
        inplace_relu_derivative(Z, A, delta)
    elif code == TANH or code == LIBRARY_TANH:
        inplace_tanh_derivative(Z, A, delta)
    elif code == LOGISTIC:
        inplace_logistic_derivative(Z, A, delta)
    elif code != IDENTITY:
        inplace_derivative_by_code(Z, A, delta, code)


def bias_activation(Z, b, A, code):
    """:func:`inplace_bias_activation` for a run-time or static code.

    Jitted code only. For a static code (see :mod:`fastnn._kernels.codes`)
    of relu, tanh or logistic it compiles to that activation's kernel alone.
    """


def activation_derivative(Z, A, delta, code):
    """:func:`inplace_activation_derivative` for a run-time or static code.

    Jitted code only; a static code of relu, tanh or logistic compiles to
    that derivative's kernel alone.
    """


# The dedicated kernels a static code compiles alone; other codes compile the
# run-time dispatch.
BIAS_ACTIVATION_KERNELS = {
    RELU: inplace_bias_relu,
    TANH: inplace_bias_tanh,
    LOGISTIC: inplace_bias_logistic,
}
DERIVATIVE_KERNELS = {
    RELU: inplace_relu_derivative,
    TANH: inplace_tanh_derivative,
    LIBRARY_TANH: inplace_tanh_derivative,
    LOGISTIC: inplace_logistic_derivative,
}


@overload(bias_activation, jit_options=JIT_OVERLOAD, inline="always")
def overload_bias_activation(Z, b, A, code):
    """The kernel for ``code``: a dedicated one if it is static."""
    kernel = BIAS_ACTIVATION_KERNELS.get(static_value(code))
    if kernel is not None:
        return lambda Z, b, A, code: kernel(Z, b, A)
    return lambda Z, b, A, code: inplace_bias_activation(Z, b, A, code_value(code))


@overload(activation_derivative, jit_options=JIT_OVERLOAD, inline="always")
def overload_activation_derivative(Z, A, delta, code):
    """The derivative kernel for ``code``: a dedicated one if it is static."""
    kernel = DERIVATIVE_KERNELS.get(static_value(code))
    if kernel is not None:
        return lambda Z, A, delta, code: kernel(Z, A, delta)
    return lambda Z, A, delta, code: inplace_activation_derivative(
        Z, A, delta, code_value(code)
    )
