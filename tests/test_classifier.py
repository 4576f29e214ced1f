import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNet, NeuralNetClassifier

from skdistill import DistilledClassifier


def _fit(teacher, X, y=None, **params):
    return DistilledClassifier(teacher, **{**FAST, **params}).fit(X, y)


class CountingTeacher(ClassifierMixin, BaseEstimator):
    """A fitted logistic-regression teacher that counts predict_proba calls.

    The count lives on the class, not the instance: the teacher itself must
    stay unchanged (it is hashed by the cache and pickled by the search).
    """

    calls = 0

    def __init__(self, model):
        self.model = model

    def __sklearn_is_fitted__(self):
        return True

    @property
    def classes_(self):
        return self.model.classes_

    def predict_proba(self, X):
        type(self).calls += 1
        return self.model.predict_proba(X)


class Linear(torch.nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.linear(X)


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


def test_learns_from_teacher_alone_without_y(iris, iris_forest):
    X, _ = iris
    student = _fit(iris_forest, X, None, max_epochs=60)
    assert np.mean(student.predict(X) == iris_forest.predict(X)) > 0.9


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


def test_predict_before_fit_raises(iris_forest):
    with pytest.raises(NotFittedError):
        DistilledClassifier(iris_forest).predict(np.zeros((1, 4)))


# -- the teacher belongs to the user -------------------------------------------


def test_fitted_teacher_is_never_modified(iris, iris_forest):
    X, y = iris
    before = pickle.dumps(iris_forest)
    _fit(iris_forest, X, y)
    search = GridSearchCV(
        DistilledClassifier(iris_forest, **FAST), {"temperature": [1, 4]}, cv=2, n_jobs=2
    )
    search.fit(X, y)
    assert pickle.dumps(iris_forest) == before
    assert search.best_estimator_.teacher_ is not None


def test_unfitted_teacher_is_fitted_on_a_clone(iris):
    X, y = iris
    user_teacher = LogisticRegression(max_iter=500)
    student = _fit(user_teacher, X, y)
    assert not hasattr(user_teacher, "coef_")
    assert student.teacher_ is not user_teacher and hasattr(student.teacher_, "coef_")


def test_clone_keeps_a_fitted_teacher_fitted_and_shared(iris_forest):
    assert clone(DistilledClassifier(iris_forest)).teacher is iris_forest
    user_teacher = LogisticRegression()
    cloned = clone(DistilledClassifier(user_teacher)).teacher
    assert cloned is not user_teacher and not hasattr(cloned, "coef_")
    both = clone(DistilledClassifier([iris_forest, user_teacher])).teacher
    assert both[0] is iris_forest and both[1] is not user_teacher


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
    pipeline = make_pipeline(StandardScaler(), DistilledClassifier(LogisticRegression(), **FAST))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.mean() > 0.7


def test_grid_search_over_temperature_and_alpha(iris, iris_forest):
    X, y = iris
    grid = {"temperature": [1, 4], "alpha": [0.5, 1.0]}
    search = GridSearchCV(DistilledClassifier(iris_forest, **FAST), grid, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_estimator_.teacher_ is iris_forest
    assert len(search.cv_results_["params"]) == 4


@pytest.mark.parametrize("memory", [False, True])
def test_memory_computes_teacher_outputs_once_per_fold(tmp_path, iris, memory):
    X, y = iris
    teacher = CountingTeacher(LogisticRegression(max_iter=500).fit(X, y))
    estimator = DistilledClassifier(teacher, memory=str(tmp_path) if memory else None, **FAST)
    grid = {"temperature": [1, 2, 4], "alpha": [0.5, 1.0]}
    CountingTeacher.calls = 0
    GridSearchCV(estimator, grid, cv=3).fit(X, y)
    n_folds, n_candidates = 3, 6
    expected = n_folds + 1 if memory else n_folds * n_candidates + 1  # + 1: the refit
    assert CountingTeacher.calls == expected


def test_set_params_reaches_a_skorch_student(iris, iris_forest):
    X, y = iris
    net = NeuralNet(module=Linear, criterion=torch.nn.MSELoss, max_epochs=3, verbose=0)
    estimator = DistilledClassifier(iris_forest, student=net)
    assert "student__lr" in estimator.get_params()
    search = GridSearchCV(estimator, {"student__lr": [0.01, 0.1]}, cv=2).fit(X, y)
    assert search.best_estimator_.student_.lr in (0.01, 0.1)
    assert net.lr == 0.01  # the user's net is not modified by the search


# -- the student ----------------------------------------------------------------


def test_student_module_class(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y, student=Linear, max_epochs=40)
    assert isinstance(student.student_.module_.body, Linear)
    assert student.score(X, y) > 0.8


def test_student_module_instance_is_copied_not_trained_in_place(iris, iris_forest):
    X, y = iris
    module = Linear(4, 3)
    before = {name: value.clone() for name, value in module.state_dict().items()}
    _fit(iris_forest, X, y, student=module)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_skorch_net_student_keeps_its_settings(iris, iris_forest):
    X, y = iris
    net = NeuralNet(
        module=Linear,
        criterion=torch.nn.MSELoss,
        max_epochs=4,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    student = _fit(iris_forest, X, y, student=net)
    assert len(student.student_.history) == 4 and student.student_.lr == 0.05
    assert type(student.student_.criterion_).__name__ == "DistillationLoss"
    assert not hasattr(net, "module_")


def test_a_module_that_cannot_be_built_is_named(iris, iris_forest):
    X, y = iris
    with pytest.raises(TypeError, match="Could not build the student module Linear"):
        _fit(iris_forest, X, y, student=torch.nn.Linear)


def test_skorch_classifier_as_student_is_refused(iris, iris_forest):
    X, y = iris
    net = NeuralNetClassifier(module=Linear)
    with pytest.raises(TypeError, match="pass a skorch.NeuralNet"):
        _fit(iris_forest, X, y, student=net)


def test_logit_matching_loss(iris, iris_forest):
    X, y = iris
    kl = _fit(iris_forest, X, y, loss="kl", max_epochs=40)
    mse = _fit(iris_forest, X, y, loss="logit_mse", max_epochs=40)
    assert mse.score(X, y) > 0.85
    assert not np.allclose(kl.predict_proba(X), mse.predict_proba(X))


def test_early_stopping_holds_out_rows_and_keeps_the_best(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y, early_stopping=True, n_iter_no_change=2, max_epochs=200)
    history = student.student_.history
    assert "valid_loss" in history[-1]
    assert student.n_iter_ < 200
    best = int(np.argmin(history[:, "valid_loss"]))
    assert history[best, "valid_loss_best"]


def test_training_stops_on_a_loss_plateau(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y, max_epochs=500, tol=0.5, n_iter_no_change=2)
    assert student.n_iter_ < 500


# -- reproducibility, weights, pickling ------------------------------------------


def test_same_random_state_same_model_and_no_global_state(iris, iris_forest):
    X, y = iris
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = _fit(iris_forest, X, y, early_stopping=True).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    second = _fit(iris_forest, X, y, early_stopping=True).predict_proba(X)
    other = _fit(iris_forest, X, y, early_stopping=True, random_state=1).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_sample_weight(iris, iris_forest):
    X, y = iris
    plain = _fit(iris_forest, X, y).predict_proba(X)
    ones = DistilledClassifier(iris_forest, **FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(X), plain, rtol=1e-6)
    # Hard labels only, every weight on class 0: the student predicts class 0.
    weights = (y == 0).astype(float)
    biased = DistilledClassifier(iris_forest, alpha=0.0, **{**FAST, "max_epochs": 40})
    biased.fit(X, y, sample_weight=weights)
    assert np.mean(biased.predict(X) == 0) > 0.9


def test_pickle_round_trip(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y)
    restored = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(restored.predict_proba(X), student.predict_proba(X))


def test_pandas_input_reaches_the_teacher_as_a_dataframe(iris):
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    teacher = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no "X does not have valid feature names"
        student = _fit(teacher, frame, y)
    np.testing.assert_array_equal(student.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(student.predict(frame), student.predict(X))


# -- bad input fails before any training, with a clear message --------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"loss": "hinge"}, "loss"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"proba_floor": 0.0}, "proba_floor"),
        ({"early_stopping": "sometimes"}, "early_stopping"),
    ],
)
def test_invalid_parameters_are_named(iris, params, match):
    X, y = iris
    CountingTeacher.calls = 0
    teacher = CountingTeacher(LogisticRegression(max_iter=500).fit(X, y))
    with pytest.raises(InvalidParameterError, match=match):
        DistilledClassifier(teacher, **params).fit(X, y)
    assert CountingTeacher.calls == 0


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes"),
        ({"device": "gpu0"}, ValueError, "device='gpu0' is not a torch device"),
        ({"student": "mlp"}, TypeError, "student must be None"),
    ],
)
def test_invalid_values_are_named(iris, iris_forest, params, error, match):
    X, y = iris
    with pytest.raises(error, match=match):
        DistilledClassifier(iris_forest, **params).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(iris, iris_forest):
    X, y = iris
    with pytest.raises(ValueError, match="CUDA is not available"):
        DistilledClassifier(iris_forest, device="cuda").fit(X, y)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda X, y: (np.where(np.eye(*X.shape) > 0, np.nan, X), y), "NaN"),
        (lambda X, y: (np.where(np.eye(*X.shape) > 0, np.inf, X), y), "infinity"),
        (lambda X, y: (X[:, :3], y), "3 features, but the teacher"),
        (lambda X, y: (X[:0], y[:0]), "0 sample"),
        (lambda X, y: (X[:, 0], y), "Expected 2D array"),
        (lambda X, y: (X, np.where(y == 2, 7, y)), r"labels the teacher does not know: \[7\]"),
        (lambda X, y: (X, y.astype(float) + 0.5), "Unknown label type"),
    ],
)
def test_bad_data_is_named_before_training(iris, iris_forest, make_input, match):
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


