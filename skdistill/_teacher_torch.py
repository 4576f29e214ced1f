"""Teachers that hold torch modules: their train/eval flags, and their logits
as a differentiable function (for derivative matching).

A skorch net's ``predict_proba`` switches its module to eval mode and leaves
it there; the teacher belongs to the user, so every flag is put back.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from contextlib import contextmanager

import torch

from ._predict import module_device

__all__ = ["TeacherLogits", "torch_modules", "train_modes_preserved"]

#: How deep ``torch_modules`` looks into a teacher's attributes for torch
#: modules (a skorch net inside a Pipeline inside a FrozenEstimator is 3).
_MODULE_SEARCH_DEPTH = 6


def torch_modules(obj, depth=_MODULE_SEARCH_DEPTH, seen=None):
    """Torch modules held by an estimator, its attributes and its steps."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        return [obj]
    if isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return []
    return [module for child in children for module in torch_modules(child, depth - 1, seen)]


@contextmanager
def train_modes_preserved(teacher):
    """Restore the train/eval flag of every torch module of the teacher.

    A skorch net's ``predict_proba`` switches its module to eval mode and
    leaves it there; the teacher belongs to the user and must come back
    exactly as it was.
    """
    modes = [
        (submodule, submodule.training)
        for module in torch_modules(teacher)
        for submodule in module.modules()
    ]
    try:
        yield
    finally:
        for submodule, training in modes:
            submodule.training = training


class TeacherLogits:
    """A fitted skorch classifier's logits as a differentiable function of X.

    Used to match the student's input-derivatives to the teacher's
    (``DistilledClassifier(derivative_weight=...)``). The logits are the
    log of the net's ``predict_proba`` (its module's output through the
    net's prediction nonlinearity), so they are the teacher's whatever its
    criterion. The module is called in eval mode and never updated: the
    estimator restores the train/eval flags of the teacher's modules after
    training, and gradients never flow into it.

    Parameters
    ----------
    net : fitted skorch.NeuralNet
        A classifier whose module maps float32 X to its outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skdistill.teachers import TeacherLogits
    >>> X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=3, module__out_features=2,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=2, train_split=None, verbose=0,
    ... ).fit(X, y)
    >>> TeacherLogits.supports(net)
    True
    >>> TeacherLogits(net)(torch.from_numpy(X[:4])).shape
    torch.Size([4, 2])
    """

    def __init__(self, net):
        self.net = net

    @staticmethod
    def supports(teacher):
        """Whether ``teacher`` is a fitted skorch net whose module can be differentiated.

        Parameters
        ----------
        teacher : object
            A teacher as a distiller takes it; anything but a skorch net
            is refused, including a Pipeline or ``FrozenEstimator`` around one.

        Returns
        -------
        supported : bool
            True for an initialised ``skorch.NeuralNet`` whose ``module_``
            is a ``torch.nn.Module``.
        """
        from skorch import NeuralNet

        return (
            isinstance(teacher, NeuralNet)
            and getattr(teacher, "initialized_", False)
            and isinstance(getattr(teacher, "module_", None), torch.nn.Module)
        )

    def __call__(self, X):
        net = self.net
        device = X.device
        outputs = net.module_(X.to(module_device(net.module_)))
        if isinstance(outputs, tuple):  # skorch's convention: the first one is the prediction
            outputs = outputs[0]
        proba = net._get_predict_nonlinearity()(outputs)
        return torch.log(proba.clamp_min(torch.finfo(proba.dtype).tiny)).to(device)

    def modules(self):
        """The torch modules of the teacher, to set to eval mode during training.

        Returns
        -------
        modules : list of torch.nn.Module
            The net's ``module_``; ``eval()`` on it reaches its submodules.
        """
        return [self.net.module_]
