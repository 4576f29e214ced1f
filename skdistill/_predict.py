"""The prediction path: a fitted student module's outputs on rows of features."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import itertools

import torch

__all__ = ["module_device", "predict_logits"]

#: Rows per forward pass at prediction time. Every pass sees exactly this
#: many rows (the last chunk is padded), because a float32 matrix product
#: can round a row differently depending on how many rows come with it;
#: fixed-size chunks make a row's prediction independent of the batch.
PREDICT_CHUNK_SIZE = 1024


def module_device(module):
    """The device of a module's first parameter or buffer; the CPU for one with none.

    Parameters
    ----------
    module : nn.Module
        Any module; its parameters are assumed to share one device.

    Returns
    -------
    device : torch.device
        The device of its first parameter, else of its first buffer, else
        the CPU.

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
    """Compute the logits of ``module`` on float32 rows X, in fixed-size padded chunks.

    Every forward pass sees 1024 rows (the last chunk padded with zeros),
    so that a row's outputs do not depend on the rows predicted with it.

    Parameters
    ----------
    module : nn.Module
        Maps ``(batch, n_features)`` to ``(batch, n_outputs)``, such as a
        fitted student's ``module_``. It runs in eval mode, under
        ``torch.inference_mode``, and gets its train/eval flag back.
    X : ndarray of shape (n_samples, n_features), dtype float32
        Features as the module takes them: a numpy array (wrapped by
        ``torch.from_numpy``, so not a list) of the module's dtype.
    device : str, torch.device or None, default=None
        Where the module is. None: where its parameters are, as for a net
        trained through accelerate, whose ``device`` is None and whose
        module the accelerator placed.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_outputs), dtype float32
        The module's outputs (logits, or a regression student's
        predictions), on the CPU.

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
