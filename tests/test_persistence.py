"""Persistence: pickle/joblib round trips and resuming a saved training run."""

import io
import json
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnn

SOLVERS = ["sgd", "adam", "lbfgs"]
DTYPES = [np.float64, np.float32]
KINDS = ["clf", "reg"]
CONFIGS = [(k, s, d) for k in KINDS for s in SOLVERS for d in DTYPES]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(kind, dtype, seed=0, n=80):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5).astype(dtype)
    y = np.array(["a", "b", "c"])[np.arange(n) % 3] if kind == "clf" else X[:, 0] ** 2
    return X, y


def _est(kind, **params):
    cls = fastnn.MLPClassifier if kind == "clf" else fastnn.MLPRegressor
    params = {"hidden_layer_sizes": (7, 4), "max_iter": 5, "random_state": 0, **params}
    return cls(**params)


def _outputs(est, X):
    out = {"predict": est.predict(X)}
    if hasattr(est, "predict_proba"):
        out["predict_proba"] = est.predict_proba(X)
    return out


def _weights(est):
    return [w.copy() for w in est.coefs_ + est.intercepts_]


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, z in zip(a, b):
        assert x.dtype == z.dtype
        np.testing.assert_array_equal(x, z)


def _pickle(est):
    return pickle.loads(pickle.dumps(est))


def _joblib(est):
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    return joblib.load(buf)


@pytest.mark.parametrize("kind, solver, dtype", CONFIGS)
@pytest.mark.parametrize("roundtrip", [_pickle, _joblib], ids=["pickle", "joblib"])
def test_roundtrip_same_process(kind, solver, dtype, roundtrip):
    X, y = _data(kind, dtype)
    est = _est(kind, solver=solver).fit(X, y)
    loaded = roundtrip(est)
    assert type(loaded) is type(est)
    _assert_same_weights(_weights(loaded), _weights(est))
    expected = _outputs(est, X)
    got = _outputs(loaded, X)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
        assert got[key].dtype == expected[key].dtype
    assert loaded.n_iter_ == est.n_iter_
    assert loaded.get_params() == est.get_params()


RESUMABLE = [(k, s, d) for k in KINDS for s in ["sgd", "adam"] for d in DTYPES]


def _partial_fit(est, kind, X, y):
    extra = {"classes": ["a", "b", "c"]} if kind == "clf" else {}
    return est.partial_fit(X, y, **extra)


def _chunks(kind, dtype):
    return [_data(kind, dtype, seed=s, n=40) for s in range(4)]


@pytest.mark.parametrize("kind, solver, dtype", RESUMABLE)
@pytest.mark.parametrize("roundtrip", [_pickle, _joblib], ids=["pickle", "joblib"])
@pytest.mark.parametrize("seed_kind", ["int", "RandomState"])
def test_resume_after_partial_fit(kind, solver, dtype, roundtrip, seed_kind):
    """Save after 2 of 4 partial_fit calls, load, finish: same weights.

    With a RandomState instance as random_state, the shuffling stream moves on
    between calls, so this only holds if the RNG state is pickled too.
    """

    def make():
        seed = 0 if seed_kind == "int" else np.random.RandomState(0)
        return _est(kind, solver=solver, batch_size=16, random_state=seed)

    chunks = _chunks(kind, dtype)
    straight = make()
    for X, y in chunks:
        _partial_fit(straight, kind, X, y)

    resumed = make()
    for X, y in chunks[:2]:
        _partial_fit(resumed, kind, X, y)
    resumed = roundtrip(resumed)
    for X, y in chunks[2:]:
        _partial_fit(resumed, kind, X, y)
    _assert_same_weights(_weights(resumed), _weights(straight))
    assert resumed.n_iter_ == straight.n_iter_
    assert resumed.t_ == straight.t_
    np.testing.assert_array_equal(resumed.loss_curve_, straight.loss_curve_)


@pytest.mark.parametrize("kind, solver", [("clf", "adam"), ("reg", "sgd")])
def test_resume_warm_start_fit(kind, solver):
    """Same for warm_start=True fits of several epochs each."""
    X, y = _data(kind, np.float64)
    straight = _est(kind, solver=solver, warm_start=True, max_iter=3)
    straight.fit(X, y).fit(X, y)
    resumed = _pickle(_est(kind, solver=solver, warm_start=True, max_iter=3).fit(X, y))
    resumed.fit(X, y)
    _assert_same_weights(_weights(resumed), _weights(straight))


SUBPROCESS_CODE = """
import json, sys, warnings
import joblib
import numpy as np

warnings.simplefilter("ignore")
job = json.loads(sys.argv[1])
for name in job["predict"]:
    est = joblib.load(f"{job['dir']}/{name}.joblib")
    X = np.load(f"{job['dir']}/{name}.X.npy")
    np.save(f"{job['dir']}/{name}.predict.npy", est.predict(X))
    if hasattr(est, "predict_proba"):
        np.save(f"{job['dir']}/{name}.predict_proba.npy", est.predict_proba(X))
for name in job["resume"]:
    est = joblib.load(f"{job['dir']}/{name}.joblib")
    for i in (2, 3):
        X = np.load(f"{job['dir']}/{name}.X{i}.npy")
        y = np.load(f"{job['dir']}/{name}.y{i}.npy", allow_pickle=False)
        est.partial_fit(X, y)
    blob = [w for w in est.coefs_ + est.intercepts_]
    np.savez(f"{job['dir']}/{name}.resumed.npz", *blob)
"""


def test_roundtrip_and_resume_in_fresh_process(tmp_path):
    """Models saved here predict, and resume training, bit-identically in a
    fresh interpreter (which loads the kernels from the on-disk cache)."""
    expected, predict_names = {}, []
    for kind, solver, dtype in CONFIGS:
        name = f"{kind}-{solver}-{np.dtype(dtype).name}"
        X, y = _data(kind, dtype)
        est = _est(kind, solver=solver).fit(X, y)
        joblib.dump(est, tmp_path / f"{name}.joblib")
        np.save(tmp_path / f"{name}.X.npy", X)
        expected[name] = _outputs(est, X)
        predict_names.append(name)

    straight_weights, resume_names = {}, []
    for kind, solver, dtype in RESUMABLE:
        name = f"resume-{kind}-{solver}-{np.dtype(dtype).name}"
        chunks = _chunks(kind, dtype)
        straight = _est(kind, solver=solver, batch_size=16)
        est = _est(kind, solver=solver, batch_size=16)
        for i, (X, y) in enumerate(chunks):
            _partial_fit(straight, kind, X, y)
            if i < 2:
                _partial_fit(est, kind, X, y)
            else:
                np.save(tmp_path / f"{name}.X{i}.npy", X)
                np.save(tmp_path / f"{name}.y{i}.npy", y)
        joblib.dump(est, tmp_path / f"{name}.joblib")
        straight_weights[name] = _weights(straight)
        resume_names.append(name)

    job = {"dir": str(tmp_path), "predict": predict_names, "resume": resume_names}
    res = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_CODE, json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr

    for name, outs in expected.items():
        for key, value in outs.items():
            got = np.load(tmp_path / f"{name}.{key}.npy", allow_pickle=False)
            np.testing.assert_array_equal(got, value)
            assert got.dtype == value.dtype
    for name, weights in straight_weights.items():
        with np.load(tmp_path / f"{name}.resumed.npz") as npz:
            got = [npz[f"arr_{i}"] for i in range(len(weights))]
        _assert_same_weights(got, weights)
