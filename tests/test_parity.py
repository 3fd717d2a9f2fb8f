"""Randomised parity with scikit-learn: same parameters, same results.

Each case draws one configuration from a fixed seed: an estimator and a target
type, every public parameter the two libraries share, sample weights or none,
and an entry point (``fit``, a ``warm_start`` refit, or repeated
``partial_fit``). fastnn and scikit-learn then run it in float64 on the same
small data, and must agree: the same exception type and message, or the same
``n_iter_`` and ``t_``, the same loss curve, validation scores and best values
to 1e-6 relative, and the same coefficients to 1e-6 relative to each array's
largest entry.

scikit-learn runs its own code with its dense products and dot products on
SciPy's BLAS, the library fastnn's kernels call, with NumPy's choice of BLAS
routine by shape (``tests/scipy_blas_numpy.py``): NumPy's and SciPy's wheels
ship different OpenBLAS releases, which round some products differently on
some CPUs, and L-BFGS grows a last-bit difference beyond 1e-6 within a few
dozen steps.
"""

import sys
import warnings

import numpy as np
import pytest
import scipy_blas_numpy
from sklearn.datasets import make_classification, make_regression
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

from fastnn import MLPClassifier, MLPRegressor

SEED = 20261130
N_CASES = 300
RTOL = 1e-6

TARGETS = ["binary", "multiclass", "multilabel", "regression", "multioutput"]


def _pick(rng, options):
    return options[rng.randint(len(options))]


def draw_data(rng, target):
    """Small data of one target type; sometimes with a class of one member."""
    n = int(rng.randint(12, 60))
    n_features = int(rng.randint(2, 6))
    seed = int(rng.randint(1000))
    if target in ("regression", "multioutput", "poisson"):
        n_targets = 1 if target != "multioutput" else int(rng.randint(2, 4))
        X, y = make_regression(
            n_samples=n, n_features=n_features, n_targets=n_targets, noise=0.1,
            random_state=seed,
        )  # fmt: skip
        y = y / (np.abs(y).max() + 1e-12)
        if target == "poisson":
            y = np.exp(y)
        return X, y
    n_classes = 3 + int(rng.randint(3)) if target == "multiclass" else 2
    X, y = make_classification(
        n_samples=n, n_features=max(n_features, 3), n_informative=3,
        n_redundant=0, n_classes=n_classes, n_clusters_per_class=1,
        random_state=seed,
    )  # fmt: skip
    if target == "multilabel":
        extra = (X[:, :2] > 0).astype(int)
        y = np.column_stack([y, extra])
    elif rng.rand() < 0.1:
        y[0] = n_classes  # a class with one member: no stratified split
    return X, y


def draw_params(rng, target):
    """Every shared public parameter, drawn across its interesting values."""
    solver = _pick(rng, ["lbfgs", "sgd", "adam"])
    n_hidden = int(rng.randint(0, 3))
    params = dict(
        hidden_layer_sizes=tuple(int(rng.randint(1, 8)) for _ in range(n_hidden)),
        activation=_pick(rng, ["identity", "logistic", "tanh", "relu"]),
        solver=solver,
        alpha=_pick(rng, [0.0, 1e-4, 1e-2, 1.0]),
        batch_size=_pick(rng, ["auto", 1, 5, 16, 1000]),
        learning_rate=_pick(rng, ["constant", "invscaling", "adaptive"]),
        learning_rate_init=_pick(rng, [1e-3, 1e-2, 0.1]),
        power_t=_pick(rng, [0.25, 0.5]),
        max_iter=int(_pick(rng, [1, 2, 5, 9, 14, 25])),
        shuffle=bool(rng.rand() < 0.7),
        random_state=int(rng.randint(100)),
        tol=_pick(rng, [0.0, 1e-4, 1e-2, 0.3]),
        momentum=_pick(rng, [0.0, 0.5, 0.9]),
        nesterovs_momentum=bool(rng.rand() < 0.5),
        early_stopping=bool(rng.rand() < 0.4),
        validation_fraction=_pick(rng, [0.05, 0.1, 0.2, 0.33]),
        beta_1=_pick(rng, [0.5, 0.9]),
        beta_2=_pick(rng, [0.9, 0.999]),
        epsilon=_pick(rng, [1e-8, 1e-4]),
        n_iter_no_change=_pick(rng, [1, 2, 5, 10, np.inf]),
        max_fun=_pick(rng, [3, 20, 15000]),
    )
    if target in ("regression", "multioutput", "poisson"):
        params["loss"] = "poisson" if target == "poisson" else "squared_error"
    return params


def draw_case(i):
    """Configuration ``i`` of the suite, from the suite's fixed seed."""
    rng = np.random.RandomState([SEED, i])
    target = _pick(rng, TARGETS + ["poisson"])
    X, y = draw_data(rng, target)
    params = draw_params(rng, target)
    sw = rng.uniform(0.2, 3.0, X.shape[0]) if rng.rand() < 0.3 else None
    entry = _pick(rng, ["fit", "fit", "warm_start", "partial_fit"])
    return target, X, y, sw, params, entry


