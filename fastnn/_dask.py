"""Training and prediction on Dask collections, where the blocks live.

With a ``dask.distributed`` client, ``fit`` with ``solver="lbfgs"`` on a Dask
array (or DataFrame) keeps X on the workers:

* the inputs are checked on the blocks (width, finiteness, the classes with
  ``da.unique``), and the targets are binarized block by block, next to X;
* every evaluation of the objective sends the flat parameters to the workers
  once (a broadcast scatter), each block's task computes its loss and
  gradient with the in-memory fit's compiled objective
  (:func:`fastnn._engine.block_loss_and_gradient`, which keeps the block's
  workspace for the next evaluation), and the client adds the sums in block
  order and steps scipy's L-BFGS exactly as the in-memory fit does.

Prediction on a Dask array maps the in-memory prediction over its blocks,
lazily (as dask-ml's ``ParallelPostFit`` does). The stochastic solvers need
the data in one process, batch after batch: on Dask arrays they raise, and
point to dask-ml's ``Incremental`` (one ``partial_fit`` per block). Without a
distributed client, Dask inputs take scikit-learn's path (``np.asarray``).
"""

import sys
import uuid

import numpy as np
from sklearn.utils.validation import _assert_all_finite, check_array

from . import _engine as engine

__all__ = ["DaskObjective", "dask_client", "is_dask", "lazy_predict", "lazy_score"]

STOCHASTIC_MESSAGE = (
    "{cls} with solver={solver!r} cannot train on Dask collections: the "
    "stochastic solvers need every mini-batch in one process. Use "
    "solver='lbfgs', which trains where the blocks live, or wrap the estimator "
    "in dask_ml.wrappers.Incremental, which calls partial_fit on one block at "
    "a time."
)


def is_dask(X):
    """Whether X is a Dask collection (without importing Dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


def dask_client():
    """The current ``dask.distributed`` client, or None."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None


def as_dask_array(X):
    """A Dask DataFrame's values as an array (chunk lengths known), or X."""
    if hasattr(X, "to_dask_array"):
        return X.to_dask_array(lengths=True)
    return X


def feature_names(X):
    """A Dask DataFrame's column names when all are strings, as in-memory."""
    columns = getattr(X, "columns", None)
    if columns is None or not len(columns):
        return None
    if all(isinstance(c, str) for c in columns):
        return np.asarray(list(columns), dtype=object)
    return None


class DaskData:
    """X, encoded targets and sample weights of a Dask fit, blocks aligned.

    Attributes
    ----------
    X, Y, sample_weight : dask arrays (sample_weight may be None)
        Row chunks aligned; X and Y in the model's dtype, one column chunk.
    n_features, n_outputs : int
    dtype : numpy dtype
    """

    def __init__(self, X, Y, sample_weight):
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.n_features, self.n_outputs = X.shape[1], Y.shape[1]
        self.dtype = X.dtype


def check_dask_X(est, X, reset):
    """X of a Dask fit, checked on its blocks as ``validate_data`` checks it.

    Returns the array (float32 or float64, one column chunk, known row
    chunks); raises scikit-learn's errors for an empty X and for NaN or
    infinity, with its messages (by checking a small array with the same
    defect).
    """
    import dask.array as da

    names = feature_names(X)
    X = as_dask_array(X)
    if X.ndim != 2:
        check_array(np.empty((0,) * X.ndim), estimator=est, input_name="X")
    if any(np.isnan(c) for c in X.chunks[0]):
        X.compute_chunk_sizes()
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            check_array(X.blocks[0].compute(), estimator=est, dtype=(np.float64,))
        X = X.astype(np.float64)
    n, width = X.shape
    shape = (n, 0) if width == 0 else (min(n, 1), width)
    check_array(np.empty(shape, X.dtype), estimator=est)
    X = X.rechunk({1: -1})
    _check_finite(da, X, est, "X")
    if reset:
        est.n_features_in_ = X.shape[1]
        if names is not None:
            est.feature_names_in_ = names
        else:
            est.__dict__.pop("feature_names_in_", None)
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is "
            f"expecting {est.n_features_in_} features as input."
        )
    return X


