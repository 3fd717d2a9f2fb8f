"""Inverted dropout on the hidden activations, for training only.

Forward, for every hidden layer ``i`` with rate ``p_i``::

    M_i = Bernoulli(1 - p_i) / (1 - p_i)      (one draw per unit and row)
    A_i = f(Z_i) * M_i

so that ``E[A_i]`` is ``f(Z_i)`` and prediction needs no rescaling. Backward,
the mask multiplies the delta before the activation's derivative::

    D_{i-1} = (D_i W_i^T) * M_{i-1} * f'(Z_{i-1})

with ``f'`` taken at the unmasked ``f(Z_{i-1})`` (recomputed from ``Z``).

The masks are drawn by a SplitMix64 generator whose 64-bit state travels
with the fit (:class:`Dropout`), so the same seed gives the same masks in
every process and thread, and nothing is allocated per batch.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE, JIT_INTERNAL
from .._lowlevel.blas import NOT_TRANSPOSED, matmul
from .._lowlevel.products import delta_through_weights
from .._lowlevel.views import borrowed_matrix
from .activations import activation, activation_prime, bias_activation
from .codes import code_value
from .layers import (
    bias_gradient,
    inplace_add_bias,
    input_product,
    weight_gradient,
)
from .layout import A_ROWS, D_ROWS, Z_ROWS, buffer, coef, intercept, transposed_coef

# rates: (n_hidden,) float64; masks: flat buffer, one (n_rows, units[i + 1])
# block per hidden layer, starting at offsets[i]; state: (1,) uint64.
Dropout = namedtuple("Dropout", ["rates", "masks", "offsets", "state"])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(**JIT_INLINE)
def next_uniform(state):
    """A uniform float in [0, 1) from SplitMix64; advances ``state[0]``."""
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * _TO_UNIT


@njit(**JIT_INTERNAL)
def mask(dropout, i, n_rows, n_units):
    """Hidden layer ``i``'s mask block, a view of shape (n_rows, n_units)."""
    return borrowed_matrix(dropout.masks, dropout.offsets[i], n_rows, n_units)


@njit(**JIT)
def draw_masks(dropout, units, n_rows):
    """Draw every hidden layer's mask for a batch of ``n_rows`` rows.

    Entries are 0 with probability ``rate`` and ``1 / (1 - rate)`` otherwise;
    a layer with rate 0 gets all ones and draws nothing.
    """
    for i in range(dropout.rates.shape[0]):
        M = mask(dropout, i, n_rows, units[i + 1])
        rate = dropout.rates[i]
        if rate == 0:
            M[:] = 1.0
            continue
        scale = 1.0 / (1.0 - rate)
        for r in range(n_rows):
            for k in range(M.shape[1]):
                M[r, k] = 0.0 if next_uniform(dropout.state) < rate else scale


@njit(**JIT_INTERNAL)
def forward_dropout(net, batch, act, dropout):
    """Forward pass with every hidden layer's activations masked.

    As :func:`fastnn._kernels.layers.forward`, with ``A_i = f(Z_i) * M_i``
    for the hidden layers, using the masks already in ``dropout.masks``.
    """
    nb = batch.rows.shape[0]
    last = net.units.shape[0] - 2
    for i in range(last + 1):
        W = coef(net.params, net, i)
        b = intercept(net.params, net, i)
        Z = buffer(net, Z_ROWS, i, nb)
        if i == 0:
            input_product(batch, W, Z)
        else:
            matmul(buffer(net, A_ROWS, i - 1, nb), W, Z, NOT_TRANSPOSED)
        if i == last:
            inplace_add_bias(Z, b)
            continue
        A = buffer(net, A_ROWS, i, nb)
        bias_activation(Z, b, A, act)
        M = mask(dropout, i, nb, A.shape[1])
        for r in range(nb):
            for k in range(A.shape[1]):
                A[r, k] *= M[r, k]


@njit(**JIT_INTERNAL)
def inplace_masked_derivative(Z, M, delta, code):
    """``delta *= M * f'(Z)``, with ``f'`` at the unmasked ``f(Z)``."""
    n, m = Z.shape
    for r in range(n):
        for k in range(m):
            if M[r, k] == 0:
                delta[r, k] = 0.0
            else:
                z = Z[r, k]
                prime = activation_prime(z, activation(z, code), code)
                delta[r, k] *= M[r, k] * prime


@njit(**JIT_INTERNAL)
def backward_dropout(net, batch, act, dropout):
    """Backward pass through the masks; raw sums into ``net.grads``.

    As :func:`fastnn._kernels.layers.backward` with ``factor = 1`` and
    ``keep = 0``; the weight gradients read the masked activations.
    """
    nb = batch.rows.shape[0]
    for i in range(net.units.shape[0] - 2, -1, -1):
        D = buffer(net, D_ROWS, i, nb)
        weight_gradient(net, batch, i, D, 1.0, 0.0)
        bias_gradient(intercept(net.grads, net, i), D, 1.0, 0.0)
        if i > 0:
            D_prev = buffer(net, D_ROWS, i - 1, nb)
            W = coef(net.params, net, i)
            delta_through_weights(D, W, transposed_coef(net, i), D_prev)
            Z_prev = buffer(net, Z_ROWS, i - 1, nb)
            M = mask(dropout, i - 1, nb, Z_prev.shape[1])
            inplace_masked_derivative(Z_prev, M, D_prev, code_value(act))
