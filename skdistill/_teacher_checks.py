"""Checking the ``teacher`` parameter, and fitting unfitted teachers on a clone.

A teacher is any fitted classifier with ``classes_`` and either
``predict_proba`` or ``decision_function`` (an estimator, a Pipeline, a
``FrozenEstimator``, a skorch classifier), any fitted regressor with
``predict``, or a list of them; an unfitted one is fitted on a clone.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy

import numpy as np
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from .utils.fixes import _is_fitted

__all__ = [
    "as_teacher_list",
    "check_teacher_list",
    "check_teacher_n_features",
    "clone_unfitted",
    "fit_teachers",
    "is_fitted",
    "teacher_classes",
]


def is_fitted(estimator):
    """Whether ``estimator`` is a fitted estimator, by scikit-learn's rules.

    Parameters
    ----------
    estimator : object
        Any estimator.

    Returns
    -------
    fitted : bool
        Whether ``check_is_fitted`` accepts it; True for an object without
        ``fit``, which is used as it is.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import is_fitted
    >>> is_fitted(LogisticRegression())
    False
    >>> is_fitted(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    True
    """
    if not hasattr(estimator, "fit"):
        return True  # it cannot be fitted, so it is used as it is
    # The attribute test first: check_is_fitted reads the estimator's tags,
    # which costs more than a prediction of one row, and an estimator's
    # tags ask this of its teacher at every call.
    if _is_fitted(estimator):
        return True
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def as_teacher_list(teacher):
    """The teacher parameter as a list of estimators (one for a single teacher)."""
    if isinstance(teacher, (list, tuple)):
        return list(teacher)
    return [teacher]


def check_teacher_list(teacher, kind="classifier"):
    """Check the ``teacher`` parameter before any work is done.

    Parameters
    ----------
    teacher : estimator or list of estimators
        The ``teacher`` parameter of a distilled estimator.
    kind : {"classifier", "regressor"}, default="classifier"
        What the teachers must be: classifiers with ``predict_proba`` or
        ``decision_function``, or regressors with ``predict``.

    Returns
    -------
    teachers : list of estimators
        The teacher(s), as a list.

    Raises
    ------
    ValueError
        For an empty list, or for an estimator of the other kind.
    TypeError
        For an object without the methods the kind needs.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression, Ridge
    >>> from skdistill.teachers import check_teacher_list
    >>> check_teacher_list(LogisticRegression())
    [LogisticRegression()]
    >>> check_teacher_list([Ridge(), Ridge(alpha=2.0)], kind="regressor")
    [Ridge(), Ridge(alpha=2.0)]
    """
    other, distiller = _OTHER_KIND[kind]
    teachers = as_teacher_list(teacher)
    if not teachers:
        raise ValueError(
            f"The teacher parameter is an empty list; pass a {kind} or a non-empty list of {kind}s."
        )
    for position, estimator in enumerate(teachers):
        where = "teacher" if len(teachers) == 1 else f"teacher[{position}]"
        if isinstance(estimator, type):
            raise TypeError(
                f"{where} is the class {estimator.__name__}, not an estimator; "
                f"pass an instance, e.g. {estimator.__name__}()."
            )
        if _estimator_type(estimator) == other:
            raise ValueError(
                f"{where} is a {other} ({type(estimator).__name__}); {distiller} "
                f"needs a {kind} teacher."
            )
        if not _has_outputs(estimator, kind):
            needs = (
                "a classifier with predict_proba or decision_function"
                if kind == "classifier"
                else "a regressor with predict"
            )
            raise TypeError(f"{where} must be {needs}; got {type(estimator).__name__}.")
    return teachers


#: For each kind of teacher: the other kind, and the distiller that takes it.
_OTHER_KIND = {
    "classifier": ("regressor", "DistilledClassifier"),
    "regressor": ("classifier", "DistilledRegressor"),
}


def _has_outputs(estimator, kind):
    if kind == "regressor":
        return hasattr(estimator, "predict")
    has_output = hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")
    return has_output and (
        _estimator_type(estimator) == "classifier" or hasattr(estimator, "classes_")
    )


def _estimator_type(estimator):
    """ "classifier", "regressor" or None, also for objects without tags."""
    try:
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
    except AttributeError:  # not a scikit-learn estimator: judged by its methods
        pass
    return None


def fit_teachers(teachers, X, y, sample_weight=None, estimator_name="DistilledClassifier"):
    """Fitted teachers: fitted ones as they are, unfitted ones fitted on a clone.

    The user's objects are never modified: a fitted teacher is returned
    as is (shared, never refit), an unfitted one is cloned and the clone
    is fitted on ``(X, y)``.

    Parameters
    ----------
    teachers : list of estimators
        As returned by :func:`check_teacher_list`.
    X : array-like of shape (n_samples, n_features)
        Rows to fit unfitted teachers on.
    y : array-like of shape (n_samples,) or None
        Labels to fit unfitted teachers on.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the fit of an unfitted teacher that accepts it.
    estimator_name : str, default="DistilledClassifier"
        The distilled estimator, named in the error for a missing y.

    Returns
    -------
    fitted : list of estimators
        In the order of ``teachers``: each fitted teacher itself, each
        unfitted one replaced by its fitted clone.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import fit_teachers
    >>> user_teacher = LogisticRegression()
    >>> [fitted] = fit_teachers([user_teacher], [[0.0], [1.0]], [0, 1])
    >>> fitted is user_teacher, hasattr(user_teacher, "coef_")
    (False, False)
    """
    fitted = []
    for estimator in teachers:
        if is_fitted(estimator):
            fitted.append(estimator)
            continue
        if y is None:
            raise ValueError(
                f"The teacher {type(estimator).__name__} is not fitted, so "
                f"{estimator_name} requires y to be passed, but the target y "
                "is None. Pass y, or a fitted teacher."
            )
        estimator = clone_unfitted(estimator)
        fit_params = {}
        if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
            fit_params["sample_weight"] = sample_weight
        fitted.append(estimator.fit(X, y, **fit_params))
    return fitted


def clone_unfitted(estimator):
    """An unfitted copy of an unfitted estimator: scikit-learn's clone, else a deep copy.

    clone checks that the constructor stores each parameter as given (by
    identity); CatBoost 1.2.10 copies its list parameters (``cat_features``),
    so clone refuses it (catboost/catboost#3078) where a deep copy of the
    unfitted estimator is the same fresh copy.
    """
    try:
        return clone(estimator, safe=False)
    except RuntimeError:
        if is_fitted(estimator):
            raise
        return copy.deepcopy(estimator)


def teacher_classes(teachers):
    """The classes shared by every teacher, checked to agree.

    Parameters
    ----------
    teachers : list of fitted estimators
        Fitted classifiers, each with a one-dimensional ``classes_``.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        The first teacher's ``classes_``, which every other teacher's
        equals, in the same order; None for an empty list.

    Raises
    ------
    TypeError
        For a teacher without ``classes_``.
    ValueError
        For multi-output ``classes_``, or teachers that disagree.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import teacher_classes
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], ["a", "b"])
    >>> teacher_classes([teacher]).tolist()
    ['a', 'b']
    """
    classes = None
    for position, estimator in enumerate(teachers):
        if not hasattr(estimator, "classes_"):
            raise TypeError(
                f"The teacher {type(estimator).__name__} has no classes_ attribute; "
                "a teacher must be a fitted classifier."
            )
        own = np.asarray(estimator.classes_)
        if own.ndim != 1:
            raise ValueError(
                f"The teacher {type(estimator).__name__} has classes_ of shape "
                f"{own.shape}; multi-output teachers are not supported."
            )
        if classes is None:
            classes = own
        elif own.shape != classes.shape or not np.array_equal(own, classes):
            raise ValueError(
                "The teachers disagree on classes_: teacher[0] has "
                f"{classes.tolist()} and teacher[{position}] has {own.tolist()}."
            )
    return classes


def check_teacher_n_features(teachers, n_features):
    """Refuse X whose number of features differs from what a teacher was fitted on.

    Parameters
    ----------
    teachers : list of fitted estimators
        The teachers; one without ``n_features_in_`` is not checked.
    n_features : int
        The number of features of X.

    Raises
    ------
    ValueError
        Naming the teacher and both numbers.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import check_teacher_n_features
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> check_teacher_n_features([teacher], 1)
    """
    for estimator in teachers:
        expected = getattr(estimator, "n_features_in_", None)
        if expected is not None and expected != n_features:
            raise ValueError(
                f"X has {n_features} features, but the teacher "
                f"{type(estimator).__name__} was fitted with {expected} features."
            )
