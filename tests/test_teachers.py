import re

import numpy as np
import pytest
from conftest import FixedProba, PredictionsReturning, ProbaReturning, ScoresReturning
from scipy.special import expit, softmax
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from skdistill.teachers import (
    check_teacher_list,
    fit_teachers,
    resolve_proba_floor,
    teacher_classes,
    teacher_logits,
    teacher_predictions,
    teacher_proba,
)


def test_only_exact_zeros_are_floored():
    proba = np.array([[0.9, 1e-9, 0.1 - 1e-9, 0.0]])
    logits = teacher_logits(FixedProba(proba), np.zeros((1, 1)), proba_floor=1e-12)
    recovered = softmax(logits.astype(np.float64), axis=1)
    # the tiny positive probability keeps its value; the zero becomes the floor
    np.testing.assert_allclose(recovered[0, :3] / recovered[0, 0], proba[0, :3] / 0.9, rtol=1e-5)
    np.testing.assert_allclose(recovered[0, 3] / recovered[0, 0], 1e-12 / 0.9, rtol=1e-4)


def test_auto_floor_is_half_the_smallest_positive_probability():
    proba = np.array([[0.9998, 0.0002, 0.0], [0.5, 0.5, 0.0]])
    logits = teacher_logits(FixedProba(proba), np.zeros((2, 1)))
    np.testing.assert_allclose(logits[0, 1] - logits[0, 2], np.log(2), rtol=1e-4)
    assert resolve_proba_floor("auto", 1e-3) == 5e-4


def test_auto_floor_is_capped_for_one_hot_teachers(iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    logits = teacher_logits(tree, X)
    # Every output is 0 or 1: the gap between the voted class and the others
    # is log(1 / 1e-3), not log(1 / 0.5).
    gaps = logits.max(axis=1) - logits.min(axis=1)
    np.testing.assert_allclose(gaps, np.log(1e3), rtol=1e-5)


def test_logits_are_centred_float32(iris, iris_forest):
    X, _ = iris
    logits = teacher_logits(iris_forest, X)
    assert logits.dtype == np.float32 and logits.shape == (len(X), 3)
    np.testing.assert_allclose(logits.mean(axis=1), 0, atol=1e-5)
    assert np.isfinite(logits).all()


def test_teacher_is_called_once_per_row_batch(iris):
    X, _ = iris
    proba = np.full((len(X), 2), 0.5)
    FixedProba.calls = 0
    teacher_logits(FixedProba(proba), X, batch_size=50)
    assert FixedProba.calls == 3


def test_binary_decision_function_gives_sigmoid_probabilities(binary_data):
    X, y = binary_data
    svm = LinearSVC().fit(X, y)
    proba = teacher_proba(svm, X)
    np.testing.assert_allclose(proba[:, 1], expit(svm.decision_function(X)), rtol=1e-6)
    logits = teacher_logits(svm, X)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], svm.decision_function(X), rtol=1e-5)


def test_ensemble_averages_probabilities(iris, iris_forest):
    X, y = iris
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    expected = (iris_forest.predict_proba(X) + logistic.predict_proba(X)) / 2
    np.testing.assert_allclose(teacher_proba([iris_forest, logistic], X), expected)


def test_teachers_must_agree_on_classes(iris):
    X, y = iris
    first = LogisticRegression().fit(X, y)
    second = LogisticRegression().fit(X[y > 0], y[y > 0])
    with pytest.raises(ValueError, match="disagree on classes_"):
        teacher_classes([first, second])


@pytest.mark.parametrize(
    "teacher, error, match",
    [
        ([], ValueError, "empty list"),
        (Ridge(), ValueError, "regressor"),
        (LogisticRegression, TypeError, "not an estimator"),
        (object(), TypeError, "classifier with predict_proba"),
    ],
)
def test_bad_teachers_are_named(teacher, error, match):
    with pytest.raises(error, match=match):
        check_teacher_list(teacher)


