"""The fast input path decides exactly as scikit-learn's ``validate_data``.

Every prediction method takes common inputs (float arrays, CSR, DataFrames
with the fitted names) through :func:`fastnn._inputs.common_input` and the
rest through ``validate_data``. Here each drawn input goes through both: the
estimator as it is, and the same estimator with ``common_input`` switched
off. Both must return the same array (values, dtype and shape), or raise the
same exception with the same message, with the same warnings.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import reference as ref
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _prediction

polars = pytest.importorskip("polars")

N_FEATURES = 4
NAMES = [f"f{i}" for i in range(N_FEATURES)]
DTYPES = ["float32", "float64", "float16", ">f8", "<f4", "int64", "uint8", "bool",
          "complex128", "object", "str"]  # fmt: skip
SPARSE_FORMATS = ["csr", "csc", "coo", "lil", "dok", "bsr", "dia"]
METHODS = ["predict", "predict_proba", "predict_log_proba"]


def _fit(estimator, named, dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, N_FEATURES)).astype(dtype)
    y = np.arange(30) % 3
    if estimator is fastnn.MLPRegressor:
        y = X[:, 0] + 0.5
    data = pd.DataFrame(X, columns=NAMES) if named else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(
            data, y
        )


MODELS = {
    (name, named, dtype): _fit(est, named, dtype)
    for name, est in [("clf", fastnn.MLPClassifier), ("reg", fastnn.MLPRegressor)]
    for named in (False, True)
    for dtype in ("float32", "float64")
}


def _outcome(call):
    """(("ok", value) or ("error", type, message)), warnings as (type, text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", call())
        except Exception as error:  # noqa: BLE001 - any error must match
            result = ("error", type(error), str(error))
    return result, [(w.category, str(w.message)) for w in caught]


def _assert_same(fast, slow):
    (a, warn_a), (b, warn_b) = fast, slow
    assert warn_a == warn_b
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1:] == b[1:]
        return
    value_a, value_b = a[1], b[1]
    if isinstance(value_a, float):
        assert value_a == value_b or (np.isnan(value_a) and np.isnan(value_b))
        return
    assert type(value_a) is type(value_b)
    assert value_a.dtype == value_b.dtype and value_a.shape == value_b.shape
    np.testing.assert_array_equal(value_a, value_b)


def _both_paths(call, monkeypatch):
    fast = _outcome(call)
    with monkeypatch.context() as m:
        m.setattr(_prediction, "common_input", lambda est, X: None)
        slow = _outcome(call)
    _assert_same(fast, slow)


