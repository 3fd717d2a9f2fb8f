"""Between the estimators and the kernels: the only module that calls them.

The estimators (:mod:`fastnn._mlp`) hand over validated arrays, names and
numbers; this module turns them into what the kernels take (layouts,
workspaces, integer codes, packed hyper-parameters, dense or CSR inputs) and
offers three operations:

* :class:`EpochRunner`: one epoch of mini-batch SGD or Adam per call;
* :class:`FullBatchObjective`: the loss and gradient over all samples, for
  L-BFGS;
* :func:`predict`: the network's output for every row;

and two one-pass checks of a fit's data: :func:`all_finite` and
:func:`integer_one_hot`.

It also holds every performance policy and its threshold: how many BLAS
threads a fit or a prediction uses (:func:`blas_limit`), whether plain
momentum is folded into the backward products (:func:`fold_momentum`), and
how many rows a prediction block has.
"""

import contextlib
import functools
import os
import sys
import threading
import time

import numpy as np
import scipy.sparse as sp
import threadpoolctl
from numba.core import event as numba_event
from threadpoolctl import ThreadpoolController

from ._kernels.activations import ACTIVATION_CODES, LIBRARY_TANH, TANH
from ._kernels.codes import static_code, static_value
from ._kernels.data import all_finite as all_finite_kernel
from ._kernels.data import one_hot_labels
from ._kernels.dropout import Dropout
from ._kernels.epoch import (
    loss_and_gradient,
    train_epoch,
    train_epoch_dropout,
)
from ._kernels.epoch import predict as predict_kernel
from ._kernels.layout import (
    Batch,
    Inputs,
    Net,
    Objective,
    Targets,
    glorot_uniform_params,
    layer_views,
    parameter_layout,
    workspace_layout,
)
from ._kernels.losses import OUTPUT_CODES
from ._kernels.optimizers import (
    ADAM,
    BETA_1,
    BETA_2,
    EPSILON,
    LR,
    MOMENTUM,
    N_HYPER,
    NESTEROV,
    SGD,
    Optimizer,
)

__all__ = [
    "ACTIVATION_CODES",
    "EpochRunner",
    "FullBatchObjective",
    "all_finite",
    "blas_limit",
    "fold_momentum",
    "glorot_uniform_params",
    "integer_one_hot",
    "layer_views",
    "new_optimizer_state",
    "parameter_layout",
    "predict",
    "Predictor",
]

# Below this many weights in the largest layer, one BLAS thread beats more for
# training and for predicting one block: thread wake-ups cost more than the
# small products save.
SMALL_LAYER = 64 * 1024
# From this many weights in the largest layer, plain momentum is folded into
# the weight-gradient products: the update of large layers is bound by memory
# traffic, while for small ones OpenBLAS's separate beta pass costs more.
FOLD_LAYER = 64 * 1024
# Rows per prediction block: the block's activations stay in cache.
PREDICT_BLOCK = 1024
# Rows per block of a prediction split among threads (Predictor.plan): small
# enough that the thread that claims the last block keeps the others waiting
# little, large enough for full-speed products.
SPLIT_BLOCK = 256
# A prediction kernel's empty block counter: the call runs every block.
NO_CLAIMS = np.empty(0, dtype=np.int64)
# Up to this many multiply-adds OpenBLAS computes a product on the calling
# thread alone (65536 times its default GEMM_MULTITHREAD_THRESHOLD of 4), so a
# prediction whose products are no larger leaves BLAS's threads alone.
SERIAL_PRODUCT = 4 * 65536
# Predictions of networks whose SERIAL_PRODUCT-sized blocks hold at least
# this many rows run in such blocks without the gate (see Predictor.plan) ...
SERIAL_ROWS = 16
# ... below this many multiply-adds in the largest layer; from there on, in
# PREDICT_BLOCK blocks on BLAS's threads, whose products OpenBLAS computes
# faster than many small ones ...
GATE_WORK = 2 * SERIAL_PRODUCT
# ... and from this many, in parts on threads of their own, one BLAS thread
# each.
SPLIT_WORK = 64 * SERIAL_PRODUCT
# Networks whose SERIAL_PRODUCT-sized blocks hold this many rows run in such
# blocks up to SPLIT_WORK: BLAS's threads gain nothing on their thin products.
THIN_ROWS = 256
# A prediction runs alone (on BLAS's threads, or split) only if no other
# thread's fit or prediction left the gate within this many seconds: about as
# long as OpenBLAS's workers spin after a call before they sleep.
SHARED_SECONDS = 0.1
# Up to this many bytes of X, the rows that epochs gather stay in the core's
# cache (2 MiB of L2 on this project's machine) from one epoch to the next,
# and prefetching the next batch's rows costs more than it hides.
PREFETCH_BYTES = 1 << 20


F32, F64 = np.dtype(np.float32), np.dtype(np.float64)

_COMPILE_NOTICE = {"shown": False}
# Whether this process passes the kernels their lean values (None: not
# decided yet); see :func:`jit_fallback`.
_FALLBACK = {"on": None}


