"""scikit-learn's callback API on fastnn's estimators."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastnn import MLPClassifier, MLPRegressor

callback = pytest.importorskip("sklearn.callback")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _task(kind):
    if kind == "clf":
        X, y = load_digits(n_class=4, return_X_y=True)
        return MLPClassifier, X / 16.0, y
    X, y = make_regression(n_samples=150, n_features=6, noise=1.0, random_state=0)
    return MLPRegressor, X, y / y.std()


def _est(cls, solver, **extra):
    params = dict(hidden_layer_sizes=(12,), solver=solver, max_iter=6,
                  learning_rate_init=0.01, random_state=0)  # fmt: skip
    return cls(**{**params, **extra})


class Recorder:
    """A FitCallback that records every task and each epoch's fitted model."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []
        self.predictions = []

    def setup(self, estimator, context):
        self.events.append(("setup", None))

    def teardown(self, estimator, context):
        self.events.append(("teardown", None))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.events.append(("begin", context.task_name))

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None):
        self.events.append(("end", context.task_name))
        if context.task_name == "fit" or fitted_estimator is None:
            return False
        self.predictions.append(fitted_estimator.predict(X))
        n_done = sum(1 for e in self.events if e[0] == "end" and e[1] != "fit")
        return self.stop_after is not None and n_done >= self.stop_after


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_scoring_monitor_logs_every_epoch(kind, solver):
    cls, X, y = _task(kind)
    scoring = "accuracy" if kind == "clf" else "r2"
    monitor = callback.ScoringMonitor(scoring=scoring)
    est = _est(cls, solver).set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs()
    rows = log.data
    subtasks = [r for r in rows if r["task_name"] != "fit"]
    assert len(subtasks) == est.n_iter_
    final = [r for r in rows if r["task_name"] == "fit"]
    assert final[0][scoring] == pytest.approx(est.score(X, y))
    # the last iteration's model is the fitted model
    assert subtasks[-1][scoring] == pytest.approx(est.score(X, y))


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_progress_bar_runs_on_every_solver(kind, solver, capsys):
    pytest.importorskip("rich")
    cls, X, y = _task(kind)
    est = _est(cls, solver).set_callbacks(callback.ProgressBar()).fit(X, y)
    assert est.n_iter_ >= 1
    ref = _est(cls, solver).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_recorder_sees_every_epoch_and_its_model(solver):
    cls, X, y = _task("clf")
    rec = Recorder()
    est = _est(cls, solver).set_callbacks(rec).fit(X, y)
    name = "lbfgs-iter" if solver == "lbfgs" else "epoch"
    assert rec.events[:2] == [("setup", None), ("begin", "fit")]
    assert rec.events[-2:] == [("end", "fit"), ("teardown", None)]
    begins = [e for e in rec.events if e == ("begin", name)]
    ends = [e for e in rec.events if e == ("end", name)]
    assert len(begins) == len(ends) >= est.n_iter_
    assert len(rec.predictions) == est.n_iter_
    np.testing.assert_array_equal(rec.predictions[-1], est.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_callback_stops_the_fit_with_a_usable_model(solver):
    cls, X, y = _task("clf")
    est = _est(cls, solver, max_iter=20).set_callbacks(Recorder(stop_after=3))
    est.fit(X, y)
    assert est.n_iter_ == 3
    assert est.score(X, y) > 0.3
    ref = _est(cls, solver, max_iter=3).fit(X, y)
    if solver != "lbfgs":  # the same three epochs
        np.testing.assert_array_equal(est.coefs_[0], ref.coefs_[0])


def test_callbacks_leave_results_unchanged():
    cls, X, y = _task("clf")
    a = _est(cls, "adam").set_callbacks(Recorder()).fit(X, y)
    b = _est(cls, "adam").fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_


class PropagatedRecorder(Recorder):
    """A Recorder that meta-estimators hand down to their sub-estimators."""

    max_propagation_depth = None


def test_callback_propagated_from_grid_search():
    cls, X, y = _task("clf")
    rec = PropagatedRecorder()
    assert isinstance(rec, callback.AutoPropagatedCallback)
    search = GridSearchCV(_est(cls, "adam", max_iter=3), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(rec).fit(X, y)
    # 2 candidates x 2 folds + the refit, 3 epochs each
    assert rec.events.count(("end", "epoch")) == (2 * 2 + 1) * 3
    np.testing.assert_array_equal(rec.predictions[-1], search.predict(X))


def test_progress_bar_propagated_from_grid_search():
    pytest.importorskip("rich")
    cls, X, y = _task("clf")
    search = GridSearchCV(_est(cls, "sgd", max_iter=2), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert search.best_estimator_.n_iter_ == 2
