"""Numba compilation options, set once for every kernel in fastnn.

Every kernel module imports :data:`JIT` (and :data:`JIT_NOGIL` for kernels that
may run while other Python threads work) instead of spelling out its own
options. :data:`JIT_INLINE` is for small helpers with one or two callers,
which numba inlines into them instead of compiling them as functions of their
own (each compiled function costs compile time), and for the passes between
the entry points and the array kernels (``forward``, ``backward``, the output
loss, the optimizer step, the prefetch): numba links the machine code of every
callee into its caller and optimises and emits it again there, so each level
of compiled functions between an entry point and the leaves compiles everything
below it once more. :data:`JIT_OVERLOAD` is for
``numba.extending.overload`` implementations, which are compiled into (and
cached with) their callers. :data:`JIT_INTERNAL` is for functions that only
other kernels call: numba compiles them without the wrapper that lets Python
call them, and every kernel without the C-callable wrapper, which nothing in
fastnn uses; leaving both out shortens compilation.
``cache=True`` stores the machine code next to the sources (or, when that
directory is read-only, in numba's per-user fallback cache), so a fresh process
loads the kernels instead of compiling them.

The fastmath flags deliberately leave out ``nnan`` and ``ninf``: softmax,
log-sum-exp and the log-loss rely on real ``inf`` and ``NaN`` arithmetic, and
divergence detection relies on ``NaN`` surviving to the weights. They also
leave out ``contract`` (FMA formation) and ``reassoc``, so that machine code
loaded from numba's cache rounds exactly as a fresh compile does, and ``arcp``,
so that a division stays a division, rounded as numpy rounds it: scikit-learn
divides its gradients and losses by the batch's weight sum, and L-BFGS's line
search tells apart gradients that differ in the last bit.
"""

FASTMATH = {"nsz"}

JIT = {
    "cache": True,
    "fastmath": FASTMATH,
    "nogil": False,
    "error_model": "numpy",
    "no_cfunc_wrapper": True,
}
JIT_INTERNAL = {**JIT, "no_cpython_wrapper": True}
JIT_NOGIL = {**JIT, "nogil": True}
JIT_INLINE = {**JIT, "inline": "always"}
JIT_OVERLOAD = {"fastmath": FASTMATH, "error_model": "numpy"}