def kernel_cache_path(kernel=train_epoch):
    """Directory where numba caches ``kernel`` (the epoch kernel by default)."""
    return kernel._cache.cache_path


def compiled_core_problem():
    """Why numba's cache lacks the compiled core for this machine, if it does.

    Reads the epoch kernel's cache index: it must exist, come from this numba
    version and this source, and hold the kernel compiled for this CPU with
    run-time activation codes (what ``python -m fastnn --precompile``
    compiles), not only the kernels that first fits compiled for their
    static codes (:func:`jit_fallback`).

    Returns
    -------
    reason : str or None
        None when the cache holds the compiled core for this machine.
    """
    try:
        cache = train_epoch._cache
        index = cache._cache_file._index_path
        where = cache.cache_path
        if not os.path.exists(index):
            return f"no compiled core in {where}"
        overloads = cache._cache_file._load_index()
        if not overloads:
            return (
                f"the compiled core in {where} is from another numba version "
                "or fastnn source"
            )
        magic = train_epoch.targetctx.codegen().magic_tuple()
        here = [key[0] for key in overloads if key[1] == magic]
        if not here:
            return f"the compiled core in {where} is for another CPU"
        if not any(static_value(objective_act_type(args)) is None for args in here):
            return f"no compiled core in {where}"
    except Exception:  # noqa: BLE001 - numba internals moved: assume cached
        return None
    return None


def objective_act_type(arg_types):
    """The numba type of ``objective.act`` in an epoch kernel's signature."""
    objective = arg_types[3]
    return objective.types[objective.fields.index("act")]


class CompileNotice(numba_event.Listener):
    """Says once per process, on stderr, that fastnn's kernels compile, and why.

    Listens to numba's compile events, so it speaks when a kernel starts
    compiling, not when one loads from numba's cache.
    """

    def on_start(self, event):
        """Print the notice at the first compile of a fastnn kernel."""
        if _COMPILE_NOTICE["shown"]:
            return
        function = getattr(event.data.get("dispatcher"), "py_func", None)
        if not getattr(function, "__module__", "").startswith("fastnn."):
            return
        _COMPILE_NOTICE["shown"] = True
        reason = compiled_core_problem() or (
            f"{function.__name__} for these inputs is not in the compiled core"
        )
        print(
            f"fastnn: compiling kernels for this machine ({reason}); run "
            "`python -m fastnn --precompile` once to cache them",
            file=sys.stderr,
        )

    def on_end(self, event):
        """Nothing to do when a compile ends."""


numba_event.register("numba:compile", CompileNotice())


def quiet_compile():
    """Compile the compiled core, without the notice of :class:`CompileNotice`.

    Precompiling: the kernels get their run-time codes and general values,
    not the static codes and lean values of :func:`jit_fallback`.
    """
    _COMPILE_NOTICE["shown"] = True
    _FALLBACK["on"] = False


def jit_fallback():
    """Whether the kernels get static codes and lean values (no compiled core).

    The compiled core (``python -m fastnn --precompile``) holds the kernels
    compiled for run-time activation codes and general values: dense X with
    empty CSR arrays, SGD with Adam's step counter, so that one
    specialisation serves every activation, dense and CSR inputs, SGD and
    Adam. Without it, fits compile their kernels, and the engine then passes
    the activation as a static code (:mod:`fastnn._kernels.codes`) and
    ``()`` in place of a dense X's CSR arrays and of an SGD optimizer's step
    counter: numba compiles the kernels for that activation alone, without
    the CSR products and without Adam's update (to the same bits), which
    makes a first fit about 2 s shorter. Decided once per process, from
    numba's cache.

    Returns
    -------
    fallback : bool
    """
    if _FALLBACK["on"] is None:
        _FALLBACK["on"] = compiled_core_problem() is not None
    return _FALLBACK["on"]


def largest_layer(layer_units):
    """Number of weights in the largest layer."""
    return max(int(a) * int(b) for a, b in zip(layer_units[:-1], layer_units[1:]))


def blas_threads(layer_units):
    """BLAS thread limit for one fit or prediction of a network.

    Parameters
    ----------
    layer_units : sequence of int
        Units per layer, input and output included.

    Returns
    -------
    limit : 1 or None
        1 for a network whose largest layer has fewer than
        :data:`SMALL_LAYER` weights: its fits, and its predictions, which
        split their rows among threads of their own when large
        (:meth:`Predictor.plan`); None (BLAS's own threads) otherwise.
    """
    return None if largest_layer(layer_units) >= SMALL_LAYER else 1


def serial_products(layer_units, n_rows):
    """Whether predicting ``n_rows`` rows runs only single-threaded products.

    BLAS computes products this small on the calling thread anyway (see
    :data:`SERIAL_PRODUCT`), so such a prediction neither wakes a worker nor
    needs the gate.
    """
    block = min(n_rows, PREDICT_BLOCK)
    return block * largest_layer(layer_units) <= SERIAL_PRODUCT


