"""Hinton's specialists: a generalist student and specialists for the classes it confuses."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._specialist_math import combine_predictions, confusable_class_subsets, dustbin_logit_offset
from ._specialists import SpecialistEnsemble

__all__ = [
    "SpecialistEnsemble",
    "combine_predictions",
    "confusable_class_subsets",
    "dustbin_logit_offset",
]
