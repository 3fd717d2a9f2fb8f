"""``score``'s metrics for plain targets, computed as scikit-learn computes them.

``accuracy_score`` and ``r2_score`` check their targets with
``type_of_target``, ``check_array`` and parameter validation, which costs
far more than the metric on the few rows of a served request or a
cross-validation fold. For targets that are plainly of the kind ``score``
expects (numpy arrays of integer or string labels, 0/1 indicator rows, or
finite floats, of the predictions' shape; float sample weights, finite and
not all zero), the functions here compute the same value with the same
numpy operations in the same order. For anything else they return None and
``score`` calls scikit-learn's metric, which raises or warns as it does.
"""

import numpy as np

from ._engine import FLOAT_DTYPES

__all__ = ["fast_accuracy", "fast_r2"]


def _plain_weights(sample_weight, n):
    """Whether ``_check_sample_weight`` would take the weights unchanged."""
    if sample_weight is None:
        return True
    return (
        type(sample_weight) is np.ndarray
        and sample_weight.dtype in FLOAT_DTYPES
        and sample_weight.shape == (n,)
        and sample_weight.flags.c_contiguous
        and bool(np.isfinite(sample_weight).all())
        and bool(sample_weight.any())
    )


def _label_kinds_match(y_true, y_pred):
    """Both integer labels, or both numpy strings: targets of one kind."""
    kinds = y_true.dtype.kind + y_pred.dtype.kind
    return kinds in ("ii", "iu", "ui", "uu", "UU")


def fast_accuracy(y_true, y_pred, sample_weight=None):
    """``accuracy_score(y_true, y_pred, sample_weight=...)``, or None.

    Parameters
    ----------
    y_true : object
        The targets given to ``score``.
    y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The classifier's predictions: labels, or 0/1 indicator rows.
    sample_weight : object
        The weights given to ``score``.

    Returns
    -------
    score : float or None
        None when scikit-learn's checks must decide.
    """
    if type(y_true) is not np.ndarray or y_true.shape != y_pred.shape:
        return None
    if not _plain_weights(sample_weight, y_pred.shape[0]):
        return None
    if y_true.ndim == 1:
        if not _label_kinds_match(y_true, y_pred):
            return None
        score = y_true == y_pred
    elif y_true.ndim == 2 and y_true.shape[1] > 1:
        if not (_is_indicator(y_true) and _is_indicator(y_pred)):
            return None
        score = ~(y_true != y_pred).any(axis=1)
    else:
        return None
    return float(np.average(score, weights=sample_weight))


def _is_indicator(y):
    """Whether ``y`` holds integers, each 0 or 1."""
    return y.dtype.kind in "iu" and bool(((y == 0) | (y == 1)).all())


def fast_r2(y_true, y_pred, sample_weight=None):
    """``r2_score(y_true, y_pred, sample_weight=...)``, or None.

    scikit-learn's arithmetic for ``multioutput="uniform_average"`` and
    ``force_finite=True``: the weighted squared errors over the weighted
    squared deviations from the weighted mean, per output, with 1 for a
    perfect output and 0 for a constant one, then their mean.

    Parameters
    ----------
    y_true : object
        The targets given to ``score``.
    y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        The regressor's predictions.
    sample_weight : object
        The weights given to ``score``.

    Returns
    -------
    score : float or None
        None when scikit-learn's checks must decide (fewer than two samples
        among them: scikit-learn warns).
    """
    if type(y_true) is not np.ndarray or y_true.dtype not in FLOAT_DTYPES:
        return None
    n = y_pred.shape[0]
    if n < 2 or y_true.ndim not in (1, 2) or y_true.shape[0] != n:
        return None
    if not _plain_weights(sample_weight, n):
        return None
    arrays = (y_true, y_pred, sample_weight)
    dtype = np.result_type(
        *[a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    )
    y_true = y_true.astype(dtype, copy=False).reshape(n, -1)
    y_pred = y_pred.astype(dtype, copy=False).reshape(n, -1)
    if y_true.shape != y_pred.shape:
        return None
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        return None
    weight = 1.0
    if sample_weight is not None:
        sample_weight = sample_weight.astype(dtype, copy=False)
        weight = sample_weight[:, None]
    numerator = np.sum(weight * (y_true - y_pred) ** 2, axis=0)
    mean = np.asarray(np.average(y_true, axis=0, weights=sample_weight))
    denominator = np.sum(weight * (y_true - mean) ** 2, axis=0)
    return _mean_fraction_explained(numerator, denominator)


def _mean_fraction_explained(numerator, denominator):
    """``1 - numerator / denominator`` per output, made finite, then the mean."""
    nonzero_numerator = numerator != 0
    nonzero_denominator = denominator != 0
    scores = np.ones([numerator.shape[0]], dtype=numerator.dtype)
    valid = nonzero_denominator & nonzero_numerator
    scores[valid] = 1 - (numerator[valid] / denominator[valid])
    scores[nonzero_numerator & ~nonzero_denominator] = 0.0
    return float(np.asarray(np.average(scores)))
