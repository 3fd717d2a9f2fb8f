"""Output activations, losses and output deltas, with sklearn's scaling.

Each output layer pairs a link with its canonical loss, so the output delta is
always ``dL/dZ = A - Y`` (times the sample weight):

========================  ==============  ===================================
code                      output f        loss per sample (before averaging)
========================  ==============  ===================================
``SQUARED_ERROR``         identity        1/2 * mean_k (y_k - a_k)**2
``POISSON``               exp             sum_k y_k log(y_k / a_k) - y_k + a_k
``BINARY_LOG_LOSS``       logistic        -sum_k y_k log a_k + (1-y_k) log(1-a_k)
``SOFTMAX_LOG_LOSS``      softmax         -sum_k y_k log a_k
========================  ==============  ===================================

The output layer's ``Z = A W + b`` comes from :mod:`fastnn._kernels.layers`,
bias included. Training calls :func:`output_loss_and_delta`, prediction
:func:`inplace_output_activation`; both take the softmax from
:func:`shifted_exp_rows` and :func:`row_sum`.

Probabilities inside the logarithms are clipped to ``[eps, 1 - eps]`` exactly as
scikit-learn does, but the logarithms are taken from the logits (log-sum-exp),
so logits of +-1e4 give finite losses and no NaN.
"""

import math

from numba import njit

from .._config import JIT
from .._lowlevel.vecmath import vector_exp
from .activations import logistic

SQUARED_ERROR, POISSON, BINARY_LOG_LOSS, SOFTMAX_LOG_LOSS = range(4)

OUTPUT_CODES = {
    "identity": SQUARED_ERROR,
    "exp": POISSON,
    "logistic": BINARY_LOG_LOSS,
    "softmax": SOFTMAX_LOG_LOSS,
}


@njit(**JIT)
def log_logistic(z):
    """log(sigmoid(z)) without overflow: -log(1 + exp(-z))."""
    if z >= 0:
        return -math.log1p(math.exp(-z))
    return z - math.log1p(math.exp(z))


@njit(**JIT)
def clip(v, lo, hi):
    """Clip the scalar ``v`` into ``[lo, hi]``."""
    return min(max(v, lo), hi)


@njit(**JIT)
def inplace_output_activation(Z, code):
    """Apply the output activation in place.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs)
        Output-layer pre-activations (bias included); overwritten by the
        activations.
    code : int
        Output/loss code (``SQUARED_ERROR``, ``POISSON``, ...).
    """
    n, m = Z.shape
    if code == SOFTMAX_LOG_LOSS:
        shifted_exp_rows(Z, Z, Z)
        for i in range(n):
            total = row_sum(Z, i)
            for k in range(m):
                Z[i, k] /= total
    elif code != SQUARED_ERROR:
        for i in range(n):
            for k in range(m):
                Z[i, k] = output_activation(Z[i, k], code)


@njit(**JIT)
def row_sum(E, i):
    """``sum_k E[i, k]`` in float64: a softmax's denominator.

    Parameters
    ----------
    E : ndarray of shape (n_samples, n_outputs)
        Exponentials of shifted logits.
    i : int
        Row index.

    Returns
    -------
    total : float
    """
    total = 0.0
    for k in range(E.shape[1]):
        total += E[i, k]
    return total


@njit(**JIT)
def shifted_exp_rows(Z, shifted, expd):
    """``shifted = Z - max(Z, axis=1)`` and ``expd = exp(shifted)``, row-wise.

    The first factor of a softmax, with the row's largest logit taken out so
    that no exponential overflows. The three arrays may be the same array,
    and all are C-contiguous. All the exponentials are taken in one pass over
    the whole batch after the shifts, with :func:`vector_exp`, so that they
    run as SIMD code instead of one C library call per element.
    """
    n, m = Z.shape
    for i in range(n):
        top = Z[i, 0]
        for k in range(1, m):
            top = max(top, Z[i, k])
        for k in range(m):
            shifted[i, k] = Z[i, k] - top
    flat_shifted = shifted.reshape(n * m)
    flat_expd = expd.reshape(n * m)
    for j in range(n * m):
        flat_expd[j] = vector_exp(flat_shifted[j])


