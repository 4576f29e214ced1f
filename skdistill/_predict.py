"""The prediction path: a fitted student module's outputs on rows of features.

Three promises, kept for any module and from any number of threads:

- **Prediction never changes the fitted module.** It runs in eval mode
  through an *inference copy*, never by switching the module's own train/eval
  flags: threads would switch them under each other, and a BatchNorm layer
  in train mode would overwrite its running statistics.
- **A row's result does not depend on the rows that come with it.** On the
  CPU the copy computes in float64, as ``MLPClassifier`` does: a float32
  matrix product rounds a row differently for batches of a few rows than
  for large ones (measured: 1 to 8 rows at 64 features, up to 64 at 784),
  where float64 results agree to about 1e-16 and round to the same float32
  logits. On a GPU, rows go in fixed-size chunks, the last one padded.
- **A few rows cost a few rows' work** on the CPU (no padded chunk), and
  memory grows with the rows given, in chunks.

The inference copy is made on first use and kept while the module lives and
its parameters do not change (by tensor identity and torch's version
counters): a model is copied once, not at each call.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import itertools
import threading
import weakref
from typing import NamedTuple

import numpy as np
import torch

from ._device import to_device
from ._student import folded_float64

__all__ = ["module_device", "predict_logits", "softmax_rows"]

#: Rows per forward pass on the CPU (float64): bounds the memory of the
#: intermediate activations; chunk boundaries do not change the results.
CPU_CHUNK_ROWS = 4096

#: Up to this many rows, the built-in MLP runs its folded float64 layers with
#: numpy, whose per-operation cost is a third of torch's dispatch; beyond,
#: torch's faster matrix products win. Both compute in float64, so a row
#: gets the same float32 result either way.
NUMPY_ROWS = 64

#: Rows per forward pass on a GPU (float32): every pass sees exactly this
#: many rows (the last chunk padded), so a row's result does not depend on
#: its batch; large, so that the GPU is kept busy.
DEVICE_CHUNK_ROWS = 8192

#: Most bytes of X moved to a GPU at once: one transfer each way for any
#: usual batch, bounded device memory for a huge one.
DEVICE_TRANSFER_BYTES = 1 << 30


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
    """Compute the outputs of ``module`` on float32 rows X, without changing it.

    See the module's docstring: eval mode through an inference copy,
    float64 on the CPU, fixed-size chunks on a GPU, so that a row's result
    does not depend on the rows predicted with it, and any number of
    threads may call it at once.

    Parameters
    ----------
    module : nn.Module
        Maps ``(batch, n_features)`` to ``(batch, n_outputs)``, such as a
        fitted student's ``module_``. Its train/eval flags and parameters
        are left as they are.
    X : ndarray of shape (n_samples, n_features), dtype float32
        Features as the module takes them (a numpy array, not a list).
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
    device = module_device(module) if device is None else torch.device(device)
    if device.type == "cpu":
        return _predict_on_cpu(module, X)
    return _predict_on_device(module, X, device)


def _predict_on_cpu(module, X):
    """Float64 forward passes of the inference copy, in chunks, as float32."""
    inference = _inference_copy(module, "cpu", X)
    if inference.dtype == torch.float32:  # a module that cannot run in float64
        return _predict_in_fixed_chunks(inference.module, X, torch.device("cpu"), CPU_CHUNK_ROWS)
    if inference.layers is not None and len(X) <= NUMPY_ROWS:
        return _numpy_forward(inference.layers, np.asarray(X, dtype=np.float64))
    with torch.inference_mode():
        chunks = [
            inference.module(
                torch.from_numpy(np.asarray(X[start : start + CPU_CHUNK_ROWS], np.float64))
            )
            for start in range(0, max(len(X), 1), CPU_CHUNK_ROWS)
        ]
        return torch.cat(chunks).to(torch.float32).numpy()


def _numpy_forward(layers, X):
    """A folded MLP's forward pass with numpy: cheaper than torch's dispatch for a few rows."""
    for position, (weight, bias) in enumerate(layers):
        X = X @ weight
        X += bias
        if position < len(layers) - 1:
            np.maximum(X, 0.0, out=X)
    return X.astype(np.float32)


def _predict_on_device(module, X, device):
    """Fixed-size float32 chunks on the device, X moved in large blocks."""
    inference = _inference_copy(module, device.type, None)
    return _predict_in_fixed_chunks(inference.module, X, device, DEVICE_CHUNK_ROWS)


