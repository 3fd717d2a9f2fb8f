"""Workloads shared by the pytest-benchmark suite and ``report.py``.

Every workload row of the performance table (issue 3) is described once here,
together with builders for the three implementations compared: fastnn, the
scikit-learn MLP estimators and a plain PyTorch CPU training loop.

Timing protocol (identical for all implementations)
---------------------------------------------------
* The same data (float32 C-contiguous unless the row says float64), the same
  architecture, batch size and solver; ``alpha=0``, ``relu``, constant learning
  rate, SGD with momentum 0.9 without Nesterov and learning rate 0.01 unless the
  row says otherwise; ``tol=0`` with a huge ``n_iter_no_change`` and no early
  stopping, so every implementation runs exactly the requested epochs (the
  benchmark tests assert ``n_iter_``).
* One timed unit is a complete ``fit(X, y)`` with ``max_iter=k`` from a fresh
  estimator (fastnn and scikit-learn), or building a fresh ``nn.Sequential``
  and optimizer and running ``k`` epochs (PyTorch).  The time per epoch is the
  unit's time divided by ``k``.  Per-fit work (validation, label binarization,
  weight initialisation, buffer allocation) is thus included for everybody and
  amortised over ``k`` epochs; ``partial_fit`` was not used because it repeats
  input validation every epoch and would favour whichever library validates
  faster rather than train faster.
* Every timed unit is preceded by a warm-up of the same configuration (a
  1-epoch fit; 2 iterations for lbfgs; one call for predict), so numba
  compilation (or cache loading), lazy imports and PyTorch's first-call
  initialisation are excluded; compile time is reported separately as
  cold-start figures.
* PyTorch: ``torch.randperm`` shuffle per epoch, index slicing per batch,
  ``CrossEntropyLoss`` (classification) or ``MSELoss`` (regression), default
  threads, no loss bookkeeping beyond what ``backward`` needs.
* lbfgs is timed per fit of 200 iterations (all run: the tests assert
  ``n_iter_``), predict per call on the 60000 mnist-like rows.  The predict
  models are fitted for one epoch on 5000 rows (weights do not change the
  cost); the PyTorch model gets scikit-learn's weights and runs under
  ``torch.no_grad()``, returning class labels like ``predict``.

Smoke mode (``FASTNN_BENCH_SMOKE=1`` or ``CI=true``) shrinks every workload so
that the whole suite runs in seconds; it makes no timing claims.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BIG_PATIENCE = 10**9
IMPLS = ("fastnn", "sklearn", "torch")


def smoke_mode() -> bool:
    """Return True when the suite must use tiny workloads (CI or opt-in)."""
    flag = os.environ.get("FASTNN_BENCH_SMOKE", "").strip().lower()
    if flag not in ("", "0", "false", "no"):
        return True
    return os.environ.get("CI", "").strip().lower() == "true"


@dataclass(frozen=True)
class Workload:
    """One row of the performance table.

    Attributes
    ----------
    name : str
        Row name, also the pytest-benchmark group.
    source : {"digits", "classification", "lowrank", "regression"}
        Where the data comes from.
    n_samples, n_features, n_classes : int
        Data shape; ``n_classes`` is 0 for regression.
    hidden : tuple of int
        Hidden layer sizes.
    batch_size : int or "auto"
        Minibatch size (ignored by lbfgs).
    solver : {"sgd", "adam", "lbfgs"}
        Solver used by every implementation.
    lr : float
        Learning rate.
    dtype : numpy dtype
        Dtype of X.
    epochs : int
        Epochs (lbfgs: iterations) per timed fit.
    mode : {"epoch", "fit", "predict"}
        Timed unit: one epoch, one whole fit, or one ``predict`` call.
    targets : dict
        Peer name -> maximal allowed ratio fastnn time / peer time; the key
        ``"peak"`` holds the minimal fraction of fp32 peak.
    peers : tuple of str
        Peers measured for this row (targets may be a subset).
    separation : float
        Norm of the class centres of the blob data (noise has unit variance
        per feature).
    """

    name: str
    source: str
    n_samples: int
    n_features: int
    n_classes: int
    hidden: tuple
    batch_size: Any
    solver: str
    lr: float
    dtype: Any
    epochs: int
    mode: str
    targets: dict = field(default_factory=dict)
    peers: tuple = ("sklearn", "torch")
    separation: float = 6.0

    @property
    def impls(self) -> tuple:
        """Implementations measured for this row, fastnn first."""
        return ("fastnn",) + self.peers

    @property
    def unit(self) -> str:
        """Human-readable timed unit."""
        if self.mode == "fit":
            return f"ms/fit ({self.epochs} it)"
        if self.mode == "predict":
            return f"ms/predict ({self.n_samples} rows)"
        return "ms/epoch"


def _rows(smoke: bool) -> list[Workload]:
    def size(full, tiny):
        return tiny if smoke else full

    mnist = dict(
        source="classification",
        n_samples=size(60000, 600),
        n_features=784,
        n_classes=10,
        hidden=(256, 128),
        batch_size=128,
        solver="sgd",
        lr=0.01,
    )
    return [
        Workload(
            "digits",
            "digits",
            size(1797, 400),
            64,
            10,
            (100,),
            200,
            "sgd",
            0.01,
            np.float32,
            size(50, 2),
            "epoch",
            {"sklearn": 0.35},
        ),
        Workload(
            "mnist-like",
            dtype=np.float32,
            epochs=size(2, 1),
            mode="epoch",
            targets={"sklearn": 0.45, "torch": 0.7, "peak": 0.60},
            **mnist,
        ),
        Workload(
            "small-batch",
            "classification",
            size(100000, 640),
            54,
            7,
            (64, 32),
            32,
            "sgd",
            0.01,
            np.float32,
            size(2, 1),
            "epoch",
            {"sklearn": 1 / 15, "torch": 1 / 20},
        ),
        Workload(
            "adam-regression",
            "regression",
            size(20000, 320),
            50,
            0,
            (100,),
            32,
            "adam",
            0.001,
            np.float32,
            size(3, 1),
            "epoch",
            {"sklearn": 0.2, "torch": 0.2},
        ),
        Workload(
            "lbfgs",
            "lowrank",
            size(5000, 200),
            100,
            2,
            (100,),
            "auto",
            "lbfgs",
            0.001,
            np.float32,
            size(200, 5),
            "fit",
            {"sklearn": 0.5},
            peers=("sklearn",),
        ),
        Workload(
            "float64",
            dtype=np.float64,
            epochs=1,
            mode="epoch",
            targets={"sklearn": 0.5},
            peers=("sklearn",),
            **mnist,
        ),
        Workload(
            "predict",
            dtype=np.float32,
            epochs=1,
            mode="predict",
            targets={"sklearn": 0.5, "torch": 1.0},
            **mnist,
        ),
    ]


WORKLOADS = {wl.name: wl for wl in _rows(smoke_mode())}


# --------------------------------------------------------------------- data
@functools.lru_cache(maxsize=2)
def _classification(n, d, k, seed, separation):
    """Gaussian blobs with 10 % label noise, float32, filled chunk by chunk."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)).astype(np.float32)
    centers *= np.float32(separation / np.sqrt(d))
    y = rng.integers(0, k, n)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 8192):
        stop = min(start + 8192, n)
        block = rng.standard_normal((stop - start, d), dtype=np.float32)
        block += centers[y[start:stop]]
        X[start:stop] = block
    flip = rng.random(n) < 0.1
    y[flip] = rng.integers(0, k, int(flip.sum()))
    return X, y


