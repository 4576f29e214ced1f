"""A per-epoch progress bar for skorch nets (used by ``skdistill compress``)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

from skorch.callbacks import Callback

__all__ = ["EpochProgressBar"]


class EpochProgressBar(Callback):
    """A tqdm progress bar over a skorch net's epochs.

    One update per epoch, with the epoch's loss (validation loss when
    there is one), so it costs nothing measurable, unlike skorch's
    per-batch ``ProgressBar``. The bar's length is the net's
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
        self.bar_ = tqdm(
            total=net.max_epochs,
            desc=self.desc,
            unit="epoch",
            file=sys.stderr if self.file is None else self.file,
            disable=self.disable,
        )

    def on_epoch_end(self, net, **kwargs):
        """Advance the bar by one epoch and show the epoch's loss.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being fitted; the loss is read from the last row of its
            ``history`` (``valid_loss``, else ``train_loss``).
        **kwargs
            Other arguments skorch passes (the datasets); unused.
        """
        row = net.history[-1]
        loss = row.get("valid_loss", row.get("train_loss"))
        if loss is not None:
            self.bar_.set_postfix(loss=f"{loss:.4g}", refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        """Close the bar, which stops short of its length after early stopping.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net that was fitted; unused.
        **kwargs
            Other arguments skorch passes (``X``, ``y``); unused.
        """
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