def test_huge_and_constant_features_train_without_nan(iris):
    X, y = iris
    X = np.column_stack([X * 1e12, np.full(len(X), 3.0)])
    student = _fit(LogisticRegression(max_iter=500), X, y, max_epochs=40)
    assert np.isfinite(student.predict_proba(X)).all()
    assert student.score(X, y) > 0.8


# -- transfer sets, unlabeled rows, mixed data ------------------------------------


class RowCountingTeacher(CountingTeacher):
    """Counts the rows it labels (on the class: the instance must not change)."""

    rows = 0

    def predict_proba(self, X):
        type(self).rows += len(X)
        return self.model.predict_proba(X)


def test_transfer_set_rows_are_labelled_by_the_teacher(iris):
    from skdistill.transfer import Munge

    X, y = iris
    teacher = RowCountingTeacher(LogisticRegression(max_iter=500).fit(X, y))
    RowCountingTeacher.rows = 0
    munge = Munge(size_multiplier=3)
    first = _fit(teacher, X, y, transfer=munge)
    assert RowCountingTeacher.rows == len(X) * (1 + 3)
    assert munge.random_state is None  # the user's generator is not modified
    second = _fit(teacher, X, y, transfer=munge)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_unlabeled_rows_join_the_soft_targets(iris):
    X, y = iris
    teacher = RowCountingTeacher(LogisticRegression(max_iter=500).fit(X, y))
    RowCountingTeacher.rows = 0
    estimator = DistilledClassifier(teacher, **{**FAST, "max_epochs": 60})
    student = estimator.fit(X[:30], y[:30], X_unlabeled=X[30:])
    assert RowCountingTeacher.rows == len(X)
    # 30 labelled rows are all class 0; the teacher's labels on the others
    # are what teach the student classes 1 and 2.
    assert set(student.predict(X)) == {0, 1, 2}
    with pytest.raises(ValueError, match="X_unlabeled has 3 features, but X has 4"):
        estimator.fit(X, y, X_unlabeled=X[:, :3])


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