@functools.lru_cache(maxsize=1)
def _lowrank_binary(n, d, seed):
    """Binary labels of a nonlinear rule on data near an 8-dim subspace.

    Blob data is memorised by lbfgs within ~60 iterations (the float32 loss
    then bottoms out); data close to a low-dimensional subspace with 10 %
    label noise keeps all 200 iterations busy, as the lbfgs row requires.
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 8))
    A = rng.standard_normal((8, d)) / np.sqrt(8.0)
    X = (Z @ A + 0.1 * rng.standard_normal((n, d))).astype(np.float32)
    y = (np.sin(2.0 * Z[:, 0]) + Z[:, 1] * Z[:, 2] > 0).astype(np.int64)
    flip = rng.random(n) < 0.1
    y[flip] = 1 - y[flip]
    return X, y


@functools.lru_cache(maxsize=1)
def _regression(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    w1 = rng.standard_normal((d, 20)).astype(np.float32) / np.float32(np.sqrt(d))
    w2 = rng.standard_normal(20).astype(np.float32)
    y = np.tanh(X @ w1) @ w2 + 0.1 * rng.standard_normal(n).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    return X, y


def make_data(wl: Workload):
    """Return ``(X, y)`` for a workload.

    Parameters
    ----------
    wl : Workload

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous, ``wl.dtype``
    y : ndarray of shape (n_samples,)
        Integer labels (classification) or float32 targets (regression).
    """
    if wl.source == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = np.ascontiguousarray(X[: wl.n_samples] / 16.0, dtype=wl.dtype)
        return X, y[: wl.n_samples]
    if wl.source == "regression":
        X, y = _regression(wl.n_samples, wl.n_features, 0)
    elif wl.source == "lowrank":
        X, y = _lowrank_binary(wl.n_samples, wl.n_features, 0)
    else:
        X, y = _classification(
            wl.n_samples, wl.n_features, wl.n_classes, 0, wl.separation
        )
    if X.dtype != wl.dtype:
        X = X.astype(wl.dtype)
    return X, y


def epoch_flops(n_samples: int, layer_units: list) -> float:
    """Matmul flops of one training epoch (forward + backward).

    Each layer costs ``2 * n * fan_in * fan_out`` for the forward product and
    the same for the weight gradient; every layer but the first also back-
    propagates the delta to its input (a third product).

    Parameters
    ----------
    n_samples : int
    layer_units : list of int
        Sizes of all layers, input first, output last.

    Returns
    -------
    float
    """
    total = 0.0
    for i, (a, b) in enumerate(zip(layer_units[:-1], layer_units[1:], strict=True)):
        total += (3 if i > 0 else 2) * 2.0 * n_samples * a * b
    return total


def layer_units(wl: Workload) -> list:
    """Input, hidden and output sizes of the workload's network."""
    n_out = 1 if wl.n_classes in (0, 2) else wl.n_classes
    return [wl.n_features, *wl.hidden, n_out]