def test_fit_teachers_fits_a_clone_and_keeps_fitted_ones(iris, iris_forest):
    X, y = iris
    unfitted = LogisticRegression(max_iter=500)
    fitted = fit_teachers([unfitted, iris_forest], X, y)
    assert fitted[1] is iris_forest
    assert fitted[0] is not unfitted and hasattr(fitted[0], "coef_")
    assert not hasattr(unfitted, "coef_")


def test_unfitted_teacher_without_y_is_an_error(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        fit_teachers([RandomForestClassifier()], X, None)


def test_memory_caches_teacher_outputs(tmp_path, iris):
    X, _ = iris
    FixedProba.calls = 0
    teacher = FixedProba(np.full((len(X), 2), 0.5))
    first = teacher_logits(teacher, X, memory=str(tmp_path))
    second = teacher_logits(teacher, X, memory=str(tmp_path))
    assert FixedProba.calls == 1
    np.testing.assert_array_equal(first, second)


def test_ensemble_weights_and_geometric_mean(iris, iris_forest):
    from skdistill.teachers import TeacherEnsemble

    X, y = iris
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    only_first = TeacherEnsemble([iris_forest, logistic], weights=[1, 0])
    np.testing.assert_allclose(only_first.predict_proba(X), iris_forest.predict_proba(X))
    weighted = TeacherEnsemble([iris_forest, logistic], weights=[3, 1]).predict_proba(X)
    np.testing.assert_allclose(
        weighted, 0.75 * iris_forest.predict_proba(X) + 0.25 * logistic.predict_proba(X)
    )
    p, q = logistic.predict_proba(X), LogisticRegression(C=0.01).fit(X, y).predict_proba(X)
    members = [logistic, LogisticRegression(C=0.01).fit(X, y)]
    geometric = TeacherEnsemble(members, averaging="geometric").predict_proba(X)
    expected = np.sqrt(p * q) / np.sqrt(p * q).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(geometric, expected)
    assert TeacherEnsemble(members).predict(X).shape == (len(X),)


def test_ensemble_weights_are_checked(iris, iris_forest):
    from skdistill.teachers import TeacherEnsemble

    X, _ = iris
    with pytest.raises(ValueError, match="teacher_weights must be 2 non-negative"):
        TeacherEnsemble([iris_forest, iris_forest], weights=[1.0]).predict_proba(X)


def test_a_skorch_teacher_comes_back_in_its_own_train_mode(iris):
    import pickle

    import torch
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from skorch import NeuralNetClassifier

    X, y = iris
    X = X.astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    ).fit(X, y)
    pipeline = make_pipeline(FunctionTransformer(), net)
    assert net.module_.training  # skorch leaves it in train mode after fit
    before = pickle.dumps(pipeline)
    teacher_logits(pipeline, X)
    teacher_proba([pipeline, pipeline], X)
    assert pickle.dumps(pipeline) == before


def test_parallel_labelling_gives_the_same_logits(iris, iris_forest):
    X, _ = iris
    sequential = teacher_logits(iris_forest, X, batch_size=40)
    parallel = teacher_logits(iris_forest, X, batch_size=40, n_jobs=2)
    np.testing.assert_array_equal(parallel, sequential)


# -- broken teachers ----------------------------------------------------------------------

THIRD = 1 / 3


def _rows(row):
    return lambda X: np.tile(row, (len(X), 1))


