"""Fidelity: how closely a student matches its teacher (Stanton et al. 2021).

Agreement and KL to the teacher, as functions and as scorers for
``GridSearchCV(scoring=...)``.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._metrics import agreement_scorer, neg_kl_scorer, teacher_agreement, teacher_student_kl

__all__ = ["agreement_scorer", "neg_kl_scorer", "teacher_agreement", "teacher_student_kl"]
