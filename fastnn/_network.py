"""The dense network as data: one flat parameter buffer and its layer views.

Layout
------
All weights live in one contiguous 1-D buffer, in scikit-learn's packing order:
every layer's coefficient matrix (row-major), then every layer's intercept. The
layer ``i`` maps ``units[i]`` inputs to ``units[i + 1]`` outputs, so

* ``W_i = params[coef_offsets[i] : ... + units[i] * units[i + 1]]`` reshaped
  to ``(units[i], units[i + 1])``;
* ``b_i = params[intercept_offsets[i] : ... + units[i + 1]]``.

Gradients and optimizer state use the same layout, so an optimizer step, an
L-BFGS iteration or a pickle is one loop over (or one copy of) one array.

Forward and backward over one mini-batch
----------------------------------------
``Z_i = A_{i-1} W_i + b_i`` and ``A_i = f(Z_i)`` with ``A_{-1} = X``; going
back, ``dL/dW_i = A_{i-1}^T D_i``, ``dL/db_i = sum_rows D_i`` and
``D_{i-1} = (D_i W_i^T) * f'(Z_{i-1})``. The matrix products are BLAS calls
(``np.dot`` with ``out=``, and :mod:`fastnn._blas` for the weight gradients) on
contiguous views into preallocated workspaces.

Small products and OpenBLAS
---------------------------
OpenBLAS runs products of up to ``100**3`` multiply-adds through dedicated
small-matrix kernels on AVX-512 machines, but not when the left factor is
transposed in its column-major terms (``kernel/x86_64/
sgemm_small_kernel_permit_skylakex.c`` refuses that case unless the result
has at most 1200 entries and the inner dimension is at least 32). ``D_i
W_i^T`` with a transposed view of ``W_i`` is that case. For products that
small, ``W_i^T`` is first copied into a contiguous workspace block. Measured
in float32 on this project's machine: 32 rows through a 64 x 32 layer took
2.46 us through the packed path and 1.38 us from the copy, which itself took
0.63 us; small-batch epochs took 0.981 x as long, digits 0.980 x and
adam-regression 0.973 x (medians of paired ratios of alternated fits).
"""

import numpy as np
from numba import njit

from ._activations import inplace_activation_derivative, inplace_bias_activation
from ._blas import gemm_transposed_left
from ._config import JIT, JIT_INLINE

SMALL_PRODUCT = 100**3


def parameter_layout(layer_units):
    """Offsets of every W and b in the flat buffer.

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer, input and output layers included.

    Returns
    -------
    offsets : ndarray of shape (2, n_layers - 1), dtype int64
        ``offsets[0, i]`` starts ``W_i`` and ``offsets[1, i]`` starts ``b_i``.
    size : int
        Total number of parameters.
    """
    units = list(layer_units)
    n = len(units) - 1
    offsets = np.empty((2, n), dtype=np.int64)
    pos = 0
    for i in range(n):
        offsets[0, i] = pos
        pos += units[i] * units[i + 1]
    for i in range(n):
        offsets[1, i] = pos
        pos += units[i + 1]
    return offsets, pos


def layer_views(params, layer_units):
    """Views ``coefs`` and ``intercepts`` into a flat buffer (no copies).

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The flat parameter (or gradient) buffer.
    layer_units : sequence of int of length n_layers
        Units per layer.

    Returns
    -------
    coefs : list of ndarray, each of shape (units[i], units[i + 1])
    intercepts : list of ndarray, each of shape (units[i + 1],)
    """
    offsets, _ = parameter_layout(layer_units)
    coefs, intercepts = [], []
    for i in range(len(layer_units) - 1):
        fan_in, fan_out = layer_units[i], layer_units[i + 1]
        start = offsets[0, i]
        coefs.append(params[start : start + fan_in * fan_out].reshape(fan_in, fan_out))
        start = offsets[1, i]
        intercepts.append(params[start : start + fan_out])
    return coefs, intercepts


def glorot_uniform_params(layer_units, activation, random_state, dtype):
    """Glorot-uniform initial weights, drawn as scikit-learn draws them.

    Each layer draws its W, then its b, from U(-r, r) with
    ``r = sqrt(factor / (fan_in + fan_out))``, factor 2 for the logistic
    activation and 6 otherwise, so a given ``random_state`` starts fastnn
    and sklearn from the same weights.

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer.
    activation : str
        Hidden activation name.
    random_state : numpy.random.RandomState
        Source of randomness.
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    params : ndarray of shape (n_params,)
    """
    _, size = parameter_layout(layer_units)
    params = np.empty(size, dtype=dtype)
    coefs, intercepts = layer_views(params, layer_units)
    factor = 2.0 if activation == "logistic" else 6.0
    for W, b in zip(coefs, intercepts):
        bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
        W[...] = random_state.uniform(-bound, bound, W.shape)
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return params