BROKEN_PROBA = {
    "sums-to-5": (
        _rows([5 / 3] * 3),
        re.escape("rows that do not sum to 1, such as the row [1.667, 1.667, 1.667] (sum 5)"),
    ),
    "holds-2": (
        _rows([2.0, -0.5, -0.5]),
        re.escape("outside [0, 1], such as the row [2, -0.5, -0.5]"),
    ),
    "negative": (
        _rows([1.2, -0.2, 0.0]),
        re.escape("outside [0, 1], such as the row [1.2, -0.2, 0]"),
    ),
    "all-zero-row": (
        lambda X: np.vstack([np.full((len(X) - 1, 3), THIRD), np.zeros((1, 3))]),
        "a row of zeros",
    ),
    "nan": (
        _rows([np.nan, 0.5, 0.5]),
        re.escape("NaN or infinite probabilities, such as the row [nan"),
    ),
    "2-columns-for-3-classes": (
        _rows([0.5, 0.5]),
        re.escape("returned 2 columns, but its classes_ has 3 classes ([0, 1, 2])"),
    ),
    "multi-output": (
        lambda X: [np.full((len(X), 3), THIRD)] * 2,
        "returned a list of 2 arrays, as a multi-output estimator does",
    ),
    "ragged-list": (
        lambda X: [[0.5, 0.5, 0.0]] * (len(X) - 1) + [[1.0]],
        "returned a list that is not an array of numbers with rows of equal length",
    ),
    "one-row-too-many": (lambda X: np.full((len(X) + 1, 3), THIRD), "returned 51 rows for 50 rows"),
    "one-row-too-few": (lambda X: np.full((len(X) - 1, 3), THIRD), "returned 49 rows for 50 rows"),
    "1-d": (
        lambda X: np.full(len(X), THIRD),
        re.escape("returned an array of shape (50,); expected (50, n_outputs)"),
    ),
}


@pytest.mark.parametrize("make, match", BROKEN_PROBA.values(), ids=list(BROKEN_PROBA))
def test_a_broken_predict_proba_is_named_after_the_first_batch(make, match):
    ProbaReturning.calls = 0
    with pytest.raises(ValueError, match=match) as error:
        teacher_logits(ProbaReturning(make, classes=[0, 1, 2]), np.zeros((120, 1)), batch_size=50)
    assert str(error.value).startswith("The teacher ProbaReturning's predict_proba returned ")
    assert "NaN" not in str(error.value) or "nan" in str(make(np.zeros((1, 1))))
    assert ProbaReturning.calls == 1


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X: np.zeros(len(X)), "one score per row, but classes_ has 3 classes"),
        (
            _rows([0.0, np.inf, 1.0]),
            re.escape("NaN or infinite values, such as the row [0, inf, 1]"),
        ),
        (_rows([0.0, 1.0]), "returned 2 columns, but its classes_ has 3 classes"),
    ],
)
def test_a_broken_decision_function_is_named(make, match):
    with pytest.raises(ValueError, match=match):
        teacher_logits(ScoresReturning(make, classes=[0, 1, 2]), np.zeros((120, 1)), batch_size=50)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X: np.ones(len(X) + 1), "returned 51 rows for 50 rows of X"),
        (
            lambda X: np.where(np.arange(len(X)) == 3, np.nan, 1.0),
            r"NaN or infinite values, such as the row \[nan\]",
        ),
        (
            lambda X: [[1.0, 2.0]] * (len(X) - 1) + [[1.0]],
            "not an array of numbers with rows of equal length",
        ),
        (
            lambda X: np.ones((len(X), 2, 2)),
            re.escape("shape (50, 2, 2); expected (50,) or (50, n_outputs)"),
        ),
    ],
)
def test_a_broken_regressor_is_named_after_the_first_batch(make, match):
    PredictionsReturning.calls = 0
    with pytest.raises(ValueError, match=match) as error:
        teacher_predictions(PredictionsReturning(make), np.zeros((120, 1)), batch_size=50)
    assert str(error.value).startswith("The teacher PredictionsReturning's predict returned ")
    assert PredictionsReturning.calls == 1


def test_outputs_as_lists_and_rounding_errors_are_accepted():
    rounded = [[THIRD, THIRD, THIRD + 1e-9], [1.0 + 1e-12, -1e-12, 0.0]]
    teacher = ProbaReturning(lambda X: rounded[: len(X)], classes=[0, 1, 2])
    proba = teacher_proba(teacher, np.zeros((2, 1)))
    assert proba.min() >= 0 and np.isfinite(teacher_logits(teacher, np.zeros((2, 1)))).all()
    regressor = PredictionsReturning(lambda X: [[1.0], [2.0]])
    np.testing.assert_array_equal(teacher_predictions(regressor, np.zeros((2, 1))), [[1], [2]])
