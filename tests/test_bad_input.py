"""Bad and unusual input: fastnn must fail (or succeed) exactly like sklearn.

Every error test is parametrized over the two implementations: running it
against ``sklearn.neural_network`` proves that the expected exception type and
message really are scikit-learn's, running it against ``fastnn`` proves that
fastnn matches. Each bad-input case is checked for both estimators and for
``fit``, ``partial_fit``, ``predict`` and ``predict_proba`` where it applies.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk_nn
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastnn

IMPLS = [pytest.param(fastnn, id="fastnn"), pytest.param(sk_nn, id="sklearn")]
CLASSES = np.array([0, 1, 2])
N, P = 12, 3

# (estimator kind, method) pairs that take an X.
ENTRIES = [
    ("clf", "fit"),
    ("clf", "partial_fit"),
    ("clf", "predict"),
    ("clf", "predict_proba"),
    ("reg", "fit"),
    ("reg", "partial_fit"),
    ("reg", "predict"),
]
FIT_ENTRIES = [e for e in ENTRIES if "fit" in e[1]]
KINDS = ["clf", "reg"]


@pytest.fixture(params=IMPLS)
def nn(request):
    return request.param


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(kind, n=N, p=P, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = CLASSES[np.arange(n) % 3] if kind == "clf" else rng.randn(n)
    return X, y


def _est(nn, kind, **params):
    cls = nn.MLPClassifier if kind == "clf" else nn.MLPRegressor
    params = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0, **params}
    return cls(**params)


def _name(kind):
    return "MLPClassifier" if kind == "clf" else "MLPRegressor"


def _call(nn, kind, method, X, y=None, **params):
    """Run ``method`` on a fresh estimator (fitted on clean data for predict)."""
    est = _est(nn, kind, **params)
    if y is None:
        y = _data(kind, n=len(X) if hasattr(X, "__len__") else N)[1]
    if method == "fit":
        return est.fit(X, y)
    if method == "partial_fit":
        extra = {"classes": CLASSES} if kind == "clf" else {}
        return est.partial_fit(X, y, **extra)
    est.fit(*_data(kind))
    return getattr(est, method)(X)


# --------------------------------------------------------------------------
# Invalid values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, method", ENTRIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, "Input X contains NaN"),
        (np.inf, "Input X contains infinity or a value too large for dtype"),
        (-np.inf, "Input X contains infinity or a value too large for dtype"),
    ],
    ids=["nan", "+inf", "-inf"],
)
def test_non_finite_X(nn, kind, method, dtype, value, message):
    X = _data(kind)[0].astype(dtype)
    X[4, 1] = value
    if "infinity" in message:
        message += re.escape(f"('{np.dtype(dtype).name}')")
    with pytest.raises(ValueError, match=message):
        _call(nn, kind, method, X)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, "Input y contains NaN"),
        (np.inf, r"Input y contains infinity or a value too large for dtype\("),
        (-np.inf, r"Input y contains infinity or a value too large for dtype\("),
    ],
    ids=["nan", "+inf", "-inf"],
)
def test_non_finite_y_regressor(nn, method, value, message):
    X, y = _data("reg")
    y[3] = value
    with pytest.raises(ValueError, match=message):
        _call(nn, "reg", method, X, y)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_y_classifier_fit(nn, value):
    X, y = _data("clf")
    y = y.astype(float)
    y[3] = value
    with pytest.raises(ValueError, match="Input y contains"):
        _call(nn, "clf", "fit", X, y)


NEAR_MAX_FITS = [
    (kind, method, solver)
    for kind, method in FIT_ENTRIES
    for solver in ["sgd", "adam", "lbfgs"]
    if not (method == "partial_fit" and solver == "lbfgs")
]


@pytest.mark.parametrize("kind, method, solver", NEAR_MAX_FITS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_near_float_max_X_fit(nn, kind, method, solver, dtype):
    """Either sklearn's non-finite-weights error, or finite weights: no NaN model."""
    X, y = _data(kind)
    X = X.astype(dtype)
    big = np.finfo(dtype).max
    X[2, 0], X[5, 2] = big, -big
    try:
        est = _call(nn, kind, method, X, y, solver=solver)
    except ValueError as exc:
        assert "Solver produced non-finite parameter weights" in str(exc)
        return
    for w in est.coefs_ + est.intercepts_:
        assert np.isfinite(w).all()
    # Predictions may overflow with such weights (sklearn's too); they must
    # still come back with the right shape and labels.
    pred = est.predict(X)
    assert pred.shape == (N,)
    if kind == "clf":
        assert set(pred) <= set(CLASSES)