def test_numeric_input_needs_no_preprocessor(iris, iris_forest):
    X, y = iris
    assert _fit(iris_forest, X, y).preprocessor_ is None


def test_user_preprocessor_is_cloned_and_used(iris, iris_forest):
    X, y = iris
    scaler = StandardScaler()
    student = _fit(iris_forest, X, y, preprocessor=scaler)
    assert not hasattr(scaler, "mean_") and hasattr(student.preprocessor_, "mean_")


def test_weighted_geometric_teacher_ensemble(iris, iris_forest):
    X, y = iris
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    student = _fit(
        [iris_forest, logistic], X, y, teacher_weights=[1, 3], teacher_averaging="geometric"
    )
    assert student.teacher_.weights == [1, 3] and student.teacher_.averaging == "geometric"
    with pytest.raises(ValueError, match="teacher_weights must be 2"):
        _fit([iris_forest, logistic], X, y, teacher_weights=[1, 2, 3])


# -- devices ----------------------------------------------------------------------


def test_auto_device_picks_cuda_only_when_available(iris, iris_forest):
    X, y = iris
    student = _fit(iris_forest, X, y, device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(student.student_.module_.parameters()).device.type == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_student_trains_and_predicts_on_cuda(iris, iris_forest):
    X, y = iris
    gpu = _fit(iris_forest, X, y, device="cuda")
    cpu = _fit(iris_forest, X, y, device="cpu")
    assert next(gpu.student_.module_.parameters()).is_cuda
    assert np.mean(gpu.predict(X) == cpu.predict(X)) > 0.9
    again = _fit(iris_forest, X, y, device="cuda")
    np.testing.assert_allclose(again.predict_proba(X), gpu.predict_proba(X), atol=1e-6)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(restored.predict_proba(X), gpu.predict_proba(X))


def test_callbacks_are_cloned_and_run(iris, iris_forest):
    from skorch.callbacks import Callback

    class EpochCounter(Callback):
        def __init__(self, count=0):
            self.count = count

        def on_epoch_end(self, net, **kwargs):
            self.count += 1

    X, y = iris
    counter = EpochCounter()
    student = _fit(iris_forest, X, y, callbacks=[counter], max_epochs=5)
    [used] = [cb for cb in student.student_.callbacks_ if isinstance(cb[1], EpochCounter)]
    assert used[1].count == student.n_iter_ and counter.count == 0


def test_values_beyond_float32_are_named_in_fit_and_predict(iris, iris_forest):
    X, y = iris
    huge = X.copy()
    huge[0, 0] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match="too large for float32"):
        DistilledClassifier(LogisticRegression(), **FAST).fit(huge, y)
    student = _fit(iris_forest, X, y, max_epochs=2)
    with pytest.raises(ValueError, match="too large for float32"):
        student.predict_proba(huge)
    # float32 input was checked finite once by validation and is used as is
    np.testing.assert_array_equal(
        student.predict_proba(X.astype(np.float32)), student.predict_proba(X)
    )


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
        DistilledClassifier(iris_forest, derivative_weight=1.0, **FAST).fit(X, y)
