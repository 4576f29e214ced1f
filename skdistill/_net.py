"""The skorch net that trains a student, and its tensor data pipeline.

skorch's default pipeline (a ``Dataset`` indexed row by row and a
``DataLoader`` collating rows) costs more than the small networks a
distillation student uses. :class:`TensorDataset` converts the data to
tensors once per fit and :class:`TensorBatchIterator` slices whole batches
out of them, which is what a hand-written PyTorch loop does.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
from skorch import NeuralNet
from torch import nn

from ._student import Standardize

__all__ = [
    "HoldoutSplit",
    "StudentNet",
    "TensorBatchIterator",
    "TensorDataset",
    "directional_derivative",
]


class StudentNet(NeuralNet):
    """A skorch ``NeuralNet`` with an optional derivative-matching term.

    - skorch sets train or eval mode on every module, recursively, at every
      batch; here a module already in the requested mode is left alone, so
      the switch happens once per epoch phase.
    - With a ``derivative_teacher`` and a positive ``derivative_weight``,
      each training batch adds the Sobolev term of Czarnecki et al. (2017)
      with a random projection: for a direction ``v`` drawn per row, the
      squared difference between the student's and the teacher's
      directional derivatives of their row-centred logits,
      ``|J_s(x) v - J_t(x) v|^2``, summed over classes, weighted by the
      row's sample weight (the last target column) and averaged over rows.
      Its expectation over ``v`` is the squared Frobenius distance of the
      two Jacobians (in the student's standardised units), at the price of
      one forward-mode pass through each network instead of one pass per
      input feature. Validation losses leave it out.

    Everything else is ``NeuralNet``'s.

    Parameters
    ----------
    *args
        ``NeuralNet``'s positional arguments (``module``, ``criterion``).
    derivative_teacher : callable or None, default=None
        Maps a batch of inputs (a float32 tensor on the student's device) to
        the teacher's logits, differentiably (see
        :class:`skdistill.teachers.TeacherLogits`).
    derivative_weight : float, default=0.0
        Weight of the derivative term; 0 turns it off.
    **kwargs
        ``NeuralNet``'s keyword arguments.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import StudentNet
    >>> net = StudentNet(torch.nn.Linear, criterion=torch.nn.MSELoss, module__in_features=2,
    ...                  module__out_features=1, max_epochs=2, train_split=None, verbose=0)
    >>> len(net.fit(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")).history)
    2
    """

    def __init__(self, *args, derivative_teacher=None, derivative_weight=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.derivative_teacher = derivative_teacher
        self.derivative_weight = derivative_weight

    def _set_training(self, training=True):
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, nn.Module) and module.training != training:
                module.train(training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Compute the criterion's loss, plus the derivative term on training batches.

        Parameters
        ----------
        y_pred : Tensor of shape (batch_size, n_outputs)
            The student's outputs on the batch.
        y_true : Tensor of shape (batch_size, n_targets)
            The batch's packed targets (:mod:`skdistill.losses`); the last
            column, the sample weight, also weighs the derivative term.
        X : Tensor of shape (batch_size, n_features), default=None
            The batch's inputs, where the derivatives are taken; needed
            only when the derivative term applies.
        training : bool, default=False
            Whether the batch is a training one; validation losses leave
            the derivative term out.

        Returns
        -------
        loss : Tensor
            A scalar: the criterion's loss, plus ``derivative_weight``
            times the weighted mean over rows of the squared gap between
            the two directional derivatives, when the term applies.
        """
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training and self.derivative_weight > 0 and self.derivative_teacher is not None:
            weights = y_true[:, -1]
            loss = loss + self.derivative_weight * (weights * self._derivative_gap(X)).mean()
        return loss

    def _derivative_gap(self, X):
        """Per-row squared gap between the two directional derivatives."""
        X = X.to(torch.float32)
        direction = torch.randn_like(X)
        standardize = getattr(self.module_, "standardize", None)
        if isinstance(standardize, Standardize):
            # A unit step in the standardised space the student learns in,
            # so features in large units do not take all of it. A constant
            # feature has scale 1 and still gets its share (on MNIST, blank
            # pixels take most of it; masking them changed little).
            direction = direction * standardize.scale
        student = directional_derivative(self.module_, X, direction)
        with torch.no_grad():
            teacher = directional_derivative(self.derivative_teacher, X, direction)
        return ((_centred(student) - _centred(teacher)) ** 2).sum(dim=1)


def directional_derivative(function, X, direction):
    """Row-wise directional derivative ``J(x) v`` of ``function`` (forward mode).

    Parameters
    ----------
    function : callable
        Maps a ``(batch, n_features)`` tensor to ``(batch, n_outputs)``, each
        output row depending on its input row only.
    X, direction : Tensor of shape (batch, n_features)
        The points ``x``, one per row, and the direction ``v`` of each
        row.

    Returns
    -------
    derivative : Tensor of shape (batch, n_outputs)
        Differentiable with respect to the parameters ``function`` uses
        (outside ``torch.no_grad``).

    Examples
    --------
    >>> import torch
    >>> from skdistill.student import directional_derivative
    >>> directional_derivative(lambda x: x**2, torch.tensor([[3.0]]), torch.tensor([[1.0]]))
    tensor([[6.]])
    """
    return torch.func.jvp(function, (X,), (direction,))[1]


def _centred(logits):
    # Logits are defined up to a per-row constant (softmax ignores it).
    return logits - logits.mean(dim=1, keepdim=True)


class TensorDataset(torch.utils.data.Dataset):
    """Features and targets held as tensors, converted once per fit.

    Follows skorch's ``Dataset(X, y)`` signature, so it can stand in as a
    net's ``dataset``. Numpy arrays are wrapped without a copy; with
    ``device`` set the tensors are moved there once, so that batches are
    sliced on the device.

    Parameters
    ----------
    X : ndarray or Tensor of shape (n_samples, n_features)
        Features, as the module takes them (float32 for a student).
    y : ndarray or Tensor of shape (n_samples, ...) or None
        Targets (a student's packed targets), or None for features only;
        a row then comes with an empty target tensor.
    length : int or None
        Unused; kept for skorch's signature.
    device : str or torch.device, default="cpu"
        Where the tensors are kept, and so where batches are sliced.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.student import TensorDataset
    >>> dataset = TensorDataset(np.zeros((3, 2), dtype="float32"), np.arange(3))
    >>> len(dataset), dataset[1][1]
    (3, tensor(1))
    """

    def __init__(self, X, y=None, length=None, device="cpu"):
        self.X = torch.as_tensor(X, device=device)
        self.y = None if y is None else torch.as_tensor(y, device=device)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], (self.y[index] if self.y is not None else torch.empty(0))

    def take(self, indices):
        """A new dataset of the given rows.

        Parameters
        ----------
        indices : Tensor, ndarray or slice
            Rows to take, anything a tensor can be indexed with
            (:class:`HoldoutSplit` passes an int64 tensor of sorted rows on
            the dataset's device).

        Returns
        -------
        subset : TensorDataset
            The rows' features and targets, on the same device: a copy for
            an index array, a view for a slice.
        """
        subset = TensorDataset.__new__(TensorDataset)
        subset.X = self.X[indices]
        subset.y = None if self.y is None else self.y[indices]
        return subset


class TensorBatchIterator:
    """Batches sliced from a :class:`TensorDataset`, in place of a DataLoader.

    Takes the keyword arguments skorch passes to ``iterator_train`` and
    ``iterator_valid``.

    Parameters
    ----------
    dataset : TensorDataset
        The rows to batch; it must have targets (``y`` not None). Batches
        are slices of its tensors, on its device.
    batch_size : int
        Rows per batch; the last batch holds what remains.
    shuffle : bool, default=False
        A new order each epoch, drawn from torch's generator (seeded per
        fit by the estimator).

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.student import TensorBatchIterator, TensorDataset
    >>> dataset = TensorDataset(np.arange(5.0).reshape(5, 1), np.arange(5))
    >>> [len(y) for X, y in TensorBatchIterator(dataset, batch_size=2)]
    [2, 2, 1]
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        X, y = self.dataset.X, self.dataset.y
        n_samples = len(X)
        if self.shuffle:
            order = torch.randperm(n_samples, device=X.device)
            for start in range(0, n_samples, self.batch_size):
                rows = order[start : start + self.batch_size]
                yield X[rows], y[rows]
        else:
            for start in range(0, n_samples, self.batch_size):
                yield X[start : start + self.batch_size], y[start : start + self.batch_size]


class HoldoutSplit:
    """A skorch ``train_split`` that holds out a random share of the rows.

    Parameters
    ----------
    fraction : float
        Share of the rows held out for validation.
    random_state : int
        Seed of the split.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.student import HoldoutSplit, TensorDataset
    >>> dataset = TensorDataset(np.zeros((10, 1)), np.zeros(10))
    >>> train, valid = HoldoutSplit(0.2, random_state=0)(dataset)
    >>> len(train), len(valid)
    (8, 2)
    """

    def __init__(self, fraction, random_state):
        self.fraction = fraction
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None, **fit_params):
        n_samples = len(dataset)
        n_valid = max(1, int(round(self.fraction * n_samples)))
        order = np.random.default_rng(self.random_state).permutation(n_samples)
        valid_rows = torch.as_tensor(np.sort(order[:n_valid]), device=dataset.X.device)
        train_rows = torch.as_tensor(np.sort(order[n_valid:]), device=dataset.X.device)
        return dataset.take(train_rows), dataset.take(valid_rows)
