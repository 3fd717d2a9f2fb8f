"""Inverted dropout: the kernels against a numpy twin, and the estimators."""

import pickle
import warnings

import numpy as np
import pytest
import reference as ref
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from test_gradients import LOSS_CODE, central_differences, make_targets

from fastnn import MLPClassifier, MLPRegressor
from fastnn._kernels import activations as fa
from fastnn._kernels import dropout as fd
from fastnn._kernels import epoch as ft
from fastnn._kernels import layout as fnet

EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _kernel_values(units, X, Y, masks, rates):
    """Net, Batch, Targets and a Dropout holding ``masks`` as the kernels take them."""
    units = np.asarray(units, dtype=np.int64)
    offsets, _ = fnet.parameter_layout(units)
    ws_offsets, ws_size = fnet.workspace_layout(units, X.shape[0])
    csr = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    rows = np.arange(X.shape[0], dtype=np.int64)
    batch = fnet.Batch(np.ascontiguousarray(X), csr, False, rows)
    targets = fnet.Targets(np.ascontiguousarray(Y), np.empty(0), False)
    flat = np.concatenate([M.ravel() for M in masks])
    mask_offsets = np.cumsum([0] + [M.size for M in masks[:-1]]).astype(np.int64)
    state = np.zeros(1, np.uint64)
    dropout = fd.Dropout(np.asarray(rates, float), flat, mask_offsets, state)
    return units, offsets, ws_size, ws_offsets, batch, targets, dropout


def kernel_dropout_loss_and_gradient(params, X, Y, masks, units, act, loss_name):
    units, offsets, ws_size, ws_offsets, batch, targets, dropout = _kernel_values(
        units, X, Y, masks, [0.5] * len(masks)
    )
    grads = np.full_like(params, np.nan)
    net = fnet.Net(params.copy(), grads, offsets, units, np.empty(ws_size), ws_offsets)
    objective = fnet.Objective(fa.ACTIVATION_CODES[act], LOSS_CODE[loss_name], EPS, 0.1)
    loss = ft.loss_and_gradient_dropout(net, batch, targets, objective, dropout)
    return loss, grads


def twin_loss(params, X, Y, masks, units, act, loss_name, summed=False):
    """The masked network's loss, written with numpy (reference.py's twin).

    With ``summed``, the squared error is summed over the outputs, as the
    gradient scikit-learn backpropagates is; otherwise averaged, as reported.
    """
    coefs, intercepts = ref.unpack(params, units)
    out = ref.OUTPUT_ACTIVATION[loss_name]
    _, As = ref.forward_dropout(X, coefs, intercepts, act, out, masks)
    data = ref.loss(loss_name, Y, As[-1], None, EPS)
    if summed and loss_name == "squared_error":
        data *= Y.shape[1]
    return data + 0.5 * 0.1 * ref.l2_penalty(coefs) / X.shape[0]


@pytest.mark.parametrize("loss_name,k", [("log_loss", 3), ("squared_error", 2)])
@pytest.mark.parametrize("act", ["tanh", "logistic", "relu", "gelu"])
def test_dropout_gradient_with_a_fixed_mask(act, loss_name, k):
    rng = np.random.default_rng(3)
    units = [4, 6, 5, k]
    _, size = fnet.parameter_layout(units)
    X = rng.normal(size=(9, 4))
    Y = make_targets(rng, loss_name, 9, k)
    params = 0.7 * rng.normal(size=size)
    masks = [
        np.where(rng.random((9, u)) < 0.4, 0.0, 1 / 0.6) for u in units[1:-1]
    ]  # fmt: skip
    loss, grads = kernel_dropout_loss_and_gradient(
        params, X, Y, masks, units, act, loss_name
    )
    expected = twin_loss(params, X, Y, masks, units, act, loss_name)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    numeric = central_differences(
        lambda p: twin_loss(p, X, Y, masks, units, act, loss_name, summed=True),
        params,
    )
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    # dropped units pass no gradient to the weights that read them
    n_first = units[0] * units[1]
    W2 = grads[n_first : n_first + units[1] * units[2]].reshape(units[1], units[2])
    assert np.abs(W2).max() > 1e-3