def _reference_forward(est, X):
    """Plain NumPy float64 forward pass from the fitted coefs_/intercepts_."""
    funcs = {
        "tanh": np.tanh,
        "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "relu": lambda z: np.maximum(z, 0.0),
        "identity": lambda z: z,
    }
    A = np.asarray(X, dtype=np.float64)
    last = len(est.coefs_) - 1
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        A = A @ W.astype(np.float64) + b.astype(np.float64)
        if i < last:
            A = funcs[est.activation](A)
    if hasattr(est, "classes_") and len(est.classes_) == 2:
        A = 1.0 / (1.0 + np.exp(-A))
        A = np.hstack([1.0 - A, A])
    elif hasattr(est, "classes_"):
        A = np.exp(A - A.max(axis=1, keepdims=True))
        A /= A.sum(axis=1, keepdims=True)
    return A


@pytest.mark.parametrize("kind, method", [e for e in ENTRIES if "fit" not in e[1]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_near_float_max_X_predict(nn, kind, method, dtype, activation):
    """Bounded hidden units keep huge inputs finite: output == reference."""
    X, y = _data(kind)
    est = _est(nn, kind, activation=activation).fit(X.astype(dtype), y)
    Xt = X.astype(dtype)
    big = np.finfo(dtype).max
    Xt[2, 0], Xt[5, 2], Xt[7, 1] = big, -big, big
    out = getattr(est, method)(Xt)
    ref = _reference_forward(est, Xt)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    if method == "predict_proba":
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol)
    elif kind == "clf":
        np.testing.assert_array_equal(out, CLASSES[ref.argmax(axis=1)])
    else:
        np.testing.assert_allclose(out, ref.ravel(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("kind, method", [e for e in ENTRIES if "fit" not in e[1]])
def test_float32_model_float64_input_beyond_float32_range(nn, kind, method):
    """float64 X that float32 cannot hold must not turn into inf inside a
    float32 model: sklearn computes such input in float64."""
    X, y = _data(kind)
    est = _est(nn, kind, activation="relu").fit(X.astype(np.float32), y)
    Xt = X.copy()
    Xt[2, 0], Xt[5, 1] = 1e39, -1e39  # finite in float64, inf in float32
    out = getattr(est, method)(Xt)
    ref = _reference_forward(est, Xt)
    if method == "predict_proba":
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    elif kind == "clf":
        np.testing.assert_array_equal(out, CLASSES[ref.argmax(axis=1)])
    else:
        np.testing.assert_allclose(out, ref.ravel(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# Invalid shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_X_1d(nn, kind, method):
    X = _data(kind)[0][:, 0]
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        _call(nn, kind, method, X)


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_X_3d(nn, kind, method):
    X = _data(kind)[0].reshape(N, P, 1)
    msg = re.escape(
        f"Found array with dim 3, while dim <= 2 is required by {_name(kind)}"
    )
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X)


@pytest.mark.parametrize("kind, method", FIT_ENTRIES)
@pytest.mark.parametrize("n_y", [N - 1, N + 1])
def test_y_length_mismatch(nn, kind, method, n_y):
    X = _data(kind)[0]
    y = _data(kind, n=max(N, n_y))[1][:n_y]
    msg = re.escape(f"inconsistent numbers of samples: [{N}, {n_y}]")
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X, y)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_y_3d(nn, kind, method):
    X, y = _data(kind)
    msg = re.escape(
        f"Found array with dim 3, while dim <= 2 is required by {_name(kind)}"
    )
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X, y.reshape(N, 1, 1))


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_empty_rows(nn, kind, method):
    X = _data(kind)[0][:0]
    msg = re.escape(
        f"Found array with 0 sample(s) (shape=(0, {P})) while a minimum of 1 is "
        f"required by {_name(kind)}."
    )
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X, _data(kind)[1][:0])


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_empty_features(nn, kind, method):
    X = _data(kind)[0][:, :0]
    msg = re.escape(
        f"Found array with 0 feature(s) (shape=({N}, 0)) while a minimum of 1 is "
        f"required by {_name(kind)}."
    )
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X)


