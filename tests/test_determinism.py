"""Determinism: same random_state, data and dtype -> bit-identical weights.

Findings behind the BLAS tests (OpenBLAS 0.3.x, 2 threads, this CI machine):
the kernels' matrix products go through scipy's OpenBLAS (numba's ``np.dot``),
and so do scipy's L-BFGS-B vector operations. At a *fixed* number of BLAS
threads every result is reproducible, in one process and across processes.
Between *different* thread counts some shapes round differently (seen for Adam
and L-BFGS with 600-row batches, 64 features and 512 hidden units: OpenBLAS
splits the work differently over threads), so results are only bit-identical
across machines when the BLAS thread count is pinned, e.g. with
``threadpoolctl.threadpool_limits(1)`` or ``OPENBLAS_NUM_THREADS=1``. The BLAS
test checks that this setting works.

Numba's on-disk cache is a second source of differences: machine code loaded
from the cache must compute the same bits as code compiled in the process.
"""

import hashlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import fastnn

SOLVERS = ["sgd", "adam", "lbfgs"]
DTYPES = ["float64", "float32"]
KINDS = ["clf", "reg"]

# Self-contained code run both here and in fresh interpreters.
FIT_CODE = """
import hashlib, warnings
import numpy as np
import fastnn

def fit_hash(kind, solver, dtype, n=300, p=20, hidden=(32, 16), batch=64, it=4):
    rng = np.random.RandomState(42)
    X = rng.randn(n, p).astype(dtype)
    if kind == "clf":
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
        est = fastnn.MLPClassifier
    else:
        y = X[:, 0] * 2.0 - X[:, 2] ** 2
        est = fastnn.MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = est(hidden_layer_sizes=hidden, solver=solver, max_iter=it,
                    batch_size=batch, random_state=7).fit(X, y)
    assert model.coefs_[0].dtype == np.dtype(dtype)
    blob = b"".join(w.tobytes() for w in model.coefs_ + model.intercepts_)
    return hashlib.sha256(blob).hexdigest()
"""
namespace: dict = {}
exec(FIT_CODE, namespace)
fit_hash = namespace["fit_hash"]

CONFIGS = [(k, s, d) for k in KINDS for s in SOLVERS for d in DTYPES]


# Shapes for which 1 and 2 OpenBLAS threads were seen to round differently.
BLAS_SENSITIVE = [("clf", "adam", "float64"), ("clf", "lbfgs", "float64")]
BLAS_KW = dict(n=600, p=64, hidden=(512,), batch=600, it=1)


def _run_in_subprocess(jobs, env_extra=None):
    """Hashes of ``jobs`` = [(configs, kwargs, pin_one_thread), ...] in a fresh
    interpreter, one list of hashes per job."""
    script = FIT_CODE + (
        "\nimport json\n"
        "from contextlib import nullcontext\n"
        "from threadpoolctl import threadpool_limits\n"
        f"jobs = {jobs!r}\n"
        "out = []\n"
        "for configs, kw, pin in jobs:\n"
        "    with threadpool_limits(1) if pin else nullcontext():\n"
        "        out.append([fit_hash(*c, **kw) for c in configs])\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, **(env_extra or {})}
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def default_env_hashes():
    """One fresh process, default environment: all CONFIGS, then the
    BLAS-sensitive ones under ``threadpool_limits(1)``."""
    return _run_in_subprocess([(CONFIGS, {}, False), (BLAS_SENSITIVE, BLAS_KW, True)])


@pytest.mark.parametrize("kind, solver, dtype", CONFIGS)
def test_two_fits_in_one_process(kind, solver, dtype):
    assert fit_hash(kind, solver, dtype) == fit_hash(kind, solver, dtype)


def test_fits_in_separate_processes(default_env_hashes):
    here = [fit_hash(*c) for c in CONFIGS]
    there = default_env_hashes[0]
    assert dict(zip(CONFIGS, there)) == dict(zip(CONFIGS, here))


FRESH_CONFIGS = [("clf", "adam", "float64")]  # compiling costs ~15 s of CPU


def test_fresh_compilation_matches_cached_kernels(tmp_path):
    """A process that compiles the kernels itself (empty numba cache) gets the
    same bits as one that loads them from the cache: the first run after an
    install must not differ from the later ones."""
    here = [fit_hash(*c) for c in FRESH_CONFIGS]
    (fresh,) = _run_in_subprocess(
        [(FRESH_CONFIGS, {}, False)], {"NUMBA_CACHE_DIR": str(tmp_path)}
    )
    assert fresh == here


def test_different_seeds_differ():
    """Guards the tests above against a hash that ignores the weights."""
    a = fit_hash("clf", "adam", "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        rng = np.random.RandomState(42)
        X = rng.randn(300, 20)
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
        est = fastnn.MLPClassifier(
            hidden_layer_sizes=(32, 16), max_iter=4, batch_size=64, random_state=8
        ).fit(X, y)
    blob = b"".join(w.tobytes() for w in est.coefs_ + est.intercepts_)
    assert hashlib.sha256(blob).hexdigest() != a


def test_pinned_blas_threads_restore_bit_identity(default_env_hashes):
    """One BLAS thread gives the same bits whatever the environment says."""
    with threadpool_limits(1):
        here = [fit_hash(*c, **BLAS_KW) for c in BLAS_SENSITIVE]
    (single,) = _run_in_subprocess(
        [(BLAS_SENSITIVE, BLAS_KW, False)], {"OPENBLAS_NUM_THREADS": "1"}
    )
    assert single == here
    assert default_env_hashes[1] == here
