"""Cold-start figures: the README's install, and import plus first fit.

The headline is a user's path (:func:`measure_install`): a new empty venv, the
README's install command in a copy of this working tree, the README's
``python -m fastnn``, then the first digits fit in fresh processes, against
scikit-learn's in the same venv (targets: install <= 60 s with pip's
download cache warm; no compile notice; fit ratio <= 1.5). The install time is
split into pip's build environment, the kernels' compile, the dependencies'
install and the rest (resolving, metadata, the wheel). ``--wheel`` measures
``pip install .`` the same way.

The other figures (:func:`measure`) come from fresh processes of this
environment:

* install-time compile: ``python -m fastnn --precompile`` (what the package
  build runs) into an empty ``NUMBA_CACHE_DIR``, start-up and import included;
* precompiled: import plus the first fit with that cache, against
  scikit-learn's import plus the same fit (targets: ratio <= 1.5 and <= 2.5 s);
* empty cache: the fallback, ``NUMBA_CACHE_DIR`` a new empty directory, so
  every kernel the fit uses compiles (target: <= 8 s).

The fit is the digits row (``load_digits() / 16`` as float32, (100,), batch
200, sgd) for a fixed 20 epochs (``tol=0`` so both run all of them).  The
child process times ``from ... import MLPClassifier`` and ``fit`` only;
interpreter start-up and loading the ``.npy`` files are left out and are the
same for both.

Run directly (``python benchmarks/coldstart.py [--install [--wheel]]``) or
through ``report.py``. This module imports only the standard library at top
level, because the same file is the child process and its clock starts
before numpy is imported.
"""

import json
import os
import re
import shutil
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
INSTALL_LIMIT_S = 60.0
NOTICE = "fastnn: compiling kernels for this machine"


def _child(impl, data_dir, params_json):
    t0 = time.perf_counter()
    if impl == "fastnn":
        from fastnn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    t1 = time.perf_counter()
    import warnings

    import numpy as np

    X = np.load(os.path.join(data_dir, "X.npy"))
    y = np.load(os.path.join(data_dir, "y.npy"))
    est = MLPClassifier(**json.loads(params_json))
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


def _spawn(impl, data_dir, params_json, cache_dir, python=None):
    """One fresh child; ``python`` (a venv's) runs it on that venv's packages."""
    cmd = [python or sys.executable, os.path.abspath(__file__), impl, data_dir]
    env = child_env(cache_dir) if python is None else _venv_env()
    proc = subprocess.run(
        [*cmd, params_json], env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} cold-start child failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["notice"] = NOTICE in proc.stderr
    return out


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


def _venv_env():
    """Environment of a command run in a venv: none of this tree's paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.pop("PYTHONPATH", None)
    return env


def _copy_tree(dest):
    """This working tree's files as a user's checkout has them (no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for name in listed:
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(dest, name))