def test_masks_drop_at_the_rate_and_rescale():
    units = [3, 400, 300, 2]
    n_rows = 64
    rates = [0.3, 0.0]
    masks = [np.empty((n_rows, u)) for u in units[1:-1]]
    *_, dropout = _kernel_values(units, np.zeros((n_rows, 3)), np.zeros((n_rows, 2)),
                                 masks, rates)  # fmt: skip
    dropout.state[0] = 12345
    fd.draw_masks(dropout, np.asarray(units, np.int64), n_rows)
    first = dropout.masks[: n_rows * 400]
    assert abs((first == 0).mean() - 0.3) < 0.01
    assert set(np.unique(first)) == {0.0, 1 / 0.7}
    np.testing.assert_array_equal(dropout.masks[n_rows * 400 :], 1.0)
    before = dropout.masks.copy()
    fd.draw_masks(dropout, np.asarray(units, np.int64), n_rows)
    assert not np.array_equal(before, dropout.masks)  # the state advanced


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_zero_dropout_is_the_plain_network():
    X, y = _digits()
    params = dict(hidden_layer_sizes=(20, 10), max_iter=5, random_state=0)
    plain = MLPClassifier(**params).fit(X, y)
    for rate in (0.0, (0.0, 0.0)):
        est = MLPClassifier(dropout=rate, **params).fit(X, y)
        for a, b in zip(est.coefs_ + est.intercepts_, plain.coefs_ + plain.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert est.loss_curve_ == plain.loss_curve_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_dropout_is_reproducible_and_changes_training(solver):
    X, y = _digits()
    params = dict(hidden_layer_sizes=(20,), max_iter=8, solver=solver,
                  learning_rate_init=0.05, random_state=1)  # fmt: skip
    a = MLPClassifier(dropout=0.3, **params).fit(X, y)
    b = MLPClassifier(dropout=0.3, **params).fit(X, y)
    c = MLPClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    assert a.score(X, y) > 0.8


def test_predict_is_the_unmasked_network():
    X, y = _digits()
    est = MLPClassifier((16,), dropout=0.5, max_iter=5, random_state=0).fit(X, y)
    coefs, intercepts = est.coefs_, est.intercepts_
    _, As = ref.forward(X, coefs, intercepts, "relu", "softmax")
    np.testing.assert_allclose(est.predict_proba(X), As[-1], rtol=1e-10)
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(X))


def test_regressor_with_per_layer_rates():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    est = MLPRegressor(hidden_layer_sizes=(16, 8), dropout=(0.2, 0.0), max_iter=50,
                       random_state=0, learning_rate_init=0.01)  # fmt: skip
    est.fit(X, y / y.std())
    assert est.score(X, y / y.std()) > 0.8


def test_partial_fit_with_dropout_resumes_after_pickle():
    X, y = _digits()
    params = dict(hidden_layer_sizes=(12,), dropout=0.25, random_state=0)
    straight = MLPClassifier(**params)
    resumed = MLPClassifier(**params)
    classes = np.unique(y)
    for _ in range(2):
        straight.partial_fit(X, y, classes=classes)
    resumed.partial_fit(X, y, classes=classes)
    resumed = pickle.loads(pickle.dumps(resumed))
    resumed.partial_fit(X, y)
    np.testing.assert_array_equal(straight.coefs_[0], resumed.coefs_[0])


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(solver="lbfgs", dropout=0.2), "needs a stochastic solver"),
        (dict(dropout=(0.1, 0.2, 0.3)), "dropout has 3 rates but the network has 2"),
        (dict(dropout=(0.1, 1.5)), r"dropout rates must be in \[0, 1\)"),
        (dict(dropout=1.0), "The 'dropout' parameter of MLPClassifier must be"),
    ],
)
def test_bad_dropout_raises(params, match):
    X, y = _digits()
    est = MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=2, **params)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_lbfgs_with_zero_dropout_is_fine():
    X, y = _digits()
    MLPClassifier((8,), solver="lbfgs", dropout=0.0, max_iter=3).fit(X, y)


def test_dropout_is_searchable():
    X, y = _digits()
    base = MLPClassifier((16,), max_iter=3, random_state=0)
    search = GridSearchCV(base, {"dropout": [0.0, 0.3]}, cv=2).fit(X[:600], y[:600])
    assert [p["dropout"] for p in search.cv_results_["params"]] == [0.0, 0.3]
