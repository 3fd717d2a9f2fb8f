"""Divergence: an exploding run never leaves NaN weights behind silently.

``fit`` follows sklearn (``ValueError`` on non-finite weights, NaN validation
scores under early stopping). Beyond sklearn, a diverging ``partial_fit`` or
warm-started ``fit`` is rolled back: the model keeps its last finite weights,
predicts as before, and can keep training.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnn

NON_FINITE = "Solver produced non-finite parameter weights"
# (solver, learning_rate_init, learning_rate) settings that blow up.
EXPLODING = [("sgd", 1e6, "constant"), ("adam", 1e300, "constant")]
KINDS = ["clf", "reg"]
DTYPES = [np.float64, np.float32]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _data(kind, dtype=np.float64, n=40, scale=1.0):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 4).astype(dtype)
    y = np.arange(n) % 3 if kind == "clf" else rng.randn(n) * scale
    return X, y


def _est(kind, **params):
    cls = fastnn.MLPClassifier if kind == "clf" else fastnn.MLPRegressor
    params = {"hidden_layer_sizes": (8,), "random_state": 0, "batch_size": 10, **params}
    return cls(**params)


def _weights(est):
    return [w.copy() for w in est.coefs_ + est.intercepts_]


def _assert_equal_weights(a, b):
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver, lr, schedule", EXPLODING)
def test_fit_raises_sklearn_error(kind, dtype, solver, lr, schedule):
    est = _est(kind, solver=solver, learning_rate_init=lr, max_iter=10)
    with pytest.raises(ValueError, match=NON_FINITE):
        est.fit(*_data(kind, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_early_stopping_records_nan_and_keeps_best(dtype):
    # Only the regressor's score (R^2) can be NaN: a classifier scores labels.
    kind = "reg"
    X, y = _data(kind, dtype, n=60, scale=100.0)
    est = _est(kind, solver="sgd", learning_rate_init=1e6, max_iter=12)
    est.set_params(early_stopping=True, n_iter_no_change=50, batch_size="auto")
    est.fit(X, y)  # no error: the best (finite) weights are restored
    scores = np.asarray(est.validation_scores_, dtype=float)
    assert np.isnan(scores).any()
    finite = scores[np.isfinite(scores)]
    assert finite.size >= 1
    assert est.best_validation_score_ == finite.max()
    for w in est.coefs_ + est.intercepts_:
        assert np.isfinite(w).all()
    out = est.predict_proba(X) if kind == "clf" else est.predict(X)
    assert np.isfinite(out).all()


def _diverging_call(est, mode, kind, X, y):
    """One more training call on data/settings that blow the weights up."""
    # Adam's steps are bounded by its learning rate, so the blow-up must come
    # from overflowing activations: rows of +-max/2 overflow X @ W to +-inf,
    # and inf - inf turns the loss and the gradients into NaN.
    signs = np.where(np.random.RandomState(1).rand(*X.shape) < 0.5, -1.0, 1.0)
    X = (signs * (np.finfo(X.dtype).max / 2)).astype(X.dtype)
    if mode == "partial_fit":
        extra = {"classes": np.arange(3)} if kind == "clf" else {}
        est.partial_fit(X, y, **extra)
    else:
        est.fit(X, y)


def _train_step(est, mode, kind, X, y):
    if mode == "partial_fit":
        extra = {"classes": np.arange(3)} if kind == "clf" else {}
        return est.partial_fit(X, y, **extra)
    return est.fit(X, y)


CONTINUATIONS = [
    (mode, solver, schedule)
    for mode in ["partial_fit", "warm_start"]
    for solver, schedule in [
        ("sgd", "constant"),
        ("sgd", "invscaling"),
        ("adam", "constant"),
    ]
]


def _fitted(kind, mode, solver, schedule, dtype):
    est = _est(
        kind,
        solver=solver,
        learning_rate=schedule,
        learning_rate_init=0.01,
        max_iter=4,
        warm_start=mode == "warm_start",
    )
    X, y = _data(kind, dtype)
    _train_step(est, mode, kind, X, y)
    _train_step(est, mode, kind, X, y)
    return est, X, y


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, solver, schedule", CONTINUATIONS)
def test_diverging_call_keeps_last_finite_weights(kind, dtype, mode, solver, schedule):
    est, X, y = _fitted(kind, mode, solver, schedule, dtype)
    before = _weights(est)
    pred = est.predict_proba(X) if kind == "clf" else est.predict(X)
    with pytest.raises(ValueError, match=NON_FINITE):
        _diverging_call(est, mode, kind, X, y)
    _assert_equal_weights(_weights(est), before)
    after = est.predict_proba(X) if kind == "clf" else est.predict(X)
    np.testing.assert_array_equal(after, pred)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, solver, schedule", CONTINUATIONS)
def test_training_continues_after_diverging_call(kind, dtype, mode, solver, schedule):
    """Training on after a rolled-back call equals training on without it."""
    est, X, y = _fitted(kind, mode, solver, schedule, dtype)
    twin = copy.deepcopy(est)
    with pytest.raises(ValueError, match=NON_FINITE):
        _diverging_call(est, mode, kind, X, y)
    _train_step(est, mode, kind, X, y)
    _train_step(twin, mode, kind, X, y)
    _assert_equal_weights(_weights(est), _weights(twin))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode, solver, schedule", CONTINUATIONS)
def test_diverging_call_restores_counters(kind, mode, solver, schedule):
    """n_iter_, t_ and loss_curve_ are those from before the failed call."""
    est, X, y = _fitted(kind, mode, solver, schedule, np.float64)
    n_iter, t, curve = est.n_iter_, est.t_, list(est.loss_curve_)
    with pytest.raises(ValueError, match=NON_FINITE):
        _diverging_call(est, mode, kind, X, y)
    assert est.n_iter_ == n_iter
    assert est.t_ == t
    np.testing.assert_array_equal(est.loss_curve_, curve)
