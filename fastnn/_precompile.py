"""Compile every kernel that a fit or a prediction can reach, into numba's cache.

:func:`precompile` calls each of the engine's operations once on tiny data,
for each specialisation that the kernels compile: float32 and float64, each
with dense and sparse (CSR) inputs, weighted and unweighted samples, through
the mini-batch epoch (SGD and Adam), the epoch with dropout, the epoch with
plain momentum folded into the backward products of a large layer, L-BFGS's
full-batch objective and prediction. Each kernel compiles once and its
machine code is written to numba's cache, so that a later process loads it
instead of compiling it. It goes through :mod:`fastnn._engine`, not the
estimators, so that it needs numba, numpy, scipy and threadpoolctl and not
scikit-learn: the package build (``setup.py``) runs it with the build
environment's packages. ``python -m fastnn --precompile`` runs it too, and
:func:`cache_status` tells whether the cache holds the kernels for this
machine and this numba version.

numba compiles under a lock per process, so the two dtypes compile in two
processes at once: this one, and a child with a cache directory of its own
(two processes writing one function's cache index would lose each other's
entries). This process then copies the child's entries into its own cache
(:func:`merge_cache`).
"""

import inspect
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

__all__ = ["cache_status", "merge_cache", "precompile"]

DTYPES = {"float32": np.float32, "float64": np.float64}
# Units of the large layer: 256 * 256 weights reach the engine's threshold for
# folding momentum into the backward products.
_LARGE = 256
_N_ROWS = 12


def _model(out_activation, solver="sgd", **extra):
    """The engine's model dict of a tiny network (scikit-learn's defaults)."""
    return {
        "activation": "relu", "out_activation": out_activation, "alpha": 1e-4,
        "solver": solver, "momentum": 0.9, "nesterovs_momentum": True,
        "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "batch_size": 5,
        **extra,
    }  # fmt: skip


def _targets(dtype):
    """Classification (one-hot, 3 classes) and regression targets."""
    one_hot = np.eye(3, dtype=dtype)[np.arange(_N_ROWS) % 3]
    regression = np.linspace(-1, 1, _N_ROWS, dtype=dtype).reshape(-1, 1)
    return {"softmax": one_hot, "identity": regression}


def _train(engine, X, Y, sample_weight, layer_units, model):
    """One epoch of ``model``'s solver, then L-BFGS's objective and predict."""
    rng = np.random.RandomState(0)
    params = engine.glorot_uniform_params(layer_units, "relu", rng, X.dtype)
    state, step = engine.new_optimizer_state(params)
    runner = engine.EpochRunner(X, Y, sample_weight, params, layer_units, model)
    runner.run_epoch(np.arange(X.shape[0], dtype=np.int64), state, step, 1e-3)
    objective = engine.FullBatchObjective(
        X, Y, sample_weight, params, layer_units, model
    )
    objective.loss_and_gradient()
    engine.predict(X, params, layer_units, "relu", model["out_activation"])
    engine.all_finite(params)


def _compile_dtype(dtype):
    """Run every engine operation on dense and CSR inputs of ``dtype``."""
    from . import _engine as engine

    rng = np.random.default_rng(0)
    X = rng.standard_normal((_N_ROWS, 3)).astype(dtype)
    big = rng.standard_normal((4, _LARGE)).astype(dtype)
    weights = np.linspace(0.5, 1.5, _N_ROWS).astype(dtype)
    dropout = {"dropout_rates": [0.2], "dropout_state": np.array([1], np.uint64)}
    if dtype is np.float64:  # labels are int64 whatever the model's dtype
        engine.integer_one_hot(np.arange(_N_ROWS) % 3)
    for sparse in (False, True):
        Xv = sp.csr_matrix(X) if sparse else X
        for out, Y in _targets(dtype).items():
            units = [3, 4, Y.shape[1]]
            for sw in (None, weights):
                for solver in ("sgd", "adam"):
                    _train(engine, Xv, Y, sw, units, _model(out, solver))
                    _train(engine, Xv, Y, sw, units, _model(out, solver, **dropout))
        Xb = sp.csr_matrix(big) if sparse else big
        folded = _model("logistic", nesterovs_momentum=False, batch_size=4)
        Y = (np.arange(4) % 2).astype(dtype).reshape(-1, 1)
        _train(engine, Xb, Y, None, [_LARGE, _LARGE, 1], folded)


def compile_kernels(dtypes=tuple(DTYPES)):
    """Compile (or load) the kernels of ``dtypes`` in this process.

    The engine passes the kernels their run-time codes and general values
    (the compiled core), not the JIT fallback's static ones.
    """
    from ._engine import quiet_compile

    quiet_compile()
    for name in dtypes:
        _compile_dtype(DTYPES[name])


