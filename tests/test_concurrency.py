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


# ---------------------------------------------------------------------------
# GIL-free training (fits in threads run in parallel)
# ---------------------------------------------------------------------------
def test_training_kernels_release_the_gil():
    from fastnn._kernels import epoch

    for kernel in (
        epoch.train_epoch,
        epoch.train_epoch_dropout,
        epoch.loss_and_gradient,
    ):
        assert kernel.targetoptions.get("nogil") is True, kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_threads_sharing_read_only_data_equal_serial_fits(dtype, sparse):
    """4 threads x 3 fits each, on one shared read-only X, equal serial fits."""
    X, y = _data("clf", dtype=dtype)
    X.setflags(write=False)
    Xs = sp.csr_matrix(X) if sparse else X
    configs = [
        dict(solver=s, alpha=a, random_state=r)
        for s, a, r in [("adam", 1e-4, 0), ("sgd", 1e-2, 1), ("lbfgs", 1e-3, 2)]
    ]

    def fits(i):
        out = []
        for config in configs:
            est = _est("clf", hidden_layer_sizes=(16,), **config)
            est.set_params(random_state=config["random_state"] + 10 * i)
            est.fit(Xs, y)
            out.append([w.copy() for w in est.coefs_ + est.intercepts_])
        return out

    serial = [fits(i) for i in range(N_THREADS)]
    parallel = _run_threads(fits, N_THREADS)
    for a, b in zip(parallel, serial):
        for u, v in zip(a, b):
            for x, z in zip(u, v):
                np.testing.assert_array_equal(x, z)


def test_threaded_grid_search_equals_serial():
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = _data("clf")
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}

    def search(n_jobs, backend):
        est = _est("clf", max_iter=8)
        with joblib.parallel_config(backend=backend):
            return GridSearchCV(est, grid, cv=3, n_jobs=n_jobs).fit(X, y)

    serial = search(1, "loky")
    threaded = search(2, "threading")
    np.testing.assert_array_equal(
        threaded.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert threaded.best_params_ == serial.best_params_
    for a, b in zip(threaded.best_estimator_.coefs_, serial.best_estimator_.coefs_):
        np.testing.assert_array_equal(a, b)


class FakeBlas:
    """A threadpoolctl controller stand-in (one BLAS library) that records the
    thread counts set."""

    def __init__(self):
        self.threads = 2
        self.calls = []
        self.lib_controllers = [self]

    def select(self, user_api):
        assert user_api == "blas"
        return self

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, num_threads):
        self.threads = num_threads
        self.calls.append(num_threads)


def _in_other_thread(gate, layer_units, n_rows, inside):
    """Call ``inside()`` while another thread runs ``gate.run(...)``."""
    entered, done = threading.Event(), threading.Event()

    def other():
        with gate.run(layer_units, n_rows):
            entered.set()
            done.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert entered.wait(10)
        return inside()
    finally:
        done.set()
        thread.join()


def test_blas_gate_holds_one_thread_while_fits_overlap():
    from fastnn._engine import BlasGate

    fake = FakeBlas()
    gate = BlasGate(controller=lambda: fake)
    large, small = [300, 300, 1], [64, 32, 10]

    def overlap():
        assert fake.threads == 2  # a single large fit keeps BLAS's own threads
        with gate.run(large):
            assert fake.threads == 1  # two fits overlap: one thread each
        return fake.threads

    assert _in_other_thread(gate, large, None, overlap) == 1  # held until the end
    assert fake.threads == 2 and fake.calls[-1] == 2
    with gate.run(small):
        assert fake.threads == 1  # a small network alone: one thread
    assert fake.threads == 2


def test_blas_gate_counts_predictions_and_not_nested_calls():
    from fastnn._engine import PREDICT_BLOCK, SERIAL_PRODUCT, BlasGate, largest_layer

    fake = FakeBlas()
    gate = BlasGate(controller=lambda: fake)
    large, small = [300, 300, 1], [64, 32, 10]
    with gate.run(small, PREDICT_BLOCK):
        assert fake.threads == 1  # one small block: one thread
    serial = SERIAL_PRODUCT // largest_layer(small)
    with gate.run(small, serial):
        assert fake.threads == 2  # products BLAS keeps on one thread anyway
    with gate.run(small, serial + 1):
        assert fake.threads == 1
    with gate.run(small, 10 * PREDICT_BLOCK):
        # More blocks of a small network: one thread too; large predictions
        # split their rows among threads of their own.
        assert fake.threads == 1
    with gate.run(large, 10):
        assert fake.threads == 2
    with gate.run(large):
        with gate.run(large, 10):
            assert fake.threads == 2  # the same thread's call inside a fit
    assert fake.calls == [1, 2, 1, 2, 1, 2]

    def predict():
        with gate.run(large, 10**6):
            return fake.threads

    assert _in_other_thread(gate, large, None, predict) == 1
    assert fake.threads == 2


