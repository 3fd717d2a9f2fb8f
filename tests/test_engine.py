"""The engine's operations against the numpy twins in reference.py.

:mod:`fastnn._engine` is the only caller of the kernels. These tests drive
its three operations (an epoch, the full-batch loss and gradient, and
prediction) from estimator-level inputs (dense or sparse X, optional sample
weights, activation names) and compare them with ``reference.py``; they also
pin its performance policies (BLAS threads, momentum folding).
"""

import numpy as np
import pytest
import reference as ref
import scipy.sparse as sp
import threadpoolctl

from fastnn import _engine as engine

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
CASES = [  # (hidden activation, output activation, loss name, n_outputs)
    ("tanh", "softmax", "log_loss", 3),
    ("relu", "logistic", "binary_log_loss", 2),
    ("gelu", "identity", "squared_error", 2),
    ("logistic", "exp", "poisson", 1),
]


def problem(rng, loss_name, k, dtype, n=17, p=6, hidden=(5, 4)):
    X = rng.normal(size=(n, p)) * (rng.random((n, p)) < 0.5)
    if loss_name == "log_loss":
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif loss_name == "binary_log_loss":
        Y = rng.integers(0, 2, (n, k)).astype(float)
    elif loss_name == "poisson":
        Y = rng.poisson(1.5, (n, k)).astype(float)
    else:
        Y = rng.normal(size=(n, k))
    units = [p, *hidden, k]
    _, size = engine.parameter_layout(units)
    params = (0.5 * rng.normal(size=size)).astype(dtype)
    sw = rng.uniform(0.2, 2.0, n).astype(dtype)
    return X.astype(dtype), np.ascontiguousarray(Y, dtype=dtype), sw, params, units


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("act,out,loss_name,k", CASES)
def test_predict(act, out, loss_name, k, sparse, dtype):
    rng = np.random.default_rng(0)
    X, _, _, params, units = problem(rng, loss_name, k, dtype, n=2100)
    Xin = sp.csr_matrix(X) if sparse else X
    result = engine.predict(Xin, params, units, act, out)
    coefs, intercepts = ref.unpack(params, units)
    _, As = ref.forward(X, coefs, intercepts, act, out)
    assert result.dtype == dtype and result.shape == (2100, k)
    np.testing.assert_allclose(result, As[-1], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("act,out,loss_name,k", CASES)
def test_full_batch_objective(act, out, loss_name, k, weighted, sparse, dtype):
    rng = np.random.default_rng(1)
    X, Y, sw, params, units = problem(rng, loss_name, k, dtype)
    sw = sw if weighted else None
    Xin = sp.csr_matrix(X) if sparse else X
    model = dict(activation=act, out_activation=out, alpha=0.1)
    objective = engine.FullBatchObjective(Xin, Y, sw, params, units, model)
    loss, grad = objective.loss_and_gradient()
    expected_loss, expected_grad = ref.flat_loss_and_gradient(
        X, Y, sw, params, units, act, loss_name, 0.1, float(np.finfo(dtype).eps)
    )
    assert grad.dtype == np.float64
    np.testing.assert_allclose(loss, expected_loss, **TOL[dtype])
    np.testing.assert_allclose(grad, expected_grad, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_only_the_line_search_objective_takes_the_library_tanh(dtype):
    """L-BFGS's objective computes tanh with the C library (numpy's values
    but for rare last-bit differences, which its line search tells apart);
    epochs and prediction use the vectorised tanh. Other activations are the
    same for both."""
    rng = np.random.default_rng(1)
    X, Y, _, params, units = problem(rng, "log_loss", 3, dtype)
    model = dict(activation="tanh", out_activation="softmax", alpha=0.1)
    objective = engine.FullBatchObjective(X, Y, None, params, units, model)
    code = engine.activation_code  # static codes without the compiled core
    assert objective.objective.act == code(engine.LIBRARY_TANH)
    epoch = engine.kernel_objective("tanh", "softmax", dtype, 0.1)
    assert epoch.act == code(engine.ACTIVATION_CODES["tanh"])
    assert engine.ACTIVATION_CODES["tanh"] != engine.LIBRARY_TANH
    relu = engine.kernel_objective("relu", "softmax", dtype, 0.1, line_search=True)
    assert relu.act == code(engine.ACTIVATION_CODES["relu"])


MODEL = dict(
    activation="tanh", out_activation="softmax", alpha=0.01, momentum=0.9,
    beta_1=0.9, beta_2=0.999, epsilon=1e-8, batch_size=5,
)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "folded", "adam"])
def test_epoch_runner(solver, sparse, dtype, monkeypatch):
    rng = np.random.default_rng(2)
    X, Y, sw, params, units = problem(rng, "log_loss", 3, dtype)
    nesterov = solver == "nesterov"
    model = dict(
        MODEL, solver="adam" if solver == "adam" else "sgd", nesterovs_momentum=nesterov
    )
    monkeypatch.setattr(engine, "FOLD_LAYER", 0 if solver == "folded" else 10**12)
    runner = engine.EpochRunner(
        sp.csr_matrix(X) if sparse else X, Y, sw, params, units, model
    )
    assert runner.fold == (solver == "folded")
    state, step = engine.new_optimizer_state(params)
    order = rng.permutation(X.shape[0]).astype(np.int64)
    start = params.astype(np.float64)
    opt = dict(solver=model["solver"], lr=0.05, momentum=0.9, nesterov=nesterov)
    opt.update(beta_1=0.9, beta_2=0.999, epsilon=1e-8, t=0)
    opt.update(velocity=np.zeros(params.size), m=np.zeros(params.size))
    opt["v"] = np.zeros(params.size)
    loss_ref, params_ref = ref.epoch(
        X, Y, sw, order, 5, start, units, "tanh", "log_loss", 0.01,
        float(np.finfo(dtype).eps), opt,
    )  # fmt: skip
    loss = runner.run_epoch(order, state, step, 0.05)
    np.testing.assert_allclose(loss, loss_ref, **TOL[dtype])
    np.testing.assert_allclose(params, params_ref, **TOL[dtype])
    if solver == "adam":
        assert step[0] == opt["t"] == 4
        np.testing.assert_allclose(state[0], opt["m"], **TOL[dtype])
    else:
        np.testing.assert_allclose(state[0], opt["velocity"], **TOL[dtype])


