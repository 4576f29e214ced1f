"""What only DistilledRegressor does (what it shares with the classifier is in
test_distillers.py): units, outputs, and mixing the teacher with y."""

import pickle

import numpy as np
import pytest
from conftest import PredictionsReturning, small
from sklearn.datasets import make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score

from skdistill import DistilledRegressor, Munge

#: A wider student trained longer than the default small one: regression
#: fidelity is measured as R^2, which needs a closer fit.
CLOSE_FIT = small(hidden_layer_sizes=(32,), max_epochs=60, batch_size=32)


@pytest.fixture(scope="module")
def forest(diabetes_forest):
    return diabetes_forest


def test_student_follows_a_forest(diabetes, forest):
    X, _ = diabetes
    before = pickle.dumps(forest)
    student = DistilledRegressor(forest, **CLOSE_FIT).fit(X)
    assert pickle.dumps(forest) == before  # the teacher is the user's: untouched
    assert student.teacher_ is forest and student.n_outputs_ == 1
    prediction = student.predict(X)
    assert prediction.shape == (len(X),)
    assert r2_score(forest.predict(X), prediction) > 0.8


def test_targets_in_any_units_are_learnt(diabetes):
    # The student learns standardised targets: a 1e6 scale or offset changes nothing.
    X, y = diabetes
    scores = []
    for scale, offset in [(1.0, 0.0), (1e6, 3e7)]:
        shifted = Ridge(alpha=0.1).fit(X, y * scale + offset)
        student = DistilledRegressor(shifted, **CLOSE_FIT).fit(X)
        scores.append(r2_score(shifted.predict(X), student.predict(X)))
    assert min(scores) > 0.95
    assert abs(scores[0] - scores[1]) < 0.02


def test_alpha_mixes_teacher_and_targets():
    X, y = make_regression(n_samples=300, n_features=5, noise=0.0, random_state=0)
    teacher = LinearRegression().fit(X, y)
    y_shifted = y + 3 * y.std()  # the labels disagree with the teacher by a constant
    means = []
    for alpha in (0.0, 0.5, 1.0):
        student = DistilledRegressor(teacher, alpha=alpha, **CLOSE_FIT).fit(X, y_shifted)
        means.append(student.predict(X).mean())
    assert means[2] < means[1] < means[0]
    np.testing.assert_allclose(means[0], y_shifted.mean(), atol=0.3 * y.std())
    np.testing.assert_allclose(means[2], y.mean(), atol=0.3 * y.std())


def test_multi_output_teacher_gives_two_columns():
    X, Y = make_regression(n_samples=200, n_features=4, n_targets=2, random_state=0)
    teacher = LinearRegression().fit(X, Y)
    student = DistilledRegressor(teacher, **CLOSE_FIT).fit(X, Y)
    assert student.n_outputs_ == 2 and student.predict(X).shape == (200, 2)
    assert r2_score(Y, student.predict(X)) > 0.9


def test_unlabelled_and_transfer_rows_learn_from_the_teacher_only(diabetes, forest):
    X, y = diabetes
    student = DistilledRegressor(forest, alpha=0.5, transfer=Munge(size_multiplier=2), **CLOSE_FIT)
    student.fit(X[:200], y[:200], X_unlabeled=X[200:])
    assert np.isfinite(student.student_.history[:, "train_loss"]).all()
    assert r2_score(forest.predict(X), student.predict(X)) > 0.6


def test_a_list_of_teachers_is_averaged_with_weights():
    X, y = make_regression(n_samples=200, n_features=3, random_state=0)
    low, high = LinearRegression().fit(X, y), LinearRegression().fit(X, y + 100.0)
    student = DistilledRegressor([low, high], teacher_weights=[3, 1], **CLOSE_FIT).fit(X)
    np.testing.assert_allclose(student.predict(X).mean(), y.mean() + 25.0, atol=3.0)


@pytest.mark.parametrize(
    "teacher, message",
    [
        (RandomForestClassifier(), "is a classifier"),
        ([], "empty list"),
        (object(), "must be a regressor with predict"),
    ],
)
def test_bad_teachers_are_named_before_training(diabetes, teacher, message):
    X, y = diabetes
    with pytest.raises((TypeError, ValueError), match=message):
        DistilledRegressor(teacher).fit(X, y)


def test_a_teacher_with_a_row_too_many_is_named(diabetes):
    X, _ = diabetes
    teacher = PredictionsReturning(lambda rows: np.ones(len(rows) + 1))
    with pytest.raises(ValueError, match=f"predict returned {len(X) + 1} rows for {len(X)} rows"):
        DistilledRegressor(teacher, **small()).fit(X)
