"""One pass over the data a fit receives: finiteness and integer labels.

scikit-learn's check of X's finiteness and its label encoding of y take a
sum and half a dozen NumPy calls (counts, ranks, the one-hot rows), each with
its own call overhead and pass over the data: about 60 µs for the digits
data, where a whole epoch takes 1.4 ms. These kernels decide the same in one
pass each:

* :func:`all_finite` is ``np.isfinite(values).all()``: ``x - x`` is 0 for
  every finite ``x`` and NaN for an infinity or a NaN (without ``nnan`` and
  ``ninf``, see :mod:`fastnn._config`, the compiler may not assume
  otherwise), and the comparisons combine with ``&``, which vectorises;
* :func:`one_hot_labels` is ``LabelBinarizer().fit_transform(y)`` for small
  non-negative integer labels: the sorted distinct labels, found by marking
  each label's slot, and each row's one-hot encoding (a single column for
  two classes).
"""

import numpy as np
from numba import njit

from .._config import JIT, JIT_INLINE


@njit(**JIT)
def all_finite(values):
    """Whether every value is finite.

    Parameters
    ----------
    values : ndarray of shape (n,), float32 or float64

    Returns
    -------
    finite : bool
    """
    finite = True
    for i in range(values.shape[0]):
        x = values[i]
        finite &= x - x == 0
    return finite


@njit(**JIT)
def one_hot_labels(y, limit):
    """Classes and one-hot targets of integer labels in ``[0, limit)``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), int64
        Labels; at least one.
    limit : int
        Labels from ``limit`` up (or below 0) are not encoded here.

    Returns
    -------
    classes : ndarray of shape (n_classes,), int64
        The sorted distinct labels; empty when a label is out of range.
    Y : ndarray of shape (n_samples, n_classes), bool
        Each row's class as a one-hot row; for two classes, one column
        (whether the row is of the second class). One class is left to
        scikit-learn by the caller; its single column is then all True.
    """
    low, high = label_range(y)
    if low < 0 or high >= limit:
        return np.empty(0, np.int64), np.empty((y.shape[0], 0), np.bool_)
    rank, classes = label_ranks(y, high)
    return classes, one_hot(y, rank, classes.shape[0])


@njit(**JIT_INLINE)
def label_range(y):
    """The smallest and the largest label."""
    low = high = y[0]
    for label in y:
        low = min(low, label)
        high = max(high, label)
    return low, high


@njit(**JIT_INLINE)
def label_ranks(y, high):
    """Each label's position among the sorted distinct labels, and those labels.

    Returns ``rank`` of shape (high + 1,), -1 for a value absent from y, and
    ``classes`` of shape (n_classes,).
    """
    present = np.zeros(high + 1, np.bool_)
    for label in y:
        present[label] = True
    rank = np.full(high + 1, -1, np.int64)
    classes = np.empty(high + 1, np.int64)
    n_classes = 0
    for label in range(high + 1):
        if present[label]:
            rank[label] = n_classes
            classes[n_classes] = label
            n_classes += 1
    return rank, classes[:n_classes]


@njit(**JIT_INLINE)
def one_hot(y, rank, n_classes):
    """Rows of the identity at each label's rank: one column for two classes."""
    n = y.shape[0]
    if n_classes == 2:
        Y = np.empty((n, 1), np.bool_)
        for i in range(n):
            Y[i, 0] = rank[y[i]] == 1
        return Y
    Y = np.zeros((n, n_classes), np.bool_)
    for i in range(n):
        Y[i, rank[y[i]]] = True
    return Y