def fold_momentum(layer_units, solver, nesterov):
    """Whether epochs fold the momentum step into the backward products.

    Parameters
    ----------
    layer_units : sequence of int
        Units per layer, input and output included.
    solver : str
        'sgd' or 'adam'.
    nesterov : bool
        Whether SGD uses Nesterov's momentum (which cannot be folded).

    Returns
    -------
    fold : bool
    """
    return solver == "sgd" and not nesterov and largest_layer(layer_units) >= FOLD_LAYER


@functools.cache
def threadpool_controller():
    """One threadpoolctl controller for the whole process.

    Building one scans the loaded libraries. The BLAS that the kernels call
    (scipy's) is already loaded when fastnn is imported.
    """
    return ThreadpoolController()


@contextlib.contextmanager
def blas_control():
    """Let this thread's threadpoolctl calls reach OpenBLAS, then let go.

    threadpoolctl lets only one Python thread at a time set the thread count
    of an OpenBLAS with a process-wide thread pool (the first to set it, for
    as long as it lives) and silently ignores the others. The gate changes
    the count from whichever fit's thread starts or ends an overlap, under its
    own lock, so it takes control for that one change and then gives it up.
    """
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    try:
        yield
    finally:
        if clear is not None:
            clear()


class BlasGate:
    """How many BLAS threads the fits and predictions in this process may use.

    BLAS's thread count is one setting for the whole process, so the gate
    counts the fits and predictions in progress (in any thread). It holds BLAS
    at one thread while one of them runs small products (see
    :func:`blas_threads`) and from the moment two overlap until none is left;
    the setting found before is then restored. A single fit or prediction
    therefore keeps the per-network policy, concurrent threads (joblib's
    threading backend) do not oversubscribe the cores, and nothing sees its
    thread count change while BLAS may be busy in another thread.

    Small products must not wake BLAS's workers at all while other threads
    train: an OpenBLAS worker that ran a product spins on its core for a while
    afterwards (OpenBLAS's thread timeout), taking that core from them.
    """

    def __init__(self, controller=None):
        self._controller = controller or threadpool_controller
        self._lock = threading.Lock()
        self._n_running = 0
        # [(BLAS library controller, its thread count)] while held at one
        # thread, to restore when the last call leaves.
        self._original = None
        self._libraries = None  # the BLAS library controllers, found once
        self._direct = True  # whether their functions are called directly
        self._local = threading.local()
        # (thread identifier, time.monotonic()) of the last call to leave.
        self._last_left = (None, -float("inf"))

    def run(self, layer_units, n_rows=None):
        """Context of one fit (``n_rows`` None) or prediction of ``n_rows``.

        A call inside another in the same thread (a fit's validation
        predictions) runs under the outer call's setting, and a prediction
        of products too small for BLAS to thread is not counted at all.
        """
        if n_rows is not None and serial_products(layer_units, n_rows):
            return contextlib.nullcontext()
        return GatedCall(self, blas_threads(layer_units) == 1)

    def enter(self, small):
        """Count one call of this thread; :meth:`leave` must follow if counted.

        Parameters
        ----------
        small : bool
            Whether the call's products are small: BLAS is held at one thread
            even when it runs alone.

        Returns
        -------
        counted : bool
            False for a call inside another of the same thread, which runs
            under the outer call's setting and is not counted.
        """
        local = self._local
        if getattr(local, "running", False):
            return False
        local.running = True
        with self._lock:
            self._n_running += 1
            if self._n_running > 1 or small:
                # Every call that needs one thread sets it (a cheap call), so
                # the limit holds even if the count changed since the overlap
                # began.
                self._hold_one_thread()
        return True

    def busy(self):
        """Whether a fit or a gated prediction runs now (read without the lock)."""
        return self._n_running > 0

    def leave(self):
        """The end of a call that :meth:`enter` counted."""
        with self._lock:
            self._n_running -= 1
            if self._n_running == 0 and self._original is not None:
                self._set_threads(self._original)
                self._original = None
        self._local.running = False
        self._last_left = (threading.get_ident(), time.monotonic())

    def alone(self):
        """Whether no call runs now and none of another thread ran lately.

        Lately is :data:`SHARED_SECONDS`: threads that take turns (a threaded
        search, between its fits and its scoring) would otherwise find BLAS's
        workers still spinning on the cores they need.
        """
        if self._n_running:
            return False
        thread, left = self._last_left
        return (
            thread == threading.get_ident() or time.monotonic() - left > SHARED_SECONDS
        )

    def _hold_one_thread(self):
        """Set every BLAS library to one thread, first noting their counts.

        The libraries' own functions are called (see :func:`thread_count_calls`):
        a threadpoolctl limiter would query every library's full description
        at each call.
        """
        if self._libraries is None:
            controllers = self._controller().select(user_api="blas").lib_controllers
            self._libraries = thread_count_calls(controllers)
            self._direct = all(
                getattr(get, "__self__", None) is None for get, _ in self._libraries
            )
        if self._original is None:
            self._original = [(calls, calls[0]()) for calls in self._libraries]
        self._set_threads([(calls, 1) for calls in self._libraries])

    def _set_threads(self, counts):
        """Set each library's thread count: ``[((get, set), n_threads), ...]``.

        Through :func:`blas_control` unless every library is called directly.
        """
        if self._direct:
            for (_, set_threads), n_threads in counts:
                set_threads(n_threads)
            return
        with blas_control():
            for (_, set_threads), n_threads in counts:
                set_threads(n_threads)


