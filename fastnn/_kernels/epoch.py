"""One batch, one epoch, and prediction over blocks of rows.

One call of :func:`train_epoch` runs every
mini-batch of an epoch: gather the batch's rows, forward, output loss and
delta, backward, optimizer step. No Python runs between batches and nothing
is allocated inside the batch loop. :func:`loss_and_gradient` is the same
forward and backward over one batch, with the gradient finished as
scikit-learn's; over all rows it is the objective that L-BFGS minimises.
The epoch kernels, the L-BFGS objective and prediction release the GIL, so
that fits in different threads run in parallel.
:func:`predict` runs the same forward pass over blocks of rows, and returns
the output activations or the labels they imply.
"""

import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE, JIT_NOGIL
from .._lowlevel.atomics import fetch_add
from .._lowlevel.prefetch import gather_rows, prefetch_next_batch
from .dropout import backward_dropout, draw_masks, forward_dropout
from .layers import (
    all_finite,
    backward,
    finish_gradient,
    forward,
    l2_penalty,
    single_unit_bias_sums,
)
from .layout import A_ROWS, D_ROWS, Z_ROWS, Batch, Net, buffer
from .losses import (
    column_mean_loss_numpy_order,
    inplace_output_activation,
    output_activation_and_delta,
    output_labels,
    output_loss_and_delta,
)
from .optimizers import (
    LR,
    MOMENTUM,
    N_COEFFS,
    N_HYPER,
    apply_velocity,
    fused_optimizer_step,
)


@njit(**JIT_INLINE)
def weight_sum(targets, rows):
    """Sum of the sample weights of ``rows`` (their number when unweighted).

    Parameters
    ----------
    targets : Targets
        Y and the sample weights.
    rows : ndarray of shape (n_batch,)
        Sample indices.

    Returns
    -------
    sw_sum : float
    """
    if not targets.weighted:
        return float(rows.shape[0])
    sw_sum = 0.0
    for i in range(rows.shape[0]):
        sw_sum += targets.sw[rows[i]]
    return sw_sum


@njit(**JIT_INLINE)
def forward_loss(net, batch, targets, objective):
    """Forward pass, output loss and output delta of one batch.

    Parameters
    ----------
    net : Net
        Parameters, layout and workspace (Z, A and the output delta written).
    batch : Batch
        The batch's inputs.
    targets : Targets
        Y and the sample weights of all samples.
    objective : Objective
        Activation and loss codes, machine epsilon and L2 penalty.

    Returns
    -------
    loss : float
        scikit-learn's batch loss: the weighted mean loss plus
        ``alpha / 2 * ||W||**2 / sw_sum``.
    sw_sum : float
        Sum of the batch's sample weights.
    """
    forward(net, batch, objective.act)
    return output_loss(net, batch, targets, objective)


@njit(**JIT_INLINE)
def output_loss(net, batch, targets, objective):
    """Output loss and delta of a batch whose forward pass is done.

    Parameters and returns as in :func:`forward_loss`.
    """
    nb = batch.rows.shape[0]
    last = net.units.shape[0] - 2
    Z = buffer(net, Z_ROWS, last, nb)
    A = buffer(net, A_ROWS, last, nb)
    D = buffer(net, D_ROWS, last, nb)
    sw_sum = weight_sum(targets, batch.rows)
    loss = output_loss_and_delta(
        Z, A, D, targets.Y, batch.rows, targets.sw, objective.out, objective.eps,
        sw_sum,
    )  # fmt: skip
    return with_penalty(loss, net, objective, sw_sum), sw_sum


@njit(**JIT_INLINE)
def with_penalty(loss, net, objective, sw_sum):
    """``loss + alpha / 2 * ||W||**2 / sw_sum``, scikit-learn's batch loss."""
    if objective.alpha != 0:
        loss += 0.5 * objective.alpha * l2_penalty(net) / sw_sum
    return loss


@njit(**JIT_NOGIL)
def loss_and_gradient(net, batch, targets, objective):
    """Mean loss of one batch and its gradient into ``net.grads`` (L-BFGS).

    The loss and the single-unit layers' bias sums are rounded as
    scikit-learn's NumPy code rounds them (see
    :func:`column_mean_loss_numpy_order`), since L-BFGS's line search tells
    apart values that differ in the last bit.

    Parameters
    ----------
    net, batch, targets, objective
        As in :func:`forward_loss`; ``net.grads`` is overwritten with
        ``((A^T D + alpha W) / sw_sum, sum(D) / sw_sum)`` per layer.

    Returns
    -------
    loss : float
        As in :func:`forward_loss`.
    """
    forward(net, batch, objective.act)
    nb = batch.rows.shape[0]
    last = net.units.shape[0] - 2
    A = buffer(net, A_ROWS, last, nb)
    output_activation_and_delta(
        buffer(net, Z_ROWS, last, nb), A, buffer(net, D_ROWS, last, nb), targets.Y,
        batch.rows, targets.sw, objective.out,
    )  # fmt: skip
    sw_sum = weight_sum(targets, batch.rows)
    loss = column_mean_loss_numpy_order(
        A, targets.Y, batch.rows, targets.sw, objective.out, objective.eps, sw_sum
    )
    backward(net, batch, objective.act, 1.0, 0.0)
    single_unit_bias_sums(net, nb)
    finish_gradient(net, objective.alpha, sw_sum)
    return with_penalty(loss, net, objective, sw_sum)


