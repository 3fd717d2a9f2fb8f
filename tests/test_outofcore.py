"""Out-of-core training with partial_fit over row chunks (fastnn.outofcore)."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

import fastnn
from fastnn.outofcore import partial_fit_chunks


class _Recorder:
    """Stands in for an estimator and records every partial_fit call."""

    def __init__(self):
        self.calls = []

    def partial_fit(self, X, y, **kwargs):
        self.calls.append((np.array(X[:, 0]), np.array(y), kwargs))
        return self


class _RecordingRegressor(_Recorder, RegressorMixin, BaseEstimator):
    pass


class _RecordingClassifier(_Recorder, ClassifierMixin, BaseEstimator):
    pass


def _row_ids(n, n_cols=2):
    """X whose every column holds the row number, so chunks can be traced."""
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], n_cols, axis=1)


def _epochs(calls, n_chunks):
    return [calls[i : i + n_chunks] for i in range(0, len(calls), n_chunks)]


def test_every_epoch_visits_every_row_once_in_row_chunks():
    X, y = _row_ids(30), np.arange(30) * 2.0
    rec = partial_fit_chunks(
        _RecordingRegressor(), X, y, chunk_rows=7, epochs=3, random_state=0
    )
    assert len(rec.calls) == 3 * 5
    orders = []
    for epoch in _epochs(rec.calls, 5):
        rows = np.concatenate([ids for ids, _, _ in epoch])
        assert_array_equal(np.sort(rows), np.arange(30))
        for ids, targets, kwargs in epoch:
            assert len(ids) == (2 if ids[0] == 28 else 7)
            assert_array_equal(ids, np.arange(ids[0], ids[0] + len(ids)))
            assert_array_equal(targets, ids * 2.0)
            assert kwargs == {}  # a regressor gets no classes
        orders.append([int(ids[0]) for ids, _, _ in epoch])
    assert len({tuple(o) for o in orders}) > 1  # chunks reshuffled per epoch
    again = partial_fit_chunks(
        _RecordingRegressor(), X, y, chunk_rows=7, epochs=3, random_state=0
    )
    assert [int(c[0][0]) for c in again.calls] == sum(orders, [])


def test_unshuffled_chunks_run_in_file_order():
    X, y = _row_ids(10), np.zeros(10)
    rec = partial_fit_chunks(
        _RecordingRegressor(), X, y, chunk_rows=4, epochs=2, shuffle_chunks=False
    )
    assert [int(c[0][0]) for c in rec.calls] == [0, 4, 8, 0, 4, 8]


def test_classes_go_to_the_first_call_only():
    X, y = _row_ids(9), np.array([3, 1, 3, 1, 3, 1, 3, 1, 7])
    rec = partial_fit_chunks(_RecordingClassifier(), X, y, chunk_rows=4)
    assert_array_equal(rec.calls[0][2]["classes"], [1, 3, 7])
    assert all(kwargs == {} for _, _, kwargs in rec.calls[1:])
    rec = partial_fit_chunks(
        _RecordingClassifier(), X, y, chunk_rows=4, classes=[1, 3, 7, 9]
    )
    assert_array_equal(rec.calls[0][2]["classes"], [1, 3, 7, 9])


def test_sample_weight_is_sliced_with_the_rows():
    X, y, w = _row_ids(11), np.zeros(11), np.arange(11) / 10
    rec = partial_fit_chunks(
        _RecordingRegressor(), X, y, chunk_rows=5, sample_weight=w, random_state=1
    )
    for ids, _, kwargs in rec.calls:
        assert_array_equal(kwargs["sample_weight"], ids / 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_rows": 0}, "chunk_rows must be a positive integer, got 0"),
        ({"chunk_rows": 2.5}, "chunk_rows must be a positive integer, got 2.5"),
        ({"chunk_rows": 5, "epochs": 0}, "epochs must be a positive integer"),
        ({"chunk_rows": 5, "y": np.zeros(7)}, "inconsistent numbers of samples"),
        ({"chunk_rows": 5, "X": np.zeros(8)}, "X must be a 2-D array-like"),
        ({"chunk_rows": 5, "est": object()}, "object does not implement partial_fit"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    args = {"est": _RecordingRegressor(), "X": _row_ids(8), "y": np.zeros(8)}
    with pytest.raises(ValueError, match=message):
        partial_fit_chunks(**(args | kwargs))


def _write_memmaps(folder, n_rows, n_cols, chunk_rows, seed=0):
    """Write a classification problem to disk chunk by chunk; return paths."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n_cols)
    x_path, y_path = folder / "X.f64", folder / "y.i64"
    X = np.memmap(x_path, dtype=np.float64, mode="w+", shape=(n_rows, n_cols))
    y = np.memmap(y_path, dtype=np.int64, mode="w+", shape=(n_rows,))
    for start in range(0, n_rows, chunk_rows):
        block = rng.normal(size=(min(chunk_rows, n_rows - start), n_cols))
        X[start : start + len(block)] = block
        y[start : start + len(block)] = block @ w > 0
    X.flush()
    y.flush()
    del X, y
    return x_path, y_path