class GatedCall:
    """One call counted by a :class:`BlasGate`, as a context manager.

    Entering calls :meth:`BlasGate.enter` with ``small``; leaving calls
    :meth:`BlasGate.leave` if the entry was counted.
    """

    __slots__ = ("gate", "small", "counted")

    def __init__(self, gate, small):
        self.gate, self.small, self.counted = gate, small, False

    def __enter__(self):
        self.counted = self.gate.enter(self.small)

    def __exit__(self, *exc):
        if self.counted:
            self.gate.leave()


def thread_count_calls(controllers):
    """``(get_num_threads, set_num_threads)`` of each BLAS library.

    For an OpenBLAS with its own (pthreads) thread pool, its C functions
    themselves, found by threadpoolctl: the count is one process-wide
    setting, and threadpoolctl's wrappers add only bookkeeping. Otherwise
    (OpenMP builds, other BLAS) threadpoolctl's methods.
    """
    calls = []
    for lib in controllers:
        found = None
        if getattr(lib, "threading_layer", None) == "pthreads":
            try:
                found = (
                    lib._get_symbol("openblas_get_num_threads"),
                    lib._get_symbol("openblas_set_num_threads"),
                )
            except AttributeError:  # threadpoolctl's internals moved
                found = None
        if found is None or None in found:
            found = (lib.get_num_threads, lib.set_num_threads)
        calls.append(found)
    return calls


BLAS_GATE = BlasGate()


def blas_limit(layer_units, n_rows=None):
    """BLAS threads for one fit or prediction, as :class:`BlasGate` decides."""
    return BLAS_GATE.run(layer_units, n_rows)


def read_only(*arrays):
    """Read-only views of ``arrays`` (no copies; the arrays stay as they are).

    The kernels never write their inputs, and numba compiles one
    specialisation for writable arrays and another for read-only ones: the
    engine hands every input over read-only, so that one compiled kernel per
    dtype serves writable, read-only and memory-mapped data alike.
    """
    views = []
    for array in arrays:
        view = array.view(np.ndarray)
        view.flags.writeable = False
        views.append(view)
    return tuple(views)


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Integer labels from this value up (at least) are encoded by scikit-learn:
# the label encoding takes one slot per value up to the largest label.
LABEL_SLOTS = 1024


def all_finite(values):
    """``np.isfinite(values).all()`` in one compiled pass where it can.

    Parameters
    ----------
    values : ndarray
        Any shape; a contiguous float32 or float64 array (C or Fortran
        order) takes the kernel, anything else (and the JIT fallback)
        NumPy.

    Returns
    -------
    finite : bool
    """
    contiguous = values.flags.c_contiguous or values.flags.f_contiguous
    if jit_fallback() or not contiguous or values.dtype not in FLOAT_DTYPES:
        return bool(np.isfinite(values).all())
    return all_finite_kernel(*read_only(values.ravel(order="K")))


def integer_one_hot(y):
    """Classes and one-hot targets of small non-negative integer labels.

    What ``LabelBinarizer().fit(y)`` finds (``classes_``, in y's dtype) and
    ``transform(y)`` returns (as bool), for 1-D integer labels of at least
    two classes, all in ``[0, max(LABEL_SLOTS, 4 * n_samples))``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), integer dtype, n_samples >= 1

    Returns
    -------
    classes : ndarray of shape (n_classes,), y's dtype
    Y : ndarray of shape (n_samples, n_classes) (one column for two classes)
        bool.

    Or None for other labels. Without the compiled core, NumPy encodes them
    (:func:`one_hot_labels_numpy`): the kernel's lazy compilation would cost
    more than it saves.
    """
    (labels,) = read_only(np.ascontiguousarray(y, dtype=np.int64))
    encode = one_hot_labels_numpy if jit_fallback() else one_hot_labels
    classes, Y = encode(labels, max(LABEL_SLOTS, 4 * y.shape[0]))
    if classes.shape[0] < 2:
        return None
    return classes.astype(y.dtype, copy=False), Y


def one_hot_labels_numpy(y, limit):
    """:func:`fastnn._kernels.data.one_hot_labels` in a few NumPy passes.

    The labels are counted (``np.bincount``), and each row is the identity's
    row at its label's rank among them.
    """
    low, high = y.min(), y.max()
    if low < 0 or high >= limit:
        return np.empty(0, np.int64), np.empty((y.shape[0], 0), bool)
    present = np.bincount(y, minlength=int(high) + 1) > 0
    classes = np.flatnonzero(present)
    rank = (np.cumsum(present) - 1).take(y)
    if classes.shape[0] == 2:
        return classes, (rank == 1).reshape(-1, 1)
    return classes, np.eye(classes.shape[0], dtype=bool).take(rank, axis=0)


