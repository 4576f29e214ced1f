"""Output-bias calibration, for classes a transfer set lacks.

Hinton, Vinyals & Dean (2015) distilled an MNIST net on a transfer set with
no 3s: the student still recognised 3s from the teacher's soft targets on
other digits, but its bias for class 3 was too low; adding 3.5 to it, the
value that "optimizes overall performance on the test set", took the errors
on test 3s from 133 to 14.

The offset has to be read off rows that contain the class: the transfer
set has none, and on its rows a student that matches the teacher already
matches the teacher's probabilities of the missing class (a rule that
equates mean probabilities there moved the bias of 3 by -0.03 in
``benchmarks/mnist_hinton.py --quick``). :func:`fit_logit_bias` does what
Hinton did by hand, on validation rows instead of the test set, and with
the log-likelihood instead of the error count: it finds the bias vector
that maximises the likelihood of the validation rows' labels (or of the
teacher's probabilities on them, which needs no labels). The objective is
convex in the bias, so the optimum is unique up to a constant shared by all
classes, which softmax ignores.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

__all__ = ["fit_logit_bias"]


def fit_logit_bias(student_logits, targets, sample_weight=None):
    """The bias to add to the student's logits that best fits the targets.

    Minimises ``mean_i w_i * CE(t_i, softmax(z_i + b))`` over ``b``, with
    ``z`` the student's logits and ``t`` the targets of held-out rows:
    Hinton's hand-tuned correction of a class missing from the transfer
    set, found automatically. Only the bias changes, so the student keeps
    what it learnt from the teacher; a class whose rows it already scores
    right keeps a bias near 0.

    Parameters
    ----------
    student_logits : ndarray of shape (n_samples, n_classes)
        The student's logits on the held-out rows.
    targets : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Class indices (hard labels), or probabilities per row (the
        teacher's, for unlabelled rows).
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the rows in the mean (only their ratios matter); None
        weighs them equally.

    Returns
    -------
    bias : ndarray of shape (n_classes,), dtype float32
        Centred (sums to zero).

    Examples
    --------
    A student that never learnt to give class 2 its due: on rows of
    class 2 its logit is 3 below what it should be.

    >>> import numpy as np
    >>> from skdistill.bias import fit_logit_bias
    >>> logits = np.log([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.45, 0.45, 0.1]])
    >>> bias = fit_logit_bias(logits, np.array([0, 1, 2]))
    >>> np.argmax(logits + bias, axis=1).tolist()
    [0, 1, 2]
    """
    logits = np.asarray(student_logits, dtype=np.float64)
    n_samples, n_classes = logits.shape
    targets = np.asarray(targets)
    if targets.ndim == 1:
        one_hot = np.zeros((n_samples, n_classes))
        one_hot[np.arange(n_samples), targets.astype(int)] = 1.0
        targets = one_hot
    targets = targets.astype(np.float64)
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    weights = weights / weights.sum()
    target_mass = weights @ targets  # the gradient's constant part

    def objective(bias):
        shifted = logits + bias
        loss = -np.sum(weights[:, None] * targets * log_softmax(shifted, axis=1))
        gradient = weights @ softmax(shifted, axis=1) - target_mass
        return loss, gradient

    result = minimize(objective, np.zeros(n_classes), jac=True, method="L-BFGS-B")
    bias = result.x
    # A class no row ever shows has an unbounded optimum (-inf); clip, so
    # the student keeps a finite logit for it.
    bias = np.clip(bias - bias.mean(), -50.0, 50.0)
    return bias.astype(np.float32)