def run_all_operations(X, Y, sw, params, units, model, monkeypatch):
    """Two epochs, the full-batch loss and gradient, and a prediction."""
    monkeypatch.setattr(engine, "FOLD_LAYER", 0 if model.get("fold") else 10**12)
    runner = engine.EpochRunner(X, Y, sw, params, units, model)
    state, step = engine.new_optimizer_state(params)
    order = np.arange(Y.shape[0], dtype=np.int64)[::-1].copy()
    losses = [runner.run_epoch(order, state, step, 0.05) for _ in range(2)]
    objective = engine.FullBatchObjective(X, Y, sw, params, units, model)
    loss, grad = objective.loss_and_gradient()
    pred = engine.predict(X, params, units, model["activation"], "softmax")
    return losses + [loss], [params, state, step, grad, pred]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "folded", "adam"])
def test_jit_fallback_values_compute_the_same_bits(solver, sparse, monkeypatch):
    rng = np.random.default_rng(3)
    X, Y, sw, params, units = problem(rng, "log_loss", 3, np.float32)
    X = sp.csr_matrix(X) if sparse else X
    model = dict(
        MODEL, solver="adam" if solver == "adam" else "sgd",
        nesterovs_momentum=solver == "nesterov", fold=solver == "folded",
    )  # fmt: skip
    results = []
    for fallback in (False, True):
        monkeypatch.setattr(engine, "_FALLBACK", {"on": fallback})
        runner = engine.EpochRunner(X, Y, sw, params.copy(), units, model)
        assert runner.lean == fallback
        assert (runner.inputs.csr == ()) == (fallback and not sparse)
        results.append(
            run_all_operations(X, Y, sw, params.copy(), units, model, monkeypatch)
        )
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["relu", "logistic", "gelu"])
def test_static_activation_codes_compute_the_same_bits(activation, monkeypatch):
    rng = np.random.default_rng(4)
    X, Y, sw, params, units = problem(rng, "log_loss", 3, np.float64)
    results = []
    for fallback in (False, True):
        monkeypatch.setattr(engine, "_FALLBACK", {"on": fallback})
        model = dict(
            MODEL, solver="sgd", nesterovs_momentum=False, activation=activation
        )
        if activation == "relu":  # and the masked passes of dropout
            state = np.array([7], dtype=np.uint64)
            model.update(dropout_rates=(0.2, 0.3), dropout_state=state)
        act = engine.kernel_objective(activation, "softmax", np.float64, 0.0).act
        code = engine.ACTIVATION_CODES[activation]
        assert act == (engine.static_code(code) if fallback else code)
        results.append(
            run_all_operations(X, Y, sw, params.copy(), units, model, monkeypatch)
        )
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_prefetching_changes_no_bits(sparse, monkeypatch):
    rng = np.random.default_rng(6)
    X, Y, sw, params, units = problem(rng, "log_loss", 3, np.float32)
    X = sp.csr_matrix(X) if sparse else X
    model = dict(MODEL, solver="sgd", nesterovs_momentum=True)
    results = []
    for limit in (0, 10**12):
        monkeypatch.setattr(engine, "PREFETCH_BYTES", limit)
        assert engine.kernel_inputs(X, np.float32).prefetch == (limit == 0)
        results.append(
            run_all_operations(X, Y, sw, params.copy(), units, model, monkeypatch)
        )
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_precompiling_gives_the_kernels_their_general_values(monkeypatch):
    monkeypatch.setattr(engine, "_FALLBACK", {"on": None})
    monkeypatch.setattr(engine, "_COMPILE_NOTICE", {"shown": True})
    monkeypatch.setattr(engine, "compiled_core_problem", lambda: "no compiled core")
    assert engine.jit_fallback()
    monkeypatch.setattr(engine, "_FALLBACK", {"on": None})
    engine.quiet_compile()
    assert not engine.jit_fallback()


