"""Prediction latency against scikit-learn, ONNX Runtime and PyTorch.

Usage::

    python benchmarks/predict.py [--repeats 9] [--sizes 1,10,100]

Two networks fitted by fastnn: the digits network ((100,) hidden units, 64
features, 10 classes; the digits rows repeated to the largest size) and the
mnist-like one ((256, 128), 784 features, 10 classes, Gaussian blobs). Each
is fitted once in float32 and once in float64 (data of that dtype), and every
implementation gets its weights:

* fastnn: ``predict_proba``;
* scikit-learn: ``to_sklearn()``'s ``predict_proba``;
* ONNX Runtime: ``fastnn.to_onnx`` of the model (float32 input for float32,
  double for float64), an ``InferenceSession`` with default options, the
  probabilities output;
* PyTorch: ``nn.Sequential`` of ``Linear``/``ReLU`` with the same weights and
  a softmax, under ``torch.inference_mode()``, from the numpy rows
  (``torch.from_numpy``) to a numpy array.

Rows: 1, 10, 100, 1000, 10000 and 60000. Timing: for every size, rounds of
each implementation in turn (the order rotates every round), each a loop of
calls lasting about 20 ms, 20 ms apart so that no library's spinning threads
overlap the next one; the median per call over the rounds. ``score`` (accuracy
of ``predict``) is timed the same way against scikit-learn's at 1 and 100
rows. The targets of issue 28 are checked at the end.
"""

import argparse
import gc
import json
import statistics
import sys
import time
import warnings

import numpy as np

import fastnn

SIZES = (1, 10, 100, 1000, 10_000, 60_000)
NETWORKS = ("digits", "mnist-like")
ROUND_SECONDS = 0.02
PAUSE_SECONDS = 0.02


def _data(network, n_rows, dtype):
    """Training rows, labels and prediction rows of ``network``."""
    if network == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(dtype)
    else:
        rng = np.random.default_rng(0)
        centers = rng.standard_normal((10, 784))
        y = rng.integers(0, 10, 5000)
        X = (centers[y] + 2.0 * rng.standard_normal((5000, 784))).astype(dtype)
    rows = np.ascontiguousarray(np.resize(X, (n_rows, X.shape[1])))
    return X, y, rows


def _fit(network, X, y):
    hidden = (100,) if network == "digits" else (256, 128)
    est = fastnn.MLPClassifier(hidden, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _onnx(est, X):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    model = fastnn.to_onnx(est, X[:1]).SerializeToString()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return lambda rows: session.run(["probabilities"], {"X": rows})[0]


def _torch(est):
    try:
        import torch
    except ImportError:
        return None
    layers = []
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        linear = torch.nn.Linear(
            W.shape[0], W.shape[1], dtype=torch.from_numpy(W).dtype
        )
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] if i == len(est.coefs_) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Softmax(dim=1)).eval()

    def run(rows):
        with torch.inference_mode():
            return model(torch.from_numpy(rows)).numpy()

    return run


def implementations(est, X):
    """name -> callable(rows) returning the class probabilities."""
    sk = est.to_sklearn()
    impls = {"fastnn": est.predict_proba, "sklearn": sk.predict_proba}
    for name, make in (
        ("onnxruntime", lambda: _onnx(est, X)),
        ("torch", lambda: _torch(est)),
    ):
        run = make()
        if run is not None:
            impls[name] = run
    return impls


def _per_call(run, rows):
    """Seconds per call of a loop of calls lasting about ROUND_SECONDS."""
    start = time.perf_counter()
    run(rows)
    once = time.perf_counter() - start
    reps = max(1, int(ROUND_SECONDS / max(once, 1e-7)))
    start = time.perf_counter()
    for _ in range(reps):
        run(rows)
    return (time.perf_counter() - start) / reps


def time_interleaved(impls, rows, repeats):
    """Median seconds per call of each implementation, interleaved rounds."""
    names = list(impls)
    for name in names:
        impls[name](rows)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            time.sleep(PAUSE_SECONDS)
            times[name].append(_per_call(impls[name], rows))
    return {name: statistics.median(v) for name, v in times.items()}


def _check_same(impls, rows, dtype):
    reference = impls["fastnn"](rows)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for name, run in impls.items():
        np.testing.assert_allclose(
            run(rows), reference, rtol=tol, atol=tol, err_msg=name
        )


