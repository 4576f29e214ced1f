"""What every distilled estimator shares: the fitted teacher belongs to the user."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn.base import clone
from sklearn.utils import get_tags

from ._html_repr import visual_block
from ._teacher_checks import as_teacher_list, clone_unfitted, is_fitted

__all__ = ["TeacherMixin"]


class TeacherMixin:
    """Mixin for estimators with a ``teacher`` parameter.

    - ``clone`` keeps a fitted teacher fitted and shared, as
      ``sklearn.frozen.FrozenEstimator`` does, so that ``GridSearchCV``
      never refits nor copies it; an unfitted teacher is cloned as usual.
    - The ``target_tags.required`` tag says whether ``y`` is needed: only
      when some teacher is not fitted. ``input_tags.allow_nan``: whether
      missing values are taken, by the ``preprocessor`` (``"auto"`` imputes
      them) and by every teacher.
    - scikit-learn's HTML representation (a notebook's display,
      ``sklearn.utils.estimator_html_repr``) shows the teacher (each of a
      list) and the student side by side, the fitted ones after ``fit``,
      then any other estimator parameter (``transfer``, ``generalist``).

    Put it before ``BaseEstimator`` in the bases.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator, clone
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill._base import TeacherMixin
    >>> class Wrapper(TeacherMixin, BaseEstimator):
    ...     def __init__(self, teacher, size=1):
    ...         self.teacher = teacher
    ...         self.size = size
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> clone(Wrapper(teacher)).teacher is teacher
    True
    """

    def __sklearn_clone__(self):
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        params = {name: clone(value, safe=False) for name, value in params.items()}
        params["teacher"] = _clone_teacher(teacher)
        return type(self)(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            teachers = as_teacher_list(self.teacher)
            tags.target_tags.required = not (teachers and all(map(is_fitted, teachers)))
            tags.input_tags.allow_nan = _takes_nan(getattr(self, "preprocessor", None)) and all(
                map(_takes_nan, teachers)
            )
        except Exception:  # an invalid teacher is reported by fit, not by tags
            tags.target_tags.required = True
        return tags

    def _sk_visual_block_(self):
        return visual_block(self)


def _takes_nan(estimator):
    """Whether a teacher or a ``preprocessor`` parameter takes NaN in X."""
    if isinstance(estimator, str):
        return estimator == "auto"
    try:
        return estimator is not None and bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # not a scikit-learn estimator: no tags to tell
        return False


def _clone_teacher(teacher):
    """Keep fitted teachers (shared), clone unfitted ones, element-wise for a list."""
    if isinstance(teacher, (list, tuple)):
        return type(teacher)(_clone_teacher(estimator) for estimator in teacher)
    if is_fitted(teacher):
        return teacher
    return clone_unfitted(teacher)
