"""Prediction: the reused predictor, labels, threads and ``score``'s metrics.

* A fitted model reuses one predictor, and every change of its weights,
  shapes or activation (fit, partial_fit, warm start, set_params, pickling,
  from_sklearn, assignments) shows in the next prediction, checked against
  the numpy twin of the forward pass (``tests/reference.py``).
* ``predict``'s labels are those of ``predict_proba``, ties included.
* Four threads predict with one shared model, as one thread does.
* ``score``'s fast metrics equal scikit-learn's, value for value.
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastnn import MLPClassifier, MLPRegressor
from fastnn._metrics import fast_accuracy, fast_r2


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n=120, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)


def _expected(est, X):
    """The numpy twin's output activations for the model as it stands."""
    _, As = ref.forward(X, est.coefs_, est.intercepts_, est.activation,
                        est.out_activation_)  # fmt: skip
    return As[-1]


def _assert_predicts_its_weights(est, X, rtol=1e-10):
    np.testing.assert_allclose(est.predict_proba(X), _expected(est, X), rtol=rtol)


def test_the_predictor_is_reused_and_rebuilt_when_the_model_changes():
    X, y = _data()
    est = MLPClassifier((5,), max_iter=5, random_state=0).fit(X, y)
    first = est._predictor()
    assert est._predictor() is first
    _assert_predicts_its_weights(est, X)
    est.set_params(activation="tanh")
    _assert_predicts_its_weights(est, X)
    est.partial_fit(X, y)
    _assert_predicts_its_weights(est, X)
    est.set_params(warm_start=True, max_iter=3).fit(X, y)
    _assert_predicts_its_weights(est, X)
    loaded = pickle.loads(pickle.dumps(est))
    _assert_predicts_its_weights(loaded, X)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    sk = SkMLPClassifier((4,), max_iter=5, random_state=1).fit(X, y)
    converted = MLPClassifier.from_sklearn(sk)
    _assert_predicts_its_weights(converted, X)
    np.testing.assert_allclose(converted.predict_proba(X), sk.predict_proba(X))


def test_assigned_and_edited_weights_show_in_the_next_prediction():
    X, y = _data()
    est = MLPClassifier((5,), max_iter=5, random_state=0).fit(X, y)
    est.predict(X)
    rng = np.random.default_rng(1)
    est.coefs_ = [rng.standard_normal(c.shape) for c in est.coefs_]
    _assert_predicts_its_weights(est, X)
    est.coefs_[0] = rng.standard_normal(est.coefs_[0].shape)
    _assert_predicts_its_weights(est, X)
    est.intercepts_[1][...] += 1.0
    _assert_predicts_its_weights(est, X)


def test_a_float32_model_predicts_float64_rows_in_float64():
    X, y = _data()
    est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    est.fit(X.astype(np.float32), X[:, 0])
    out = est.predict(X)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _expected(est, X)[:, 0], rtol=1e-12)
    assert est.predict(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_is_the_label_binarizer_inverse_of_predict_proba(target, dtype):
    X, y = _data(300)
    if target == "binary":
        y = y > 0
    elif target == "multilabel":
        y = np.column_stack([y > 0, X[:, 2] > 0, X[:, 3] > 1])
    X = X.astype(dtype)
    est = MLPClassifier((7,), max_iter=20, random_state=0).fit(X, y)
    Xp = np.random.default_rng(2).standard_normal((2000, 6)).astype(dtype)
    proba = est.predict_proba(Xp)
    if target == "binary":
        proba = proba[:, 1]
    expected = est._label_binarizer.inverse_transform(proba)
    got = est.predict(Xp)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_four_threads_share_one_model():
    X, y = _data(400)
    est = MLPClassifier((32, 16), max_iter=5, random_state=0).fit(X, y)
    big = np.random.default_rng(3).standard_normal((20_000, 6))
    sizes = [big[:1], big[:100], big]
    serial = [(est.predict(Xs), est.predict_proba(Xs)) for Xs in sizes]
    barrier = threading.Barrier(4)
    results, errors = [None] * 4, []

    def work(i):
        try:
            barrier.wait()
            results[i] = [
                [(est.predict(Xs), est.predict_proba(Xs)) for Xs in sizes]
                for _ in range(3)
            ]
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for per_thread in results:
        for run in per_thread:
            for (labels, proba), (labels_ref, proba_ref) in zip(run, serial):
                np.testing.assert_array_equal(labels, labels_ref)
                np.testing.assert_array_equal(proba, proba_ref)


def _same_metric(fast, metric, *args, **kwargs):
    """The fast metric's value is None or scikit-learn's, bit for bit."""
    value = fast(*args, **kwargs)
    if value is None:
        return False
    expected = metric(*args, **kwargs)
    assert type(value) is float
    assert value == expected or (np.isnan(value) and np.isnan(expected))
    return True


LABELS = st.sampled_from(
    [np.int64, np.int32, np.uint8, "str", np.float64, np.bool_, object]
)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    n_classes=st.integers(1, 4),
    kinds=st.tuples(LABELS, LABELS),
    multilabel=st.booleans(),
    weights=st.sampled_from([None, "float64", "float32", "int", "zeros", "nan"]),
    seed=st.integers(0, 2**16),
)
def test_fast_accuracy_is_accuracy_score(n, n_classes, kinds, multilabel, weights,
                                         seed):  # fmt: skip
    rng = np.random.default_rng(seed)
    shape = (n, 3) if multilabel else (n,)
    high = 2 if multilabel else n_classes
    y_true, y_pred = (rng.integers(0, high, shape) for _ in range(2))
    y_true = y_true.astype(str if kinds[0] == "str" else kinds[0])
    y_pred = y_pred.astype(str if kinds[1] == "str" else kinds[1])
    sw = _weights(rng, n, weights)
    _same_metric(fast_accuracy, accuracy_score, y_true, y_pred, sample_weight=sw)


