"""Targeted parity cases: the validation split, saturated losses, warm starts.

Each test pins one behaviour of scikit-learn's MLP that fastnn follows to the
letter, with scikit-learn itself as the judge.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.neural_network._base import ACTIVATIONS, LOSS_FUNCTIONS

from fastnn import MLPClassifier, MLPRegressor
from fastnn._kernels import losses as fl


def _classification(target):
    n_classes = 2 if target == "binary" else 4
    X, y = make_classification(
        n_samples=120, n_features=6, n_informative=4, n_classes=n_classes,
        random_state=0,
    )  # fmt: skip
    if target == "multilabel":
        y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
    return X, y


def _fit_both(X, y, **params):
    ours, theirs = MLPClassifier(**params), SkMLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    return ours, theirs


@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_early_stopping_split_and_stop_match_sklearn(target):
    X, y = _classification(target)
    ours, theirs = _fit_both(
        X, y, hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=3,
        validation_fraction=0.25, learning_rate_init=0.01, max_iter=60,
        random_state=5,
    )  # fmt: skip
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_single_member_class_split_error_matches_sklearn(target):
    X, y = _classification(target)
    if target == "binary":
        y = np.zeros_like(y)
        y[0] = 1  # the positive class has one member
    else:
        y = y.copy()
        y[0] = y.max() + 1  # a fifth class, with one member
    errors = []
    for cls in (MLPClassifier, SkMLPClassifier):
        est = cls(early_stopping=True, max_iter=2, random_state=0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y)
        except ValueError as exc:
            errors.append(str(exc))
        else:
            errors.append(None)
    assert errors[0] == errors[1]
    # scikit-learn stratifies binary targets only, on the binarized column.
    assert (errors[0] is None) == (target == "multiclass")


def _saturated_logits(dtype, k):
    z = np.array([-800.0, -60.0, -37.0, -20.0, -5.0, 0.0, 5.0, 20.0, 37.0, 60.0])
    rng = np.random.default_rng(0)
    Z = np.column_stack([rng.permutation(z) for _ in range(k)]).astype(dtype)
    return Z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "code,activation,loss,k",
    [
        (fl.BINARY_LOG_LOSS, "logistic", "binary_log_loss", 1),
        (fl.BINARY_LOG_LOSS, "logistic", "binary_log_loss", 3),
        (fl.SOFTMAX_LOG_LOSS, "softmax", "log_loss", 4),
        (fl.SQUARED_ERROR, "identity", "squared_error", 2),
        (fl.POISSON, "exp", "poisson", 2),
    ],
)
def test_saturated_loss_values_are_sklearns(code, activation, loss, k, weighted, dtype):
    Z = _saturated_logits(dtype, k)
    n = Z.shape[0]
    rng = np.random.default_rng(1)
    if loss == "log_loss":
        Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    elif loss == "poisson":
        Y = rng.poisson(2.0, size=(n, k)).astype(dtype) + 1
    else:
        Y = rng.integers(0, 2, size=(n, k)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    A_sk = Z.copy()
    with np.errstate(over="ignore", divide="ignore"):
        ACTIVATIONS[activation](A_sk)
        expected = LOSS_FUNCTIONS[loss](Y, A_sk, sw)
    rows = np.arange(n, dtype=np.int64)
    A, D = np.empty_like(Z), np.empty_like(Z)
    sw_arg = np.empty(0, dtype) if sw is None else sw
    sw_sum = float(n) if sw is None else float(sw.astype(np.float64).sum())
    eps = float(np.finfo(dtype).eps)
    ours = fl.output_loss_and_delta(Z.copy(), A, D, Y, rows, sw_arg, code, eps, sw_sum)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours, expected, rtol=rtol)


def test_lbfgs_multilabel_with_saturated_logits_matches_sklearn():
    X, y = _classification("multilabel")
    ours, theirs = _fit_both(
        10 * X, y, hidden_layer_sizes=(5,), activation="identity", solver="lbfgs",
        max_iter=40, random_state=0,
    )  # fmt: skip
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_warm_start_after_early_stopping_ends_like_sklearn():
    # scikit-learn's restored best weights are its live weights afterwards: a
    # warm-started fit that never beats the old best score ends on its own
    # last epoch's weights, not on the old best ones.
    X, y = _classification("binary")
    params = dict(
        hidden_layer_sizes=(6,), early_stopping=True, warm_start=True,
        learning_rate_init=0.3, max_iter=8, n_iter_no_change=2, random_state=1,
    )  # fmt: skip
    ours, theirs = MLPClassifier(**params), SkMLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.fit(X, y)
            best = est.best_validation_score_
            est.fit(X[::-1], y[::-1])
    assert theirs.best_validation_score_ == best  # no new best in the refit
    assert ours.best_validation_score_ == pytest.approx(best)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_regressor_partial_fit_with_lbfgs_is_sklearns():
    # scikit-learn's MLPRegressor offers partial_fit for every solver; with
    # lbfgs each call is an L-BFGS fit from the current weights.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=40)
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0)
    ours, theirs = MLPRegressor(**params), SkMLPRegressor(**params)
    assert hasattr(ours, "partial_fit") and hasattr(theirs, "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            ours.partial_fit(X, y)
            theirs.partial_fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
