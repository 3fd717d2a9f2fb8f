"""Benchmarks of every workload row: fastnn against scikit-learn and PyTorch.

Each row is one pytest-benchmark group holding ``<row>-fastnn`` and one test
per peer; a round is one complete fit of ``k`` epochs (see ``workloads``), so
the per-epoch time is the round time divided by ``extra_info["epochs"]``.
Every test also asserts that the implementation did the agreed work (epoch
count, finite loss, dtype kept, prediction shape).
"""

import numpy as np
import pytest
from conftest import record
from workloads import WORKLOADS, make_case, smoke_mode

ROUNDS = 1 if smoke_mode() else 3

CASES = [
    pytest.param(
        name, impl, id=f"{name}-{impl}", marks=pytest.mark.benchmark(group=name)
    )
    for name, wl in WORKLOADS.items()
    for impl in wl.impls
]


@pytest.mark.parametrize(("name", "impl"), CASES)
def test_workload(benchmark, workload_data, name, impl):
    if impl == "torch":
        pytest.importorskip("torch")
    wl = WORKLOADS[name]
    X, y = workload_data(name)
    case = make_case(impl, wl, X, y)
    case.warmup()
    benchmark.extra_info["epochs"] = case.units
    benchmark.extra_info["unit"] = wl.unit
    result = benchmark.pedantic(case.run, rounds=ROUNDS, iterations=1)
    case.check(result)
    record(name, impl, benchmark, case.units)


def _matmul(impl, a, b):
    if impl == "numpy":
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
        return lambda: np.matmul(a, b, out=out)
    torch = pytest.importorskip("torch")
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty((a.shape[0], b.shape[1]), dtype=torch.float32)
    return lambda: torch.matmul(ta, tb, out=tout).numpy()


@pytest.mark.benchmark(group="peak")
@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_matmul_peak(benchmark, impl):
    """fp32 peak reference: a 1024 x 1024 x 1024 matrix product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    run = _matmul(impl, a, b)
    run()
    out = benchmark.pedantic(run, rounds=2 if smoke_mode() else 20, iterations=1)
    rows = [0, 511, 1023]
    expected = a[rows].astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(out[rows], expected, rtol=1e-4, atol=1e-3)
    record("peak", impl, benchmark, 1)


def test_search_benchmark_runs_every_fastnn_backend():
    """benchmarks/search.py end to end on one epoch (timings not asserted)."""
    import search

    runs = ["fastnn n_jobs=1", "fastnn n_jobs=2 threads"]
    times = search.measure(repeats=1, epochs=1, only=runs)
    assert set(times) == set(runs) and all(t[0] > 0 for t in times.values())
    lines = search.describe(times, 1)
    assert any("threads over fastnn n_jobs=1" in line for line in lines)


def test_search_floor_counts_the_grids_products():
    import search

    # Per row: 2 * (forward + weight-gradient + delta multiply-adds), by hand:
    # (32,): 2 * (2 * (64*32 + 32*10) + 32*10) = 10112; (64,): 20224;
    # (64, 32): 2 * (2 * (64*64 + 64*32 + 32*10) + 64*32 + 32*10) = 30592.
    per_row = 10112 + 20224 + 30592
    expected = (per_row * 4 * 3 * 1198 + 10112 * 1797) * 40 / 1e9
    assert search.products_gflop(1797, 64, 10, 40) == pytest.approx(expected)
    floor = {"gflop": 36.0, "rate": 80.0, "seconds": 0.225}
    times = {"sklearn n_jobs=2": [2.25], "fastnn n_jobs=1": [1.4]}
    times["fastnn n_jobs=2 threads"] = [0.8]
    line = search.describe(times, 40, floor)[-1]
    assert "0.225 s" in line and "over it: 10.0 x" in line


def test_dropout_benchmark_runs_both_rates():
    """benchmarks/dropout.py end to end on the smoke data (timings not asserted)."""
    import dropout

    times = dropout.epoch_times(repeats=1, epochs=1)
    assert set(times) == set(dropout.RATES)
    assert all(t[0] > 0 for t in times.values())
    assert "dropout=0.2 / dropout=0" in dropout.describe(times)[-1]


def test_prediction_latency_and_fixed_costs_run():
    """The in-process figures of report.py: predict.py and fixed_costs.py."""
    import fixed_costs
    import predict

    latency = predict.measure(("digits",), (1, 3), repeats=1)
    table = latency["proba"]["digits"]["float32"]
    assert set(table) == {1, 3} and "fastnn" in table[1] and "sklearn" in table[1]
    assert any(line.startswith("| digits |") for line in predict.describe(latency))
    fixed = fixed_costs.measure(repeats=1)
    assert fixed["one_epoch_fit_s"] > 0
    assert "fixed costs:" in fixed_costs.describe(fixed)[0]
