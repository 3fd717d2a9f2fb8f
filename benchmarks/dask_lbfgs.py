"""L-BFGS on a Dask cluster against the same fit in memory, on this machine.

Usage::

    python benchmarks/dask_lbfgs.py [--rows 2000000] [--features 40]

Each side runs in a fresh process, so that peak memory is its own:

* Dask: a 2-worker ``LocalCluster`` (processes, one thread each); a float32
  classification problem (overlapping classes) generated on the workers and
  persisted there
  (``--rows`` x ``--features``, 10 blocks); ``MLPClassifier(hidden_layer_sizes
  =(32,), solver="lbfgs", max_iter=25)`` fitted on the Dask arrays.
* In memory: the same rows, gathered into this process, and the same fit.

Reported: fit time, the final ``loss_``, the accuracy on the first 200000
rows, the client's peak RSS growth during ``fit`` (``ru_maxrss`` before and
after), each worker's peak RSS, and ``predict``'s return type. Targets (issue
30): client growth <= 64 MiB; loss within 1e-3 relative and accuracy within
0.005 of the in-memory fit; the Dask fit <= 1.5x the in-memory one.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

CHILD = "child"
PARAMS = {"hidden_layer_sizes": (32,), "solver": "lbfgs", "max_iter": 25,
          "random_state": 0}  # fmt: skip
CHUNKS = 10


def _warm_up():
    """Load the L-BFGS kernels (float32) in this process before timing."""
    import numpy as np

    import fastnn

    X = np.random.default_rng(0).standard_normal((40, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastnn.MLPClassifier((4,), solver="lbfgs", max_iter=2).fit(X, np.arange(40) % 2)


def _timed_fit(X, y):
    """A fitted estimator, the fit's seconds and this process's peak RSS growth."""
    import fastnn

    est = fastnn.MLPClassifier(**PARAMS)
    before = _peak_mib()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est, time.perf_counter() - start, _peak_mib() - before


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(rows, features):
    """The problem as lazy Dask arrays: Gaussian X, labels from a noisy rule.

    The labels are a linear rule's sign with Gaussian noise added, so that
    the classes overlap and the loss settles (no separable data, on which
    L-BFGS drives the loss towards 0 and the last digits decide the path).
    """
    import dask.array as da

    rng = da.random.RandomState(0)
    chunks = -(-rows // CHUNKS)
    X = rng.standard_normal((rows, features), chunks=(chunks, features))
    X = X.astype("float32")
    w = rng.standard_normal(features, chunks=features).astype("float32")
    noise = rng.standard_normal(rows, chunks=chunks).astype("float32")
    y = (X @ w + 3 * noise > 0).astype("int64")
    return X, y


def _dask_side(rows, features):
    from dask.distributed import Client, LocalCluster, wait

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        X, y = client.persist(list(_data(rows, features)))
        wait([X, y])
        client.run(_warm_up)
        est, seconds, growth = _timed_fit(X, y)
        lazy = est.predict(X)
        head = min(rows, 200_000)
        accuracy = float(est.score(X[:head].compute(), y[:head].compute()))
        workers = client.run(_peak_mib)
        return {
            "seconds": seconds, "loss": est.loss_, "n_iter": est.n_iter_,
            "accuracy": accuracy, "client_growth_mib": growth,
            "worker_peak_mib": sorted(workers.values()),
            "predict_type": type(lazy).__module__ + "." + type(lazy).__name__,
            "x_mib": X.nbytes / 2**20,
        }  # fmt: skip


def _memory_side(rows, features):
    import dask

    X, y = dask.compute(*_data(rows, features), scheduler="threads")
    _warm_up()
    est, seconds, growth = _timed_fit(X, y)
    head = min(rows, 200_000)
    return {
        "seconds": seconds, "loss": est.loss_, "n_iter": est.n_iter_,
        "accuracy": float(est.score(X[:head], y[:head])),
        "peak_growth_mib": growth,
    }  # fmt: skip


def _spawn(side, rows, features):
    cmd = [sys.executable, __file__, CHILD, side, str(rows), str(features)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} side failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(rows=2_000_000, features=40):
    """Both sides, each in its own process."""
    return {"dask": _spawn("dask", rows, features),
            "memory": _spawn("memory", rows, features)}  # fmt: skip


def describe(res):
    """Lines of figures and targets."""
    d, m = res["dask"], res["memory"]
    loss_rel = abs(d["loss"] - m["loss"]) / m["loss"]
    checks = [
        ("client peak RSS growth during fit", d["client_growth_mib"], 64.0, "MiB"),
        ("final loss, relative difference", loss_rel, 1e-3, ""),
        ("accuracy difference", abs(d["accuracy"] - m["accuracy"]), 0.005, ""),
        ("Dask fit / in-memory fit", d["seconds"] / m["seconds"], 1.5, "x"),
    ]
    lines = [
        f"X: {d['x_mib']:.0f} MiB float32 on 2 workers; Dask fit {d['seconds']:.2f} s "
        f"({d['n_iter']} iterations, loss {d['loss']:.6f}, accuracy "
        f"{d['accuracy']:.4f}); in-memory fit {m['seconds']:.2f} s ({m['n_iter']} "
        f"iterations, loss {m['loss']:.6f}, accuracy {m['accuracy']:.4f})",
        f"worker peak RSS: {', '.join(f'{w:.0f}' for w in d['worker_peak_mib'])} MiB;"
        f" in-memory fit's peak RSS growth {m['peak_growth_mib']:.0f} MiB; "
        f"predict on Dask returns {d['predict_type']}",
    ]
    for name, value, limit, unit in checks:
        verdict = "ok" if value <= limit else "short"
        lines.append(f"{name}: {value:.4g}{unit} (<= {limit:g}{unit}) {verdict}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=40)
    args = p.parse_args(argv)
    res = measure(args.rows, args.features)
    print("\n".join(describe(res)))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == CHILD:
        side, rows, features = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        run = _dask_side if side == "dask" else _memory_side
        print(json.dumps(run(rows, features)))
    else:
        sys.exit(main())
