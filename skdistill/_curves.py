"""Training curves as ``MLPClassifier`` reports them: ``loss_curve_``,
``best_loss_``, ``validation_scores_`` and ``best_validation_score_``.

The validation score of an epoch is read off the outputs the validation
loss was computed on (skorch hands them to ``on_batch_end``), so it costs
no forward pass of its own: a few sums per batch, kept on the student's
device, read once per epoch.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
from skorch.callbacks import Callback

from ._losses import NO_LABEL, ClassificationTargets, RegressionTargets

__all__ = ["ValidationAccuracy", "ValidationR2", "training_curves"]

#: The history key the validation score of an epoch is recorded under.
SCORE_KEY = "valid_score"


class ValidationScore(Callback):
    """Score the student on the validation rows of each epoch; records ``valid_score``.

    Subclasses say what a batch adds (:meth:`batch_sums`) and how the sums
    make the score (:meth:`score`). The target of a row is its label (or
    ``y``) where it has one, else the teacher's output, as packed by
    :mod:`skdistill.losses`; rows count with their sample weight (the last
    target column), as scikit-learn's ``score(X, y, sample_weight)``.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.sums_ = None

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        sums = self.batch_sums(y_pred.detach(), batch[1])
        self.sums_ = sums if getattr(self, "sums_", None) is None else self.sums_ + sums

    def on_epoch_end(self, net, **kwargs):
        sums = getattr(self, "sums_", None)
        if sums is not None:
            net.history.record(SCORE_KEY, self.score(sums.cpu().numpy()))
        self.sums_ = None

    def batch_sums(self, y_pred, targets):
        """The batch's share of the sums, a float64 tensor on the batch's device."""
        raise NotImplementedError

    def score(self, sums):
        """The epoch's score from its sums (an ndarray)."""
        raise NotImplementedError


class ValidationAccuracy(ValidationScore):
    """Weighted accuracy on the validation rows: against the row's label, else the
    teacher's most probable class."""

    def batch_sums(self, y_pred, targets):
        teacher_logits, labels, weights = ClassificationTargets.unpack(targets)
        expected = torch.where(labels != NO_LABEL, labels, teacher_logits.argmax(dim=1))
        correct = (y_pred.argmax(dim=1) == expected).to(torch.float64)
        weights = weights.to(torch.float64)
        return torch.stack([(weights * correct).sum(), weights.sum()])

    def score(self, sums):
        correct, total = sums
        return float(correct / total) if total > 0 else float("nan")


class ValidationR2(ValidationScore):
    """Weighted R² on the validation rows, averaged over outputs (as
    ``r2_score``): against ``y`` where a row has it, else the teacher's
    prediction."""

    def batch_sums(self, y_pred, targets):
        teacher, y, weights = RegressionTargets.unpack(targets)
        expected = torch.where(torch.isnan(y), teacher, y).to(torch.float64)
        if getattr(self, "shift_", None) is None:
            # Sums of squares about a value near the mean, so that targets
            # far from zero lose no precision to cancellation.
            self.shift_ = expected.mean(dim=0)
        expected = expected - self.shift_
        residual = expected - (y_pred.to(torch.float64) - self.shift_)
        weights = weights.to(torch.float64)[:, None]
        return torch.stack(
            [
                weights.sum(dim=0).expand_as(self.shift_),
                (weights * expected).sum(dim=0),
                (weights * expected**2).sum(dim=0),
                (weights * residual**2).sum(dim=0),
            ]
        )

    def score(self, sums):
        total, first, second, residual = sums
        if not total[0] > 0:
            return float("nan")
        spread = np.maximum(second - first**2 / total, 0.0)
        # As r2_score: a constant target scores 1 when met exactly, else 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(spread > 0, 1 - residual / spread, np.where(residual > 0, 0.0, 1.0))
        return float(r2.mean())

    def on_train_begin(self, net, **kwargs):
        self.shift_ = None


def training_curves(history, previous=None):
    """``MLPClassifier``'s curve attributes from a fitted net's history.

    Parameters
    ----------
    history : skorch History
        One row per epoch, with ``train_loss`` and, when the student was
        validated, ``valid_score`` (:class:`ValidationScore`).
    previous : dict or None, default=None
        The attributes of the fit this one continues (``warm_start``):
        its curves are continued, as ``MLPClassifier`` does.

    Returns
    -------
    curves : dict
        ``loss_curve_``, ``best_loss_`` (None when validated, as
        ``MLPClassifier`` with early stopping), ``validation_scores_`` and
        ``best_validation_score_`` (None when not validated).
    """
    previous = previous or {}
    loss_curve = [*(previous.get("loss_curve_") or []), *map(float, history[:, "train_loss"])]
    scores = [row.get(SCORE_KEY) for row in history]
    if any(score is None for score in scores):
        validation_scores = None
    else:
        validation_scores = [*(previous.get("validation_scores_") or []), *scores]
    return {
        "loss_curve_": loss_curve,
        "best_loss_": None if validation_scores is not None else min(loss_curve),
        "validation_scores_": validation_scores,
        "best_validation_score_": (
            None if validation_scores is None else _highest(validation_scores)
        ),
    }


def _highest(scores):
    """The highest score, NaN (an epoch whose rows all weigh 0) aside."""
    finite = [score for score in scores if not np.isnan(score)]
    return max(finite) if finite else float("nan")