def workspace_layout(layer_units, n_rows):
    """Offsets of the Z, A and delta buffers of every layer for ``n_rows`` rows.

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer.
    n_rows : int
        Largest number of rows a batch will have.

    Returns
    -------
    offsets : ndarray of shape (4, n_layers - 1), dtype int64
        Start of ``Z_i`` (row 0), ``A_i`` (row 1) and ``D_i`` (row 2), each
        ``n_rows * units[i + 1]`` long, and of a block for ``W_i^T`` (row 3),
        ``units[i] * units[i + 1]`` long for ``i >= 1`` and empty for the
        first layer, whose delta is not propagated.
    size : int
        Total workspace length.
    """
    fan_in, units = list(layer_units)[:-1], list(layer_units)[1:]
    offsets = np.empty((4, len(units)), dtype=np.int64)
    pos = 0
    for kind in range(3):
        for i, u in enumerate(units):
            offsets[kind, i] = pos
            pos += n_rows * u
    for i, u in enumerate(units):
        offsets[3, i] = pos
        pos += fan_in[i] * u if i > 0 else 0
    return offsets, pos


@njit(**JIT_INLINE)
def coef(params, offsets, units, i):
    """Layer ``i``'s weight matrix W_i as a view of shape (units[i], units[i+1])."""
    start = offsets[0, i]
    size = units[i] * units[i + 1]
    return params[start : start + size].reshape((units[i], units[i + 1]))


@njit(**JIT_INLINE)
def intercept(params, offsets, units, i):
    """Layer ``i``'s bias b_i as a view of shape (units[i+1],)."""
    start = offsets[1, i]
    return params[start : start + units[i + 1]]


@njit(**JIT_INLINE)
def buffer(ws, ws_offsets, kind, units, i, n_rows):
    """Workspace view ``kind`` (0: Z, 1: A, 2: delta) of layer ``i``."""
    start = ws_offsets[kind, i]
    size = n_rows * units[i + 1]
    return ws[start : start + size].reshape((n_rows, units[i + 1]))


@njit(**JIT_INLINE)
def transposed_coef(ws, ws_offsets, units, i):
    """Workspace block for ``W_i^T``, of shape (units[i+1], units[i])."""
    start = ws_offsets[3, i]
    size = units[i] * units[i + 1]
    return ws[start : start + size].reshape((units[i + 1], units[i]))


@njit(**JIT)
def delta_through_weights(D, W, WT, D_prev):
    """``D_prev = D @ W.T``, through the contiguous copy ``WT`` when small.

    Parameters
    ----------
    D : ndarray of shape (n_batch, fan_out)
        Delta of layer ``i``.
    W : ndarray of shape (fan_in, fan_out)
        Weights of layer ``i``.
    WT : ndarray of shape (fan_out, fan_in)
        Workspace block; receives ``W.T`` when the product has at most
        ``SMALL_PRODUCT`` multiply-adds (see the module docstring).
    D_prev : ndarray of shape (n_batch, fan_in)
        Receives the product.
    """
    fan_in, fan_out = W.shape
    if D.shape[0] * fan_in * fan_out > SMALL_PRODUCT:
        np.dot(D, W.T, D_prev)
        return
    for r in range(fan_in):
        for k in range(fan_out):
            WT[k, r] = W[r, k]
    np.dot(D, WT, D_prev)


@njit(**JIT)
def csr_rows_dot(data, indices, indptr, rows, W, out):
    """``out = X[rows] @ W`` for a CSR matrix X, without densifying X.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X.
    rows : ndarray of shape (n_batch,)
        Rows of X to multiply.
    W : ndarray of shape (n_features, n_units)
        Dense right-hand side.
    out : ndarray of shape (n_batch, n_units)
        Receives the product.
    """
    out[:] = 0.0
    m = W.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            col = indices[p]
            for k in range(m):
                out[i, k] += v * W[col, k]


@njit(**JIT)
def csr_rows_transpose_dot(data, indices, indptr, rows, D, out, factor, keep):
    """``out = factor * X[rows].T @ D + keep * out`` for a CSR matrix X.

    X is not densified. As in :func:`fastnn._blas.gemm_transposed_left`,
    ``keep == 0`` overwrites ``out`` without reading it.

    Parameters
    ----------
    data, indices, indptr : ndarray
        The CSR arrays of X.
    rows : ndarray of shape (n_batch,)
        Rows of X in the batch.
    D : ndarray of shape (n_batch, n_units)
        Dense deltas of the first layer.
    out : ndarray of shape (n_features, n_units)
        Receives the product.
    factor, keep : float
        Weights of the product and of the old ``out``.
    """
    m = D.shape[1]
    for col in range(out.shape[0]):
        for k in range(m):
            out[col, k] = keep * out[col, k] if keep != 0 else 0.0
    for i in range(rows.shape[0]):
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            v = factor * data[p]
            col = indices[p]
            for k in range(m):
                out[col, k] += v * D[i, k]