def kernel_inputs(X, dtype, lean=False):
    """X as the kernels take it, dense or CSR, without densifying it.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Validated input.
    dtype : numpy dtype
        The model's float dtype.
    lean : bool, default=False
        Whether a dense X gets ``()`` in place of empty CSR arrays (see
        :func:`jit_fallback`).

    Returns
    -------
    inputs : Inputs
        Read-only views: C-contiguous X (no copy if it already is) with empty
        CSR arrays (or ``()``), or an empty dense array with X's CSR arrays;
        ``prefetch`` when X takes more than :data:`PREFETCH_BYTES`.
    """
    if type(X) is not np.ndarray and sp.issparse(X):
        X = X.tocsr()
        csr = read_only(
            np.ascontiguousarray(X.data, dtype=dtype),
            X.indices.astype(np.int64),
            X.indptr.astype(np.int64),
        )
        (dense,) = read_only(np.empty((0, X.shape[1]), dtype=dtype))
        return Inputs(dense, csr, True, sum(a.nbytes for a in csr) > PREFETCH_BYTES)
    (dense,) = read_only(np.ascontiguousarray(X, dtype=dtype))
    prefetch = dense.nbytes > PREFETCH_BYTES
    if lean:
        return Inputs(dense, (), False, prefetch)
    return Inputs(dense, empty_csr(np.dtype(dtype)), False, prefetch)


@functools.cache
def empty_csr(dtype):
    """Empty read-only CSR arrays: a dense X's placeholders in :class:`Inputs`."""
    return read_only(np.empty(0, dtype), np.empty(0, np.int64), np.empty(0, np.int64))


def kernel_targets(Y, sample_weight, dtype):
    """Targets and sample weights as the kernels take them (read-only views)."""
    if sample_weight is None:
        return Targets(*read_only(Y), no_weights(np.dtype(dtype)), False)
    return Targets(*read_only(Y, sample_weight), True)


@functools.cache
def no_weights(dtype):
    """An empty read-only weight array: unweighted samples in :class:`Targets`."""
    return read_only(np.empty(0, dtype))[0]


def kernel_objective(activation, out_activation, dtype, alpha, line_search=False):
    """Integer codes, machine epsilon and L2 penalty of the objective.

    For an optimiser with a line search (L-BFGS), ``tanh`` is the C
    library's: its values are numpy's but for rare last-bit differences, and
    the line search tells even those apart, so L-BFGS then takes
    scikit-learn's steps. Epochs and prediction use the vectorised ``tanh``.
    Without the compiled core the activation travels as a static code
    (:func:`activation_code`).
    """
    act = ACTIVATION_CODES[activation]
    if line_search and act == TANH:
        act = LIBRARY_TANH
    return Objective(
        activation_code(act),
        OUTPUT_CODES[out_activation],
        machine_epsilon(dtype),
        float(alpha),
    )


@functools.cache
def machine_epsilon(dtype):
    """``np.finfo(dtype).eps`` as a Python float."""
    return float(np.finfo(dtype).eps)


def activation_code(code):
    """``code`` as the kernels take it: static on the JIT fallback.

    See :func:`jit_fallback` and :mod:`fastnn._kernels.codes`: a static code
    compiles the kernels for that one activation.
    """
    return static_code(code) if jit_fallback() else code


def kernel_net(params, grads, layer_units, n_rows, backward=True):
    """A :class:`Net` over ``params`` with a fresh workspace for ``n_rows``."""
    units, offsets, ws_offsets, ws_size = layouts(
        tuple(map(int, layer_units)), n_rows, backward
    )
    ws = np.empty(ws_size, params.dtype)
    return Net(params, grads, offsets, units, ws, ws_offsets)


@functools.lru_cache(maxsize=64)
def layouts(layer_units, n_rows, backward=True):
    """Units, parameter layout and workspace layout, built once per shape.

    Returns arrays shared by every caller, which only read them (writable
    arrays, as the predictor's: numba compiles every kernel that takes them
    once per writability), and the workspace size.
    """
    units = np.asarray(layer_units, dtype=np.int64)
    offsets, _ = parameter_layout(units)
    ws_offsets, ws_size = workspace_layout(units, n_rows, backward)
    return units, offsets, ws_offsets, ws_size


def pack_hyper(learning_rate, model):
    """The optimizer's hyper-parameters at the kernels' positions.

    Parameters
    ----------
    learning_rate : float
        The current learning rate.
    model : dict
        ``momentum``, ``nesterovs_momentum``, ``beta_1``, ``beta_2`` and
        ``epsilon``.

    Returns
    -------
    hyper : ndarray of shape (N_HYPER,), float64
    """
    hyper = np.empty(N_HYPER, dtype=np.float64)
    hyper[LR] = learning_rate
    hyper[MOMENTUM] = model["momentum"]
    hyper[NESTEROV] = float(model["nesterovs_momentum"])
    hyper[BETA_1] = model["beta_1"]
    hyper[BETA_2] = model["beta_2"]
    hyper[EPSILON] = model["epsilon"]
    return hyper


