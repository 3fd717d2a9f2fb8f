"""Early stopping as scikit-learn's MLP does it, and its validation set.

The estimators' side of stopping: the train/validation split, the
validation score and loss of every epoch, and the rules that count epochs
without improvement, stop, or (adaptive SGD) divide the learning rate.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split

from ._validation import data_loss

# scikit-learn's 'adaptive' schedule: the divisor of the learning rate, and the
# rate below which it stops instead.
_ADAPTIVE_DIVISOR = 5.0
_ADAPTIVE_MIN_RATE = 1e-6


class EarlyStoppingMixin:
    """Validation split, validation metrics and stopping rules of BaseMLP."""

    def _split_validation(self, y):
        """Index arrays of the training and validation samples.

        As scikit-learn does, the split is stratified only for single-output
        classifiers (binary targets), on the binarized ``(n_samples, 1)``
        column; multiclass and multilabel targets are split at random.
        """
        n = y.shape[0]
        if not self.early_stopping:
            return np.arange(n), None
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        train_idx, val_idx = train_test_split(
            np.arange(n),
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if val_idx.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return train_idx, val_idx

    def _validation_data(self, X, y, Y, sample_weight, val_idx):
        """Held-out X, targets (labels and encoded) and weights."""
        y_val = y[val_idx]
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        sw_val = None if sample_weight is None else sample_weight[val_idx]
        return X[val_idx], y_val, Y[val_idx], sw_val

    def _validation_scorer(self):
        """The scorer of ``scoring``, or None for the default score or 'loss'."""
        if self.scoring is None or self.scoring == "loss":
            return None
        return check_scoring(self, scoring=self.scoring)

    def _validation_metrics(self, validation):
        """Validation score (higher is better) and data loss of the network."""
        X_val, y_val, Y_val, sw_val = validation
        output = self._forward_pass_fast(X_val, check_input=False)
        loss = data_loss(self.out_activation_, Y_val, output, sw_val)
        if self.scoring == "loss":
            return -loss, loss
        if self._scorer is None:
            y_pred = self._output_to_prediction(output)
            return self._score_prediction(y_val, y_pred, sw_val), loss
        kwargs = {} if sw_val is None else {"sample_weight": sw_val}
        return self._scorer(self, X_val, y_val, **kwargs), loss

    def _update_no_improvement_count(self, validation):
        """Track the best loss or validation score; return the score or None."""
        if validation is not None:
            score, loss = self._validation_metrics(validation)
            self.validation_scores_.append(score)
            self.validation_loss_curve_.append(loss)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._params.copy()
            return score
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]
        return None

    def _trigger_stopping(self, early_stopping, reporter):
        """Stop, or divide the 'adaptive' SGD learning rate by 5.

        The note goes through ``reporter`` so that a progress bar stays intact.
        """
        subject = "Validation score" if early_stopping else "Training loss"
        msg = (
            f"{subject} did not improve more than tol={self.tol:f}"
            f" for {self.n_iter_no_change} consecutive epochs."
        )
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            reporter.write(msg + " Stopping.")
            return True
        if self._learning_rate <= _ADAPTIVE_MIN_RATE:
            reporter.write(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= _ADAPTIVE_DIVISOR
        reporter.write(msg + " Setting learning rate to %f" % self._learning_rate)
        return False
