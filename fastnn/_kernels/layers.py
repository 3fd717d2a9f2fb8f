"""The layers' maths over one mini-batch: forward and backward.

Forward, for every layer ``i`` with ``A_{-1} = X``::

    Z_i = A_{i-1} W_i + b_i
    A_i = f(Z_i)                      (hidden layers; the output layer's
                                       activation comes with its loss)

Backward, from the output delta ``D_L = dL/dZ_L`` down to the first layer::

    dL/dW_i  = A_{i-1}^T D_i
    dL/db_i  = sum over rows of D_i
    D_{i-1}  = (D_i W_i^T) * f'(Z_{i-1})

The products are :func:`fastnn._lowlevel.blas.matmul` (``np.dot`` with
``out=``) on contiguous views of the workspace, and :mod:`fastnn._lowlevel`
for the weight gradients (BLAS with ``alpha`` and ``beta``), CSR inputs and
small ``D W^T`` products. The
backward pass writes ``factor * (A^T D, sum D) + keep * grads``: the raw sums
with ``factor = 1, keep = 0``, or a momentum step folded into the products
with ``factor = -lr / sw_sum, keep = momentum``.
"""

from numba import njit

from .._config import JIT, JIT_INLINE
from .._lowlevel.blas import NOT_TRANSPOSED, gemm_transposed_left, matmul, xdot
from .._lowlevel.products import (
    batch_csr_dot,
    batch_csr_transpose_dot,
    delta_through_weights,
)
from .._lowlevel.summation import pairwise_sum
from .._lowlevel.views import borrowed_vector
from .activations import activation_derivative, bias_activation
from .layout import A_ROWS, D_ROWS, Z_ROWS, buffer, coef, intercept, transposed_coef


@njit(**JIT)
def inplace_add_bias(Z, b):
    """``Z += b``, row by row.

    Parameters
    ----------
    Z : ndarray of shape (n_batch, n_units)
        Weighted sums; receives the bias.
    b : ndarray of shape (n_units,)
        Bias of the layer.
    """
    n, m = Z.shape
    for i in range(n):
        for k in range(m):
            Z[i, k] += b[k]


@njit(**JIT_INLINE)
def all_finite(Z):
    """Whether every entry of ``Z`` is finite (neither NaN nor infinite)."""
    n, m = Z.shape
    bad = False
    for i in range(n):
        for k in range(m):
            bad |= Z[i, k] - Z[i, k] != 0
    return not bad


@njit(**JIT_INLINE)
def input_product(batch, W, Z):
    """``Z = X W`` for the batch's rows of X, dense or CSR.

    Parameters
    ----------
    batch : Batch
        The batch's inputs (see :mod:`fastnn._kernels.layout`).
    W : ndarray of shape (n_features, n_units)
        Weights of the first layer.
    Z : ndarray of shape (n_batch, n_units)
        Receives the product.
    """
    if batch.sparse:
        batch_csr_dot(batch, W, Z)
    else:
        matmul(batch.X, W, Z, NOT_TRANSPOSED)


