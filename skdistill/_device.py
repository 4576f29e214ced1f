"""Host arrays onto a device: one copy path for training data and predictions.

A copy from ordinary (pageable) host memory to a GPU goes through a staging
buffer the driver pins and fills on the host, so the copy and the host work
do not overlap; ``tensor.pin_memory()`` first copies the whole array into
page-locked memory, which can cost as much as it saves. :func:`to_device`
streams the array through two page-locked buffers instead: while one block
travels to the GPU (asynchronously), the next is copied into the other.
The values are the same as a plain copy's.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch

__all__ = ["to_device"]

#: Size of each of the two page-locked staging buffers.
STAGING_BYTES = 64 << 20


def to_device(array, device, staging_bytes=STAGING_BYTES):
    """A host array (or CPU tensor) as a tensor on ``device``, same dtype and values.

    On a CUDA device the array travels in blocks through two page-locked
    buffers, each block's copy asynchronous on the current stream, so that
    filling one buffer overlaps the transfer from the other. Elsewhere it is
    ``torch.as_tensor(array, device=device)`` (no copy for a numpy array on
    the CPU).

    Parameters
    ----------
    array : ndarray or Tensor
        Host data of any shape and a dtype torch takes.
    device : str or torch.device
        Where the tensor goes.
    staging_bytes : int, default=STAGING_BYTES
        Size of each staging buffer (CUDA only).

    Returns
    -------
    tensor : Tensor
        On ``device``. On CUDA, work queued later on the current stream
        sees the whole copy; the host may return before it is done.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill._device import to_device
    >>> to_device(np.arange(3, dtype="float32"), "cpu")
    tensor([0., 1., 2.])
    """
    device = torch.device(device)
    if device.type != "cuda":
        return torch.as_tensor(array, device=device)
    if isinstance(array, np.ndarray):
        array = np.ascontiguousarray(array)
    source = torch.as_tensor(array).contiguous()
    out = torch.empty(source.shape, dtype=source.dtype, device=device)
    flat_in, flat_out = source.reshape(-1), out.view(-1)
    n_values = flat_in.numel()
    if n_values == 0:
        return out
    block = max(1, staging_bytes // source.element_size())
    buffers, copied = [None, None], [None, None]
    for index, begin in enumerate(range(0, n_values, block)):
        which = index % 2
        part = flat_in[begin : begin + block]
        if buffers[which] is None:
            size = min(block, n_values)
            buffers[which] = torch.empty(size, dtype=source.dtype, pin_memory=True)
        elif copied[which] is not None:
            copied[which].synchronize()  # this buffer's previous block has left
        staging = buffers[which][: part.numel()]
        staging.copy_(part)
        flat_out[begin : begin + part.numel()].copy_(staging, non_blocking=True)
        copied[which] = torch.cuda.Event()
        copied[which].record()
    return out
