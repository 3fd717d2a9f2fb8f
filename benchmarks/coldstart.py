"""Cold-start figures: install-time compile, and import plus first fit.

Each figure comes from a fresh Python process:

* install-time compile: ``python -m fastnn --precompile`` (what ``pip install``
  runs) into an empty ``NUMBA_CACHE_DIR``, start-up and import included;
* precompiled: import plus the first fit with that cache, against
  scikit-learn's ``import sklearn.neural_network`` plus the same fit (targets:
  ratio <= 1.5 and <= 2.5 s);
* empty cache: the fallback, ``NUMBA_CACHE_DIR`` a new empty directory, so
  every kernel the fit uses compiles (target: <= 8 s).

The fit is the digits row (``load_digits() / 16`` as float32, (100,), batch
200, sgd) for a fixed 20 epochs (``tol=0`` so both run all of them).  The
child process times ``import`` and ``fit`` only; interpreter start-up and
loading the ``.npy`` files are left out and are the same for both.

Run directly (``python benchmarks/coldstart.py``) or through ``report.py``.
This module imports only the standard library at top level, because the same
file is the child process and its clock starts before numpy is imported.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COLD_EPOCHS = 20
PRECOMPILED_LIMIT_S = 2.5
RATIO_LIMIT = 1.5
EMPTY_CACHE_LIMIT_S = 8.0


def _child(impl, data_dir, params_json):
    t0 = time.perf_counter()
    if impl == "fastnn":
        import fastnn as module
    else:
        import sklearn.neural_network as module
    t1 = time.perf_counter()
    import warnings

    import numpy as np

    X = np.load(os.path.join(data_dir, "X.npy"))
    y = np.load(os.path.join(data_dir, "y.npy"))
    est = module.MLPClassifier(**json.loads(params_json))
    t2 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    t3 = time.perf_counter()
    out = {"import_s": t1 - t0, "fit_s": t3 - t2, "n_iter": int(est.n_iter_)}
    out["total_s"] = out["import_s"] + out["fit_s"]
    print(json.dumps(out))


def child_env(cache_dir=None):
    """Environment for a child process: repo on the path, chosen numba cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH", "")) if p
    )
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def _spawn(impl, data_dir, params_json, cache_dir):
    cmd = [sys.executable, os.path.abspath(__file__), impl, data_dir, params_json]
    proc = subprocess.run(
        cmd, env=child_env(cache_dir), capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} cold-start child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _precompile(cache_dir):
    """Wall-clock seconds of ``python -m fastnn --precompile`` into cache_dir."""
    cmd = [sys.executable, "-m", "fastnn", "--precompile"]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=child_env(cache_dir), capture_output=True, text=True, timeout=1800
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"python -m fastnn --precompile failed:\n{proc.stderr}")
    return {"total_s": seconds}


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def measure(cold_repeats=3, warm_repeats=5, epochs=COLD_EPOCHS, precompile_repeats=1):
    """Run the cold-start children and summarise them.

    Parameters
    ----------
    cold_repeats : int
        Fresh empty numba caches to time (each compiles what the fit uses).
    warm_repeats : int
        Runs of fastnn with the precompiled cache and of scikit-learn
        (interleaved).
    epochs : int
        Epochs of the digits fit.
    precompile_repeats : int
        Runs of ``python -m fastnn --precompile``, each into an empty cache;
        the warm runs use the last one.

    Returns
    -------
    dict
        Medians in seconds: ``precompile_total``, ``cold_total``,
        ``cold_import``, ``cold_fit``, ``warm_total``, ``warm_import``,
        ``warm_fit``, ``sklearn_total``, ``sklearn_import``, ``sklearn_fit``;
        ``warm_ratio`` and ``cold_ratio`` (to scikit-learn's total); also
        the raw runs under ``runs``.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from workloads import WORKLOADS, estimator_params

    params = estimator_params(WORKLOADS["digits"], epochs)
    params_json = json.dumps(params)
    runs = {"precompile": [], "cold": [], "warm": [], "sklearn": []}
    with tempfile.TemporaryDirectory(prefix="fastnn-cold-") as tmp:
        X, y = load_digits(return_X_y=True)
        np.save(os.path.join(tmp, "X.npy"), (X / 16.0).astype(np.float32))
        np.save(os.path.join(tmp, "y.npy"), y)
        for _ in range(cold_repeats):
            cache = tempfile.mkdtemp(prefix="numba-cache-", dir=tmp)
            runs["cold"].append(_spawn("fastnn", tmp, params_json, cache))
            runs["sklearn"].append(_spawn("sklearn", tmp, params_json, None))
        for _ in range(max(1, precompile_repeats)):
            cache = tempfile.mkdtemp(prefix="numba-cache-", dir=tmp)
            runs["precompile"].append(_precompile(cache))
        for _ in range(warm_repeats):
            runs["warm"].append(_spawn("fastnn", tmp, params_json, cache))
            runs["sklearn"].append(_spawn("sklearn", tmp, params_json, None))
    for run in runs["cold"] + runs["warm"] + runs["sklearn"]:
        if run["n_iter"] != epochs:
            raise RuntimeError(f"cold-start fit ran {run['n_iter']} epochs")
    out = {"runs": runs, "epochs": epochs}
    out["precompile_total"] = _median(runs["precompile"], "total_s")
    for kind in ("cold", "warm", "sklearn"):
        for part in ("total", "import", "fit"):
            out[f"{kind}_{part}"] = _median(runs[kind], f"{part}_s")
    out["warm_ratio"] = out["warm_total"] / out["sklearn_total"]
    out["cold_ratio"] = out["cold_total"] / out["sklearn_total"]
    return out


def _verdict(ok):
    return "ok" if ok else "short"


def describe(res):
    """Human-readable lines for :func:`measure`'s result."""
    sk = (
        f"scikit-learn {res['sklearn_total']:.2f} s (import "
        f"{res['sklearn_import']:.2f} s, fit {res['sklearn_fit']:.2f} s)"
    )
    warm_ok = (
        res["warm_ratio"] <= RATIO_LIMIT and res["warm_total"] <= PRECOMPILED_LIMIT_S
    )
    cold_ok = res["cold_total"] <= EMPTY_CACHE_LIMIT_S
    return [
        f"install-time compile (python -m fastnn --precompile, empty cache): "
        f"{res['precompile_total']:.1f} s",
        f"precompiled: import + first digits fit ({res['epochs']} epochs) "
        f"{res['warm_total']:.2f} s (import {res['warm_import']:.2f} s, fit "
        f"{res['warm_fit']:.2f} s) vs {sk}; ratio {res['warm_ratio']:.2f}, "
        f"targets <= {RATIO_LIMIT} and <= {PRECOMPILED_LIMIT_S} s: "
        f"{_verdict(warm_ok)}",
        f"empty cache (fallback): {res['cold_total']:.2f} s (import "
        f"{res['cold_import']:.2f} s, fit {res['cold_fit']:.2f} s), ratio "
        f"{res['cold_ratio']:.1f} to scikit-learn; target <= "
        f"{EMPTY_CACHE_LIMIT_S} s: {_verdict(cold_ok)}",
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(*sys.argv[1:])
    else:
        sys.path.insert(0, HERE)
        result = measure()
        print("\n".join(describe(result)))
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