# --------------------------------------------------------------- estimators
def estimator_class(impl: str, wl: Workload):
    """Return the fastnn or scikit-learn estimator class for a workload."""
    if impl == "fastnn":
        import fastnn as module
    elif impl == "sklearn":
        import sklearn.neural_network as module
    else:
        raise ValueError(f"no estimator class for {impl!r}")
    return module.MLPRegressor if wl.n_classes == 0 else module.MLPClassifier


def estimator_params(wl: Workload, max_iter: int) -> dict:
    """Constructor parameters shared by fastnn and scikit-learn."""
    return dict(
        hidden_layer_sizes=wl.hidden,
        activation="relu",
        solver=wl.solver,
        alpha=0.0,
        batch_size=wl.batch_size,
        learning_rate="constant",
        learning_rate_init=wl.lr,
        max_iter=max_iter,
        shuffle=True,
        random_state=0,
        tol=0.0,
        momentum=0.9,
        nesterovs_momentum=False,
        early_stopping=False,
        n_iter_no_change=BIG_PATIENCE,
    )


def fit_estimator(impl: str, wl: Workload, X, y, max_iter: int):
    """Fit a fresh fastnn / scikit-learn estimator for ``max_iter`` epochs."""
    from sklearn.exceptions import ConvergenceWarning

    est = estimator_class(impl, wl)(**estimator_params(wl, max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


# -------------------------------------------------------------------- torch
def torch_model(torch, units: list):
    """``nn.Sequential`` of ``Linear`` + ``ReLU`` (no activation at the end)."""
    layers = []
    for i, (a, b) in enumerate(zip(units[:-1], units[1:], strict=True)):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(a, b))
    return torch.nn.Sequential(*layers)


def torch_fit(wl: Workload, X, y, epochs: int):
    """Train a fresh PyTorch model for ``epochs`` epochs.

    Returns
    -------
    model : torch.nn.Sequential
    last_loss : float
        Loss of the last minibatch.
    """
    import torch

    Xt = torch.from_numpy(X)
    if wl.n_classes:
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        yt = torch.from_numpy(np.asarray(y, dtype=X.dtype).reshape(-1, 1))
        loss_fn = torch.nn.MSELoss()
    torch.manual_seed(0)
    model = torch_model(torch, layer_units(wl))
    if X.dtype == np.float64:
        model = model.double()
    if wl.solver == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=wl.lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=wl.lr)
    n, bs = Xt.shape[0], min(wl.batch_size, Xt.shape[0])
    for _ in range(epochs):
        perm = torch.randperm(n)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model, float(loss.detach())


