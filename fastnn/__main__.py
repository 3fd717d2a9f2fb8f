"""Command line demo: ``python -m fastnn``.

Trains a fastnn network on one of scikit-learn's toy datasets, printing the loss
of every epoch, then the test score, and compares fastnn's fit time with
scikit-learn's ``MLPClassifier``/``MLPRegressor`` trained with the same
settings. Run ``python -m fastnn --help`` for the options.
"""

import argparse
import sys
import time
import warnings
from typing import NamedTuple

import sklearn.neural_network as sk_nn
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from . import MLPClassifier, MLPRegressor, __version__
from ._engine import ACTIVATION_CODES
from .interop import SKLEARN_ACTIVATIONS

CLASSIFICATION_DATASETS = ("digits", "iris", "wine", "breast_cancer")
REGRESSION_DATASETS = ("diabetes",)
FASTNN_ONLY_ACTIVATIONS = tuple(
    name for name in ACTIVATION_CODES if name not in SKLEARN_ACTIVATIONS
)
SOLVERS = ("adam", "sgd", "lbfgs")


class _Split(NamedTuple):
    """Standardised train/test split of a toy dataset."""

    X_train: object
    X_test: object
    y_train: object
    y_test: object


class _OneLineErrorParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are a single line on stderr, exit status 2."""

    def error(self, message):
        """Print ``prog: error: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text):
    """Parse a strictly positive integer option value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _hidden_sizes(text):
    """Parse ``--hidden``: comma-separated positive layer widths, e.g. ``128,64``."""
    parts = [part.strip() for part in text.split(",")]
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 128,64, "
            f"got {text!r}"
        )
    return sizes


def _batch_size(text):
    """Parse ``--batch-size``: ``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive integer, got {text!r}"
        ) from None


def _dropout_rate(text):
    """Parse ``--dropout``: a rate in [0, 1)."""
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a dropout rate in [0, 1), got {text!r}"
        )
    return rate


def _class_weight(text):
    """Parse ``--class-weight``: ``balanced`` or ``none``."""
    if text not in ("balanced", "none"):
        raise argparse.ArgumentTypeError(f"expected 'balanced' or 'none', got {text!r}")
    return None if text == "none" else text


def build_parser():
    """Build the command line parser of ``python -m fastnn``.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; its errors print one line and exit with status 2.
    """
    parser = _OneLineErrorParser(
        prog="python -m fastnn",
        description=(
            "Train a fastnn network on a scikit-learn toy dataset, print the loss "
            "of every epoch and the test score, and compare fastnn's fit time with "
            "scikit-learn's MLP trained with the same settings. Features are "
            "standardised with a StandardScaler fitted on the training split."
        ),
    )
    _add_model_options(parser.add_argument)
    _add_run_options(parser.add_argument)
    _add_precompile_option(parser.add_argument)
    return parser


def _add_precompile_option(add):
    """The ``--precompile`` option: fill numba's cache, then exit."""
    add(
        "--precompile",
        action="store_true",
        help="compile every kernel for this machine into numba's cache "
        "(NUMBA_CACHE_DIR if set, else next to the sources), print the time "
        "and the cache location, and exit.",
    )


def _precompile():
    """Run :func:`fastnn._precompile.precompile`, printing to stdout."""
    from ._precompile import precompile

    precompile(file=sys.stdout)
    return 0


