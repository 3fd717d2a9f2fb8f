"""fastnn on Dask: distributed hyperparameter search and incremental training.

Needs the ``dask`` extra (``pip install "fastnn[dask]"``); skipped without it.
One two-worker LocalCluster serves the whole module.
"""

import pickle
import sys
import time
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.stats import loguniform
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

import fastnn

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _kernel_dispatchers():
    """Every numba dispatcher defined in the imported fastnn modules."""
    from numba.core.dispatcher import Dispatcher

    found = {}
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "fastnn" or name.startswith("fastnn.")):
            for attr, obj in vars(module).items():
                if isinstance(obj, Dispatcher):
                    found[f"{name}.{attr}"] = obj
    return found


def _exercise_kernels():
    """Fit, partial_fit and predict with the configurations this module uses.

    Returns the seconds the calls took and the numba cache hits and misses
    counted so far in this process (a miss is a compilation).
    """
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = make_classification(n_samples=60, n_features=6, random_state=0)
    start = time.perf_counter()
    for cls, target in ((fastnn.MLPClassifier, y), (fastnn.MLPRegressor, X[:, 0])):
        cls(hidden_layer_sizes=(8, 4), max_iter=2).fit(X, target).predict(X)
        cls(hidden_layer_sizes=(4,)).partial_fit(
            X, target, **({"classes": [0, 1]} if cls is fastnn.MLPClassifier else {})
        )
    seconds = time.perf_counter() - start
    hits = misses = 0
    for dispatcher in _kernel_dispatchers().values():
        hits += sum(dispatcher.stats.cache_hits.values())
        misses += sum(dispatcher.stats.cache_misses.values())
    return {"seconds": seconds, "cache_hits": hits, "cache_misses": misses}


@pytest.fixture(scope="module")
def cluster():
    """A two-process LocalCluster, its client, and each worker's first fit."""
    # Compile (or load) every kernel here first, so the numba cache on disk is
    # complete before any worker process starts.
    parent = _exercise_kernels()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as local_cluster,
        distributed.Client(local_cluster) as client,
    ):
        first_fits = client.run(_exercise_kernels)
        print(f"\nparent process first fits: {parent}")
        for worker, report in first_fits.items():
            print(f"worker {worker} first fits: {report}")
        yield client, first_fits


def test_workers_load_the_numba_cache_instead_of_compiling(cluster):
    _, first_fits = cluster
    assert len(first_fits) == 2
    for report in first_fits.values():
        assert report["cache_hits"] > 0
        assert report["cache_misses"] == 0


def test_estimators_and_kernels_pickle_into_workers(cluster):
    client, _ = cluster
    X, y = make_classification(n_samples=200, n_features=8, random_state=1)
    clf = fastnn.MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=50, random_state=0)
    clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    remote = client.submit(lambda est, data: est.predict_proba(data), clf, X)
    assert_array_equal(remote.result(), clf.predict_proba(X))
    dispatchers = _kernel_dispatchers()
    assert dispatchers
    for name, dispatcher in dispatchers.items():
        copy = pickle.loads(pickle.dumps(dispatcher))
        assert copy.py_func.__qualname__ == dispatcher.py_func.__qualname__, name