def kernel_dropout(rates, state, layer_units, n_rows, dtype):
    """Dropout rates, mask buffer for ``n_rows`` rows and generator state.

    Returns None when every rate is 0, so that no mask is drawn.
    """
    if not any(rates):
        return None
    hidden = list(layer_units)[1:-1]
    offsets = np.cumsum([0] + [n_rows * u for u in hidden[:-1]]).astype(np.int64)
    masks = np.empty(n_rows * sum(hidden), dtype)
    return Dropout(np.asarray(rates, dtype=np.float64), masks, offsets, state)


def new_optimizer_state(params):
    """Zeroed optimizer state (velocities or moments) and Adam's step count."""
    return np.zeros((2, params.shape[0]), params.dtype), np.zeros(1, np.int64)


class EpochRunner:
    """Mini-batch epochs of one fit, one kernel call per epoch.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Training inputs, float32 or float64.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets, C-contiguous, in X's dtype.
    sample_weight : ndarray of shape (n_samples,) or None
        Sample weights.
    params : ndarray of shape (n_params,)
        The flat parameter buffer, updated in place by every epoch.
    layer_units : sequence of int
        Units per layer.
    model : dict
        ``activation``, ``out_activation`` (names), ``alpha``, ``solver``
        ('sgd' or 'adam'), ``momentum``, ``nesterovs_momentum``, ``beta_1``,
        ``beta_2``, ``epsilon`` and ``batch_size``; optionally
        ``dropout_rates`` (one per hidden layer) and ``dropout_state`` (the
        mask generator's state, advanced by every epoch).
    """

    def __init__(self, X, Y, sample_weight, params, layer_units, model):
        dtype = params.dtype
        layer_units = tuple(map(int, layer_units))
        self.lean = jit_fallback()
        self.inputs = kernel_inputs(X, dtype, self.lean)
        self.targets = kernel_targets(Y, sample_weight, dtype)
        self.objective = kernel_objective(
            model["activation"], model["out_activation"], dtype, model["alpha"]
        )
        self.batch_size = model["batch_size"]
        self.dropout = kernel_dropout(
            model.get("dropout_rates", ()), model.get("dropout_state"),
            layer_units, self.batch_size, dtype,
        )  # fmt: skip
        self.fold = self.dropout is None and fold_momentum(
            layer_units, model["solver"], model["nesterovs_momentum"]
        )
        self.solver = SGD if model["solver"] == "sgd" else ADAM
        self.model = model
        self.net = kernel_net(
            params, np.empty_like(params), layer_units, self.batch_size
        )
        n_rows = 0 if self.inputs.sparse else self.batch_size
        self.Xbuf = np.empty((n_rows, X.shape[1]), dtype)

    def run_epoch(self, order, state, step, learning_rate):
        """Train one epoch over the samples in ``order``.

        Parameters
        ----------
        order : ndarray of shape (n_train,), int64
            Sample indices in this epoch's order.
        state : ndarray of shape (2, n_params)
            Optimizer state, updated.
        step : ndarray of shape (1,), int64
            Adam's step count, updated.
        learning_rate : float
            The current learning rate.

        Returns
        -------
        loss : float
            scikit-learn's epoch loss.
        """
        hyper = pack_hyper(learning_rate, self.model)
        counter = () if self.lean and self.solver == SGD else step
        optimizer = Optimizer(self.solver, hyper, state, counter)
        if self.dropout is not None:
            return train_epoch_dropout(
                self.net, self.inputs, self.targets, self.objective, optimizer,
                order, self.batch_size, self.Xbuf, self.dropout,
            )  # fmt: skip
        # Folded momentum accumulates the products straight into the velocity.
        net = self.net._replace(grads=state[0]) if self.fold else self.net
        return train_epoch(
            net, self.inputs, self.targets, self.objective, optimizer, order,
            self.batch_size, self.Xbuf, self.fold,
        )  # fmt: skip


class FullBatchObjective:
    """scikit-learn's loss and gradient over all samples, for L-BFGS.

    Parameters
    ----------
    X, Y, sample_weight, params, layer_units
        As in :class:`EpochRunner`; ``params`` is read at every evaluation.
    model : dict
        ``activation``, ``out_activation`` (names) and ``alpha``.
    """

    def __init__(self, X, Y, sample_weight, params, layer_units, model):
        dtype = params.dtype
        inputs = kernel_inputs(X, dtype, jit_fallback())
        rows = np.arange(X.shape[0], dtype=np.int64)
        self.batch = Batch(inputs.X, inputs.csr, inputs.sparse, rows)
        self.targets = kernel_targets(Y, sample_weight, dtype)
        self.objective = kernel_objective(
            model["activation"], model["out_activation"], dtype, model["alpha"],
            line_search=True,
        )  # fmt: skip
        grads = np.empty_like(params)
        self.net = kernel_net(params, grads, layer_units, X.shape[0])

    def loss_and_gradient(self):
        """Loss and gradient at the current ``params``.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,), float64
            A copy of the gradient.
        """
        loss = loss_and_gradient(self.net, self.batch, self.targets, self.objective)
        return loss, self.net.grads.astype(np.float64)