@st.composite
def arrays(draw):
    """A 0- to 3-D array of a drawn dtype, order and width, maybe non-finite."""
    ndim = draw(st.sampled_from([2, 2, 2, 1, 3]))
    n_rows = draw(st.sampled_from([0, 1, 2, 7]))
    width = draw(st.sampled_from([N_FEATURES] * 3 + [N_FEATURES - 1, N_FEATURES + 1]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.standard_normal((n_rows, 2 * width)) * 3
    if n_rows and draw(st.booleans()):
        X[draw(st.integers(0, n_rows - 1)), draw(st.integers(0, 2 * width - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
    order = draw(st.sampled_from(["C", "F", "strided"]))
    X = X[:, ::2] if order == "strided" else X[:, :width]
    if order == "F":
        X = np.asfortranarray(X)
    dtype = draw(st.sampled_from(DTYPES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = X.astype(str if dtype == "str" else dtype)
    if ndim == 1:
        X = X.ravel()
    elif ndim == 3:
        X = X.reshape(n_rows, width, 1)
    return X


@st.composite
def inputs(draw):
    """An array, a list, a DataFrame (pandas, polars) or a sparse matrix."""
    X = draw(arrays())
    kind = draw(st.sampled_from(["array"] * 4 + ["list", "pandas", "polars", "sparse"]))
    if kind == "list":
        return X.tolist()
    if X.ndim != 2 or X.dtype.kind in "UOc" or X.dtype == np.float16:
        return X
    if kind == "sparse" and X.dtype.isnative:
        container = draw(st.sampled_from([sp.csr_matrix, sp.csr_array, "other"]))
        if container == "other":
            fmt, array = draw(st.sampled_from(SPARSE_FORMATS)), draw(st.booleans())
            return (sp.coo_array if array else sp.coo_matrix)(X).asformat(fmt)
        return container(X)
    if kind == "sparse":
        return X
    columns = _columns(draw, X.shape[1])
    if kind == "pandas":
        return pd.DataFrame(X, columns=columns)
    if any(not isinstance(c, str) for c in columns) or len(set(columns)) < len(columns):
        return X
    return polars.DataFrame({c: X[:, i] for i, c in enumerate(columns)})


def _columns(draw, width):
    names = [f"f{i}" for i in range(width)]
    change = draw(st.sampled_from(["same", "same", "permuted", "renamed", "ints"]))
    if change == "permuted":
        names = names[::-1]
    elif change == "renamed" and names:
        names[-1] = "other"
    elif change == "ints":
        names = list(range(width))
    return names


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(X=inputs(), model=st.sampled_from(sorted(MODELS)))
def test_fast_and_slow_paths_decide_identically(X, model, monkeypatch):
    est = MODELS[model]
    for method in METHODS:
        if hasattr(est, method):
            _both_paths(lambda method=method: getattr(est, method)(X), monkeypatch)
    n = len(X) if not sp.issparse(X) and not hasattr(X, "shape") else X.shape[0]
    y = (np.arange(n) % 3) if model[0] == "clf" else np.linspace(0, 1, n)
    _both_paths(lambda: est.score(X, y), monkeypatch)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_common_inputs_take_the_fast_path(model, monkeypatch):
    est = MODELS[model]
    named, dtype = model[1], np.dtype(model[2])
    X = np.random.default_rng(1).standard_normal((5, N_FEATURES)).astype(dtype)
    common = [pd.DataFrame(X, columns=NAMES), polars.DataFrame(dict(zip(NAMES, X.T)))]
    if not named:
        common = [X, np.asfortranarray(X), sp.csr_matrix(X), sp.csr_array(X)]
    calls = []

    def no_validation(*args, **kwargs):
        calls.append(args)
        raise AssertionError("validate_data ran on a common input")

    monkeypatch.setattr(_prediction, "validate_data", no_validation)
    for Xc in common:
        est.predict(Xc)
    assert calls == []


@st.composite
def fit_inputs(draw):
    """X as :func:`arrays` draws it, and targets of a drawn kind and shape."""
    X = draw(arrays())
    n = X.shape[0] if X.ndim else 0
    n += draw(st.sampled_from([0, 0, 0, 1]))
    kind = draw(st.sampled_from(["int", "int", "uint8", "bool", "str", "float",
                                 "float_nan", "negative", "2d", "column"]))  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y = rng.integers(0, draw(st.sampled_from([1, 2, 3, 5])), n)
    if kind == "negative":
        y = y - 2
    elif kind in ("uint8", "bool"):
        y = y.astype(kind)
    elif kind == "str":
        y = np.array(["a", "b", "c", "d", "e"])[y]
    elif kind.startswith("float"):
        y = y + rng.uniform(0, 0.5, n)
        if kind == "float_nan" and n:
            y[0] = np.nan
    elif kind == "2d":
        y = np.column_stack([y, y % 2])
    elif kind == "column":
        y = y.reshape(-1, 1)
    return X, y


def _fit_outcome(est, X, y):
    def fit():
        est.fit(X, y)
        state = {"coefs": [c.copy() for c in est.coefs_], "n": est.n_features_in_,
                 "names": hasattr(est, "feature_names_in_")}  # fmt: skip
        if hasattr(est, "classes_"):
            state["classes"] = est.classes_
        return state

    return _outcome(fit)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=fit_inputs(), kind=st.sampled_from(["clf", "reg"]), refit=st.booleans())
def test_fit_fast_and_slow_paths_decide_identically(data, kind, refit, monkeypatch):
    from fastnn import _mlp

    X, y = data
    cls = fastnn.MLPClassifier if kind == "clf" else fastnn.MLPRegressor
    outcomes = []
    for fast in (True, False):
        est = cls(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
        if refit:  # a refit clears the names of an earlier fit on a DataFrame
            est.fit(pd.DataFrame(np.ones((4, N_FEATURES)), columns=NAMES), [0, 1] * 2)
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(_mlp, "common_fit_input", lambda *args, **kwargs: None)
                m.setattr(_mlp, "_integer_labels", lambda y: None)
            outcomes.append(_fit_outcome(est, X, y))
    (a, warn_a), (b, warn_b) = outcomes
    assert warn_a == warn_b
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1:] == b[1:]
    else:
        state_a, state_b = a[1], b[1]
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            if key == "coefs":
                for ca, cb in zip(state_a[key], state_b[key]):
                    assert ca.dtype == cb.dtype
                    np.testing.assert_array_equal(ca, cb)
            elif key == "classes":
                assert state_a[key].dtype == state_b[key].dtype
                np.testing.assert_array_equal(state_a[key], state_b[key])
            else:
                assert state_a[key] == state_b[key]


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31, 2**32 - 1])
def test_check_random_state_gives_numpys_stream(seed):
    from sklearn.utils import check_random_state as sklearn_check_random_state

    from fastnn._validation import check_random_state

    ours, theirs = check_random_state(seed), sklearn_check_random_state(seed)
    a, b = ours.get_state(), theirs.get_state()
    assert a[0] == b[0] and a[2:] == b[2:]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(ours.uniform(size=50), theirs.uniform(size=50))
    p, q = np.arange(100), np.arange(100)
    ours.shuffle(p), theirs.shuffle(q)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(ours.normal(size=7), theirs.normal(size=7))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True, np.int64(3), None])
def test_check_random_state_defers_everything_else(seed):
    from sklearn.utils import check_random_state as sklearn_check_random_state

    from fastnn._validation import check_random_state

    ours, theirs = (
        _outcome(lambda: check_random_state(seed)),
        _outcome(lambda: sklearn_check_random_state(seed)),
    )
    assert ours[0][0] == theirs[0][0]
    if ours[0][0] == "error":
        assert ours[0][1:] == theirs[0][1:]
    else:
        np.testing.assert_array_equal(
            ours[0][1].get_state()[1], theirs[0][1].get_state()[1]
        )


def _sklearn_initial_weights(seed, units, activation, dtype):
    """scikit-learn's Glorot draws, as one flat buffer, and the stream after."""
    rs = np.random.RandomState(seed)
    return rs, ref.pack(*ref.glorot_uniform(rs, units, activation)).astype(dtype)


def _assert_same_stream(ours, theirs):
    a, b = ours.get_state(), theirs.get_state()
    assert a[0] == b[0] and a[2:] == b[2:]
    np.testing.assert_array_equal(a[1], b[1])
    p, q = np.arange(50), np.arange(50)
    ours.shuffle(p), theirs.shuffle(q)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(ours.normal(size=3), theirs.normal(size=3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "logistic"])
@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
def test_kept_initial_weights_are_sklearns_draws(seed, activation, dtype, monkeypatch):
    from fastnn import _weights

    monkeypatch.setattr(_weights, "_SEEDED", {})
    units = [5, 9, 3, 2]
    for _ in range(4):  # drawn, drawn and kept, then twice copied
        rs, params = _weights.initial_weights(seed, units, activation, dtype)
        theirs, expected = _sklearn_initial_weights(seed, units, activation, dtype)
        assert params.dtype == dtype
        np.testing.assert_array_equal(params, expected)
        _assert_same_stream(rs, theirs)
        params[:] = np.nan  # a fit's updates never reach the kept copy
    assert len(_weights._SEEDED) == 1
    ((_, state),) = _weights._SEEDED.values()
    assert type(state["state"]["key"]) is list


@pytest.mark.parametrize("seed", [None, np.int64(3), "rs", True])
def test_initial_weights_keep_nothing_for_other_seeds(seed, monkeypatch):
    from fastnn import _weights

    monkeypatch.setattr(_weights, "_SEEDED", {})
    given = np.random.RandomState(11) if seed == "rs" else seed
    rs, params = _weights.initial_weights(given, [4, 3, 2], "relu", np.float64)
    assert not _weights._SEEDED
    if seed == "rs":
        assert rs is given
        ref, _ = _sklearn_initial_weights(11, [4, 3, 2], "relu", float)
        _assert_same_stream(rs, ref)
    elif seed is not None:
        ref, expected = _sklearn_initial_weights(int(seed), [4, 3, 2], "relu", float)
        np.testing.assert_array_equal(params, expected)
        _assert_same_stream(rs, ref)


def test_initial_weights_keep_few_small_networks(monkeypatch):
    from fastnn import _weights

    monkeypatch.setattr(_weights, "_SEEDED", {})
    for seed in range(_weights.SEEDED_NETWORKS + 3):
        _weights.initial_weights(seed, [4, 3, 2], "relu", np.float32)
    kept = [key[0] for key in _weights._SEEDED]
    assert kept == list(range(3, _weights.SEEDED_NETWORKS + 3))  # the newest
    # Seen once each: only the keys, the weights wait for a second fit.
    assert all(entry is _weights._SEEN for entry in _weights._SEEDED.values())
    n_inputs = _weights.SEEDED_BYTES // 8 // 2 + 1  # just over the limit
    _, params = _weights.initial_weights(0, [n_inputs, 2, 2], "relu", np.float64)
    assert params.nbytes > _weights.SEEDED_BYTES
    assert all(key[1][0] != n_inputs for key in _weights._SEEDED)


@pytest.mark.parametrize("draws", [0, 1, 311, 312, 313, 5000])
def test_generator_state_sets_a_new_generator_to_the_same_stream(draws):
    from fastnn import _validation

    rs = _validation.check_random_state(3)
    rs.random_sample(draws)
    state, expected = _validation.generator_state(rs), rs.get_state(legacy=False)
    assert type(state["state"]["key"]) is list
    np.testing.assert_array_equal(state["state"]["key"], expected["state"]["key"])
    ref = _validation.check_random_state(3)
    ref.random_sample(draws)
    _assert_same_stream(_validation.random_state_at(state), ref)


PARAM_VALUES = st.sampled_from(
    [0, 1, -1, 2, 0.5, -0.5, 1.5, 1e-4, 0.0, np.inf, np.nan, True, False, None, "auto",
     "adam", "relu", "constant", "balanced", "loss", (5,), [3, 2], "bogus", np.int64(4),
     np.float32(0.5), {0: 1.0}, 2**33]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(fastnn.MLPClassifier._parameter_constraints)),
    value=PARAM_VALUES,
    cls=st.sampled_from([fastnn.MLPClassifier, fastnn.MLPRegressor]),
)
def test_cheap_parameter_validation_agrees_with_sklearn(name, value, cls):
    from sklearn.base import BaseEstimator
    from sklearn.utils._param_validation import InvalidParameterError

    from fastnn._validation import params_satisfy_constraints

    if name not in cls._parameter_constraints:
        return
    est = cls().set_params(**{name: value})
    for _ in range(2):  # the second answer comes from the cache
        try:
            BaseEstimator._validate_params(est)  # scikit-learn's own, not ours
        except InvalidParameterError:
            assert not params_satisfy_constraints(est)
        else:
            assert params_satisfy_constraints(est)