FEATURE_MISMATCH = [
    ("clf", "fit", "predict"),
    ("clf", "fit", "predict_proba"),
    ("clf", "fit", "partial_fit"),
    ("clf", "partial_fit", "partial_fit"),
    ("clf", "partial_fit", "predict"),
    ("clf", "fit", "warm_start_fit"),
    ("reg", "fit", "predict"),
    ("reg", "fit", "partial_fit"),
    ("reg", "partial_fit", "partial_fit"),
    ("reg", "partial_fit", "predict"),
    ("reg", "fit", "warm_start_fit"),
]


@pytest.mark.parametrize("kind, first, second", FEATURE_MISMATCH)
@pytest.mark.parametrize("p_new", [P - 1, P + 1])
def test_feature_count_mismatch(nn, kind, first, second, p_new):
    X, y = _data(kind)
    est = _call(nn, kind, first, X, y, warm_start=True)
    X_new = _data(kind, p=p_new, seed=1)[0]
    msg = re.escape(
        f"X has {p_new} features, but {_name(kind)} is expecting {P} features as input."
    )
    with pytest.raises(ValueError, match=msg):
        if second == "warm_start_fit":
            est.fit(X_new, y)
        elif second == "partial_fit":
            est.partial_fit(X_new, y)
        else:
            getattr(est, second)(X_new)


def test_refit_without_warm_start_accepts_new_feature_count(nn):
    X, y = _data("clf")
    est = _est(nn, "clf").fit(X, y)
    X4 = _data("clf", p=P + 1)[0]
    assert est.fit(X4, y).n_features_in_ == P + 1
    assert est.predict(X4).shape == (N,)


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_strings_in_X(nn, kind, method):
    X = np.array([["a", "b", "c"]] * N)
    if "fit" in method:
        msg = "could not convert string to float"
    else:
        msg = "dtype='numeric' is not compatible with arrays of bytes/strings"
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X)


@pytest.mark.parametrize("kind, method", ENTRIES)
def test_complex_X(nn, kind, method):
    X = _data(kind)[0] + 1j
    with pytest.raises(ValueError, match="Complex data not supported"):
        _call(nn, kind, method, X)


@pytest.mark.parametrize("kind, method", [e for e in ENTRIES if "fit" not in e[1]])
def test_predict_before_fit(nn, kind, method):
    est = _est(nn, kind)
    msg = f"This {_name(kind)} instance is not fitted yet"
    with pytest.raises(NotFittedError, match=msg):
        getattr(est, method)(_data(kind)[0])


@pytest.mark.parametrize("solver", ["lbfgs", "newton"])
def test_classifier_partial_fit_needs_stochastic_solver(nn, solver):
    est = _est(nn, "clf", solver=solver)
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        est.partial_fit(*_data("clf"), classes=CLASSES)


