"""Kernel safety: awkward batch shapes and property-based gradient checks.

A wrong index in a Numba kernel corrupts memory or numbers silently, so the
kernels are exercised on the shapes where off-by-one errors live (n=1,
batches that do not divide n, batches larger than n, a last partial predict
block), and a hypothesis property test draws random networks and checks the
analytic gradient of the batch-loss kernel against central finite
differences. CI reruns this file with ``NUMBA_BOUNDSCHECK=1``.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk_nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn._kernels.activations import ACTIVATION_CODES
from fastnn._kernels.epoch import loss_and_gradient, predict
from fastnn._kernels.layout import (
    Batch,
    Net,
    Objective,
    Targets,
    parameter_layout,
    workspace_layout,
)
from fastnn._kernels.losses import (
    BINARY_LOG_LOSS,
    POISSON,
    SOFTMAX_LOG_LOSS,
    SQUARED_ERROR,
)

ACTIVATIONS = sorted(ACTIVATION_CODES)
SK_ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
CLIP_WARNING = "Got `batch_size` less than 1 or larger than sample size"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _pair(kind):
    if kind == "clf":
        return fastnn.MLPClassifier, sk_nn.MLPClassifier
    return fastnn.MLPRegressor, sk_nn.MLPRegressor


def _data(kind, n, p=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = np.arange(n) % 3 if kind == "clf" else rng.randn(n)
    return X, y


def _assert_close_to_sklearn(ours, ref, dtype):
    # sklearn is the independent reference: fastnn draws the same initial
    # weights and shuffles, so only floating-point rounding may differ.
    atol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=atol, atol=atol)


# --------------------------------------------------------------------------
# Awkward batch shapes, checked against sklearn's own training
# --------------------------------------------------------------------------

BATCH_CASES = [
    (20, 1),  # every sample its own batch
    (20, 3),  # 3 does not divide 20: last batch of 2
    (20, 7),  # last batch of 6
    (20, 20),  # exactly one batch
    (20, 25),  # larger than n: clipped, with sklearn's warning
    (1, 1),  # a single sample
    (1, 4),  # a single sample, batch larger than n
]


@pytest.mark.parametrize("n, batch", BATCH_CASES)
@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_shapes_match_sklearn(n, batch, kind, solver, dtype):
    X, y = _data(kind, n)
    X = X.astype(dtype)
    params = dict(
        hidden_layer_sizes=(6, 4),
        activation="tanh",
        solver=solver,
        batch_size=batch,
        max_iter=3,
        random_state=0,
    )
    ours_cls, ref_cls = _pair(kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = ours_cls(**params).fit(X, y)
    clipped = [w for w in caught if CLIP_WARNING in str(w.message)]
    assert len(clipped) == (1 if batch > n else 0)
    ref = ref_cls(**params).fit(X, y)
    _assert_close_to_sklearn(ours, ref, dtype)
    assert ours.n_iter_ == ref.n_iter_ == 3


@pytest.mark.parametrize("n, batch", [(20, 3), (20, 25), (1, 1)])
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_partial_fit_batch_shapes_match_sklearn(n, batch, kind):
    X, y = _data(kind, n)
    params = dict(hidden_layer_sizes=(5,), batch_size=batch, random_state=0)
    ours_cls, ref_cls = _pair(kind)
    ours, ref = ours_cls(**params), ref_cls(**params)
    extra = {"classes": [0, 1, 2]} if kind == "clf" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(3):
            ours.partial_fit(X, y, **extra)
            ref.partial_fit(X, y, **extra)
    _assert_close_to_sklearn(ours, ref, np.float64)


@pytest.mark.parametrize("n", [1, 2, 17])
@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("activation", SK_ACTIVATIONS)
def test_lbfgs_small_n_matches_sklearn(n, kind, activation):
    X, y = _data(kind, n)
    params = dict(
        hidden_layer_sizes=(4,),
        activation=activation,
        solver="lbfgs",
        max_iter=5,
        random_state=0,
    )
    ours_cls, ref_cls = _pair(kind)
    ours = ours_cls(**params).fit(X, y)
    ref = ref_cls(**params).fit(X, y)
    # L-BFGS amplifies rounding differences a little over its iterations.
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("n, batch", [(20, 3), (20, 25), (1, 1)])
def test_sparse_batch_shapes_match_dense(n, batch):
    X, y = _data("clf", n)
    X[np.abs(X) < 0.7] = 0
    params = dict(hidden_layer_sizes=(6,), batch_size=batch, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dense = fastnn.MLPClassifier(**params).fit(X, y)
        sparse = fastnn.MLPClassifier(**params).fit(sp.csr_matrix(X), y)
    _assert_close_to_sklearn(sparse, dense, np.float64)


def _reference_outputs(est, X):
    """NumPy forward pass of a fitted tanh classifier (softmax output)."""
    A = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        A = A @ W + b
        if i < len(est.coefs_) - 1:
            A = np.tanh(A)
    A = np.exp(A - A.max(axis=1, keepdims=True))
    return A / A.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n_rows", [1, 1023, 1024, 1025, 2050])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_predict_block_edges(n_rows, sparse):
    """Row counts around the predict block size (1024) and its multiples."""
    X, y = _data("clf", 30)
    est = fastnn.MLPClassifier(hidden_layer_sizes=(6, 5), activation="tanh")
    est.set_params(max_iter=3, random_state=0).fit(X, y)
    Xp = _data("clf", n_rows, seed=1)[0]
    ref = _reference_outputs(est, Xp)
    Xin = sp.csr_matrix(Xp) if sparse else Xp
    np.testing.assert_allclose(est.predict_proba(Xin), ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_rows, block", [(10, 3), (10, 10), (10, 11), (1, 1), (7, 1)])
def test_predict_kernel_block_sizes(n_rows, block):
    """The kernel itself with blocks that do / do not divide the rows."""
    X, y = _data("clf", 30)
    est = fastnn.MLPClassifier(hidden_layer_sizes=(6, 5), activation="tanh")
    est.set_params(max_iter=3, random_state=0).fit(X, y)
    Xp = np.ascontiguousarray(_data("clf", n_rows, seed=2)[0])
    units = np.array([5, 6, 5, 3], dtype=np.int64)
    offsets, _ = parameter_layout(units)
    csr = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    result = np.full((n_rows, 3), np.nan)
    ws_offsets, ws_size = workspace_layout(units, block, backward=False)
    non_finite = predict(
        est._params, offsets, units, np.empty(ws_size), ws_offsets, Xp, *csr,
        ACTIVATION_CODES["tanh"], SOFTMAX_LOG_LOSS, block, result,
        np.empty((0, 1), np.int64), np.empty(0, np.int64),
    )  # fmt: skip
    np.testing.assert_allclose(result, _reference_outputs(est, Xp), rtol=1e-12)
    assert not non_finite


# --------------------------------------------------------------------------
# Property test of the loss-and-gradient kernel
# --------------------------------------------------------------------------


def _problem(seed, n, p, hidden, n_out, out, dtype, weighted, alpha, sparse, nb):
    """Random network, batch and targets laid out as the kernels expect."""
    rng = np.random.RandomState(seed)
    units = np.array([p, *hidden, n_out], dtype=np.int64)
    offsets, size = parameter_layout(units)
    params = (rng.randn(size) * 0.5).astype(dtype)
    X = rng.randn(n, p).astype(dtype)
    X[rng.rand(n, p) < 0.3] = 0
    if out == SQUARED_ERROR:
        Y = rng.randn(n, n_out)
    elif out == POISSON:
        Y = rng.poisson(2.0, size=(n, n_out)).astype(float)
    elif out == BINARY_LOG_LOSS:
        Y = (rng.rand(n, n_out) < 0.5).astype(float)
    else:
        Y = np.eye(n_out)[rng.randint(n_out, size=n)]
    rows = rng.permutation(n)[:nb].astype(np.int64)
    sw = rng.uniform(0.1, 2.0, n).astype(dtype) if weighted else np.empty(0, dtype)
    ws_offsets, ws_size = workspace_layout(units, nb)
    if sparse:
        m = sp.csr_matrix(X)
        csr = (
            m.data.astype(dtype),
            m.indices.astype(np.int64),
            m.indptr.astype(np.int64),
        )
        Xb = np.empty((0, p), dtype)
    else:
        csr = (np.empty(0, dtype), np.empty(0, np.int64), np.empty(0, np.int64))
        Xb = np.ascontiguousarray(X[rows])
    return dict(
        Xb=Xb, csr=csr, rows=rows, sparse=sparse,
        Y=np.ascontiguousarray(Y, dtype=dtype), sw=sw,
        params=params, offsets=offsets, units=units, ws_size=ws_size,
        ws_offsets=ws_offsets, alpha=alpha, out=out, dtype=dtype,
    )  # fmt: skip


def _loss_grad(prob, params, act):
    """Call the kernel on a copy of ``params``; return (loss, gradient)."""
    dtype = prob["dtype"]
    params = np.ascontiguousarray(params, dtype=dtype)
    grads = np.full_like(params, np.nan)
    ws = np.full(prob["ws_size"], np.nan, dtype=dtype)
    net = Net(params, grads, prob["offsets"], prob["units"], ws, prob["ws_offsets"])
    batch = Batch(prob["Xb"], prob["csr"], prob["sparse"], prob["rows"])
    targets = Targets(prob["Y"], prob["sw"], prob["sw"].shape[0] > 0)
    eps = float(np.finfo(dtype).eps)
    objective = Objective(act, prob["out"], eps, float(prob["alpha"]))
    loss = loss_and_gradient(net, batch, targets, objective)
    return loss, grads


def _to_float64(prob):
    out = dict(prob, dtype=np.float64)
    for key in ("Xb", "Y", "sw", "params"):
        out[key] = prob[key].astype(np.float64)
    out["csr"] = (prob["csr"][0].astype(np.float64), *prob["csr"][1:])
    return out


def _penalty(prob, params):
    """sklearn's L2 term 0.5 * alpha * ||W||^2 / sum of the batch's weights."""
    units, offsets = prob["units"], prob["offsets"]
    sq = sum(
        np.sum(params[offsets[0, i] : offsets[0, i] + units[i] * units[i + 1]] ** 2)
        for i in range(len(units) - 1)
    )
    sw = prob["sw"]
    sw_sum = sw[prob["rows"]].sum() if sw.size else len(prob["rows"])
    return 0.5 * prob["alpha"] * sq / sw_sum


def _objective(prob, params, act):
    """The function whose gradient the kernel returns.

    As in sklearn, the reported squared-error loss averages over the
    n_outputs columns but its gradient does not (``delta = A - Y``), so the
    data part of the gradient is n_outputs times d(loss)/d(params).
    """
    loss = _loss_grad(prob, params, act)[0]
    if prob["out"] != SQUARED_ERROR:
        return loss
    m = prob["units"][-1]
    return m * loss - (m - 1) * _penalty(prob, params)


def _finite_difference(prob, act, h=1e-6):
    base = prob["params"].astype(np.float64)
    grad = np.empty_like(base)
    for j in range(base.size):
        step = np.zeros_like(base)
        step[j] = h
        up = _objective(prob, base + step, act)
        down = _objective(prob, base - step, act)
        grad[j] = (up - down) / (2 * h)
    return grad


OUTS = {
    "squared_error": SQUARED_ERROR,
    "poisson": POISSON,
    "binary_log_loss": BINARY_LOG_LOSS,
    "softmax_log_loss": SOFTMAX_LOG_LOSS,
}


@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    out = OUTS[draw(st.sampled_from(sorted(OUTS)))]
    n_out = draw(st.integers(2 if out == SOFTMAX_LOG_LOSS else 1, 3))
    return dict(
        seed=draw(st.integers(0, 2**31 - 1)),
        n=n,
        p=draw(st.integers(1, 6)),
        hidden=draw(st.lists(st.integers(1, 6), min_size=0, max_size=3)),
        n_out=n_out,
        out=out,
        dtype=draw(st.sampled_from([np.float64, np.float32])),
        weighted=draw(st.booleans()),
        alpha=draw(st.sampled_from([0.0, 1e-3, 0.5])),
        sparse=draw(st.booleans()),
        nb=draw(st.integers(1, n)),
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(spec=problems(), activation=st.sampled_from(ACTIVATIONS))
def test_gradient_matches_finite_differences(spec, activation):
    act = ACTIVATION_CODES[activation]
    prob = _problem(**spec)
    loss, grad = _loss_grad(prob, prob["params"], act)
    assert np.isfinite(loss)
    assert np.isfinite(grad).all()
    # The float64 kernel is checked against finite differences ...
    prob64 = _to_float64(prob)
    loss64, grad64 = _loss_grad(prob64, prob64["params"], act)
    numeric = _finite_difference(prob64, act)
    np.testing.assert_allclose(grad64, numeric, rtol=1e-4, atol=1e-6)
    # ... and the float32 kernel against the float64 one on the same numbers.
    if prob["dtype"] == np.float32:
        np.testing.assert_allclose(loss, loss64, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(grad, grad64, rtol=1e-3, atol=1e-4)
    # Dense and sparse layouts of the same batch agree.
    other = _problem(**{**spec, "sparse": not spec["sparse"]})
    loss_o, grad_o = _loss_grad(_to_float64(other), prob64["params"], act)
    np.testing.assert_allclose(loss_o, loss64, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_o, grad64, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------
# Property test of the estimators
# --------------------------------------------------------------------------


@st.composite
def fits(draw):
    n = draw(st.integers(1, 30))
    kind = draw(st.sampled_from(["clf", "reg"]))
    solver = draw(st.sampled_from(["sgd", "adam", "lbfgs"]))
    return dict(
        kind=kind,
        n=n,
        p=draw(st.integers(1, 8)),
        n_classes=draw(st.integers(2, 4)),
        n_targets=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**31 - 1)),
        sparse=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float64, np.float32])),
        params=dict(
            hidden_layer_sizes=tuple(
                draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
            ),
            activation=draw(st.sampled_from(ACTIVATIONS)),
            solver=solver,
            batch_size=draw(st.integers(1, n + 5)),
            alpha=draw(st.sampled_from([0.0, 1e-4, 1.0])),
            max_iter=draw(st.integers(1, 3)),
            shuffle=draw(st.booleans()),
            random_state=0,
        ),
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=fits())
def test_random_fits_are_finite(spec):
    rng = np.random.RandomState(spec["seed"])
    n, p = spec["n"], spec["p"]
    X = rng.randn(n, p).astype(spec["dtype"])
    if spec["kind"] == "clf":
        y = rng.randint(spec["n_classes"], size=n)
        est = fastnn.MLPClassifier(**spec["params"])
    else:
        y = rng.randn(n, spec["n_targets"])
        y = y[:, 0] if spec["n_targets"] == 1 else y
        est = fastnn.MLPRegressor(**spec["params"])
    Xin = sp.csr_matrix(X) if spec["sparse"] else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(Xin, y)
    assert np.isfinite(est.loss_)
    for w in est.coefs_ + est.intercepts_:
        assert w.dtype == spec["dtype"]
        assert np.isfinite(w).all()
    out = est.predict_proba(Xin) if spec["kind"] == "clf" else est.predict(Xin)
    assert out.shape[0] == n
    assert np.isfinite(out).all()