def measure(networks=NETWORKS, sizes=SIZES, repeats=9):
    """Median seconds per ``predict_proba`` and ``score`` call.

    Returns
    -------
    dict
        ``{network: {dtype: {n_rows: {impl: seconds}}}}`` under "proba", and
        ``{n_rows: {impl: seconds}}`` for the digits float32 ``score`` under
        "score".
    """
    out = {"proba": {}, "score": {}}
    for network in networks:
        out["proba"][network] = {}
        for dtype in (np.float32, np.float64):
            X, y, rows_all = _data(network, max(sizes), dtype)
            est = _fit(network, X, y)
            impls = implementations(est, X)
            _check_same(impls, rows_all[:64], dtype)
            results = {}
            for n in sizes:
                results[n] = time_interleaved(impls, rows_all[:n], repeats)
                print(network, np.dtype(dtype).name, n, _row(results[n]), flush=True)
            out["proba"][network][np.dtype(dtype).name] = results
            if network == "digits" and dtype == np.float32:
                out["score"] = _score_times(est, X, y, repeats)
    return out


def _score_times(est, X, y, repeats):
    sk = est.to_sklearn()
    results = {}
    for n in (1, 100):
        rows, labels = X[:n].copy(), y[:n].copy()
        impls = {
            "fastnn": lambda r, labels=labels: est.score(r, labels),
            "sklearn": lambda r, labels=labels: sk.score(r, labels),
        }
        assert impls["fastnn"](rows) == impls["sklearn"](rows)
        results[n] = time_interleaved(impls, rows, repeats)
        print("score", n, _row(results[n]), flush=True)
    return results


def _row(times):
    return "  ".join(f"{k} {v * 1e6:.1f} us" for k, v in times.items())


def targets(res):
    """Issue 28's targets: (description, ratio, limit) triples."""
    checks = []
    digits = res["proba"].get("digits", {})
    f32, f64 = digits.get("float32", {}), digits.get("float64", {})

    def ratio(table, n, peer):
        if n in table and peer in table[n]:
            return table[n]["fastnn"] / table[n][peer]
        return None

    for n, peer, limit in [(1, "onnxruntime", 2.0), (1, "sklearn", 0.25),
                           (100, "onnxruntime", 1.25)]:  # fmt: skip
        checks.append((f"float32 {n} row(s) / {peer}", ratio(f32, n, peer), limit))
    for n in (10_000, 60_000):
        checks.append(
            (f"float32 {n} rows / onnxruntime", ratio(f32, n, "onnxruntime"), 1.1)
        )
    for n in (1, 100):
        checks.append((f"float64 {n} row(s) / sklearn", ratio(f64, n, "sklearn"), 0.3))
        score = res["score"].get(n)
        if score:
            checks.append(
                (f"score {n} row(s) / sklearn", score["fastnn"] / score["sklearn"], 0.3)
            )
    for network, by_dtype in res["proba"].items():
        for dtype, table in by_dtype.items():
            worst = max(ratio(table, n, "sklearn") for n in table)
            checks.append((f"{network} {dtype}: slowest size / sklearn", worst, 1.0))
    return [c for c in checks if c[1] is not None]


def describe(res):
    """Markdown table lines and the target checks."""
    columns = ["network", "dtype", "rows", "fastnn", "scikit-learn", "ONNX Runtime",
               "PyTorch", "fastnn / ORT", "fastnn / sklearn"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|---|---|" + "---:|" * 7]
    for network, by_dtype in res["proba"].items():
        for dtype, table in by_dtype.items():
            for n, t in table.items():
                cells = [
                    _us(t.get(k)) for k in ("fastnn", "sklearn", "onnxruntime", "torch")
                ]
                ort = t["fastnn"] / t["onnxruntime"] if "onnxruntime" in t else None
                lines.append(
                    f"| {network} | {dtype} | {n} | "
                    + " | ".join(cells)
                    + f" | {_ratio(ort)} | {_ratio(t['fastnn'] / t['sklearn'])} |"
                )
    for n, t in res["score"].items():
        ratio = _ratio(t["fastnn"] / t["sklearn"])
        lines.append(
            f"- score, {n} row(s): fastnn {_us(t['fastnn'])}, scikit-learn "
            f"{_us(t['sklearn'])}, ratio {ratio}"
        )
    for name, value, limit in targets(res):
        verdict = "ok" if value <= limit else "short"
        lines.append(f"- {name}: {value:.3f} (<= {limit}) {verdict}")
    return lines


def _us(seconds):
    return "-" if seconds is None else f"{seconds * 1e6:,.1f} us"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--networks", default=",".join(NETWORKS))
    p.add_argument("--json", default=None, help="write the raw medians here")
    args = p.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    res = measure(tuple(args.networks.split(",")), sizes, args.repeats)
    print("\n".join(describe(res)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
