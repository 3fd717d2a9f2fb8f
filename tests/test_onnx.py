"""ONNX export through skl2onnx, checked by running the model in onnxruntime."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import fastnn

onnx = pytest.importorskip("onnx")
pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {np.float32: 1e-6, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(dtype, target, n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(dtype)
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    targets = {
        "binary": lambda: np.where(score > 0, "cat", "dog"),
        "multiclass": lambda: np.digitize(score, [-0.7, 0.0, 0.7]) * 10,
        "single": lambda: (score + 0.2 * X[:, 2] ** 2).astype(dtype),
        "multioutput": lambda: np.c_[score, X[:, 2] * X[:, 3], -X[:, 4]].astype(dtype),
        "poisson": lambda: rng.poisson(np.exp(0.5 * score)).astype(dtype),
    }
    return X, targets[target]()


def _run(onx, X):
    """Run a serialized copy of ``onx`` the way a deployment would."""
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == ["X"]
    return session.run(None, {"X": X})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_classifier_onnx_matches_fastnn(dtype, target, activation):
    X, y = _data(dtype, target)
    clf = fastnn.MLPClassifier(
        hidden_layer_sizes=(8, 6), activation=activation, max_iter=20, random_state=0
    ).fit(X, y)
    onx = fastnn.to_onnx(clf, X[:3])
    assert isinstance(onx, onnx.ModelProto)
    onnx.checker.check_model(onx)
    X_new, _ = _data(dtype, target, n=60, seed=1)
    labels, proba = _run(onx, X_new)
    assert_array_equal(labels, clf.predict(X_new))
    assert proba.shape == (60, len(clf.classes_))
    tol = TOL[dtype]
    assert_allclose(proba, clf.predict_proba(X_new), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", ["single", "multioutput", "poisson"])
def test_regressor_onnx_matches_fastnn(dtype, target):
    X, y = _data(dtype, target)
    loss = "poisson" if target == "poisson" else "squared_error"
    reg = fastnn.MLPRegressor(
        hidden_layer_sizes=(8,), loss=loss, max_iter=30, random_state=0
    ).fit(X, y)
    onx = fastnn.to_onnx(reg, X)
    onnx.checker.check_model(onx)
    X_new, _ = _data(dtype, target, n=60, seed=1)
    (pred,) = _run(onx, X_new)
    expected = reg.predict(X_new).reshape(60, -1)
    assert pred.shape == expected.shape
    assert pred.dtype == np.dtype(dtype)
    tol = TOL[dtype]
    assert_allclose(pred, expected, rtol=tol, atol=tol)


def test_onnx_input_type_follows_sample_dtype():
    X, y = _data(np.float64, "single")
    reg = fastnn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    reg.fit(X, y)
    elem = {
        dtype: fastnn.to_onnx(reg, X.astype(dtype))
        .graph.input[0]
        .type.tensor_type.elem_type
        for dtype in (np.float32, np.float64, np.int64)
    }
    assert elem == {
        np.float32: onnx.TensorProto.FLOAT,
        np.float64: onnx.TensorProto.DOUBLE,
        np.int64: onnx.TensorProto.DOUBLE,
    }


def test_onnx_options_pass_through():
    X, y = _data(np.float32, "multiclass")
    clf = fastnn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    clf.fit(X, y)
    onx = fastnn.to_onnx(clf, X, target_opset=15)
    assert {op.domain: op.version for op in onx.opset_import}[""] == 15
    zipped = fastnn.to_onnx(clf, X, options={"zipmap": True})
    labels, proba = _run(zipped, X[:4])
    assert_array_equal(labels, clf.predict(X[:4]))
    expected = clf.predict_proba(X[:4])
    for row, exp in zip(proba, expected, strict=True):
        assert_allclose([row[c] for c in clf.classes_], exp, rtol=1e-6, atol=1e-6)


def test_onnx_rejects_unsupported_models_and_samples():
    X, y = _data(np.float64, "single")
    reg = fastnn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    reg.fit(X, y)
    with pytest.raises(ValueError, match=r"X_sample must have shape \(n_samples, 5\)"):
        fastnn.to_onnx(reg, X[:, :3])
    Y = np.c_[X[:, 0] > 0, X[:, 1] > 0].astype(int)
    multilabel = fastnn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, Y)
    with pytest.raises(ValueError, match="multilabel"):
        fastnn.to_onnx(multilabel, X)
    gelu = fastnn.MLPClassifier(activation="gelu", max_iter=3).fit(X, y > 0)
    with pytest.raises(ValueError, match="activation='gelu'"):
        fastnn.to_onnx(gelu, X)
