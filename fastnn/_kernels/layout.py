"""The network and its data as the kernels see them.

Layout
------
All weights live in one contiguous 1-D buffer, in scikit-learn's packing order:
every layer's coefficient matrix (row-major), then every layer's intercept. The
layer ``i`` maps ``units[i]`` inputs to ``units[i + 1]`` outputs, so

* ``W_i = params[offsets[0, i] : ... + units[i] * units[i + 1]]`` reshaped
  to ``(units[i], units[i + 1])``;
* ``b_i = params[offsets[1, i] : ... + units[i + 1]]``.

Gradients and optimizer state use the same layout, so an optimizer step, an
L-BFGS iteration or a pickle is one loop over (or one copy of) one array. The
workspace holds, per layer, the batch's pre-activations Z, activations A and
deltas D, and a block for a contiguous copy of ``W_i^T``.

Values passed to the kernels
----------------------------
Each is a namedtuple of arrays and scalars (numba compiles one specialisation
per combination of dtypes, not per instance):

* :class:`Net`: parameters, gradient buffer, their layout, the units per
  layer, the workspace and its layout;
* :class:`Inputs`: all of X, dense or CSR;
* :class:`Batch`: one batch's rows of X, dense or CSR;
* :class:`Targets`: Y and the sample weights;
* :class:`Objective`: the hidden activation code (an int, or a static code,
  :mod:`fastnn._kernels.codes`), the output/loss code, the dtype's machine
  epsilon and the L2 penalty.

A sparse X travels as its CSR arrays with an empty dense array, a dense X as
itself with ``()`` in place of the CSR arrays (or with empty CSR arrays); the
``sparse`` field says which. With ``()``, the kernels compile without the CSR
products (:func:`fastnn._lowlevel.products.batch_csr_dot`). ``prefetch`` says
whether an epoch prefetches the next batch's rows of X and Y. Unit sample
weights travel as an empty array, with ``weighted`` false.
"""

import functools
import math
from collections import namedtuple

import numpy as np
from numba import njit

from .._config import JIT_INTERNAL
from .._lowlevel.views import borrowed_matrix, borrowed_vector

Net = namedtuple("Net", ["params", "grads", "offsets", "units", "ws", "ws_offsets"])
Inputs = namedtuple("Inputs", ["X", "csr", "sparse", "prefetch"])
Batch = namedtuple("Batch", ["X", "csr", "sparse", "rows"])
Targets = namedtuple("Targets", ["Y", "sw", "weighted"])
Objective = namedtuple("Objective", ["act", "out", "eps", "alpha"])

# Rows of the workspace layout: pre-activations, activations, deltas, W^T.
# NumPy integers rather than Python ints: numba types a Python int constant
# passed as an argument as a literal, and would compile :func:`buffer` once
# per row.
Z_ROWS, A_ROWS, D_ROWS, WT_BLOCK = (np.int64(row) for row in range(4))


SMALL_PRODUCT = 100**3


def parameter_layout(layer_units):
    """Offsets of every W and b in the flat buffer.

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer, input and output layers included.

    Returns
    -------
    offsets : ndarray of shape (2, n_layers - 1), dtype int64
        ``offsets[0, i]`` starts ``W_i`` and ``offsets[1, i]`` starts ``b_i``.
    size : int
        Total number of parameters.
    """
    units = list(layer_units)
    n = len(units) - 1
    offsets = np.empty((2, n), dtype=np.int64)
    pos = 0
    for i in range(n):
        offsets[0, i] = pos
        pos += units[i] * units[i + 1]
    for i in range(n):
        offsets[1, i] = pos
        pos += units[i + 1]
    return offsets, pos


def layer_views(params, layer_units):
    """Views ``coefs`` and ``intercepts`` into a flat buffer (no copies).

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The flat parameter (or gradient) buffer.
    layer_units : sequence of int of length n_layers
        Units per layer.

    Returns
    -------
    coefs : list of ndarray, each of shape (units[i], units[i + 1])
    intercepts : list of ndarray, each of shape (units[i + 1],)
    """
    coefs, intercepts = [], []
    for w_start, fan_in, fan_out, b_start in layer_spans(tuple(map(int, layer_units))):
        W = params[w_start : w_start + fan_in * fan_out]
        coefs.append(W.reshape(fan_in, fan_out))
        intercepts.append(params[b_start : b_start + fan_out])
    return coefs, intercepts


