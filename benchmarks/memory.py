"""Peak memory of the mnist-like fit, one fresh process per implementation.

The child builds the mnist-like data, runs a warm-up fit on 256 rows (numba
compilation or cache loading and lazy imports are not part of the figure),
resets the kernel's peak-RSS mark (``echo 5 > /proc/self/clear_refs``), notes
the RSS with the data loaded, fits the mnist-like row and reads the peak RSS
(``VmHWM``) again.  The figure is ``peak - RSS with data loaded``; the target
for fastnn is <= 100 MB.  If the peak is at least 90 % of ``X.nbytes`` the
estimator most likely copied X (a C-contiguous float32 X must not be copied).

Where the peak mark cannot be reset, the baseline is the peak before the fit
and the result says ``"reset": false`` (the figure is then a lower bound).

Run directly (``python benchmarks/memory.py``) or through ``report.py``.
"""

import gc
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _child(impl):
    sys.path.insert(0, HERE)
    from workloads import WORKLOADS, fit_estimator, make_data, torch_fit

    wl = WORKLOADS["mnist-like"]
    X, y = make_data(wl)

    def fit(Xf, yf, epochs):
        if impl == "torch":
            return torch_fit(wl, Xf, yf, epochs)
        return fit_estimator(impl, wl, Xf, yf, epochs)

    fit(X[:256], y[:256], 1)
    gc.collect()
    reset = _reset_peak()
    base_kb = _status_kb("VmRSS") if reset else _status_kb("VmHWM")
    fit(X, y, wl.epochs)
    peak_kb = _status_kb("VmHWM")
    out = {
        "impl": impl,
        "delta_mb": (peak_kb - base_kb) / 1024.0,
        "x_mb": X.nbytes / 2**20,
        "base_mb": base_kb / 1024.0,
        "peak_mb": peak_kb / 1024.0,
        "reset": reset,
        "epochs": wl.epochs,
    }
    print(json.dumps(out))


def measure(impls=("fastnn", "sklearn", "torch")):
    """Run one child per implementation.

    Parameters
    ----------
    impls : sequence of str
        Implementations to measure; torch is left out when not installed.

    Returns
    -------
    dict
        impl -> child result (``delta_mb``, ``x_mb``, ``base_mb``, ``peak_mb``,
        ``reset``, ``epochs``) or ``{"error": message}``.
    """
    from coldstart import child_env

    results = {}
    for impl in impls:
        cmd = [sys.executable, os.path.abspath(__file__), impl]
        proc = subprocess.run(
            cmd, env=child_env(), capture_output=True, text=True, timeout=900
        )
        if proc.returncode != 0:
            results[impl] = {"error": proc.stderr.strip().splitlines()[-1]}
            continue
        results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def copied_x(res):
    """Whether a child's peak grew by (almost) the size of X.

    Returns
    -------
    str
        ``"yes"``, ``"no"``, or ``"n/a"`` when X (< 50 MB, smoke mode) is too
        small next to the working buffers for the check to mean anything.
    """
    if res["x_mb"] < 50:
        return "n/a"
    return "yes" if res["delta_mb"] >= 0.9 * res["x_mb"] else "no"


def describe(results):
    """Human-readable lines for :func:`measure`'s result."""
    lines = []
    for impl, res in results.items():
        if "error" in res:
            lines.append(f"memory {impl}: failed ({res['error']})")
            continue
        line = (
            f"memory {impl}: peak RSS during the mnist-like fit - RSS with data "
            f"loaded = {res['delta_mb']:.1f} MB (X is {res['x_mb']:.0f} MB; "
            f"copied X: {copied_x(res)})"
        )
        if not res["reset"]:
            line += " [peak mark not resettable: lower bound]"
        if impl == "fastnn":
            ok = res["delta_mb"] <= 100.0 and copied_x(res) != "yes"
            line += f"; target <= 100 MB, no copy: {'ok' if ok else 'short'}"
        lines.append(line)
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 2:
        _child(sys.argv[1])
    else:
        sys.path.insert(0, HERE)
        print("\n".join(describe(measure())))
