"""Move fitted networks between fastnn, scikit-learn and ONNX.

fastnn's estimators share scikit-learn's constructor parameters, fitted
attributes and weight layout, so converting in either direction is a matter of
copying parameters and weights:

* :func:`to_sklearn` turns a fitted fastnn estimator into a fitted
  :class:`sklearn.neural_network.MLPClassifier` or
  :class:`~sklearn.neural_network.MLPRegressor` that predicts the same values.
* :func:`from_sklearn` does the reverse; the result predicts like the source and
  can keep training with ``warm_start=True`` or ``partial_fit``.
* :func:`to_onnx` exports through skl2onnx (``pip install "fastnn[onnx]"``).

Optimizer state (Adam moments, SGD velocities) is not carried across: training
that continues after a conversion starts with a fresh optimizer, exactly as
scikit-learn does for ``warm_start=True`` ``fit``. The early-stopping
bookkeeping (the count of epochs without improvement, the best score or loss)
is carried, so that continued training stops where the source would have.

fastnn-only parameters (``class_weight``, ``scoring``, ``dropout``) have no
place in scikit-learn's estimators and are left out by :func:`to_sklearn`; the
weights they helped to train are ordinary weights and convert unchanged.
"""

import copy

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

__all__ = ["from_sklearn", "to_onnx", "to_sklearn"]

# Hidden-layer activations that scikit-learn's MLPs implement.
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

# Fitted attributes shared by fastnn and scikit-learn, copied when present.
_FITTED_ATTRIBUTES = (
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "n_features_in_",
    "feature_names_in_",
    "classes_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "t_",
    "n_iter_",
)

_ONNX_INSTALL_HINT = 'pip install "fastnn[onnx]"'


def _sklearn_class(est):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return MLPClassifier if is_classifier(est) else MLPRegressor


def _shared_params(params, target_cls):
    """Keep the entries of ``params`` that ``target_cls`` accepts."""
    accepted = target_cls().get_params(deep=False)
    return {name: value for name, value in params.items() if name in accepted}


def _copy_fitted_state(source, target):
    """Copy the fitted attributes (not the weights) from ``source`` to ``target``."""
    for name in _FITTED_ATTRIBUTES:
        if hasattr(source, name):
            setattr(target, name, copy.deepcopy(getattr(source, name)))
    if hasattr(source, "_label_binarizer"):
        target._label_binarizer = copy.deepcopy(source._label_binarizer)


def to_sklearn(est):
    """Convert a fitted fastnn estimator into the scikit-learn equivalent.

    Parameters
    ----------
    est : fastnn.MLPClassifier or fastnn.MLPRegressor
        A fitted estimator whose hidden activation is one of scikit-learn's
        (``"identity"``, ``"logistic"``, ``"tanh"``, ``"relu"``).

    Returns
    -------
    sk_est : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted estimator with the same parameters and copies of the weights:
        ``coefs_[i]`` of shape (n_units[i], n_units[i + 1]) and
        ``intercepts_[i]`` of shape (n_units[i + 1],), in the dtype fastnn
        trained in. Its ``predict`` and ``predict_proba`` return what
        ``est``'s do, up to floating-point rounding.

    Notes
    -----
    scikit-learn's estimator cannot carry fastnn's ``class_weight``,
    ``scoring`` and ``dropout`` parameters, so ``sk_est.get_params()`` leaves
    them out; neither are the validation data given to ``fit`` (``X_val``,
    ``y_val``, ``sample_weight_val``) nor ``validation_loss_curve_`` carried.
    A model trained with any of them still converts: class weights, the
    early-stopping score and dropout only shaped training, and the trained
    weights are ordinary weights (dropout is off at prediction time), so
    ``sk_est`` predicts identically to ``est``. Training ``sk_est`` further
    runs without them.

    Raises
    ------
    ValueError
        If ``est``'s activation has no scikit-learn counterpart.
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    """
    check_is_fitted(est)
    if est.activation not in SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"Cannot convert an estimator with activation={est.activation!r} to "
            "scikit-learn, which only implements the activations "
            f"{', '.join(map(repr, SKLEARN_ACTIVATIONS))}."
        )
    sk_cls = _sklearn_class(est)
    sk_est = sk_cls(**_shared_params(est.get_params(deep=False), sk_cls))
    sk_est.coefs_ = [np.array(c, copy=True) for c in est.coefs_]
    sk_est.intercepts_ = [np.array(b, copy=True) for b in est.intercepts_]
    _copy_fitted_state(est, sk_est)
    # State scikit-learn's own training loop expects on a fitted estimator, so
    # that warm_start=True fit and partial_fit continue from these weights.
    sk_est._best_coefs = [c.copy() for c in sk_est.coefs_]
    sk_est._best_intercepts = [b.copy() for b in sk_est.intercepts_]
    sk_est._no_improvement_count = getattr(est, "_no_improvement_count", 0)
    return sk_est


