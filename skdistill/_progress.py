"""Progress of a student's training, one update per epoch: a tqdm bar on a
terminal or in a notebook, plain lines elsewhere (a log file, a pipe, a CI
job), where a bar's carriage returns and escape codes would be noise.

``verbose`` of the distillers chooses between them (:func:`progress_callbacks`).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

from skorch.callbacks import Callback

from ._curves import SCORE_KEY

__all__ = ["EpochLog", "EpochProgressBar", "progress_callbacks"]

#: What each epoch reports, in order, from the net's history: (key, label, format).
_REPORTED = (
    ("train_loss", "train loss", ".4g"),
    ("valid_loss", "valid loss", ".4g"),
    (SCORE_KEY, "valid score", ".4f"),
)


def progress_callbacks(verbose):
    """The callbacks that show a student's training for a distiller's ``verbose``.

    ``0``: none. ``1``: a bar (:class:`EpochProgressBar`, on stderr) when
    stderr is a terminal or the code runs in a notebook, else a line per
    epoch (:class:`EpochLog`, on stdout). ``2`` or more: a line per epoch
    everywhere.

    Parameters
    ----------
    verbose : int or bool
        A distiller's ``verbose``.

    Returns
    -------
    callbacks : list of skorch callbacks
        Unfitted; a fit initialises them.

    Examples
    --------
    >>> from skdistill._progress import progress_callbacks
    >>> progress_callbacks(0)
    []
    >>> progress_callbacks(2)
    [<skdistill._progress.EpochLog object at ...>]
    """
    if not verbose:
        return []
    if verbose == 1 and _bar_is_shown():
        return [EpochProgressBar(disable=False)]
    return [EpochLog()]


def _bar_is_shown():
    """Whether a bar has somewhere to live: a terminal on stderr, or a notebook."""
    stderr = sys.stderr
    return _in_notebook() or bool(getattr(stderr, "isatty", lambda: False)())


def _in_notebook():
    """Whether tqdm draws notebook widgets here (a Jupyter kernel with ipywidgets)."""
    from tqdm.auto import tqdm

    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def _epoch_report(net):
    """The last epoch's losses and score from the history, as (label, text) pairs."""
    row = net.history[-1]
    return [
        (label, format(row[key], spec))
        for key, label, spec in _REPORTED
        if row.get(key) is not None
    ]


def _last_epoch(net):
    """The number of the history's last epoch, or None before the first."""
    return net.history[-1]["epoch"] if len(net.history) else None


class _EveryEpoch(Callback):
    """A skorch callback that shows every epoch once (``_show``), the last one included.

    A callback before it that stops the fit inside an epoch's
    ``on_epoch_end`` (skorch's ``EarlyStopping``) keeps that epoch from the
    callbacks after it: it is shown in ``on_train_end`` instead.
    """

    def on_train_begin(self, net, **kwargs):
        """Remember where the history starts (a warm start continues it).

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being fitted.
        **kwargs
            Other arguments skorch passes (``X``, ``y``); unused.
        """
        self.last_epoch_ = _last_epoch(net)

    def on_epoch_end(self, net, **kwargs):
        """Show the epoch that just ended.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being fitted; what is shown is read from the last row of
            its ``history``.
        **kwargs
            Other arguments skorch passes (the datasets); unused.
        """
        self._show(net)
        self.last_epoch_ = _last_epoch(net)

    def on_train_end(self, net, **kwargs):
        """Show the last epoch if a callback before this one stopped the fit on it.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net that was fitted.
        **kwargs
            Other arguments skorch passes (``X``, ``y``); unused.
        """
        if "last_epoch_" in self.__dict__ and _last_epoch(net) != self.last_epoch_:
            self.on_epoch_end(net)

    def _show(self, net):
        raise NotImplementedError


class EpochLog(_EveryEpoch):
    """One plain line per epoch: its number, losses, validation score and duration.

    ``epoch 12/200, train loss 0.1234, valid loss 0.2345, valid score
    0.9600, 0.08 s``: no colours nor carriage returns, flushed at once, so that a
    log file or a pipe shows the progress as it happens.

    Parameters
    ----------
    file : file-like, default=None
        Where the lines are written; ``sys.stdout`` (as it is when each line
        is written) when None.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetRegressor
    >>> from skdistill.progress import EpochLog
    >>> net = NeuralNetRegressor(
    ...     torch.nn.Linear, module__in_features=2, module__out_features=1,
    ...     max_epochs=2, train_split=None, verbose=0, callbacks=[EpochLog()],
    ... )
    >>> _ = net.fit(np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32"))
    epoch 1/2, train loss ..., ... s
    epoch 2/2, train loss ..., ... s
    """

    def __init__(self, file=None):
        self.file = file

    def _show(self, net):
        row = net.history[-1]
        parts = [f"epoch {row['epoch']}/{net.max_epochs}"]
        parts += [f"{label} {value}" for label, value in _epoch_report(net)]
        parts.append(f"{row.get('dur', float('nan')):.2f} s")
        print(", ".join(parts), file=self.file or sys.stdout, flush=True)


class EpochProgressBar(_EveryEpoch):
    """A tqdm progress bar over a skorch net's epochs.

    One update per epoch, with the epoch's losses (and validation score,
    when recorded), so it costs nothing measurable, unlike skorch's
    per-batch ``ProgressBar``. In a notebook it is tqdm's widget. The bar's length is the net's
    ``max_epochs``; early stopping ends it sooner.

    Parameters
    ----------
    file : file-like, default=None
        Where the bar is written; ``sys.stderr`` when None.
    disable : bool or None, default=None
        True hides the bar; None (tqdm's convention) hides it when
        ``file`` is not a terminal, so logs and pipes stay clean.
    desc : str, default="distilling"
        Label in front of the bar.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetRegressor
    >>> from skdistill.progress import EpochProgressBar
    >>> log = io.StringIO()
    >>> net = NeuralNetRegressor(
    ...     torch.nn.Linear, module__in_features=2, module__out_features=1,
    ...     max_epochs=3, train_split=None, verbose=0,
    ...     callbacks=[EpochProgressBar(file=log, disable=False)],
    ... )
    >>> _ = net.fit(np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32"))
    >>> "3/3" in log.getvalue()
    True
    """

    def __init__(self, file=None, disable=None, desc="distilling"):
        self.file = file
        self.disable = disable
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        """Open a new bar, closing one left open by an interrupted fit.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being fitted; its ``max_epochs`` is the bar's length.
        **kwargs
            Other arguments skorch passes (``X``, ``y``); unused.
        """
        from tqdm.auto import tqdm

        self.close()
        super().on_train_begin(net)
        self.bar_ = tqdm(
            total=net.max_epochs,
            desc=self.desc,
            unit="epoch",
            file=sys.stderr if self.file is None else self.file,
            disable=self.disable,
        )

    def _show(self, net):
        self.bar_.set_postfix(dict(_epoch_report(net)), refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        """Count the epoch a callback before this one stopped the fit on, and close the bar.

        The bar stops short of its length after early stopping.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net that was fitted.
        **kwargs
            Other arguments skorch passes (``X``, ``y``); unused.
        """
        if "bar_" in self.__dict__:
            super().on_train_end(net)
        self.close()

    def close(self):
        """Close the bar, if one is open (also after an interrupted fit)."""
        bar = self.__dict__.pop("bar_", None)
        if bar is not None:
            bar.close()

    def __getstate__(self):
        # An open bar holds a file; a pickled net drops it.
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state
