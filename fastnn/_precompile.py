"""Compile every kernel that a fit or a prediction can reach, into numba's cache.

:func:`precompile` runs a set of tiny fits and predictions through the public
estimators, one for each specialisation that the kernels compile: float32 and
float64; dense, read-only and sparse inputs; weighted and unweighted samples;
SGD (Nesterov, plain momentum, and plain momentum folded into the backward
products of a large layer), Adam and L-BFGS; dropout; classification and
regression; predict. Each kernel compiles once and its machine code is written
to numba's on-disk cache, so a later process loads it instead of compiling it.

The package build runs it (``setup.py``), as does ``python -m fastnn
--precompile``. :func:`cache_status` tells whether the cache holds the
kernels for this machine and this numba version.
"""

import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

__all__ = ["cache_status", "precompile"]

# Features and units of the large layer: 256 * 256 weights reach the engine's
# threshold for folding momentum into the backward products.
_LARGE = 256


def _datasets(dtype, rng):
    """Tiny classification and regression data in ``dtype``."""
    X = rng.standard_normal((12, 3)).astype(dtype)
    y_class = np.arange(12) % 3
    y_reg = rng.standard_normal(12).astype(dtype)
    return X, y_class, y_reg


def _input_variants(X):
    """The same X dense, read-only and sparse (CSR)."""
    read_only = X.copy()
    read_only.flags.writeable = False
    return {"dense": X, "read-only": read_only, "sparse": sp.csr_matrix(X)}


def _cases():
    """Estimator parameters of the fits, one per solver and training path."""
    small = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0}
    return [
        {**small, "solver": "sgd"},
        {**small, "solver": "sgd", "nesterovs_momentum": False},
        {**small, "solver": "adam"},
        {**small, "solver": "lbfgs"},
        {**small, "solver": "sgd", "dropout": 0.2},
        {**small, "solver": "adam", "dropout": 0.2},
    ]


def _run_fits():
    """Fit and predict every case in both dtypes; return the number of fits."""
    from ._engine import quiet_compile
    from ._mlp import MLPClassifier, MLPRegressor

    quiet_compile()
    rng = np.random.default_rng(0)
    n_fits = 0
    for dtype in (np.float32, np.float64):
        X, y_class, y_reg = _datasets(dtype, rng)
        weights = np.linspace(0.5, 1.5, X.shape[0])
        variants = _input_variants(X)
        big = _input_variants(rng.standard_normal((4, _LARGE)).astype(dtype))
        for name, Xv in variants.items():
            for params in _cases():
                for sw in (None, weights):
                    for est, y in (
                        (MLPClassifier(**params), y_class),
                        (MLPRegressor(**params), y_reg),
                    ):
                        est.fit(Xv, y, sample_weight=sw)
                        est.predict(Xv)
                        n_fits += 1
            folded = MLPClassifier(
                hidden_layer_sizes=(_LARGE,), solver="sgd", max_iter=1,
                nesterovs_momentum=False, random_state=0,
            )  # fmt: skip
            folded.fit(big[name], np.arange(4) % 2).predict(big[name])
            n_fits += 1
    return n_fits


def precompile(verbose=True, file=None):
    """Compile every kernel entry point and store it in numba's cache.

    Parameters
    ----------
    verbose : bool, default=True
        Whether to print one line with the time taken and the cache location.
    file : file-like or None, default=None
        Where to print; ``None`` is ``sys.stderr``.

    Returns
    -------
    seconds : float
        Wall-clock time of the fits, compilation included.
    """
    file = sys.stderr if file is None else file
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run_fits()
    seconds = time.perf_counter() - start
    if verbose:
        print(
            f"fastnn: compiled kernels for this machine in {seconds:.1f} s; "
            f"cache: {cache_location()}",
            file=file,
        )
    return seconds


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


def main():
    """Precompile and exit: ``python -m fastnn._precompile``."""
    precompile()
    return 0


if __name__ == "__main__":
    sys.exit(main())