def _init_training_state(est, sk_est):
    """Give ``est`` the training bookkeeping of ``sk_est`` that fastnn needs.

    These are the attributes that fastnn's ``_initialize`` sets for the
    stochastic solvers besides the shared fitted attributes, so that
    ``partial_fit`` and ``warm_start=True`` ``fit`` continue as scikit-learn's
    would: the count of epochs without improvement, the best weights (the live
    ones, as after an early-stopping fit) and a validation loss curve aligned
    with ``validation_scores_`` (NaN for the epochs scikit-learn trained, whose
    validation loss it does not record).
    """
    if getattr(sk_est, "loss_curve_", None) is None:
        return  # L-BFGS: no epochs, nothing to continue from.
    est._no_improvement_count = getattr(sk_est, "_no_improvement_count", 0)
    est._best_params = est._params
    scores = getattr(sk_est, "validation_scores_", None)
    est.validation_loss_curve_ = None if scores is None else [np.nan] * len(scores)


def from_sklearn(sk_est, cls=None):
    """Convert a fitted scikit-learn MLP into a fastnn estimator.

    Parameters
    ----------
    sk_est : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted scikit-learn estimator.
    cls : type, default=None
        The fastnn class to build. ``None`` picks :class:`fastnn.MLPClassifier`
        for a classifier and :class:`fastnn.MLPRegressor` for a regressor.

    Returns
    -------
    est : fastnn.MLPClassifier or fastnn.MLPRegressor
        A fitted estimator with the same parameters and weights (``coefs_[i]``
        of shape (n_units[i], n_units[i + 1]), ``intercepts_[i]`` of shape
        (n_units[i + 1],), dtype kept). It predicts like ``sk_est`` and can
        continue training with ``warm_start=True`` ``fit`` or ``partial_fit``.

    Raises
    ------
    ValueError
        If ``sk_est`` is not a scikit-learn MLP, or if ``cls`` is a regressor
        for a classifier (or the reverse).
    sklearn.exceptions.NotFittedError
        If ``sk_est`` is not fitted.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if not isinstance(sk_est, (MLPClassifier, MLPRegressor)):
        raise ValueError(
            "from_sklearn expects a sklearn.neural_network.MLPClassifier or "
            f"MLPRegressor, got {type(sk_est).__name__}."
        )
    check_is_fitted(sk_est)
    if cls is None:
        import fastnn

        cls = fastnn.MLPClassifier if is_classifier(sk_est) else fastnn.MLPRegressor
    kind = "classifier" if is_classifier(sk_est) else "regressor"
    if is_classifier(cls()) != is_classifier(sk_est):
        raise ValueError(
            f"Cannot build a {cls.__name__} from a scikit-learn {kind} "
            f"({type(sk_est).__name__})."
        )
    est = cls(**_shared_params(sk_est.get_params(deep=False), cls))
    _copy_fitted_state(sk_est, est)
    est._set_weights(
        [np.array(c, copy=True) for c in sk_est.coefs_],
        [np.array(b, copy=True) for b in sk_est.intercepts_],
    )
    _init_training_state(est, sk_est)
    return est


class SklearnConversionMixin:
    """``to_sklearn`` and ``from_sklearn`` as methods of fastnn's estimators."""

    def to_sklearn(self):
        """Return a fitted scikit-learn estimator with the same weights.

        Returns
        -------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            Predicts as this estimator does.
        """
        return to_sklearn(self)

    @classmethod
    def from_sklearn(cls, estimator):
        """Build a fastnn estimator from a fitted scikit-learn MLP.

        Parameters
        ----------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted scikit-learn multi-layer perceptron.

        Returns
        -------
        estimator : MLPClassifier or MLPRegressor
            A fitted fastnn estimator with the same weights.
        """
        return from_sklearn(estimator, cls=cls)


