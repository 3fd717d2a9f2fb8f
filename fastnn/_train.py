"""Training kernels: a batch's loss and gradient, and a whole epoch.

The batch kernel over all rows is also the full-data loss and gradient used
by L-BFGS.

One call of :func:`train_epoch` runs every mini-batch of an epoch: gather the
batch's rows, forward, output loss and delta, backward, optimizer step. No
Python runs between batches and nothing is allocated inside the batch loop.
"""

import numpy as np
from numba import njit

from ._activations import inplace_bias_activation
from ._config import JIT, JIT_NOGIL
from ._losses import inplace_output_activation, output_loss_and_delta
from ._network import (
    backward,
    buffer,
    coef,
    csr_rows_dot,
    forward_hidden,
    intercept,
)
from ._optimizers import (
    FOLD,
    LR,
    MOMENTUM,
    N_HYPER,
    NESTEROV,
    SGD,
    apply_velocity,
    fused_optimizer_step,
)
from ._prefetch import prefetch_rows, touch_rows


@njit(**JIT)
def gather_rows(X, rows, out):
    """``out[:len(rows)] = X[rows]`` for a dense C-contiguous X.

    Written as an explicit loop: a slice assignment would also compile numpy's
    shape-mismatch error path (string formatting), about 2 s of compile time.
    """
    for i in range(rows.shape[0]):
        src = X[rows[i]]
        dst = out[i]
        for j in range(src.shape[0]):
            dst[j] = src[j]


@njit(**JIT)
def prefetch_next_batch(X, Y, order, start, batch_size):
    """Prefetch the batch at ``start`` and touch the one after it.

    The rows of X (when dense) and Y of the batch at ``start`` are prefetched;
    the batch after it has the first lines of each row loaded, so that its
    page-table walks are done before it is prefetched. Called before the
    current batch's passes, so that the misses overlap with its computation;
    see :mod:`fastnn._prefetch`.
    """
    n = order.shape[0]
    rows = order[min(start, n) : min(start + batch_size, n)]
    after = order[min(start + batch_size, n) : min(start + 2 * batch_size, n)]
    if X.shape[0] > 0:
        prefetch_rows(X, rows)
        touch_rows(X, after)
    prefetch_rows(Y, rows)
    touch_rows(Y, after)


@njit(**JIT)
def l2_penalty(params, offsets, units):
    """Sum of squared coefficients (intercepts excluded).

    One BLAS dot product per layer, summed over layers, as scikit-learn
    computes the penalty.
    """
    total = 0.0
    for i in range(units.shape[0] - 1):
        start = offsets[0, i]
        W = params[start : start + units[i] * units[i + 1]]
        total += np.dot(W, W)
    return total


@njit(**JIT)
def batch_loss_and_gradient(
    Xb,
    csr,
    rows,
    Y,
    sw,
    params,
    grads,
    offsets,
    units,
    ws,
    ws_offsets,
    act,
    out,
    eps,
    alpha,
):
    """Mean loss of one batch and its gradient into ``grads``.

    Parameters
    ----------
    Xb : ndarray of shape (n_batch, n_features) or (0, n_features)
        The batch's dense rows; empty when X is sparse.
    csr : tuple of ndarray
        ``(data, indices, indptr)`` of a sparse X, or empty arrays.
    rows : ndarray of shape (n_batch,)
        The batch's sample indices into X (sparse), Y and sw.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights, empty for unit weights.
    params, grads : ndarray of shape (n_params,)
        Flat parameters and the gradient buffer (overwritten).
    offsets, units, ws, ws_offsets : ndarray
        Parameter layout, units per layer, workspace and its layout.
    act, out : int
        Hidden activation code and output/loss code.
    eps : float
        Machine epsilon of the dtype.
    alpha : float
        L2 penalty.

    Returns
    -------
    loss : float
        sklearn's batch loss: the weighted mean loss plus
        ``alpha / 2 * ||W||**2 / sw_sum``.
    """
    loss, _ = batch_forward_backward(
        Xb, csr, rows, Y, sw, params, grads, offsets, units, ws, ws_offsets,
        act, out, eps, alpha, False, 0.0, 0.0, True,
    )  # fmt: skip
    return loss


@njit(**JIT)
def batch_forward_backward(
    Xb, csr, rows, Y, sw, params, grads, offsets, units, ws, ws_offsets, act, out,
    eps, alpha, fold, rate, keep, scale,
):  # fmt: skip
    """Forward and backward over one batch; see :func:`batch_loss_and_gradient`.

    Without ``fold``, ``grads`` receives the finished gradient (``scale``)
    or its raw sums ``A^T D``, ``sum(D)`` for the optimizer step. With
    ``fold``, ``grads`` is a velocity and receives ``keep * grads - rate /
    sw_sum * sums``, a momentum step with learning rate ``rate`` folded into
    the products (see :mod:`fastnn._blas`). Returns the batch loss and the
    batch's weight sum.
    """
    nb = rows.shape[0]
    last = units.shape[0] - 2
    forward_hidden(Xb, csr, rows, params, offsets, units, ws, ws_offsets, act)
    Z = buffer(ws, ws_offsets, 0, units, last, nb)
    A = buffer(ws, ws_offsets, 1, units, last, nb)
    D = buffer(ws, ws_offsets, 2, units, last, nb)
    b = intercept(params, offsets, units, last)
    if sw.shape[0] > 0:
        sw_sum = 0.0
        for i in range(nb):
            sw_sum += sw[rows[i]]
    else:
        sw_sum = float(nb)
    loss = output_loss_and_delta(Z, b, A, D, Y, rows, sw, out, eps, sw_sum)
    if alpha != 0:
        loss += 0.5 * alpha * l2_penalty(params, offsets, units) / sw_sum
    backward(
        Xb, csr, rows, params, grads, offsets, units, ws, ws_offsets, act, alpha,
        sw_sum, -rate / sw_sum if fold else 1.0, keep if fold else 0.0, scale,
    )  # fmt: skip
    return loss, sw_sum


