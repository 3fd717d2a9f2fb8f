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
:func:`inplace_output_activation` (or :func:`output_labels` for the labels
alone); both take the softmax from :func:`shifted_exp_rows` (in place:
:func:`inplace_shifted_exp_rows`) and :func:`row_sum`.

The loss is computed from the activations with scikit-learn's arithmetic:
probabilities are clipped to ``[eps, 1 - eps]`` before their logarithms,
each output column is averaged over the (weighted) batch, and the columns are
summed. The reported loss, the L-BFGS objective and every stopping rule then
see scikit-learn's values, saturated logits included.
"""

import math

import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE, JIT_INTERNAL
from .._lowlevel.summation import pairwise_sum
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
def inplace_output_activation(Z, code):
    """Apply the output activation in place (prediction's values).

    Every exponential is the vectorising one (:func:`vector_exp`), in both
    precisions: softmax, logistic and exp run as SIMD loops over the block.

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
        inplace_shifted_exp_rows(Z)
        for i in range(n):
            total = row_sum(Z, i)
            for k in range(m):
                Z[i, k] /= total
    elif code != SQUARED_ERROR:
        flat = Z.reshape(n * m)
        for j in range(n * m):
            flat[j] = predicted_activation(flat[j], code)


@njit(**JIT_INLINE)
def predicted_activation(z, code):
    """Prediction's exp or logistic link, with the vectorising exponential."""
    if code == POISSON:
        return vector_exp(z)
    e = vector_exp(-abs(z))
    return (1.0 if z >= 0 else e) / (1.0 + e)


# Logit gaps at or below which :func:`output_labels` normalises before it
# decides: beyond it, exp of the gap is below 1 - 9e-4 in either precision,
# so the normalised values keep the logits' order strictly.
TIE_GAP = 1.0 / 1024


@njit(**JIT)
def output_labels(Z, code, labels):
    """The labels the output activations imply, from the pre-activations.

    What ``argmax`` (softmax) or ``> 0.5`` (logistic) of
    :func:`inplace_output_activation`'s values gives, ties and NaN included,
    decided from ``Z`` itself: the largest logit, or the logit's sign. A row
    whose runner-up logit (at a lower index) lies within :data:`TIE_GAP` of
    its largest, that holds a NaN or an infinity, or a logit within the gap
    of 0, is normalised first and decided on the values.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs)
        Output-layer pre-activations (bias included); rows that need it are
        overwritten by their activations.
    code : int
        ``SOFTMAX_LOG_LOSS`` or ``BINARY_LOG_LOSS``.
    labels : ndarray of shape (n_samples, 1) or (n_samples, n_outputs), int64
        Softmax: the column of the largest value; logistic: 1 where the value
        exceeds 0.5, else 0.
    """
    n, m = Z.shape
    if code == SOFTMAX_LOG_LOSS:
        for i in range(n):
            best = first_argmax(Z, i)
            if close_call(Z, i, best):
                inplace_output_activation(Z[i : i + 1], code)
                best = first_argmax(Z, i)
            labels[i, 0] = best
        return
    for i in range(n):
        for k in range(m):
            z = Z[i, k]
            if z > TIE_GAP:
                labels[i, k] = 1
            elif z < -TIE_GAP:
                labels[i, k] = 0
            else:
                labels[i, k] = 1 if predicted_activation(z, code) > 0.5 else 0


@njit(**JIT_INTERNAL)
def first_argmax(Z, i):
    """``np.argmax(Z[i])``: the first largest entry, or the first NaN."""
    best, top = 0, Z[i, 0]
    if top != top:
        return 0
    for k in range(1, Z.shape[1]):
        z = Z[i, k]
        if z != z:
            return k
        if z > top:
            best, top = k, z
    return best


@njit(**JIT_INTERNAL)
def close_call(Z, i, best):
    """Whether row ``i``'s argmax over logits could differ from over softmax.

    True when the largest logit is not finite, or an earlier logit lies
    within :data:`TIE_GAP` of it (their probabilities might round equal, and
    argmax would then pick the earlier one).
    """
    top = Z[i, best]
    if top - top != 0:
        return True
    for k in range(best):
        if top - Z[i, k] <= TIE_GAP:
            return True
    return False


@njit(**JIT_INTERNAL)
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
    subtract_row_max(Z, shifted)
    flat_shifted = shifted.reshape(n * m)
    flat_expd = expd.reshape(n * m)
    for j in range(n * m):
        flat_expd[j] = vector_exp(flat_shifted[j])


@njit(**JIT_INLINE)
def subtract_row_max(Z, shifted):
    """``shifted = Z - max(Z, axis=1)``, row by row (``shifted`` may be Z)."""
    n, m = Z.shape
    for i in range(n):
        top = Z[i, 0]
        for k in range(1, m):
            top = max(top, Z[i, k])
        for k in range(m):
            shifted[i, k] = Z[i, k] - top


@njit(**JIT_INLINE)
def inplace_shifted_exp_rows(Z):
    """:func:`shifted_exp_rows` of ``Z`` into ``Z`` itself.

    The same arithmetic; with one array instead of three aliased ones, LLVM
    vectorises the exponentials instead of falling back to scalar code.
    """
    n, m = Z.shape
    subtract_row_max(Z, Z)
    flat = Z.reshape(n * m)
    for j in range(n * m):
        flat[j] = vector_exp(flat[j])


@njit(**JIT_INTERNAL)
def softmax_and_delta(Z, A, delta, Y, rows, sw):
    """Softmax of every logits row into ``A``, and the output delta.

    ``delta = (A - Y[rows]) * sample_weight``; ``delta`` also serves as the
    scratch for the exponentials. Rows of ``Y`` are read in place.
    """
    n, m = Z.shape
    shifted_exp_rows(Z, A, delta)
    weighted = sw.shape[0] > 0
    for i in range(n):
        r = rows[i]
        w = sw[r] if weighted else 1.0
        s = row_sum(delta, i)
        for k in range(m):
            A[i, k] = delta[i, k] / s
            delta[i, k] = (A[i, k] - Y[r, k]) * w


@njit(**JIT_INTERNAL)
def clip_probability(p, eps):
    """``p`` clipped to ``[eps, 1 - eps]`` as ``np.clip`` does; NaN stays NaN."""
    if p < eps:
        return eps
    if p > 1.0 - eps:
        return 1.0 - eps
    return p


@njit(**JIT_INTERNAL)
def xlogy(x, y):
    """``x * log(y)``, and 0 where ``x == 0`` and ``y`` is not NaN (scipy's)."""
    if x == 0 and y == y:
        return 0.0
    return x * math.log(y)


@njit(**JIT_INTERNAL)
def pointwise_loss(a, y, code, eps):
    """Loss of one output entry, with scikit-learn's arithmetic.

    Squared error ``(y - a)**2`` (halved and averaged over outputs by the
    caller); Poisson ``xlogy(y, y / a) - y + a``; binary log-loss
    ``-(xlogy(y, p) + xlogy(1 - y, 1 - p))`` and softmax log-loss
    ``-xlogy(y, p)``, with ``p = a`` clipped to ``[eps, 1 - eps]``.
    """
    if code == SQUARED_ERROR:
        return (y - a) * (y - a)
    if code == POISSON:
        return xlogy(y, y / a) - y + a
    p = clip_probability(a, eps)
    if code == SOFTMAX_LOG_LOSS:
        return -xlogy(y, p)
    return -(xlogy(y, p) + xlogy(1.0 - y, 1.0 - p))


@njit(**JIT_INTERNAL)
def output_activation(z, code):
    """Output link for the identity, exp and logistic cases."""
    if code == SQUARED_ERROR:
        return z
    if code == POISSON:
        return math.exp(z)
    return logistic(z)


@njit(**JIT_INLINE)
def output_loss_and_delta(Z, A, delta, Y, rows, sw, code, eps, sw_sum):
    """Output activation, loss, and dL/dZ = (A - Y) * sample_weight.

    The loss is computed as scikit-learn computes it, from the activations
    ``A`` (probabilities clipped in probability space), and in its order:
    each output column's weighted sum over the batch is divided by
    ``sw_sum``, then the columns are summed (averaged for the squared error).

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
        Machine epsilon of the dtype, for scikit-learn's probability clipping.
    sw_sum : float
        Sum of the batch's sample weights (the batch size when unweighted).

    Returns
    -------
    loss : float
        The batch's data loss (no penalty term), as scikit-learn's
        ``LOSS_FUNCTIONS`` return it.
    """
    output_activation_and_delta(Z, A, delta, Y, rows, sw, code)
    return column_mean_loss(A, Y, rows, sw, code, eps, sw_sum)


@njit(**JIT_INLINE)
def output_activation_and_delta(Z, A, delta, Y, rows, sw, code):
    """Output activation and dL/dZ = (A - Y) * sample_weight, without the loss.

    Parameters as in :func:`output_loss_and_delta`.
    """
    n, m = Z.shape
    if code == SOFTMAX_LOG_LOSS:
        softmax_and_delta(Z, A, delta, Y, rows, sw)
        return
    weighted = sw.shape[0] > 0
    for i in range(n):
        r = rows[i]
        w = sw[r] if weighted else 1.0
        for k in range(m):
            A[i, k] = output_activation(Z[i, k], code)
            delta[i, k] = (A[i, k] - Y[r, k]) * w


@njit(**JIT_INTERNAL)
def column_mean_loss(A, Y, rows, sw, code, eps, sw_sum):
    """Sum over output columns of each column's weighted mean loss.

    ``np.average(losses, weights=sw, axis=0).sum()``, with the squared
    error's ``0.5 * ... .mean()`` over columns instead of the sum.
    """
    m = A.shape[1]
    total = 0.0
    for k in range(m):
        total += column_loss_sum(A, Y, rows, sw, code, eps, k) / sw_sum
    if code == SQUARED_ERROR:
        return 0.5 * (total / m)
    return total


@njit(**JIT_INTERNAL)
def column_mean_loss_numpy_order(A, Y, rows, sw, code, eps, sw_sum):
    """:func:`column_mean_loss` rounded as NumPy rounds it, for L-BFGS.

    A single column is summed pairwise, as NumPy reduces a contiguous axis;
    several columns row after row, and then their means pairwise. L-BFGS's
    line search tells apart losses that differ in the last bit; epochs keep
    the plain loops, which compile faster.
    """
    m = A.shape[1]
    if m == 1:
        entries = column_entries(A, Y, rows, sw, code, eps)
        total = pairwise_sum(entries) / sw_sum
    else:
        means = np.empty(m)
        for k in range(m):
            means[k] = column_loss_sum(A, Y, rows, sw, code, eps, k) / sw_sum
        total = pairwise_sum(means)
    if code == SQUARED_ERROR:
        return 0.5 * (total / m)
    return total


@njit(**JIT_INLINE)
def column_loss_sum(A, Y, rows, sw, code, eps, k):
    """Weighted sum of column ``k``'s loss entries, row after row."""
    weighted = sw.shape[0] > 0
    column = 0.0
    for i in range(A.shape[0]):
        r = rows[i]
        entry = pointwise_loss(A[i, k], Y[r, k], code, eps)
        column += entry * sw[r] if weighted else entry
    return column


@njit(**JIT_INTERNAL)
def column_entries(A, Y, rows, sw, code, eps):
    """The weighted loss entries of the only output column."""
    weighted = sw.shape[0] > 0
    n = A.shape[0]
    entries = np.empty(n)
    for i in range(n):
        r = rows[i]
        entry = pointwise_loss(A[i, 0], Y[r, 0], code, eps)
        entries[i] = entry * sw[r] if weighted else entry
    return entries
