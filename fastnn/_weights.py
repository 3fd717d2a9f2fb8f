"""The estimators' weights as one flat buffer, with list views on it.

``coefs_`` and ``intercepts_`` are views into ``_params``, the flat buffer in
the kernels' layout, so the kernels update the fitted attributes in place.
A user who assigns new ``coefs_`` or ``intercepts_`` gets them copied into a
new buffer at the next fit or prediction. Pickles hold the flat buffer and the
units per layer, and rebuild the views on loading.
"""

import copy
import threading

import numpy as np

from ._engine import glorot_uniform_params, layer_views, parameter_layout
from ._validation import check_random_state, generator_state, random_state_at

# Initial weights kept per (int seed, network): at most this many networks,
# each of at most this many bytes (7.5k float32 weights for digits' (100,)).
SEEDED_NETWORKS = 8
SEEDED_BYTES = 1 << 21
# What _SEEDED holds for a network seen once: its weights are kept when it
# comes again.
_SEEN = "seen"
_SEEDED = {}
_SEEDED_LOCK = threading.Lock()


def initial_weights(seed, layer_units, activation, dtype):
    """A fit's random state and the Glorot weights it draws first.

    ``check_random_state(seed)``, then :func:`glorot_uniform_params` from
    it. For an int seed, a small network's second fit also keeps the
    weights and the generator's state after them (a few networks), so that
    the next fits with that seed and network (the folds and candidates of a
    search, refits) copy them instead of drawing them again: the same
    weights, and the same random stream after them, in about a seventh of
    the time (10 µs against 71 µs for digits' (100,) network). A first fit
    keeps nothing but the key: reading the generator's state costs about as
    much as the draws.

    Parameters
    ----------
    seed : None, int or RandomState
        The estimator's ``random_state``.
    layer_units : sequence of int
        Units per layer.
    activation : str
        Hidden activation name.
    dtype : numpy dtype
        float32 or float64.

    Returns
    -------
    random_state : numpy.random.RandomState
        Positioned after the weights' draws.
    params : ndarray of shape (n_params,)
        A new flat buffer of initial weights.
    """
    found = key = None
    if type(seed) is int:
        key = (seed, tuple(map(int, layer_units)), activation, np.dtype(dtype).char)
        found = _SEEDED.get(key)
        if found is not None and found is not _SEEN:
            params, state = found
            return random_state_at(state), params.copy()
    random_state = check_random_state(seed)
    params = glorot_uniform_params(layer_units, activation, random_state, dtype)
    if key is not None and params.nbytes <= SEEDED_BYTES:
        if found is None:
            _remember(key, _SEEN)
        else:
            _remember(key, (params.copy(), generator_state(random_state)))
    return random_state, params


def _remember(key, entry):
    """Keep ``entry``, dropping the oldest networks beyond the limit."""
    with _SEEDED_LOCK:
        _SEEDED[key] = entry
        while len(_SEEDED) > SEEDED_NETWORKS:
            del _SEEDED[next(iter(_SEEDED))]


class FlatWeightsMixin:
    """Flat-buffer storage, pickling and rollback of an MLP's fitted weights."""

    def _layer_units(self):
        """Units per layer, input and output included, as an int64 array."""
        sizes = [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]
        return np.asarray(sizes, dtype=np.int64)

    def _set_weights(self, coefs, intercepts):
        """Copy ``coefs`` and ``intercepts`` into a new flat buffer.

        ``coefs_`` and ``intercepts_`` become views into ``_params``; the dtype
        of ``coefs[0]`` is kept.

        Parameters
        ----------
        coefs : list of ndarray of shape (units[i], units[i + 1])
            Weight matrices.
        intercepts : list of ndarray of shape (units[i + 1],)
            Bias vectors.
        """
        units = [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]
        dtype = np.asarray(coefs[0]).dtype
        dtype = dtype if dtype in (np.float32, np.float64) else np.float64
        _, size = parameter_layout(units)
        params = np.empty(size, dtype=dtype)
        views = layer_views(params, units)
        for dst, src in zip(views[0] + views[1], list(coefs) + list(intercepts)):
            dst[...] = src
        self._bind_params(params, units)

    def _bind_params(self, params, units):
        """Adopt ``params`` as the flat buffer and rebuild the views."""
        self._params = params
        self.coefs_, self.intercepts_ = layer_views(params, units)

    def _sync_params(self):
        """Rebuild the flat buffer if a user replaced ``coefs_``/``intercepts_``."""
        params = getattr(self, "_params", None)
        arrays = list(self.coefs_) + list(self.intercepts_)
        if params is None or not all(
            isinstance(a, np.ndarray)
            and a.dtype == params.dtype
            and np.may_share_memory(a, params)
            for a in arrays
        ):
            self._set_weights(self.coefs_, self.intercepts_)
        return self._params

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        if "_params" in state:
            self._sync_params()
            state["_params"] = self._params
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
            state["_layer_units_"] = self._layer_units()
        return state

    def __setstate__(self, state):
        units = state.pop("_layer_units_", None)
        super().__setstate__(state)
        if units is not None:
            self._bind_params(self._params, list(units))

    def _check_continuation(self, layer_units, dtype):
        """Continue from the current weights; cast them to the data's dtype."""
        params = self._sync_params()
        units = list(self._layer_units())
        if units != list(layer_units):
            raise ValueError(
                f"The network has layer sizes {units} but the data and "
                f"hidden_layer_sizes need {list(layer_units)}; refit with "
                "warm_start=False."
            )
        if params.dtype != dtype:
            self._bind_params(params.astype(dtype), units)

    _SNAPSHOT = (
        "n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
        "validation_loss_curve_", "best_validation_score_", "_no_improvement_count",
        "_optimizer_state", "_optimizer_step", "_learning_rate", "_best_params",
        "_dropout_state",
    )  # fmt: skip

    def _snapshot(self):
        """Copies of the weights, optimizer state and counters before a fit."""
        state = {"_params": self._params.copy()}
        for name in self._SNAPSHOT:
            if hasattr(self, name):
                state[name] = copy.deepcopy(getattr(self, name))
        return state

    def _restore(self, state):
        """Roll back a diverged call to the state saved by :meth:`_snapshot`."""
        self._params[:] = state.pop("_params")
        for name in self._SNAPSHOT:
            if name in state:
                setattr(self, name, state[name])
            elif hasattr(self, name):
                delattr(self, name)
