"""Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor.

This module holds the scikit-learn side only: parameter validation, label
encoding, the train/validation split, learning-rate schedules, early stopping,
verbose output and ``loss_curve_``. The numbers come from :mod:`fastnn._engine`,
the only caller of the Numba kernels: one engine call trains a whole epoch,
evaluates the full-batch loss and gradient for L-BFGS, or predicts. The Python
loop here runs once per epoch.
"""

import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils._unique import attach_unique
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    validate_data,
)

from . import _engine as engine
from ._callbacks import (
    CallbackMixin,
    CallbackSupportMixin,
    LbfgsCallback,
    NoCallbacks,
)
from ._dask import (
    STOCHASTIC_MESSAGE,
    DaskObjective,
    check_dask_targets,
    check_dask_X,
    dask_client,
    is_dask,
    lazy_predict,
    lazy_score,
)
from ._inputs import common_fit_input
from ._metrics import fast_accuracy, fast_r2
from ._prediction import PredictionMixin, label_width, labels_of
from ._progress import EpochReporter
from ._stopping import EarlyStoppingMixin
from ._validation import (
    check_random_state,
    check_validation_data,
    class_sample_weight,
    dropout_rates,
    params_satisfy_constraints,
)
from ._weights import FlatWeightsMixin, initial_weights
from .interop import SklearnConversionMixin

# The constructor parameters that the engine reads (see engine.EpochRunner).
_ENGINE_PARAMS = (
    "activation", "alpha", "solver", "momentum", "nesterovs_momentum",
    "beta_1", "beta_2", "epsilon",
)  # fmt: skip
_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's 'auto' batch size: min(200, n_samples).
_AUTO_BATCH_SIZE = 200
# Constructor parameters shared by both estimators, validated as sklearn does.
_PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": [
        "array-like",
        Interval(Integral, 1, None, closed="left"),
    ],
    "activation": [StrOptions(set(engine.ACTIVATION_CODES))],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [
        StrOptions({"auto"}),
        Interval(Integral, 1, None, closed="left"),
    ],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [
        Interval(Integral, 1, None, closed="left"),
        Options(Real, {np.inf}),
    ],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "scoring": [str, callable, None],
    "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
}


def _shuffled(indices, random_state):
    """``sklearn.utils.shuffle(indices, random_state=random_state)``, faster.

    The same permutation from the same random stream as scikit-learn's
    ``shuffle`` (so fits stay identical to sklearn's), without its input
    validation, which would run once per epoch.
    """
    permutation = np.arange(indices.shape[0])
    random_state.shuffle(permutation)
    return indices[permutation]


