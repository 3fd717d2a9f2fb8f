"""The numba cache keeps working when fastnn's package directory is read-only.

fastnn compiles its kernels with ``cache=True``.  numba first tries to write
the cache into ``__pycache__`` next to each module; on a read-only install
(system site-packages, a container image) it must fall back to the per-user
cache directory, and a second process must load the kernels from there
instead of compiling them again.

The test copies the package to a temporary directory and makes the in-tree
cache impossible: every directory of the copy is made read-only, and a plain
file named ``__pycache__`` is put in each of them (root ignores permission
bits, but cannot create a directory where a file already exists).  Two fresh
processes then import the copy and fit; the user-wide cache is redirected to
a temporary ``XDG_CACHE_HOME``.
"""

import json
import os
import shutil
import stat
import subprocess
import sys

import fastnn

CHILD = r"""
import json, sys, warnings
import numpy as np
from numba.core.dispatcher import Dispatcher
import fastnn

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 3))
y = (X[:, 0] > 0).astype(int)
est = fastnn.MLPClassifier(
    hidden_layer_sizes=(4,), learning_rate_init=0.05, max_iter=100, random_state=0
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est.fit(X, y)
hits = misses = 0
paths = set()
for name, module in list(sys.modules.items()):
    if name != "fastnn" and not name.startswith("fastnn."):
        continue
    for obj in list(vars(module).values()):
        if isinstance(obj, Dispatcher):
            stats = obj.stats
            hits += sum(stats.cache_hits.values())
            misses += sum(stats.cache_misses.values())
            if stats.cache_hits or stats.cache_misses:
                paths.add(stats.cache_path)
print(json.dumps({
    "file": fastnn.__file__, "accuracy": float(est.score(X, y)),
    "hits": hits, "misses": misses, "paths": sorted(paths),
}))
"""


def _tree(root):
    """Relative path -> (size, mtime_ns) of every file below ``root``."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for fname in filenames:
            path = os.path.join(dirpath, fname)
            st = os.stat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _read_only_copy(dest):
    src = os.path.dirname(os.path.abspath(fastnn.__file__))
    pkg = os.path.join(dest, "fastnn")
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _, filenames in os.walk(pkg, topdown=False):
        for fname in filenames:
            os.chmod(os.path.join(dirpath, fname), 0o444)
        with open(os.path.join(dirpath, "__pycache__"), "w"):
            pass
        os.chmod(os.path.join(dirpath, "__pycache__"), 0o444)
        os.chmod(dirpath, 0o555)
    return pkg


def _make_writable(root):
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, stat.S_IRWXU)
        for fname in filenames:
            os.chmod(os.path.join(dirpath, fname), stat.S_IRUSR | stat.S_IWUSR)


def _run_child(cwd, site, xdg):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=site, XDG_CACHE_HOME=xdg, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


def test_cache_falls_back_to_user_dir_and_is_reused(tmp_path):
    site = str(tmp_path / "site")
    xdg = str(tmp_path / "xdg")
    os.makedirs(site)
    pkg = _read_only_copy(site)
    try:
        before = _tree(pkg)
        first = _run_child(str(tmp_path), site, xdg)
        cache_after_first = _tree(xdg)
        second = _run_child(str(tmp_path), site, xdg)
        cache_after_second = _tree(xdg)
        package_after = _tree(pkg)
    finally:
        _make_writable(pkg)

    for run in (first, second):
        assert run["file"] == os.path.join(pkg, "__init__.py")
        assert run["accuracy"] >= 0.9
        assert run["paths"], "no cached fastnn kernel was called"
        for path in run["paths"]:
            assert path.startswith(os.path.join(xdg, "numba") + os.sep), path

    # first process: compiled and stored in the user-wide cache, not in-tree,
    # and said so once, naming the cache it looked in
    assert first["misses"] > 0 and first["hits"] == 0
    notice = "fastnn: compiling kernels for this machine (no compiled core in "
    assert first["stderr"].count(notice) == 1, first["stderr"]
    assert os.path.join(xdg, "numba") in first["stderr"]
    assert "python -m fastnn --precompile" in first["stderr"]
    assert "fastnn: compiling" not in second["stderr"]
    assert package_after == before
    assert any(name.endswith(".nbi") for name in cache_after_first)
    assert any(name.endswith(".nbc") for name in cache_after_first)
    # second process: every kernel loaded from that cache, nothing rewritten
    assert second["hits"] > 0 and second["misses"] == 0
    assert cache_after_second == cache_after_first