def _timed_lines(cmd, cwd, env):
    """Run ``cmd``; return its exit status and (seconds, line) of its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines = [(time.perf_counter() - start, line.rstrip()) for line in proc.stdout]
    proc.wait()
    lines.append((time.perf_counter() - start, ""))
    return proc.returncode, lines


def install_phases(lines):
    """Seconds of pip's phases, from ``pip install -v``'s timed lines.

    ``build_env``: pip's isolated build environment (the build requirements);
    ``compile``: the kernels' compile, as the build step reports it;
    ``dependencies``: installing the dependencies and fastnn; ``total``.
    """

    def first(pattern, indented=None):
        for t, line in lines:
            if re.search(pattern, line) and (
                indented is None or line.startswith("  ") == indented
            ):
                return t, line
        return None, None

    started, _ = first(r"Installing build dependencies: started")
    finished, _ = first(r"Installing build dependencies: finished")
    _, compiled = first(r"fastnn: compiled kernels for this machine in ")
    deps, _ = first(r"^Installing collected packages", indented=False)
    total = lines[-1][0]
    phases = {"total": total, "build_env": None, "compile": None}
    if started is not None and finished is not None:
        phases["build_env"] = finished - started
    if compiled is not None:
        phases["compile"] = float(re.search(r"in ([0-9.]+) s", compiled).group(1))
    phases["dependencies"] = None if deps is None else total - deps
    known = [v for k, v in phases.items() if k != "total" and v is not None]
    phases["other"] = total - sum(known)
    return phases


def measure_install(wheel=False, warm_repeats=5, epochs=COLD_EPOCHS):
    """The README's install in a new venv, then first fits in fresh processes.

    Parameters
    ----------
    wheel : bool, default=False
        ``pip install .`` instead of the README's ``pip install -e .``.
    warm_repeats : int
        Interleaved first fits of fastnn and scikit-learn in the venv.
    epochs : int
        Epochs of the digits fit.

    Returns
    -------
    dict
        ``install`` (:func:`install_phases`, in seconds), ``core`` (what
        ``cache_status`` says after the install, "ok" when it holds the
        kernels), ``main_notice`` (whether ``python -m fastnn`` printed the
        compile notice), the first-fit medians ``fastnn_total``,
        ``sklearn_total``, ``ratio`` and ``notice``, and the raw runs.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from workloads import WORKLOADS, estimator_params

    params_json = json.dumps(estimator_params(WORKLOADS["digits"], epochs))
    with tempfile.TemporaryDirectory(prefix="fastnn-install-") as tmp:
        src, venv = os.path.join(tmp, "src"), os.path.join(tmp, "venv")
        _copy_tree(src)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        pip = [python, "-m", "pip", "install", "-v"]
        command = [*pip, "."] if wheel else [*pip, "-e", "."]
        status, lines = _timed_lines(command, src, _venv_env())
        if status != 0:
            raise RuntimeError("install failed:\n" + "\n".join(x for _, x in lines))
        main = subprocess.run(
            [python, "-m", "fastnn"], cwd=src if not wheel else tmp,
            env=_venv_env(), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        core = subprocess.run(
            [python, "-c", "from fastnn._precompile import cache_status as s; "
             "print(s() or 'ok')"],
            cwd=tmp, env=_venv_env(), capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        X, y = load_digits(return_X_y=True)
        np.save(os.path.join(tmp, "X.npy"), (X / 16.0).astype(np.float32))
        np.save(os.path.join(tmp, "y.npy"), y)
        runs = {"fastnn": [], "sklearn": []}
        for _ in range(warm_repeats):
            for impl in runs:
                runs[impl].append(_spawn(impl, tmp, params_json, None, python))
    out = {"wheel": wheel, "install": install_phases(lines), "core": core}
    out["main_notice"] = NOTICE in main.stderr
    out["main_status"] = main.returncode
    out["fastnn_total"] = _median(runs["fastnn"], "total_s")
    out["sklearn_total"] = _median(runs["sklearn"], "total_s")
    out["ratio"] = out["fastnn_total"] / out["sklearn_total"]
    out["notice"] = any(run["notice"] for run in runs["fastnn"])
    out["runs"] = runs
    return out


def describe_install(res):
    """Human-readable lines for :func:`measure_install`'s result."""
    phases = res["install"]

    def part(name):
        value = phases.get(name)
        return "-" if value is None else f"{value:.1f} s"

    command = "pip install ." if res["wheel"] else "pip install -e ."
    total_ok = phases["total"] <= INSTALL_LIMIT_S
    fit_ok = res["ratio"] <= RATIO_LIMIT and not res["notice"]
    return [
        f"{command} in an empty venv: {phases['total']:.1f} s (build environment "
        f"{part('build_env')}, compile {part('compile')}, dependencies "
        f"{part('dependencies')}, other {part('other')}); target <= "
        f"{INSTALL_LIMIT_S:.0f} s: {_verdict(total_ok)}; compiled core: "
        f"{res['core']}; python -m fastnn compile notice: "
        f"{'yes' if res['main_notice'] else 'no'}",
        f"then import + first digits fit ({COLD_EPOCHS} epochs) "
        f"{res['fastnn_total']:.2f} s vs scikit-learn {res['sklearn_total']:.2f} s "
        f"in the same venv; ratio {res['ratio']:.2f}, compile notice: "
        f"{'yes' if res['notice'] else 'no'}; target <= {RATIO_LIMIT} and no "
        f"notice: {_verdict(fit_ok)}",
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(*sys.argv[1:])
    elif "--install" in sys.argv:
        sys.path.insert(0, HERE)
        result = measure_install(wheel="--wheel" in sys.argv)
        print("\n".join(describe_install(result)))
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    else:
        sys.path.insert(0, HERE)
        result = measure()
        print("\n".join(describe(result)))
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
