"""Cost of dropout per epoch on the mnist-like workload.

Fits fastnn's mnist-like network (256 and 128 hidden units, batches of 128,
float32) for ``--epochs`` epochs with ``dropout`` 0 (the plain kernels) and
0.2 (masks drawn in the epoch kernel), interleaved ``--repeats`` times, and
prints the median time per epoch of each and their ratio. Usage::

    python benchmarks/dropout.py [--repeats 5] [--epochs 2]
"""

import argparse
import statistics
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from workloads import WORKLOADS, estimator_params, make_data

from fastnn import MLPClassifier

RATES = (0.0, 0.2)


def epoch_times(repeats, epochs, workload="mnist-like"):
    """Seconds per epoch of each rate in ``RATES``, one list per rate."""
    wl = WORKLOADS[workload]
    X, y = make_data(wl)
    params = estimator_params(wl, epochs)

    def fit(rate):
        est = MLPClassifier(**params, dropout=rate)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return (time.perf_counter() - start) / epochs

    for rate in RATES:  # warm-up: numba's cache
        fit(rate)
    times = {rate: [] for rate in RATES}
    for _ in range(repeats):
        for rate in RATES:
            times[rate].append(fit(rate))
    return times


def describe(times):
    """Report lines: medians per epoch and the cost of dropout."""
    med = {rate: statistics.median(t) for rate, t in times.items()}
    lines = [f"  dropout={rate}: {1e3 * m:.1f} ms/epoch" for rate, m in med.items()]
    lines.append(f"  dropout=0.2 / dropout=0: {med[0.2] / med[0.0]:.2f} x")
    return lines


def main(argv=None):
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    times = epoch_times(args.repeats, args.epochs)
    print(f"mnist-like, {args.epochs} epochs a fit, medians of {args.repeats}:")
    for line in describe(times):
        print(line)
    return times


if __name__ == "__main__":
    main()
