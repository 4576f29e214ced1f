"""Fidelity: how closely a student matches its teacher (Stanton et al. 2021).

Accuracy says how good a student is; fidelity says how well it learnt
what it was taught. Stanton et al. ("Does Knowledge Distillation Really
Work?", NeurIPS 2021) measure it on held-out rows as top-1 *agreement*
with the teacher and as the KL divergence from the teacher's predictive
distribution to the student's. Students often agree with their teacher on
only 80-90% of test rows, even with ample data.

The scorers compare a fitted distilled estimator with its own teacher,
``estimator.teacher_``, and follow scikit-learn's scorer signature
``scorer(estimator, X, y)``, so they can be passed as ``scoring`` to
``GridSearchCV`` or ``cross_validate``; ``y`` is ignored.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy.special import rel_entr
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_array, check_consistent_length, column_or_1d

from ._teacher_labels import teacher_proba

__all__ = [
    "agreement_scorer",
    "neg_kl_scorer",
    "teacher_agreement",
    "teacher_student_kl",
]

#: Default floor of the student's probabilities in the KL: where the
#: student gives a class less than this, the class costs at most
#: ``p_teacher * log(p_teacher / 1e-15)``, about ``34.5 * p_teacher``.
KL_EPS = 1e-15


def teacher_agreement(y_teacher, y_student):
    """Share of rows where the student predicts the teacher's label.

    Parameters
    ----------
    y_teacher : array-like of shape (n_samples,)
        The teacher's predicted labels.
    y_student : array-like of shape (n_samples,)
        The student's predicted labels.

    Returns
    -------
    agreement : float
        In ``[0, 1]``; 1 when the two always agree.

    Examples
    --------
    >>> from skdistill.metrics import teacher_agreement
    >>> teacher_agreement(["a", "b", "b", "c"], ["a", "b", "c", "c"])
    0.75
    """
    y_teacher = column_or_1d(y_teacher)
    y_student = column_or_1d(y_student)
    check_consistent_length(y_teacher, y_student)
    if y_teacher.shape[0] == 0:
        raise ValueError("teacher_agreement needs at least one row; got empty label arrays.")
    return float(np.mean(y_teacher == y_student))


def teacher_student_kl(p_teacher, p_student, *, eps=KL_EPS):
    """Mean over rows of ``KL(p_teacher || p_student)``, summed over classes.

    ``KL(p || q) = sum_k p_k * log(p_k / q_k)``, in nats. A class the
    teacher gives probability 0 adds nothing (``0 * log 0 = 0``), whatever
    the student gives it. The student's probabilities are clipped below
    at ``eps`` so the result stays finite where the student gives a class
    the teacher believes in probability 0.

    Parameters
    ----------
    p_teacher : array-like of shape (n_samples, n_classes)
        The teacher's class probabilities, rows summing to 1.
    p_student : array-like of shape (n_samples, n_classes)
        The student's class probabilities, columns in the same order.
    eps : float, default=1e-15
        Floor of the student's probabilities.

    Returns
    -------
    kl : float
        Non-negative; 0 when the two distributions are equal on every row.

    Examples
    --------
    >>> from skdistill.metrics import teacher_student_kl
    >>> round(teacher_student_kl([[0.5, 0.5]], [[0.25, 0.75]]), 6)
    0.143841
    >>> teacher_student_kl([[1.0, 0.0]], [[1.0, 0.0]])
    0.0
    """
    p_teacher = _check_proba(p_teacher, "p_teacher")
    p_student = _check_proba(p_student, "p_student")
    if p_teacher.shape != p_student.shape:
        raise ValueError(
            f"p_teacher has shape {p_teacher.shape} and p_student has shape "
            f"{p_student.shape}; they must match (same rows, same classes)."
        )
    if not eps > 0:
        raise ValueError(f"eps must be positive; got {eps!r}.")
    per_row = rel_entr(p_teacher, np.maximum(p_student, eps)).sum(axis=1)
    return float(per_row.mean())


def agreement_scorer(estimator, X, y=None):
    """Agreement of a distilled estimator with its own teacher on X.

    A scorer with scikit-learn's signature, for ``scoring=`` in
    ``GridSearchCV`` or ``cross_validate``; higher is better.

    Parameters
    ----------
    estimator : fitted distilled estimator
        Has ``teacher_`` (a fitted classifier or a list of them),
        ``classes_`` and ``predict``.
    X : array-like of shape (n_samples, n_features)
        Rows to compare on, passed as they are to teacher and student.
    y : ignored
        Present for the scorer signature; fidelity needs no labels.

    Returns
    -------
    agreement : float
        Share of rows where ``estimator.predict`` gives the teacher's most
        probable class.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.metrics import agreement_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=1000).fit(X, y)
    >>> student = DistilledClassifier(teacher, hidden_layer_sizes=(8,),
    ...                               max_epochs=2, random_state=0)
    >>> scores = cross_val_score(student, X, y, cv=2, scoring=agreement_scorer)
    >>> bool(((0 <= scores) & (scores <= 1)).all())
    True
    """
    p_teacher = teacher_proba(_fitted_teacher(estimator), X)
    y_teacher = np.asarray(estimator.classes_)[np.argmax(p_teacher, axis=1)]
    return teacher_agreement(y_teacher, estimator.predict(X))


def neg_kl_scorer(estimator, X, y=None):
    """Negative mean KL from a distilled estimator's teacher to it, on X.

    A scorer with scikit-learn's signature, for ``scoring=`` in
    ``GridSearchCV`` or ``cross_validate``; negated so that higher is
    better, as scikit-learn's ``neg_*`` scorers.

    Parameters
    ----------
    estimator : fitted distilled estimator
        Has ``teacher_`` (a fitted classifier or a list of them) and
        ``predict_proba``, with columns in the teacher's class order.
    X : array-like of shape (n_samples, n_features)
        Rows to compare on, passed as they are to teacher and student.
    y : ignored
        Present for the scorer signature; fidelity needs no labels.

    Returns
    -------
    neg_kl : float
        ``-teacher_student_kl(teacher proba, student proba)``; at most 0.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.metrics import neg_kl_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=1000).fit(X, y)
    >>> student = DistilledClassifier(teacher, hidden_layer_sizes=(8,),
    ...                               max_epochs=2, random_state=0).fit(X)
    >>> neg_kl_scorer(student, X) <= 0
    True
    """
    p_teacher = teacher_proba(_fitted_teacher(estimator), X)
    return -teacher_student_kl(p_teacher, estimator.predict_proba(X))


def _fitted_teacher(estimator):
    """The estimator's fitted teacher, or a clear error saying why there is none."""
    if hasattr(estimator, "teacher_"):
        return estimator.teacher_
    name = type(estimator).__name__
    if hasattr(estimator, "teacher"):
        raise NotFittedError(
            f"This {name} instance is not fitted yet, so it has no teacher_ to be "
            "compared with; call fit before scoring it."
        )
    raise TypeError(
        f"The fidelity scorers compare a distilled estimator with its teacher_, "
        f"but {name} has no teacher_ attribute; pass a fitted DistilledClassifier."
    )


def _check_proba(proba, name):
    proba = check_array(proba, dtype=np.float64, input_name=name)
    if (proba < 0).any():
        raise ValueError(f"{name} has negative values; it must hold probabilities.")
    return proba
