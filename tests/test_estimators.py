"""Behaviour of the estimators: fitting modes, targets, dtypes, ecosystem."""

import pickle
import time
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from fastnn import MLPClassifier, MLPRegressor

EXTRA_ACTIVATIONS = ["leaky_relu", "elu", "gelu", "silu", "softplus"]


@pytest.fixture(scope="module")
def digits():
    X, y = datasets.load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, random_state=0, stratify=y)


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


PARITY = {
    "digits": (datasets.load_digits, MLPClassifier, SkMLPClassifier),
    "iris": (datasets.load_iris, MLPClassifier, SkMLPClassifier),
    "breast_cancer": (datasets.load_breast_cancer, MLPClassifier, SkMLPClassifier),
    "wine": (datasets.load_wine, MLPClassifier, SkMLPClassifier),
    "diabetes": (datasets.load_diabetes, MLPRegressor, SkMLPRegressor),
}


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("name", list(PARITY))
def test_accuracy_parity_with_sklearn(name, solver):
    loader, ours_cls, theirs_cls = PARITY[name]
    X, y = loader(return_X_y=True)
    if name == "diabetes":
        y = (y - y.mean()) / y.std()
    stratify = None if name == "diabetes" else y
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=1, stratify=stratify)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    params = dict(hidden_layer_sizes=(64,), solver=solver, max_iter=200, random_state=0)
    ours = _quiet_fit(ours_cls(**params), Xtr, ytr).score(Xte, yte)
    theirs = _quiet_fit(theirs_cls(**params), Xtr, ytr).score(Xte, yte)
    # One test sample of slack at least: fits that run to convergence (lbfgs
    # on iris) follow scikit-learn's iterates to rounding for dozens of
    # iterations, then part at the last bit, and may differ on one sample.
    slack = max(0.02, 1.0 / len(yte)) + 1e-12
    assert ours >= theirs - slack, (name, solver, ours, theirs)


@pytest.mark.parametrize("activation", EXTRA_ACTIVATIONS)
def test_extra_activations_learn_digits(digits, activation):
    Xtr, Xte, ytr, yte = digits
    est = _quiet_fit(
        MLPClassifier((32,), activation=activation, max_iter=30, random_state=0),
        Xtr,
        ytr,
    )
    assert est.score(Xte, yte) > 0.9
    assert np.all(np.diff(est.loss_curve_[:5]) < 0)


def test_float32_is_trained_in_float32(digits):
    Xtr, Xte, ytr, yte = digits
    est = _quiet_fit(
        MLPClassifier((16,), max_iter=20, random_state=0), Xtr.astype(np.float32), ytr
    )
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(Xte.astype(np.float32)).dtype == np.float32
    est64 = _quiet_fit(MLPClassifier((16,), max_iter=20, random_state=0), Xtr, ytr)
    assert est64.coefs_[0].dtype == np.float64
    assert abs(est.score(Xte, yte) - est64.score(Xte, yte)) < 0.02


def test_coefs_are_views_of_one_flat_buffer(digits):
    Xtr, _, ytr, _ = digits
    est = _quiet_fit(MLPClassifier((16, 8), max_iter=2, random_state=0), Xtr, ytr)
    for arr in est.coefs_ + est.intercepts_:
        assert np.shares_memory(arr, est._params)
    assert est._params.size == sum(a.size for a in est.coefs_ + est.intercepts_)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_equals_dense(digits, fmt):
    Xtr, Xte, ytr, _ = digits
    dense = _quiet_fit(MLPClassifier((16,), max_iter=5, random_state=0), Xtr, ytr)
    sparse = _quiet_fit(
        MLPClassifier((16,), max_iter=5, random_state=0),
        sp.csr_matrix(Xtr).asformat(fmt),
        ytr,
    )
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        dense.predict_proba(Xte), sparse.predict_proba(sp.csr_matrix(Xte).asformat(fmt))
    )