def _check_finite(da, values, est, name):
    """Raise scikit-learn's NaN or infinity error when ``values`` holds one."""
    if values.dtype.kind not in "fc":
        return
    has_nan, has_inf = da.compute(da.isnan(values).any(), da.isinf(values).any())
    if has_nan or has_inf:
        sample = np.array([np.nan if has_nan else np.inf], dtype=values.dtype)
        _assert_all_finite(sample, input_name=name, estimator_name=type(est).__name__)


def check_dask_targets(est, X, y, sample_weight, classifier, first_pass=True):
    """Encoded targets and sample weights of a Dask fit, on X's row chunks."""
    import dask.array as da

    y = as_dask_array(y) if is_dask(y) else da.from_array(np.asarray(y))
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{X.shape[0]}, {y.shape[0]}]"
        )
    y = y.rechunk((X.chunks[0],) + ((-1,) if y.ndim == 2 else ()))
    _check_finite(da, y, est, "y")
    if classifier:
        Y = _binarized(est, y, X.dtype, first_pass)
    else:
        Y = y.reshape(y.shape[0], -1) if y.ndim == 1 else y
        Y = Y.astype(X.dtype).rechunk({1: -1})
    if sample_weight is not None:
        sample_weight = _check_dask_weights(est, da, sample_weight, X)
    return DaskData(X, Y, sample_weight)


def _binarized(est, y, dtype, first_pass):
    """The label binarizer fitted on ``da.unique(y)``, and the encoded targets.

    For 1-D labels, the distinct labels decide ``type_of_target`` and
    ``unique_labels`` exactly as y itself does. A warm start checks them
    against ``classes_`` and keeps the binarizer.
    """
    from sklearn.preprocessing import LabelBinarizer

    if y.ndim != 1:
        raise ValueError(
            f"{type(est).__name__} on Dask arrays takes 1-D class labels; got y "
            f"of shape {y.shape}."
        )
    import dask.array as da

    classes = da.unique(y).compute()
    if first_pass:
        lb = LabelBinarizer().fit(classes)
        est._label_binarizer, est.classes_ = lb, lb.classes_
    else:
        est._check_known_classes(classes)
        lb = est._label_binarizer
    width = 1 if len(lb.classes_) <= 2 else len(lb.classes_)
    return y.map_blocks(
        _encode_block, lb, dtype, dtype=dtype, chunks=(y.chunks[0], (width,)),
        new_axis=1,
    )  # fmt: skip


def _encode_block(y, lb, dtype):
    """One block of labels, binarized as the in-memory fit does."""
    return np.ascontiguousarray(lb.transform(y), dtype=dtype).reshape(y.shape[0], -1)


def _check_dask_weights(est, da, sample_weight, X):
    """Sample weights as ``_check_sample_weight`` checks them, on X's chunks."""
    if np.isscalar(sample_weight):
        return da.full(X.shape[0], sample_weight, dtype=X.dtype, chunks=X.chunks[0])
    sw = (
        as_dask_array(sample_weight)
        if is_dask(sample_weight)
        else da.from_array(np.asarray(sample_weight))
    )
    if sw.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. "
            f"Expected either a scalar value or a 1D array of length {X.shape[0]}."
        )
    if sw.shape != (X.shape[0],):
        raise ValueError(
            f"sample_weight.shape == {sw.shape}, expected {(X.shape[0],)}!"
        )
    sw = sw.astype(X.dtype).rechunk((X.chunks[0],))
    _check_finite(da, sw, est, "sample_weight")
    if not bool(sw.any().compute()):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sw