class BaseMLP(
    PredictionMixin,
    EarlyStoppingMixin,
    CallbackMixin,
    CallbackSupportMixin,
    SklearnConversionMixin,
    FlatWeightsMixin,
    BaseEstimator,
    ABC,
):
    """Shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor`.

    Do not use directly. Parameters and attributes are those of scikit-learn's
    multi-layer perceptrons; see the concrete classes.
    """

    _parameter_constraints: dict = _PARAMETER_CONSTRAINTS

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        scoring,
        dropout,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.scoring = scoring
        self.dropout = dropout

    def _validate_params(self):
        """scikit-learn's parameter validation, its accepting path made cheap.

        Each parameter is checked by scikit-learn's own constraint objects,
        built once per class (see :func:`params_satisfy_constraints`); when
        one fails, scikit-learn's validation runs and raises its error.
        """
        if not params_satisfy_constraints(self):
            super()._validate_params()

    def _hidden_sizes(self):
        """``hidden_layer_sizes`` as a list, validated as sklearn does."""
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if all(type(size) is int for size in sizes):
            positive = all(size > 0 for size in sizes)
        else:
            positive = not np.any(np.array(sizes) <= 0)
        if not positive:
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return sizes

    def _fit(self, X, y, sample_weight=None, incremental=False, validation=None):
        self._forget_predictor()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        if is_dask(X):
            if self.solver in _STOCHASTIC_SOLVERS:
                raise ValueError(
                    STOCHASTIC_MESSAGE.format(
                        cls=type(self).__name__, solver=self.solver
                    )
                )
            client = dask_client()
            if client is not None:
                return self._fit_dask(client, X, y, sample_weight, hidden, first_pass)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        sample_weight = self._class_weighted(y, sample_weight, X, incremental)
        validation = check_validation_data(self, *(validation or (None,) * 3), X.dtype)
        Y = np.ascontiguousarray(y, dtype=X.dtype)
        layer_units = [X.shape[1]] + hidden + [Y.shape[1]]
        if first_pass:
            self._initialize(Y, layer_units, X.dtype)
        else:
            self._random_state = check_random_state(self.random_state)
            self._check_continuation(layer_units, X.dtype)
        self._prepare_dropout(len(hidden), first_pass)
        saved = None if first_pass else self._snapshot()
        callbacks = self._fit_callbacks(X, y, sample_weight, incremental)
        with engine.blas_limit(layer_units):
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(
                    X, y, Y, sample_weight, incremental, validation, callbacks
                )
            else:
                self._fit_lbfgs(X, Y, sample_weight, callbacks)
        self._check_finite_weights(saved)
        callbacks.close()
        return self

    def _check_finite_weights(self, saved):
        """Raise (rolling back to ``saved``) when the weights are not finite."""
        if not engine.all_finite(self._params):
            if saved is not None:
                self._restore(saved)
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )

    def _fit_dask(self, client, X, y, sample_weight, hidden, first_pass):
        """L-BFGS on Dask collections, the blocks staying on the workers.

        See :mod:`fastnn._dask`; everything else is the in-memory fit's.
        """
        if getattr(self, "class_weight", None) is not None:
            raise ValueError(
                "class_weight is not supported on Dask collections; give the "
                "class weights as sample_weight."
            )
        X = check_dask_X(self, X, reset=first_pass)
        data = check_dask_targets(
            self, X, y, sample_weight, is_classifier(self), first_pass
        )
        layer_units = [data.n_features] + hidden + [data.n_outputs]
        if first_pass:
            self._initialize(np.empty((0, data.n_outputs)), layer_units, data.dtype)
        else:
            self._random_state = check_random_state(self.random_state)
            self._check_continuation(layer_units, data.dtype)
        self._prepare_dropout(len(hidden), first_pass)
        saved = None if first_pass else self._snapshot()
        objective = DaskObjective(
            client, data, self._params, layer_units, self._engine_model()
        )
        try:
            self._fit_lbfgs(None, None, None, NoCallbacks(), objective)
        finally:
            objective.close()
        self._check_finite_weights(saved)
        return self

    def _prepare_dropout(self, n_hidden, first_pass):
        """Check ``dropout``; seed the mask generator when a rate is nonzero.

        The seed is drawn from ``random_state`` after the initial weights,
        and only when dropout is on, so that ``dropout=0`` draws nothing.
        """
        self._dropout_rates = dropout_rates(self.dropout, n_hidden, self.solver)
        if first_pass or not hasattr(self, "_dropout_state"):
            self._dropout_state = None
        if any(self._dropout_rates) and self._dropout_state is None:
            seed = self._random_state.randint(np.iinfo(np.int64).max)
            self._dropout_state = np.array([seed], dtype=np.uint64)

    def _initialize(self, Y, layer_units, dtype):
        """Seed ``_random_state``, draw the initial weights, reset the rest."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self._random_state, params = initial_weights(
            self.random_state, layer_units, self.activation, dtype
        )
        self._bind_params(params, layer_units)
        self._best_params = params.copy()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _batch_size(self, n_samples):
        """sklearn's batch size rule: 'auto' is min(200, n), clipped to [1, n]."""
        if self.batch_size == "auto":
            return min(_AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than "
                "sample size. It is going to be clipped"
            )
        return int(min(max(self.batch_size, 1), n_samples))

    def _engine_model(self, **extra):
        """The engine's view of the model: its parameters and output activation.

        The parameters are read by name: ``get_params`` would inspect
        ``__init__``'s signature at every fit.
        """
        model = {name: getattr(self, name) for name in _ENGINE_PARAMS}
        return {**model, "out_activation": self.out_activation_, **extra}

    def _make_optimizer(self, incremental):
        """(Re)create the optimizer state as sklearn does at each fit."""
        if incremental and hasattr(self, "_optimizer_state"):
            return
        state, step = engine.new_optimizer_state(self._params)
        self._optimizer_state, self._optimizer_step = state, step
        self._learning_rate = float(self.learning_rate_init)

    def _fit_stochastic(
        self, X, y, Y, sample_weight, incremental, validation, callbacks
    ):
        """Mini-batch training, one engine call per epoch.

        ``validation`` is the validation data given to ``fit``; without it,
        early stopping holds out a split of the training data.
        """
        self._make_optimizer(incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if validation is None:
            train_idx, val_idx = self._split_validation(y)
            if val_idx is not None:
                validation = self._validation_data(X, y, Y, sample_weight, val_idx)
        else:
            train_idx = np.arange(X.shape[0])
        self._scorer = self._validation_scorer() if validation else None
        model = self._engine_model(
            batch_size=self._batch_size(train_idx.shape[0]),
            dropout_rates=self._dropout_rates,
            dropout_state=self._dropout_state,
        )
        runner = engine.EpochRunner(
            X, Y, sample_weight, self._params, self._layer_units(), model
        )
        self._epoch_loop(train_idx, validation, runner, incremental, callbacks)

    def _epoch_loop(self, train_idx, validation, runner, incremental, callbacks):
        """The Python loop over epochs: schedules, stopping, reporting."""
        sample_idx = train_idx
        reporter = EpochReporter(self.verbose, 1 if incremental else self.max_iter)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                callbacks.begin_iteration("epoch")
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                order = np.ascontiguousarray(sample_idx, dtype=np.int64)
                self.loss_ = runner.run_epoch(
                    order, self._optimizer_state, self._optimizer_step,
                    self._learning_rate,
                )  # fmt: skip
                self.n_iter_ += 1
                self.t_ += train_idx.shape[0]
                self.loss_curve_.append(self.loss_)
                score = self._update_no_improvement_count(validation)
                reporter.epoch(self.n_iter_, self.loss_, score)
                self._end_of_epoch_schedule()
                if callbacks.end_iteration():
                    break
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._trigger_stopping(validation is not None, reporter):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet."
                        % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            reporter.close()
        if validation is not None:
            self._params[:] = self._best_params
            # As in scikit-learn, whose coefs_ then are its best copies: the
            # best weights are the live ones until a later fit (warm start)
            # scores better, so that fit ends on its own last weights.
            self._best_params = self._params

    def _end_of_epoch_schedule(self):
        """sklearn's 'invscaling' update of the SGD learning rate."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._learning_rate = float(self.learning_rate_init) / (
                (self.t_ + 1) ** self.power_t
            )

    def _fit_lbfgs(self, X, Y, sample_weight, callbacks, objective=None):
        """Full-batch L-BFGS-B over the flat buffer with scipy.

        ``objective`` (a :class:`fastnn._dask.DaskObjective`) replaces the
        in-memory one over X.
        """
        # Imported here: scipy.optimize takes a third of fastnn's import time.
        from scipy.optimize import minimize

        if objective is None:
            objective = engine.FullBatchObjective(
                X, Y, sample_weight, self._params, self._layer_units(),
                self._engine_model(),
            )  # fmt: skip

        def loss_and_grad(packed):
            self._params[:] = packed
            return objective.loss_and_gradient()

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        options.update(_lbfgs_print_option(iprint))
        hooks = None
        if not isinstance(callbacks, NoCallbacks):
            hooks = LbfgsCallback(callbacks, self._params)
        result = minimize(
            loss_and_grad, self._params.astype(np.float64), method="L-BFGS-B",
            jac=True, callback=hooks, options=options,
        )  # fmt: skip
        self.n_iter_ = _check_lbfgs_result(result, self.max_iter)
        self.loss_ = float(result.fun)
        self._params[:] = result.x

    def _predict(self, X, check_input=True):
        return self._output_to_prediction(self._forward_pass_fast(X, check_input))

    def _score(self, X, y, sample_weight=None):
        y_pred = self._predict(X, check_input=False)
        return self._score_prediction(y, y_pred, sample_weight)

    def _score_prediction(self, y, y_pred, sample_weight):
        """Accuracy or R^2, or NaN when the network outputs non-finite values."""
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def _class_weighted(self, Y, sample_weight, X, incremental):
        """Sample weights with the class weights applied (classifiers only)."""
        return sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):  # fmt: skip
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 data trains in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
default=None
            Validation data for early stopping, used instead of a split of
            ``X``; needs ``early_stopping=True``, a stochastic solver and
            ``y_val``. In a Pipeline, ``Pipeline(..., transform_input=["X_val"])``
            transforms it as ``X`` is transformed.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Targets of ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        validation = (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, validation=validation)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _integer_labels(y):
    """A fitted LabelBinarizer and the binarized targets, for integer labels.

    For 1-D integer labels of at least two classes,
    ``LabelBinarizer().fit(y)`` finds ``type_of_target`` "binary" (two
    classes) or "multiclass", no sparse input, and ``unique_labels(y)``: the
    sorted distinct labels in y's dtype. When the labels are small
    non-negative integers, the engine finds them and the one-hot rows in one
    pass (:func:`fastnn._engine.integer_one_hot`). Returns None for any
    other targets, which go through ``fit`` and ``transform``.
    """
    if y.ndim != 1 or y.dtype.kind not in "iu" or y.shape[0] == 0:
        return None
    encoded = engine.integer_one_hot(y)
    if encoded is None:
        return None
    classes, Y = encoded
    lb = LabelBinarizer()
    lb.y_type_ = "multiclass" if classes.shape[0] > 2 else "binary"
    lb.sparse_input_ = False
    lb.classes_ = classes
    return lb, Y


def _lbfgs_print_option(iprint):
    """scipy's verbosity option for L-BFGS-B (renamed across versions)."""
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:  # pragma: no cover - older or newer sklearn
        return {"iprint": iprint}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


def _check_lbfgs_result(result, max_iter):
    """Warn like sklearn when L-BFGS stopped early; return the iterations."""
    try:
        from sklearn.utils.optimize import _check_optimize_result
    except ImportError:  # pragma: no cover - older or newer sklearn
        return min(result.nit, max_iter)
    return _check_optimize_result("lbfgs", result, max_iter)


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for scikit-learn's.

    Optimizes the log-loss with L-BFGS, SGD or Adam. Takes the same
    parameters, exposes the same fitted attributes and raises the same errors
    as :class:`sklearn.neural_network.MLPClassifier`; the training runs in
    Numba kernels, one call per epoch.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
'elu', 'gelu', 'silu', 'softplus'}, default='relu'
        Hidden-layer activation. The last five are fastnn additions.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimizer.
    alpha : float, default=0.0001
        Strength of the L2 penalty, scaled by the (weighted) batch size.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of the 'sgd' solver.
    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' and 'adam'.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle the samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the weight initialization, shuffling and validation split.
    tol : float, default=1e-4
        Tolerance of the optimization.
    verbose : bool or int, default=False
        Print progress; 2 or more also shows a progress bar.
    warm_start : bool, default=False
        Reuse the previous solution as the initialization.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum.
    early_stopping : bool, default=False
        Hold out a stratified validation set and stop when its score stalls.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
    class_weight : dict, list of dict or 'balanced', default=None
        Weights of the classes, multiplying ``sample_weight``, as in
        scikit-learn's other classifiers: ``{label: weight}``, one such dict
        per output for multilabel targets, or 'balanced' (inversely
        proportional to the class frequencies; not with ``partial_fit``).
        None weighs every class 1, as scikit-learn's MLP does.
    scoring : str, callable or None, default=None
        Validation score for early stopping: None for accuracy (scikit-learn's
        MLP), 'loss' for the validation loss (stored negated in
        ``validation_scores_``, so that higher is better), or any scorer name
        or callable ``scorer(estimator, X, y)``.
    dropout : float or array-like of shape (n_layers - 2,), default=0.0
        Inverted dropout rate of the hidden activations while training with
        'sgd' or 'adam': one rate for every hidden layer, or one per hidden
        layer, each in [0, 1). Prediction is unaffected. The masks come from
        ``random_state``. 0 (no dropout) is scikit-learn's MLP.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels.
    loss_ : float
        Loss after the last epoch or iteration.
    best_loss_ : float or None
        Minimum training loss (None with early stopping).
    loss_curve_ : list of float
        Loss of every epoch (stochastic solvers).
    validation_scores_ : list of float or None
        Validation score of every epoch (with early stopping).
    validation_loss_curve_ : list of float or None
        Validation data loss (no penalty term) of every epoch, whenever there
        is a validation set.
    best_validation_score_ : float or None
        Best validation accuracy (with early stopping).
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray of shape (units[i], units[i + 1])
        Weight matrices, views into one flat buffer.
    intercepts_ : list of ndarray of shape (units[i + 1],)
        Bias vectors, views into the same buffer.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X had string column names.
    n_iter_ : int
        Number of epochs or iterations run.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation: 'logistic' or 'softmax'.
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        scoring=None,
        dropout=0.0,
    ):
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            scoring=scoring,
            dropout=dropout,
        )

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _validate_input(self, X, y, incremental, reset):
        found = common_fit_input(self, X, y, reset, classifier=True)
        X, y = found or validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        first = not hasattr(self, "classes_") or not (self.warm_start or incremental)
        encoded = _integer_labels(y) if first else None
        if encoded is not None:
            self._label_binarizer, Y = encoded
            self.classes_ = self._label_binarizer.classes_
            return X, Y
        # One np.unique for the label checks below, instead of one per check.
        y = attach_unique(y)
        if first:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            self._check_known_classes(unique_labels(y))
        return X, self._binarize(y)

    def _binarize(self, y):
        """``LabelBinarizer.transform(y)`` as booleans, of labels known to fit.

        The labels were just checked against ``classes_``, so single-output
        targets are encoded by a search in the sorted classes instead of
        through ``transform``'s second pass of target checks; any label that
        the search does not find takes ``transform``'s path and its errors.
        """
        lb = self._label_binarizer
        classes = lb.classes_
        if lb.y_type_ not in ("binary", "multiclass") or y.ndim != 1:
            return lb.transform(y).astype(bool)
        if classes.dtype.kind not in "biuf" or len(classes) < 2:
            return lb.transform(y).astype(bool)
        index = np.searchsorted(classes, y)
        if np.any(index >= len(classes)) or np.any(classes[index] != y):
            return lb.transform(y).astype(bool)
        if len(classes) == 2:
            return (index == 1).reshape(-1, 1)
        Y = np.zeros((y.shape[0], len(classes)), dtype=bool)
        Y[np.arange(y.shape[0]), index] = True
        return Y

    def _check_known_classes(self, classes):
        """sklearn's checks of y's classes on warm starts and partial fits."""
        if self.warm_start:
            if set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same "
                    "classes as in the previous call to fit. Previously "
                    f"got {self.classes_}, `y` has {classes}"
                )
        elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise ValueError(
                "`y` has classes not in `self.classes_`. "
                f"`self.classes_` has {self.classes_}. 'y' has {classes}."
            )

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        The labels come from the output layer's values without normalising
        them where that gives the same labels (see
        :func:`fastnn._kernels.losses.output_labels`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        self._predictor()  # NotFittedError before anything else
        if is_dask(X):
            return lazy_predict(self, "predict", X)
        lb = self._label_binarizer
        n_labels = label_width(lb, self.n_outputs_)
        if n_labels:
            return labels_of(lb, self._run_predictor(X, n_labels))
        return self._predict(X)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on the given test data and labels.

        scikit-learn's ``accuracy_score`` of :meth:`predict` (subset accuracy
        for multilabel targets), computed without its per-call checks for
        plain targets (see :mod:`fastnn._metrics`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels for ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Mean accuracy of ``self.predict(X)`` w.r.t. ``y``.
        """
        if is_dask(X):
            return lazy_score(self, X, y, sample_weight)
        y_pred = self.predict(X)
        score = fast_accuracy(y, y_pred, sample_weight)
        if score is None:
            score = accuracy_score(y, y_pred, sample_weight=sample_weight)
        return score

    _score_function = staticmethod(accuracy_score)

    def _output_to_prediction(self, output):
        if self.n_outputs_ == 1:
            output = output.ravel()
        return self._label_binarizer.inverse_transform(output)

    def _encode_validation_targets(self, y_val, dtype):
        """``y_val`` checked against ``classes_``, and binarized."""
        multilabel = self._label_binarizer.y_type_ == "multilabel-indicator"
        y_val = check_array(y_val, ensure_2d=False, dtype=None)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        if not multilabel:
            classes = unique_labels(y_val)
            if len(np.setdiff1d(classes, self.classes_)):
                raise ValueError(
                    "`y_val` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y_val' has {classes}."
                )
        Y_val = self._label_binarizer.transform(y_val)
        return y_val, np.asarray(Y_val, dtype=dtype).reshape(y_val.shape[0], -1)

    def _class_weighted(self, Y, sample_weight, X, incremental):
        """Sample weights times the weights of the samples' classes."""
        if self.class_weight is None:
            return sample_weight
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                f"class_weight '{self.class_weight}' is not supported for "
                "partial_fit: the class frequencies of a stream are not known. "
                f"Use compute_class_weight('{self.class_weight}', classes=classes, "
                "y=y) on a large enough sample of the targets and pass the "
                "resulting weights as the class_weight parameter."
            )
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            target = Y.astype(np.int64)
        elif Y.shape[1] == 1:
            target = self.classes_[Y[:, 0].astype(np.intp)]
        else:
            target = self.classes_[Y.argmax(axis=1)]
        return class_sample_weight(
            self.class_weight, target, self.classes_, sample_weight, X
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            Log-probability of each class, ordered as in ``classes_``.
        """
        y_prob = self.predict_proba(X)
        if is_dask(X):
            return np.log(y_prob)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, ordered as in ``classes_``.
        """
        if is_dask(X):
            self._predictor()
            return lazy_predict(self, "predict_proba", X)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    Optimizes half the squared error (or half the Poisson deviance) with
    L-BFGS, SGD or Adam, with the parameters, attributes and messages of
    :class:`sklearn.neural_network.MLPRegressor`.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        Loss; 'poisson' uses an exp output activation.
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
'elu', 'gelu', 'silu', 'softplus'}, default='relu'
        Hidden-layer activation.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimizer.
    alpha : float, default=0.0001
        Strength of the L2 penalty.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of 'sgd'.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs or iterations.
    shuffle : bool, default=True
        Whether to shuffle samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization, shuffling and validation split.
    tol : float, default=1e-4
        Tolerance of the optimization.
    verbose : bool or int, default=False
        Print progress; 2 or more also shows a progress bar.
    warm_start : bool, default=False
        Reuse the previous solution as the initialization.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum.
    early_stopping : bool, default=False
        Hold out a validation set and stop when its R^2 stalls.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
    scoring : str, callable or None, default=None
        Validation score for early stopping: None for R^2, 'loss', or any
        scorer; see :class:`MLPClassifier`.
    dropout : float or array-like of shape (n_layers - 2,), default=0.0
        Inverted dropout of the hidden activations; see :class:`MLPClassifier`.

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_
        As in :class:`MLPClassifier`, with R^2 as the default validation score.
    validation_loss_curve_ : list of float or None
        As in :class:`MLPClassifier`.
    t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_
        As in :class:`MLPClassifier`.
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        'identity', or 'exp' for the Poisson loss.
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        scoring=None,
        dropout=0.0,
    ):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            scoring=scoring,
            dropout=dropout,
        )

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        found = common_fit_input(self, X, y, reset, classifier=False)
        X, y = found or validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        if is_dask(X):
            self._predictor()
            return lazy_predict(self, "predict", X)
        return self._predict(X)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination of the prediction.

        scikit-learn's ``r2_score`` of :meth:`predict`, averaged uniformly
        over outputs, computed without its per-call checks for plain float
        targets (see :mod:`fastnn._metrics`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values for ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)`` w.r.t. ``y``.
        """
        if is_dask(X):
            return lazy_score(self, X, y, sample_weight)
        y_pred = self.predict(X)
        score = fast_r2(y, y_pred, sample_weight)
        if score is None:
            score = r2_score(y, y_pred, sample_weight=sample_weight)
        return score

    _score_function = staticmethod(r2_score)

    def _output_to_prediction(self, output):
        return output.ravel() if output.shape[1] == 1 else output

    def _encode_validation_targets(self, y_val, dtype):
        """Numeric ``y_val``, and as a (n_val, n_outputs) array."""
        y_val = check_array(y_val, ensure_2d=False, dtype=dtype)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        return y_val, y_val.reshape(y_val.shape[0], -1)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        As in scikit-learn, the regressor offers ``partial_fit`` for every
        solver: with 'lbfgs' each call runs a full L-BFGS fit that starts
        from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
