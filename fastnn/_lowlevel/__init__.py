"""Hardware-level building blocks that the kernels' maths calls.

* :mod:`.atomics` holds the counter from which the threads of one
  prediction claim its blocks of rows.
* :mod:`.blas` calls SciPy's BLAS by symbol name, with ``alpha`` and ``beta``,
  and holds :func:`~.blas.matmul`, the layers' ``np.dot``.
* :mod:`.products` holds the products whose fast form is not a plain
  ``np.dot``: CSR inputs, and ``D W^T`` through a contiguous copy of ``W^T``.
* :mod:`.prefetch` gathers a batch's rows and prefetches the next batch's.
* :mod:`.vecmath` holds an exponential that LLVM vectorises.
* :mod:`.views` cuts views out of flat buffers without reference counting.

Nothing here knows about layers, losses or optimizers.
"""