class Predictor:
    """A fitted network's prediction, built once and called per X.

    Holds what every call needs but X: the parameter layout, the codes, the
    block sizes, and one workspace per thread, dtype and block size (so that
    threads can share one model). It reads ``params`` at every call, so
    in-place updates of the buffer show; a new buffer, new codes or new
    shapes need a new predictor.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The flat parameters, float32 or float64.
    layer_units : sequence of int
        Units per layer.
    activation, out_activation : str
        Hidden and output activation names.
    """

    def __init__(self, params, layer_units, activation, out_activation):
        self.params = params  # read at every call: fits update it in place
        self.units = np.asarray(layer_units, dtype=np.int64)
        self.offsets, _ = parameter_layout(self.units)
        self.act = activation_code(ACTIVATION_CODES[activation])
        self.out = OUTPUT_CODES[out_activation]
        self.n_outputs = int(self.units[-1])
        self.largest = largest_layer(self.units)
        self.serial_block = max(1, SERIAL_PRODUCT // self.largest)
        self.empty_csr = {
            dtype: read_only(
                np.empty(0, dtype), np.empty(0, np.int64), np.empty(0, np.int64)
            )
            for dtype in (np.dtype(np.float32), np.dtype(np.float64))
        }
        self.no_labels = np.empty((0, 1), dtype=np.int64)
        self._local = threading.local()

    def __call__(self, X, n_labels=0):
        """Output activations, or labels, for every row of X.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            Validated input: numbers of the network's width, at least one row.
        n_labels : int, default=0
            0 for the output activations; otherwise the labels' width, 1 for
            a softmax output's class index, or ``n_outputs`` for a logistic
            output's 0/1 per output (see :func:`output_labels`).

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs) or (n_samples, n_labels)
            Output activations in the dtype of ``np.result_type(X, params)``
            (float64 unless both are float32), or int64 labels.
        non_finite : bool
            Whether the first layer's weighted sums hold a NaN or an
            infinity, which they do whenever X does.
        """
        params = self.params
        dtype = F32 if X.dtype == F32 and params.dtype == F32 else F64
        if params.dtype != dtype:
            params = params.astype(dtype)
        sparse = type(X) is not np.ndarray and sp.issparse(X)
        if sparse:
            dense, csr, _, _ = kernel_inputs(X, dtype)
        else:
            if X.dtype != dtype or not X.flags.c_contiguous:
                X = np.ascontiguousarray(X, dtype=dtype)
            (dense,), csr = read_only(X), self.empty_csr[dtype]
        n = X.shape[0]
        if n_labels:
            result = np.empty((0, self.n_outputs), dtype)
            labels = np.empty((n, n_labels), dtype=np.int64)
        else:
            result, labels = np.empty((n, self.n_outputs), dtype), self.no_labels
        with PREDICTIONS:
            block, hold, parts = self.plan(n, sparse)
            # The gate counts the prediction once, in this thread, whatever
            # the number of parts.
            counted = hold is not None and BLAS_GATE.enter(hold)
            try:
                if parts == 1:
                    non_finite = self.predict_rows(
                        params, dense, csr, result, labels, block, NO_CLAIMS
                    )
                else:
                    claims = np.zeros(1, np.int64)  # the next block to claim
                    non_finite = run_on_threads(
                        functools.partial(self.predict_rows, params, dense, csr,
                                          result, labels, block, claims), parts
                    )  # fmt: skip
            finally:
                if counted:
                    BLAS_GATE.leave()
        return (labels if n_labels else result), non_finite

    def predict_rows(self, params, X, csr, result, labels, block, claims):
        """One kernel call over the rows of ``X`` (or of a CSR X).

        Over all of them for empty ``claims``; otherwise over the blocks this
        thread claims (see :func:`run_on_threads`).
        """
        ws, ws_offsets = self.workspace(params.dtype, block)
        return predict_kernel(
            params, self.offsets, self.units, ws, ws_offsets, X, *csr,
            self.act, self.out, block, result, labels, claims,
        )  # fmt: skip

    def plan(self, n_rows, sparse=False):
        """Rows per block, the BLAS gate's part, and the number of parts.

        The gate's part is None for a call that leaves the gate alone, True
        for one that holds BLAS at one thread, and False for one that the gate
        counts but that keeps BLAS's own threads while it runs alone.

        * Up to :data:`SERIAL_PRODUCT` multiply-adds in the largest layer's
          product, the rows run in one block on the calling thread.
        * Networks whose blocks of that size still hold :data:`SERIAL_ROWS`
          rows (small layers) run in such blocks, so that OpenBLAS never
          wakes a thread, without the gate, below :data:`GATE_WORK`
          multiply-adds in the largest layer, and always when the blocks hold
          :data:`THIN_ROWS` rows (thin layers, whose products gain nothing
          from BLAS's threads). From :data:`GATE_WORK` on, the others run in
          :data:`PREDICT_BLOCK` blocks on BLAS's threads when alone (no fit or
          other prediction runs, nor ran lately in another thread: see
          :meth:`BlasGate.alone`), and on one BLAS thread otherwise or for a
          sparse X.
        * From :data:`SPLIT_WORK`, a dense X that is alone runs in
          :data:`SPLIT_BLOCK` blocks that :func:`run_on_threads`'s threads
          claim in turn, BLAS held at one thread: their blocks share no work
          as BLAS's threads do.
        * Larger layers run in :data:`PREDICT_BLOCK` blocks on BLAS's own
          threads, and on one while a fit or another prediction runs.
        """
        if n_rows <= self.serial_block:
            return n_rows, None, 1
        if self.serial_block < SERIAL_ROWS:
            return PREDICT_BLOCK, BLAS_GATE.busy(), 1
        work = n_rows * self.largest
        alone = PREDICTIONS.count == 1 and BLAS_GATE.alone()
        if work >= SPLIT_WORK and alone and not sparse:
            return SPLIT_BLOCK, True, split_threads() + 1
        if work < GATE_WORK or self.serial_block >= THIN_ROWS:
            return self.serial_block, None, 1
        return PREDICT_BLOCK, sparse or not alone, 1

    def workspace(self, dtype, block):
        """The calling thread's forward workspace for ``block`` rows, and its layout."""
        cache = self._local.__dict__
        key = (dtype.char, block)
        found = cache.get(key)
        if found is None:
            ws_offsets, size = workspace_layout(self.units, block, backward=False)
            found = cache[key] = (np.empty(size, dtype), ws_offsets)
        return found


# The objectives of Dask fits' blocks on this worker, kept between the
# evaluations of one fit: (fit key, block index) -> (objective, params buffer).
_BLOCK_OBJECTIVES = {}


def block_loss_and_gradient(fit_key, index, params, layer_units, model, X, Y, sw=None):
    """One block's share of a Dask L-BFGS fit's objective, on its worker.

    The block's :class:`FullBatchObjective` (with its workspace) is built at
    the first evaluation and kept for the next ones; ``model["alpha"]`` is 0,
    the client adds the L2 term once for all blocks.

    Parameters
    ----------
    fit_key : str
        Names the fit, so that :func:`forget_block_objectives` can drop it.
    index : int
        The block's row index.
    params : ndarray of shape (n_params,)
        The current parameters (the client's copy, broadcast).
    layer_units : tuple of int
    model : dict
        ``activation``, ``out_activation`` and ``alpha``.
    X, Y : ndarray
        The block's inputs and encoded targets.
    sw : ndarray or None
        The block's sample weights.

    Returns
    -------
    loss_sum : float
        The block's data loss times its weight sum.
    grad_sum : ndarray of shape (n_params,), float64
        The block's gradient times its weight sum.
    weight_sum : float
        Its number of rows, or its sample weights' sum.
    """
    found = _BLOCK_OBJECTIVES.get((fit_key, index))
    if found is None or found[1].shape != params.shape:
        buffer = np.empty_like(params)
        objective = FullBatchObjective(X, Y, sw, buffer, layer_units, model)
        found = _BLOCK_OBJECTIVES[(fit_key, index)] = (objective, buffer)
    objective, buffer = found
    buffer[:] = params
    with blas_limit(layer_units):
        loss, grad = objective.loss_and_gradient()
    weight = float(X.shape[0]) if sw is None else float(np.sum(sw, dtype=np.float64))
    return loss * weight, grad * weight, weight


def forget_block_objectives(fit_key):
    """Drop this worker's block objectives of one Dask fit."""
    for key in [k for k in _BLOCK_OBJECTIVES if k[0] == fit_key]:
        del _BLOCK_OBJECTIVES[key]


class RunningCount:
    """How many calls run now, in any thread: ``with count:`` counts one."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self):
        with self._lock:
            self.count += 1

    def __exit__(self, *exc):
        with self._lock:
            self.count -= 1


PREDICTIONS = RunningCount()


@functools.cache
def _helpers():
    """The process's prediction helper threads, as a thread pool."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(split_threads(), thread_name_prefix="fastnn-predict")


def split_threads():
    """Helper threads a prediction may split into: one per other usable CPU."""
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cpus = os.cpu_count() or 1
    return max(n_cpus - 1, 0)


def run_on_threads(run, parts):
    """``run()`` on this thread and ``parts - 1`` helpers at once.

    ``run`` is a prediction kernel's call with a shared block counter: each
    thread claims blocks of rows until none is left, so that a thread that
    starts late or runs slower takes fewer, with no Python between blocks.
    The kernel releases the GIL, so the calls run at once; each thread uses
    its own workspace. Returns whether any call saw a non-finite value.
    """
    pending = [_helpers().submit(run) for _ in range(parts - 1)]
    non_finite = run()
    for future in pending:
        non_finite = future.result() or non_finite
    return non_finite


def predict(X, params, layer_units, activation, out_activation):
    """Output-layer activations of the network for every row of X.

    A one-off :class:`Predictor`; see there.
    """
    return Predictor(params, layer_units, activation, out_activation)(X)[0]