def _predict_in_fixed_chunks(module, X, device, chunk_rows):
    """Every forward pass sees exactly ``chunk_rows`` rows, the last chunk padded.

    Rows travel to the device in blocks of at most ``DEVICE_TRANSFER_BYTES``
    (through page-locked staging buffers when the device is a GPU:
    :func:`~skdistill._device.to_device`); the outputs of a block are
    gathered on the device and come back in one copy.
    """
    n_samples, n_features = X.shape
    block_rows = max(chunk_rows, DEVICE_TRANSFER_BYTES // max(1, 4 * n_features))
    block_rows -= block_rows % chunk_rows
    results = []
    with torch.inference_mode():
        for block_start in range(0, n_samples, block_rows):
            block = to_device(
                np.ascontiguousarray(X[block_start : block_start + block_rows]), device
            )
            outputs = []
            for start in range(0, len(block), chunk_rows):
                chunk = block[start : start + chunk_rows]
                n_rows = len(chunk)
                if n_rows < chunk_rows:
                    chunk = torch.cat([chunk, chunk.new_zeros(chunk_rows - n_rows, n_features)])
                outputs.append(module(chunk)[:n_rows])
            results.append(torch.cat(outputs).to("cpu", torch.float32))
    if not results:
        with torch.inference_mode():
            empty = module(torch.zeros(1, n_features, device=device))
        return np.empty((0, empty.shape[1]), dtype=np.float32)
    return torch.cat(results).numpy()


class _Inference(NamedTuple):
    """What a module predicts with: an eval-mode module, the dtype it computes
    in, and for the built-in MLP its folded layers as numpy arrays."""

    module: torch.nn.Module
    dtype: torch.dtype
    layers: list = None


#: module -> {device type: (state key, _Inference)}; weak, so a module's
#: copies go when the module goes.
_INFERENCE_COPIES = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _inference_copy(module, kind, X):
    """The :class:`_Inference` of a module on a device kind, made once per state.

    On the CPU: the built-in MLP folded into float64 layers
    (:func:`~skdistill._student.folded_float64`), or a float64 copy of any
    other module, tried on the first row of X; a module that fails in
    float64 (one that makes float32 tensors of its own) keeps float32. On
    a GPU: the module itself when it is in eval mode, else an eval copy.
    """
    key = _state_key(module)
    with _INFERENCE_LOCK:
        copies = _INFERENCE_COPIES.setdefault(module, {})
        known = copies.get(kind)
        if known is None or known[0] != key:
            known = (key, _make_inference_copy(module, X if kind == "cpu" else None))
            copies[kind] = known
        return known[1]


def _make_inference_copy(module, X):
    in_eval = not any(submodule.training for submodule in module.modules())
    as_it_is = _Inference(module if in_eval else copy.deepcopy(module).eval(), torch.float32)
    if X is None:
        return as_it_is
    folded = folded_float64(module)
    if folded is not None:
        # numpy views of the same float64 tensors: no second copy
        layers = [
            (layer.weight.detach().numpy().T, layer.bias.detach().numpy())
            for layer in folded
            if isinstance(layer, torch.nn.Linear)
        ]
        return _Inference(folded, torch.float64, layers)
    as_float64 = copy.deepcopy(module).eval().double()
    try:
        with torch.inference_mode():
            as_float64(torch.from_numpy(np.asarray(X[:1], dtype=np.float64)))
    except (RuntimeError, TypeError):
        return as_it_is
    return _Inference(as_float64, torch.float64)


def _state_key(module):
    """What a module's inference copy depends on: its tensors, their versions, its flags.

    A walk over ``_modules`` by hand: ``module.modules()`` builds a name for
    every submodule, which costs more than the rest of a one-row prediction
    (this runs at every call).
    """
    key = []
    stack = [module]
    while stack:
        submodule = stack.pop()
        key.append(submodule.training)
        for tensors in (submodule._parameters, submodule._buffers):
            for tensor in tensors.values():
                key += (None, None) if tensor is None else (id(tensor), tensor._version)
        stack.extend(child for child in submodule._modules.values() if child is not None)
    return tuple(key)


def softmax_rows(logits):
    """Each row's softmax, in float64: scipy's ``softmax`` without its dispatch.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_outputs)
        Logits, float32 or float64.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_outputs), dtype float64
        The same values as ``scipy.special.softmax(logits, axis=1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill._predict import softmax_rows
    >>> softmax_rows(np.array([[0.0, np.log(3.0)]])).round(2)
    array([[0.25, 0.75]])
    """
    shifted = np.array(logits, dtype=np.float64)
    shifted -= shifted.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted
