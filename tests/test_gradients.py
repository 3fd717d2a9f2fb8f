"""Finite-difference check of the full gradient fastnn computes for a batch.

``fastnn._kernels.epoch.loss_and_gradient`` returns the loss and the gradient
over the flat parameter buffer. For every hidden activation and every output
loss, with and without ``alpha`` and ``sample_weight``, that gradient must match
central differences (float64) of the objective written independently in
``reference.py``.

The objective is sklearn's loss, with one convention made explicit: sklearn
reports the squared error averaged over the outputs but backpropagates
``A - Y``, the gradient of the error *summed* over the outputs. So for a
K-output regressor the data term is multiplied by K before differentiating
(for K = 1 nothing changes); the L2 term is never scaled.

Points are chosen so that no hidden pre-activation lies within ``MARGIN`` of
zero, where relu and leaky_relu have their kinks.
"""

import numpy as np
import pytest
import reference as ref
import sklearn.neural_network._base as sk_base

from fastnn._kernels import activations as fa
from fastnn._kernels import epoch as ft
from fastnn._kernels import layout as fnet
from fastnn._kernels import losses as fl

ACTS = list(ref.HIDDEN_ACTIVATIONS)
LOSS_CODE = {
    "squared_error": fl.SQUARED_ERROR,
    "poisson": fl.POISSON,
    "binary_log_loss": fl.BINARY_LOG_LOSS,
    "log_loss": fl.SOFTMAX_LOG_LOSS,
}
OUTPUT_CASES = [
    pytest.param("squared_error", 1, id="squared_error-1"),
    pytest.param("squared_error", 3, id="squared_error-3"),
    pytest.param("poisson", 2, id="poisson-2"),
    pytest.param("binary_log_loss", 1, id="binary-1"),
    pytest.param("binary_log_loss", 3, id="multilabel-3"),
    pytest.param("log_loss", 3, id="softmax-3"),
]
N_SAMPLES = 7
STEP = 1e-5
MARGIN = 1e-3
EPS = float(np.finfo(np.float64).eps)


def make_targets(rng, loss_name, n, k):
    if loss_name == "squared_error":
        return rng.normal(size=(n, k))
    if loss_name == "poisson":
        return rng.poisson(1.5, size=(n, k)).astype(float)
    if loss_name == "binary_log_loss":
        return rng.integers(0, 2, size=(n, k)).astype(float)
    return np.eye(k)[rng.integers(0, k, size=n)]


def make_problem(act, loss_name, k, weighted):
    """Data and parameters whose hidden pre-activations avoid 0 by MARGIN."""
    units = [4, 5, 3, k]
    _, size = fnet.parameter_layout(units)
    for seed in range(100):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(N_SAMPLES, 4))
        Y = make_targets(rng, loss_name, N_SAMPLES, k)
        sw = rng.uniform(0.2, 2.0, N_SAMPLES) if weighted else None
        params = 0.7 * rng.normal(size=size)
        coefs, intercepts = ref.unpack(params, units)
        Zs, _ = ref.forward(X, coefs, intercepts, act, "identity")
        if min(np.abs(Z).min() for Z in Zs[:-1]) > MARGIN:
            return X, Y, sw, params, units
    raise AssertionError("no point away from the activation kinks was found")


def kernel_loss_and_gradient(X, Y, sw, params, units, act, loss_name, alpha):
    units = np.asarray(units, dtype=np.int64)
    offsets, _ = fnet.parameter_layout(units)
    ws_offsets, ws_size = fnet.workspace_layout(units, X.shape[0])
    grads = np.full_like(params, np.nan)
    csr = (np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    rows = np.arange(X.shape[0], dtype=np.int64)
    batch = fnet.Batch(np.ascontiguousarray(X), csr, False, rows)
    targets = fnet.Targets(
        np.ascontiguousarray(Y), np.empty(0) if sw is None else sw, sw is not None
    )
    objective = fnet.Objective(
        fa.ACTIVATION_CODES[act], LOSS_CODE[loss_name], EPS, alpha
    )
    net = fnet.Net(params.copy(), grads, offsets, units, np.empty(ws_size), ws_offsets)
    loss = ft.loss_and_gradient(net, batch, targets, objective)
    return loss, grads


def objective(params, X, Y, sw, units, act, loss_name, alpha):
    """The function whose gradient sklearn (and fastnn) backpropagates."""
    coefs, intercepts = ref.unpack(params, units)
    _, As = ref.forward(X, coefs, intercepts, act, ref.OUTPUT_ACTIVATION[loss_name])
    data = ref.loss(loss_name, Y, As[-1], sw, EPS)
    if loss_name == "squared_error":
        data *= Y.shape[1]
    sw_sum = X.shape[0] if sw is None else sw.sum()
    return data + 0.5 * alpha * ref.l2_penalty(coefs) / sw_sum


def central_differences(fun, params):
    grad = np.empty_like(params)
    for j in range(params.size):
        up, down = params.copy(), params.copy()
        up[j] += STEP
        down[j] -= STEP
        grad[j] = (fun(up) - fun(down)) / (2 * STEP)
    return grad


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.1], ids=["alpha0", "alpha0.1"])
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
@pytest.mark.parametrize("act", ACTS)
def test_gradient_matches_finite_differences(act, loss_name, k, alpha, weighted):
    X, Y, sw, params, units = make_problem(act, loss_name, k, weighted)
    loss, grads = kernel_loss_and_gradient(
        X, Y, sw, params, units, act, loss_name, alpha
    )
    numeric = central_differences(
        lambda p: objective(p, X, Y, sw, units, act, loss_name, alpha), params
    )
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(numeric).max() > 1e-3  # the check is not vacuous
    # the reported loss is sklearn's (squared error averaged over outputs)
    coefs, intercepts = ref.unpack(params, units)
    expected, _, _ = ref.loss_and_gradient(
        X, Y, sw, coefs, intercepts, act, loss_name, alpha, EPS
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
def test_reference_losses_are_sklearns(loss_name, k, weighted):
    # The twins' losses must be sklearn's own definitions, or every comparison
    # against them would prove the wrong thing.
    rng = np.random.default_rng(0)
    Y = make_targets(rng, loss_name, 9, k)
    Z = rng.normal(size=(9, k))
    A = ref.output_activation(ref.OUTPUT_ACTIVATION[loss_name], Z)
    sw = rng.uniform(0.2, 2.0, 9) if weighted else None
    expected = sk_base.LOSS_FUNCTIONS[loss_name](Y, A, sample_weight=sw)
    np.testing.assert_allclose(ref.loss(loss_name, Y, A, sw, EPS), expected, rtol=1e-13)