def test_regressor_partial_fit_with_lbfgs_runs_lbfgs(nn):
    # As in scikit-learn 1.9, whose MLPRegressor offers partial_fit for every
    # solver (``available_if(lambda est: est._check_solver)`` never calls the
    # check): with lbfgs, each call is an L-BFGS fit from the current weights.
    est = _est(nn, "reg", solver="lbfgs")
    assert hasattr(est, "partial_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.partial_fit(*_data("reg"))
    assert est.n_iter_ >= 1 and np.isfinite(est.loss_)


def test_regressor_partial_fit_rejects_unknown_solver(nn):
    est = _est(nn, "reg", solver="newton")
    with pytest.raises(ValueError, match="The 'solver' parameter of MLPRegressor"):
        est.partial_fit(*_data("reg"))


@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_rejects_early_stopping(nn, kind):
    X, y = _data(kind)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopp"):
        _call(nn, kind, "partial_fit", X, y, early_stopping=True)


# --------------------------------------------------------------------------
# Invalid labels
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("label", [7, "only"])
def test_single_class(nn, method, label):
    """sklearn trains on a single class and then always predicts it."""
    X = _data("clf")[0]
    y = np.array([label] * N)
    est = _est(nn, "clf")
    if method == "fit":
        est.fit(X, y)
    else:
        est.partial_fit(X, y, classes=[label])
    np.testing.assert_array_equal(est.classes_, [label])
    np.testing.assert_array_equal(est.predict(X), y)
    proba = est.predict_proba(X)
    assert proba.shape[0] == N
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_partial_fit_needs_classes_first(nn):
    X, y = _data("clf")
    msg = "classes must be passed on the first call to partial_fit."
    with pytest.raises(ValueError, match=msg):
        _est(nn, "clf").partial_fit(X, y)


@pytest.mark.parametrize("call", ["first", "later"])
def test_partial_fit_unknown_label(nn, call):
    X, y = _data("clf")
    est = _est(nn, "clf")
    y_bad = y.copy()
    y_bad[0] = 9
    msg = re.escape("`y` has classes not in `self.classes_`.")
    with pytest.raises(ValueError, match=msg):
        if call == "first":
            est.partial_fit(X, y_bad, classes=CLASSES)
        else:
            est.partial_fit(X, y, classes=CLASSES).partial_fit(X, y_bad)


def test_partial_fit_changed_classes(nn):
    X, y = _data("clf")
    est = _est(nn, "clf").partial_fit(X, y, classes=CLASSES)
    msg = re.escape("`classes=[0, 1, 2, 3]` is not the same as on last call")
    with pytest.raises(ValueError, match=msg):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_continuous_labels_for_classifier(nn):
    X, y = _data("reg")
    with pytest.raises(ValueError, match="Unknown label type"):
        _est(nn, "clf").fit(X, y)


def test_mixed_type_labels(nn):
    X = _data("clf")[0]
    y = np.array([1, "a", 2.5] * (N // 3), dtype=object)
    with pytest.raises(TypeError, match="not supported between instances"):
        _est(nn, "clf").fit(X, y)


@pytest.mark.parametrize("n", [1, 2])
def test_early_stopping_too_few_samples(nn, n):
    X, y = _data("reg", n=n)
    msg = "the resulting train set will be empty" if n == 1 else "too small"
    with pytest.raises(ValueError, match=msg):
        _est(nn, "reg", early_stopping=True).fit(X, y)


def test_early_stopping_class_with_one_member(nn):
    X = _data("clf")[0][:4]
    y = np.array([0, 0, 0, 1])
    with pytest.raises(ValueError, match="The least populated class"):
        _est(nn, "clf", early_stopping=True).fit(X, y)


# --------------------------------------------------------------------------
# Invalid hyper-parameters
# --------------------------------------------------------------------------


def _param_msg(kind, name, value):
    """Start and end of sklearn's InvalidParameterError message."""
    return rf"The '{name}' parameter of {_name(kind)} must be .* Got {value!r} instead"


BAD_PARAMS = [
    ("hidden_layer_sizes", 0),
    ("hidden_layer_sizes", -3),
    ("hidden_layer_sizes", "big"),
    ("hidden_layer_sizes", None),
    ("learning_rate_init", 0.0),
    ("learning_rate_init", 0),
    ("learning_rate_init", -0.1),
    ("batch_size", 0),
    ("batch_size", -5),
    ("batch_size", 1.5),
    ("validation_fraction", 1.0),
    ("validation_fraction", 1),
    ("validation_fraction", -0.1),
    ("momentum", 1.1),
    ("momentum", -0.1),
    ("activation", "sigmoid"),
    ("activation", "RELU"),
    ("solver", "newton"),
    ("learning_rate", "cyclic"),
    ("alpha", -1.0),
    ("max_iter", 0),
    ("tol", -1.0),
    ("beta_1", 1.0),
    ("beta_2", 1.0),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
    ("power_t", -1.0),
    ("shuffle", "yes"),
]


@pytest.mark.parametrize(
    "kind, method, name, value",
    [
        (kind, method, name, value)
        for kind, method in FIT_ENTRIES
        for name, value in BAD_PARAMS
        if (method, name) != ("partial_fit", "solver")
    ],
)
def test_invalid_hyperparameter(nn, kind, method, name, value):
    X, y = _data(kind)
    with pytest.raises(ValueError, match=_param_msg(kind, name, value)):
        _call(nn, kind, method, X, y, **{name: value})


@pytest.mark.parametrize("kind, method", FIT_ENTRIES)
@pytest.mark.parametrize("sizes", [(0,), (5, 0), (-1,), [4, 0, 3]])
def test_zero_or_negative_layer_size(nn, kind, method, sizes):
    X, y = _data(kind)
    msg = re.escape(f"hidden_layer_sizes must be > 0, got {list(sizes)}.")
    with pytest.raises(ValueError, match=msg):
        _call(nn, kind, method, X, y, hidden_layer_sizes=sizes)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("loss", ["absolute_error", "log_loss"])
def test_unknown_regressor_loss(nn, method, loss):
    X, y = _data("reg")
    with pytest.raises(ValueError, match=_param_msg("reg", "loss", loss)):
        _call(nn, "reg", method, X, y, loss=loss)


def test_classifier_has_no_loss_parameter(nn):
    with pytest.raises(TypeError, match="unexpected keyword argument 'loss'"):
        nn.MLPClassifier(loss="log_loss")


@pytest.mark.parametrize("kind", KINDS)
def test_validation_fraction_zero_with_early_stopping(nn, kind):
    X, y = _data(kind, n=30)
    msg = "test_size=0.0 should be either positive and smaller than the number"
    with pytest.raises(ValueError, match=msg):
        _est(nn, kind, early_stopping=True, validation_fraction=0.0).fit(X, y)


@pytest.mark.parametrize("kind", KINDS)
def test_validation_fraction_zero_without_early_stopping(nn, kind):
    """Without early stopping sklearn ignores validation_fraction=0."""
    X, y = _data(kind)
    est = _est(nn, kind, validation_fraction=0.0).fit(X, y)
    assert est.n_iter_ == 3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sizes", [(), []])
def test_empty_hidden_layer_sizes_is_a_linear_model(nn, kind, sizes):
    """sklearn accepts no hidden layer: a single (n_features, n_outputs) layer."""
    X, y = _data(kind)
    est = _est(nn, kind, hidden_layer_sizes=sizes, activation="tanh").fit(X, y)
    n_out = 3 if kind == "clf" else 1
    assert est.n_layers_ == 2
    assert [c.shape for c in est.coefs_] == [(P, n_out)]
    if kind == "clf":
        out = est.predict_proba(X)
    else:
        out = est.predict(X).reshape(-1, 1)
    np.testing.assert_allclose(out, _reference_forward(est, X), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_momentum_one_is_valid(nn, kind):
    est = _est(nn, kind, solver="sgd", momentum=1.0).fit(*_data(kind))
    assert est.n_iter_ == 3


# --------------------------------------------------------------------------
# Invalid sample weights
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, method", FIT_ENTRIES)
@pytest.mark.parametrize(
    "weights, message",
    [
        (
            np.ones(N - 1),
            re.escape(f"sample_weight.shape == ({N - 1},), expected ({N},)!"),
        ),
        (np.r_[np.nan, np.ones(N - 1)], "Input sample_weight contains NaN"),
        (np.r_[np.inf, np.ones(N - 1)], "Input sample_weight contains infinity"),
        (np.ones((N, 1)), "Sample weights must be 1D array or scalar, got 2D array"),
        (np.zeros(N), "Sample weights must contain at least one non-zero number"),
    ],
    ids=["length", "nan", "inf", "2d", "zeros"],
)
def test_invalid_sample_weight(nn, kind, method, weights, message):
    X, y = _data(kind)
    est = _est(nn, kind)
    extra = {"classes": CLASSES} if (kind, method) == ("clf", "partial_fit") else {}
    with pytest.raises(ValueError, match=message):
        getattr(est, method)(X, y, sample_weight=weights, **extra)


# --------------------------------------------------------------------------
# Unusual but valid input: same model as from the plain dense C-ordered input
# --------------------------------------------------------------------------


def _assert_same_weights(a, b, rtol=0.0):
    wa, wb = a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_
    assert len(wa) == len(wb)
    for x, z in zip(wa, wb):
        assert x.dtype == z.dtype
        if rtol:
            np.testing.assert_allclose(x, z, rtol=rtol, atol=rtol)
        else:
            np.testing.assert_array_equal(x, z)


LABEL_SETS = {
    "str": np.array(["cat", "dog", "emu"]),
    "object": np.array(["cat", "dog", "emu"], dtype=object),
    "bool": np.array([False, True]),
    "float": np.array([-1.0, 0.0, 2.0]),
    "negative_int": np.array([-7, 0, 4]),
}


@pytest.mark.parametrize("labels", LABEL_SETS.values(), ids=LABEL_SETS.keys())
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_label_types(nn, labels, method):
    """Any sortable labels train the same network as their class indices."""
    X = _data("clf")[0]
    codes = np.arange(N) % len(labels)
    kw = {"classes": labels} if method == "partial_fit" else {}
    kw_codes = {"classes": np.arange(len(labels))} if method == "partial_fit" else {}
    est = getattr(_est(nn, "clf"), method)(X, labels[codes], **kw)
    ref = getattr(_est(nn, "clf"), method)(X, codes, **kw_codes)
    np.testing.assert_array_equal(est.classes_, labels)
    _assert_same_weights(est, ref)
    pred = est.predict(X)
    np.testing.assert_array_equal(pred, labels[ref.predict(X)])
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))


def test_list_input(nn):
    X, y = _data("clf")
    est = _est(nn, "clf").fit(X.tolist(), y.tolist())
    _assert_same_weights(est, _est(nn, "clf").fit(X, y))
    np.testing.assert_array_equal(est.predict(X.tolist()), est.predict(X))


@pytest.mark.parametrize("kind", KINDS)
def test_column_vector_y_warns_and_trains(nn, kind):
    from sklearn.exceptions import DataConversionWarning

    X, y = _data(kind)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        est = _est(nn, kind).fit(X, y.reshape(-1, 1))
    _assert_same_weights(est, _est(nn, kind).fit(X, y))


@pytest.mark.parametrize("kind", KINDS)
def test_pandas_dataframe(nn, kind):
    import pandas as pd

    X, y = _data(kind)
    cols = ["alpha", "beta", "gamma"]
    df = pd.DataFrame(X, columns=cols)
    est = _est(nn, kind).fit(df, pd.Series(y))
    ref = _est(nn, kind).fit(X, y)
    np.testing.assert_array_equal(est.feature_names_in_, cols)
    assert not hasattr(ref, "feature_names_in_")
    _assert_same_weights(est, ref)
    np.testing.assert_array_equal(est.predict(df), ref.predict(X))
    with pytest.raises(ValueError, match="The feature names should match those"):
        est.predict(df[cols[::-1]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(X)
    with pytest.warns(UserWarning, match="X has feature names, but"):
        ref.predict(df)


SPARSE_FORMATS = ["csr", "csc", "coo", "lil", "dok", "bsr", "dia"]


def _sparse_X(kind, dtype):
    X = _data(kind)[0].astype(dtype)
    X[np.abs(X) < 0.6] = 0  # about half the entries
    return X


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
@pytest.mark.parametrize("container", ["matrix", "array"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_formats(nn, kind, fmt, container, dtype):
    """Every scipy sparse format trains and predicts like its dense twin."""
    import scipy.sparse as sp

    X = _sparse_X(kind, dtype)
    y = _data(kind)[1]
    Xs = getattr(sp, f"{fmt}_{container}")(X)
    est = _est(nn, kind).fit(Xs, y)
    ref = _est(nn, kind).fit(X, y)
    # Sparse and dense products sum in different orders: allow rounding only.
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    _assert_same_weights(est, ref, rtol=rtol)
    np.testing.assert_allclose(est.predict(Xs), est.predict(X), rtol=rtol, atol=rtol)
    if kind == "clf":
        np.testing.assert_allclose(
            est.predict_proba(Xs), est.predict_proba(X), rtol=rtol, atol=rtol
        )
    est.partial_fit(Xs, y)
    ref.partial_fit(X, y)
    _assert_same_weights(est, ref, rtol=rtol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_non_canonical_csr(nn, kind, index_dtype):
    """Duplicate entries (summed) and unsorted indices, 32/64-bit indices."""
    import scipy.sparse as sp

    X = _sparse_X(kind, np.float64)
    y = _data(kind)[1]
    rows, cols = np.nonzero(X)
    vals = X[rows, cols]
    # Split every entry into two halves stored in reverse column order.
    order = np.lexsort((-cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    data = np.repeat(vals / 2, 2)
    indices = np.repeat(cols, 2).astype(index_dtype)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=N) * 2)]
    Xs = sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=X.shape)
    assert not Xs.has_canonical_format
    est = _est(nn, kind).fit(Xs, y)
    ref = _est(nn, kind).fit(X, y)
    _assert_same_weights(est, ref, rtol=1e-12)
    np.testing.assert_allclose(est.predict(Xs), ref.predict(X), rtol=1e-12)


def _layouts(X):
    wide = np.zeros((X.shape[0] * 2, X.shape[1] * 3), dtype=X.dtype)
    wide[::2, ::3] = X
    read_only = X.copy()
    read_only.setflags(write=False)
    return {
        "fortran": np.asfortranarray(X),
        "strided": wide[::2, ::3],
        "reversed": X[::-1].copy()[::-1],  # negative strides, same rows
        "read_only": read_only,
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "read_only"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_memory_layouts(nn, kind, layout, dtype, solver):
    """Non-contiguous, Fortran and read-only X give bit-identical models."""
    X, y = _data(kind)
    X = X.astype(dtype)
    Xl = _layouts(X)[layout]
    assert not Xl.flags.c_contiguous or layout == "read_only"
    est = _est(nn, kind, solver=solver).fit(Xl, y)
    ref = _est(nn, kind, solver=solver).fit(X, y)
    _assert_same_weights(est, ref)
    np.testing.assert_array_equal(est.predict(Xl), ref.predict(X))
    if kind == "clf":
        np.testing.assert_array_equal(est.predict_proba(Xl), ref.predict_proba(X))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.int64, np.float64),
        (np.int32, np.float64),
        (np.float16, np.float64),
        (np.bool_, np.float64),
    ],
)
def test_input_dtypes(nn, kind, dtype, expected):
    X, y = _data(kind)
    Xd = (X * 3).astype(dtype)
    est = _est(nn, kind).fit(Xd, y)
    assert all(c.dtype == expected for c in est.coefs_ + est.intercepts_)
    ref = _est(nn, kind).fit(Xd.astype(expected), y)
    _assert_same_weights(est, ref)