def _add_model_options(add):
    """The options choosing the data and the network: dataset, layers, solver."""
    add(
        "--dataset",
        choices=CLASSIFICATION_DATASETS + REGRESSION_DATASETS,
        default="digits",
        help="dataset to train on; diabetes is a regression (MLPRegressor, R^2), "
        "the others are classifications (MLPClassifier, accuracy). "
        "Default: %(default)s.",
    )
    add(
        "--hidden",
        type=_hidden_sizes,
        default=(128, 64),
        metavar="W1,W2,...",
        help="hidden layer widths, comma-separated. Default: 128,64.",
    )
    add(
        "--solver",
        choices=SOLVERS,
        default="adam",
        help="optimizer: adam, sgd (with momentum) or lbfgs (full batch: --epochs "
        "is its iteration limit and --batch-size is unused). Default: %(default)s.",
    )
    add(
        "--activation",
        choices=tuple(ACTIVATION_CODES),
        default="relu",
        help=f"hidden activation; {', '.join(FASTNN_ONLY_ACTIVATIONS)} exist only "
        "in fastnn, so with them the comparison with scikit-learn is skipped. "
        "Default: %(default)s.",
    )
    add(
        "--class-weight",
        type=_class_weight,
        default=None,
        metavar="{balanced,none}",
        help="fastnn only, classification only: 'balanced' weights each class "
        "inversely to its frequency; 'none' weights every sample alike. "
        "Default: none.",
    )
    add(
        "--dropout",
        type=_dropout_rate,
        default=0.0,
        metavar="RATE",
        help="fastnn only, solvers sgd and adam only: dropout rate of the hidden "
        "layers while training, in [0, 1). Default: %(default)s.",
    )


def _add_run_options(add):
    """The options of the training run: epochs, batches, seed, output."""
    add(
        "--epochs",
        type=_positive_int,
        default=50,
        help="epochs (max_iter); sgd and adam run all of them so that both "
        "libraries do the same work. Default: %(default)s.",
    )
    add(
        "--batch-size",
        type=_batch_size,
        default="auto",
        help="mini-batch size, or 'auto' for min(200, n_samples). "
        "Default: %(default)s.",
    )
    add(
        "--random-state",
        type=int,
        default=0,
        help="seed of the train/test split and the weight initialisation. "
        "Default: %(default)s.",
    )
    add(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0: quiet fit; 1: one loss line per epoch; 2: also a progress bar. "
        "Default: %(default)s.",
    )
    add(
        "--no-compare",
        action="store_true",
        help="train fastnn only, without timing scikit-learn.",
    )


def _load_split(name, random_state):
    """Load a toy dataset, split it 75/25 and standardise it on the train split.

    Regression targets are standardised too (R^2 does not change under the
    same affine map of targets and predictions), which lets the default
    learning rate converge.
    """
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    is_classification = name in CLASSIFICATION_DATASETS
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=0.25,
        random_state=random_state,
        stratify=y if is_classification else None,
    )
    x_scaler = StandardScaler().fit(X_train)
    X_train, X_test = x_scaler.transform(X_train), x_scaler.transform(X_test)
    if not is_classification:
        y_scaler = StandardScaler().fit(y_train.reshape(-1, 1))
        y_train = y_scaler.transform(y_train.reshape(-1, 1)).ravel()
        y_test = y_scaler.transform(y_test.reshape(-1, 1)).ravel()
    return _Split(X_train, X_test, y_train, y_test)


def _estimator_params(args):
    """Return the constructor parameters shared by both libraries' networks."""
    params = {
        "hidden_layer_sizes": args.hidden,
        "activation": args.activation,
        "solver": args.solver,
        "batch_size": args.batch_size,
        "max_iter": args.epochs,
        "random_state": args.random_state,
    }
    if args.solver != "lbfgs":
        # No stopping on a flat loss: both libraries run exactly --epochs epochs.
        params["n_iter_no_change"] = args.epochs
    return params


def _fastnn_only_params(args, parser):
    """Return the fastnn-only constructor parameters set on the command line.

    Options that do not apply to the dataset or the solver end the run with a
    one-line error, as a bad option value does.
    """
    params = {}
    if args.class_weight is not None:
        if args.dataset not in CLASSIFICATION_DATASETS:
            parser.error(
                f"argument --class-weight: dataset {args.dataset} is a regression; "
                "class weights apply to classification datasets only"
            )
        params["class_weight"] = args.class_weight
    if args.dropout:
        if args.solver == "lbfgs":
            parser.error(
                "argument --dropout: the lbfgs solver does not support dropout; "
                "use --solver adam or sgd"
            )
        params["dropout"] = args.dropout
    return params


