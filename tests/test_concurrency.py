"""Concurrency: shared models predict safely from many threads; fits in
parallel threads do not interfere; Ctrl-C stops at an epoch boundary."""

import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn import _progress

N_THREADS = 4
KINDS = ["clf", "reg"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(kind, dtype=np.float64, n=300, p=12, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p).astype(dtype)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if kind == "clf" else X[:, 0] ** 2
    return X, y


def _est(kind, **params):
    cls = fastnn.MLPClassifier if kind == "clf" else fastnn.MLPRegressor
    params = {
        "hidden_layer_sizes": (32, 16),
        "max_iter": 5,
        "random_state": 0,
        **params,
    }
    return cls(**params)


def _run_threads(target, n_threads):
    """Start ``target(i)`` in n threads at once; re-raise any thread's error."""
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def work(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_predict_from_four_threads(kind, dtype, sparse):
    X, y = _data(kind, dtype)
    est = _est(kind).fit(X, y)
    # Larger than the predict block, so each call loops over several blocks.
    X_big = _data(kind, dtype, n=2500, seed=1)[0]
    if sparse:
        X_big[np.abs(X_big) < 0.8] = 0
        X_big = sp.csr_matrix(X_big)
    methods = ["predict", "predict_proba"] if kind == "clf" else ["predict"]
    serial = {m: getattr(est, m)(X_big) for m in methods}

    def work(i):
        return [{m: getattr(est, m)(X_big) for m in methods} for _ in range(3)]

    for per_thread in _run_threads(work, N_THREADS):
        for out in per_thread:
            for m in methods:
                np.testing.assert_array_equal(out[m], serial[m])


def test_predict_kernel_releases_the_gil():
    """The prediction kernel is compiled with nogil=True."""
    from fastnn._kernels import epoch

    assert epoch.predict.targetoptions.get("nogil") is True


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_parallel_fits_do_not_interfere(solver):
    """Four estimators trained in four threads equal the same four trained
    one after the other (no shared buffers between fits)."""
    jobs = [("clf", 0), ("reg", 1), ("clf", 2), ("reg", 3)]

    def fit(i):
        kind, seed = jobs[i]
        X, y = _data(kind, seed=seed)
        est = _est(kind, solver=solver, random_state=seed, batch_size=32).fit(X, y)
        return [w.copy() for w in est.coefs_ + est.intercepts_]

    serial = [fit(i) for i in range(len(jobs))]
    parallel = _run_threads(fit, len(jobs))
    for a, b in zip(parallel, serial):
        for x, z in zip(a, b):
            np.testing.assert_array_equal(x, z)


def _interrupt_on_epoch(monkeypatch, at):
    """Make the per-epoch progress report raise KeyboardInterrupt on call ``at``
    (the report runs once per finished epoch, like a Ctrl-C arriving then)."""
    original = _progress.EpochReporter.epoch
    calls = {"n": 0}

    def epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_progress.EpochReporter, "epoch", epoch)
    return calls


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_stops_at_epoch_boundary(
    monkeypatch, kind, solver, early_stopping
):
    X, y = _data(kind)
    params = dict(solver=solver, max_iter=20, early_stopping=early_stopping)
    params.update(n_iter_no_change=50, batch_size=32)
    # Reference: the same run stopped cleanly after 3 epochs.
    reference = _est(kind, **{**params, "max_iter": 3}).fit(X, y)

    calls = _interrupt_on_epoch(monkeypatch, at=3)
    est = _est(kind, **params)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.fit(X, y)
    assert calls["n"] == 3
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    for a, b in zip(
        est.coefs_ + est.intercepts_, reference.coefs_ + reference.intercepts_
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))
    # The interrupted model keeps training normally.
    monkeypatch.undo()
    est.set_params(warm_start=True, max_iter=2)
    est.fit(X, y)
    assert est.n_iter_ == 2
    for w in est.coefs_ + est.intercepts_:
        assert np.isfinite(w).all()