@njit(**JIT_INLINE)
def next_batch(inputs, Y, order, start, batch_size, Xbuf):
    """The batch at ``start`` in ``order``, its dense rows gathered into Xbuf.

    Also prefetches the rows of the batch after it, of X when dense and of Y
    (see :mod:`fastnn._lowlevel.prefetch`).

    Parameters
    ----------
    inputs : Inputs
        All of X.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets, prefetched with X.
    order : ndarray of shape (n_samples,)
        The epoch's sample order.
    start, batch_size : int
        Position of the batch in ``order`` and rows per batch.
    Xbuf : ndarray of shape (batch_size, n_features) or (0, n_features)
        Gather buffer for dense rows; empty when X is sparse.

    Returns
    -------
    batch : Batch
    """
    rows = order[start : start + batch_size]
    stop = start + rows.shape[0]
    Xb = Xbuf[: rows.shape[0]]
    if not inputs.sparse:
        gather_rows(inputs.X, rows, Xb)
    if inputs.prefetch:
        if not inputs.sparse:
            prefetch_next_batch(inputs.X, order, stop, batch_size)
        prefetch_next_batch(Y, order, stop, batch_size)
    return Batch(Xb, inputs.csr, inputs.sparse, rows)


@njit(**JIT_INLINE)
def check_hyper(hyper):
    """Raise ValueError unless ``hyper`` has ``N_HYPER`` entries."""
    if hyper.shape[0] != N_HYPER:
        raise ValueError("train_epoch: hyper has the wrong length")


@njit(**JIT_NOGIL)
def train_epoch(
    net, inputs, targets, objective, optimizer, order, batch_size, Xbuf, fold
):
    """Run every mini-batch of one epoch and update ``net.params`` in place.

    Without ``fold``, each batch's raw gradient sums go to ``net.grads`` and
    the optimizer step scales them, adds the L2 term and updates in one pass.
    With ``fold`` (plain momentum SGD), ``net.grads`` must be the velocity,
    ``optimizer.state[0]``: each batch's backward pass writes
    ``v <- mu v - lr / sw_sum * (A^T D, sum D)`` into it through BLAS's
    ``alpha`` and ``beta``, and :func:`apply_velocity` adds the L2 term and
    takes the step ``p <- p + v``.

    Parameters
    ----------
    net : Net
        Parameters (updated), gradient buffer, layout and workspace for
        ``batch_size`` rows.
    inputs : Inputs
        All of X (C-contiguous when dense).
    targets : Targets
        Y and the sample weights.
    objective : Objective
        Activation and loss codes, machine epsilon and L2 penalty.
    optimizer : Optimizer
        Solver, hyper-parameters, state and step (state and step updated).
    order : ndarray of shape (n_samples,)
        Sample order of this epoch (shuffled or not).
    batch_size : int
        Mini-batch size; the last batch may be smaller.
    Xbuf : ndarray of shape (batch_size, n_features) or (0, n_features)
        Gather buffer for dense batches; empty when X is sparse.
    fold : bool
        Whether plain momentum is folded into the backward products.

    Returns
    -------
    loss : float
        Sample-count-weighted mean of the batch losses (sklearn's epoch loss).
    """
    check_hyper(optimizer.hyper)
    n = order.shape[0]
    n_coef = net.offsets[1, 0]
    lr, momentum = optimizer.hyper[LR], optimizer.hyper[MOMENTUM]
    coeffs = np.empty(N_COEFFS, dtype=net.params.dtype)
    total = 0.0
    for start in range(0, n, batch_size):
        batch = next_batch(inputs, targets.Y, order, start, batch_size, Xbuf)
        loss, sw_sum = forward_loss(net, batch, targets, objective)
        factor, keep = (-lr / sw_sum, momentum) if fold else (1.0, 0.0)
        backward(net, batch, objective.act, factor, keep)
        total += loss * batch.rows.shape[0]
        if fold:
            decay = lr * objective.alpha / sw_sum
            apply_velocity(net.params, net.grads, decay, n_coef)
        else:
            fused_optimizer_step(
                net.params, net.grads, optimizer, objective.alpha, 1.0 / sw_sum,
                n_coef, coeffs,
            )  # fmt: skip
    return total / n


@njit(**JIT)
def loss_and_gradient_dropout(net, batch, targets, objective, dropout):
    """:func:`loss_and_gradient` with the hidden layers masked by ``dropout``.

    Uses the masks already in ``dropout.masks`` (drawn or set by the caller).
    """
    forward_dropout(net, batch, objective.act, dropout)
    loss, sw_sum = output_loss(net, batch, targets, objective)
    backward_dropout(net, batch, objective.act, dropout)
    finish_gradient(net, objective.alpha, sw_sum)
    return loss