def torch_from_sklearn(est):
    """PyTorch model holding the weights of a fitted scikit-learn MLP."""
    import torch

    units = [est.coefs_[0].shape[0]] + [c.shape[1] for c in est.coefs_]
    model = torch_model(torch, units)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, est.coefs_, est.intercepts_, strict=True):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
    return model.eval()


def torch_predict(model, X):
    """Class labels from a PyTorch model under ``no_grad``."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(X)).argmax(dim=1).numpy()


# -------------------------------------------------------------------- cases
@dataclass
class Case:
    """A ready-to-time unit of work for one implementation and workload.

    Attributes
    ----------
    impl : str
    workload : Workload
    run : callable
        Performs one timed unit and returns its result.
    warmup : callable
        Short run of the same configuration (compilation, lazy imports).
    check : callable
        ``check(result)`` raises AssertionError unless the run did the
        expected work (epoch count, finite loss, prediction shape).
    units : int
        Divide the unit's time by this to get the per-epoch time.
    """

    impl: str
    workload: Workload
    run: Callable[[], Any]
    warmup: Callable[[], Any]
    check: Callable[[Any], None]
    units: int


def _check_estimator(impl, wl, X):
    # scikit-learn's lbfgs hands float64 weights back from scipy; fastnn
    # promises to train float32 input in float32 with every solver.
    check_dtype = impl == "fastnn" or wl.solver != "lbfgs"

    def check(est):
        assert est.n_iter_ == wl.epochs, (est.n_iter_, wl.epochs)
        assert np.isfinite(est.loss_)
        if check_dtype:
            assert est.coefs_[0].dtype == X.dtype, est.coefs_[0].dtype

    return check


def _check_torch(result):
    assert np.isfinite(result[1])


def _train_case(impl, wl, X, y):
    units = 1 if wl.mode == "fit" else wl.epochs
    warm_iter = 2 if wl.solver == "lbfgs" else 1
    if impl == "torch":
        return Case(
            impl,
            wl,
            lambda: torch_fit(wl, X, y, wl.epochs),
            lambda: torch_fit(wl, X, y, 1),
            _check_torch,
            units,
        )
    return Case(
        impl,
        wl,
        lambda: fit_estimator(impl, wl, X, y, wl.epochs),
        lambda: fit_estimator(impl, wl, X, y, warm_iter),
        _check_estimator(impl, wl, X),
        units,
    )


def _predict_case(impl, wl, X, y):
    n_fit = min(5000, X.shape[0])
    base = "sklearn" if impl == "torch" else impl
    est = fit_estimator(base, wl, X[:n_fit], y[:n_fit], 1)
    if impl == "torch":
        model = torch_from_sklearn(est)

        def run():
            return est.classes_[torch_predict(model, X)]
    else:

        def run():
            return est.predict(X)

    def check(labels):
        assert labels.shape == (X.shape[0],)
        assert np.isin(labels, est.classes_).all()

    return Case(impl, wl, run, run, check, 1)


def make_case(impl: str, wl: Workload, X, y) -> Case:
    """Build the timed case of one implementation on one workload.

    Parameters
    ----------
    impl : {"fastnn", "sklearn", "torch"}
    wl : Workload
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Returns
    -------
    Case
    """
    if impl not in wl.impls:
        raise ValueError(f"{impl!r} is not measured on workload {wl.name!r}")
    if wl.mode == "predict":
        return _predict_case(impl, wl, X, y)
    return _train_case(impl, wl, X, y)
