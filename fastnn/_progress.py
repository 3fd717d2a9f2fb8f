"""Progress reporting for the estimators' Python epoch loop.

The training kernels never print. After each epoch the estimator's Python loop
hands the epoch's loss (and, with early stopping, the validation score) to an
:class:`EpochReporter`, which decides what to show from ``verbose``:

* ``0`` / ``False``: nothing;
* ``1`` / ``True``: scikit-learn's own lines, ``Iteration N, loss = X`` and,
  when a validation score is given, ``Validation score: S``;
* ``2`` or more: the same lines plus a progress bar over the epochs that shows
  the current loss and validation score. The bar is drawn by tqdm when it is
  installed (``pip install "fastnn[progress]"``), else it is printed as a plain
  text line after each epoch.

All work happens once per epoch, so reporting costs nothing per mini-batch.
"""

import sys
import time

_BAR_WIDTH = 24


def _verbosity(verbose):
    """Map an estimator's ``verbose`` parameter to a level 0, 1 or 2+."""
    if verbose is True:
        return 1
    if not verbose:
        return 0
    return int(verbose)


def _tqdm_class():
    """Return ``tqdm.tqdm`` when tqdm is importable, else ``None``."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _format_postfix(loss, validation_score):
    """Return the ``loss=..., validation=...`` text shown next to the bar."""
    text = f"loss={loss:.6g}"
    if validation_score is not None:
        text += f", validation={validation_score:.4f}"
    return text


class EpochReporter:
    """Print training progress once per epoch, the way ``verbose`` asks.

    Parameters
    ----------
    verbose : bool or int
        ``0``/``False`` is silent; ``1``/``True`` prints scikit-learn's
        ``Iteration N, loss = X`` line (and ``Validation score: S`` when a
        validation score is passed); ``2`` or more also shows a progress bar
        over the epochs, with tqdm when it is installed, else plain lines.
    max_iter : int
        The most epochs this fit may run: the length of the progress bar.
    file : file-like, default=None
        Where the lines go. ``None`` means ``sys.stdout`` at the time of each
        line, which is where scikit-learn prints.

    Attributes
    ----------
    level : int
        The verbosity level: 0, 1, or 2 and above.
    n_epochs_reported : int
        How many epochs :meth:`epoch` has reported since construction.

    Examples
    --------
    >>> reporter = EpochReporter(verbose=1, max_iter=3)
    >>> reporter.epoch(1, 0.6931471805599453)
    Iteration 1, loss = 0.69314718
    >>> reporter.close()
    """

    def __init__(self, verbose, max_iter, *, file=None):
        self.level = _verbosity(verbose)
        self.max_iter = max(int(max_iter), 1)
        self.n_epochs_reported = 0
        self._file = file
        self._bar = None
        self._plain_bar = False
        self._start = time.perf_counter()
        if self.level >= 2:
            tqdm = _tqdm_class()
            if tqdm is None:
                self._plain_bar = True
            else:
                self._bar = tqdm(total=self.max_iter, unit="epoch", desc="fit")

    def _stream(self):
        return self._file if self._file is not None else sys.stdout

    def write(self, message):
        """Print one message line when ``verbose`` is at least 1.

        Use it for the estimator's own notes (e.g. why training stopped), so
        that they do not break a progress bar drawn by tqdm.

        Parameters
        ----------
        message : str
            The text to print, without a trailing newline.
        """
        if self.level < 1:
            return
        if self._bar is not None:
            self._bar.write(message, file=self._stream())
        else:
            print(message, file=self._stream())

    def epoch(self, n_iter, loss, validation_score=None):
        """Report one finished epoch.

        Parameters
        ----------
        n_iter : int
            The estimator's iteration count after this epoch (``n_iter_``).
        loss : float
            The epoch's training loss (the value appended to ``loss_curve_``).
        validation_score : float or None, default=None
            The score on the validation set, when early stopping holds one out.
        """
        self.n_epochs_reported += 1
        if self.level < 1:
            return
        self.write(f"Iteration {int(n_iter)}, loss = {loss:.8f}")
        if validation_score is not None:
            self.write(f"Validation score: {validation_score:f}")
        if self._bar is not None:
            self._bar.set_postfix_str(
                _format_postfix(loss, validation_score), refresh=False
            )
            self._bar.update(1)
        elif self._plain_bar:
            self._print_plain_bar(loss, validation_score)

    def _print_plain_bar(self, loss, validation_score):
        """Print the text progress line used when tqdm is not installed."""
        done = min(self.n_epochs_reported, self.max_iter)
        filled = round(_BAR_WIDTH * done / self.max_iter)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        elapsed = time.perf_counter() - self._start
        print(
            f"[{bar}] {self.n_epochs_reported}/{self.max_iter} epochs, "
            f"{_format_postfix(loss, validation_score)}, {elapsed:.1f}s",
            file=self._stream(),
        )

    def close(self):
        """Finish the progress bar, if any. Calling it again does nothing."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