def _timed_fit(estimator, X, y):
    """Fit ``estimator`` and return the wall-clock seconds it took."""
    with warnings.catch_warnings():
        # Reaching --epochs is the point of the run, not a problem to report.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        return time.perf_counter() - start


def _warm_up(estimator, data):
    """Fit a silent one-epoch clone of ``estimator``; return the seconds taken.

    This compiles (or loads from numba's cache) every kernel that the timed fit
    uses, so the timed fit measures training alone, for either library.
    """
    warm = clone(estimator).set_params(max_iter=1, verbose=0)
    return _timed_fit(warm, data.X_train, data.y_train)


def _result_row(label, estimator, seconds, data):
    """One line of the results table: test score, fit time, epochs, per epoch."""
    score = estimator.score(data.X_test, data.y_test)
    per_epoch_ms = 1000.0 * seconds / max(estimator.n_iter_, 1)
    return (
        f"{label:<14}{score:>10.4f}{seconds:>10.3f} s{estimator.n_iter_:>8d}"
        f"{per_epoch_ms:>11.2f} ms"
    )


def _describe(args, data):
    """One line describing the dataset and the split."""
    n_train, n_features = data.X_train.shape
    text = (
        f"dataset {args.dataset}: {n_train} training / {data.X_test.shape[0]} "
        f"test samples, {n_features} features"
    )
    if args.dataset in CLASSIFICATION_DATASETS:
        text += f", {len(set(data.y_train.tolist()))} classes"
    return text


def main(argv=None):
    """Run the command line demo.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        The exit status: 0 on success (bad options exit with status 2).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.precompile:
        return _precompile()
    is_classification = args.dataset in CLASSIFICATION_DATASETS
    estimator_class = MLPClassifier if is_classification else MLPRegressor
    name = estimator_class.__name__
    fastnn_only = _fastnn_only_params(args, parser)
    data = _load_split(args.dataset, args.random_state)
    params = _estimator_params(args)
    print(f"fastnn {__version__}, {_describe(args, data)}")
    estimator = estimator_class(**params, **fastnn_only, verbose=args.verbose)
    print(f"fastnn.{estimator!r}")
    warm_up_s = _warm_up(estimator, data)
    print(
        "fastnn warm-up (one epoch, includes JIT compile or cache load): "
        f"{warm_up_s:.3f} s"
    )
    seconds = _timed_fit(estimator, data.X_train, data.y_train)
    metric = "accuracy" if is_classification else "R^2"
    print(f"{'':<14}{metric:>10}{'fit time':>12}{'epochs':>8}{'per epoch':>14}")
    print(_result_row("fastnn", estimator, seconds, data))
    if args.no_compare:
        return 0
    if args.activation in FASTNN_ONLY_ACTIVATIONS:
        print(
            f"scikit-learn's {name} has no activation {args.activation!r}; "
            "comparison skipped."
        )
        return 0
    if fastnn_only:
        settings = ", ".join(f"{key}={value!r}" for key, value in fastnn_only.items())
        print(
            f"scikit-learn's {name} has no {' or '.join(fastnn_only)} parameter; "
            f"the scikit-learn comparison runs without {settings}."
        )
    reference = getattr(sk_nn, name)(**params)
    _warm_up(reference, data)
    sk_seconds = _timed_fit(reference, data.X_train, data.y_train)
    print(_result_row("scikit-learn", reference, sk_seconds, data))
    per_epoch = (sk_seconds / reference.n_iter_) / (seconds / estimator.n_iter_)
    print(
        f"speed-up of fastnn over scikit-learn: {sk_seconds / seconds:.2f}x fit "
        f"time, {per_epoch:.2f}x per epoch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
