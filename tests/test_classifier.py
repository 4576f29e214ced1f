"""What only DistilledClassifier does (what it shares with the regressor is
in test_distillers.py): classes, probabilities, temperatures, labels."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CountingClassifier, FixedProba, small
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

from skdistill import DistilledClassifier


def _fit(teacher, X, y=None, **params):
    return DistilledClassifier(teacher, **small(**params)).fit(X, y)


# -- the basics ---------------------------------------------------------------


def test_student_learns_the_teacher(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y, max_epochs=60)
    proba = student.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(student.predict(X), student.classes_[proba.argmax(axis=1)])
    assert np.mean(student.predict(X) == iris_forest.predict(X)) > 0.9
    assert student.teacher_ is iris_forest
    assert student.n_features_in_ == 4
    assert len(student.student_.history) == student.n_iter_ <= 60


def test_classes_come_from_the_teacher_even_when_absent_from_y(iris, iris_forest):
    X, y = iris
    rows = y < 2
    student = _fit(iris_forest, X[rows], y[rows])
    np.testing.assert_array_equal(student.classes_, [0, 1, 2])
    assert student.predict_proba(X).shape == (len(X), 3)


def test_string_labels(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    student = _fit(LogisticRegression(max_iter=500), X, labels, max_epochs=40)
    assert set(student.predict(X)) <= set(labels)
    assert student.score(X, labels) > 0.8


def test_binary_decision_function_is_one_dimensional(binary_data):
    X, y = binary_data
    student = _fit(LogisticRegression(), X, y)
    scores = student.decision_function(X)
    assert scores.shape == (len(X),)
    np.testing.assert_allclose(student.predict_proba(X)[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-5)
    np.testing.assert_array_equal(student.predict(X), (scores > 0).astype(int))


def test_decision_function_only_teacher(binary_data):
    X, y = binary_data
    svm = LinearSVC().fit(X, y)
    student = _fit(svm, X, max_epochs=40)
    assert np.mean(student.predict(X) == svm.predict(X)) > 0.9


# -- the teacher belongs to the user -------------------------------------------


def test_frozen_estimator_and_pipeline_teachers(iris):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    for teacher in [FrozenEstimator(pipeline), pipeline]:
        student = _fit(teacher, X, y, max_epochs=40)
        assert np.mean(student.predict(X) == pipeline.predict(X)) > 0.85


def test_skorch_classifier_as_teacher(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X).astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=30,
        lr=0.1,
        train_split=None,
        verbose=0,
    ).fit(X, y)
    student = _fit(net, X, y, max_epochs=40)
    assert np.mean(student.predict(X) == net.predict(X)) > 0.85


def test_list_of_teachers_is_an_averaged_ensemble(iris, iris_forest):
    X, y = iris
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    student = _fit([iris_forest, logistic], X, y)
    assert student.teacher_.estimators == [iris_forest, logistic]


# -- search, pipelines, caching ---------------------------------------------------


def test_pipeline_and_cross_val_score(iris, iris_forest):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), DistilledClassifier(LogisticRegression(), **small()))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.mean() > 0.7


def test_grid_search_over_temperature_and_alpha(iris, iris_forest):
    X, y = iris
    grid = {"temperature": [1, 4], "alpha": [0.5, 1.0]}
    search = GridSearchCV(DistilledClassifier(iris_forest, **small()), grid, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_estimator_.teacher_ is iris_forest
    assert len(search.cv_results_["params"]) == 4


# -- the student ----------------------------------------------------------------


def test_logit_matching_loss(iris, iris_forest):
    X, y = iris
    kl = _fit(iris_forest, X, y, loss="kl", max_epochs=40)
    mse = _fit(iris_forest, X, y, loss="logit_mse", max_epochs=40)
    assert mse.score(X, y) > 0.85
    assert not np.allclose(kl.predict_proba(X), mse.predict_proba(X))


# -- reproducibility, weights, pickling ------------------------------------------


def test_sample_weight_weighs_the_hard_labels(iris, iris_forest):
    X, y = iris
    # Hard labels only, every weight on class 0: the student predicts class 0.
    weights = (y == 0).astype(float)
    biased = DistilledClassifier(iris_forest, alpha=0.0, **small(max_epochs=40))
    biased.fit(X, y, sample_weight=weights)
    assert np.mean(biased.predict(X) == 0) > 0.9


# -- class weights ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def imbalanced():
    """A binary table with 12% of class 1, and an unweighted teacher of it."""
    X, y = make_classification(
        n_samples=300,
        n_features=4,
        n_informative=2,
        weights=[0.9, 0.1],
        flip_y=0.05,
        class_sep=0.5,
        random_state=0,
    )
    return X, y, LogisticRegression().fit(X, y)


def test_class_weight_raises_the_minority_s_recall(imbalanced):
    X, y, teacher = imbalanced
    recall = {
        str(weights): recall_score(
            y, _fit(teacher, X, y, alpha=0.3, class_weight=weights).predict(X)
        )
        for weights in [None, "balanced", {1: 20.0}]
    }
    # Measured: 0.36 unweighted, 0.47 balanced, 0.78 with class 1 weighing 20.
    assert recall["None"] + 0.05 < recall["balanced"] < recall["{1: 20.0}"]


def test_class_weight_weighs_rows_exactly_as_sample_weight(imbalanced):
    X, y, teacher = imbalanced
    balanced = _fit(teacher, X, y, class_weight="balanced")
    weighted = DistilledClassifier(teacher, **small()).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    np.testing.assert_allclose(balanced.predict_proba(X), weighted.predict_proba(X), rtol=1e-5)
    # Multiplied with sample_weight; "balanced" counts the weighted rows, as
    # scikit-learn's compute_class_weight does.
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    both = DistilledClassifier(teacher, class_weight={1: 3.0}, **small())
    both.fit(X, y, sample_weight=sample_weight)
    product = DistilledClassifier(teacher, **small())
    product.fit(X, y, sample_weight=sample_weight * np.where(y == 1, 3.0, 1.0))
    np.testing.assert_allclose(both.predict_proba(X), product.predict_proba(X), rtol=1e-5)
    expected = compute_class_weight(
        "balanced", classes=np.array([0, 1]), y=y, sample_weight=sample_weight
    )
    weights = _training_weights(teacher, X, y, class_weight="balanced", sample_weight=sample_weight)
    np.testing.assert_allclose(
        weights, (sample_weight * expected[y]) / (sample_weight * expected[y]).mean(), rtol=1e-6
    )


def test_an_unfitted_teacher_is_fitted_with_the_class_weights(imbalanced):
    X, y, _ = imbalanced
    student = _fit(LogisticRegression(), X, y, class_weight="balanced")
    expected = LogisticRegression().fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(student.teacher_.coef_, expected.coef_)


class _TrainingTargets(Callback):
    """Keeps the packed targets a student trains on (on the class: fits clone callbacks)."""

    seen = None

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        type(self).seen = np.asarray(y)


def _training_weights(teacher, X, y, X_unlabeled=None, sample_weight=None, **params):
    """The weight column of the targets the student was trained on."""
    DistilledClassifier(
        teacher, callbacks=[_TrainingTargets()], **small(max_epochs=1, **params)
    ).fit(X, y, X_unlabeled=X_unlabeled, sample_weight=sample_weight)
    return _TrainingTargets.seen[:, -1]


def test_rows_without_a_label_weigh_one(imbalanced):
    X, y, teacher = imbalanced
    weights = _training_weights(teacher, X, y, X_unlabeled=X[:50], class_weight={1: 5.0})
    labelled = np.where(y == 1, 5.0, 1.0)
    np.testing.assert_allclose(weights[: len(y)], labelled / labelled.mean(), rtol=1e-6)
    np.testing.assert_array_equal(weights[len(y) :], 1.0)


def test_class_weight_in_a_search(imbalanced):
    X, y, teacher = imbalanced
    search = GridSearchCV(
        DistilledClassifier(teacher, alpha=0.3, **small()),
        {"class_weight": [None, "balanced"]},
        scoring="balanced_accuracy",
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"class_weight": "balanced"}
    assert search.best_estimator_.class_weight == "balanced"


@pytest.mark.parametrize(
    "class_weight, y_given, match",
    [
        ({0: 1.0, 5: 2.0}, True, r"class_weight has classes the teacher does not know: \[5\]"),
        ({0: -1.0}, True, r"class_weight\[0\] is -1.0; class weights must be finite non-negative"),
        ({0: 0.0, 1: 0.0}, True, "leave every row of X with weight 0"),
        ("balanced", False, "class_weight weighs the rows of X by the class of their label"),
    ],
)
def test_bad_class_weights_are_named_before_training(imbalanced, class_weight, y_given, match):
    X, y, teacher = imbalanced
    _TrainingTargets.seen = None
    estimator = DistilledClassifier(
        teacher, class_weight=class_weight, callbacks=[_TrainingTargets()]
    )
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y if y_given else None)
    assert _TrainingTargets.seen is None


# -- bad input fails before any training, with a clear message --------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"loss": "hinge"}, "loss"),
        ({"proba_floor": 0.0}, "proba_floor"),
        ({"teacher_averaging": "median"}, "teacher_averaging"),
        ({"calibrate_bias": "yes"}, "calibrate_bias"),
        ({"derivative_weight": -1.0}, "derivative_weight"),
    ],
)
def test_invalid_parameters_are_named(iris, params, match):
    X, y = iris
    CountingClassifier.calls = 0
    teacher = CountingClassifier(LogisticRegression(max_iter=500).fit(X, y))
    with pytest.raises(InvalidParameterError, match=match):
        DistilledClassifier(teacher, **params).fit(X, y)
    assert CountingClassifier.calls == 0


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda X, y: (X, np.where(y == 2, 7, y)), r"labels the teacher does not know: \[7\]"),
        (lambda X, y: (X, y.astype(float) + 0.5), "Unknown label type"),
    ],
)
def test_bad_labels_are_named_before_training(iris, iris_forest, make_input, match):
    X, y = make_input(*iris)
    with pytest.raises(ValueError, match=match):
        DistilledClassifier(iris_forest).fit(X, y)


@pytest.mark.parametrize(
    "teacher, error, match",
    [
        ([], ValueError, "empty list"),
        (Ridge(), ValueError, "regressor"),
        (RandomForestClassifier(), ValueError, "requires y to be passed, but the target y is None"),
    ],
)
def test_bad_teachers_are_named(iris, teacher, error, match):
    X, _ = iris
    with pytest.raises(error, match=match):
        DistilledClassifier(teacher).fit(X)


@pytest.mark.parametrize(
    "proba, classes, match",
    [
        # Without y, nothing but the teacher's outputs tells classes_ is wrong.
        ([0.5, 0.5], [0, 1, 2], re.escape("returned 2 columns, but its classes_ has 3 classes")),
        ([1.2, -0.2, 0.0], None, re.escape("probabilities outside [0, 1]")),
        ([2.0, 2.0, 1.0], None, "rows that do not sum to 1"),
    ],
)
def test_a_broken_teacher_is_named_before_training(iris, proba, classes, match):
    X, _ = iris
    teacher = FixedProba(np.tile(proba, (len(X), 1)), classes=classes)
    with pytest.raises(ValueError, match=match) as error:
        DistilledClassifier(teacher, **small()).fit(X)
    assert "NaN or infinity" not in str(error.value)


def test_teachers_with_different_classes_are_refused(iris):
    X, y = iris
    first = LogisticRegression(max_iter=500).fit(X, y)
    second = LogisticRegression(max_iter=500).fit(X[y > 0], y[y > 0])
    with pytest.raises(ValueError, match="disagree on classes_"):
        DistilledClassifier([first, second]).fit(X, y)


# -- extreme but valid values ---------------------------------------------------


@pytest.mark.parametrize("temperature", [1e-3, 1e6])
def test_extreme_temperatures_train_without_nan(iris, iris_forest, temperature):
    X, y = iris
    student = _fit(iris_forest, X, y, temperature=temperature, alpha=1.0)
    assert np.isfinite(student.predict_proba(X)).all()
    assert all(np.isfinite(student.student_.history[:, "train_loss"]))


# -- transfer sets, unlabeled rows, mixed data ------------------------------------


def _mixed_frame(n_rows=300, seed=0):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n_rows)
    size = rng.normal(size=n_rows)
    y = np.where(colour == "red", size > 0, size > 1).astype(int)
    frame = pd.DataFrame({"colour": pd.Categorical(colour), "size": size})
    return frame, y


def test_mixed_dataframe_with_a_pipeline_teacher():
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    from skdistill.transfer import Munge

    frame, y = _mixed_frame()
    teacher = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["colour"]), remainder="passthrough"),
        RandomForestClassifier(n_estimators=20, random_state=0),
    ).fit(frame, y)
    student = _fit(teacher, frame, y, transfer=Munge(size_multiplier=2), max_epochs=40)
    assert student.preprocessor_ is not None
    test_frame, test_y = _mixed_frame(seed=1)
    assert np.mean(student.predict(test_frame) == teacher.predict(test_frame)) > 0.85
    unseen = test_frame.assign(colour=pd.Categorical(["purple"] * len(test_frame)))
    assert student.predict(unseen).shape == (len(test_frame),)


def test_weighted_geometric_teacher_ensemble(iris, iris_forest):
    X, y = iris
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    student = _fit(
        [iris_forest, logistic], X, y, teacher_weights=[1, 3], teacher_averaging="geometric"
    )
    assert student.teacher_.weights == [1, 3] and student.teacher_.averaging == "geometric"
    with pytest.raises(ValueError, match="teacher_weights must be 2"):
        _fit([iris_forest, logistic], X, y, teacher_weights=[1, 2, 3])


# -- matching derivatives (derivative_weight) ----------------------------------


def _skorch_teacher(X, y):
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)
    )
    return NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=60,
        lr=0.1,
        train_split=None,
        verbose=0,
    ).fit(X.astype(np.float32), y)


def _jacobian_gap(student, teacher_net, X):
    """Mean squared gap between the centred input-Jacobians of student and teacher."""
    from skdistill.teachers import TeacherLogits

    X = torch.from_numpy(X.astype(np.float32))
    teacher = TeacherLogits(teacher_net)

    def centred(function):
        return lambda x: function(x) - function(x).mean(dim=1, keepdim=True)

    student_module = student.student_.module_.eval()
    gaps = []
    for row in X:
        js = torch.autograd.functional.jacobian(centred(student_module), row[None])
        jt = torch.autograd.functional.jacobian(centred(teacher), row[None])
        gaps.append(((js - jt) ** 2).sum())
    return float(torch.stack(gaps).mean())


def test_derivative_matching_brings_the_students_gradients_to_the_teachers():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=400, noise=0.2, random_state=0)
    X = X.astype(np.float32)  # what a skorch teacher takes
    teacher = _skorch_teacher(X, y)
    before = pickle.dumps(teacher)
    modes = [module.training for module in teacher.module_.modules()]
    small = X[:40]  # a small transfer set, where matching derivatives should matter
    settings = dict(hidden_layer_sizes=(32,), max_epochs=150, batch_size=16, lr=1e-2)
    settings.update(temperature=2.0, random_state=0)
    plain = DistilledClassifier(teacher, **settings).fit(small)
    matched = DistilledClassifier(teacher, derivative_weight=10.0, **settings).fit(small)
    # A ReLU student cannot copy a tanh teacher's Jacobian everywhere; measured
    # 0.049 against 0.063 without the term, on rows it never saw.
    assert _jacobian_gap(matched, teacher, X[200:]) < 0.9 * _jacobian_gap(plain, teacher, X[200:])
    # The teacher is untouched: weights, and train/eval flags.
    assert pickle.dumps(teacher) == before
    assert [module.training for module in teacher.module_.modules()] == modes
    # The fitted student does not hold the teacher, and pickles.
    assert matched.student_.derivative_teacher is None
    pickle.loads(pickle.dumps(matched))


def test_derivative_matching_needs_a_differentiable_teacher(iris, iris_forest):
    X, y = iris
    with pytest.raises(ValueError, match="derivative_weight > 0 needs a teacher that is one"):
        DistilledClassifier(iris_forest, derivative_weight=1.0, **small()).fit(X, y)
