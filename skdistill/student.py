"""The student network: its modules, and a tensor data pipeline for skorch.

skorch's default pipeline (a ``Dataset`` indexed row by row and a
``DataLoader`` collating rows) costs more than the small networks a
distillation student uses. :class:`TensorDataset` converts the data to
tensors once per fit and :class:`TensorBatchIterator` slices whole batches
out of them, which is what a hand-written PyTorch loop does.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import itertools

import numpy as np
import torch
from skorch import NeuralNet
from torch import nn

__all__ = [
    "MLP",
    "StudentNet",
    "Standardize",
    "StudentModule",
    "TensorBatchIterator",
    "TensorDataset",
    "HoldoutSplit",
    "module_device",
    "predict_logits",
    "directional_derivative",
]

#: Rows per forward pass at prediction time. Every pass sees exactly this
#: many rows (the last chunk is padded), because a float32 matrix product
#: can round a row differently depending on how many rows come with it;
#: fixed-size chunks make a row's prediction independent of the batch.
PREDICT_CHUNK_SIZE = 1024

#: A feature's scale is at least this share of its range, so that a nearly
#: constant feature (a rare binary flag, an image's border pixel) is not
#: blown up by a tiny standard deviation.
MIN_SCALE_OF_RANGE = 0.1


class Standardize(nn.Module):
    """Centre and scale the inputs with statistics fitted on training rows.

    The statistics are buffers: they are saved with the module and moved
    to its device with it, so the student takes raw features.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
    scale : array-like of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import Standardize
    >>> layer = Standardize.from_data(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> layer(torch.tensor([[1.0, 5.0]]))
    tensor([[0., 0.]])
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    @classmethod
    def from_data(cls, X, sample_weight=None):
        """Fit the statistics on X (float64 sums, so large values do not overflow).

        The scale is the standard deviation, but at least
        ``MIN_SCALE_OF_RANGE`` times the feature's range, and 1 for a
        constant feature. The sums run over chunks of rows, so that a large
        float32 X is never copied whole to float64.
        """
        n_samples = len(X)
        weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight)
        total = weights.sum(dtype=np.float64)
        mean = (
            sum(
                weights[rows] @ np.asarray(X[rows], dtype=np.float64) for rows in _chunks(n_samples)
            )
            / total
        )
        variance = (
            sum(
                weights[rows] @ (np.asarray(X[rows], dtype=np.float64) - mean) ** 2
                for rows in _chunks(n_samples)
            )
            / total
        )
        value_range = np.max(X, axis=0).astype(np.float64) - np.min(X, axis=0)
        scale = np.maximum(np.sqrt(variance), MIN_SCALE_OF_RANGE * value_range)
        scale[~(scale > 0) | ~np.isfinite(scale)] = 1.0
        return cls(mean, scale)

    def forward(self, X):
        return (X - self.mean) / self.scale


def _chunks(n_samples, size=65_536):
    """Slices of consecutive rows."""
    return [slice(start, start + size) for start in range(0, n_samples, size)]


class MLP(nn.Module):
    """A multilayer perceptron mapping features to class logits.

    Parameters
    ----------
    n_features : int
    n_classes : int
    hidden_layer_sizes : tuple of int, default=(256, 256)
    dropout : float, default=0.0
        Dropout after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skdistill.student import MLP
    >>> MLP(4, 3, hidden_layer_sizes=(8,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(256, 256), dropout=0.0):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


class StudentModule(nn.Module):
    """A student body behind its input standardisation.

    Parameters
    ----------
    standardize : Standardize
    body : nn.Module
        Maps standardised ``(batch, n_features)`` inputs to outputs.
    n_outputs : int, default=None
        With a number, a ``logit_bias`` buffer of that size (zeros) is added
        to the body's outputs: a correction set after training, not learnt
        (see :func:`skdistill.bias.fit_logit_bias`).
    output_scale : array-like of shape (n_outputs,), default=None
        With values, the body's outputs are multiplied by this buffer
        before ``logit_bias`` is added: a regression student learns
        standardised targets and gives them back in the teacher's units.
    output_offset : array-like of shape (n_outputs,), default=None
        Initial value of ``logit_bias`` (zeros when None): a regression
        student's target mean.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import MLP, Standardize, StudentModule
    >>> module = StudentModule(Standardize.from_data(np.eye(3)), MLP(3, 2, (4,)))
    >>> module(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, standardize, body, n_outputs=None, output_scale=None, output_offset=None):
        super().__init__()
        self.standardize = standardize
        self.body = body
        bias = None if n_outputs is None else torch.zeros(n_outputs)
        if bias is not None and output_offset is not None:
            bias += torch.as_tensor(np.asarray(output_offset), dtype=torch.float32)
        self.register_buffer("logit_bias", bias)
        if output_scale is not None:
            output_scale = torch.as_tensor(np.asarray(output_scale), dtype=torch.float32)
        self.register_buffer("output_scale", output_scale)

    def forward(self, X):
        outputs = self.body(self.standardize(X))
        if self.output_scale is not None:
            outputs = outputs * self.output_scale
        if self.logit_bias is not None:
            outputs = outputs + self.logit_bias
        return outputs


class StudentNet(NeuralNet):
    """skorch's ``NeuralNet``, with an optional derivative-matching term.

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
    *args, **kwargs
        ``NeuralNet``'s.
    derivative_teacher : callable or None, default=None
        Maps a batch of inputs (a float32 tensor on the student's device) to
        the teacher's logits, differentiably (see
        :class:`skdistill.teachers.TeacherLogits`).
    derivative_weight : float, default=0.0
        Weight of the derivative term; 0 turns it off.

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
    y : ndarray or Tensor of shape (n_samples, ...) or None
    length : int or None
        Unused; kept for skorch's signature.
    device : str or torch.device, default="cpu"

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
        """A new dataset of the given rows."""
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
    batch_size : int
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
    """skorch ``train_split``: hold out a random share of the rows.

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


def module_device(module):
    """The device of a module's first parameter or buffer; the CPU for one with none.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    device : torch.device

    Examples
    --------
    >>> import torch
    >>> from skdistill.student import module_device
    >>> module_device(torch.nn.Linear(2, 1))
    device(type='cpu')
    """
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def predict_logits(module, X, device=None):
    """Logits of ``module`` on float32 rows X, in fixed-size padded chunks.

    Parameters
    ----------
    module : nn.Module
    X : ndarray of shape (n_samples, n_features), dtype float32
    device : str, torch.device or None, default=None
        Where the module is. None: where its parameters are, as for a net
        trained through accelerate, whose ``device`` is None and whose
        module the accelerator placed.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_outputs), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import predict_logits
    >>> predict_logits(torch.nn.Linear(3, 2), np.zeros((5, 3), dtype="float32"), "cpu").shape
    (5, 2)
    """
    if device is None:
        device = module_device(module)
    was_training = module.training
    module.eval()
    chunks = []
    X = torch.from_numpy(X)
    n_samples = len(X)
    try:
        with torch.inference_mode():
            for start in range(0, n_samples, PREDICT_CHUNK_SIZE):
                chunk = X[start : start + PREDICT_CHUNK_SIZE]
                n_rows = len(chunk)
                if n_rows < PREDICT_CHUNK_SIZE:
                    chunk = torch.cat(
                        [chunk, chunk.new_zeros(PREDICT_CHUNK_SIZE - n_rows, chunk.shape[1])]
                    )
                chunks.append(module(chunk.to(device))[:n_rows].cpu())
    finally:
        module.train(was_training)
    return torch.cat(chunks).numpy()
