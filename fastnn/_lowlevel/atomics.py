"""An atomic counter that threads running one kernel share.

A prediction split among threads runs the same kernel in each of them, over
the same arrays; each thread claims the next block of rows by adding one to
a shared counter, so that a thread that starts late or runs slower claims
fewer blocks, with no Python (and no GIL) between blocks.
"""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def fetch_add(typingctx, counter, value):
    """Add ``value`` to ``counter[0]`` atomically; return the value before.

    ``counter`` is a writable C-contiguous int64 array of at least one
    element. Lowers to LLVM's ``atomicrmw add`` with monotonic ordering: the
    counter only hands out distinct block indices, and the rows each thread
    writes are published to the caller by the join of its thread.
    """
    if not (
        isinstance(counter, types.Array)
        and counter.dtype == types.int64
        and counter.layout == "C"
        and counter.mutable
        and isinstance(value, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.gep(builder, array.data, 0)
        addend = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", pointer, addend, "monotonic")

    return types.int64(counter, value), codegen
