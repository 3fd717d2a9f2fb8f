"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9).

A fit is one task with one subtask per epoch (stochastic solvers) or per
L-BFGS iteration. Each subtask's end hook receives a fitted copy of the
estimator at that point (``fitted_estimator``), and a callback that returns
True there stops the fit at that boundary, with the model usable. With an
older scikit-learn, :data:`CallbackSupportMixin` is an empty mixin and
:func:`fit_callbacks` returns a context that does nothing.
"""

from sklearn.base import is_classifier

from . import _engine as engine
from ._validation import STOCHASTIC_SOLVERS

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9: no callbacks

    class CallbackSupportMixin:  # noqa: D101 - an empty stand-in
        pass


class FitCallbacks:
    """The callback context of one fit, and its per-iteration subtasks.

    Parameters
    ----------
    estimator : BaseMLP
        The estimator being fitted; its callbacks are set up here.
    X, y : array-like
        Training data and targets, passed to the hooks.
    sample_weight : ndarray of shape (n_samples,) or None
        Passed to the hooks as metadata.
    max_subtasks : int
        Most epochs or iterations this fit runs.
    """

    def __init__(self, estimator, X, y, sample_weight, max_subtasks):
        self._estimator = estimator
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self._data = dict(X=X, y=y, metadata=metadata)
        self._ctx = estimator._init_callback_context(max_subtasks=max_subtasks)
        self._ctx.call_on_fit_task_begin(estimator=estimator, **self._data)
        self._iteration = None

    def _state(self):
        """Attributes that make a copy of the estimator predict as it is now."""
        params = self._estimator._params.copy()
        coefs, intercepts = self._estimator._views_of(params)
        return {"_params": params, "coefs_": coefs, "intercepts_": intercepts}

    def _hook_kwargs(self):
        """The estimator, the data and the lazy fitted state, for a hook."""
        return dict(
            estimator=self._estimator,
            reconstruction_attributes=self._state,
            **self._data,
        )

    def begin_iteration(self, name):
        """Open the subtask of the next epoch or iteration."""
        self._iteration = self._ctx.subcontext(task_name=name)
        self._iteration.call_on_fit_task_begin(**self._hook_kwargs())

    def end_iteration(self):
        """Close the current subtask; True when a callback asks to stop."""
        iteration, self._iteration = self._iteration, None
        return iteration.call_on_fit_task_end(**self._hook_kwargs())

    def close(self):
        """End an open subtask as an empty task, then the fit task itself."""
        if self._iteration is not None:
            self._iteration.call_on_fit_task_end(estimator=self._estimator)
            self._iteration = None
        self._ctx.call_on_fit_task_end(**self._hook_kwargs())


class NoCallbacks:
    """Stands in for :class:`FitCallbacks` when the estimator has none."""

    def _hook_kwargs(self):
        """The estimator, the data and the lazy fitted state, for a hook."""
        return dict(
            estimator=self._estimator,
            reconstruction_attributes=self._state,
            **self._data,
        )

    def begin_iteration(self, name):
        """Do nothing."""

    def end_iteration(self):
        """Never ask to stop."""
        return False

    def close(self):
        """Do nothing."""


def fit_callbacks(estimator, X, y, sample_weight, max_subtasks):
    """The callbacks of one fit: :class:`FitCallbacks` when there are any."""
    if not hasattr(estimator, "_init_callback_context"):
        return NoCallbacks()
    if not (
        getattr(estimator, "_skl_callbacks", None)
        or hasattr(estimator, "_parent_callback_ctx")
    ):
        return NoCallbacks()
    return FitCallbacks(estimator, X, y, sample_weight, max_subtasks)


class LbfgsCallback:
    """scipy's per-iteration ``callback`` for L-BFGS, forwarded to the hooks.

    scipy calls it after each iteration; it closes that iteration's subtask
    and opens the next one. Stopping raises ``StopIteration``, which scipy's
    L-BFGS-B honours.
    """

    def __init__(self, callbacks, params):
        self._callbacks = callbacks
        self._params = params
        callbacks.begin_iteration("lbfgs-iter")

    def __call__(self, intermediate_result):
        # The hooks see the iterate scipy accepted, not its last trial point.
        self._params[:] = intermediate_result.x
        if self._callbacks.end_iteration():
            raise StopIteration
        self._callbacks.begin_iteration("lbfgs-iter")


class CallbackMixin:
    """The estimator's side of the callbacks: one context per fit."""

    def _fit_callbacks(self, X, y, sample_weight, incremental):
        """scikit-learn callbacks of this fit: one subtask per epoch or iteration."""
        if self.solver in STOCHASTIC_SOLVERS:
            max_subtasks = 1 if incremental else self.max_iter
        else:
            max_subtasks = self.max_iter + 1  # scipy's last callback opens one more
        return fit_callbacks(
            self, X, lambda: self._callback_targets(y), sample_weight, max_subtasks
        )

    def _callback_targets(self, y):
        """The targets as the user gave them, for the callbacks' scorers."""
        if is_classifier(self):
            return self._output_to_prediction(y)
        return y.ravel() if y.shape[1] == 1 else y

    def _views_of(self, params):
        """``coefs_``/``intercepts_``-shaped views into another flat buffer."""
        return engine.layer_views(params, self._layer_units())
