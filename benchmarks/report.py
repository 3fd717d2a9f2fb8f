"""Run the whole performance table of issue 3 and report it.

Usage::

    python benchmarks/report.py [--repeats 5] [--out benchmarks] [--only ROW,...]
                                [--no-subprocess]

All workload rows run in this one process (see ``workloads`` for the timing
protocol): after one warm-up fit per implementation, the implementations are
timed in turn, ``--repeats`` times each (interleaved, so a burst of load on a
shared machine hits all of them), and the median is reported.  The fp32 peak
is the best of ``numpy.matmul`` and ``torch.matmul`` on 1024 x 1024 x 1024.
Prediction latency against ONNX Runtime (``predict.py``) and a fit's fixed
costs (``fixed_costs.py``) run in this process too; the README's install,
cold start and memory are measured in fresh subprocesses (``coldstart.py``,
``memory.py``).

Output: a table on stdout (times, ratio fastnn/peer, target, ok/short),
``results.md`` (markdown for the README), ``results.png`` (bar chart) and
``results.json`` in ``--out``.  In smoke mode (``FASTNN_BENCH_SMOKE=1``) the
files go to a temporary directory unless ``--out`` is given.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (HERE, ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
from workloads import (  # noqa: E402
    WORKLOADS,
    epoch_flops,
    layer_units,
    make_case,
    make_data,
    smoke_mode,
)

PEER_NAMES = {"fastnn": "fastnn", "sklearn": "scikit-learn", "torch": "PyTorch"}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def measure_peak(repeats=20):
    """Best GFLOP/s of numpy and torch on a 1024^3 float32 matmul.

    Returns
    -------
    dict
        ``{"numpy": gflops, "torch": gflops or None, "peak": best}``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty_like(a)
    runners = {"numpy": lambda: np.matmul(a, b, out=out)}
    torch = _torch()
    if torch is not None:
        ta, tb, tout = (torch.from_numpy(m) for m in (a, b, out.copy()))
        runners["torch"] = lambda: torch.matmul(ta, tb, out=tout)
    res = {"numpy": None, "torch": None}
    for name, run in runners.items():
        run()
        best = min(_timed(run) for _ in range(repeats))
        res[name] = 2.0 * 1024**3 / best / 1e9
    res["peak"] = max(v for v in res.values() if v is not None)
    return res


def _timed(run):
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _prepare(wl, X, y):
    """Cases and warm-up times per implementation (errors kept as text)."""
    cases, warm, errors = {}, {}, {}
    for impl in wl.impls:
        if impl == "torch" and _torch() is None:
            errors[impl] = "torch not installed"
            continue
        try:
            case = make_case(impl, wl, X, y)
            warm[impl] = _timed(case.warmup)
        except Exception as exc:  # report the row instead of aborting the table
            errors[impl] = f"{type(exc).__name__}: {exc}"
            continue
        cases[impl] = case
    return cases, warm, errors


def time_workload(wl, repeats):
    """Median time per unit (seconds) of every implementation on one row."""
    X, y = make_data(wl)
    cases, warm, errors = _prepare(wl, X, y)
    samples = {impl: [] for impl in cases}
    for _ in range(repeats):
        for impl, case in cases.items():
            gc.collect()
            t0 = time.perf_counter()
            result = case.run()
            samples[impl].append((time.perf_counter() - t0) / case.units)
            case.check(result)
    return {
        "times": {k: statistics.median(v) for k, v in samples.items()},
        "samples": samples,
        "warmup_s": warm,
        "errors": errors,
    }


def _status(ratio, target, higher_is_better=False):
    if target is None or ratio is None:
        return "info" if ratio is not None else "n/a"
    good = ratio >= target if higher_is_better else ratio <= target
    return "ok" if good else "short"


def evaluate(name, res, peak):
    """Ratios, targets and verdicts of one row."""
    wl = WORKLOADS[name]
    times = res["times"]
    checks = []
    for peer in wl.peers:
        ratio = None
        if "fastnn" in times and peer in times:
            ratio = times["fastnn"] / times[peer]
        target = wl.targets.get(peer)
        checks.append(
            {
                "what": f"fastnn/{peer}",
                "value": ratio,
                "target": target,
                "status": _status(ratio, target),
            }
        )
    if "peak" in wl.targets:
        flops = epoch_flops(wl.n_samples, layer_units(wl))
        res["gflops"] = {k: flops / t / 1e9 for k, t in times.items()}
        frac = res["gflops"].get("fastnn", None)
        frac = None if frac is None else frac / peak["peak"]
        checks.append(
            {
                "what": "fastnn % of fp32 peak",
                "value": frac,
                "target": wl.targets["peak"],
                "status": _status(frac, wl.targets["peak"], True),
            }
        )
    res["checks"] = checks
    return res