def test_blas_gate_is_shared_while_another_thread_ran_lately(monkeypatch):
    """A call alone now is not alone for SHARED_SECONDS after another
    thread's call left the gate; its own thread's calls do not count."""
    from fastnn import _engine

    clock = [100.0]
    monkeypatch.setattr(_engine.time, "monotonic", lambda: clock[0])
    gate = _engine.BlasGate(controller=lambda: FakeBlas())
    large = [300, 300, 1]
    assert gate.alone()
    with gate.run(large):
        assert not gate.alone()  # a call runs now
    assert gate.alone()  # this thread's own call
    _in_other_thread(gate, large, None, lambda: None)
    assert not gate.alone()
    clock[0] += _engine.SHARED_SECONDS / 2
    assert not gate.alone()
    clock[0] += _engine.SHARED_SECONDS
    assert gate.alone()


def test_blas_threads_are_restored_after_concurrent_fits():
    from fastnn._engine import threadpool_controller

    def blas_threads():
        info = threadpool_controller().select(user_api="blas").info()
        return [i["num_threads"] for i in info]

    before = blas_threads()
    X, y = _data("reg", n=1000, p=300)

    def fit(i):
        est = _est("reg", hidden_layer_sizes=(300,), max_iter=2, random_state=i)
        return est.fit(X, y)

    _run_threads(fit, 2)
    assert blas_threads() == before


def test_fits_in_threads_get_one_blas_thread_after_the_main_thread_set_it():
    """threadpoolctl lets one Python thread at a time set OpenBLAS's thread
    count and ignores the others. After the main thread has set it (here by a
    fit of its own), fits in other threads must still train on one BLAS
    thread each, and the count comes back when they are done."""
    from fastnn import _engine

    controller = _engine.threadpool_controller()

    def blas_threads():
        return [i["num_threads"] for i in controller.select(user_api="blas").info()]

    X, y = _data("reg", n=1000, p=300)
    _est("reg", hidden_layer_sizes=(8,), max_iter=1).fit(X, y)  # main: small net
    before = blas_threads()
    seen = []
    run_epoch = _engine.EpochRunner.run_epoch

    def spy(runner, *args):
        seen.append(blas_threads())
        return run_epoch(runner, *args)

    def fit(i):
        est = _est("reg", hidden_layer_sizes=(300,), max_iter=3, random_state=i)
        return est.fit(X, y)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_engine.EpochRunner, "run_epoch", spy)
        _run_threads(fit, 2)
    # A large network alone keeps BLAS's threads, so the first epoch (before
    # the other fit starts) and the last (after it ends) may see two.
    assert seen and all(counts == [1] * len(counts) for counts in seen[1:-1])
    assert blas_threads() == before


def test_a_diverging_fit_does_not_disturb_the_others():
    X, y = _data("reg")
    huge = X * 1e154

    def fit(i):
        if i == 0:
            est = _est("reg", solver="sgd", learning_rate_init=10.0)
            with pytest.raises(ValueError, match="non-finite parameter weights"):
                est.fit(huge, y)
            return None
        est = _est("reg", random_state=i).fit(X, y)
        return [w.copy() for w in est.coefs_]

    parallel = _run_threads(fit, N_THREADS)
    for i in range(1, N_THREADS):
        serial = _est("reg", random_state=i).fit(X, y)
        for a, b in zip(parallel[i], serial.coefs_):
            np.testing.assert_array_equal(a, b)


def test_an_interrupted_fit_does_not_disturb_the_others():
    """A KeyboardInterrupt inside one thread's fit (raised from a callback at
    its third epoch) stops that fit at the epoch boundary only."""
    pytest.importorskip("sklearn.callback")
    X, y = _data("clf")

    class InterruptAtThird:
        def __init__(self):
            self.n = 0

        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context):
            pass

        def on_fit_task_end(self, estimator, context):
            self.n += 1
            if self.n == 3:
                raise KeyboardInterrupt

    def fit(i):
        est = _est("clf", max_iter=10, n_iter_no_change=50, random_state=i)
        if i == 0:
            est.set_callbacks(InterruptAtThird())
            with pytest.warns(UserWarning, match="Training interrupted by user."):
                est.fit(X, y)
            return est.n_iter_
        return [w.copy() for w in est.fit(X, y).coefs_]

    parallel = _run_threads(fit, N_THREADS)
    assert parallel[0] == 3
    for i in range(1, N_THREADS):
        serial = _est("clf", max_iter=10, n_iter_no_change=50, random_state=i)
        for a, b in zip(parallel[i], serial.fit(X, y).coefs_):
            np.testing.assert_array_equal(a, b)