def test_partial_fit_equals_fit_epochs(digits):
    Xtr, _, ytr, _ = digits
    params = dict(hidden_layer_sizes=(16,), solver="sgd", random_state=0, shuffle=False)
    full = _quiet_fit(MLPClassifier(max_iter=3, **params), Xtr, ytr)
    inc = MLPClassifier(**params)
    for _ in range(3):
        inc.partial_fit(Xtr, ytr, classes=np.unique(ytr))
    for a, b in zip(full.coefs_, inc.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert inc.n_iter_ == 1 and inc.t_ == 3 * Xtr.shape[0]


def test_partial_fit_requires_classes_and_rejects_lbfgs(digits):
    Xtr, _, ytr, _ = digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(Xtr, ytr)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        MLPClassifier(solver="lbfgs").partial_fit(Xtr, ytr, classes=np.unique(ytr))
    assert "lbfgs is not stochastic" in str(info.value.__cause__)


def test_warm_start_continues(digits):
    Xtr, _, ytr, _ = digits
    est = MLPClassifier((16,), max_iter=3, warm_start=True, random_state=0)
    _quiet_fit(est, Xtr, ytr)
    first = est.loss_curve_[-1]
    _quiet_fit(est, Xtr, ytr)
    assert len(est.loss_curve_) == 6 and est.loss_curve_[-1] < first
    with pytest.raises(ValueError, match="warm_start can only be used"):
        est.fit(Xtr, np.where(ytr == 0, 1, ytr))


def test_early_stopping_restores_best_weights(digits):
    Xtr, _, ytr, _ = digits
    est = _quiet_fit(
        MLPClassifier((32,), early_stopping=True, max_iter=60, n_iter_no_change=3,
                      random_state=0, learning_rate_init=0.01),
        Xtr, ytr,
    )  # fmt: skip
    assert est.best_loss_ is None
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.n_iter_ < 60
    # the restored weights reproduce the best validation score
    rs = np.random.RandomState(0)
    for shape in [(64, 32), (32,), (32, 10), (10,)]:  # the initial weights' draws
        rs.uniform(size=shape)
    # scikit-learn stratifies only binary targets: digits is split at random
    train_idx, val_idx = train_test_split(
        np.arange(len(ytr)), random_state=rs, test_size=0.1
    )
    assert est.score(Xtr[val_idx], ytr[val_idx]) == pytest.approx(
        est.best_validation_score_
    )


def test_multilabel_and_string_labels(digits):
    Xtr, Xte, ytr, _ = digits
    Y = np.column_stack([ytr % 2, ytr > 4, ytr == 3]).astype(int)
    est = _quiet_fit(MLPClassifier((32,), max_iter=50, random_state=0), Xtr, Y)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 3
    assert est.predict(Xte).shape == (Xte.shape[0], 3)
    assert est.score(Xtr, Y) > 0.9
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"], dtype=object)  # fmt: skip
    est = _quiet_fit(MLPClassifier((32,), max_iter=30, random_state=0), Xtr, names[ytr])
    assert set(est.predict(Xte)) <= set(names)
    assert est.score(Xtr, names[ytr]) > 0.95


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_label_checks_leave_no_cached_uniques_behind(digits, monkeypatch):
    """The labels' unique values are computed at most once per fit (small
    non-negative integer labels are counted instead) and attached to a
    private view of y; nothing the user gets back carries that metadata."""
    X, _, y, _ = digits
    calls = []
    unique = np.unique

    def counting_unique(*args, **kwargs):
        calls.append(1)
        return unique(*args, **kwargs)

    monkeypatch.setattr(np, "unique", counting_unique)
    for labels in (y, np.array(["a", "b", "c", "d", "e"] * 2)[y]):
        calls.clear()
        est = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, labels)
        assert len(calls) == (0 if labels.dtype.kind == "i" else 1)
        assert est.classes_.dtype.metadata is None
        predicted = est.predict(X)
        assert predicted.dtype.metadata is None
        assert predicted.dtype == labels.dtype
        assert labels.dtype.metadata is None
        np.testing.assert_array_equal(est.classes_, unique(labels))


def test_multioutput_regression_and_poisson():
    X, y = datasets.make_regression(200, 5, n_targets=2, random_state=0, noise=1)
    y = y / y.std()
    est = _quiet_fit(
        MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0), X, y
    )
    assert est.predict(X).shape == (200, 2) and est.score(X, y) > 0.9
    counts = np.random.RandomState(0).poisson(np.exp(X[:, 0] / 2))
    pois = _quiet_fit(
        MLPRegressor(loss="poisson", max_iter=200, random_state=0), X, counts
    )
    assert pois.out_activation_ == "exp" and np.all(pois.predict(X) > 0)


