"""LossCurveDisplay: sklearn Display conventions, plotted data, missing extra."""

import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fastnn import LossCurveDisplay, MLPClassifier, MLPRegressor

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _fit(estimator, X, y):
    with pytest.warns(ConvergenceWarning):
        return estimator.fit(X, y)


def test_plots_loss_curves_and_validation_scores_of_the_estimator(iris):
    est = _fit(
        MLPClassifier(
            hidden_layer_sizes=(8,), max_iter=6, early_stopping=True, random_state=0
        ),
        *iris,
    )
    display = LossCurveDisplay.from_estimator(est)

    assert isinstance(display, LossCurveDisplay)
    n_iter = len(est.loss_curve_)
    assert n_iter == 6
    np.testing.assert_array_equal(display.line_.get_xdata(), np.arange(1, 7))
    np.testing.assert_array_equal(display.line_.get_ydata(), est.loss_curve_)
    assert display.line_.axes is display.ax_
    assert display.figure_ is display.ax_.figure

    # The validation loss is a second line on the loss axes.
    assert len(est.validation_loss_curve_) == 6
    assert display.validation_loss_line_.axes is display.ax_
    assert display.ax_.get_lines() == [display.line_, display.validation_loss_line_]
    np.testing.assert_array_equal(
        display.validation_loss_line_.get_xdata(), np.arange(1, 7)
    )
    np.testing.assert_array_equal(
        display.validation_loss_line_.get_ydata(), est.validation_loss_curve_
    )
    assert display.validation_loss_line_.get_label() == "validation loss"

    assert display.ax2_ is not None and display.ax2_ is not display.ax_
    assert display.validation_line_.axes is display.ax2_
    np.testing.assert_array_equal(display.validation_line_.get_xdata(), np.arange(1, 7))
    np.testing.assert_array_equal(
        display.validation_line_.get_ydata(), est.validation_scores_
    )
    assert display.ax_.get_xlabel() == "epoch"
    assert display.ax_.get_ylabel() == "loss"
    assert display.ax2_.get_ylabel() == "validation score"
    assert display.ax_.get_title() == "MLPClassifier"
    legend = [text.get_text() for text in display.ax2_.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", "validation score"]


def test_without_validation_scores_there_is_no_second_axis(iris):
    X, y = iris
    est = _fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, y)
    assert est.validation_scores_ is None
    display = LossCurveDisplay.from_estimator(est, name="regressor", color="k")
    np.testing.assert_array_equal(display.line_.get_ydata(), est.loss_curve_)
    assert est.validation_loss_curve_ is None
    assert display.ax2_ is None
    assert display.validation_line_ is None
    assert display.validation_loss_line_ is None
    assert display.ax_.get_lines() == [display.line_]
    assert display.ax_.get_ylabel() == "training loss"
    assert len(display.figure_.axes) == 1
    assert display.line_.get_color() == "k"
    assert display.ax_.get_title() == "regressor"
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == ["training loss"]


def test_draws_on_a_given_axes_and_replots(iris):
    est = _fit(
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0), *iris
    )
    fig, (left, right) = plt.subplots(1, 2)
    display = LossCurveDisplay.from_estimator(est, ax=right)
    assert display.ax_ is right
    assert display.figure_ is fig
    assert len(left.get_lines()) == 0

    display.plot(ax=left, validation_kw={"color": "r"})
    assert display.ax_ is left
    np.testing.assert_array_equal(left.get_lines()[0].get_ydata(), est.loss_curve_)


def test_displays_sharing_an_axes_share_the_legend(iris):
    fig, ax = plt.subplots()
    for activation in ("relu", "tanh"):
        est = MLPClassifier(
            hidden_layer_sizes=(4,), activation=activation, max_iter=2, random_state=0
        )
        LossCurveDisplay.from_estimator(_fit(est, *iris), ax=ax, label=activation)
    assert [line.get_label() for line in ax.get_lines()] == ["relu", "tanh"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "relu",
        "tanh",
    ]


def test_built_from_curves_directly():
    display = LossCurveDisplay(
        loss_curve=[0.9, 0.5, 0.4], validation_scores=[0.6, 0.7, 0.75]
    ).plot(validation_kw={"linestyle": "--"})
    np.testing.assert_array_equal(display.line_.get_ydata(), [0.9, 0.5, 0.4])
    np.testing.assert_array_equal(
        display.validation_line_.get_ydata(), [0.6, 0.7, 0.75]
    )
    assert display.validation_line_.get_linestyle() == "--"
    assert display.ax_.get_title() == ""


def test_unfitted_estimator_raises_not_fitted():
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(MLPClassifier())


def test_lbfgs_estimator_has_no_curve_to_plot(iris):
    est = _fit(
        MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=3), *iris
    )
    with pytest.raises(ValueError, match="only the stochastic solvers.*'lbfgs'"):
        LossCurveDisplay.from_estimator(est)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    display = LossCurveDisplay(loss_curve=[1.0, 0.5])
    with pytest.raises(ImportError, match=r'pip install "fastnn\[plot\]"'):
        display.plot()


def test_validation_loss_of_given_validation_data(iris):
    X, y = iris
    est = MLPClassifier(
        hidden_layer_sizes=(8,),
        max_iter=5,
        early_stopping=True,
        scoring="loss",
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X[::2], y[::2], X_val=X[1::2], y_val=y[1::2])
    display = LossCurveDisplay.from_estimator(est, validation_loss_kw={"color": "r"})
    assert len(est.validation_loss_curve_) == 5
    np.testing.assert_array_equal(
        display.validation_loss_line_.get_ydata(), est.validation_loss_curve_
    )
    np.testing.assert_array_equal(
        display.validation_loss_line_.get_xdata(), range(1, 6)
    )
    # scoring="loss" scores the negated validation loss
    np.testing.assert_allclose(
        display.validation_line_.get_ydata(), -np.asarray(est.validation_loss_curve_)
    )
    assert display.validation_loss_line_.get_color() == "r"
    assert display.validation_loss_line_.get_linestyle() == "--"


def test_sklearn_estimator_has_no_validation_loss_line(iris):
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    est = _fit(
        SkMLPClassifier(
            hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0
        ),
        *iris,
    )
    display = LossCurveDisplay.from_estimator(est)
    assert display.validation_loss_line_ is None
    assert display.ax_.get_lines() == [display.line_]
    assert display.validation_line_ is not None
    legend = [text.get_text() for text in display.ax2_.get_legend().get_texts()]
    assert legend == ["training loss", "validation score"]


def test_validation_loss_without_validation_scores():
    display = LossCurveDisplay(
        loss_curve=[0.9, 0.5, 0.4], validation_loss_curve=[1.0, 0.7, 0.8]
    ).plot()
    np.testing.assert_array_equal(
        display.validation_loss_line_.get_ydata(), [1.0, 0.7, 0.8]
    )
    assert display.ax2_ is None and display.validation_line_ is None
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss"]