def _import_skl2onnx():
    try:
        import skl2onnx
    except ImportError as exc:
        raise ImportError(
            "fastnn.to_onnx needs skl2onnx (and onnxruntime to run the result); "
            f"install them with: {_ONNX_INSTALL_HINT}"
        ) from exc
    return skl2onnx


def _onnx_sample(est, X_sample):
    """Dense float sample whose dtype sets the ONNX input type."""
    if hasattr(X_sample, "toarray"):
        X_sample = X_sample.toarray()
    X = np.asarray(X_sample)
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X_sample must have shape (n_samples, {est.n_features_in_}), got "
            f"{X.shape}."
        )
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X[:1]


def _fix_regressor_graph(onx, n_outputs, exp_output):
    """Give skl2onnx's MLPRegressor graph the right output width and activation.

    skl2onnx reshapes every regressor output to (n_samples, 1), which scrambles
    multi-output predictions, and has no node for the ``"exp"`` output of
    ``loss="poisson"`` (the caller converts with an identity output instead).
    The graph ends in ``... -> Reshape -> output``; this rewrites the Reshape
    target to (-1, n_outputs) and, if ``exp_output``, puts an ``Exp`` node in
    front of the Reshape.
    """
    from onnx import helper, numpy_helper

    graph = onx.graph
    producers = {out: node for node in graph.node for out in node.output}
    reshape = producers[graph.output[0].name]
    if reshape.op_type != "Reshape":
        raise RuntimeError("Unexpected graph layout from skl2onnx's MLP converter.")
    for init in graph.initializer:
        if init.name == reshape.input[1]:
            shape = np.array([-1, n_outputs], dtype=np.int64)
            init.CopyFrom(numpy_helper.from_array(shape, init.name))
    dims = graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2:
        dims[1].dim_value = n_outputs
    if exp_output:
        exp_name = "fastnn_exp_output"
        exp_node = helper.make_node(
            "Exp", [reshape.input[0]], [exp_name], name=exp_name
        )
        reshape.input[0] = exp_name
        graph.node.insert(list(graph.node).index(reshape), exp_node)


def to_onnx(est, X_sample, **options):
    """Export a fitted fastnn estimator to ONNX through skl2onnx.

    The estimator is converted with :func:`to_sklearn` and handed to
    :func:`skl2onnx.to_onnx`. Needs ``pip install "fastnn[onnx]"``.

    Parameters
    ----------
    est : fastnn.MLPClassifier or fastnn.MLPRegressor
        A fitted estimator with one of scikit-learn's activations. Multilabel
        classifiers are not supported by skl2onnx's MLP converter.
    X_sample : array-like of shape (n_samples, n_features)
        Example input; only its dtype and width are used. float32 gives a
        ``tensor(float)`` input named ``"X"``, float64 a ``tensor(double)`` one
        (other dtypes are exported as float64).
    **options
        Passed to :func:`skl2onnx.to_onnx`, e.g. ``target_opset``. For a
        classifier ``options`` defaults to ``{"zipmap": False}``, so the outputs
        are ``label`` of shape (n_samples,) and ``probabilities`` of shape
        (n_samples, n_classes) as plain tensors.

    Returns
    -------
    onx : onnx.ModelProto
        The model. A regressor has one output, ``variable``, of shape
        (n_samples, n_outputs).

    Raises
    ------
    ImportError
        If skl2onnx is not installed.
    ValueError
        If the activation has no scikit-learn counterpart, the classifier is
        multilabel, or ``X_sample`` has the wrong number of columns.
    """
    sk_est = to_sklearn(est)
    X = _onnx_sample(est, X_sample)
    multilabel = is_classifier(sk_est) and sk_est._label_binarizer.y_type_.startswith(
        "multilabel"
    )
    if multilabel:
        raise ValueError(
            "ONNX export of multilabel classifiers is not supported: "
            "skl2onnx's MLPClassifier converter handles binary and "
            "multiclass targets only."
        )
    skl2onnx = _import_skl2onnx()
    if is_classifier(sk_est):
        options.setdefault("options", {"zipmap": False})
        return skl2onnx.to_onnx(sk_est, X, **options)
    exp_output = sk_est.out_activation_ == "exp"
    if exp_output:
        sk_est.out_activation_ = "identity"
    onx = skl2onnx.to_onnx(sk_est, X, **options)
    _fix_regressor_graph(onx, sk_est.n_outputs_, exp_output)
    return onx