def test_sample_weight_zero_equals_dropping_rows():
    X, y = datasets.make_classification(120, 6, random_state=0)
    sw = np.ones(120)
    sw[::3] = 0
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0)
    weighted = _quiet_fit(MLPClassifier(**params), X, y, sample_weight=sw)
    dropped = _quiet_fit(MLPClassifier(**params), X[sw > 0], y[sw > 0])
    for a, b in zip(weighted.coefs_, dropped.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_verbose_prints_sklearn_lines(digits, capsys):
    Xtr, _, ytr, _ = digits
    _quiet_fit(MLPClassifier((8,), max_iter=2, verbose=True, random_state=0), Xtr, ytr)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ")
    assert lines[1].startswith("Iteration 2, loss = ")


def test_convergence_warning_and_reproducibility(digits):
    Xtr, _, ytr, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\) reached"):
        a = MLPClassifier((8,), max_iter=2, random_state=5).fit(Xtr, ytr)
    b = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=5), Xtr, ytr)
    for x, z in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(x, z)


def test_pipeline_gridsearch_clone_pickle(digits):
    Xtr, Xte, ytr, yte = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0))
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__hidden_layer_sizes": [(16,), (32,)],
         "mlpclassifier__alpha": [1e-4, 1e-2]},
        cv=2, n_jobs=2,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(Xtr, ytr)
    assert grid.best_score_ > 0.9
    est = grid.best_estimator_[-1]
    cloned = clone(est)
    assert not hasattr(cloned, "coefs_") and cloned.get_params() == est.get_params()
    for restored in (pickle.loads(pickle.dumps(grid.best_estimator_)),):
        np.testing.assert_array_equal(
            restored.predict_proba(Xte), grid.predict_proba(Xte)
        )
        inner = restored[-1]
        assert all(np.shares_memory(c, inner._params) for c in inner.coefs_)


def test_joblib_round_trip(tmp_path, digits):
    Xtr, Xte, ytr, _ = digits
    est = _quiet_fit(MLPClassifier((16,), max_iter=5, random_state=0), Xtr, ytr)
    joblib.dump(est, tmp_path / "model.joblib")
    restored = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(restored.predict_proba(Xte), est.predict_proba(Xte))


def test_replaced_coefs_are_used(digits):
    Xtr, Xte, ytr, _ = digits
    est = _quiet_fit(MLPClassifier((16,), max_iter=5, random_state=0), Xtr, ytr)
    est.coefs_[0] = np.zeros_like(est.coefs_[0])
    proba = est.predict_proba(Xte)
    np.testing.assert_allclose(proba, np.broadcast_to(proba[0], proba.shape))


@pytest.mark.parametrize(
    "params, error",
    [
        (dict(hidden_layer_sizes=(0,)), ValueError),
        (dict(learning_rate_init=0.0), InvalidParameterError),
        (dict(batch_size=0), InvalidParameterError),
        (dict(momentum=1.5), InvalidParameterError),
        (dict(activation="swish"), InvalidParameterError),
        (dict(solver="newton"), InvalidParameterError),
        (dict(validation_fraction=1.0), InvalidParameterError),
    ],
)
def test_invalid_hyperparameters(params, error):
    X, y = datasets.make_classification(30, 4, random_state=0)
    with pytest.raises(error):
        MLPClassifier(**params).fit(X, y)


def test_bad_input_errors():
    X, y = datasets.make_classification(30, 4, random_state=0)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier().fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        MLPRegressor().fit(bad, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLPClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="0 sample"):
        MLPClassifier().fit(X[:0], y[:0])
    est = _quiet_fit(MLPClassifier(max_iter=2), X, y)
    with pytest.raises(
        ValueError, match="X has 3 features, but MLPClassifier is expecting 4"
    ):
        est.predict(X[:, :3])
    with pytest.raises(InvalidParameterError, match="loss"):
        MLPRegressor(loss="huber").fit(X, y)


