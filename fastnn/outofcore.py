"""Train on data larger than memory with ``partial_fit`` over row chunks.

:func:`partial_fit_chunks` walks an array-like in blocks of rows and hands each
block to the estimator's ``partial_fit``. With a :class:`numpy.memmap` (or any
object that returns an in-memory array when sliced, such as an h5py or zarr
dataset) only one block of rows is materialised at a time, so the peak memory
follows ``chunk_rows``, not the size of the file.

Examples
--------
Write a float32 design matrix to disk once, then train from the file::

    import numpy as np
    import fastnn
    from fastnn.outofcore import partial_fit_chunks

    X = np.memmap("X.f32", dtype=np.float32, mode="r", shape=(n_rows, n_cols))
    y = np.memmap("y.i64", dtype=np.int64, mode="r", shape=(n_rows,))
    clf = fastnn.MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
    partial_fit_chunks(clf, X, y, chunk_rows=50_000, epochs=5, random_state=0)

For data spread over many machines or files, the same ``partial_fit`` loop runs
on Dask through ``dask_ml.wrappers.Incremental`` (``pip install "fastnn[dask]"``).
"""

import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state

__all__ = ["partial_fit_chunks"]


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _is_classifier(est):
    """``sklearn.base.is_classifier`` that tolerates non-scikit-learn objects."""
    try:
        return is_classifier(est)
    except AttributeError:  # no __sklearn_tags__: not a scikit-learn estimator
        return getattr(est, "_estimator_type", None) == "classifier"


def _check_inputs(est, X, y, sample_weight, chunk_rows, epochs):
    """Validate the arguments of :func:`partial_fit_chunks`; return n_rows."""
    if not hasattr(est, "partial_fit"):
        raise ValueError(
            f"{type(est).__name__} does not implement partial_fit; "
            "partial_fit_chunks needs an estimator that learns incrementally."
        )
    _check_positive_int(chunk_rows, "chunk_rows")
    _check_positive_int(epochs, "epochs")
    if len(getattr(X, "shape", ())) != 2:
        raise ValueError(
            "X must be a 2-D array-like of shape (n_samples, n_features), got "
            f"shape {getattr(X, 'shape', None)}."
        )
    n_rows = X.shape[0]
    lengths = {"X": n_rows, "y": len(y)}
    if sample_weight is not None:
        lengths["sample_weight"] = len(sample_weight)
    if len(set(lengths.values())) != 1:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {lengths}."
        )
    if n_rows == 0:
        raise ValueError("X has 0 samples; partial_fit_chunks needs at least one.")
    return n_rows


def partial_fit_chunks(
    est,
    X,
    y,
    chunk_rows,
    classes=None,
    epochs=1,
    shuffle_chunks=True,
    random_state=None,
    sample_weight=None,
):
    """Fit an estimator with ``partial_fit`` over consecutive row chunks.

    Each epoch visits every chunk ``X[start:start + chunk_rows]`` once (the last
    chunk may be shorter) and calls ``est.partial_fit`` on it. Only the current
    chunk is read into memory, so ``X`` can be a :class:`numpy.memmap` much
    larger than RAM.

    Parameters
    ----------
    est : estimator
        An estimator with ``partial_fit``, e.g. :class:`fastnn.MLPClassifier`
        or :class:`fastnn.MLPRegressor` with ``solver="sgd"`` or ``"adam"``. It
        is updated in place; training continues from its current state when it
        is already fitted.
    X : array-like of shape (n_samples, n_features)
        Training data supporting row slicing: ndarray, :class:`numpy.memmap`,
        h5py/zarr dataset.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets, sliced like ``X``.
    chunk_rows : int
        Number of rows per ``partial_fit`` call; sets the peak memory.
    classes : array-like of shape (n_classes,), default=None
        All class labels, passed to a classifier's first ``partial_fit`` call.
        When ``None`` and the classifier is not fitted yet, ``np.unique(y)`` is
        used (this reads all of ``y`` once). Ignored for regressors.
    epochs : int, default=1
        Number of passes over all chunks.
    shuffle_chunks : bool, default=True
        Visit the chunks in a new random order each epoch. Rows inside a chunk
        are shuffled by the estimator itself (its ``shuffle`` parameter).
    random_state : int, RandomState instance or None, default=None
        Seeds the chunk order when ``shuffle_chunks`` is true.
    sample_weight : array-like of shape (n_samples,), default=None
        Per-row weights, sliced like ``X`` and passed on when given.

    Returns
    -------
    est : estimator
        The same estimator, fitted.

    Raises
    ------
    ValueError
        If ``est`` has no ``partial_fit``, ``chunk_rows`` or ``epochs`` is not a
        positive integer, or ``X``, ``y`` and ``sample_weight`` differ in length.
    """
    n_rows = _check_inputs(est, X, y, sample_weight, chunk_rows, epochs)
    starts = np.arange(0, n_rows, chunk_rows)
    rng = check_random_state(random_state)
    first_kwargs = {}
    if _is_classifier(est):
        if classes is not None:
            first_kwargs["classes"] = classes
        elif not hasattr(est, "classes_"):
            first_kwargs["classes"] = np.unique(np.asarray(y))
    for _ in range(epochs):
        order = rng.permutation(starts) if shuffle_chunks else starts
        for start in order:
            rows = slice(int(start), int(start) + chunk_rows)
            kwargs = dict(first_kwargs)
            first_kwargs = {}
            if sample_weight is not None:
                kwargs["sample_weight"] = np.asarray(sample_weight[rows])
            est.partial_fit(np.asarray(X[rows]), np.asarray(y[rows]), **kwargs)
    return est
