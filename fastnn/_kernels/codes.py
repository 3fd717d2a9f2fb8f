"""Static codes: an integer code carried in a type, for kernels that compile less.

Kernels choose the activation by a small integer code at run time, so one
compiled kernel serves every activation, and a kernel compiles every
activation's loop. Without the compiled core (numba's cache lacks the kernels
for this machine) a first fit compiles its kernels, and compiling the loops it
does not run is most of that wait. The engine then passes the activation as a
*static code*: a tuple of ``code`` Nones, whose type numba tells apart by its
length, so that the kernels compile for that activation alone (the same
arithmetic, so the same bits).

:func:`static_code` makes one in Python; in jitted code :func:`code_value`
reads either kind as an integer, and overloads call :func:`static_value` on
the argument's numba type to pick a dedicated kernel.
"""

from numba import types
from numba.extending import overload

from .._config import JIT_OVERLOAD


def static_code(code):
    """The static form of the integer ``code``: a tuple of ``code`` Nones."""
    return (None,) * int(code)


def static_value(code_type):
    """The code a numba type carries if it is a static code, else None."""
    if isinstance(code_type, types.BaseTuple):
        return len(code_type.types)
    return None


def code_value(code):
    """The integer of a run-time or static code (jitted code only)."""


@overload(code_value, jit_options=JIT_OVERLOAD, inline="always")
def overload_code_value(code):
    """The code itself, or the constant a static code's type carries."""
    static = static_value(code)
    if static is None:
        return lambda code: code
    return lambda code: static
