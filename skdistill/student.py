"""The student network and the machinery that trains and runs it.

For custom students: the built-in :class:`MLP` body, the
:class:`StudentModule` that puts it behind its input standardisation, the
skorch net :class:`StudentNet` that trains it (pass one as a distiller's
``student``, e.g. with skorch's ``AccelerateMixin``), and the tensor data
pipeline it trains on.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._net import (
    HoldoutSplit,
    StudentNet,
    TensorBatchIterator,
    TensorDataset,
    directional_derivative,
)
from ._predict import module_device, predict_logits
from ._student import MLP, Standardize, StudentModule, build_student_module

__all__ = [
    "MLP",
    "HoldoutSplit",
    "Standardize",
    "StudentModule",
    "StudentNet",
    "TensorBatchIterator",
    "TensorDataset",
    "build_student_module",
    "directional_derivative",
    "module_device",
    "predict_logits",
]
