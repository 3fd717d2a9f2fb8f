"""The estimators' side of prediction: one cached predictor, cheap input checks.

A fitted model keeps one :class:`fastnn._engine.Predictor` (layouts, codes,
workspaces) and reuses it for every ``predict``, ``predict_proba``,
``predict_log_proba``, ``score`` and early-stopping evaluation. It is built
again whenever the weights' buffer, the shapes or the activation may have
changed: ``fit``, ``partial_fit`` and warm starts (:meth:`_forget_predictor`
runs at every fit), and any change of ``coefs_``, ``intercepts_``,
``activation`` or ``out_activation_`` (by ``set_params``, unpickling,
``from_sklearn`` or assignment: :meth:`_predictor` compares them at every
call). The cache lives outside the estimator's ``__dict__``, in a weak
mapping, so that predicting leaves the estimator's attributes as they were
(scikit-learn's ``check_dict_unchanged``) and pickles and clones never
hold it.

Inputs go through :func:`fastnn._inputs.common_input` first; what it cannot
decide goes through scikit-learn's ``validate_data``.
"""

import weakref

from sklearn.utils.validation import check_is_fitted, validate_data

from . import _engine as engine
from ._inputs import common_input

__all__ = ["PredictionMixin"]

# estimator -> (predictor, what it was built from); see PredictionMixin.
_PREDICTORS = weakref.WeakKeyDictionary()


class PredictionMixin:
    """Cached predictor, input checks and the output layer's values and labels."""

    def _forget_predictor(self):
        """Drop the cached predictor; the next prediction builds a new one."""
        _PREDICTORS.pop(self, None)

    def _predictor(self):
        """The cached predictor, checked against the current weights and codes."""
        found = _PREDICTORS.get(self)
        if found is not None:
            predictor, coefs, intercepts, activation, out_activation = found
            if (
                self.coefs_ is coefs[0]
                and self.intercepts_ is intercepts[0]
                and self.activation == activation
                and self.out_activation_ == out_activation
                and all(a is b for a, b in zip(coefs[0], coefs[1]))
                and all(a is b for a, b in zip(intercepts[0], intercepts[1]))
            ):
                return predictor
        check_is_fitted(self)
        params = self._sync_params()
        predictor = engine.Predictor(
            params, self._layer_units(), self.activation, self.out_activation_
        )
        _PREDICTORS[self] = (
            predictor,
            (self.coefs_, tuple(self.coefs_)),
            (self.intercepts_, tuple(self.intercepts_)),
            self.activation,
            self.out_activation_,
        )
        return predictor

    def _checked_input(self, X):
        """X ready for the predictor, and whether ``validate_data`` ran."""
        found = common_input(self, X)
        if found is not None:
            return found, False
        return validate_data(self, X, accept_sparse=["csr", "csc"], reset=False), True

    def _run_predictor(self, X, n_labels=0, check_input=True):
        """The predictor's output for X (activations, or labels if ``n_labels``).

        When the kernel saw a NaN or an infinity in the first layer's sums of
        an X that only the cheap checks passed, ``validate_data`` runs: it
        raises scikit-learn's error for a non-finite X, and otherwise (an
        overflow, non-finite weights) the output stands.
        """
        predictor = self._predictor()
        Xk, checked = self._checked_input(X) if check_input else (X, True)
        out, non_finite = predictor(Xk, n_labels)
        if non_finite and not checked:
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        return out

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X, shape (n_samples, n_outputs)."""
        return self._run_predictor(X, 0, check_input)


def labels_of(lb, labels):
    """The class labels that the predictor's int64 labels stand for.

    As ``LabelBinarizer.inverse_transform`` maps its thresholded or argmax
    output: the classes at the indices for multiclass and binary targets,
    the 0/1 indicator itself (as numpy's ``int``) for multilabel ones.
    """
    if lb.y_type_ == "multilabel-indicator":
        return labels.astype(int, copy=False)
    return lb.classes_.take(labels[:, 0])


def label_width(lb, n_outputs):
    """Width of the predictor's labels for ``lb``'s targets, or 0 if it has none.

    0 (the output goes through ``LabelBinarizer.inverse_transform``) for
    sparse targets and fewer than two classes, whose inverse differs.
    """
    if lb.sparse_input_ or len(lb.classes_) < 2:
        return 0
    if lb.y_type_ == "multiclass":
        return 1
    if lb.y_type_ == "binary" and n_outputs == 1:
        return 1
    if lb.y_type_ == "multilabel-indicator":
        return n_outputs
    return 0
