"""The command line demo ``python -m fastnn``, run as a user runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastnn.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "fastnn", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def result_row(stdout, label):
    """Parse ``label  score  fit s  epochs  per-epoch ms`` from the table."""
    number = r"(-?\d+\.\d+)"
    pattern = rf"^{label} +{number} +{number} s +(\d+) +{number} ms$"
    match = re.search(pattern, stdout, flags=re.MULTILINE)
    assert match is not None, stdout
    score, seconds, epochs, per_epoch_ms = match.groups()
    return float(score), float(seconds), int(epochs), float(per_epoch_ms)


def test_compare_run_prints_losses_scores_times_and_speed_up():
    proc = run_cli("--dataset", "iris", "--epochs", "3", "--hidden", "16,8")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dataset iris: 112 training / 38 test samples, 4 features, 3 classes" in out
    iterations = re.findall(r"^Iteration (\d+), loss = \d+\.\d{8}$", out, re.M)
    assert iterations == ["1", "2", "3"]
    assert "hidden_layer_sizes=(16, 8)" in out
    accuracy, seconds, epochs, per_epoch_ms = result_row(out, "fastnn")
    assert 0.0 <= accuracy <= 1.0
    assert epochs == 3
    assert seconds > 0
    # the fit time is printed to 1 ms / 1000, the time per epoch to 0.01 ms
    rounding_ms = 1000 * 0.0005 / 3 + 0.005
    assert per_epoch_ms == pytest.approx(1000 * seconds / 3, abs=rounding_ms)
    sk_accuracy, sk_seconds, sk_epochs, _ = result_row(out, "scikit-learn")
    assert 0.0 <= sk_accuracy <= 1.0
    assert sk_epochs == 3
    speed_up = re.search(
        r"^speed-up of fastnn over scikit-learn: (\d+\.\d+)x fit time", out, re.M
    )
    assert speed_up is not None, out
    # computed from unrounded times; the printed times are rounded to 0.5 ms
    low = (sk_seconds - 0.0005) / (seconds + 0.0005)
    high = (sk_seconds + 0.0005) / max(seconds - 0.0005, 1e-9)
    assert low - 0.005 <= float(speed_up.group(1)) <= high + 0.005
    assert "Traceback" not in proc.stderr


def test_default_dataset_is_digits_and_no_compare_skips_sklearn():
    proc = run_cli("--epochs", "2", "--no-compare")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dataset digits: 1347 training / 450 test samples, 64 features" in out
    assert "hidden_layer_sizes=(128, 64)" in out
    assert re.findall(r"^Iteration (\d+), loss", out, re.M) == ["1", "2"]
    _, _, epochs, _ = result_row(out, "fastnn")
    assert epochs == 2
    assert "scikit-learn" not in out
    assert "speed-up" not in out


def test_diabetes_is_a_regression_scored_with_r2():
    proc = run_cli("--dataset", "diabetes", "--epochs", "30", "--no-compare")
    assert proc.returncode == 0, proc.stderr
    assert "fastnn.MLPRegressor(" in proc.stdout
    assert re.search(r"^ +R\^2 +fit time", proc.stdout, re.M)
    losses = re.findall(r"^Iteration \d+, loss = (\d+\.\d+)$", proc.stdout, re.M)
    assert len(losses) == 30
    assert float(losses[-1]) < float(losses[0])
    r2, _, epochs, _ = result_row(proc.stdout, "fastnn")
    assert epochs == 30
    assert 0.0 < r2 <= 1.0  # the trained network beats predicting the mean


def test_fastnn_only_activation_skips_the_comparison():
    proc = run_cli(
        "--dataset", "wine", "--activation", "gelu", "--epochs", "2", "--verbose", "0"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Iteration" not in out
    result_row(out, "fastnn")
    assert (
        "scikit-learn's MLPClassifier has no activation 'gelu'; comparison skipped."
        in out
    )
    assert not re.search(r"^scikit-learn ", out, re.M)


def test_bad_option_value_is_one_line_error_with_status_2():
    proc = run_cli("--epochs", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("python -m fastnn: error: argument --epochs:")
    assert "Traceback" not in proc.stderr


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--dataset",
        "--hidden",
        "--solver",
        "--activation",
        "--epochs",
        "--batch-size",
        "--random-state",
        "--verbose",
        "--no-compare",
        "--class-weight",
        "--dropout",
    ):
        assert option in out
    for dataset in ("digits", "iris", "wine", "breast_cancer", "diabetes"):
        assert dataset in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--hidden", "64,x"], "argument --hidden: expected comma-separated"),
        (["--hidden", "64,0"], "argument --hidden: expected comma-separated"),
        (["--solver", "rmsprop"], "argument --solver: invalid choice"),
        (["--activation", "swish"], "argument --activation: invalid choice"),
        (["--epochs", "ten"], "argument --epochs: expected a positive integer"),
        (["--batch-size", "-3"], "argument --batch-size: expected 'auto' or a"),
        (["--verbose", "3"], "argument --verbose: invalid choice"),
        (["--random-state", "1.5"], "argument --random-state: invalid int value"),
        (["--unknown"], "unrecognized arguments: --unknown"),
        (["--class-weight", "balance"], "argument --class-weight: expected 'balanced'"),
        (["--class-weight", "auto"], "argument --class-weight: expected 'balanced'"),
        (["--dropout", "1"], "argument --dropout: expected a dropout rate in [0, 1)"),
        (["--dropout", "-0.1"], "argument --dropout: expected a dropout rate"),
        (["--dropout", "half"], "argument --dropout: expected a dropout rate"),
        (["--dropout", "nan"], "argument --dropout: expected a dropout rate"),
        (
            ["--dataset", "diabetes", "--class-weight", "balanced"],
            "argument --class-weight: dataset diabetes is a regression",
        ),
        (
            ["--solver", "lbfgs", "--dropout", "0.5"],
            "argument --dropout: the lbfgs solver does not support dropout",
        ),
    ],
)
def test_bad_options_exit_2_with_one_error_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m fastnn: error: ")
    assert message in lines[0]


def test_class_weight_and_dropout_reach_fastnn_only(capsys):
    argv = ["--dataset", "iris", "--epochs", "2", "--hidden", "8", "--verbose", "0"]
    assert main([*argv, "--class-weight", "balanced", "--dropout", "0.25"]) == 0
    out = capsys.readouterr().out
    fastnn_repr = out[out.index("fastnn.MLPClassifier(") : out.index("fastnn warm-up")]
    assert "class_weight='balanced'" in fastnn_repr
    assert "dropout=0.25" in fastnn_repr
    note = (
        "scikit-learn's MLPClassifier has no class_weight or dropout parameter; "
        "the scikit-learn comparison runs without class_weight='balanced', "
        "dropout=0.25."
    )
    assert out.splitlines().count(note) == 1
    _, _, epochs, _ = result_row(out, "fastnn")
    _, _, sk_epochs, _ = result_row(out, "scikit-learn")
    assert epochs == sk_epochs == 2
    assert "speed-up of fastnn over scikit-learn" in out


def test_dropout_alone_is_named_alone_in_the_note(capsys):
    argv = ["--dataset", "wine", "--epochs", "1", "--hidden", "4", "--verbose", "0"]
    assert main([*argv, "--solver", "sgd", "--dropout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "dropout=0.5" in out and "class_weight" not in out
    assert (
        "scikit-learn's MLPClassifier has no dropout parameter; the scikit-learn "
        "comparison runs without dropout=0.5." in out.splitlines()
    )
    result_row(out, "scikit-learn")


def test_class_weight_none_and_zero_dropout_keep_the_defaults(capsys):
    argv = ["--dataset", "iris", "--epochs", "1", "--hidden", "4", "--verbose", "0"]
    assert main([*argv, "--class-weight", "none", "--dropout", "0"]) == 0
    out = capsys.readouterr().out
    assert "class_weight" not in out
    assert "dropout" not in out
    assert "runs without" not in out
    result_row(out, "scikit-learn")


def test_class_weight_with_no_compare_prints_no_note(capsys):
    argv = ["--dataset", "iris", "--epochs", "1", "--hidden", "4", "--verbose", "0"]
    assert main([*argv, "--class-weight", "balanced", "--no-compare"]) == 0
    out = capsys.readouterr().out
    assert "class_weight='balanced'" in out
    assert "scikit-learn" not in out


def test_precompile_option_prints_time_and_cache_and_exits_0(monkeypatch, capsys):
    import fastnn._precompile as precompile

    here, children = [], []

    class FinishedChild:
        returncode = 0

        def communicate(self):
            return b"", b""

    def start_child(dtypes, tmp, index):
        children.extend(dtypes)
        return FinishedChild(), str(tmp)

    monkeypatch.setattr(precompile, "compile_kernels", here.extend)
    monkeypatch.setattr(precompile, "_start_child", start_child)
    assert main(["--precompile"]) == 0
    out = capsys.readouterr().out
    assert sorted(here + children) == ["float32", "float64"]
    pattern = r"^fastnn: compiled kernels for this machine in \d+\.\d s; cache: \S+$"
    assert re.search(pattern, out, flags=re.MULTILINE), out
