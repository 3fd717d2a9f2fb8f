"""BLAS calls with scaling factors, for updates that fold into a product.

``np.dot(a, b, out)`` always overwrites ``out``. A momentum step, however, is
``v <- mu v - (lr / n) A^T D`` and then ``W <- W + v``: the product can
accumulate straight into the velocity, with BLAS's own ``alpha`` and
``beta``, and the step then becomes one ``axpy``. That removes the gradient
buffer from the step, and with it a write and a read of every weight per
batch, and OpenBLAS runs both calls on its threads. It pays only for large
layers: OpenBLAS applies a nonzero ``beta`` in a pass of its own, which for
small layers costs more than the update it saves (``FOLD_LAYER`` in
:mod:`fastnn._engine`).

:func:`matmul` is ``np.dot(a, b, out)`` itself, the same BLAS calls with the
same arguments as numba's, compiled once for all the products of a kernel
(numba compiles its ``np.dot`` once per combination of layouts, and a first
fit then spends longer compiling).

The routines are SciPy's (``scipy.linalg.cython_blas``, the same BLAS that
numba's ``np.dot`` calls). Their addresses are registered with LLVM under
fixed symbol names when this module is imported, and the kernels call them by
name, so machine code that uses them can be cached like any other.
"""

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from .._config import JIT

SYMBOL_PREFIX = "fastnn_cython_blas_"
ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot", "saxpy", "daxpy")
PREFIX_CHAR = {types.float32: "s", types.float64: "d"}
INT32_MAX = 2**31 - 1
NO_TRANSPOSE, TRANSPOSE = ord("N"), ord("T")
# :func:`matmul`'s flag, as NumPy bools: numba compiles a function once per
# literal value of a Python bool argument.
NOT_TRANSPOSED, TRANSPOSED = np.bool_(False), np.bool_(True)

for _routine in ROUTINES:
    llvm.add_symbol(
        SYMBOL_PREFIX + _routine,
        get_cython_function_address("scipy.linalg.cython_blas", _routine),
    )


def blas_dtype(*arrays):
    """The common float dtype of C-contiguous arrays, or None."""
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        return None
    dtypes = {a.dtype for a in arrays}
    dtype = dtypes.pop()
    return dtype if not dtypes and dtype in PREFIX_CHAR else None


def call_fortran(
    context, builder, routine, dtype, kinds, values, arg_types, returns=False
):
    """Call ``routine`` with every argument passed by reference, as Fortran does.

    ``kinds`` says per argument how to pass it: ``"c"`` a character, ``"i"`` a
    32-bit integer, ``"f"`` a float of ``dtype`` and ``"a"`` an array's data.
    The routine returns a float of ``dtype`` when ``returns``, else nothing.
    """
    float_type = context.get_value_type(dtype)
    llvm_types = {"c": ir.IntType(8), "i": ir.IntType(32), "f": float_type}
    pointers, pointer_types = [], []
    for kind, value, ty in zip(kinds, values, arg_types):
        if kind == "a":
            pointers.append(context.make_array(ty)(context, builder, value).data)
            pointer_types.append(float_type.as_pointer())
            continue
        target = {"c": types.int8, "i": types.int32, "f": dtype}[kind]
        cast = context.cast(builder, value, ty, target)
        pointers.append(cgutils.alloca_once_value(builder, cast))
        pointer_types.append(llvm_types[kind].as_pointer())
    fnty = ir.FunctionType(float_type if returns else ir.VoidType(), pointer_types)
    name = SYMBOL_PREFIX + PREFIX_CHAR[dtype] + routine
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    return builder.call(fn, pointers)


@intrinsic
def xgemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``c = alpha op(a) op(b) + beta c`` (BLAS ``?gemm``)."""
    dtype = blas_dtype(a, b, c)
    if dtype is None:
        return None
    sig = types.void(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        call_fortran(
            context, builder, "gemm", dtype, "cciiifaiaifai", args, signature.args
        )

    return sig, codegen


@intrinsic
def xgemv(typingctx, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
    """Column-major ``y = alpha op(a) x + beta y`` (BLAS ``?gemv``)."""
    dtype = blas_dtype(a, x, y)
    if dtype is None:
        return None
    sig = types.void(trans, m, n, alpha, a, lda, x, incx, beta, y, incy)

    def codegen(context, builder, signature, args):
        call_fortran(
            context, builder, "gemv", dtype, "ciifaiaifai", args, signature.args
        )

    return sig, codegen


@intrinsic
def xdot(typingctx, n, x, incx, y, incy):
    """``sum_i x_i y_i`` in the arrays' dtype (BLAS ``?dot``)."""
    dtype = blas_dtype(x, y)
    if dtype is None:
        return None
    sig = dtype(n, x, incx, y, incy)

    def codegen(context, builder, signature, args):
        return call_fortran(
            context, builder, "dot", dtype, "iaiai", args, signature.args, True
        )

    return sig, codegen


