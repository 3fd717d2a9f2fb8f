"""Borrowed views of the flat buffers, built without reference counting.

A numpy-style slice-and-reshape inside a kernel (``flat[a:b].reshape(r, c)``)
updates the buffer's reference count twice and calls numba's reshape helper.
The training kernels make about fifty such views per mini-batch, so with
batches of a few dozen rows that bookkeeping is a measurable part of the
epoch. :func:`matrix_view` instead builds the (rows, cols) array header
directly over the buffer's memory and takes no reference: the view is only
valid while the buffer is alive, which holds inside a kernel that received
the buffer as an argument. Such views never leave the kernels.
"""

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from ._config import JIT


@intrinsic
def _unchecked_matrix_view(typingctx, flat, start, n_rows, n_cols):
    """(n_rows, n_cols) C-contiguous array over ``flat[start:]``; no checks."""
    ints = (start, n_rows, n_cols)
    if not (
        isinstance(flat, types.Array)
        and flat.ndim == 1
        and flat.layout == "C"
        and all(isinstance(t, types.Integer) for t in ints)
    ):
        return None
    view_type = types.Array(flat.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        start, n_rows, n_cols = (
            context.cast(builder, value, fe_type, types.intp)
            for value, fe_type in zip(args[1:], signature.args[1:])
        )
        source = context.make_array(signature.args[0])(context, builder, args[0])
        view = context.make_array(view_type)(context, builder)
        item_bytes = context.get_abi_sizeof(context.get_data_type(flat.dtype))
        itemsize = context.get_constant(types.intp, item_bytes)
        row_stride = builder.mul(n_cols, itemsize)
        populate_array(
            view,
            data=builder.gep(source.data, [start]),
            shape=cgutils.pack_array(builder, [n_rows, n_cols]),
            strides=cgutils.pack_array(builder, [row_stride, itemsize]),
            itemsize=itemsize,
            meminfo=None,
        )
        return view._getvalue()

    return view_type(flat, start, n_rows, n_cols), codegen


@njit(**JIT)
def matrix_view(flat, start, n_rows, n_cols):
    """``flat[start : start + n_rows * n_cols].reshape(n_rows, n_cols)``, borrowed.

    Parameters
    ----------
    flat : ndarray of shape (n,), C-contiguous
        The buffer; it must outlive the view.
    start, n_rows, n_cols : int
        Offset of the first element and the view's shape.

    Raises
    ------
    IndexError
        If the view would reach outside ``flat``.
    """
    if start < 0 or n_rows < 0 or n_cols < 0 or start + n_rows * n_cols > flat.size:
        raise IndexError("matrix_view outside its buffer")
    return _unchecked_matrix_view(flat, start, n_rows, n_cols)