def precompile(verbose=True, file=None, jobs=None):
    """Compile every kernel entry point and store it in numba's cache.

    Parameters
    ----------
    verbose : bool, default=True
        Whether to print one line with the time taken and the cache location.
    file : file-like or None, default=None
        Where to print; ``None`` is ``sys.stderr``.
    jobs : int or None, default=None
        Processes that compile at once, one dtype each; None is one per CPU
        up to the number of dtypes. With 1, this process compiles both.

    Returns
    -------
    seconds : float
        Wall-clock time, compilation included.
    """
    file = sys.stderr if file is None else file
    if jobs is None:
        jobs = min(len(DTYPES), os.cpu_count() or 1)
    start = time.perf_counter()
    shards = [list(DTYPES)[i::jobs] for i in range(min(jobs, len(DTYPES)))]
    with tempfile.TemporaryDirectory(prefix="fastnn-precompile-") as tmp:
        children = [_start_child(shard, tmp, i) for i, shard in enumerate(shards[1:])]
        compile_kernels(shards[0])
        for proc, cache_dir in children:
            _, err = proc.communicate()
            if proc.returncode != 0:
                last = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
                raise RuntimeError(f"a precompile process failed: {last}")
            merge_cache(cache_dir)
    seconds = time.perf_counter() - start
    if verbose:
        print(
            f"fastnn: compiled kernels for this machine in {seconds:.1f} s; "
            f"cache: {cache_location()}",
            file=file,
        )
    return seconds


def _start_child(dtypes, tmp, index):
    """A child process compiling ``dtypes`` into a cache directory of its own.

    When this process's cache holds entries already, the directory starts
    with them, so that those kernels load instead of compiling again; a
    first build starts the child at once, before this process imports numba.
    """
    cache_dir = os.path.join(tmp, str(index))
    if _has_cache_entries():
        for ours, theirs in _cache_files(cache_dir):
            _copy_entries(ours, theirs)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH")) if p
    )
    cmd = [sys.executable, "-m", "fastnn._precompile", "--dtypes", *dtypes]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return proc, cache_dir


def _has_cache_entries():
    """Whether fastnn's cache directory holds any index (no numba import).

    Looks in ``NUMBA_CACHE_DIR`` when set, else next to the sources; a
    per-user fallback cache is not looked at, and its kernels then compile
    again in the child.
    """
    root = os.environ.get("NUMBA_CACHE_DIR") or os.path.dirname(
        os.path.abspath(__file__)
    )
    return any(name.endswith(".nbi") for _, _, files in os.walk(root) for name in files)


def _cache_files(cache_dir):
    """Pairs of numba cache files, this process's and ``cache_dir``'s.

    One pair per ``cache=True`` kernel of fastnn; ``cache_dir`` is laid out
    as numba lays out a ``NUMBA_CACHE_DIR``.
    """
    from numba.core.caching import IndexDataCacheFile, UserProvidedCacheLocator
    from numba.core.dispatcher import Dispatcher

    from . import _engine  # noqa: F401 - imports every kernel module

    kernels = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(("fastnn._kernels", "fastnn._lowlevel")):
            for obj in vars(module).values():
                if isinstance(obj, Dispatcher) and obj._cache.cache_path:
                    kernels[id(obj)] = obj
    pairs = []
    for kernel in kernels.values():
        cache = kernel._cache
        source = inspect.getfile(kernel.py_func)
        subpath = UserProvidedCacheLocator.get_suitable_cache_subpath(source)
        theirs = IndexDataCacheFile(
            os.path.join(cache_dir, subpath),
            cache._impl.filename_base,
            cache._impl.locator.get_source_stamp(),
        )
        pairs.append((cache._cache_file, theirs))
    return pairs


def _copy_entries(source, target):
    """Copy every entry of one numba cache file into another; return how many."""
    n_entries = 0
    for key in source._load_index():
        data = source.load(key)
        if data is not None:
            os.makedirs(target._cache_path, exist_ok=True)
            target.save(key, data)
            n_entries += 1
    return n_entries


def merge_cache(cache_dir):
    """Copy the kernels compiled into ``cache_dir`` into this process's cache.

    ``cache_dir`` is a ``NUMBA_CACHE_DIR`` that another process compiled
    fastnn's kernels into. Each entry keeps numba's key (signature, CPU and
    bytecode hashes) and is stored as numba itself stores one.

    Returns
    -------
    n_entries : int
        Number of compiled functions copied.
    """
    return sum(_copy_entries(theirs, ours) for ours, theirs in _cache_files(cache_dir))


def cache_location():
    """Directory where numba caches (or would cache) the epoch kernel."""
    from ._engine import kernel_cache_path

    return kernel_cache_path()


def cache_status():
    """Whether numba's cache holds the epoch kernel for this machine.

    Returns
    -------
    reason : str or None
        None when the compiled kernels load from the cache, otherwise why
        they do not (no cache, another numba version or source, another CPU).
    """
    from ._engine import compiled_core_problem

    return compiled_core_problem()


def main(argv=None):
    """Precompile and exit: ``python -m fastnn._precompile``.

    ``--dtypes NAME ...`` compiles only those dtypes, in this process and
    silently: what the child of :func:`precompile` runs.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--dtypes"]:
        compile_kernels(tuple(argv[1:]))
        return 0
    precompile()
    return 0


if __name__ == "__main__":
    sys.exit(main())