@intrinsic
def xaxpy(typingctx, n, alpha, x, incx, y, incy):
    """``y = alpha x + y`` (BLAS ``?axpy``)."""
    dtype = blas_dtype(x, y)
    if dtype is None:
        return None
    sig = types.void(n, alpha, x, incx, y, incy)

    def codegen(context, builder, signature, args):
        call_fortran(context, builder, "axpy", dtype, "ifaiai", args, signature.args)

    return sig, codegen


@njit(**JIT)
def gemm_transposed_left(A, D, C, scale, keep):
    """``C = scale * A.T @ D + keep * C`` in place, for C-contiguous arrays.

    Parameters
    ----------
    A : ndarray of shape (n_rows, p)
    D : ndarray of shape (n_rows, q)
    C : ndarray of shape (p, q)
        Updated in place; with ``keep == 0`` its old values are not read
        (BLAS semantics), so NaN in ``C`` does not survive.
    scale, keep : float
        BLAS's ``alpha`` and ``beta``.
    """
    n_rows, p = A.shape
    q = D.shape[1]
    if D.shape[0] != n_rows or C.shape[0] != p or C.shape[1] != q:
        raise ValueError("gemm_transposed_left: shapes do not match")
    if n_rows > INT32_MAX or p > INT32_MAX or q > INT32_MAX:  # 32-bit BLAS sizes
        raise ValueError("gemm_transposed_left: too large for 32-bit BLAS")
    if p == 0 or q == 0:
        return
    # NumPy's routine for ``A.T @ D`` by shape, so that the rounding is the
    # same as scikit-learn's: ``dot`` for one entry, ``gemv`` for one row or
    # one column of C, ``gemm`` otherwise.
    if p == 1 and q == 1:
        total = xdot(n_rows, A, 1, D, 1)
        C[0, 0] = scale * total + (keep * C[0, 0] if keep != 0 else 0.0)
    elif q == 1:
        # The column-major (p, n_rows) matrix A^T times the vector D.
        xgemv(NO_TRANSPOSE, p, n_rows, scale, A, p, D, 1, keep, C, 1)
    elif p == 1:
        xgemv(NO_TRANSPOSE, q, n_rows, scale, D, q, A, 1, keep, C, 1)
    else:
        # Row-major C (p, q) is column-major C^T (q, p) = D^T A, with D^T the
        # column-major (q, n_rows) view of D and A transposed from (p, n_rows).
        xgemm(NO_TRANSPOSE, TRANSPOSE, q, p, n_rows, scale, D, q, A, p, keep, C, q)


@njit(**JIT)
def matmul(A, B, out, transpose_b):
    """``out = A @ B``, or ``A @ B.T``, with the BLAS call ``np.dot`` makes.

    The same routine and arguments as numba's ``np.dot(A, B, out)`` (with
    ``B.T`` when ``transpose_b``), so the same rounding: ``?gemm``, or
    ``?gemv`` and ``?dot`` when the product has one row or one column, and
    zeros when it is empty. One compiled function serves every product of a
    kernel, where ``np.dot`` compiles one per combination of layouts.

    Parameters
    ----------
    A : ndarray of shape (m, k), C-contiguous
    B : ndarray of shape (k, n), or (n, k) when ``transpose_b``, C-contiguous
    out : ndarray of shape (m, n), C-contiguous
        Overwritten with the product.
    transpose_b : numpy.bool_
        Whether to multiply by ``B.T`` (a NumPy bool, so that numba compiles
        one function for both, not one per literal).
    """
    m, k = A.shape
    n = B.shape[0] if transpose_b else B.shape[1]
    inner = B.shape[1] if transpose_b else B.shape[0]
    if inner != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("matmul: shapes do not match")
    if m > INT32_MAX or n > INT32_MAX or k > INT32_MAX:
        raise ValueError("matmul: too large for 32-bit BLAS")
    if m == 0 or n == 0 or k == 0:
        for i in range(m):
            for j in range(n):
                out[i, j] = 0.0
    elif n == 1 and m == 1:
        out[0, 0] = xdot(k, A, 1, B, 1)
    elif n == 1:
        xgemv(TRANSPOSE, k, m, 1.0, A, k, B, 1, 0.0, out, 1)
    elif m == 1 and transpose_b:
        xgemv(TRANSPOSE, k, n, 1.0, B, k, A, 1, 0.0, out, 1)
    elif m == 1:
        xgemv(NO_TRANSPOSE, n, k, 1.0, B, n, A, 1, 0.0, out, 1)
    elif transpose_b:
        xgemm(TRANSPOSE, NO_TRANSPOSE, n, m, k, 1.0, B, k, A, k, 0.0, out, n)
    else:
        xgemm(NO_TRANSPOSE, NO_TRANSPOSE, n, m, k, 1.0, B, n, A, k, 0.0, out, n)