@njit(**JIT)
def forward_hidden(Xb, csr, rows, params, offsets, units, ws, ws_offsets, act):
    """Forward pass through every layer; the output layer's Z is left raw.

    Parameters
    ----------
    Xb : ndarray of shape (n_batch, n_features) or (0, n_features)
        Dense batch rows (unused when X is sparse).
    csr : tuple of (data, indices, indptr)
        CSR arrays of the whole X when sparse; empty arrays when dense.
    rows : ndarray of shape (n_batch,)
        Indices of the batch's samples.
    params : ndarray of shape (n_params,)
        Flat parameters.
    offsets, units : ndarray
        Parameter layout and units per layer.
    ws, ws_offsets : ndarray
        Workspace buffer and its layout.
    act : int
        Hidden activation code.
    """
    nb = rows.shape[0]
    n_layers = units.shape[0] - 1
    for i in range(n_layers):
        W = coef(params, offsets, units, i)
        Z = buffer(ws, ws_offsets, 0, units, i, nb)
        if i == 0 and Xb.shape[0] == 0:
            csr_rows_dot(csr[0], csr[1], csr[2], rows, W, Z)
        elif i == 0:
            np.dot(Xb, W, Z)
        else:
            np.dot(buffer(ws, ws_offsets, 1, units, i - 1, nb), W, Z)
        if i < n_layers - 1:
            b = intercept(params, offsets, units, i)
            A = buffer(ws, ws_offsets, 1, units, i, nb)
            inplace_bias_activation(Z, b, A, act)


@njit(**JIT)
def layer_gradient_sums(gW, gb, W, D, alpha, sw_sum, factor, keep, scale):
    """Finish a layer's gradient from the product ``gW = factor A_prev^T D``.

    Sets ``gb = factor * sum_rows(D) + keep * gb`` (``keep == 0`` overwrites);
    with ``scale`` also ``gW = (gW + alpha W) / sw_sum`` and ``gb /= sw_sum``.
    Without ``scale`` the sums are left for the optimizer step.
    """
    fan_in, fan_out = gW.shape
    # gb = factor * (keep / factor * gb + sum_rows(D)), so that the sum over
    # rows is the same plain loop, in the dtype of D, in both cases.
    ratio = keep / factor
    for k in range(fan_out):
        gb[k] = ratio * gb[k] if keep != 0 else 0.0
    for i in range(D.shape[0]):
        for k in range(fan_out):
            gb[k] += D[i, k]
    if factor != 1:
        for k in range(fan_out):
            gb[k] *= factor
    if not scale:
        return
    for r in range(fan_in):
        for k in range(fan_out):
            gW[r, k] = (gW[r, k] + alpha * W[r, k]) / sw_sum
    for k in range(fan_out):
        gb[k] /= sw_sum


@njit(**JIT)
def backward(
    Xb,
    csr,
    rows,
    params,
    grads,
    offsets,
    units,
    ws,
    ws_offsets,
    act,
    alpha,
    sw_sum,
    factor,
    keep,
    scale,
):
    """Backward pass from the output delta (already in the workspace) to grads.

    Parameters
    ----------
    Xb, csr, rows, params, offsets, units, ws, ws_offsets, act
        As in :func:`forward_hidden`.
    grads : ndarray of shape (n_params,)
        Receives ``factor * (A^T D, sum(D)) + keep * grads`` per layer, in
        the flat layout: the raw sums with ``factor=1, keep=0``, or a
        momentum step's velocity with ``factor=-lr/sw_sum, keep=momentum``.
    alpha : float
        L2 penalty.
    sw_sum : float
        Sum of the batch's sample weights (the batch size when unweighted).
    factor, keep : float
        Weights of the new sums and of the old contents of ``grads``.
    scale : bool
        Finish the gradient (penalty and 1/sw_sum; only with ``factor=1,
        keep=0``). ``False`` leaves the sums for the optimizer step.
    """
    nb = rows.shape[0]
    for i in range(units.shape[0] - 2, -1, -1):
        W = coef(params, offsets, units, i)
        gW = coef(grads, offsets, units, i)
        D = buffer(ws, ws_offsets, 2, units, i, nb)
        if i == 0 and Xb.shape[0] == 0:
            csr_rows_transpose_dot(csr[0], csr[1], csr[2], rows, D, gW, factor, keep)
        else:
            A_prev = Xb if i == 0 else buffer(ws, ws_offsets, 1, units, i - 1, nb)
            gemm_transposed_left(A_prev, D, gW, factor, keep)
        gb = intercept(grads, offsets, units, i)
        layer_gradient_sums(gW, gb, W, D, alpha, sw_sum, factor, keep, scale)
        if i > 0:
            D_prev = buffer(ws, ws_offsets, 2, units, i - 1, nb)
            WT = transposed_coef(ws, ws_offsets, units, i)
            delta_through_weights(D, W, WT, D_prev)
            Z_prev = buffer(ws, ws_offsets, 0, units, i - 1, nb)
            A_prev = buffer(ws, ws_offsets, 1, units, i - 1, nb)
            inplace_activation_derivative(Z_prev, A_prev, D_prev, act)