def test_fold_momentum_policy(monkeypatch):
    large, small = [300, 256, 3], [300, 8, 3]
    assert engine.largest_layer(large) >= engine.FOLD_LAYER
    assert engine.fold_momentum(large, "sgd", nesterov=False)
    assert not engine.fold_momentum(large, "sgd", nesterov=True)
    assert not engine.fold_momentum(large, "adam", nesterov=False)
    assert not engine.fold_momentum(small, "sgd", nesterov=False)
    monkeypatch.setattr(engine, "FOLD_LAYER", 0)
    assert engine.fold_momentum(small, "sgd", nesterov=False)


def test_blas_limit_only_for_small_networks():
    def blas_threads():
        info = threadpoolctl.threadpool_info()
        return {
            d["filepath"]: d["num_threads"] for d in info if "blas" in d["user_api"]
        }

    before = blas_threads()
    assert before
    with engine.blas_limit([64, 8, 10]):
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before
    with engine.blas_limit([300, 256, 3]):
        assert blas_threads() == before


def test_only_the_engine_imports_the_kernels():
    """Outside the kernel packages, only fastnn/_engine.py imports them."""
    import ast
    import pathlib

    package = pathlib.Path(engine.__file__).parent
    importers = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in ("_kernels", "_lowlevel"):
                    importers.add(path.name)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names]
                if any(n in ("_kernels", "_lowlevel") for n in names):
                    importers.add(path.name)
    assert importers == {"_engine.py"}


def _layouts(values):
    """``values`` (2-D) in C and Fortran order, strided, big-endian and read-only."""
    read_only = values.copy()
    read_only.flags.writeable = False
    return [values, np.asfortranarray(values), values[:, ::2], read_only,
            values.astype(values.dtype.newbyteorder(">"))]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_decides_as_numpy_for_every_layout(dtype):
    values = np.random.default_rng(0).normal(size=(6, 5)).astype(dtype)
    for bad in (None, np.nan, np.inf, -np.inf):
        spoiled = values.copy()
        if bad is not None:
            spoiled[4, 2] = bad
        for a in _layouts(spoiled):
            assert engine.all_finite(a) is bool(np.isfinite(a).all())
    assert engine.all_finite(np.arange(4)) is True


@pytest.fixture(params=[False, True], ids=["compiled", "fallback"])
def fallback(request, monkeypatch):
    """The compiled core's path, or the JIT fallback's (NumPy for the labels)."""
    monkeypatch.setitem(engine._FALLBACK, "on", request.param)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64])
@pytest.mark.parametrize("labels", [[2, 0, 5, 2, 0], [1, 0, 0], [7, 3, 3, 0, 1]])
def test_integer_one_hot_keeps_the_labels_dtype(labels, dtype, fallback):
    y = np.array(labels, dtype=dtype)
    classes, Y = engine.integer_one_hot(y)
    expected_classes, expected_Y = ref.one_hot_labels(y)
    assert classes.dtype == y.dtype
    np.testing.assert_array_equal(classes, expected_classes)
    np.testing.assert_array_equal(Y, expected_Y)


@pytest.mark.parametrize(
    "y",
    [np.array([3, 3, 3]), np.array([-1, 0, 1]), np.array([0, 5000]),
     np.array([0, 2**63 + 1], dtype=np.uint64)],
    ids=["one class", "negative", "large", "beyond int64"],
)  # fmt: skip
def test_integer_one_hot_leaves_other_labels_to_scikit_learn(y, fallback):
    assert engine.integer_one_hot(y) is None
