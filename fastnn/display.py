"""Plots of a fitted network's training curves.

matplotlib is an optional extra (``pip install "fastnn[plot]"``); it is imported
only when something is drawn, so ``import fastnn`` never needs it.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

_INSTALL_HINT = 'pip install "fastnn[plot]"'


def _import_pyplot():
    """Return ``matplotlib.pyplot``, or raise an ImportError naming the extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "LossCurveDisplay needs matplotlib, which is an optional extra of "
            f"fastnn. Install it with: {_INSTALL_HINT}"
        ) from exc
    return plt


class LossCurveDisplay:
    """Training loss per epoch, with the validation loss and score.

    Create it with :meth:`from_estimator` from a network fitted with a
    stochastic solver (``"sgd"`` or ``"adam"``), or from the curves themselves
    followed by :meth:`plot`. With a validation set, the validation loss is a
    second line on the loss axes and the validation score is drawn on a second
    y axis. It follows scikit-learn's Display objects: the matplotlib artists
    are kept as attributes ending in an underscore.

    Parameters
    ----------
    loss_curve : array-like of shape (n_iter,)
        Training loss at the end of each epoch, e.g. ``est.loss_curve_``.
    validation_scores : array-like of shape (n_iter,) or None, default=None
        Score on the held-out validation set after each epoch, e.g.
        ``est.validation_scores_`` when ``early_stopping=True``. ``None`` draws
        the loss alone.
    validation_loss_curve : array-like of shape (n_iter,) or None, default=None
        Data loss on the validation set after each epoch, e.g.
        ``est.validation_loss_curve_`` of a fastnn estimator fitted with
        ``early_stopping=True``. ``None`` draws no validation loss.
    estimator_name : str or None, default=None
        Name shown in the title.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        Axes holding the loss curve.
    figure_ : matplotlib.figure.Figure
        Figure holding ``ax_``.
    line_ : matplotlib.lines.Line2D
        The training loss curve, epochs ``1..n_iter`` on the x axis.
    validation_loss_line_ : matplotlib.lines.Line2D or None
        The validation loss curve, on ``ax_`` next to the training loss;
        ``None`` without a validation loss curve.
    ax2_ : matplotlib.axes.Axes or None
        Second y axis (sharing ``ax_``'s x axis) holding the validation score;
        ``None`` without validation scores.
    validation_line_ : matplotlib.lines.Line2D or None
        The validation score curve; ``None`` without validation scores.

    See Also
    --------
    LossCurveDisplay.from_estimator : Plot the curves of a fitted estimator.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fastnn import LossCurveDisplay
    >>> display = LossCurveDisplay(loss_curve=[1.0, 0.5, 0.3]).plot()
    >>> display.line_.get_ydata().tolist()
    [1.0, 0.5, 0.3]
    """

    def __init__(
        self,
        *,
        loss_curve,
        validation_scores=None,
        validation_loss_curve=None,
        estimator_name=None,
    ):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.validation_loss_curve = validation_loss_curve
        self.estimator_name = estimator_name

    def plot(
        self,
        ax=None,
        *,
        name=None,
        validation_kw=None,
        validation_loss_kw=None,
        **kwargs,
    ):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on. ``None`` creates a new figure and axes.
        name : str or None, default=None
            Title of the plot; defaults to ``estimator_name``.
        validation_kw : dict or None, default=None
            Keyword arguments passed to ``Axes.plot`` for the validation score
            curve.
        validation_loss_kw : dict or None, default=None
            Keyword arguments passed to ``Axes.plot`` for the validation loss
            curve.
        **kwargs : dict
            Keyword arguments passed to ``Axes.plot`` for the loss curve.

        Returns
        -------
        display : LossCurveDisplay
            This object, with ``ax_``, ``figure_``, ``line_``,
            ``validation_loss_line_``, ``ax2_`` and ``validation_line_`` set.
        """
        plt = _import_pyplot()
        if ax is None:
            _, ax = plt.subplots()
        loss = np.asarray(self.loss_curve, dtype=float)
        epochs = np.arange(1, loss.shape[0] + 1)
        (self.line_,) = ax.plot(epochs, loss, **{"label": "training loss", **kwargs})
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        self._plot_validation_loss(ax, validation_loss_kw)
        self._plot_validation(ax, validation_kw)
        self._add_legend(ax)
        title = name if name is not None else self.estimator_name
        if title is not None:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _plot_validation_loss(self, ax, validation_loss_kw):
        """Draw the validation loss on ``ax``, next to the training loss, if any."""
        self.validation_loss_line_ = None
        if self.validation_loss_curve is None:
            return
        loss = np.asarray(self.validation_loss_curve, dtype=float)
        style = {
            "color": "C2",
            "linestyle": "--",
            "label": "validation loss",
            **(validation_loss_kw or {}),
        }
        (self.validation_loss_line_,) = ax.plot(
            np.arange(1, loss.shape[0] + 1), loss, **style
        )
        ax.set_ylabel("loss")

    def _plot_validation(self, ax, validation_kw):
        """Draw the validation scores on a twin y axis of ``ax``, if any."""
        self.ax2_ = self.validation_line_ = None
        if self.validation_scores is None:
            return
        scores = np.asarray(self.validation_scores, dtype=float)
        self.ax2_ = ax.twinx()
        style = {"color": "C1", "label": "validation score", **(validation_kw or {})}
        (self.validation_line_,) = self.ax2_.plot(
            np.arange(1, scores.shape[0] + 1), scores, **style
        )
        self.ax2_.set_ylabel("validation score")

    def _add_legend(self, ax):
        """Legend of every labelled curve on ``ax``, plus the validation curve.

        Curves drawn on ``ax`` earlier (e.g. by another display) stay listed.
        With a second axis the legend goes on it, above every curve, at the
        right middle, which a falling loss and a rising score usually leave free.
        """
        handles, labels = ax.get_legend_handles_labels()
        if self.ax2_ is None:
            ax.legend(handles, labels, loc="best")
            return
        handles.append(self.validation_line_)
        labels.append(self.validation_line_.get_label())
        self.ax2_.legend(handles, labels, loc="center right")

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **kwargs):
        """Plot the loss curves (and validation scores) of a fitted estimator.

        Parameters
        ----------
        estimator : estimator instance
            A fitted ``MLPClassifier`` or ``MLPRegressor`` (fastnn's or
            scikit-learn's) trained with ``solver="sgd"`` or ``"adam"``; it
            needs ``loss_curve_`` and may have ``validation_scores_`` and
            ``validation_loss_curve_`` (fastnn only).
        ax : matplotlib.axes.Axes or None, default=None
            Axes to draw on. ``None`` creates a new figure and axes.
        name : str or None, default=None
            Title of the plot; defaults to the estimator's class name.
        **kwargs : dict
            Passed to :meth:`plot` (``validation_kw``, ``validation_loss_kw``
            and the loss line's ``Axes.plot`` keywords).

        Returns
        -------
        display : LossCurveDisplay
            The display, already drawn.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If the estimator has no ``loss_curve_`` (e.g. ``solver="lbfgs"``).
        """
        check_is_fitted(estimator)
        loss_curve = getattr(estimator, "loss_curve_", None)
        if loss_curve is None:
            solver = getattr(estimator, "solver", None)
            raise ValueError(
                f"{type(estimator).__name__} has no loss_curve_ to plot: only the "
                f"stochastic solvers 'sgd' and 'adam' record it (solver={solver!r})."
            )
        display = cls(
            loss_curve=loss_curve,
            validation_scores=getattr(estimator, "validation_scores_", None),
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, name=name, **kwargs)
