"""``TeacherEnsemble``: fitted classifiers combined into one teacher."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin

from ._teacher_checks import is_fitted, teacher_classes
from ._teacher_outputs import raw_outputs

__all__ = ["TeacherEnsemble", "as_single_teacher", "normalised_weights"]


class TeacherEnsemble(ClassifierMixin, BaseEstimator):
    """Fitted classifiers combined into one teacher, without refitting them.

    Probabilities are averaged, arithmetically (as scikit-learn's soft
    voting) or geometrically (a weighted mean of log-probabilities,
    renormalised). A member with only ``decision_function`` contributes
    the softmax of its scores.

    Parameters
    ----------
    estimators : list of fitted classifiers
        They must agree on ``classes_``.
    weights : array-like of shape (n_estimators,), default=None
        Weight of each member; equal weights when None.
    averaging : {"arithmetic", "geometric"}, default="arithmetic"
        How the members' probabilities are combined: their weighted mean,
        or the softmax of the weighted mean of their log-probabilities (a
        class that a member of positive weight gives probability zero then
        gets zero).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from skdistill.teachers import TeacherEnsemble
    >>> X, y = load_iris(return_X_y=True)
    >>> members = [LogisticRegression(max_iter=500).fit(X, y), GaussianNB().fit(X, y)]
    >>> ensemble = TeacherEnsemble(members, weights=[2, 1], averaging="geometric")
    >>> ensemble.predict_proba(X[:2]).sum(axis=1)
    array([1., 1.])
    """

    def __init__(self, estimators, weights=None, averaging="arithmetic"):
        self.estimators = estimators
        self.weights = weights
        self.averaging = averaging

    def __sklearn_is_fitted__(self):
        return all(map(is_fitted, self.estimators))

    @property
    def classes_(self):
        return teacher_classes(self.estimators)

    @property
    def n_features_in_(self):
        counts = {getattr(estimator, "n_features_in_", None) for estimator in self.estimators}
        counts.discard(None)
        if len(counts) != 1:
            raise AttributeError("The members do not declare one n_features_in_.")
        return counts.pop()

    def predict_proba(self, X):
        """Averaged class probabilities of the members.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows as the members take them: each is called on X as given.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The members' probabilities (softmax of the scores of one with
            only ``decision_function``) averaged as ``averaging`` says;
            columns in the order of ``classes_``.
        """
        weights = normalised_weights(self.weights, len(self.estimators))
        probas = []
        for estimator in self.estimators:
            kind, values = raw_outputs(estimator, X)
            probas.append(values if kind == "proba" else softmax(values, axis=1))
        if self.averaging == "arithmetic":
            return np.tensordot(weights, probas, axes=1)
        with np.errstate(divide="ignore"):
            log_probas = np.log(probas)
        # A zero from a member with positive weight makes the geometric mean
        # zero; 0 * -inf from a zero-weight member must not make it NaN.
        log_mean = np.tensordot(
            weights, np.where(weights[:, None, None] > 0, log_probas, 0), axes=1
        )
        return softmax(log_mean, axis=1)

    def predict(self, X):
        """Most probable class of the averaged distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows as the members take them, as for :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def normalised_weights(weights, n_teachers):
    """Teacher weights summing to one (equal ones for None), checked.

    Parameters
    ----------
    weights : array-like of shape (n_teachers,) or None
        Non-negative weights, one per teacher and not all zero; None for
        equal weights.
    n_teachers : int
        Number of teachers, the length ``weights`` must have.

    Returns
    -------
    weights : ndarray of shape (n_teachers,)
        ``weights`` as float64 divided by their sum.

    Raises
    ------
    ValueError
        For weights of the wrong length, a negative weight, or all zeros.

    Examples
    --------
    >>> from skdistill.teachers import normalised_weights
    >>> normalised_weights([3, 1], 2).tolist()
    [0.75, 0.25]
    """
    if weights is None:
        return np.full(n_teachers, 1 / n_teachers)
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n_teachers,) or (array < 0).any() or not array.sum() > 0:
        raise ValueError(
            f"teacher_weights must be {n_teachers} non-negative numbers, "
            f"one per teacher, not all zero; got {weights!r}."
        )
    return array / array.sum()


def as_single_teacher(teacher, weights=None, averaging="arithmetic"):
    """One classifier: the teacher itself, or a :class:`TeacherEnsemble` of a list.

    Parameters
    ----------
    teacher : fitted classifier or list of fitted classifiers
        A classifier, returned as is, or a list (or tuple) of them, which
        become the members of a :class:`TeacherEnsemble` (not copied).
    weights : array-like, default=None
        Member weights, for a list.
    averaging : {"arithmetic", "geometric"}, default="arithmetic"
        How a list's probabilities are combined; see :class:`TeacherEnsemble`.

    Returns
    -------
    teacher : fitted classifier
        ``teacher`` itself, or the :class:`TeacherEnsemble` of the list.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import as_single_teacher
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> as_single_teacher(teacher) is teacher
    True
    >>> type(as_single_teacher([teacher, teacher])).__name__
    'TeacherEnsemble'
    """
    if isinstance(teacher, (list, tuple)):
        return TeacherEnsemble(list(teacher), weights=weights, averaging=averaging)
    return teacher
