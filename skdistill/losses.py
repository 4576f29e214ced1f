"""Distillation losses: soft targets at a temperature, and logit matching.

The student is trained on one float32 target matrix per row, packed as
``[teacher logits (n_classes columns), hard label index, sample weight]``
(see :func:`pack_targets`), so that soft targets, hard labels (``-1`` where
a row has none) and weights travel through skorch's data pipeline as a
single tensor.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DistillationLoss",
    "RegressionDistillationLoss",
    "pack_targets",
    "pack_regression_targets",
    "soft_target_kl",
    "logit_mse",
]

#: Label index of a row without a hard label (only the teacher speaks for it).
NO_LABEL = -1


def pack_targets(teacher_logits, label_indices=None, sample_weight=None):
    """Pack soft targets, hard labels and weights into one float32 matrix.

    Parameters
    ----------
    teacher_logits : ndarray of shape (n_samples, n_classes)
        The teacher's logits.
    label_indices : ndarray of shape (n_samples,) or None
        Index of each row's label in the teacher's ``classes_``, ``-1``
        for a row with no label; None for no labels at all.
    sample_weight : ndarray of shape (n_samples,) or None
        Row weights; None for equal weights.

    Returns
    -------
    targets : ndarray of shape (n_samples, n_classes + 2), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.losses import pack_targets
    >>> pack_targets(np.zeros((2, 3)), np.array([2, -1])).tolist()
    [[0.0, 0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.0, -1.0, 1.0]]
    """
    n_samples = teacher_logits.shape[0]
    targets = np.empty((n_samples, teacher_logits.shape[1] + 2), dtype=np.float32)
    targets[:, :-2] = teacher_logits
    targets[:, -2] = NO_LABEL if label_indices is None else label_indices
    targets[:, -1] = 1.0 if sample_weight is None else sample_weight
    return targets


def soft_target_kl(student_logits, teacher_logits, temperature):
    """Per-row ``T^2 * KL(p_T || q_T)``, summed over classes.

    Computed in float64 from log-softmax on both sides, so that neither a
    tiny nor a huge temperature loses the differences between the two
    distributions (at ``T = 1e6`` they differ by about ``1e-6 / n_classes``).

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (n_samples, n_classes)
    temperature : float

    Returns
    -------
    loss : Tensor of shape (n_samples,)

    Examples
    --------
    >>> import torch
    >>> from skdistill.losses import soft_target_kl
    >>> z = torch.tensor([[1.0, 2.0, 3.0]])
    >>> float(soft_target_kl(z, z, temperature=4.0)[0])
    0.0
    """
    log_q = F.log_softmax(student_logits.double() / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.double() / temperature, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    return (temperature**2 * kl).to(student_logits.dtype)


def logit_mse(student_logits, teacher_logits):
    """Per-row ``0.5 * ||z - v||^2`` between row-centred logits.

    The squared loss on logits of Bucila et al. (2006) and Ba & Caruana
    (2014). Logits are centred per row first: a teacher that only gives
    probabilities defines its logits up to a per-row constant.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (n_samples, n_classes)

    Returns
    -------
    loss : Tensor of shape (n_samples,)

    Examples
    --------
    >>> import torch
    >>> from skdistill.losses import logit_mse
    >>> float(logit_mse(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]))[0])
    1.0
    """
    student = student_logits - student_logits.mean(dim=1, keepdim=True)
    teacher = teacher_logits - teacher_logits.mean(dim=1, keepdim=True)
    return 0.5 * ((student - teacher) ** 2).sum(dim=1)


class DistillationLoss(nn.Module):
    """The distillation objective, averaged over the rows of a batch.

    ``alpha * soft + (1 - alpha) * CE(y, q_1)`` per row, where ``soft`` is
    ``T^2 * KL(p_T || q_T)`` (``loss="kl"``) or :func:`logit_mse`
    (``loss="logit_mse"``, temperature unused), weighted by the row's
    sample weight. The hard-label term counts only rows that have a label.
    KL is summed over classes and averaged over rows (torch's
    ``reduction="batchmean"``), not averaged over classes too.

    Parameters
    ----------
    temperature : float, default=1.0
        Temperature of the soft term (``loss="kl"`` only).
    alpha : float, default=1.0
        Weight of the soft term; ``1 - alpha`` weighs the hard labels.
    loss : {"kl", "logit_mse"}, default="kl"
        The soft term.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.losses import DistillationLoss, pack_targets
    >>> criterion = DistillationLoss(temperature=2.0, alpha=0.5)
    >>> targets = torch.from_numpy(pack_targets(np.array([[2.0, 0.0]]), np.array([0])))
    >>> float(criterion(torch.tensor([[2.0, 0.0]]), targets))  # soft term is 0
    0.0634...
    """

    def __init__(self, temperature=1.0, alpha=1.0, loss="kl"):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha
        self.loss = loss

    def forward(self, student_logits, targets):
        teacher_logits = targets[:, :-2]
        labels = targets[:, -2].long()
        weights = targets[:, -1]
        per_row = torch.zeros_like(weights)
        if self.alpha > 0:
            if self.loss == "kl":
                soft = soft_target_kl(student_logits, teacher_logits, self.temperature)
            else:
                soft = logit_mse(student_logits, teacher_logits)
            per_row = per_row + self.alpha * soft
        if self.alpha < 1:
            has_label = labels != NO_LABEL
            hard = F.cross_entropy(student_logits, labels.clamp(min=0), reduction="none")
            per_row = per_row + (1 - self.alpha) * torch.where(has_label, hard, 0.0)
        return (weights * per_row).mean()


def pack_regression_targets(teacher_predictions, y=None, sample_weight=None):
    """Pack a regression teacher's predictions, the targets y and the weights.

    Parameters
    ----------
    teacher_predictions : ndarray of shape (n_samples, n_outputs)
    y : ndarray of shape (n_samples, n_outputs) or None
        NaN where a row has no target; None for no targets at all.
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    targets : ndarray of shape (n_samples, 2 * n_outputs + 1), dtype float32
        ``[teacher predictions, y, weight]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.losses import pack_regression_targets
    >>> pack_regression_targets(np.array([[1.0], [2.0]]), np.array([[1.5], [np.nan]])).tolist()
    [[1.0, 1.5, 1.0], [2.0, nan, 1.0]]
    """
    n_samples, n_outputs = teacher_predictions.shape
    targets = np.empty((n_samples, 2 * n_outputs + 1), dtype=np.float32)
    targets[:, :n_outputs] = teacher_predictions
    targets[:, n_outputs:-1] = np.nan if y is None else np.reshape(y, (n_samples, n_outputs))
    targets[:, -1] = 1.0 if sample_weight is None else sample_weight
    return targets


class RegressionDistillationLoss(nn.Module):
    """Squared error to the teacher's predictions, mixed with the targets y.

    ``alpha * mean_k ((f_k - t_k) / s_k)^2 + (1 - alpha) * mean_k ((f_k - y_k) / s_k)^2``
    per row, weighted by the row's sample weight and averaged over rows,
    with ``f`` the student's, ``t`` the teacher's predictions and ``s`` a
    scale per output (the teacher's standard deviation on the training
    rows), so that the loss is unitless and the learning rate means the
    same for any target. The second term counts only rows with a target
    (not NaN). Targets are packed by :func:`pack_regression_targets`.

    Parameters
    ----------
    alpha : float, default=1.0
        Weight of the teacher's term; ``1 - alpha`` weighs y.
    scale : sequence of float, default=(1.0,)
        Scale of each output.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.losses import RegressionDistillationLoss, pack_regression_targets
    >>> criterion = RegressionDistillationLoss(alpha=0.5, scale=(2.0,))
    >>> targets = torch.from_numpy(pack_regression_targets(np.array([[1.0]]), np.array([[3.0]])))
    >>> float(criterion(torch.tensor([[1.0]]), targets))  # 0.5 * (2 / 2) ** 2
    0.5
    """

    def __init__(self, alpha=1.0, scale=(1.0,)):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, predictions, targets):
        n_outputs = predictions.shape[1]
        teacher = targets[:, :n_outputs]
        y = targets[:, n_outputs:-1]
        weights = targets[:, -1]
        per_row = torch.zeros_like(weights)
        if self.alpha > 0:
            soft = (((predictions - teacher) / self.scale) ** 2).mean(dim=1)
            per_row = per_row + self.alpha * soft
        if self.alpha < 1:
            has_target = ~torch.isnan(y)
            gap = torch.where(has_target, (predictions - y) / self.scale, 0.0)
            per_row = per_row + (1 - self.alpha) * (gap**2).mean(dim=1)
        return (weights * per_row).mean()
