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