def _fmt_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _fmt_check(check):
    if check["value"] is None:
        return f"n/a ({check['what']})"
    if "peak" in check["what"]:
        return (
            f"{100 * check['value']:.0f} % of peak (>= "
            f"{100 * check['target']:.0f} %) {check['status']}"
        )
    target = "-" if check["target"] is None else f"<= {check['target']:.3g}"
    return f"{check['value']:.3f} ({target}) {check['status']}"


def print_table(rows):
    """Print the timing table to stdout."""
    head = f"{'workload':16s} {'unit':24s}"
    head += "".join(f"{PEER_NAMES[i]:>13s}" for i in ("fastnn", "sklearn", "torch"))
    print(head + "   ratios fastnn/peer (target) status")
    for name, res in rows.items():
        wl = WORKLOADS[name]
        line = f"{name:16s} {wl.unit:24s}"
        for impl in ("fastnn", "sklearn", "torch"):
            line += f"{_fmt_ms(res['times'].get(impl)):>13s}"
        checks = "; ".join(
            f"{c['what'].split('/')[-1]}: {_fmt_check(c)}" for c in res["checks"]
        )
        print(f"{line}   {checks}")
        for impl, err in res["errors"].items():
            print(f"{'':16s} {impl} failed: {err}")


def markdown(rows, peak, extra_lines, command):
    """Markdown text of the whole report (table + cold start + memory)."""
    out = [
        "| Workload | Unit | fastnn | scikit-learn | PyTorch | "
        "fastnn / scikit-learn (target) | fastnn / PyTorch (target) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name, res in rows.items():
        wl = WORKLOADS[name]
        times = [_fmt_ms(res["times"].get(i)) for i in ("fastnn", "sklearn", "torch")]
        by_peer = {c["what"].split("/")[-1]: c for c in res["checks"]}
        cells = []
        for peer in ("sklearn", "torch"):
            cells.append(_fmt_check(by_peer[peer]) if peer in by_peer else "-")
        line = f"| {name} | {wl.unit} | " + " | ".join(times + cells) + " |"
        out.append(line)
        if "fastnn % of fp32 peak" in by_peer:
            c = by_peer["fastnn % of fp32 peak"]
            g = res["gflops"].get("fastnn")
            out.append(
                f"| {name}: fastnn GFLOP/s | GFLOP/s | "
                f"{'-' if g is None else f'{g:.0f}'} | | | {_fmt_check(c)} | |"
            )
    out.append("")
    torch_peak = "-" if peak["torch"] is None else f"{peak['torch']:.0f}"
    out.append(
        f"fp32 peak (1024^3 matmul): numpy {peak['numpy']:.0f} GFLOP/s, torch "
        f"{torch_peak} GFLOP/s."
    )
    out.append("")
    for line in extra_lines:  # tables as tables, everything else as a list
        out.append(line if line.startswith(("|", "- ")) else f"- {line}")
    out += ["", f"Made with `{command}` on {machine_line()}."]
    return "\n".join(out) + "\n"


def machine_line():
    """One line describing the machine and library versions."""
    import numba
    import sklearn

    parts = [
        f"{platform.processor() or platform.machine()}",
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"numba {numba.__version__}",
        f"scikit-learn {sklearn.__version__}",
    ]
    torch = _torch()
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return ", ".join(parts)


def plot(rows, path):
    """Bar chart: time relative to scikit-learn per workload (lower is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in rows.items() if "sklearn" in r["times"]]
    impls = ("fastnn", "sklearn", "torch")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for k, impl in enumerate(impls):
        for i, name in enumerate(names):
            t = rows[name]["times"].get(impl)
            if t is None:
                continue
            rel = t / rows[name]["times"]["sklearn"]
            x = i + (k - 1) * width
            ax.bar(
                x, rel, width, color=f"C{k}", label=PEER_NAMES[impl] if i == 0 else None
            )
            ax.text(x, rel, _fmt_ms(t), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("time relative to scikit-learn (log, lower is better)")
    ax.set_title("fastnn vs scikit-learn vs PyTorch (labels: ms per unit)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _in_process_figures(repeats):
    """Prediction latency (``predict.py``) and a fit's fixed costs."""
    import fixed_costs
    import predict

    sizes = (1, 10) if smoke_mode() else predict.SIZES
    networks = ("digits",) if smoke_mode() else predict.NETWORKS
    latency = predict.measure(networks, sizes, max(3, repeats))
    fixed = fixed_costs.measure(3 if smoke_mode() else max(9, repeats))
    lines = ["prediction latency (benchmarks/predict.py):"]
    lines += predict.describe(latency) + fixed_costs.describe(fixed)
    return lines, {"predict": latency, "fixed_costs": fixed}


def _subprocess_figures(repeats):
    import coldstart
    import memory
    import search

    lines, install = [], None
    if not smoke_mode():  # a new venv and a real install: minutes, not smoke
        install = coldstart.measure_install(warm_repeats=max(2, repeats))
        lines += coldstart.describe_install(install)
    cold = coldstart.measure(
        cold_repeats=1 if smoke_mode() else 3, warm_repeats=max(2, repeats)
    )
    lines += coldstart.describe(cold)
    impls = ("fastnn", "sklearn") + (("torch",) if _torch() else ())
    mem = memory.measure(impls)
    lines += memory.describe(mem)
    epochs = 2 if smoke_mode() else 40
    grid = search.measure(1 if smoke_mode() else max(3, repeats // 2), epochs)
    floor = search.arithmetic_floor(epochs)
    lines += search.describe(grid, epochs, floor)
    return lines, {
        "install": install,
        "coldstart": cold,
        "memory": mem,
        "search": grid,
        "search_floor": floor,
    }


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=2 if smoke_mode() else 5)
    p.add_argument("--out", default=None, help="directory for results.*")
    p.add_argument("--only", default=None, help="comma-separated row names")
    p.add_argument("--no-subprocess", action="store_true", help="skip cold start")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS/OpenMP/numba/torch threads (diagnosis on a busy machine; "
        "the published table uses the libraries' defaults)",
    )
    return p.parse_args(argv)


def limit_threads(n):
    """Limit every thread pool of this process (and of its children) to ``n``."""
    import numba
    from threadpoolctl import threadpool_limits

    for var in ("OMP", "OPENBLAS", "MKL", "NUMBA"):
        os.environ[f"{var}_NUM_THREADS"] = str(n)
    threadpool_limits(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)


def main(argv=None):
    """Run the report; see the module docstring."""
    args = _parse(argv)
    if args.threads:
        limit_threads(args.threads)
    out_dir = args.out or (tempfile.mkdtemp() if smoke_mode() else HERE)
    names = args.only.split(",") if args.only else list(WORKLOADS)
    print(machine_line())
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f}; smoke mode: {smoke_mode()}")
    if load > 0.5 * (os.cpu_count() or 1):
        print("WARNING: the machine is busy; timings (PyTorch most) will suffer")
    peak = measure_peak(5 if smoke_mode() else 20)
    print(
        f"fp32 peak: numpy {peak['numpy']:.1f} GFLOP/s, torch "
        f"{peak['torch'] or float('nan'):.1f} GFLOP/s"
    )
    rows = {}
    for name in names:
        res = time_workload(WORKLOADS[name], args.repeats)
        rows[name] = evaluate(name, res, peak)
        warm = ", ".join(f"{k} {v:.2f} s" for k, v in res["warmup_s"].items())
        print(f"[{name}] warm-up fit: {warm}", flush=True)
    print()
    print_table(rows)
    extra, sub = _in_process_figures(args.repeats)
    if not args.no_subprocess:
        more, more_sub = _subprocess_figures(args.repeats)
        extra, sub = extra + more, {**sub, **more_sub}
    for line in extra:
        print(line)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    os.makedirs(out_dir, exist_ok=True)
    command = "python benchmarks/report.py" + (" " + " ".join(argv) if argv else "")
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write(markdown(rows, peak, extra, command))
    plot(rows, os.path.join(out_dir, "results.png"))
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump({"peak": peak, "rows": rows, **sub}, fh, indent=1, default=str)
    print(f"wrote results.md, results.png, results.json to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
