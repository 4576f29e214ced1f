"""Tests of the fidelity metrics and scorers."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate

from skdistill import DistilledClassifier
from skdistill.metrics import (
    agreement_scorer,
    neg_kl_scorer,
    teacher_agreement,
    teacher_student_kl,
)


class TableTeacher:
    """A fitted classifier whose probabilities for row i are ``proba[X[i, 0]]``."""

    def __init__(self, classes, proba):
        self.classes_ = np.asarray(classes)
        self.proba = np.asarray(proba, dtype=float)

    def predict_proba(self, X):
        return self.proba[np.asarray(X)[:, 0].astype(int)]


class TableStudent:
    """A 'distilled estimator' with fixed outputs, to check the scorers by hand."""

    def __init__(self, teacher, labels, proba):
        self.teacher_ = teacher
        self.classes_ = np.array(["no", "yes"])
        self.labels = np.asarray(labels)
        self.proba = np.asarray(proba, dtype=float)

    def predict(self, X):
        return self.labels[np.asarray(X)[:, 0].astype(int)]

    def predict_proba(self, X):
        return self.proba[np.asarray(X)[:, 0].astype(int)]


ROWS = np.arange(3).reshape(-1, 1)
TEACHER_PROBA = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]  # labels: no, yes, no
STUDENT_PROBA = [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]


def test_teacher_agreement_by_hand():
    assert teacher_agreement(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5
    assert teacher_agreement([1, 2], [1, 2]) == 1.0
    assert teacher_agreement([1, 2], [2, 1]) == 0.0


def test_teacher_agreement_errors():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        teacher_agreement([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one row"):
        teacher_agreement([], [])


def test_teacher_student_kl_by_hand():
    # Row 1: 1*log(1/0.5) + 0 (0 log 0 = 0); row 2: equal rows, 0.
    kl = teacher_student_kl([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    assert kl == pytest.approx(np.log(2) / 2)
    # 0.2 log(0.2/0.5) + 0.8 log(0.8/0.5)
    expected = 0.2 * np.log(0.4) + 0.8 * np.log(1.6)
    assert teacher_student_kl([[0.2, 0.8]], [[0.5, 0.5]]) == pytest.approx(expected)


def test_teacher_student_kl_is_zero_for_equal_rows_even_with_zeros():
    assert teacher_student_kl([[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]) == 0.0


def test_teacher_student_kl_clips_the_student_at_eps():
    # The student gives 0 to a class the teacher gives 0.5.
    kl = teacher_student_kl([[0.5, 0.5]], [[1.0, 0.0]], eps=1e-3)
    assert kl == pytest.approx(0.5 * np.log(0.5) + 0.5 * np.log(0.5 / 1e-3))
    assert np.isfinite(teacher_student_kl([[0.5, 0.5]], [[1.0, 0.0]]))


@pytest.mark.parametrize(
    "p_teacher, p_student, eps, message",
    [
        ([[0.5, 0.5]], [[0.2, 0.3, 0.5]], 1e-15, "must match"),
        ([[1.5, -0.5]], [[0.5, 0.5]], 1e-15, "p_teacher has negative"),
        ([[0.5, 0.5]], [[0.5, 0.5]], 0.0, "eps must be positive"),
        ([0.5, 0.5], [0.5, 0.5], 1e-15, "2D array"),
    ],
)
def test_teacher_student_kl_errors(p_teacher, p_student, eps, message):
    with pytest.raises(ValueError, match=message):
        teacher_student_kl(p_teacher, p_student, eps=eps)


def test_scorers_by_hand():
    teacher = TableTeacher(["no", "yes"], TEACHER_PROBA)
    student = TableStudent(teacher, ["no", "no", "no"], STUDENT_PROBA)
    assert agreement_scorer(student, ROWS) == pytest.approx(2 / 3)
    kl_rows = [
        0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5),
        0.2 * np.log(0.2 / 0.5) + 0.8 * np.log(0.8 / 0.5),
        0.6 * np.log(0.6 / 0.5) + 0.4 * np.log(0.4 / 0.5),
    ]
    assert neg_kl_scorer(student, ROWS, None) == pytest.approx(-np.mean(kl_rows))


def test_scorers_average_a_list_of_teachers():
    # Averaged: [[0.5, 0.5], [0.3, 0.7], [0.7, 0.3]]; argmax no, yes, no
    # (row 0 is a tie, which argmax gives to the first class).
    teachers = [
        TableTeacher(["no", "yes"], [[0.8, 0.2], [0.2, 0.8], [0.6, 0.4]]),
        TableTeacher(["no", "yes"], [[0.2, 0.8], [0.4, 0.6], [0.8, 0.2]]),
    ]
    student = TableStudent(teachers, ["no", "yes", "yes"], STUDENT_PROBA)
    assert agreement_scorer(student, ROWS) == pytest.approx(2 / 3)
    kl_rows = [0.0, 0.3 * np.log(0.6) + 0.7 * np.log(1.4), 0.7 * np.log(1.4) + 0.3 * np.log(0.6)]
    assert neg_kl_scorer(student, ROWS) == pytest.approx(-np.mean(kl_rows))


@pytest.fixture(scope="module")
def iris_subset():
    X, y = load_iris(return_X_y=True)
    rows = np.random.RandomState(0).permutation(len(X))[:100]
    teacher = LogisticRegression(max_iter=1000).fit(X, y)
    return X[rows], y[rows], teacher


def small_student(teacher, **params):
    return DistilledClassifier(
        teacher, max_epochs=2, hidden_layer_sizes=(8,), random_state=0, **params
    )


def test_scorers_need_a_fitted_distilled_estimator(iris_subset):
    X, y, teacher = iris_subset
    with pytest.raises(NotFittedError, match="not fitted"):
        agreement_scorer(small_student(teacher), X)
    with pytest.raises(TypeError, match="no teacher_ attribute"):
        neg_kl_scorer(teacher, X)


def test_agreement_scorer_matches_the_teachers_predictions(iris_subset):
    X, y, teacher = iris_subset
    student = small_student(teacher).fit(X)
    expected = np.mean(teacher.predict(X) == student.predict(X))
    assert agreement_scorer(student, X) == pytest.approx(expected)


def test_scorers_in_grid_search(iris_subset):
    X, y, teacher = iris_subset
    search = GridSearchCV(
        small_student(teacher), {"temperature": [1, 4]}, scoring=agreement_scorer, cv=2
    )
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (2,)
    assert np.all((0 <= scores) & (scores <= 1))
    assert search.best_params_["temperature"] in (1, 4)


def test_scorers_in_cross_validate(iris_subset):
    X, y, teacher = iris_subset
    results = cross_validate(
        small_student(teacher),
        X,
        y,
        cv=2,
        scoring={"agreement": agreement_scorer, "kl": neg_kl_scorer},
        error_score="raise",
    )
    assert np.all((0 <= results["test_agreement"]) & (results["test_agreement"] <= 1))
    assert np.all(results["test_kl"] < 0)
