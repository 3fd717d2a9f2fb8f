"""Software prefetch of the next mini-batch's rows.

A shuffled epoch reads the rows of X and Y in random order. When X is larger
than the cache, every row of a batch is a cache miss, and the gather stalls on
memory latency. Asking for the next batch's rows before the current batch's
forward and backward passes lets those misses overlap with the computation.

A prefetch is only a hint: it never changes any value, and the processor
ignores it rather than fault on a bad address. The kernels still only ask for
addresses inside the arrays.

A prefetch whose address misses the TLB is not carried out reliably. So the
rows two batches ahead are first *touched*: real loads, whose values are
discarded, of the first lines of each row. A load is always carried out,
page-table walk included; one batch later the rows' translations are in the
TLB and their prefetches take effect. Only the first ``TOUCH_LINES`` lines of
a row are loaded: loads, unlike prefetches, hold the processor's load queue.

:func:`gather_rows` copies a dense batch's rows into a contiguous buffer, and
:func:`prefetch_next_batch` asks for the next batches' rows while the current
one is computed.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._config import JIT, JIT_INLINE

CACHE_LINE_BYTES = 64  # x86-64 and ARMv8 data cache line
TOUCH_LINES = (
    8  # enough lines to walk a row's page tables, few enough to spare the load queue
)


def is_c_array_and_index(array, flat_index):
    """Whether the argument types are a C-contiguous array and an integer."""
    return (
        isinstance(array, types.Array)
        and array.layout == "C"
        and isinstance(flat_index, types.Integer)
    )


def element_byte_pointer(context, builder, signature, args):
    """LLVM ``i8*`` to ``array.flat[flat_index]`` from an intrinsic's args."""
    data = context.make_array(signature.args[0])(context, builder, args[0]).data
    return builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())


@intrinsic
def prefetch_element(typingctx, array, flat_index):
    """Hint the processor to load ``array.flat[flat_index]`` into the cache.

    ``array`` must be C-contiguous. Lowers to LLVM's ``llvm.prefetch`` (read,
    high temporal locality, data cache).
    """
    if not is_c_array_and_index(array, flat_index):
        return None

    def codegen(context, builder, signature, args):
        byte_ptr = element_byte_pointer(context, builder, signature, args)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [byte_ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, flat_index), codegen


@intrinsic
def touch_element(typingctx, array, flat_index):
    """Load ``array.flat[flat_index]`` and discard it.

    A real load (of the element's first byte), kept by the compiler through an
    empty ``asm`` statement that takes the loaded value. Unlike a prefetch, the
    load is always carried out, page-table walk included. ``array`` must be
    C-contiguous and ``flat_index`` inside it.
    """
    if not is_c_array_and_index(array, flat_index):
        return None

    def codegen(context, builder, signature, args):
        value = builder.load(element_byte_pointer(context, builder, signature, args))
        keep = ir.InlineAsm(
            ir.FunctionType(ir.VoidType(), [value.type]), "", "r", side_effect=True
        )
        builder.call(keep, [value])
        return context.get_dummy_value()

    return types.void(array, flat_index), codegen


@njit(**JIT)
def touch_rows(A, rows):
    """Load the first ``TOUCH_LINES`` cache lines of every row ``A[rows]``.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_cols), C-contiguous
        The array whose rows will be read two batches from now.
    rows : ndarray of shape (n_batch,)
        Row indices. Unlike a prefetch, a load outside the array could
        fault, so indices outside ``[0, n_rows)`` are skipped.
    """
    n_rows, n_cols = A.shape
    if n_cols == 0:
        return
    step = CACHE_LINE_BYTES // A.itemsize if A.itemsize < CACHE_LINE_BYTES else 1
    stop = n_cols if n_cols < TOUCH_LINES * step else TOUCH_LINES * step
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= n_rows:
            continue
        start = rows[i] * n_cols
        for j in range(0, stop, step):
            touch_element(A, start + j)
        touch_element(A, start + stop - 1)


@njit(**JIT)
def prefetch_rows(A, rows):
    """Prefetch every cache line of the rows ``A[rows]`` of a C-contiguous A.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_cols), C-contiguous
        The array whose rows will be read soon.
    rows : ndarray of shape (n_batch,)
        Row indices, each in ``[0, n_rows)``.
    """
    n_cols = A.shape[1]
    if n_cols == 0:
        return
    step = CACHE_LINE_BYTES // A.itemsize if A.itemsize < CACHE_LINE_BYTES else 1
    for i in range(rows.shape[0]):
        start = rows[i] * n_cols
        for j in range(0, n_cols, step):
            prefetch_element(A, start + j)
        prefetch_element(A, start + n_cols - 1)


@njit(**JIT)
def gather_rows(X, rows, out):
    """``out[:len(rows)] = X[rows]`` for a dense C-contiguous X.

    Written as an explicit loop: a slice assignment also compiles numpy's
    shape-mismatch error path (string formatting), which costs compile time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The source rows.
    rows : ndarray of shape (n_batch,)
        Row indices into X.
    out : ndarray of shape (>= n_batch, n_features)
        Receives the rows.
    """
    for i in range(rows.shape[0]):
        src = X[rows[i]]
        dst = out[i]
        for j in range(src.shape[0]):
            dst[j] = src[j]


@njit(**JIT_INLINE)
def prefetch_next_batch(A, order, start, batch_size):
    """Prefetch the rows of A of the batch at ``start``; touch the one after.

    The rows of the batch at ``start`` are prefetched; the batch after it has
    the first lines of each row loaded, so that its page-table walks are done
    before it is prefetched. Called before the current batch's passes, so
    that the misses overlap with its computation.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_cols), C-contiguous
        Dense inputs or targets.
    order : ndarray of shape (n_samples,)
        The epoch's sample order.
    start : int
        Position in ``order`` of the next batch.
    batch_size : int
        Rows per batch.
    """
    # Slices stop at the end of ``order``, as Python's do.
    rows = order[start : start + batch_size]
    after = order[start + batch_size : start + 2 * batch_size]
    prefetch_rows(A, rows)
    touch_rows(A, after)