def _kernel_blas_threads(monkeypatch, fit):
    """BLAS threads seen inside the epoch kernel calls of ``fit()``."""
    import threadpoolctl

    from fastnn import _engine

    seen = []
    run_epoch = _engine.EpochRunner.run_epoch

    def spy(runner, *args):
        info = threadpoolctl.threadpool_info()
        seen.append({d["filepath"]: d["num_threads"] for d in info})
        return run_epoch(runner, *args)

    monkeypatch.setattr(_engine.EpochRunner, "run_epoch", spy)
    before = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()}
    fit()
    after = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()}
    return before, seen, after


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_small_nets_train_on_one_blas_thread_and_restore_it(digits, monkeypatch):
    X, _, y, _ = digits
    small = MLPClassifier((8,), max_iter=2, random_state=0)
    before, seen, after = _kernel_blas_threads(monkeypatch, lambda: small.fit(X, y))
    blas = [p for p in before if "blas" in p.lower()]
    assert blas and seen
    assert all(s[p] == 1 for s in seen for p in blas)
    assert after == before
    rng = np.random.default_rng(0)
    Xb, yb = rng.normal(size=(40, 300)), rng.integers(0, 2, 40)
    big = MLPClassifier((256,), max_iter=1, random_state=0)
    before, seen, after = _kernel_blas_threads(monkeypatch, lambda: big.fit(Xb, yb))
    assert all(s == before for s in seen) and after == before


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_small_nets_predict_in_serial_blocks_without_the_gate(digits, monkeypatch):
    """Scoring a small network in a threaded search must not wake BLAS's
    workers: every product stays small enough for OpenBLAS to run it on the
    calling thread, and BLAS's thread count is never touched."""
    import threadpoolctl

    from fastnn import _engine

    X, _, y, _ = digits
    est = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    largest = _engine.largest_layer(est._layer_units())
    seen = []
    kernel = _engine.predict_kernel

    def spy(*args):
        info = threadpoolctl.threadpool_info()
        seen.append(({d["filepath"]: d["num_threads"] for d in info}, args))
        return kernel(*args)

    monkeypatch.setattr(_engine, "predict_kernel", spy)
    before = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()}
    whole = est.predict(X)
    for n_rows in (1, _engine.SERIAL_PRODUCT // largest, 300, X.shape[0]):
        seen.clear()
        np.testing.assert_array_equal(est.predict(X[:n_rows]), whole[:n_rows])
        for threads, args in seen:
            block = args[11]
            assert threads == before
            assert block * largest <= _engine.SERIAL_PRODUCT
    after = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()}
    assert after == before


