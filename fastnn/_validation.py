"""Validation data, class weights and the validation loss of the estimators.

Estimator-side rules, no kernels: what ``fit``'s ``X_val``/``y_val`` may be
(HistGradientBoosting's rules and messages), how ``class_weight`` turns into
sample weights (scikit-learn's ``compute_sample_weight``), and the data loss
of the network's outputs on a validation set (scikit-learn's MLP losses).
"""

import functools
import operator

import numpy as np
from numpy.random.bit_generator import ISeedSequence
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.utils import check_consistent_length
from sklearn.utils import check_random_state as sklearn_check_random_state
from sklearn.utils._param_validation import make_constraint
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, validate_data

STOCHASTIC_SOLVERS = ("sgd", "adam")


class _PlaceholderWords(ISeedSequence):
    """Seed words for an MT19937 that legacy seeding then overwrites.

    ``RandomState(seed)`` first builds its MT19937 from a fresh
    ``SeedSequence`` (hashing 624 words of OS entropy, most of its cost),
    then overwrites the whole state by legacy seeding. These placeholder
    words, a list that MT19937 copies fast, skip the hashing.
    """

    WORDS = [1] * 624

    def generate_state(self, n_words, dtype=np.uint32):
        """The placeholder words (overwritten by the seeding that follows)."""
        return self.WORDS[:n_words]


_PLACEHOLDER_WORDS = _PlaceholderWords()


def check_random_state(seed):
    """scikit-learn's ``check_random_state``, without its cost for int seeds.

    For a Python int in ``[0, 2**32)``, ``np.random.RandomState(seed)``
    built as ``RandomState(MT19937(...)).seed(seed)``: numpy's legacy
    seeding sets the same 624-word state and resets the same caches, so the
    streams are identical. Everything else goes to scikit-learn's.
    """
    if type(seed) is int and 0 <= seed <= 0xFFFFFFFF:
        random_state = np.random.RandomState(np.random.MT19937(_PLACEHOLDER_WORDS))
        random_state.seed(seed)
        return random_state
    return sklearn_check_random_state(seed)


def generator_state(random_state):
    """``random_state.get_state(legacy=False)``, the key as a list of ints.

    :func:`random_state_at` sets a list key in about 5 µs, an array one in
    about 100 µs.
    """
    state = random_state.get_state(legacy=False)
    state["state"]["key"] = state["state"]["key"].tolist()
    return state


def random_state_at(state):
    """A new ``RandomState`` set to ``state``, a :func:`generator_state` dict.

    Built from placeholder words (see :func:`check_random_state`), then set.
    """
    random_state = np.random.RandomState(np.random.MT19937(_PLACEHOLDER_WORDS))
    random_state.set_state(state)
    return random_state


@functools.cache
def _constraints(cls, constraints_id):
    """``(name, constraint objects)`` for each parameter ``cls`` validates.

    In ``_get_param_names`` order, as ``validate_parameter_constraints``
    meets them in ``get_params``; ``constraints_id`` keys the cache on the
    class's current ``_parameter_constraints``. Also returns a function that
    reads those parameters of an estimator, as a tuple in the same order.
    """
    table = []
    for name in cls._get_param_names():
        constraints = cls._parameter_constraints.get(name, "no_validation")
        if constraints != "no_validation":
            table.append((name, tuple(make_constraint(c) for c in constraints)))
    names = [name for name, _ in table]
    if len(names) < 2:  # attrgetter returns a tuple only for two names or more
        return tuple(table), lambda est: tuple(getattr(est, n) for n in names)
    return tuple(table), operator.attrgetter(*names)


# (constraint table, name, type, value) -> whether the value satisfies one
# of the constraints: is_satisfied_by is a pure function of an immutable
# (hashable) value, so its answer is reused; bounded in size. The same for
# whole parameter sets found valid: (table, types, values) -> True.
_SATISFIED = {}
_SATISFIED_MAX = 4096


def params_satisfy_constraints(est):
    """Whether every parameter satisfies one of its constraints.

    scikit-learn's ``validate_parameter_constraints`` decides with the same
    constraint objects' ``is_satisfied_by``; this skips its per-call
    ``get_params`` (which inspects ``__init__``'s signature) and its making
    of the constraint objects, and reuses the answer for hashable values
    seen before: first for the whole set of values, then value by value.
    False means that validation must run to raise.
    """
    cls = type(est)
    table, get_values = _constraints(cls, id(cls._parameter_constraints))
    values = get_values(est)
    try:
        key = (id(table), tuple(map(type, values)), values)
        if key in _SATISFIED:
            return True
    except TypeError:  # unhashable: a list, an array, a dict
        key = None
    for (name, constraints), value in zip(table, values):
        if not _satisfies(table, name, constraints, value):
            return False
    if key is not None and len(_SATISFIED) < _SATISFIED_MAX:
        _SATISFIED[key] = True
    return True


def _satisfies(table, name, constraints, value):
    """Whether ``value`` satisfies one of ``constraints`` (answers reused)."""
    try:
        key = (id(table), name, type(value), value)
        satisfied = _SATISFIED.get(key)
    except TypeError:
        key = satisfied = None
    if satisfied is None:
        satisfied = any(c.is_satisfied_by(value) for c in constraints)
        if key is not None and len(_SATISFIED) < _SATISFIED_MAX:
            _SATISFIED[key] = satisfied
    return satisfied


