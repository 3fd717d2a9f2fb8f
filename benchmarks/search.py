"""Wall-clock time of a grid search of small networks, end to end.

12 candidates (hidden sizes x alpha x activation) x 3 folds on scikit-learn's
digits, ``max_iter`` epochs each, from a warm numba cache, for:

* scikit-learn with ``n_jobs=1`` and ``n_jobs=2`` (its default backend);
* fastnn with ``n_jobs=1``, ``n_jobs=2`` (default, process-based backend)
  and ``n_jobs=2`` with joblib's threading backend.

Runs are interleaved and repeated; the medians are printed with the two
ratios the performance target names, and with the time the grid's matrix
products alone would take on both cores at one core's large-``dgemm`` rate,
a floor under any search of this grid. Usage::

    python benchmarks/search.py [--repeats 5] [--epochs 40]
"""

import argparse
import statistics
import time
import warnings

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from threadpoolctl import threadpool_limits

from fastnn import MLPClassifier

GRID = {
    "hidden_layer_sizes": [(32,), (64,), (64, 32)],
    "alpha": [1e-4, 1e-2],
    "activation": ["relu", "tanh"],
}


def search(cls, X, y, epochs, n_jobs, backend=None):
    """Seconds for one GridSearchCV fit (refit included)."""
    est = cls(max_iter=epochs, random_state=0)
    grid = GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if backend is None:
            grid.fit(X, y)
        else:
            with joblib.parallel_config(backend=backend):
                grid.fit(X, y)
    return time.perf_counter() - start, grid


RUNS = {
    "sklearn n_jobs=1": (SkMLPClassifier, 1, None),
    "sklearn n_jobs=2": (SkMLPClassifier, 2, None),
    "fastnn n_jobs=1": (MLPClassifier, 1, None),
    "fastnn n_jobs=2": (MLPClassifier, 2, None),
    "fastnn n_jobs=2 threads": (MLPClassifier, 2, "threading"),
}


def measure(repeats, epochs, only=None):
    """Median seconds of each run, interleaved ``repeats`` times."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    runs = {k: v for k, v in RUNS.items() if not only or k in only}
    # Warm-up: numba's cache, joblib's worker pools.
    for cls, n_jobs, backend in runs.values():
        search(cls, X, y, 2, n_jobs, backend)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (cls, n_jobs, backend) in runs.items():
            times[name].append(search(cls, X, y, epochs, n_jobs, backend)[0])
    return times


def products_gflop(n_samples, n_features, n_classes, epochs, cv=3):
    """GFLOP of the matrix products of the search's fits and of one refit.

    Every fit runs the forward and weight-gradient products of every layer
    and the delta products of every layer but the first, for each row of its
    training folds in each epoch; the refit is counted as the cheapest
    candidate's, on all rows.
    """

    def per_row(hidden):
        units = [n_features, *hidden, n_classes]
        weights = [a * b for a, b in zip(units[:-1], units[1:])]
        return 2 * (2 * sum(weights) + sum(weights[1:]))

    hidden = GRID["hidden_layer_sizes"]
    others = len(GRID["alpha"]) * len(GRID["activation"])
    n_train = n_samples * (cv - 1) / cv
    fits = sum(per_row(h) for h in hidden) * others * cv * n_train
    refit = min(per_row(h) for h in hidden) * n_samples
    return (fits + refit) * epochs / 1e9


def dgemm_rate(n=2048, repeats=3):
    """One core's float64 GFLOP/s on ``n x n`` products, the best of repeats."""
    a = np.random.default_rng(0).random((n, n))
    best = float("inf")
    with threadpool_limits(1, user_api="blas"):
        a @ a
        for _ in range(repeats):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def arithmetic_floor(epochs, cores=2):
    """Seconds the grid's products need on ``cores`` cores at :func:`dgemm_rate`."""
    gflop = products_gflop(1797, 64, 10, epochs)
    rate = dgemm_rate()
    return {"gflop": gflop, "rate": rate, "seconds": gflop / (rate * cores)}


def describe(times, epochs, floor=None):
    """Report lines: medians, spreads and the two target ratios."""
    medians = {name: statistics.median(t) for name, t in times.items()}
    lines = [f"grid search, 12 candidates x 3 folds, digits, {epochs} epochs:"]
    for name, t in times.items():
        spread = f"{min(t):.2f} to {max(t):.2f}"
        lines.append(f"  {name:26s} median {medians[name]:6.2f} s  ({spread} s)")
    if {"fastnn n_jobs=1", "fastnn n_jobs=2 threads"} <= medians.keys():
        threads = medians["fastnn n_jobs=2 threads"]
        ratio = medians["fastnn n_jobs=1"] / threads
        lines.append(f"  threads over fastnn n_jobs=1: {ratio:.2f} x (target >= 1.7)")
        sk = [medians[k] for k in medians if k.startswith("sklearn")]
        if sk:
            ratio = min(sk) / threads
            lines.append(
                f"  threads over scikit-learn's faster run: {ratio:.2f} x "
                "(target >= 10)"
            )
            if floor:
                lines.append(
                    f"  the grid's products alone ({floor['gflop']:.1f} GFLOP) at "
                    f"one core's dgemm rate ({floor['rate']:.0f} GFLOP/s) on 2 "
                    f"cores: {floor['seconds']:.3f} s, scikit-learn's faster run "
                    f"over it: {min(sk) / floor['seconds']:.1f} x"
                )
    return lines


def main(argv=None):
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--only", nargs="*", default=None, help="subset of runs")
    args = parser.parse_args(argv)
    times = measure(args.repeats, args.epochs, args.only)
    floor = arithmetic_floor(args.epochs)
    for line in describe(times, args.epochs, floor):
        print(line)
    return times


if __name__ == "__main__":
    main()
