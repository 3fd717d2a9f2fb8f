"""The compiled core: built by ``fastnn._precompile``, checked before compiling.

``pip install`` runs :func:`fastnn._precompile.precompile` (``setup.py``), so
that a fit in a new process loads every kernel from numba's cache. When the
cache does not hold them, the first kernel call of a process says why, once,
on stderr. The children below point ``NUMBA_CACHE_DIR`` at temporary
directories, so that the package's own cache is left alone.
"""

import json
import os
import subprocess
import sys

import pytest

import fastnn
from fastnn import _engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
NOTICE = "fastnn: compiling kernels for this machine ("

PROBLEM = r"""
import pickle, sys
import fastnn._engine as engine

kernel = engine.train_epoch
cache_file = kernel._cache._cache_file
mode = sys.argv[1]
if mode == "other-version":
    with open(cache_file._index_path, "wb") as f:
        pickle.dump("0.0.0", f)
        f.write(b"not an index")
elif mode == "other-cpu":
    cache_file._save_index({("sig", ("another", "cpu", ""), ("h", "h")): "x.nbc"})
print(engine.compiled_core_problem())
"""

LOADS = r"""
import json, sys, warnings
import numpy as np
import scipy.sparse as sp
from numba.core.dispatcher import Dispatcher
from fastnn import MLPClassifier, MLPRegressor

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    X = rng.standard_normal((60, 5)).astype(dtype)
    y = (X[:, 0] > 0).astype(int)
    read_only = X.copy()
    read_only.flags.writeable = False
    for Xv in (X, read_only, sp.csr_matrix(X), np.asfortranarray(X)):
        for solver in ("sgd", "adam", "lbfgs"):
            MLPClassifier((6,), solver=solver, max_iter=2).fit(
                Xv, y, sample_weight=np.ones(60)
            ).predict_proba(Xv)
            MLPRegressor(hidden_layer_sizes=(6,), solver=solver, max_iter=2).fit(
                Xv, X[:, 1].copy()
            ).predict(Xv)
        MLPClassifier((6, 4), dropout=0.3, max_iter=2).fit(Xv, y)
    big = rng.standard_normal((8, 256)).astype(dtype)
    MLPClassifier(
        (256,), solver="sgd", nesterovs_momentum=False, max_iter=1
    ).fit(big, np.arange(8) % 2)
misses = {}
for name, module in list(sys.modules.items()):
    if name.startswith("fastnn"):
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher) and obj.stats.cache_misses:
                misses[obj.__name__] = len(obj.stats.cache_misses)
print(json.dumps(misses))
"""


def _child(code, *args, cache_dir=None):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1], proc.stderr


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("empty", "no compiled core in "),
        ("other-version", "is from another numba version or fastnn source"),
        ("other-cpu", "is for another CPU"),
    ],
)
def test_a_cache_without_the_kernels_names_the_cause(tmp_path, mode, reason):
    out, _ = _child(PROBLEM, mode, cache_dir=tmp_path)
    assert reason in out
    assert str(tmp_path) in out


@pytest.mark.skipif(
    "NUMBA_CACHE_DIR" in os.environ or _engine.compiled_core_problem() is not None,
    reason="no compiled core next to the sources (install without precompiling)",
)
def test_the_installed_core_loads_without_compiling():
    out, err = _child(LOADS)
    assert json.loads(out) == {}
    assert NOTICE not in err