def test_small_nets_predict_many_rows_on_blas_threads(digits, monkeypatch):
    """From GATE_WORK multiply-adds, a small network predicts in PREDICT_BLOCK
    blocks: on BLAS's threads, counted by the gate, when alone; on one BLAS
    thread beside a fit; from SPLIT_WORK in SPLIT_BLOCK-row blocks claimed
    by one kernel call in each of its own threads, each on one BLAS thread.
    The probabilities are those of the serial blocks."""
    import threadpoolctl

    from fastnn import _engine

    X, _, y, _ = digits
    est = MLPClassifier((100,), max_iter=2, random_state=0).fit(X, y)
    predictor = est._predictor()
    largest = _engine.largest_layer(est._layer_units())
    gated = -(-_engine.GATE_WORK // largest)
    split = -(-_engine.SPLIT_WORK // largest)
    parts = _engine.split_threads() + 1
    with _engine.PREDICTIONS:  # as inside a prediction
        assert predictor.plan(gated - 1) == (predictor.serial_block, None, 1)
        assert predictor.plan(gated) == (_engine.PREDICT_BLOCK, False, 1)
        assert predictor.plan(gated, sparse=True) == (_engine.PREDICT_BLOCK, True, 1)
        assert predictor.plan(split) == (_engine.SPLIT_BLOCK, True, parts)
        assert predictor.plan(split, sparse=True) == (_engine.PREDICT_BLOCK, True, 1)
        with _engine.blas_limit(est._layer_units()):  # a fit in another thread
            assert predictor.plan(gated) == (_engine.PREDICT_BLOCK, True, 1)
            assert predictor.plan(split) == (_engine.PREDICT_BLOCK, True, 1)

    def blas_threads():
        blas = [d for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
        return {d["filepath"]: d["num_threads"] for d in blas}

    before = blas_threads()
    seen = []
    kernel = _engine.predict_kernel

    def spy(*args):
        seen.append((blas_threads(), _engine.BLAS_GATE.busy(), args[-1]))
        return kernel(*args)

    step = gated - 1
    time.sleep(_engine.SHARED_SECONDS)  # no other thread's call lately
    for n_rows, threads in ((gated + 5, before), (split + 37, None)):
        rows = np.resize(X, (n_rows, X.shape[1]))
        serial = np.vstack(
            [est.predict_proba(rows[i : i + step]) for i in range(0, n_rows, step)]
        )
        seen.clear()
        monkeypatch.setattr(_engine, "predict_kernel", spy)
        # Other block sizes take other BLAS kernels, rounding in the last bits.
        np.testing.assert_allclose(est.predict_proba(rows), serial, rtol=1e-12)
        monkeypatch.undo()
        if threads is None:  # one call per thread, one BLAS thread each
            assert len(seen) == parts
            assert all(set(t.values()) == {1} and busy for t, busy, _ in seen)
            # ... all claiming blocks from one counter, each block once.
            assert len({id(claims) for _, _, claims in seen}) == 1
            blocks = -(-n_rows // _engine.SPLIT_BLOCK)
            claimed = [blocks + parts] if parts > 1 else []  # one CPU: no split
            assert seen[0][2].tolist() == claimed
        else:  # one call on BLAS's threads, counted by the gate
            assert [(t, busy) for t, busy, _ in seen] == [(threads, True)]
            assert seen[0][2].shape == (0,)
    assert blas_threads() == before
    # The parts' threads were the prediction's own: the next one is alone.
    with _engine.PREDICTIONS:
        assert predictor.plan(split) == (_engine.SPLIT_BLOCK, True, parts)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_large_nets_predict_on_blas_threads_and_gate_only_when_shared():
    from fastnn import _engine

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 300)), rng.integers(0, 2, 40)
    est = MLPClassifier((256,), max_iter=1, random_state=0).fit(X, y)
    predictor = est._predictor()
    assert predictor.plan(40) == (_engine.PREDICT_BLOCK, False, 1)
    with _engine.blas_limit(est._layer_units()):  # a fit in another thread
        assert predictor.plan(40) == (_engine.PREDICT_BLOCK, True, 1)
        inside = est.predict_proba(X)
    np.testing.assert_array_equal(est.predict_proba(X), inside)


def _fold_flags(monkeypatch, est, X, y):
    """Whether the engine folded momentum, for every epoch of ``est.fit``."""
    from fastnn import _engine

    flags, run_epoch = [], _engine.EpochRunner.run_epoch

    def spy(runner, *args):
        flags.append(float(runner.fold))
        return run_epoch(runner, *args)

    monkeypatch.setattr(_engine.EpochRunner, "run_epoch", spy)
    _quiet_fit(est, X, y)
    monkeypatch.setattr(_engine.EpochRunner, "run_epoch", run_epoch)
    return flags


def test_momentum_is_folded_into_products_for_large_layers(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 300)), rng.integers(0, 2, 40)
    plain = dict(solver="sgd", nesterovs_momentum=False, max_iter=2, random_state=0)
    large = MLPClassifier((256,), **plain)
    assert _fold_flags(monkeypatch, large, X, y) == [1.0, 1.0]
    small = MLPClassifier((8,), **plain)
    assert _fold_flags(monkeypatch, small, X, y) == [0.0, 0.0]
    # Nesterov's momentum and Adam are never folded.
    nesterov = MLPClassifier((256,), solver="sgd", max_iter=2, random_state=0)
    assert _fold_flags(monkeypatch, nesterov, X, y) == [0.0, 0.0]
    adam = MLPClassifier((256,), solver="adam", max_iter=2, random_state=0)
    assert _fold_flags(monkeypatch, adam, X, y) == [0.0, 0.0]


@pytest.mark.parametrize("alpha", [0.0, 1e-3])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_folded_momentum_trains_as_the_separate_step(monkeypatch, alpha, sparse):
    # The same fit with the step folded into the products (threshold 0) and
    # with the separate fused update (threshold never reached).
    from fastnn import _engine

    X, y = datasets.load_digits(return_X_y=True)
    X = sp.csr_matrix(X / 16) if sparse else X / 16
    fits = []
    for threshold in (0, 10**12):
        monkeypatch.setattr(_engine, "FOLD_LAYER", threshold)
        est = MLPClassifier(
            (20,), solver="sgd", nesterovs_momentum=False, alpha=alpha,
            batch_size=64, max_iter=5, random_state=0, shuffle=True,
        )  # fmt: skip
        fits.append(_quiet_fit(est, X, y))
    folded, separate = fits
    np.testing.assert_allclose(folded.loss_curve_, separate.loss_curve_, rtol=1e-9)
    for a, b in zip(
        folded.coefs_ + folded.intercepts_, separate.coefs_ + separate.intercepts_
    ):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
