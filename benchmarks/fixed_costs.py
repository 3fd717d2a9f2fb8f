"""A fit's fixed costs: a 1-epoch digits fit against each further epoch.

Usage::

    python benchmarks/fixed_costs.py [--repeats 15]

The digits workload (``workloads.py``: float32, (100,), batch 200, SGD) is
fitted by fresh estimators for 1 and for 21 epochs, alternately; a further
epoch costs the difference of the medians over 20. Everything a fit does
once (parameter and input checks, label encoding, weight initialisation, the
engine's set-up) is the 1-epoch fit minus one further epoch. Target (issue
28): the 1-epoch fit takes at most 1.3 further epochs.
"""

import argparse
import statistics
import sys
import time
import warnings

from workloads import WORKLOADS, estimator_params, make_data

EPOCHS = 21
LIMIT = 1.3


def measure(repeats=15):
    """Median seconds of a 1-epoch fit and of a further epoch."""
    import fastnn

    wl = WORKLOADS["digits"]
    X, y = make_data(wl)

    def fit(max_iter):
        est = fastnn.MLPClassifier(**estimator_params(wl, max_iter))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return time.perf_counter() - start

    fit(1), fit(EPOCHS)
    one, many = [], []
    for _ in range(repeats):
        one.append(fit(1))
        many.append(fit(EPOCHS))
    first = statistics.median(one)
    further = (statistics.median(many) - first) / (EPOCHS - 1)
    return {"one_epoch_fit_s": first, "further_epoch_s": further}


def describe(res):
    """One line with the figures and the target."""
    ratio = res["one_epoch_fit_s"] / res["further_epoch_s"]
    verdict = "ok" if ratio <= LIMIT else "short"
    return [
        f"fixed costs: 1-epoch digits fit {res['one_epoch_fit_s'] * 1e3:.3f} ms, "
        f"further epoch {res['further_epoch_s'] * 1e3:.3f} ms; ratio {ratio:.2f} "
        f"(target <= {LIMIT}): {verdict}"
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    print("\n".join(describe(measure(args.repeats))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
