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

__all__ = ["DistillationLoss", "pack_targets", "soft_target_kl", "logit_mse"]

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