@functools.lru_cache(maxsize=64)
def layer_spans(layer_units):
    """``(W start, fan_in, fan_out, b start)`` of each layer in the flat buffer.

    :func:`parameter_layout` as Python ints, built once per network shape
    (a tuple of ints) for the Python code that slices the buffer.
    """
    offsets, _ = parameter_layout(layer_units)
    return tuple(
        (int(offsets[0, i]), fan_in, fan_out, int(offsets[1, i]))
        for i, (fan_in, fan_out) in enumerate(zip(layer_units, layer_units[1:]))
    )


def glorot_uniform_params(layer_units, activation, random_state, dtype):
    """Glorot-uniform initial weights, drawn as scikit-learn draws them.

    Each layer draws its W, then its b, from U(-r, r) with
    ``r = sqrt(factor / (fan_in + fan_out))``, factor 2 for the logistic
    activation and 6 otherwise, so a given ``random_state`` starts fastnn
    and sklearn from the same weights (``math.sqrt`` and ``np.sqrt`` both
    round the square root correctly).

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer.
    activation : str
        Hidden activation name.
    random_state : numpy.random.RandomState
        Source of randomness.
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    params : ndarray of shape (n_params,)
    """
    units = tuple(map(int, layer_units))
    *_, (_, _, fan_out, b_start) = layer_spans(units)  # the last bias ends it
    params = np.empty(b_start + fan_out, dtype=dtype)
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = layer_views(params, units)
    for W, b in zip(coefs, intercepts):
        bound = math.sqrt(factor / (W.shape[0] + W.shape[1]))
        W[...] = random_state.uniform(-bound, bound, W.shape)
        b[...] = random_state.uniform(-bound, bound, b.shape)
    return params


def workspace_layout(layer_units, n_rows, backward=True):
    """Offsets of the Z, A and delta buffers of every layer for ``n_rows`` rows.

    Parameters
    ----------
    layer_units : sequence of int of length n_layers
        Units per layer.
    n_rows : int
        Largest number of rows a batch will have.
    backward : bool, default=True
        Whether the backward pass's blocks (deltas and ``W_i^T``) get space;
        a forward-only workspace leaves them empty.

    Returns
    -------
    offsets : ndarray of shape (4, n_layers - 1), dtype int64
        Start of ``Z_i`` (row ``Z_ROWS``), ``A_i`` (row ``A_ROWS``) and ``D_i``
        (row ``D_ROWS``), each ``n_rows * units[i + 1]`` long, and of a block
        for ``W_i^T`` (row ``WT_BLOCK``), ``units[i] * units[i + 1]`` long for
        ``i >= 1`` and empty for the first layer, whose delta is not
        propagated.
    size : int
        Total workspace length.
    """
    fan_in, units = list(layer_units)[:-1], list(layer_units)[1:]
    offsets = np.empty((4, len(units)), dtype=np.int64)
    pos = 0
    for kind in (Z_ROWS, A_ROWS, D_ROWS):
        for i, u in enumerate(units):
            offsets[kind, i] = pos
            pos += n_rows * u if backward or kind != D_ROWS else 0
    for i, u in enumerate(units):
        offsets[WT_BLOCK, i] = pos
        pos += fan_in[i] * u if backward and i > 0 else 0
    return offsets, pos


@njit(**JIT_INTERNAL)
def coef(flat, net, i):
    """Layer ``i``'s weights in ``flat`` (parameters or gradients).

    Returns a view of shape (units[i], units[i + 1]).
    """
    return borrowed_matrix(flat, net.offsets[0, i], net.units[i], net.units[i + 1])


@njit(**JIT_INTERNAL)
def intercept(flat, net, i):
    """Layer ``i``'s bias in ``flat``, a view of shape (units[i + 1],)."""
    return borrowed_vector(flat, net.offsets[1, i], net.units[i + 1])


@njit(**JIT_INTERNAL)
def buffer(net, kind, i, n_rows):
    """Workspace view ``kind`` (Z_ROWS, A_ROWS, D_ROWS) of layer ``i``.

    Returns a view of shape (n_rows, units[i + 1]).
    """
    return borrowed_matrix(net.ws, net.ws_offsets[kind, i], n_rows, net.units[i + 1])


@njit(**JIT_INTERNAL)
def transposed_coef(net, i):
    """Workspace block for ``W_i^T``, of shape (units[i + 1], units[i])."""
    start = net.ws_offsets[WT_BLOCK, i]
    return borrowed_matrix(net.ws, start, net.units[i + 1], net.units[i])
