"""Views into a flat buffer that borrow it instead of sharing its ownership.

A numba array normally holds a reference to the memory it views: making a
view (a slice, a reshape) takes one with an atomic increment, and dropping it
gives it back with an atomic decrement. The kernels cut every layer's W, b, Z,
A and delta out of flat buffers several times per mini-batch, and for small
batches those atomic operations, with the general slicing and reshape code
around them, cost as much as some of the arithmetic.

:func:`borrowed_vector` and :func:`borrowed_matrix` build the view directly
from the buffer's data pointer, with no reference of its own (a null
``meminfo``, which numba's reference counting skips). Such a view is only
valid while its caller holds the buffer, and must not leave compiled code:
the kernels use them for workspace and parameter views that live within one
kernel call. The caller guarantees that the view lies inside the buffer; the
layouts in :mod:`fastnn._kernels.layout` do so by construction.
"""

from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _is_flat_buffer(flat):
    """Whether ``flat`` types as a 1-D C-contiguous array."""
    return isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"


def _borrowed_view(context, builder, signature, args):
    """LLVM for a C-contiguous view of ``flat[start:]`` with the given shape."""
    flat_type, view_type = signature.args[0], signature.return_type
    flat = make_array(flat_type)(context, builder, args[0])
    start, *dims = (
        context.cast(builder, value, ty, types.intp)
        for value, ty in zip(args[1:], signature.args[1:])
    )
    itemsize = context.get_constant(
        types.intp, context.get_abi_sizeof(context.get_data_type(flat_type.dtype))
    )
    strides = [itemsize]
    for dim in reversed(dims[1:]):
        strides.insert(0, builder.mul(strides[0], dim))
    view = make_array(view_type)(context, builder)
    populate_array(
        view,
        data=builder.gep(flat.data, [start]),
        shape=dims,
        strides=strides,
        itemsize=itemsize,
        meminfo=None,
    )
    return view._getvalue()


@intrinsic
def borrowed_vector(typingctx, flat, start, length):
    """``flat[start : start + length]``, borrowed (see the module docstring)."""
    if not _is_flat_buffer(flat):
        return None
    return flat(flat, start, length), _borrowed_view


@intrinsic
def borrowed_matrix(typingctx, flat, start, n_rows, n_cols):
    """``flat[start : start + n_rows * n_cols]`` as a C-contiguous matrix.

    The view has shape ``(n_rows, n_cols)`` and is borrowed (see the module
    docstring).
    """
    if not _is_flat_buffer(flat):
        return None
    view_type = flat.copy(ndim=2)
    return view_type(flat, start, n_rows, n_cols), _borrowed_view
