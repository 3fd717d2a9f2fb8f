"""Conversion between fastnn and scikit-learn estimators (fastnn.interop)."""

import builtins
import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastnn
from fastnn.interop import from_sklearn, to_onnx, to_sklearn

# "Equal" predictions: the tolerance the two implementations must agree to.
TOL = {np.float32: 1e-6, np.float64: 1e-12}
SKLEARN_ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
EXTRA_ACTIVATIONS = ["leaky_relu", "elu", "gelu", "silu", "softplus"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(dtype, target, n=120, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    if target == "binary":
        y = np.where(score > 0, "yes", "no")
    elif target == "multiclass":
        y = np.digitize(score, [-0.7, 0.0, 0.7])
    elif target == "multilabel":
        y = np.c_[score > 0, X[:, 2] > 0, X[:, 3] > 0.5].astype(int)
    elif target == "single":
        y = (score + 0.1 * X[:, 2] ** 2).astype(dtype)
    elif target == "multioutput":
        y = np.c_[score, X[:, 2] * X[:, 3]].astype(dtype)
    else:  # poisson counts
        y = rng.poisson(np.exp(0.5 * score)).astype(dtype)
    return X, y


def _fit(target, dtype, **params):
    X, y = _data(dtype, target)
    params = {"hidden_layer_sizes": (7, 5), "max_iter": 15, "random_state": 0} | params
    if target in ("binary", "multiclass", "multilabel"):
        est = fastnn.MLPClassifier(**params)
    else:
        loss = "poisson" if target == "poisson" else "squared_error"
        est = fastnn.MLPRegressor(loss=loss, **params)
    return est.fit(X, y), X, y


def _assert_same_outputs(a, b, X, dtype):
    tol = TOL[dtype]
    if hasattr(a, "predict_proba"):
        assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=tol, atol=tol)
        assert_array_equal(a.predict(X), b.predict(X))
    else:
        assert_allclose(a.predict(X), b.predict(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "target", ["binary", "multiclass", "multilabel", "single", "multioutput"]
)
@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
def test_to_sklearn_predicts_like_fastnn(dtype, target, activation):
    est, X, _ = _fit(target, dtype, activation=activation)
    sk = to_sklearn(est)
    expected_type = (
        sknn.MLPClassifier
        if target in ("binary", "multiclass", "multilabel")
        else sknn.MLPRegressor
    )
    assert type(sk) is expected_type
    assert sk.get_params() == {
        k: v for k, v in est.get_params().items() if k in sk.get_params()
    }
    assert [c.dtype for c in sk.coefs_] == [np.dtype(dtype)] * 3
    _assert_same_outputs(est, sk, X, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_sklearn_poisson_regressor(dtype):
    est, X, _ = _fit("poisson", dtype, solver="lbfgs")
    sk = to_sklearn(est)
    assert sk.loss == "poisson" and sk.out_activation_ == "exp"
    _assert_same_outputs(est, sk, X, dtype)


def test_to_sklearn_copies_fitted_state():
    est, X, y = _fit("multiclass", np.float64, early_stopping=True, max_iter=30)
    sk = to_sklearn(est)
    for name in (
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "n_features_in_",
        "n_iter_",
        "t_",
        "loss_",
        "best_validation_score_",
    ):
        assert getattr(sk, name) == getattr(est, name), name
    assert_array_equal(sk.classes_, est.classes_)
    assert sk.loss_curve_ == list(est.loss_curve_)
    assert sk.validation_scores_ == list(est.validation_scores_)
    assert sk.score(X, y) == est.score(X, y)
    # The weights are copies: changing one model leaves the other alone.
    before = est.predict_proba(X)
    sk.coefs_[0][:] = 0.0
    sk.intercepts_[-1][:] = 5.0
    assert_array_equal(est.predict_proba(X), before)


def test_to_sklearn_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _data(np.float64, "binary")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = fastnn.MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    sk = to_sklearn(est.fit(frame, y))
    assert_array_equal(sk.feature_names_in_, frame.columns.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no feature-name warning
        assert_allclose(sk.predict_proba(frame), est.predict_proba(frame), atol=1e-12)


def test_to_sklearn_sparse_input():
    X, y = _data(np.float64, "multiclass")
    X[np.abs(X) < 0.8] = 0.0
    Xs = sp.csr_matrix(X)
    est = fastnn.MLPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    sk = to_sklearn(est.fit(Xs, y))
    assert_allclose(sk.predict_proba(Xs), est.predict_proba(Xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", EXTRA_ACTIVATIONS)
def test_to_sklearn_rejects_activations_sklearn_lacks(activation):
    est, X, _ = _fit("single", np.float64, activation=activation, max_iter=2)
    with pytest.raises(ValueError, match=f"activation='{activation}'"):
        to_sklearn(est)
    with pytest.raises(ValueError, match=f"activation='{activation}'"):
        to_onnx(est, X)


def test_conversions_need_fitted_estimators():
    with pytest.raises(NotFittedError):
        to_sklearn(fastnn.MLPRegressor())
    with pytest.raises(NotFittedError):
        from_sklearn(sknn.MLPClassifier())


def test_from_sklearn_rejects_other_estimators():
    from sklearn.linear_model import LogisticRegression

    X, y = _data(np.float64, "binary")
    with pytest.raises(ValueError, match="LogisticRegression"):
        from_sklearn(LogisticRegression().fit(X, y))
    sk = sknn.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="MLPRegressor from a scikit-learn classifier"):
        from_sklearn(sk, cls=fastnn.MLPRegressor)


def _sk_fit(target, dtype, **params):
    X, y = _data(dtype, target, seed=1)
    params = {"hidden_layer_sizes": (8, 4), "max_iter": 20, "random_state": 3} | params
    cls = (
        sknn.MLPRegressor if target in ("single", "multioutput") else sknn.MLPClassifier
    )
    return cls(**params).fit(X, y), X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "target", ["binary", "multiclass", "multilabel", "multioutput"]
)
def test_from_sklearn_predicts_like_sklearn(dtype, target):
    sk, X, _ = _sk_fit(target, dtype, activation="tanh")
    est = from_sklearn(sk)
    expected = fastnn.MLPRegressor if target == "multioutput" else fastnn.MLPClassifier
    assert type(est) is expected
    assert est.get_params() == {**est.get_params(), **sk.get_params()}
    assert est.n_iter_ == sk.n_iter_ and est.loss_curve_ == sk.loss_curve_
    assert [c.dtype for c in est.coefs_] == [np.dtype(dtype)] * 3
    _assert_same_outputs(est, sk, X, dtype)
    # from_sklearn leaves the source untouched and shares no memory with it.
    assert not any(
        np.shares_memory(a, b) for a, b in zip(est.coefs_, sk.coefs_, strict=True)
    )


def test_estimator_methods_delegate_to_interop():
    sk, X, _ = _sk_fit("multiclass", np.float64)
    est = fastnn.MLPClassifier.from_sklearn(sk)
    assert isinstance(est, fastnn.MLPClassifier)
    _assert_same_outputs(est, est.to_sklearn(), X, np.float64)
    sk_reg, Xr, _ = _sk_fit("single", np.float64)
    reg = fastnn.MLPRegressor.from_sklearn(sk_reg)
    assert isinstance(reg, fastnn.MLPRegressor)
    _assert_same_outputs(reg, reg.to_sklearn(), Xr, np.float64)


# Full-batch SGD without momentum or shuffling makes a training step a pure
# function of the weights, so fastnn and scikit-learn continuing from the same
# weights must take the same steps.
STEP_PARAMS = {
    "solver": "sgd",
    "momentum": 0.0,
    "learning_rate": "constant",
    "learning_rate_init": 0.05,
    "batch_size": 120,
    "shuffle": False,
    "alpha": 1e-3,
    "n_iter_no_change": 1000,
}


@pytest.mark.parametrize("target", ["multiclass", "single"])
def test_from_sklearn_continues_training(target):
    sk, X, y = _sk_fit(target, np.float64)
    sk_twin = copy.deepcopy(sk)
    est = from_sklearn(sk)

    est.set_params(**STEP_PARAMS, warm_start=True, max_iter=3).fit(X, y)
    sk_twin.set_params(**STEP_PARAMS, warm_start=True, max_iter=3).fit(X, y)
    assert est.n_iter_ == sk_twin.n_iter_ == 3
    assert len(est.loss_curve_) == len(sk.loss_curve_) + 3
    assert_allclose(est.loss_curve_, sk_twin.loss_curve_, rtol=1e-12)
    for a, b in zip(
        est.coefs_ + est.intercepts_, sk_twin.coefs_ + sk_twin.intercepts_, strict=True
    ):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    est.partial_fit(X, y)
    sk_twin.partial_fit(X, y)
    for a, b in zip(
        est.coefs_ + est.intercepts_, sk_twin.coefs_ + sk_twin.intercepts_, strict=True
    ):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    _assert_same_outputs(est, sk_twin, X, np.float64)


@pytest.mark.parametrize("target", ["binary", "multioutput"])
def test_to_sklearn_continues_training(target):
    est, X, y = _fit(target, np.float64, **STEP_PARAMS)
    sk = to_sklearn(est)
    est.partial_fit(X, y)
    sk.partial_fit(X, y)
    assert est.t_ == sk.t_
    for a, b in zip(
        est.coefs_ + est.intercepts_, sk.coefs_ + sk.intercepts_, strict=True
    ):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    est.set_params(warm_start=True, max_iter=2).fit(X, y)
    sk.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert_allclose(est.loss_curve_, sk.loss_curve_, rtol=1e-12)
    _assert_same_outputs(est, sk, X, np.float64)


def test_round_trip_float32_keeps_dtype_and_outputs():
    est, X, _ = _fit("multiclass", np.float32, activation="relu")
    back = from_sklearn(to_sklearn(est))
    assert [c.dtype for c in back.coefs_] == [np.dtype(np.float32)] * 3
    assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_to_onnx_without_skl2onnx_names_the_extra(monkeypatch):
    est, X, _ = _fit("single", np.float64, max_iter=2)
    real_import = builtins.__import__

    def no_skl2onnx(name, *args, **kwargs):
        if name.split(".")[0] == "skl2onnx":
            raise ImportError("No module named 'skl2onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skl2onnx)
    with pytest.raises(ImportError, match=r'pip install "fastnn\[onnx\]"'):
        to_onnx(est, X)


FASTNN_ONLY_PARAMS = ("class_weight", "scoring", "dropout")


@pytest.mark.parametrize(
    "target, params, fit_validation",
    [
        ("multiclass", {"class_weight": "balanced", "dropout": 0.2}, False),
        (
            "binary",
            {
                "class_weight": {"no": 1.0, "yes": 3.0},
                "dropout": [0.2, 0.1],
                "early_stopping": True,
                "scoring": "loss",
            },
            True,
        ),
        (
            "single",
            {"dropout": 0.2, "early_stopping": True, "scoring": "r2"},
            True,
        ),
    ],
)
def test_to_sklearn_converts_models_trained_with_fastnn_only_parameters(
    target, params, fit_validation
):
    X, y = _data(np.float64, target)
    X_val, y_val = _data(np.float64, target, n=40, seed=5)
    cls = fastnn.MLPRegressor if target == "single" else fastnn.MLPClassifier
    est = cls(hidden_layer_sizes=(7, 5), max_iter=15, random_state=0, **params)
    fit_params = {"X_val": X_val, "y_val": y_val} if fit_validation else {}
    est.fit(X, y, **fit_params)
    if "early_stopping" in params:
        assert len(est.validation_loss_curve_) == est.n_iter_
    sk = to_sklearn(est)
    sk_params = sk.get_params()
    assert not set(FASTNN_ONLY_PARAMS) & set(sk_params)
    assert sk_params == {
        k: v for k, v in est.get_params().items() if k not in FASTNN_ONLY_PARAMS
    }
    assert not hasattr(sk, "validation_loss_curve_")
    _assert_same_outputs(est, sk, X, np.float64)
    _assert_same_outputs(est, sk, X_val, np.float64)


def _converged_sk(target, **params):
    """A scikit-learn model whose training stopped on no improvement."""
    sk, X, y = _sk_fit(
        target,
        np.float64,
        **STEP_PARAMS | {"n_iter_no_change": 2, "tol": 1e-2} | params,
    )
    assert sk.n_iter_ < 20  # stopped early
    assert sk._no_improvement_count > sk.n_iter_no_change
    return sk, X, y


@pytest.mark.parametrize("target", ["multiclass", "single"])
def test_from_sklearn_continues_a_converged_model(target):
    # Regression: from_sklearn gave no _no_improvement_count, so continuing
    # raised AttributeError as soon as an epoch did not improve the loss.
    sk, X, y = _converged_sk(target)
    est = from_sklearn(sk)
    assert est._no_improvement_count == sk._no_improvement_count
    sk_twin = copy.deepcopy(sk)
    est.partial_fit(X, y)
    sk_twin.partial_fit(X, y)
    assert est._no_improvement_count == sk_twin._no_improvement_count
    assert_allclose(est.loss_curve_, sk_twin.loss_curve_, rtol=1e-12)

    # Both libraries stop the warm-started fit at the same epoch.
    est.set_params(warm_start=True, max_iter=20).fit(X, y)
    sk_twin.set_params(warm_start=True, max_iter=20).fit(X, y)
    assert est.n_iter_ == sk_twin.n_iter_ < 20
    assert est.best_loss_ == pytest.approx(sk_twin.best_loss_, rel=1e-12)
    assert_allclose(est.loss_curve_, sk_twin.loss_curve_, rtol=1e-12)
    _assert_same_outputs(est, sk_twin, X, np.float64)


def test_from_sklearn_continues_an_early_stopped_model():
    sk, X, y = _converged_sk(
        "multiclass", early_stopping=True, validation_fraction=0.2, batch_size=96
    )
    est = from_sklearn(sk)
    n_sk = len(sk.validation_scores_)
    assert np.isnan(est.validation_loss_curve_).all()
    assert len(est.validation_loss_curve_) == n_sk
    sk_twin = copy.deepcopy(sk)
    est.set_params(warm_start=True, max_iter=20).fit(X, y)
    sk_twin.set_params(warm_start=True, max_iter=20).fit(X, y)
    assert est.n_iter_ == sk_twin.n_iter_ < 20
    assert_allclose(est.validation_scores_, sk_twin.validation_scores_, rtol=1e-12)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_)
    assert np.isnan(est.validation_loss_curve_[:n_sk]).all()
    assert np.isfinite(est.validation_loss_curve_[n_sk:]).all()
    _assert_same_outputs(est, sk_twin, X, np.float64)


def test_from_sklearn_lbfgs_model_has_no_epoch_bookkeeping():
    sk, X, _ = _sk_fit("multiclass", np.float64, solver="lbfgs")
    est = from_sklearn(sk)
    assert not hasattr(est, "_no_improvement_count")
    assert not hasattr(est, "validation_loss_curve_")
    _assert_same_outputs(est, sk, X, np.float64)
