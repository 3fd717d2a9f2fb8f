"""The Numba kernels: the textbook maths of a dense network, one topic a module.

* :mod:`.layout`: the flat parameter buffer, the workspace, and the values
  (namedtuples of arrays and scalars) that the kernels take;
* :mod:`.activations`: hidden activations ``f`` and ``f'`` side by side;
* :mod:`.codes`: static codes, an activation chosen at compile time;
* :mod:`.losses`: output activation, loss and output delta;
* :mod:`.layers`: ``Z = A W + b`` forward, ``dW = A^T D``, ``db = sum D`` and
  ``D_prev = (D W^T) * f'(Z)`` backward;
* :mod:`.optimizers`: SGD, Nesterov and Adam updates of the flat buffer;
* :mod:`.epoch`: one batch, one epoch, and prediction over row blocks;
* :mod:`.data`: one pass over a fit's data: finiteness, integer labels.

Only :mod:`fastnn._engine` calls them. The hardware tricks they rely on (BLAS
by symbol, prefetching, a vectorisable exponential) are in
:mod:`fastnn._lowlevel`.
"""