def _weights(rng, n, kind):
    if kind is None:
        return None
    if kind == "zeros":
        return np.zeros(n)
    sw = rng.uniform(0, 2, n)
    if kind == "nan":
        sw[0] = np.nan
    return sw.astype(kind if kind != "nan" else np.float64)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    n_outputs=st.sampled_from([None, 1, 3]),
    dtypes=st.tuples(*[st.sampled_from([np.float32, np.float64, np.int64])] * 2),
    weights=st.sampled_from([None, "float64", "float32", "zeros", "nan"]),
    constant=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fast_r2_is_r2_score(n, n_outputs, dtypes, weights, constant, seed):
    rng = np.random.default_rng(seed)
    shape = (n,) if n_outputs is None else (n, n_outputs)
    y_true = rng.standard_normal(shape) * 10
    if constant:
        y_true[:] = 1.5
    y_pred = y_true + rng.standard_normal(shape) * rng.choice([0.0, 0.1, 5.0])
    y_true, y_pred = y_true.astype(dtypes[0]), y_pred.astype(dtypes[1])
    sw = _weights(rng, n, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same_metric(fast_r2, r2_score, y_true, y_pred, sample_weight=sw)


def test_plain_targets_take_the_fast_metrics():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    sw = rng.uniform(0.5, 2.0, 50)
    assert _same_metric(fast_accuracy, accuracy_score, labels, labels[::-1].copy())
    assert _same_metric(fast_accuracy, accuracy_score, labels, labels, sample_weight=sw)
    indicator = rng.integers(0, 2, (50, 3))
    assert _same_metric(fast_accuracy, accuracy_score, indicator, indicator[::-1])
    y = rng.standard_normal((50, 2))
    assert _same_metric(fast_r2, r2_score, y[:, 0], y[:, 1])
    assert _same_metric(fast_r2, r2_score, y, y[::-1], sample_weight=sw)
    assert _same_metric(fast_r2, r2_score, y.astype(np.float32), y[::-1].copy())


def test_score_is_scikit_learns_metric_of_predict():
    X, y = _data(200)
    clf = MLPClassifier((5,), max_iter=5, random_state=0).fit(X, y)
    sw = np.random.default_rng(4).uniform(0.1, 1.0, 200)
    for Xs, ys, sws in [(X, y, None), (X, y, sw), (X[:1], y[:1], None),
                        (X.tolist(), list(y), list(sw))]:  # fmt: skip
        expected = accuracy_score(ys, clf.predict(Xs), sample_weight=sws)
        assert clf.score(Xs, ys, sample_weight=sws) == expected
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    reg.fit(X, X[:, :2])
    for Xs, ys, sws in [(X, X[:, :2], None), (X, X[:, :2], sw),
                        (X[:1], X[:1, :2], None)]:  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = r2_score(ys, reg.predict(Xs), sample_weight=sws)
            got = reg.score(Xs, ys, sample_weight=sws)
        assert got == expected or (np.isnan(got) and np.isnan(expected))
