"""pytest configuration of the benchmark suite.

Run ``pytest benchmarks/ --benchmark-only`` for timings (one pytest-benchmark
group per workload, so fastnn and its peers sit side by side; a summary of
the ratios fastnn time / peer time and their targets is printed at the end),
or ``pytest benchmarks/ --benchmark-disable`` with ``FASTNN_BENCH_SMOKE=1`` (or
``CI=true``) for a quick smoke run without timing claims.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (HERE, ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

from workloads import WORKLOADS, make_data  # noqa: E402

# group -> impl -> median seconds per unit (epoch, fit or predict call)
RESULTS: dict = {}


@pytest.fixture(scope="session")
def workload_data():
    """Return a loader ``load(name) -> (X, y)`` keeping one data set alive."""
    held = {}

    def load(name):
        if name not in held:
            held.clear()
            held[name] = make_data(WORKLOADS[name])
        return held[name]

    return load


def record(group: str, impl: str, benchmark, units: int) -> None:
    """Remember the median time per unit of a finished benchmark."""
    stats = getattr(benchmark, "stats", None)
    if stats is None or not benchmark.enabled:
        return
    per_unit = stats.stats.median / units
    benchmark.extra_info["ms_per_unit"] = round(per_unit * 1e3, 3)
    RESULTS.setdefault(group, {})[impl] = per_unit


def _verdict(ratio, target):
    if target is None:
        return "info"
    return "ok" if ratio <= target else "short"


def pytest_terminal_summary(terminalreporter):
    """Print fastnn time / peer time for every workload that was timed."""
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("fastnn / peer time ratios (lower is better)")
    for name, times in RESULTS.items():
        wl = WORKLOADS.get(name)
        if wl is None or "fastnn" not in times:
            continue
        for peer in wl.peers:
            if peer not in times:
                continue
            ratio = times["fastnn"] / times[peer]
            target = wl.targets.get(peer)
            shown = "-" if target is None else f"<= {target:.3g}"
            tr.write_line(
                f"{name:16s} fastnn/{peer:8s} {ratio:7.3f}  target {shown:9s} "
                f"{_verdict(ratio, target)}"
            )
    peak = RESULTS.get("peak", {})
    mnist = WORKLOADS["mnist-like"]
    if peak and "fastnn" in RESULTS.get(mnist.name, {}):
        from workloads import epoch_flops, layer_units

        gflops = 2.0 * 1024**3 / min(peak.values()) / 1e9
        flops = epoch_flops(mnist.n_samples, layer_units(mnist))
        achieved = flops / RESULTS[mnist.name]["fastnn"] / 1e9
        frac = achieved / gflops
        tr.write_line(
            f"mnist-like fastnn {achieved:.1f} GFLOP/s = {100 * frac:.1f} % of "
            f"peak {gflops:.1f} GFLOP/s (target >= "
            f"{100 * mnist.targets['peak']:.0f} %) "
            f"{'ok' if frac >= mnist.targets['peak'] else 'short'}"
        )