@njit(**JIT_NOGIL)
def train_epoch_dropout(
    net, inputs, targets, objective, optimizer, order, batch_size, Xbuf, dropout
):
    """An epoch of :func:`train_epoch` with inverted dropout.

    Each batch draws fresh masks for every hidden layer
    (:mod:`fastnn._kernels.dropout`), then runs the masked forward and
    backward passes and the same optimizer step.

    Parameters
    ----------
    net, inputs, targets, objective, optimizer, order, batch_size, Xbuf
        As in :func:`train_epoch`.
    dropout : Dropout
        Rates, mask buffer for ``batch_size`` rows and generator state
        (advanced).

    Returns
    -------
    loss : float
        As in :func:`train_epoch`.
    """
    check_hyper(optimizer.hyper)
    n = order.shape[0]
    n_coef = net.offsets[1, 0]
    coeffs = np.empty(N_COEFFS, dtype=net.params.dtype)
    total = 0.0
    for start in range(0, n, batch_size):
        batch = next_batch(inputs, targets.Y, order, start, batch_size, Xbuf)
        draw_masks(dropout, net.units, batch.rows.shape[0])
        forward_dropout(net, batch, objective.act, dropout)
        loss, sw_sum = output_loss(net, batch, targets, objective)
        backward_dropout(net, batch, objective.act, dropout)
        total += loss * batch.rows.shape[0]
        fused_optimizer_step(
            net.params, net.grads, optimizer, objective.alpha, 1.0 / sw_sum,
            n_coef, coeffs,
        )  # fmt: skip
    return total / n


@njit(**JIT_INLINE)
def predict_block(net, X, csr, sparse, act, out, start, stop, result, labels):
    """:func:`predict` over the rows ``start:stop``: whether X's are all finite."""
    rows = np.arange(start, stop)
    forward(net, Batch(X[start:stop], csr, sparse, rows), act)
    non_finite = not all_finite(buffer(net, Z_ROWS, 0, stop - start))
    Z = buffer(net, Z_ROWS, net.units.shape[0] - 2, stop - start)
    if labels.shape[0] > 0:
        output_labels(Z, out, labels[start:stop])
    else:
        inplace_output_activation(Z, out)
        for i in range(stop - start):
            for k in range(Z.shape[1]):
                result[start + i, k] = Z[i, k]
    return non_finite


@njit(**JIT_NOGIL)
def predict(
    params, offsets, units, ws, ws_offsets, X, csr_data, csr_indices, csr_indptr,
    act, out, block, result, labels, claims,
):  # fmt: skip
    """Network output, or the labels it implies, for every row, in blocks.

    Plain arrays and integers only, so that numba dispatches the call fast:
    a prediction of one row is one short compiled call. Threads that share
    ``claims`` split the blocks between them: each runs this kernel over the
    same arrays with a workspace of its own, and claims blocks until none is
    left (:func:`~fastnn._lowlevel.atomics.fetch_add`).

    Parameters
    ----------
    params, offsets, units : ndarray
        The flat parameters and their layout (:class:`Net`'s fields).
    ws, ws_offsets : ndarray
        A forward-only workspace for ``block`` rows and its layout.
    X : ndarray of shape (n_samples, n_features), C-contiguous
        Dense X in the dtype of ``params``; (0, n_features) when X is CSR.
    csr_data, csr_indices, csr_indptr : ndarray
        X's CSR arrays (indices int64), or empty ones for a dense X.
    act, out : int
        Hidden activation code and output/loss code.
    block : int
        Rows per block.
    result : ndarray of shape (n_samples, n_outputs) or (0, n_outputs)
        Receives the output activations, unless it is empty.
    labels : ndarray of shape (n_samples, n_labels) or (0, n_labels), int64
        Receives :func:`output_labels` instead, unless it is empty.
    claims : ndarray of shape (1,) or (0,), int64
        The index of the next block to claim, shared by the threads; empty
        for a call that runs every block itself, in order.

    Returns
    -------
    non_finite : bool
        Whether some row's first weighted sums ``X W_0 + b_0`` hold a NaN or
        an infinity: every row of X that holds one makes all of them NaN or
        infinite, so a False proves X finite (for finite weights). Of the
        blocks this call ran.
    """
    n = max(result.shape[0], labels.shape[0])
    net = Net(params, params[:0], offsets, units, ws, ws_offsets)
    csr = (csr_data, csr_indices, csr_indptr)
    sparse = csr_indptr.shape[0] > 0
    shared = claims.shape[0] > 0
    non_finite = False
    start = fetch_add(claims, 1) * block if shared else 0
    while start < n:
        stop = start + block if start + block < n else n
        non_finite |= predict_block(
            net, X, csr, sparse, act, out, start, stop, result, labels
        )
        start = fetch_add(claims, 1) * block if shared else stop
    return non_finite