def dropout_rates(dropout, n_hidden, solver):
    """One dropout rate per hidden layer, checked.

    Parameters
    ----------
    dropout : float or array-like of float
        The estimator's ``dropout``: one rate for every hidden layer, or one
        per hidden layer.
    n_hidden : int
        Number of hidden layers.
    solver : str
        The estimator's solver; L-BFGS's deterministic objective has no
        dropout.

    Returns
    -------
    rates : tuple of float, of length n_hidden
    """
    if type(dropout) in (float, int) or np.ndim(dropout) == 0:
        rates = (float(dropout),) * n_hidden
    else:
        rates = tuple(float(r) for r in np.asarray(dropout, dtype=float).ravel())
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout has {len(rates)} rates but the network has {n_hidden} "
                "hidden layers; give one rate per hidden layer, or a single float."
            )
    if not all(0.0 <= r < 1.0 for r in rates):
        raise ValueError(f"dropout rates must be in [0, 1), got {dropout!r}.")
    if any(rates) and solver not in STOCHASTIC_SOLVERS:
        raise ValueError(
            f"dropout={dropout!r} needs a stochastic solver ('sgd' or 'adam'): "
            f"solver={solver!r} minimises a deterministic objective. Use "
            "dropout=0.0 with 'lbfgs'."
        )
    return rates


# The loss each output activation pairs with, by scikit-learn's names.
_LOSS_OF_OUTPUT = {
    "identity": "squared_error",
    "exp": "poisson",
    "logistic": "binary_log_loss",
    "softmax": "log_loss",
}


def check_validation_data(est, X_val, y_val, sample_weight_val, dtype):
    """Validate the validation data given to ``fit``, as HistGradientBoosting does.

    Parameters
    ----------
    est : BaseMLP
        The estimator, already fitted to the training data's features.
    X_val : {array-like, sparse matrix} of shape (n_val, n_features) or None
    y_val : array-like of shape (n_val,) or (n_val, n_outputs) or None
    sample_weight_val : array-like of shape (n_val,) or None
    dtype : numpy dtype
        The training data's dtype.

    Returns
    -------
    validation : tuple or None
        ``(X_val, y_val, Y_val, sample_weight_val)``, with ``y_val`` as given
        (class labels) and ``Y_val`` the targets as the network sees them, of
        shape (n_val, n_outputs); None when no validation data is given.
    """
    if X_val is None and y_val is None:
        return None
    if y_val is None:
        raise ValueError("X_val is provided, but y_val was not provided.")
    if X_val is None:
        raise ValueError("y_val is provided, but X_val was not provided.")
    X_val = validate_data(
        est, X_val, accept_sparse=["csr", "csc"], dtype=dtype, reset=False
    )
    y_val, Y_val = est._encode_validation_targets(y_val, dtype)
    check_consistent_length(X_val, y_val)
    if sample_weight_val is not None:
        sample_weight_val = _check_sample_weight(sample_weight_val, X_val, dtype=dtype)
    if not est.early_stopping:
        raise ValueError(
            "X_val and y_val are passed to fit while at the same time "
            "early_stopping is False. When passing X_val and y_val to fit, "
            "early_stopping should be set to True."
        )
    if est.solver not in STOCHASTIC_SOLVERS:
        raise ValueError(
            "X_val and y_val are used for early stopping, which only the "
            f"stochastic solvers 'sgd' and 'adam' do; solver={est.solver!r}."
        )
    return X_val, y_val, Y_val, sample_weight_val


def class_sample_weight(class_weight, target, classes, sample_weight, X):
    """``sample_weight`` multiplied by the weight of each sample's class.

    Parameters
    ----------
    class_weight : dict, list of dict or 'balanced'
        As in scikit-learn's classifiers; a list holds one dict per output of
        a multilabel target.
    target : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Class labels, or the 0/1 indicator matrix of a multilabel target.
    classes : ndarray
        The estimator's classes (labels of a single-output target).
    sample_weight : ndarray of shape (n_samples,) or None
        Validated sample weights.
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Training data, for the dtype and the length check.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)
    """
    if isinstance(class_weight, dict) and target.ndim == 1:
        unknown = sorted(set(class_weight) - set(classes.tolist()), key=str)
        if unknown:
            raise ValueError(
                f"The classes, {unknown}, in class_weight are not classes of y "
                f"({classes.tolist()})."
            )
    weights = compute_sample_weight(class_weight, target)
    weights = _check_sample_weight(weights, X, dtype=X.dtype, ensure_non_negative=True)
    return weights if sample_weight is None else sample_weight * weights


def data_loss(out_activation, Y, output, sample_weight):
    """scikit-learn's MLP data loss (no penalty) of ``output`` against ``Y``.

    Parameters
    ----------
    out_activation : str
        The network's output activation, which fixes the loss.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets as the network sees them (binarized labels for classifiers).
    output : ndarray of shape (n_samples, n_outputs)
        Output-layer activations.
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    loss : float
    """
    loss = LOSS_FUNCTIONS[_LOSS_OF_OUTPUT[out_activation]]
    with np.errstate(all="ignore"):
        return float(loss(Y.astype(output.dtype), output, sample_weight))
