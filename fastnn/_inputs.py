"""Cheap checks of common inputs that decide exactly as ``validate_data``.

A fitted model's ``predict`` (and ``fit``) sees the same few kinds of input
nearly every time: float32 or float64 arrays of the fitted width, CSR
matrices, DataFrames with the fitted column names. For those,
scikit-learn's ``validate_data(est, X, accept_sparse=["csr", "csc"],
reset=False)`` returns X unchanged (or, for a DataFrame, its values), and the
functions here return the same after a handful of attribute reads. Anything
else, and any input that one of these checks would reject, returns None, and
the caller goes through ``validate_data``, whose errors and warnings keep
scikit-learn's types and messages word for word.

The one check left out is the finiteness of X: the prediction kernel reports
whether the first layer's weighted sums hold a NaN or an infinity, which they
do for every row of X that holds one, and the caller then runs
``validate_data`` to raise scikit-learn's error.
"""

import sys

import numpy as np
import scipy.sparse as sp

from ._engine import FLOAT_DTYPES, all_finite

__all__ = ["common_fit_input", "common_input"]

SPARSE_TYPES = (sp.csr_matrix, sp.csr_array)


def common_input(est, X):
    """X as ``validate_data`` returns it, when X is a common input; else None.

    Parameters
    ----------
    est : fitted estimator
        Holds ``n_features_in_`` and, when fitted on named columns,
        ``feature_names_in_``.
    X : object
        The input given to ``predict``.

    Returns
    -------
    X : ndarray, CSR matrix or None
        X itself (a DataFrame's values as ``check_array`` takes them), or None
        when only ``validate_data`` can decide.
    """
    kind = type(X)
    names = getattr(est, "feature_names_in_", None)
    if kind is np.ndarray:
        return X if names is None and _plain_array(est, X) else None
    if kind in SPARSE_TYPES:
        return X if names is None and _plain_array(est, X) else None
    if names is None:
        return None
    package = kind.__module__.partition(".")[0]
    if package == "pandas" and _pandas_frame(kind):
        return _pandas_values(X, names)
    if package == "polars" and _polars_frame(kind):
        return _polars_values(X, names)
    return None


def _plain_array(est, X):
    """A non-empty 2-D float32 or float64 array (or CSR) of the fitted width."""
    shape = X.shape
    return (
        X.dtype in FLOAT_DTYPES
        and len(shape) == 2
        and shape[0] > 0
        and shape[1] == est.n_features_in_
    )


def _pandas_frame(kind):
    pandas = sys.modules.get("pandas")
    return pandas is not None and kind is pandas.DataFrame


def _polars_frame(kind):
    polars = sys.modules.get("polars")
    return polars is not None and kind is polars.DataFrame


def _same_names(columns, names):
    """Whether ``columns`` are exactly the fitted names, all of type str."""
    return len(columns) == len(names) and all(
        type(c) is str and c == n for c, n in zip(columns, names)
    )


def _pandas_values(X, names):
    """A float DataFrame's values, as ``check_array`` converts them.

    Only for columns of numpy float32 or float64 dtypes alone (no extension,
    sparse or object columns), which ``check_array`` turns into
    ``np.asarray(X)`` without a warning.
    """
    if not _same_names(list(X.columns), names):
        return None
    dtypes = set(X.dtypes)
    if not dtypes or not dtypes <= set(FLOAT_DTYPES):
        return None
    values = np.asarray(X)
    return values if values.ndim == 2 and values.shape[0] > 0 else None


def _polars_values(X, names):
    """A float polars DataFrame's values, as ``check_array`` converts them."""
    import polars

    if not _same_names(X.columns, names):
        return None
    if not X.width or any(d not in (polars.Float32, polars.Float64) for d in X.dtypes):
        return None
    values = np.asarray(X)
    return values if values.ndim == 2 and values.shape[0] > 0 else None


def common_fit_input(est, X, y, reset, classifier):
    """``(X, y)`` as ``validate_data(..., y, ...)`` returns them in ``fit``, or None.

    For a float32 or float64 array X of at least one row and column (of the
    fitted width without feature names when ``reset`` is False), all finite,
    and a targets array of as many rows: integer, bool or string labels for
    a classifier, finite floats or integers for a regressor. Then, as
    ``validate_data(est, X, y, accept_sparse=["csr", "csc"], multi_output=True,
    dtype=(np.float64, np.float32), reset=reset)`` does, X and y come back
    unchanged, ``n_features_in_`` is set and a ``feature_names_in_`` from an
    earlier fit on a DataFrame is removed.

    Finiteness is checked in one compiled pass (:func:`fastnn._engine.all_finite`);
    X or y with a NaN or an infinity goes to ``validate_data``, which raises
    scikit-learn's error.
    """
    if type(X) is not np.ndarray or type(y) is not np.ndarray:
        return None
    shape = X.shape
    if X.dtype not in FLOAT_DTYPES or len(shape) != 2 or not (shape[0] and shape[1]):
        return None
    if (
        y.ndim not in (1, 2)
        or y.shape[0] != shape[0]
        or (y.ndim == 2 and not y.shape[1])
    ):
        return None
    if y.dtype.kind not in ("iubU" if classifier else "iuf") or y.dtype == np.float16:
        return None
    if not reset and (
        shape[1] != est.n_features_in_
        or getattr(est, "feature_names_in_", None) is not None
    ):
        return None
    if not all_finite(X) or (y.dtype.kind == "f" and not all_finite(y)):
        return None
    if reset:
        est.__dict__.pop("feature_names_in_", None)
        est.n_features_in_ = shape[1]
    return X, y