@njit(**JIT)
def train_epoch(
    X,
    csr,
    Y,
    sw,
    order,
    batch_size,
    params,
    grads,
    state,
    offsets,
    units,
    ws,
    ws_offsets,
    Xbuf,
    act,
    out,
    eps,
    alpha,
    solver,
    hyper,
    step,
):
    """Run every mini-batch of one epoch and update ``params`` in place.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (0, n_features)
        Dense training data (C-contiguous), or empty when sparse.
    csr : tuple of ndarray
        CSR arrays of a sparse X, or empty arrays.
    Y, sw : ndarray
        Targets (n_samples, n_outputs) and weights (n_samples,) or (0,).
    order : ndarray of shape (n_samples,)
        Sample order of this epoch (shuffled or not).
    batch_size : int
        Mini-batch size; the last batch may be smaller.
    params, grads, state : ndarray
        Flat parameters (updated), gradient buffer, optimizer state (updated).
    offsets, units, ws, ws_offsets : ndarray
        Layouts and the workspace.
    Xbuf : ndarray of shape (batch_size, n_features) or (0, n_features)
        Reusable gather buffer for dense batches.
    act, out, eps, alpha
        As in :func:`batch_loss_and_gradient`.
    solver : int
        Optimizer code.
    hyper, step : ndarray
        Optimizer hyper-parameters (``N_HYPER`` of them, laid out as in
        :mod:`fastnn._optimizers`) and Adam's step counter (updated).

    Returns
    -------
    loss : float
        Sample-count-weighted mean of the batch losses (sklearn's epoch loss).
    """
    n = order.shape[0]
    dense = X.shape[0] > 0
    n_coef = offsets[1, 0]
    coeffs = np.empty(6, dtype=params.dtype)
    if hyper.shape[0] != N_HYPER:
        raise ValueError("train_epoch: hyper has the wrong length")
    # Plain momentum, when asked for: the products go straight to the velocity.
    fold = solver == SGD and hyper[NESTEROV] == 0 and hyper[FOLD] != 0
    target = state[0] if fold else grads
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        rows = order[start:stop]
        Xb = Xbuf[: stop - start] if dense else Xbuf
        if dense:
            gather_rows(X, rows, Xb)
        prefetch_next_batch(X, Y, order, stop, batch_size)
        loss, sw_sum = batch_forward_backward(
            Xb, csr, rows, Y, sw, params, target, offsets, units, ws, ws_offsets,
            act, out, eps, alpha, fold, hyper[LR], hyper[MOMENTUM], False,
        )  # fmt: skip
        total += loss * (stop - start)
        if fold:
            apply_velocity(params, target, hyper[LR] * alpha / sw_sum, n_coef)
        else:
            fused_optimizer_step(
                params, grads, state, solver, hyper, step, alpha, 1.0 / sw_sum,
                n_coef, coeffs,
            )  # fmt: skip
    return total / n


@njit(**JIT_NOGIL)
def predict_forward(X, csr, params, offsets, units, act, out, block, result):
    """Network output for every row of X, computed in blocks of rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (0, n_features)
        Dense C-contiguous input, or empty when sparse.
    csr : tuple of ndarray
        CSR arrays of a sparse X, or empty arrays.
    params, offsets, units : ndarray
        Flat parameters and their layout.
    act, out : int
        Hidden activation code and output/loss code.
    block : int
        Rows per block.
    result : ndarray of shape (n_samples, n_outputs)
        Receives the output activations.
    """
    n = result.shape[0]
    n_layers = units.shape[0] - 1
    widest = 0
    for i in range(1, units.shape[0]):
        widest = max(widest, units[i])
    even = np.empty(block * widest, dtype=params.dtype)
    odd = np.empty(block * widest, dtype=params.dtype)
    rows = np.arange(n)
    for start in range(0, n, block):
        stop = min(start + block, n)
        nb = stop - start
        A = X[start:stop]
        for i in range(n_layers):
            W = coef(params, offsets, units, i)
            if i == n_layers - 1:
                Z = result[start:stop]
            elif i % 2 == 0:
                Z = even[: nb * units[i + 1]].reshape((nb, units[i + 1]))
            else:
                Z = odd[: nb * units[i + 1]].reshape((nb, units[i + 1]))
            if i == 0 and X.shape[0] == 0:
                csr_rows_dot(csr[0], csr[1], csr[2], rows[start:stop], W, Z)
            else:
                np.dot(A, W, Z)
            b = intercept(params, offsets, units, i)
            if i < n_layers - 1:
                inplace_bias_activation(Z, b, Z, act)
            else:
                inplace_output_activation(Z, b, out)
            A = Z
