"""Distillation losses: soft targets at a temperature, logit matching, and the
regression objective, with the layout of the packed targets they read."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._losses import (
    NO_LABEL,
    ClassificationTargets,
    DistillationLoss,
    RegressionDistillationLoss,
    RegressionTargets,
    classification_criterion,
    logit_mse,
    pack_regression_targets,
    pack_targets,
    regression_criterion,
    soft_target_kl,
)

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
