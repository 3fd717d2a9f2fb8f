"""fastnn against scikit-learn itself: estimator checks and exact semantics."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(task):
    if task == "regression":
        X, y = make_regression(n_samples=103, n_features=7, random_state=0)
        return X, y / 100.0
    if task == "poisson":
        X, y = make_regression(n_samples=103, n_features=7, random_state=0)
        return X / 10.0, np.exp(y / 200.0)
    if task == "multioutput":
        X, y = make_regression(n_samples=103, n_features=7, n_targets=3, random_state=0)
        return X, y / 100.0
    n_classes = {"binary": 2, "multiclass": 4, "multilabel": 2}[task]
    X, y = make_classification(
        n_samples=103, n_features=7, n_informative=5, n_classes=n_classes,
        random_state=0,
    )  # fmt: skip
    if task == "multilabel":
        y = np.column_stack([y, X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    return X, y


def _pair(task, **params):
    if task in ("regression", "poisson", "multioutput"):
        loss = "poisson" if task == "poisson" else "squared_error"
        return MLPRegressor(loss=loss, **params), SkMLPRegressor(loss=loss, **params)
    return MLPClassifier(**params), SkMLPClassifier(**params)


SOLVERS = [
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.05),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05),
    dict(solver="adam", learning_rate_init=0.01),
]
TASKS = ["binary", "multiclass", "multilabel", "regression", "poisson", "multioutput"]


@pytest.mark.parametrize("solver", SOLVERS, ids=["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_one_epoch_matches_sklearn_weights(solver, task, activation):
    """Same initial weights, one epoch without shuffling: weights agree to 1e-10."""
    X, y = _data(task)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, size=X.shape[0])
    params = dict(
        hidden_layer_sizes=(9, 5), activation=activation, shuffle=False, max_iter=1,
        batch_size=20, alpha=1e-3, random_state=0, **solver,
    )  # fmt: skip
    ours, theirs = _pair(task, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=sw)
        theirs.fit(X, y, sample_weight=sw)
        # a second epoch through partial_fit continues the optimizer state
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_shuffled_adaptive_early_stopping_matches_sklearn(task):
    """Shuffling, the validation split and early stopping follow sklearn exactly."""
    X, y = _data(task)
    params = dict(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
        learning_rate_init=0.05, max_iter=30, random_state=3, n_iter_no_change=3,
        early_stopping=task != "multiclass", batch_size=16,
    )  # fmt: skip
    ours, theirs = _pair(task, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if params["early_stopping"]:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lbfgs_matches_sklearn(task):
    X, y = _data(task)
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=15, random_state=0)
    ours, theirs = _pair(task, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_invscaling_schedule_matches_sklearn():
    X, y = _data("regression")
    params = dict(
        hidden_layer_sizes=(5,), solver="sgd", learning_rate="invscaling",
        power_t=0.3, learning_rate_init=0.05, max_iter=4, random_state=0,
    )  # fmt: skip
    ours, theirs = _pair("regression", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


# fastnn's own parameters, after scikit-learn's, with defaults that keep
# scikit-learn's behaviour.
EXTRA_PARAMS = {
    MLPClassifier: {"class_weight": None, "scoring": None, "dropout": 0.0},
    MLPRegressor: {"scoring": None, "dropout": 0.0},
}


def test_constructor_signature_matches_sklearn():
    import inspect

    for ours, theirs in [
        (MLPClassifier, SkMLPClassifier),
        (MLPRegressor, SkMLPRegressor),
    ]:
        a = inspect.signature(ours.__init__).parameters
        b = inspect.signature(theirs.__init__).parameters
        assert list(a)[: len(b)] == list(b)
        defaults = {k: v.default for k, v in a.items()}
        assert {k: defaults[k] for k in b} == {k: v.default for k, v in b.items()}
        extra = {k: v for k, v in defaults.items() if k not in b}
        assert extra == EXTRA_PARAMS[ours]
        assert all(a[k].kind is inspect.Parameter.KEYWORD_ONLY for k in extra)


def test_epoch_shuffle_is_sklearns_shuffle():
    """The fast per-epoch shuffle draws sklearn's permutations, call by call."""
    from sklearn.utils import shuffle

    from fastnn._mlp import _shuffled

    ours, theirs = np.random.RandomState(7), np.random.RandomState(7)
    idx_ours = idx_theirs = np.arange(3, 103, dtype=np.int64)[::-1].copy()
    for _ in range(5):
        idx_ours = _shuffled(idx_ours, ours)
        idx_theirs = shuffle(idx_theirs, random_state=theirs)
        np.testing.assert_array_equal(idx_ours, idx_theirs)
