"""Teachers: checking them, fitting unfitted ones on a clone, combining them,
and turning their outputs into the targets a student learns from.

A teacher is any fitted classifier with ``classes_`` and either
``predict_proba`` or ``decision_function`` (an estimator, a Pipeline, a
``FrozenEstimator``, a skorch classifier), any fitted regressor with
``predict``, or a list of them (an ensemble whose probabilities are
averaged, as scikit-learn's soft voting does).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._teacher_checks import (
    check_teacher_list,
    check_teacher_n_features,
    fit_teachers,
    is_fitted,
    teacher_classes,
)
from ._teacher_ensemble import TeacherEnsemble, as_single_teacher, normalised_weights
from ._teacher_labels import (
    OutputsMemo,
    resolve_proba_floor,
    teacher_logits,
    teacher_predictions,
    teacher_proba,
)
from ._teacher_torch import TeacherLogits

__all__ = [
    "OutputsMemo",
    "TeacherEnsemble",
    "TeacherLogits",
    "as_single_teacher",
    "check_teacher_list",
    "check_teacher_n_features",
    "fit_teachers",
    "is_fitted",
    "normalised_weights",
    "resolve_proba_floor",
    "teacher_classes",
    "teacher_logits",
    "teacher_predictions",
    "teacher_proba",
]