@njit(**JIT_INLINE)
def forward(net, batch, act):
    """``Z_i = A_{i-1} W_i + b_i`` and ``A_i = f(Z_i)`` through every layer.

    The output layer gets its bias but not its activation, which comes with
    the loss (:mod:`fastnn._kernels.losses`).

    Parameters
    ----------
    net : Net
        Parameters, layout and workspace; the Z and A buffers are written.
    batch : Batch
        The batch's inputs.
    act : int
        Hidden activation code.
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
        if i < last:
            bias_activation(Z, b, buffer(net, A_ROWS, i, nb), act)
        else:
            inplace_add_bias(Z, b)


@njit(**JIT_INLINE)
def weight_gradient(net, batch, i, D, factor, keep):
    """``dW_i = factor * A_{i-1}^T D_i + keep * dW_i`` into ``net.grads``.

    Parameters
    ----------
    net : Net
        Layout, workspace (``A_{i-1}``) and the gradient buffer.
    batch : Batch
        The batch's inputs (``A_{-1} = X``).
    i : int
        Layer index.
    D : ndarray of shape (n_batch, units[i + 1])
        Delta of layer ``i``.
    factor, keep : float
        Weights of the product and of the old gradient (0: overwrite).
    """
    gW = coef(net.grads, net, i)
    if i == 0 and batch.sparse:
        batch_csr_transpose_dot(batch, D, gW, factor, keep)
    else:
        nb = batch.rows.shape[0]
        A_prev = batch.X if i == 0 else buffer(net, A_ROWS, i - 1, nb)
        gemm_transposed_left(A_prev, D, gW, factor, keep)


@njit(**JIT)
def bias_gradient(gb, D, factor, keep):
    """``db = factor * sum_rows(D) + keep * db``, in place.

    Computed as ``factor * (keep / factor * db + sum_rows(D))``, so that the
    sum over rows is the same plain loop, in the dtype of D, for every
    ``factor``; ``keep == 0`` overwrites without reading.

    Parameters
    ----------
    gb : ndarray of shape (n_units,)
        Bias gradient, updated.
    D : ndarray of shape (n_batch, n_units)
        Delta of the layer.
    factor, keep : float
        Weights of the sum and of the old ``gb``.
    """
    fan_out = gb.shape[0]
    ratio = keep / factor
    for k in range(fan_out):
        gb[k] = ratio * gb[k] if keep != 0 else 0.0
    for i in range(D.shape[0]):
        for k in range(fan_out):
            gb[k] += D[i, k]
    if factor != 1:
        for k in range(fan_out):
            gb[k] *= factor


@njit(**JIT_INLINE)
def backward(net, batch, act, factor, keep):
    """Backward pass from the output delta (in the workspace) into ``net.grads``.

    For every layer from the last: ``dW``, ``db``, then
    ``D_{i-1} = (D_i W_i^T) * f'(Z_{i-1})``.

    Parameters
    ----------
    net : Net
        Parameters, layout, workspace (Z, A and the output delta filled in)
        and the gradient buffer, which receives ``factor * (A^T D, sum D) +
        keep * grads`` per layer.
    batch : Batch
        The batch's inputs.
    act : int
        Hidden activation code.
    factor, keep : float
        Weights of the new sums and of the old contents of ``net.grads``.
    """
    nb = batch.rows.shape[0]
    for i in range(net.units.shape[0] - 2, -1, -1):
        D = buffer(net, D_ROWS, i, nb)
        weight_gradient(net, batch, i, D, factor, keep)
        bias_gradient(intercept(net.grads, net, i), D, factor, keep)
        if i > 0:
            D_prev = buffer(net, D_ROWS, i - 1, nb)
            W = coef(net.params, net, i)
            delta_through_weights(D, W, transposed_coef(net, i), D_prev)
            Z_prev = buffer(net, Z_ROWS, i - 1, nb)
            A_prev = buffer(net, A_ROWS, i - 1, nb)
            activation_derivative(Z_prev, A_prev, D_prev, act)


@njit(**JIT_INLINE)
def single_unit_bias_sums(net, nb):
    """Raw bias sums of single-unit layers again, pairwise, as NumPy sums them.

    For L-BFGS, after :func:`backward` with ``factor = 1, keep = 0``: NumPy
    reduces a contiguous column pairwise, and the line search tells apart
    gradients that differ in the last bit. Wider layers' row-by-row sums are
    NumPy's already.
    """
    for i in range(net.units.shape[0] - 1):
        if net.units[i + 1] == 1:
            D = buffer(net, D_ROWS, i, nb)
            intercept(net.grads, net, i)[0] = pairwise_sum(D.reshape(nb))


@njit(**JIT)
def finish_gradient(net, alpha, sw_sum):
    """Turn the raw sums in ``net.grads`` into scikit-learn's gradient.

    ``dW = (A^T D + alpha W) / sw_sum`` and ``db = sum(D) / sw_sum``.

    Parameters
    ----------
    net : Net
        Parameters and the gradient buffer (updated).
    alpha : float
        L2 penalty.
    sw_sum : float
        Sum of the batch's sample weights (the batch size when unweighted).
    """
    for i in range(net.units.shape[0] - 1):
        gW = coef(net.grads, net, i)
        W = coef(net.params, net, i)
        gb = intercept(net.grads, net, i)
        for r in range(gW.shape[0]):
            for k in range(gW.shape[1]):
                gW[r, k] = (gW[r, k] + alpha * W[r, k]) / sw_sum
        for k in range(gb.shape[0]):
            gb[k] /= sw_sum


@njit(**JIT)
def l2_penalty(net):
    """Sum of squared coefficients over all layers (intercepts excluded).

    One BLAS dot product per layer, summed over layers, as scikit-learn
    computes the penalty.

    Parameters
    ----------
    net : Net
        Parameters and their layout.

    Returns
    -------
    total : float
    """
    total = 0.0
    for i in range(net.units.shape[0] - 1):
        size = net.units[i] * net.units[i + 1]
        W = borrowed_vector(net.params, net.offsets[0, i], size)
        total += xdot(size, W, 1, W, 1)
    return total