def test_memmap_training_equals_chunked_in_memory_training(tmp_path):
    n_rows, n_cols = 2000, 10
    x_path, y_path = _write_memmaps(tmp_path, n_rows, n_cols, 500)
    X = np.memmap(x_path, dtype=np.float64, mode="r", shape=(n_rows, n_cols))
    y = np.memmap(y_path, dtype=np.int64, mode="r", shape=(n_rows,))
    params = {"hidden_layer_sizes": (8,), "learning_rate_init": 0.01, "random_state": 0}

    clf = fastnn.MLPClassifier(**params)
    partial_fit_chunks(clf, X, y, chunk_rows=300, epochs=5, shuffle_chunks=False)

    X_mem, y_mem = np.array(X), np.array(y)
    manual = fastnn.MLPClassifier(**params)
    manual.partial_fit(X_mem[:300], y_mem[:300], classes=[0, 1])
    for start in list(range(300, n_rows, 300)) + 4 * list(range(0, n_rows, 300)):
        manual.partial_fit(X_mem[start : start + 300], y_mem[start : start + 300])
    for a, b in zip(
        clf.coefs_ + clf.intercepts_, manual.coefs_ + manual.intercepts_, strict=True
    ):
        assert_array_equal(a, b)
    assert clf.score(X_mem, y_mem) > 0.9


# Runs in a fresh interpreter so that its memory figures are its own.
MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time, tracemalloc
    import numpy as np
    import fastnn
    from fastnn.outofcore import partial_fit_chunks

    x_path, y_path = sys.argv[1], sys.argv[2]
    n_rows, n_cols, chunk_rows = map(int, sys.argv[3:6])

    def rss_anon():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024

    class PeakSampler(threading.Thread):
        def __init__(self):
            super().__init__(daemon=True)
            self.peak, self.done = rss_anon(), threading.Event()
        def run(self):
            while not self.done.is_set():
                self.peak = max(self.peak, rss_anon())
                time.sleep(0.001)

    X = np.memmap(x_path, dtype=np.float64, mode="r", shape=(n_rows, n_cols))
    y = np.memmap(y_path, dtype=np.int64, mode="r", shape=(n_rows,))
    params = dict(hidden_layer_sizes=(8,), random_state=0)
    # Warm up: load the kernels and let the allocator settle on small data.
    warm = fastnn.MLPClassifier(**params)
    partial_fit_chunks(warm, np.array(X[:500]), np.array(y[:500]), chunk_rows=250)

    base = rss_anon()
    sampler = PeakSampler()
    tracemalloc.start()
    sampler.start()
    clf = partial_fit_chunks(
        fastnn.MLPClassifier(**params), X, y, chunk_rows=chunk_rows, random_state=0
    )
    sampler.peak = max(sampler.peak, rss_anon())
    sampler.done.set()
    sampler.join()
    train_traced = tracemalloc.get_traced_memory()[1]
    train_anon = sampler.peak - base

    # Control: loading the whole file shows up in the same two measures.
    tracemalloc.reset_peak()
    base = rss_anon()
    whole = np.array(X)
    load_anon = rss_anon() - base
    load_traced = tracemalloc.get_traced_memory()[1]
    accuracy = clf.score(whole[:5000], np.array(y[:5000]))
    print(json.dumps(dict(train_traced=train_traced, train_anon=train_anon,
                          load_traced=load_traced, load_anon=load_anon,
                          accuracy=accuracy)))
    """
)


def test_memmap_peak_memory_follows_chunk_size_not_file_size(tmp_path):
    n_rows, n_cols, chunk_rows = 48_000, 256, 4_000
    file_bytes = n_rows * n_cols * 8  # 98 MB
    chunk_bytes = chunk_rows * n_cols * 8  # 8 MB, 12 chunks
    x_path, y_path = _write_memmaps(tmp_path, n_rows, n_cols, chunk_rows)
    args = [str(x_path), str(y_path), str(n_rows), str(n_cols), str(chunk_rows)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print({k: round(v / 2**20, 1) if k != "accuracy" else v for k, v in m.items()})
    # The measures do see data being loaded: the control load of the whole file.
    assert m["load_traced"] >= 0.95 * file_bytes
    assert m["load_anon"] >= 0.9 * file_bytes
    # Training on the same file stays within a few chunks.
    assert m["train_traced"] <= 3 * chunk_bytes
    assert m["train_anon"] <= 4 * chunk_bytes
    assert m["accuracy"] > 0.8
