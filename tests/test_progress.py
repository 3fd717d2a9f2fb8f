"""Per-epoch progress output: sklearn's verbose lines and the verbose=2 bar."""

import io
import re
import sys

import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from fastnn import MLPClassifier
from fastnn._progress import EpochReporter

ITERATION_LINE = re.compile(r"^Iteration (\d+), loss = (\d+\.\d{8})$")


def test_verbose_zero_prints_nothing_but_counts_epochs(capsys):
    reporter = EpochReporter(verbose=0, max_iter=5)
    reporter.epoch(1, 0.5)
    reporter.epoch(2, 0.25, validation_score=0.75)
    reporter.write("not shown")
    reporter.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""
    assert reporter.n_epochs_reported == 2


@pytest.mark.parametrize("verbose", [1, True])
def test_verbose_one_prints_sklearns_lines(capsys, verbose):
    with EpochReporter(verbose=verbose, max_iter=10) as reporter:
        reporter.epoch(1, 2.302585092994046)
        reporter.epoch(2, 0.123456789, validation_score=0.9)
        reporter.write("Training loss did not improve.")
    captured = capsys.readouterr()
    assert captured.out == (
        "Iteration 1, loss = 2.30258509\n"
        "Iteration 2, loss = 0.12345679\n"
        "Validation score: 0.900000\n"
        "Training loss did not improve.\n"
    )
    assert captured.err == ""


def test_lines_go_to_the_given_file(capsys):
    buffer = io.StringIO()
    reporter = EpochReporter(verbose=1, max_iter=3, file=buffer)
    reporter.epoch(7, 1.0)
    assert buffer.getvalue() == "Iteration 7, loss = 1.00000000\n"
    assert capsys.readouterr().out == ""


def test_verbose_two_draws_a_tqdm_bar(capsys):
    pytest.importorskip("tqdm")
    reporter = EpochReporter(verbose=2, max_iter=4)
    reporter.epoch(1, 0.5)
    reporter.epoch(2, 0.25, validation_score=0.875)
    reporter.close()
    reporter.close()  # a second close is harmless
    captured = capsys.readouterr()
    assert captured.out == (
        "Iteration 1, loss = 0.50000000\n"
        "Iteration 2, loss = 0.25000000\n"
        "Validation score: 0.875000\n"
    )
    final_bar = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert "2/4" in final_bar
    assert "loss=0.25" in final_bar
    assert "validation=0.8750" in final_bar


def test_verbose_two_without_tqdm_prints_plain_progress_lines(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    reporter = EpochReporter(verbose=2, max_iter=4)
    reporter.epoch(1, 0.5)
    reporter.epoch(2, 0.25, validation_score=0.875)
    reporter.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Iteration 1, loss = 0.50000000"
    assert re.fullmatch(r"\[#{6}\.{18}\] 1/4 epochs, loss=0\.5, \d+\.\ds", lines[1])
    assert lines[2] == "Iteration 2, loss = 0.25000000"
    assert lines[3] == "Validation score: 0.875000"
    assert re.fullmatch(
        r"\[#{12}\.{12}\] 2/4 epochs, loss=0\.25, validation=0\.8750, \d+\.\ds",
        lines[4],
    )
    assert len(lines) == 5


def test_estimator_verbose_prints_one_line_per_epoch_of_loss_curve(capsys):
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, verbose=1, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    iteration_lines = [line for line in lines if line.startswith("Iteration")]
    assert len(iteration_lines) == est.n_iter_ == 4
    for n, (line, loss) in enumerate(
        zip(iteration_lines, est.loss_curve_, strict=True), 1
    ):
        match = ITERATION_LINE.match(line)
        assert match is not None, line
        assert int(match.group(1)) == n
        assert match.group(2) == f"{loss:.8f}"


def test_estimator_verbose_two_reports_validation_scores(capsys):
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        verbose=2,
        early_stopping=True,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    captured = capsys.readouterr()
    scores = [
        float(line.split(": ")[1])
        for line in captured.out.splitlines()
        if line.startswith("Validation score: ")
    ]
    assert scores == pytest.approx(est.validation_scores_, abs=1e-6)
    assert len(scores) == est.n_iter_ == 3
    # the bar: tqdm's on stderr, or the plain lines on stdout without tqdm
    assert "3/3" in captured.err + captured.out


def test_stopping_message_matches_sklearn(capsys):
    """The note printed when training stops is scikit-learn's, word for word."""
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = load_iris(return_X_y=True)
    params = dict(
        hidden_layer_sizes=(8,), max_iter=200, n_iter_no_change=2, tol=10.0,
        verbose=1, random_state=0,
    )  # fmt: skip
    outputs = []
    for cls in (MLPClassifier, SkMLPClassifier):
        cls(**params).fit(X, y)
        out = capsys.readouterr().out.splitlines()
        outputs.append([line for line in out if "did not improve" in line])
    assert outputs[0] == outputs[1]
    assert outputs[0] == [
        "Training loss did not improve more than tol=10.000000 for 2 "
        "consecutive epochs. Stopping."
    ]
