"""The skorch net that trains a student, and its tensor data pipeline.

skorch's default pipeline (a ``Dataset`` indexed row by row and a
``DataLoader`` collating rows) costs more than the small networks a
distillation student uses. :class:`TensorDataset` converts the data to
tensors once per fit and :class:`TensorBatchIterator` slices whole batches
out of them, which is what a hand-written PyTorch loop does.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len
from skorch.history import History
from torch import nn

from ._device import to_device
from ._student import Standardize

__all__ = [
    "GRAPH_WARMUP_STEPS",
    "HoldoutSplit",
    "StudentNet",
    "TensorBatchIterator",
    "TensorDataset",
    "directional_derivative",
]


#: Eager full-size training steps before the step is captured in a CUDA
#: graph: they create what a capture cannot (the optimizer's state, cuBLAS's
#: workspace), on a side stream as capture requires.
GRAPH_WARMUP_STEPS = 3


class StudentNet(NeuralNet):
    """A skorch ``NeuralNet`` with a lean loop and an optional derivative-matching term.

    - skorch sets train or eval mode on every module, recursively, at every
      batch; here a module already in the requested mode is left alone, so
      the switch happens once per epoch phase.
    - skorch reads every batch's loss on the host (``loss.item()``), which
      on a GPU waits for the step to finish before the next can be queued.
      Here each batch's loss is recorded as a 0-d tensor and all of an
      epoch phase's losses are read in one transfer at its end, before
      ``on_epoch_end``: the history then holds the same floats as skorch's,
      so scoring, early stopping and logging callbacks see what they would
      see. A callback that reads a batch's loss *inside* ``on_batch_end``
      gets the 0-d tensor (``float()`` of it works). With a history that
      is not a plain skorch ``History`` (accelerate's), the loop is skorch's.
    - With ``cuda_graph=True`` on a CUDA device, full-size training steps
      (forward, loss, backward and the optimizer's step) are captured once
      in a CUDA graph and replayed; see ``cuda_graph`` below.
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
    cuda_graph : bool, default=False
        Replay full-size training steps from a CUDA graph: after
        ``GRAPH_WARMUP_STEPS`` eager steps, the next one is captured with
        the batch copied into static buffers, and every later batch of
        ``batch_size`` rows is copied there and replayed, one launch per
        step instead of dozens. Batches of another size (an epoch's last
        rows) and validation batches run eagerly, on the same state. The
        optimizer must be capturable (``optimizer__capturable=True`` for
        Adam). It falls back to eager steps, with a warning, off CUDA, with
        forward keyword arguments, the derivative term, several or
        non-capturable optimizers, a callback with ``on_grad_computed``
        (it would fire once, at the capture), or when the capture fails; and
        from the step where the optimizer's settings change (a learning-rate
        schedule: the graph holds them as constants).
        The graph is released when ``fit`` returns. On ``on_batch_end``,
        ``y_pred`` is then a buffer the next step overwrites.
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

    def __init__(
        self, *args, derivative_teacher=None, derivative_weight=0.0, cuda_graph=False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.derivative_teacher = derivative_teacher
        self.derivative_weight = derivative_weight
        self.cuda_graph = cuda_graph

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch phase, reading its batch losses in one transfer at the end.

        skorch's ``run_single_epoch`` with the batch losses kept as 0-d
        tensors until the phase ends (see the class description).

        Parameters
        ----------
        iterator : iterable or None
            The phase's batches; None skips the phase.
        training : bool
            Whether the batches are training ones.
        prefix : str
            ``"train"`` or ``"valid"``: the history keys' prefix.
        step_fn : callable
            Runs a batch and returns ``{"loss": ..., "y_pred": ...}``.
        **fit_params : dict
            Passed to ``step_fn``.

        Returns
        -------
        None
            The phase's losses, batch sizes and batch count go to the history.
        """
        if iterator is None or type(self.history) is not History:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        rows, losses = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            # The batch's row of the history, written directly: History's
            # indexing is made for reading, and this runs at every step.
            row = list.__getitem__(self.history, -1)["batches"][-1]
            row[loss_key] = loss
            row[size_key] = (
                get_len(batch[0]) if isinstance(batch, (tuple, list)) else get_len(batch)
            )
            rows.append(row)
            losses.append(loss)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            # One device-to-host transfer; tolist() gives .item()'s floats.
            for row, value in zip(rows, torch.stack(losses).cpu().tolist(), strict=True):
                row[loss_key] = value
        self.history.record(prefix + "_batch_count", len(rows))

    # -- the CUDA-graph step ------------------------------------------------------

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's ``fit_loop``, with the CUDA graph (if any) made for this call only.

        Parameters
        ----------
        X : array-like
            Training rows, as ``NeuralNet.fit_loop`` takes them.
        y : array-like or None, default=None
            Their targets.
        epochs : int or None, default=None
            Epochs to train; None for ``max_epochs``.
        **fit_params : dict
            As ``NeuralNet.fit_loop``'s.

        Returns
        -------
        self : StudentNet
            The trained net; its graph, if any, is released.
        """
        self.graph_state_ = None
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            state, self.graph_state_ = self.graph_state_, None
            if state is not None and state.graph is not None:
                # The gradients live in the graph's memory pool: drop them
                # with it, so the pool is freed.
                self._zero_grad_optimizer(set_to_none=True)

    def train_step(self, batch, **fit_params):
        """One optimizer step: replayed from a CUDA graph when ``cuda_graph`` applies.

        Parameters
        ----------
        batch : tuple (X, y)
            A training batch.
        **fit_params : dict
            Keyword arguments of the module's forward (they keep the step eager).

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": y_pred}``, tensors.
        """
        if not self.cuda_graph:
            return super().train_step(batch, **fit_params)
        state = getattr(self, "graph_state_", None)
        if state is None:
            state = self.graph_state_ = _GraphState(self._graph_blockers(fit_params))
        Xi, yi = batch if isinstance(batch, (tuple, list)) else (batch, None)
        full_size = (
            isinstance(Xi, torch.Tensor)
            and isinstance(yi, torch.Tensor)
            and len(Xi) == self.batch_size
        )
        if not state.enabled or not full_size:
            return super().train_step(batch, **fit_params)
        with torch.cuda.device(Xi.device):
            if state.warm_steps < GRAPH_WARMUP_STEPS:
                state.warm_steps += 1
                return _on_side_stream(Xi.device, super().train_step, batch, **fit_params)
            if state.graph is None:
                if not self._capture_step(state, Xi, yi):
                    return super().train_step(batch, **fit_params)
            elif self._optimizer_settings() != state.settings:
                self._leave_graph(state, "the optimizer's settings changed (a schedule?)")
                return super().train_step(batch, **fit_params)
            else:
                state.X.copy_(Xi)
                state.y.copy_(yi)
            self._set_training(True)
            state.graph.replay()
        # The next replay overwrites the graph's outputs: the loss is copied.
        return {"loss": state.loss.detach().clone(), "y_pred": state.y_pred}

    def _optimizer_settings(self):
        """The optimizer's hyper-parameters, which a captured step holds as constants."""
        optimizer = getattr(self, self._optimizers[0] + "_")
        return [
            {key: value for key, value in group.items() if key != "params"}
            for group in optimizer.param_groups
        ]

    def _leave_graph(self, state, reason):
        """Run the rest of the fit's steps eagerly, on the same weights and state."""
        warnings.warn(
            f"cuda_graph=True: {reason}; the training steps run eagerly from here.",
            UserWarning,
            stacklevel=4,
        )
        state.enabled = False
        self._zero_grad_optimizer(set_to_none=True)

    def _capture_step(self, state, Xi, yi):
        """Capture a training step on static copies of the batch; False if it failed."""
        state.X, state.y = Xi.clone(), yi.clone()
        # Gradients made by the capture live in the graph's pool, and the
        # replays write them there.
        self._zero_grad_optimizer(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                step = self.train_step_single((state.X, state.y))
                self._step_optimizer(None)
        except RuntimeError as error:
            self._leave_graph(state, f"capturing the training step failed ({error})")
            return False
        state.graph, state.loss, state.y_pred = graph, step["loss"], step["y_pred"]
        state.settings = self._optimizer_settings()
        return True

    def _graph_blockers(self, fit_params):
        """Why the training step cannot be captured (an empty list when it can)."""
        blockers = []
        if torch.device(self.device or "cpu").type != "cuda":
            blockers.append(f"device {self.device!r} is not CUDA")
        if fit_params:
            blockers.append("the module's forward gets keyword arguments")
        if self.derivative_weight > 0 and self.derivative_teacher is not None:
            blockers.append("the derivative term")
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        if len(optimizers) != 1:
            blockers.append("several optimizers")
        elif not all(group.get("capturable", False) for group in optimizers[0].param_groups):
            blockers.append("the optimizer is not capturable (optimizer__capturable=True)")
        for name, callback in self.callbacks_:
            hook = getattr(type(callback), "on_grad_computed", Callback.on_grad_computed)
            if hook is not Callback.on_grad_computed:
                blockers.append(f"callback {name!r} uses on_grad_computed")
        if blockers:
            warnings.warn(
                "cuda_graph=True but the training steps run eagerly: " + "; ".join(blockers) + ".",
                UserWarning,
                stacklevel=4,
            )
        return blockers

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("graph_state_", None)  # a CUDA graph does not pickle
        return state

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


class _GraphState:
    """The captured step of one ``fit_loop``: the graph, its static buffers, its outputs."""

    def __init__(self, blockers):
        self.enabled = not blockers
        self.warm_steps = 0
        self.graph = self.X = self.y = self.loss = self.y_pred = self.settings = None


def _on_side_stream(device, function, *args, **kwargs):
    """Run ``function`` on a side stream ordered after, and before, the current one.

    Warm-up steps before a capture must run off the default stream.
    """
    current = torch.cuda.current_stream(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(current)
    with torch.cuda.stream(stream):
        result = function(*args, **kwargs)
    current.wait_stream(stream)
    return result


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
    ``device`` set the tensors are moved there once (on a GPU through
    page-locked staging buffers, asynchronously), so that batches are
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
        self.X = to_device(X, device)
        self.y = None if y is None else to_device(y, device)

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
    stratify : callable or None, default=None
        Maps the dataset's targets to each row's stratum (a classifier's:
        the teacher's top class, ``ClassificationTargets.strata``); the
        held-out rows then keep the strata's proportions, as
        ``MLPClassifier``'s early stopping does. Where a stratum has a
        single row, or there are more strata than held-out rows, the rows
        are held out at random.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.student import HoldoutSplit, TensorDataset
    >>> dataset = TensorDataset(np.zeros((10, 1)), np.zeros(10))
    >>> train, valid = HoldoutSplit(0.2, random_state=0)(dataset)
    >>> len(train), len(valid)
    (8, 2)
    >>> labels = np.repeat([0, 1], 5)
    >>> dataset = TensorDataset(np.zeros((10, 1)), labels)
    >>> _, valid = HoldoutSplit(0.2, 0, stratify=lambda y: y.numpy())(dataset)
    >>> sorted(valid.y.tolist())
    [0, 1]
    """

    def __init__(self, fraction, random_state, stratify=None):
        self.fraction = fraction
        self.random_state = random_state
        self.stratify = stratify

    def __call__(self, dataset, y=None, groups=None, **fit_params):
        """Split ``dataset`` into training and held-out rows.

        Parameters
        ----------
        dataset : TensorDataset
            The training rows and their targets.
        y, groups : ignored
            Part of skorch's ``train_split`` signature.
        **fit_params : dict
            Ignored; part of skorch's ``train_split`` signature.

        Returns
        -------
        train, valid : TensorDataset
            The rows kept for training and the rows held out, each in their
            original order.
        """
        n_samples = len(dataset)
        n_valid = max(1, int(round(self.fraction * n_samples)))
        valid = self._valid_rows(dataset, n_samples, n_valid)
        is_valid = np.zeros(n_samples, dtype=bool)
        is_valid[valid] = True
        device = dataset.X.device
        valid_rows = torch.as_tensor(np.flatnonzero(is_valid), device=device)
        train_rows = torch.as_tensor(np.flatnonzero(~is_valid), device=device)
        return dataset.take(train_rows), dataset.take(valid_rows)

    def _valid_rows(self, dataset, n_samples, n_valid):
        strata = None if self.stratify is None else self.stratify(dataset.y)
        if strata is not None:
            _, counts = np.unique(strata, return_counts=True)
            if counts.min() >= 2 and len(counts) <= min(n_valid, n_samples - n_valid):
                split = StratifiedShuffleSplit(
                    n_splits=1, test_size=n_valid, random_state=self.random_state
                )
                return next(split.split(np.zeros(n_samples), strata))[1]
        return np.random.default_rng(self.random_state).permutation(n_samples)[:n_valid]
