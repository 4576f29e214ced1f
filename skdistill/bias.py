"""Output-bias correction for classes the transfer set never shows.

Hinton, Vinyals & Dean (2015) distilled an MNIST net on a transfer set with
no 3s at all: the student still knew what a 3 looks like from the teacher's
soft targets on other digits, but its bias for class 3 was too low, and
adding 3.5 to it by hand took the errors on test 3s from 133 to 14.

:func:`absent_class_bias` finds that correction automatically: for each
class the teacher never predicts on the transfer set, it sets the student's
output bias so that the student's mean predicted probability of the class
on the transfer set equals the teacher's. Those means are dominated by the
rows where the class is most plausible (a 5 or an 8 that looks like a 3),
the rows that sit nearest the class the student never saw, which is where
its offset shows.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy.special import log_softmax, logsumexp

__all__ = ["absent_class_bias", "absent_classes"]

#: Fixed-point iterations of the bias search, and the tolerance on the log
#: ratio of mean probabilities at which it stops.
MAX_ITERATIONS = 100
TOLERANCE = 1e-6


def absent_classes(teacher_logits):
    """Indices of the classes that are never the teacher's argmax.

    Parameters
    ----------
    teacher_logits : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    absent : ndarray of int

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.bias import absent_classes
    >>> absent_classes(np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])).tolist()
    [2]
    """
    n_classes = teacher_logits.shape[1]
    seen = np.unique(np.argmax(teacher_logits, axis=1))
    return np.setdiff1d(np.arange(n_classes), seen)


def absent_class_bias(student_logits, teacher_logits, classes=None):
    """Bias to add to the student's logits so absent classes get their share.

    For the chosen classes, the returned bias ``b`` (zero elsewhere)
    solves ``mean_x softmax(z(x) + b)_c = mean_x p(x)_c``, with ``z`` the
    student's logits and ``p`` the teacher's probabilities on the transfer
    set. Each step adds ``log(target_c / current_c)`` to ``b_c``: the mean
    probability of a class grows monotonically with its bias, and the step
    is exact for a class of small probability, so a few steps suffice.

    Parameters
    ----------
    student_logits, teacher_logits : ndarray of shape (n_samples, n_classes)
        On the transfer set.
    classes : array-like of int, default=None
        Indices of the classes to correct; by default those the teacher
        never predicts (:func:`absent_classes`).

    Returns
    -------
    bias : ndarray of shape (n_classes,), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.bias import absent_class_bias
    >>> teacher = np.log([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])
    >>> student = np.log([[0.75, 0.24, 0.01], [0.24, 0.75, 0.01]])
    >>> bias = absent_class_bias(student, teacher)
    >>> bias[:2].tolist(), round(float(bias[2]), 2)
    ([0.0, 0.0], 2.4)
    """
    student_logits = np.asarray(student_logits, dtype=np.float64)
    teacher_logits = np.asarray(teacher_logits, dtype=np.float64)
    classes = absent_classes(teacher_logits) if classes is None else np.asarray(classes)
    bias = np.zeros(student_logits.shape[1])
    if classes.size == 0:
        return bias.astype(np.float32)
    log_target = _log_mean_proba(teacher_logits)[classes]
    for _ in range(MAX_ITERATIONS):
        step = log_target - _log_mean_proba(student_logits + bias)[classes]
        bias[classes] += step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return bias.astype(np.float32)


def _log_mean_proba(logits):
    """log of the mean softmax probability of each class, computed stably."""
    return logsumexp(log_softmax(logits, axis=1), axis=0) - np.log(len(logits))
