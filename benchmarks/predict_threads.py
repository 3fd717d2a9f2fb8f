"""Speed-up of predicting from two Python threads on one shared model (issue 6).

Usage::

    python benchmarks/predict_threads.py

The mnist-like model ((256, 128) hidden units, 784 features, 10 classes) is
fitted once; then 60000 rows are predicted as two halves, one after the other
and from two threads at once, with BLAS limited to one thread and with BLAS's
default threads. The prediction kernel releases the GIL, so with one BLAS
thread the two Python threads use both cores. Medians of 7 runs.
"""

import statistics
import threading
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import fastnn


def _median_seconds(run, repeats=7):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60000, 784)).astype(np.float32)
    y = rng.integers(0, 10, X.shape[0])
    est = fastnn.MLPClassifier(
        hidden_layer_sizes=(256, 128), max_iter=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[:5000], y[:5000])
    halves = [X[:30000], X[30000:]]

    def one_thread():
        for half in halves:
            est.predict_proba(half)

    def two_threads():
        threads = [
            threading.Thread(target=est.predict_proba, args=(h,)) for h in halves
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    for blas in (1, None):
        with threadpool_limits(blas):
            serial = _median_seconds(one_thread)
            parallel = _median_seconds(two_threads)
        label = "1" if blas else "default"
        print(
            f"BLAS threads {label}: 1 Python thread {serial * 1e3:.0f} ms, "
            f"2 Python threads {parallel * 1e3:.0f} ms, "
            f"speed-up {serial / parallel:.2f}x"
        )


if __name__ == "__main__":
    main()