class DaskObjective:
    """The L-BFGS objective over blocks that stay on the workers.

    Same interface as :class:`fastnn._engine.FullBatchObjective`: reads the
    estimator's flat ``params`` at every :meth:`loss_and_gradient`.

    Parameters
    ----------
    client : distributed.Client
    data : DaskData
    params : ndarray of shape (n_params,)
        The estimator's flat buffer.
    layer_units : sequence of int
    model : dict
        ``activation``, ``out_activation`` and ``alpha``.
    """

    def __init__(self, client, data, params, layer_units, model):
        from distributed import futures_of

        self.client = client
        self.params = params
        self.units = tuple(int(u) for u in layer_units)
        self.alpha = float(model["alpha"])
        self.model = {**model, "alpha": 0.0}
        arrays = [data.X, data.Y]
        if data.sample_weight is not None:
            arrays.append(data.sample_weight)
        arrays = client.persist(arrays)
        self._persisted = arrays
        blocks = []
        for array in arrays:
            by_key = {f.key: f for f in futures_of(array)}
            blocks.append([by_key[key] for key in _row_keys(array)])
        self.blocks = list(zip(*blocks))
        self.fit_key = uuid.uuid4().hex
        self.n_coef = engine.parameter_layout(self.units)[0][1, 0]

    def loss_and_gradient(self):
        """Loss and gradient at the current ``params``, summed over blocks.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,), float64
        """
        params = self.client.scatter(self.params.copy(), broadcast=True, hash=False)
        tasks = [
            self.client.submit(
                engine.block_loss_and_gradient,
                self.fit_key,
                index,
                params,
                self.units,
                self.model,
                *block,
                pure=False,
            )  # fmt: skip
            for index, block in enumerate(self.blocks)
        ]
        loss_sum, grad_sum, weight_sum = 0.0, 0.0, 0.0
        for loss, grad, weight in self.client.gather(tasks):  # in block order
            loss_sum += loss
            grad_sum = grad_sum + grad
            weight_sum += weight
        coefs = self.params[: self.n_coef].astype(np.float64)
        grad = grad_sum / weight_sum
        loss = loss_sum / weight_sum
        if self.alpha:
            loss += 0.5 * self.alpha * float(np.dot(coefs, coefs)) / weight_sum
            grad[: self.n_coef] += self.alpha * coefs / weight_sum
        return loss, grad

    def close(self):
        """Drop the blocks' objectives and workspaces on the workers."""
        self.client.run(engine.forget_block_objectives, self.fit_key)
        self._persisted = None


def _row_keys(array):
    """The array's block keys in row order (one column chunk)."""
    keys = array.__dask_keys__()
    return [row[0] if isinstance(row, list) else row for row in keys]


def lazy_predict(est, method, X):
    """``getattr(est, method)`` mapped lazily over X's row blocks."""
    X = as_dask_array(X) if not hasattr(X, "map_partitions") else X
    width = est.n_features_in_
    sample = getattr(est, method)(
        np.zeros((1, width), dtype=getattr(X, "dtype", float))
    )
    if hasattr(X, "map_partitions"):  # a Dask DataFrame keeps its column names
        return X.map_partitions(getattr(est, method), meta=sample[:0])
    X = X.rechunk({1: -1})
    if sample.ndim == 1:
        return X.map_blocks(
            getattr(est, method), dtype=sample.dtype, drop_axis=1, meta=sample[:0]
        )
    return X.map_blocks(
        getattr(est, method), dtype=sample.dtype,
        chunks=(X.chunks[0], (sample.shape[1],)), meta=sample[:0],
    )  # fmt: skip


def lazy_score(est, X, y, sample_weight=None):
    """``score`` on Dask arrays, as a lazy 0-d Dask array.

    Accuracy (subset accuracy for indicator targets) for a classifier, R^2
    averaged uniformly over outputs for a regressor, with scikit-learn's
    rules for constant outputs (1 for a perfect fit, 0 otherwise).
    """
    import dask.array as da
    from sklearn.base import is_classifier

    y_pred = lazy_predict(est, "predict", as_dask_array(X))
    y = as_dask_array(y) if is_dask(y) else da.from_array(np.asarray(y))
    if sample_weight is not None and not is_dask(sample_weight):
        sample_weight = da.from_array(np.asarray(sample_weight))
    if is_classifier(est):
        correct = y == y_pred
        if correct.ndim == 2:
            correct = correct.all(axis=1)
        return da.average(correct, weights=sample_weight)
    if y.ndim == 1:
        y, y_pred = y[:, None], y_pred[:, None]
    weight = 1.0 if sample_weight is None else sample_weight[:, None]
    numerator = (weight * (y - y_pred) ** 2).sum(axis=0)
    mean = da.average(y, axis=0, weights=sample_weight)
    denominator = (weight * (y - mean) ** 2).sum(axis=0)
    explained = 1 - numerator / da.where(denominator == 0, 1, denominator)
    scores = da.where(numerator == 0, 1.0, da.where(denominator == 0, 0.0, explained))
    return scores.mean()