def _search_on(backend, search, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend(backend, n_jobs=2):
            return search.fit(X, y)


def _only_on_a_worker(metric):
    """A scorer computing ``metric`` that fails outside a dask worker.

    Defined in a closure so that cloudpickle ships it by value. With
    ``error_score="raise"``, a search using it proves that every fit was scored
    in a worker process.
    """

    def scorer(est, X, y):
        from distributed import get_worker

        get_worker()  # raises ValueError when not running in a worker
        return metric(y, est.predict(X))

    return scorer


def _assert_same_search(on_loky, on_dask):
    assert on_dask.best_params_ == on_loky.best_params_
    assert on_dask.best_score_ == on_loky.best_score_
    for key in on_loky.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank", "param")):
            assert_array_equal(on_dask.cv_results_[key], on_loky.cv_results_[key])


def test_grid_search_on_dask_equals_loky(cluster):
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=5, random_state=2
    )

    def search(scoring=None):
        est = fastnn.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
        grid = {"alpha": [1e-4, 1.0], "learning_rate_init": [1e-3, 1e-2]}
        return GridSearchCV(
            est, grid, scoring=scoring, cv=3, n_jobs=2, error_score="raise"
        )

    # A classifier's default scoring is the accuracy, as on the workers.
    on_loky = _search_on("loky", search(), X, y)
    with pytest.raises(ValueError, match="No worker found"):  # the guard works
        _only_on_a_worker(accuracy_score)(on_loky.best_estimator_, X, y)
    on_dask = _search_on("dask", search(_only_on_a_worker(accuracy_score)), X, y)
    _assert_same_search(on_loky, on_dask)
    assert_array_equal(
        on_dask.best_estimator_.predict_proba(X),
        on_loky.best_estimator_.predict_proba(X),
    )


def test_randomized_search_on_dask_equals_loky(cluster):
    X, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=3)
    y = y / y.std()

    def search(scoring=None):
        est = fastnn.MLPRegressor(max_iter=30, random_state=0)
        space = {
            "alpha": loguniform(1e-5, 1e-1),
            "hidden_layer_sizes": [(4,), (8,), (8, 4)],
            "learning_rate_init": loguniform(1e-3, 3e-2),
        }
        return RandomizedSearchCV(
            est,
            space,
            n_iter=4,
            scoring=scoring,
            cv=3,
            n_jobs=2,
            random_state=0,
            error_score="raise",
        )

    # A regressor's default scoring is R^2, as on the workers.
    on_loky = _search_on("loky", search(), X, y)
    on_dask = _search_on("dask", search(_only_on_a_worker(r2_score)), X, y)
    _assert_same_search(on_loky, on_dask)
    assert len(on_dask.cv_results_["params"]) == 4


EPOCHS = 6
BLOCK_ROWS = 400  # two mini-batches of 200 per block, as in an in-memory epoch


def _incremental_vs_in_memory(est, X, y, metric, **fit_kwargs):
    """Score an Incremental fit over dask blocks and an in-memory fit."""
    n_train = 4800
    X_train, X_test = X[:n_train], X[n_train:]
    y_train, y_test = y[:n_train], y[n_train:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = metric(y_test, est.fit(X_train, y_train).predict(X_test))
    X_blocks = da.from_array(X_train, chunks=(BLOCK_ROWS, -1))
    y_blocks = da.from_array(y_train, chunks=BLOCK_ROWS)
    assert X_blocks.numblocks[0] == 12
    inc = dask_ml_wrappers.Incremental(est, random_state=0)
    for _ in range(EPOCHS):
        inc.partial_fit(X_blocks, y_blocks, **fit_kwargs)
    predicted = inc.predict(da.from_array(X_test, chunks=BLOCK_ROWS)).compute()
    assert inc.estimator_.t_ == EPOCHS * n_train
    return metric(y_test, predicted), in_memory


def test_incremental_classifier_matches_in_memory_fit(cluster):
    X, y = make_classification(
        n_samples=6000, n_features=20, n_informative=10, random_state=4
    )
    clf = fastnn.MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=EPOCHS, random_state=0
    )
    blocks, in_memory = _incremental_vs_in_memory(
        clf, X, y, accuracy_score, classes=np.unique(y)
    )
    print(f"\naccuracy: incremental {blocks:.4f}, in-memory {in_memory:.4f}")
    assert in_memory > 0.8
    assert abs(blocks - in_memory) <= 0.02


