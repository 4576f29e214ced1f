"""Distillation losses, and the layout of the targets they read.

The student is trained on one float32 target matrix per row, so that soft
targets, hard labels and weights travel through skorch's data pipeline as a
single tensor. The layouts are owned here, packing and unpacking side by
side: :class:`ClassificationTargets` is ``[teacher logits (n_classes
columns), hard label index, sample weight]`` (``NO_LABEL`` where a row has
no label), :class:`RegressionTargets` is ``[teacher predictions, y,
sample weight]`` (NaN where a row has no target).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NO_LABEL",
    "ClassificationTargets",
    "DistillationLoss",
    "RegressionDistillationLoss",
    "RegressionTargets",
    "classification_criterion",
    "logit_mse",
    "pack_regression_targets",
    "pack_targets",
    "regression_criterion",
    "soft_target_kl",
]

#: Label index of a row without a hard label (only the teacher speaks for it).
NO_LABEL = -1


def _pack(outputs, labels, sample_weight, *, label_columns, no_label):
    """``[outputs, labels, weight]`` as one float32 matrix.

    ``labels`` (of ``label_columns`` columns) and ``sample_weight`` cover the
    first rows; the rows beyond them get ``no_label`` and a weight of 1.
    None means none at all.
    """
    n_samples, n_outputs = outputs.shape
    targets = np.empty((n_samples, n_outputs + label_columns + 1), dtype=np.float32)
    targets[:, :n_outputs] = outputs
    targets[:, n_outputs:-1] = no_label
    targets[:, -1] = 1.0
    for values, columns, what in [
        (labels, slice(n_outputs, -1), "the labels"),
        (sample_weight, -1, "sample_weight"),
    ]:
        if values is None:
            continue
        if len(values) > n_samples:
            raise ValueError(f"{what} cover {len(values)} rows, more than the {n_samples} targets.")
        targets[: len(values), columns] = values
    return targets


class ClassificationTargets:
    """Packed targets of a classification student.

    ``[teacher logits (n_classes columns), hard label index, sample
    weight]``, float32. Labels and weights may cover only the first rows
    (the real rows, before transfer or unlabelled rows): the others get
    ``NO_LABEL`` and a weight of 1, as an average real row.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.losses import ClassificationTargets
    >>> targets = ClassificationTargets.pack(np.zeros((2, 3)), np.array([2]))
    >>> targets.tolist()
    [[0.0, 0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.0, -1.0, 1.0]]
    >>> logits, labels, weights = ClassificationTargets.unpack(targets)
    >>> logits.shape, labels.tolist(), weights.tolist()
    ((2, 3), [2, -1], [1.0, 1.0])
    """

    @staticmethod
    def pack(teacher_logits, label_indices=None, sample_weight=None):
        """One float32 matrix from the teacher's logits, the labels and the weights.

        Parameters
        ----------
        teacher_logits : ndarray of shape (n_samples, n_classes)
            The teacher's logits on every row (real, unlabelled and
            transfer rows), columns in the order of its ``classes_``.
        label_indices : ndarray of shape (n_labelled,) or None
            Index of each of the first rows' label in the teacher's
            ``classes_`` (``NO_LABEL`` for a row without one); None for no
            labels at all.
        sample_weight : ndarray of shape (n_weighted,) or None
            Weights of the first rows; the others weigh 1.

        Returns
        -------
        targets : ndarray of shape (n_samples, n_classes + 2), dtype float32
            ``[teacher logits, label index, sample weight]`` per row.
        """
        labels = None if label_indices is None else np.reshape(label_indices, (-1, 1))
        return _pack(teacher_logits, labels, sample_weight, label_columns=1, no_label=NO_LABEL)

    @staticmethod
    def unpack(targets):
        """Split packed targets into teacher logits, label indices and weights.

        Parameters
        ----------
        targets : ndarray or Tensor of shape (n_samples, n_classes + 2)
            Targets packed by :meth:`pack`, or a batch of them as skorch
            hands it to the loss.

        Returns
        -------
        teacher_logits : ndarray or Tensor of shape (n_samples, n_classes)
            The teacher's logits (a view of ``targets``).
        label_indices : ndarray or Tensor of shape (n_samples,), integer
            Label indices, ``NO_LABEL`` for a row without a label; intp for
            an ndarray, int64 for a Tensor, so they can index.
        sample_weight : ndarray or Tensor of shape (n_samples,)
            Row weights (a view of ``targets``).
        """
        labels = targets[:, -2]
        labels = labels.long() if isinstance(labels, torch.Tensor) else labels.astype(np.intp)
        return targets[:, :-2], labels, targets[:, -1]

    @staticmethod
    def strata(targets):
        """The stratum of each row for a stratified hold-out: the teacher's top class.

        Defined for every row (transfer and unlabeled rows have no label),
        and what the student must learn to tell apart.

        Parameters
        ----------
        targets : ndarray or Tensor of shape (n_samples, n_classes + 2)
            Packed targets.

        Returns
        -------
        strata : ndarray of shape (n_samples,), integer
            Index of the teacher's most probable class.
        """
        teacher_logits = ClassificationTargets.unpack(targets)[0]
        if isinstance(teacher_logits, torch.Tensor):
            teacher_logits = teacher_logits.detach().cpu().numpy()
        return np.argmax(teacher_logits, axis=1)


class RegressionTargets:
    """Packed targets of a regression student.

    ``[teacher predictions (n_outputs columns), y (n_outputs columns),
    sample weight]``, float32; NaN in ``y`` where a row has no target. As
    for :class:`ClassificationTargets`, ``y`` and the weights may cover only
    the first rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.losses import RegressionTargets
    >>> targets = RegressionTargets.pack(np.array([[1.0], [2.0]]), np.array([[1.5]]))
    >>> targets.tolist()
    [[1.0, 1.5, 1.0], [2.0, nan, 1.0]]
    >>> [part.shape for part in RegressionTargets.unpack(targets)]
    [(2, 1), (2, 1), (2,)]
    """

    @staticmethod
    def pack(teacher_predictions, y=None, sample_weight=None):
        """One float32 matrix from the teacher's predictions, the targets and the weights.

        Parameters
        ----------
        teacher_predictions : ndarray of shape (n_samples, n_outputs)
            The teacher's predictions on every row (real, unlabelled and
            transfer rows), one column per output.
        y : ndarray of shape (n_labelled, n_outputs) or (n_labelled,), or None
            Targets of the first rows (NaN for a row without one); None for
            no targets at all.
        sample_weight : ndarray of shape (n_weighted,) or None
            Weights of the first rows; the others weigh 1.

        Returns
        -------
        targets : ndarray of shape (n_samples, 2 * n_outputs + 1), dtype float32
            ``[teacher predictions, y, sample weight]`` per row.
        """
        n_outputs = teacher_predictions.shape[1]
        y = None if y is None else np.reshape(y, (len(y), n_outputs))
        return _pack(
            teacher_predictions, y, sample_weight, label_columns=n_outputs, no_label=np.nan
        )

    @staticmethod
    def unpack(targets):
        """Split packed targets into teacher predictions, targets y and weights.

        Parameters
        ----------
        targets : ndarray or Tensor of shape (n_samples, 2 * n_outputs + 1)
            Targets packed by :meth:`pack`, or a batch of them as skorch
            hands it to the loss.

        Returns
        -------
        teacher_predictions, y : ndarray or Tensor of shape (n_samples, n_outputs)
            The teacher's predictions, and the targets (NaN where a row has
            none); views of ``targets``.
        sample_weight : ndarray or Tensor of shape (n_samples,)
            Row weights (a view of ``targets``).
        """
        n_outputs = (targets.shape[1] - 1) // 2
        return targets[:, :n_outputs], targets[:, n_outputs:-1], targets[:, -1]

    @staticmethod
    def strata(targets):
        """No strata: regression rows are held out at random.

        Parameters
        ----------
        targets : ndarray or Tensor of shape (n_samples, 2 * n_outputs + 1)
            Targets packed by :meth:`pack`.

        Returns
        -------
        None
            A random hold-out, the same as no stratification.
        """
        return None


def pack_targets(teacher_logits, label_indices=None, sample_weight=None):
    """Pack soft targets, hard labels and weights into one float32 matrix.

    The layout of :class:`ClassificationTargets`.

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
        ``[teacher logits, label index, sample weight]`` per row.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.losses import pack_targets
    >>> pack_targets(np.zeros((2, 3)), np.array([2, -1])).tolist()
    [[0.0, 0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.0, -1.0, 1.0]]
    """
    return ClassificationTargets.pack(teacher_logits, label_indices, sample_weight)


def classification_criterion(temperature, alpha, loss):
    """Return skorch's ``criterion`` settings of a classification student.

    Parameters
    ----------
    temperature : float
        Temperature ``T > 0`` of the soft targets; unused by
        ``loss="logit_mse"``.
    alpha : float
        Weight in ``[0, 1]`` of the soft term; ``1 - alpha`` weighs the
        hard labels.
    loss : {"kl", "logit_mse"}
        The soft term; see :class:`DistillationLoss`.

    Returns
    -------
    settings : dict
        ``criterion`` and its ``criterion__`` parameters, for a skorch net.

    Examples
    --------
    >>> from skdistill.losses import classification_criterion
    >>> sorted(classification_criterion(4.0, 0.9, "kl"))
    ['criterion', 'criterion__alpha', 'criterion__loss', 'criterion__temperature']
    """
    return dict(
        criterion=DistillationLoss,
        criterion__temperature=float(temperature),
        criterion__alpha=float(alpha),
        criterion__loss=loss,
    )


def regression_criterion(alpha, scale):
    """Return skorch's ``criterion`` settings of a regression student.

    Parameters
    ----------
    alpha : float
        Weight in ``[0, 1]`` of the teacher's term; ``1 - alpha`` weighs
        the targets y.
    scale : array-like of shape (n_outputs,)
        The scale of each output (the teacher's standard deviations).

    Returns
    -------
    settings : dict
        ``criterion`` and its ``criterion__`` parameters, for a skorch net.

    Examples
    --------
    >>> from skdistill.losses import regression_criterion
    >>> regression_criterion(1.0, [2.0])["criterion__scale"]
    (2.0,)
    """
    return dict(
        criterion=RegressionDistillationLoss,
        criterion__alpha=float(alpha),
        criterion__scale=tuple(float(value) for value in np.ravel(scale)),
    )


def soft_target_kl(student_logits, teacher_logits, temperature):
    """Per-row ``T^2 * KL(p_T || q_T)``, summed over classes.

    Computed in float64 from log-softmax on both sides, so that neither a
    tiny nor a huge temperature loses the differences between the two
    distributions (at ``T = 1e6`` they differ by about ``1e-6 / n_classes``).

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (n_samples, n_classes)
        The student's logits ``z`` and the teacher's ``v``, rows aligned;
        ``q_T = softmax(z / T)`` and ``p_T = softmax(v / T)``.
    temperature : float
        Temperature ``T > 0`` of both softmaxes. The ``T^2`` factor keeps
        the gradients about the same size whatever T (Hinton et al. 2015).

    Returns
    -------
    loss : Tensor of shape (n_samples,)
        The loss of each row, in the dtype of ``student_logits``.

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
        The student's logits ``z`` and the teacher's ``v``, rows aligned;
        each is centred per row here, so neither needs to be.

    Returns
    -------
    loss : Tensor of shape (n_samples,)
        The loss of each row, summed over classes.

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
        """Compute the loss of a batch.

        Parameters
        ----------
        student_logits : Tensor of shape (batch_size, n_classes)
            The student's logits on the batch.
        targets : Tensor of shape (batch_size, n_classes + 2)
            The batch's targets, packed by :class:`ClassificationTargets`.

        Returns
        -------
        loss : Tensor
            A scalar: the weighted per-row loss averaged over every row of
            the batch, labelled or not.
        """
        teacher_logits, labels, weights = ClassificationTargets.unpack(targets)
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

    The layout of :class:`RegressionTargets`.

    Parameters
    ----------
    teacher_predictions : ndarray of shape (n_samples, n_outputs)
        The teacher's predictions, one column per output.
    y : ndarray of shape (n_samples, n_outputs) or None
        NaN where a row has no target; None for no targets at all.
    sample_weight : ndarray of shape (n_samples,) or None
        Row weights; None for equal weights.

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
    return RegressionTargets.pack(teacher_predictions, y, sample_weight)


class RegressionDistillationLoss(nn.Module):
    """Squared error to the teacher's predictions, mixed with the targets y.

    ``alpha * mean_k ((f_k - t_k) / s_k)^2 + (1 - alpha) * mean_k ((f_k - y_k) / s_k)^2``
    per row, weighted by the row's sample weight and averaged over rows,
    with ``f`` the student's, ``t`` the teacher's predictions and ``s`` a
    scale per output (the teacher's standard deviation on the training
    rows), so that the loss is unitless and the learning rate means the
    same for any target. The second term counts only rows with a target
    (not NaN). Targets are packed by :class:`RegressionTargets`.

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
        """Compute the loss of a batch.

        Parameters
        ----------
        predictions : Tensor of shape (batch_size, n_outputs)
            The student's predictions on the batch.
        targets : Tensor of shape (batch_size, 2 * n_outputs + 1)
            The batch's targets, packed by :class:`RegressionTargets`.

        Returns
        -------
        loss : Tensor
            A scalar: the weighted per-row loss averaged over every row of
            the batch, with a target or not.
        """
        teacher, y, weights = RegressionTargets.unpack(targets)
        per_row = torch.zeros_like(weights)
        if self.alpha > 0:
            soft = (((predictions - teacher) / self.scale) ** 2).mean(dim=1)
            per_row = per_row + self.alpha * soft
        if self.alpha < 1:
            has_target = ~torch.isnan(y)
            gap = torch.where(has_target, (predictions - y) / self.scale, 0.0)
            per_row = per_row + (1 - self.alpha) * (gap**2).mean(dim=1)
        return (weights * per_row).mean()
