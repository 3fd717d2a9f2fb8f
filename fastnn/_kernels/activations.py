"""Hidden-layer activations f and their derivatives f', side by side.

Each activation is chosen inside the kernels by a small integer code (see
:data:`ACTIVATION_CODES`) so that no Python function is ever passed into jitted
code. Every scalar function ``f(z)`` sits directly above its derivative
``f_prime(z, a)``, which receives both the pre-activation ``z`` and the
activation ``a = f(z)`` so it can use whichever is cheaper.

The array kernels at the bottom fuse the bias add with the activation
(``A = f(Z + b)``) and the chain-rule product (``delta *= f'(Z)``) into one
pass over the layer.
"""

import math

from numba import njit

from .._config import JIT, JIT_INTERNAL
from .._lowlevel.vecmath import float32_fast_exp, vector_tanh

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
    """Logistic sigmoid 1 / (1 + exp(-z)), without overflow for large |z|.

    With ``e = exp(-|z|)``: ``1 / (1 + e)`` for ``z >= 0`` and ``e / (1 + e)``
    below, without a branch, so that float32 loops over it vectorise.
    """
    e = float32_fast_exp(-abs(z))
    return (1.0 if z >= 0 else e) / (1.0 + e)


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
    n, m = Z.shape
    if code == RELU:
        for i in range(n):
            for j in range(m):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                A[i, j] = z if z > 0 else 0.0
        return
    if code == TANH:
        for i in range(n):
            for j in range(m):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                A[i, j] = vector_tanh(z)
        return
    if code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                A[i, j] = logistic(z)
        return
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = activation(z, code)


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
    n, m = Z.shape
    if code == RELU:
        for i in range(n):
            for j in range(m):
                if Z[i, j] <= 0:
                    delta[i, j] = 0.0
        return
    if code == IDENTITY:
        return
    if code == TANH or code == LIBRARY_TANH:
        for i in range(n):
            for j in range(m):
                delta[i, j] *= tanh_prime(Z[i, j], A[i, j])
        return
    if code == LOGISTIC:
        for i in range(n):
            for j in range(m):
                delta[i, j] *= logistic_prime(Z[i, j], A[i, j])
        return
    for i in range(n):
        for j in range(m):
            delta[i, j] *= activation_prime(Z[i, j], A[i, j], code)