def test_incremental_regressor_matches_in_memory_fit(cluster):
    X, y = make_regression(
        n_samples=6000, n_features=20, n_informative=10, noise=10.0, random_state=5
    )
    y = (y - y.mean()) / y.std()
    reg = fastnn.MLPRegressor(hidden_layer_sizes=(32,), max_iter=EPOCHS, random_state=0)
    blocks, in_memory = _incremental_vs_in_memory(reg, X, y, r2_score)
    print(f"\nR^2: incremental {blocks:.4f}, in-memory {in_memory:.4f}")
    assert in_memory > 0.8
    assert abs(blocks - in_memory) <= 0.02


# ---------------------------------------------------------------------------
# L-BFGS where the blocks live
# ---------------------------------------------------------------------------
def _blobs(n=6000, p=10, dtype=np.float64, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=p, n_informative=6, n_classes=3, random_state=seed
    )
    return X.astype(dtype), y


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("weighted", [False, True])
def test_dask_objective_equals_the_in_memory_one(cluster, dtype, rtol, kind, weighted):
    from fastnn import _engine
    from fastnn._dask import DaskObjective, check_dask_targets, check_dask_X

    client, _ = cluster
    X, y = _blobs(dtype=dtype)
    if kind == "reg":
        y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] ** 2])  # two outputs
    sw = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    cls = fastnn.MLPClassifier if kind == "clf" else fastnn.MLPRegressor
    est = cls(hidden_layer_sizes=(7,), solver="lbfgs", alpha=0.01, max_iter=3,
              random_state=0).fit(X, y, sample_weight=sw)  # fmt: skip
    Xd = da.from_array(X, chunks=(1500, 10))
    data = check_dask_targets(
        est, check_dask_X(est, Xd, reset=False), da.from_array(y, chunks=1500),
        None if sw is None else da.from_array(sw, chunks=1500), kind == "clf",
        first_pass=False,
    )  # fmt: skip
    units, model = est._layer_units(), est._engine_model()
    Y = est._binarize(y) if kind == "clf" else y
    Y = np.ascontiguousarray(Y.reshape(len(y), -1), dtype=dtype)
    weights = None if sw is None else sw.astype(dtype)
    in_memory = _engine.FullBatchObjective(X, Y, weights, est._params, units, model)
    on_dask = DaskObjective(client, data, est._params, units, model)
    try:
        for step in range(3):
            est._params[:] += np.float64(0.01 * step)
            loss, grad = in_memory.loss_and_gradient()
            loss_d, grad_d = on_dask.loss_and_gradient()
            np.testing.assert_allclose(loss_d, loss, rtol=rtol)
            np.testing.assert_allclose(
                grad_d, grad, rtol=rtol, atol=rtol * abs(grad).max()
            )
    finally:
        on_dask.close()
    assert set(client.run(_cached_block_objectives).values()) == {0}


def _cached_block_objectives():
    from fastnn import _engine

    return len(_engine._BLOCK_OBJECTIVES)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lbfgs_on_dask_trains_the_in_memory_model(cluster, dtype):
    X, y = _blobs(n=8000, dtype=dtype)
    # A smooth activation keeps the problem well conditioned in float32: with
    # ReLU's kinks, 40 float32 L-BFGS steps already end 1e-2 apart when only
    # the rows' order (the summation order) changes, in memory alone.
    params = dict(
        hidden_layer_sizes=(16,), activation="tanh", solver="lbfgs", max_iter=40,
        random_state=0,
    )  # fmt: skip
    in_memory = fastnn.MLPClassifier(**params).fit(X, y)
    first = fastnn.MLPClassifier(**{**params, "max_iter": 1}).fit(X, y)
    Xd, yd = da.from_array(X, chunks=(2000, 10)), da.from_array(y, chunks=2000)
    on_dask = fastnn.MLPClassifier(**params).fit(Xd, yd)
    first_dask = fastnn.MLPClassifier(**{**params, "max_iter": 1}).fit(Xd, yd)
    for a, b in zip(first_dask.coefs_, first.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert abs(on_dask.loss_ - in_memory.loss_) <= 1e-3 * in_memory.loss_
    assert (
        on_dask.n_iter_ == in_memory.n_iter_ or on_dask.loss_ < 1e-3 + in_memory.loss_
    )
    assert_array_equal(on_dask.classes_, in_memory.classes_)
    accuracy = in_memory.score(X, y)
    assert abs(on_dask.score(X, y) - accuracy) <= 0.005
    assert on_dask.coefs_[0].dtype == dtype


def test_multi_output_regression_with_weights_on_dask(cluster):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6000, 6))
    Y = np.column_stack([X[:, 0] - X[:, 1], np.tanh(X[:, 2])])
    sw = rng.uniform(0.2, 1.0, 6000)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    in_memory = fastnn.MLPRegressor(**params).fit(X, Y, sample_weight=sw)
    on_dask = fastnn.MLPRegressor(**params).fit(
        da.from_array(X, chunks=(1000, 6)), da.from_array(Y, chunks=(1000, 2)),
        sample_weight=da.from_array(sw, chunks=1000),
    )  # fmt: skip
    assert abs(on_dask.loss_ - in_memory.loss_) <= 1e-3 * in_memory.loss_
    np.testing.assert_allclose(on_dask.predict(X), in_memory.predict(X), atol=0.05)