def run(cls, target, X, y, sw, params, entry):
    """Run one entry point; return the estimator or the exception raised.

    The warnings raised on the way are kept in ``est.warnings_seen``.
    """
    est = cls(**params)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            if entry == "fit":
                est.fit(X, y, sample_weight=sw)
            elif entry == "warm_start":
                est.set_params(warm_start=True)
                est.fit(X, y, sample_weight=sw)
                est.set_params(max_iter=max(1, params["max_iter"] // 2))
                est.fit(X[::-1], y[::-1], sample_weight=sw)
            else:
                kwargs = {}
                if target in ("binary", "multiclass"):
                    kwargs["classes"] = np.unique(y)
                for _ in range(3):
                    est.partial_fit(X, y, sample_weight=sw, **kwargs)
                    kwargs = {}
    except Exception as exc:  # compared with scikit-learn's below
        return exc
    # numpy's floating-point RuntimeWarnings are not scikit-learn's messages.
    est.warnings_seen = [
        (w.category, str(w.message))
        for w in seen
        if not issubclass(w.category, RuntimeWarning)
    ]
    return est


def assert_close(ours, theirs, what):
    ours = np.asarray(ours, dtype=float)
    theirs = np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, what
    scale = np.max(np.abs(theirs), initial=0.0)
    np.testing.assert_allclose(
        ours, theirs, rtol=RTOL, atol=RTOL * scale, equal_nan=True, err_msg=what
    )


def assert_same_fit(ours, theirs):
    assert ours.n_iter_ == theirs.n_iter_, "n_iter_"
    assert ours.t_ == theirs.t_, "t_"
    assert_close(ours.loss_, theirs.loss_, "loss_")
    for name in ("loss_curve_", "validation_scores_"):
        a, b = getattr(ours, name, None), getattr(theirs, name, None)
        assert (a is None) == (b is None), name
        if b is not None:
            assert len(a) == len(b), name
            for k, (u, v) in enumerate(zip(a, b)):
                assert_close(u, v, f"{name}[{k}]")
    for name in ("best_loss_", "best_validation_score_"):
        a, b = getattr(ours, name, None), getattr(theirs, name, None)
        assert (a is None) == (b is None), name
        if b is not None:
            assert_close(a, b, name)
    pairs = zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)
    for k, (a, b) in enumerate(pairs):
        assert_close(a, b, f"parameter array {k}")


@pytest.fixture
def sklearn_on_scipy_blas(monkeypatch):
    """scikit-learn's MLP module with its products on SciPy's BLAS."""
    module = sys.modules[SkMLPClassifier.__module__]
    monkeypatch.setattr(module, "safe_sparse_dot", scipy_blas_numpy.safe_sparse_dot)
    monkeypatch.setattr(module, "np", scipy_blas_numpy.numpy_with_scipy_dot())


@pytest.mark.parametrize("case", range(N_CASES))
def test_parity_with_sklearn(case, sklearn_on_scipy_blas):
    target, X, y, sw, params, entry = draw_case(case)
    if target in ("regression", "multioutput", "poisson"):
        classes = MLPRegressor, SkMLPRegressor
    else:
        classes = MLPClassifier, SkMLPClassifier
    theirs = run(classes[1], target, X, y, sw, params, entry)
    ours = run(classes[0], target, X, y, sw, params, entry)
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        assert type(ours) is type(theirs), (repr(ours), repr(theirs))
        assert str(ours) == str(theirs)
        return
    assert_same_fit(ours, theirs)
    assert ours.warnings_seen == theirs.warnings_seen
    if hasattr(theirs, "predict_proba"):
        assert_close(ours.predict_proba(X), theirs.predict_proba(X), "predict_proba")
    else:
        assert_close(ours.predict(X), theirs.predict(X), "predict")


@pytest.mark.parametrize(
    "target, activation, hidden",
    [("regression", "logistic", (2, 7)), ("regression", "relu", (9,)),
     ("binary", "relu", (6, 1)), ("multioutput", "identity", (5,))],
)  # fmt: skip
def test_lbfgs_fit_is_bit_identical(sklearn_on_scipy_blas, target, activation, hidden):
    """Float64 L-BFGS takes scikit-learn's steps exactly, long columns included.

    With the products on the same BLAS, every loss and gradient the line
    search sees is scikit-learn's to the last bit: the single-column losses
    and single-unit bias sums are pairwise sums in NumPy's order (300 rows:
    more than one of NumPy's blocks), the logistic is scipy's ``expit``.
    """
    X, y = draw_data(np.random.RandomState(7), target)
    X = np.repeat(X, 300 // X.shape[0] + 1, axis=0)[:300]
    X = X + np.random.RandomState(8).normal(scale=0.1, size=X.shape)
    y = np.repeat(y, 300 // y.shape[0] + 1, axis=0)[:300]
    params = dict(
        hidden_layer_sizes=hidden, activation=activation, solver="lbfgs",
        max_iter=40, random_state=3,
    )  # fmt: skip
    classes = (MLPRegressor, SkMLPRegressor)
    if target == "binary":
        classes = (MLPClassifier, SkMLPClassifier)
    ours, theirs = (cls(**params) for cls in classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == theirs.loss_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_parity_suite_covers_every_shared_parameter():
    """The drawn cases span every value of every parameter and entry point."""
    seen = {}
    for i in range(N_CASES):
        target, X, y, sw, params, entry = draw_case(i)
        for key, value in [("target", target), ("entry", entry),
                           ("weighted", sw is not None), *params.items()]:  # fmt: skip
            seen.setdefault(key, set()).add(repr(value))
    assert seen["target"] == {repr(t) for t in TARGETS + ["poisson"]}
    assert seen["entry"] == {repr(e) for e in ["fit", "warm_start", "partial_fit"]}
    assert seen["weighted"] == {"True", "False"}
    assert len(seen["solver"]) == 3 and len(seen["activation"]) == 4
    assert len(seen["learning_rate"]) == 3 and len(seen["batch_size"]) == 5
    for key in ("shuffle", "early_stopping", "nesterovs_momentum"):
        assert seen[key] == {"True", "False"}
    sk = set(SkMLPClassifier().get_params()) | set(SkMLPRegressor().get_params())
    drawn = set(seen) - {"target", "entry", "weighted"}
    assert sk - drawn == {"verbose", "warm_start"}