@njit(**JIT)
def softmax_log_loss_and_delta(Z, A, delta, Y, rows, sw, log_eps, log_1m_eps):
    """Softmax of every logits row into ``A``, its log-loss and its delta.

    Returns the weighted sum over rows of ``-sum_k y_k log p_k``, with
    ``log p_k = z_k - max(z) - log(sum exp)`` clipped to ``[log_eps,
    log_1m_eps]``; ``delta = (A - Y[rows]) * sample_weight``. Rows of ``Y``
    are read in place (no row views).
    """
    n, m = Z.shape
    shifted_exp_rows(Z, A, delta)
    weighted = sw.shape[0] > 0
    total = 0.0
    for i in range(n):
        r = rows[i]
        w = sw[r] if weighted else 1.0
        s = row_sum(delta, i)
        log_s = math.log(s)
        row_loss = 0.0
        for k in range(m):
            y = Y[r, k]
            if y != 0:
                row_loss -= y * clip(A[i, k] - log_s, log_eps, log_1m_eps)
            A[i, k] = delta[i, k] / s
            delta[i, k] = (A[i, k] - y) * w
        total += w * row_loss
    return total


@njit(**JIT)
def pointwise_loss(z, a, y, code, log_eps, log_1m_eps):
    """Loss of one output unit for the identity, exp and logistic links."""
    if code == SQUARED_ERROR:
        return 0.5 * (y - a) * (y - a)
    if code == POISSON:
        return (y * (math.log(y) - z) if y > 0 else 0.0) - y + a
    logp = clip(log_logistic(z), log_eps, log_1m_eps)
    log1mp = clip(log_logistic(-z), log_eps, log_1m_eps)
    return -(y * logp + (1.0 - y) * log1mp)


@njit(**JIT)
def output_activation(z, code):
    """Output link for the identity, exp and logistic cases."""
    if code == SQUARED_ERROR:
        return z
    if code == POISSON:
        return math.exp(z)
    return logistic(z)


@njit(**JIT)
def output_loss_and_delta(Z, A, delta, Y, rows, sw, code, eps):
    """Output activation, loss, and dL/dZ = (A - Y) * sample_weight.

    Parameters
    ----------
    Z : ndarray of shape (n_batch, n_outputs)
        Pre-activations of the output layer, bias included.
    A : ndarray of shape (n_batch, n_outputs)
        Receives the output activations (predictions or probabilities).
    delta : ndarray of shape (n_batch, n_outputs)
        Receives dL/dZ for each sample, already multiplied by its weight.
    Y : ndarray of shape (n_samples, n_outputs)
        All targets; row ``rows[i]`` belongs to batch row ``i``.
    rows : ndarray of shape (n_batch,)
        Indices of the batch's samples into ``Y`` and ``sw``.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights; an empty array means unit weights.
    code : int
        Output/loss code.
    eps : float
        Machine epsilon of the dtype, for sklearn's probability clipping.

    Returns
    -------
    loss : float
        Sum over the batch of sample weight times per-sample loss, with the
        squared error averaged over outputs as sklearn does.
    """
    n, m = Z.shape
    log_eps, log_1m_eps = math.log(eps), math.log1p(-eps)
    if code == SOFTMAX_LOG_LOSS:
        return softmax_log_loss_and_delta(Z, A, delta, Y, rows, sw, log_eps, log_1m_eps)
    weighted = sw.shape[0] > 0
    scale = 1.0 / m if code == SQUARED_ERROR else 1.0
    total = 0.0
    for i in range(n):
        r = rows[i]
        w = sw[r] if weighted else 1.0
        row_loss = 0.0
        for k in range(m):
            A[i, k] = output_activation(Z[i, k], code)
            row_loss += pointwise_loss(
                Z[i, k], A[i, k], Y[r, k], code, log_eps, log_1m_eps
            )
            delta[i, k] = (A[i, k] - Y[r, k]) * w
        total += w * row_loss * scale
    return total