def test_dask_fit_keeps_the_data_on_the_workers(cluster):
    import tracemalloc

    client, _ = cluster
    X = da.random.RandomState(0).standard_normal((400_000, 20), chunks=(50_000, 20))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X, y = client.persist([X.astype(np.float32), y])
    est = fastnn.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5)
    tracemalloc.start()
    try:
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 5, (peak, X.nbytes)
    assert est.n_features_in_ == 20 and est.n_iter_ >= 1


def test_prediction_on_dask_stays_lazy(cluster):
    X, y = _blobs(n=3000)
    est = fastnn.MLPClassifier((8,), solver="lbfgs", max_iter=10, random_state=0)
    est.fit(X, y)
    Xd, yd = da.from_array(X, chunks=(700, 10)), da.from_array(y, chunks=700)
    for method in ("predict", "predict_proba", "predict_log_proba"):
        lazy = getattr(est, method)(Xd)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(est, method)(X), rtol=1e-12)
    score = est.score(Xd, yd)
    assert isinstance(score, da.Array)
    assert score.compute() == pytest.approx(est.score(X, y), abs=1e-12)
    assert isinstance(est.predict(X), np.ndarray)
    reg = fastnn.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10,
                              random_state=0).fit(X, X[:, :2])  # fmt: skip
    r2 = reg.score(Xd, da.from_array(X[:, :2], chunks=(700, 2)))
    assert r2.compute() == pytest.approx(reg.score(X, X[:, :2]), rel=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_stochastic_solvers_on_dask_raise(cluster, solver):
    X, y = _blobs(n=200)
    est = fastnn.MLPClassifier(solver=solver)
    with pytest.raises(ValueError, match=r"solver='lbfgs'.*Incremental.*partial_fit"):
        est.fit(da.from_array(X, chunks=50), da.from_array(y, chunks=50))


def test_bad_dask_blocks_raise_scikit_learns_errors(cluster):
    X, y = _blobs(n=400)
    est = fastnn.MLPClassifier((4,), solver="lbfgs", max_iter=2)
    for bad, expected in [(np.nan, "NaN"), (np.inf, "infinity")]:
        Xb = X.copy()
        Xb[350, 3] = bad
        with pytest.raises(ValueError) as dask_error:
            est.fit(da.from_array(Xb, chunks=(100, 10)), da.from_array(y, chunks=100))
        with pytest.raises(ValueError) as memory_error:
            fastnn.MLPClassifier((4,), solver="lbfgs").fit(Xb, y)
        assert str(dask_error.value) == str(memory_error.value)
        assert expected in str(dask_error.value)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(da.from_array(X, chunks=100), da.from_array(y[:300], chunks=100))
    est.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    with pytest.raises(ValueError, match="X has 9 features"):
        est.predict(X[:, :9])
