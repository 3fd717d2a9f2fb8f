"""Matrix products of the layers whose fast form is not a plain ``np.dot``.

Sparse inputs
-------------
The first layer of a network trained on a CSR matrix multiplies the batch's
rows without densifying them: :func:`csr_rows_dot` for ``X[rows] W`` and
:func:`csr_rows_transpose_dot` for ``X[rows]^T D``.

Small products and OpenBLAS
---------------------------
OpenBLAS runs products of up to ``100**3`` multiply-adds through dedicated
small-matrix kernels on AVX-512 machines, but not when the left factor is
transposed in its column-major terms (``kernel/x86_64/
sgemm_small_kernel_permit_skylakex.c`` refuses that case unless the result
has at most 1200 entries and the inner dimension is at least 32). ``D W^T``
with a transposed view of ``W`` is that case. For products that small,
:func:`delta_through_weights` first copies ``W^T`` into a contiguous block.
"""

from numba import njit, types
from numba.extending import overload

from .._config import JIT, JIT_OVERLOAD
from .blas import NOT_TRANSPOSED, TRANSPOSED, matmul

# OpenBLAS's small-matrix kernels take products of up to this many
# multiply-adds; larger ones go through its packed path either way.
SMALL_PRODUCT = 100**3


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
        matmul(D, W, D_prev, TRANSPOSED)
        return
    for r in range(fan_in):
        for k in range(fan_out):
            WT[k, r] = W[r, k]
    matmul(D, WT, D_prev, NOT_TRANSPOSED)


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

    X is not densified. As in :func:`fastnn._lowlevel.blas.gemm_transposed_left`,
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


def has_csr_arrays(batch):
    """Whether a batch's type carries CSR arrays (a dense one has ``()``)."""
    csr = batch.types[batch.fields.index("csr")]
    return not (isinstance(csr, types.BaseTuple) and len(csr) == 0)


def batch_csr_dot(batch, W, out):
    """``out = X[rows] @ W`` for a batch of CSR rows (jitted code only).

    For a batch whose type has no CSR arrays (``csr == ()``, a dense X), it
    compiles to nothing: a kernel compiled for dense inputs then leaves the
    CSR products out. Callers call it only when ``batch.sparse``.
    """


def batch_csr_transpose_dot(batch, D, out, factor, keep):
    """``out = factor * X[rows].T @ D + keep * out`` for a batch of CSR rows.

    Jitted code only; compiles to nothing for a dense batch, as
    :func:`batch_csr_dot`.
    """


@overload(batch_csr_dot, jit_options=JIT_OVERLOAD, inline="always")
def overload_batch_csr_dot(batch, W, out):
    """:func:`csr_rows_dot` on the batch's CSR arrays, if its type has any."""
    if not has_csr_arrays(batch):
        return lambda batch, W, out: None

    def impl(batch, W, out):
        data, indices, indptr = batch.csr
        csr_rows_dot(data, indices, indptr, batch.rows, W, out)

    return impl


@overload(batch_csr_transpose_dot, jit_options=JIT_OVERLOAD, inline="always")
def overload_batch_csr_transpose_dot(batch, D, out, factor, keep):
    """:func:`csr_rows_transpose_dot` on the batch's CSR arrays, if any."""
    if not has_csr_arrays(batch):
        return lambda batch, D, out, factor, keep: None

    def impl(batch, D, out, factor, keep):
        data, indices, indptr = batch.csr
        csr_rows_transpose_dot(data, indices, indptr, batch.rows, D, out, factor, keep)

    return impl
