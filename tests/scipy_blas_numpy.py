"""NumPy's ``matmul`` and ``dot`` for float64 matrices, on SciPy's BLAS.

scikit-learn's products go through NumPy, which links its own copy of
OpenBLAS; fastnn's kernels call SciPy's. The two wheels ship different OpenBLAS
releases, whose ``dgemv`` and ``ddot`` kernels round differently on some CPUs
(for example OpenBLAS 0.3.30 and 0.3.31 on AMD EPYC with the Haswell kernels).
L-BFGS amplifies a last-bit difference in a gradient over a few dozen steps, so
a parity check against scikit-learn that must hold on every CI machine runs
scikit-learn's own code with its products on the same BLAS as fastnn's:
NumPy's choice of routine (``gemm``, ``gemv``, ``dot`` or a plain loop, by
shape) and NumPy's arguments, with SciPy's library doing the arithmetic.

Nothing here imports fastnn.
"""

import types

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas


def _blasable(x):
    """NumPy's test for a matrix BLAS can take: unit steps along one axis."""
    item = x.itemsize
    rows, cols = x.strides
    as_c = cols == item and rows % item == 0 and rows // item >= x.shape[1]
    as_f = rows == item and cols % item == 0 and cols // item >= x.shape[0]
    return as_c or as_f


def _packed(x):
    """``x`` with the same values, C-ordered unless its memory is F-ordered."""
    if x.flags.c_contiguous or x.flags.f_contiguous:
        return x
    item = x.itemsize
    return np.asfortranarray(x) if x.strides[0] == item else np.ascontiguousarray(x)


def _gemm(a, b):
    """``a @ b`` with C-ordered output, as NumPy's ``cblas_dgemm`` call.

    A row-major product ``a @ b`` is the column-major ``b.T @ a.T``; each
    factor is passed as the column-major matrix its memory holds, transposed
    or not.
    """
    bt, at = _packed(b).T, _packed(a).T
    trans_b = not bt.flags.f_contiguous
    trans_a = not at.flags.f_contiguous
    out = blas.dgemm(
        1.0, bt.T if trans_b else bt, at.T if trans_a else at,
        trans_a=trans_b, trans_b=trans_a,
    )  # fmt: skip
    return np.ascontiguousarray(out.T)


def _gemv(a, x):
    """``a @ x`` for a matrix ``a`` and a vector ``x``, as NumPy's gemv call."""
    a = _packed(a)
    if a.flags.f_contiguous:
        return blas.dgemv(1.0, a, x)
    return blas.dgemv(1.0, a.T, x, trans=1)


def _plain(a, b):
    """NumPy's loop without BLAS: each entry summed in order from 0."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for k in range(a.shape[1]):
        out += a[:, k : k + 1] * b[k : k + 1, :]
    return out


def matmul(a, b):
    """``a @ b`` for 2-D float64 arrays, by NumPy's dispatch on SciPy's BLAS."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != np.float64 or b.dtype != np.float64 or a.ndim != 2 or b.ndim != 2:
        return a @ b
    # NumPy copies an operand that BLAS cannot take (negative or uneven steps).
    a = a if _blasable(a) else np.ascontiguousarray(a)
    b = b if _blasable(b) else np.ascontiguousarray(b)
    m, n = a.shape
    p = b.shape[1]
    if m == 0 or n == 0 or p == 0:
        return np.zeros((m, p))
    if m == 1 and p == 1:
        return np.array([[blas.ddot(a[0], b[:, 0])]])
    if n == 1:
        return _plain(a, b)
    if m == 1:
        return _gemv(b.T, a[0]).reshape(1, p)
    if p == 1:
        return _gemv(a, b[:, 0]).reshape(m, 1)
    return _gemm(a, b)


def dot(a, b):
    """``np.dot`` with 1-D float64 vectors on SciPy's ``ddot``; else NumPy's."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim == 1 and b.ndim == 1 and a.dtype == b.dtype == np.float64:
        return blas.ddot(a, b)
    if a.ndim == 2 and b.ndim == 2:
        return matmul(a, b)
    return np.dot(a, b)


def safe_sparse_dot(a, b, *, dense_output=False):
    """scikit-learn's ``safe_sparse_dot`` with dense products on SciPy's BLAS."""
    if sp.issparse(a) or sp.issparse(b):
        out = a @ b
        if dense_output and sp.issparse(out):
            out = out.toarray()
        return out
    return matmul(a, b)


def numpy_with_scipy_dot():
    """A stand-in for the ``numpy`` module whose ``dot`` is :func:`dot`."""
    module = types.ModuleType("numpy")
    module.__dict__.update(np.__dict__)
    module.dot = dot
    return module
