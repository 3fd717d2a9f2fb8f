"""The compiled core: built by ``fastnn._precompile``, checked before compiling.

``pip install`` runs :func:`fastnn._precompile.precompile` (``setup.py``), so
that a fit in a new process loads every kernel from numba's cache. When the
cache does not hold them, the first kernel call of a process says why, once,
on stderr. The children below point ``NUMBA_CACHE_DIR`` at temporary
directories, so that the package's own cache is left alone.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
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


FIT = r"""
import json, warnings
import numpy as np
from fastnn import MLPClassifier

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.standard_normal((60, 5)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
clf = MLPClassifier((6,), solver="sgd", max_iter=5, random_state=0).fit(X, y)
print(json.dumps(clf.predict_proba(X).tolist()))
"""

HAS_CORE = (
    "NUMBA_CACHE_DIR" not in os.environ and _engine.compiled_core_problem() is None
)
needs_core = pytest.mark.skipif(
    not HAS_CORE,
    reason="no compiled core next to the sources (install without precompiling)",
)


def _child(code, *args, cache_dir=None, root=ROOT, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # ``-c`` puts the working directory first on sys.path
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


@needs_core
def test_the_installed_core_loads_without_compiling():
    out, err = _child(LOADS)
    assert json.loads(out) == {}
    assert NOTICE not in err


def _package_copy_with_core(dest):
    """A copy of the installed package with its compiled core, no bytecode."""
    src = os.path.dirname(os.path.abspath(fastnn.__file__))
    shutil.copytree(src, dest / "fastnn", ignore=shutil.ignore_patterns("*.pyc"))
    indexes = list((dest / "fastnn").rglob("*.nbi"))
    assert indexes, "the copy holds no compiled core"
    return indexes


def _stamp_other_numba_version(indexes):
    """Rewrite each cache index as if another numba version had written it."""
    for path in indexes:
        with open(path, "rb") as f:
            pickle.load(f)
            rest = f.read()
        with open(path, "wb") as f:
            pickle.dump("0.0.0-another", f)
            f.write(rest)


@needs_core
@pytest.mark.parametrize(
    "moved_to, reason",
    [
        ("another CPU", "is for another CPU"),
        ("another numba", "is from another numba version or fastnn source"),
    ],
)
def test_a_core_moved_elsewhere_falls_back_with_one_notice(tmp_path, moved_to, reason):
    expected, err = _child(FIT)
    assert NOTICE not in err
    indexes = _package_copy_with_core(tmp_path)
    extra_env = {"NUMBA_CPU_NAME": "generic"} if moved_to == "another CPU" else {}
    if moved_to == "another numba":
        _stamp_other_numba_version(indexes)
    out, err = _child(FIT, root=str(tmp_path), extra_env=extra_env)
    notices = [line for line in err.splitlines() if line.startswith(NOTICE)]
    assert len(notices) == 1, err
    assert reason in notices[0]
    assert str(tmp_path / "fastnn") in notices[0]
    np.testing.assert_allclose(json.loads(out), json.loads(expected), rtol=1e-6)


MERGE = r"""
import sys
from fastnn._kernels.activations import activation
from fastnn._precompile import merge_cache

if sys.argv[1] == "compile":
    print(activation(0.5, 3))
elif sys.argv[1] == "merge":
    print(merge_cache(sys.argv[2]))
else:
    stats = activation.stats
    print(activation(0.5, 3), sum(stats.cache_hits.values()), len(stats.cache_misses))
"""


def test_merge_cache_copies_another_process_kernels(tmp_path):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    compiled, _ = _child(MERGE, "compile", cache_dir=theirs)
    n_entries, _ = _child(MERGE, "merge", str(theirs), cache_dir=ours)
    assert int(n_entries) >= 1
    value, hits, misses = _child(MERGE, "load", cache_dir=ours)[0].split()
    assert value == compiled
    assert (int(hits), int(misses)) == (1, 0)


def test_the_build_requires_what_the_kernels_import():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        pyproject = tomllib.load(f)
    build = set(pyproject["build-system"]["requires"])
    runtime = set(pyproject["project"]["dependencies"])
    for name in ("numba", "numpy", "scipy", "threadpoolctl"):
        wanted = {r for r in runtime if r.startswith(name + ">")}
        assert wanted and wanted <= build, name
