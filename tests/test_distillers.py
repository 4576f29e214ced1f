"""What DistilledClassifier and DistilledRegressor share, tested once on both.

``BaseDistiller.fit`` is one training loop; each test here runs on each
distiller (the ``task`` fixture of conftest.py: iris and a forest, diabetes
and a forest). What only one task has is in test_classifier.py and
test_regressor.py.
"""

import copy
import io
import pickle
import re
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LinearModule, small
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import Callback

from skdistill import DistilledClassifier, Munge, load_student, save_student
from skdistill.losses import ClassificationTargets
from skdistill.student import TensorDataset
from skdistill.teachers import teacher_logits


def _fit(task, teacher=None, X=None, y=None, fit_params=None, **params):
    teacher = task.teacher if teacher is None else teacher
    X = task.X if X is None else X
    return task.estimator(teacher, **small(**params)).fit(X, y, **(fit_params or {}))


# -- the basics ---------------------------------------------------------------------


def test_student_learns_the_teacher(task):
    student = _fit(task, y=task.y, max_epochs=60)
    assert task.fidelity(student, task.teacher, task.X) > task.good_fidelity
    assert student.teacher_ is task.teacher
    assert student.n_features_in_ == task.X.shape[1]
    assert len(student.student_.history) == student.n_iter_ <= 60


def test_learns_from_the_teacher_alone_without_y(task):
    student = _fit(task, max_epochs=60)
    assert task.fidelity(student, task.teacher, task.X) > task.good_fidelity


def test_predict_before_fit_raises(task):
    with pytest.raises(NotFittedError):
        task.estimator(task.teacher).predict(task.X[:1])


# -- the teacher belongs to the user -------------------------------------------------


def test_fitted_teacher_is_never_modified(task):
    before = pickle.dumps(task.teacher)
    _fit(task, y=task.y)
    search = GridSearchCV(
        task.estimator(task.teacher, **small()), {"alpha": [0.5, 1.0]}, cv=2, n_jobs=2
    )
    search.fit(task.X, task.y)
    assert pickle.dumps(task.teacher) == before
    assert search.best_estimator_.teacher_ is task.teacher


def test_unfitted_teacher_is_fitted_on_a_clone(task):
    user_teacher = clone(task.unfitted_teacher)
    student = _fit(task, teacher=user_teacher, y=task.y)
    assert not hasattr(user_teacher, "coef_")
    assert student.teacher_ is not user_teacher and hasattr(student.teacher_, "coef_")


def test_clone_keeps_a_fitted_teacher_fitted_and_shared(task):
    assert clone(task.estimator(task.teacher)).teacher is task.teacher
    user_teacher = clone(task.unfitted_teacher)
    cloned = clone(task.estimator(user_teacher)).teacher
    assert cloned is not user_teacher and not hasattr(cloned, "coef_")
    both = clone(task.estimator([task.teacher, user_teacher])).teacher
    assert both[0] is task.teacher and both[1] is not user_teacher


def test_the_teacher_gets_x_as_given(task):
    # A list stays a list: the teacher is called as the user would call it,
    # whatever the student's own copy of the rows is.
    teacher = task.counting_teacher()
    rows = task.X.tolist()
    _fit(task, teacher=teacher, X=rows, max_epochs=2)
    assert task.counting.seen == [rows] and isinstance(task.counting.seen[0], list)
    scaled = _fit(task, teacher=task.counting_teacher(), X=rows, preprocessor=StandardScaler())
    assert task.counting.seen == [rows] and scaled.preprocessor_ is not None


def test_pandas_input_reaches_the_teacher_as_a_dataframe(task):
    frame = pd.DataFrame(task.X, columns=[f"f{i}" for i in range(task.X.shape[1])])
    teacher = clone(task.unfitted_teacher).fit(frame, task.y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        student = _fit(task, teacher=teacher, X=frame, y=task.y)
    np.testing.assert_array_equal(student.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(student.predict(frame), student.predict(task.X))


# -- search, pipelines, caching --------------------------------------------------------


@pytest.mark.parametrize("memory", [False, True])
def test_memory_computes_teacher_outputs_once_per_fold(tmp_path, task, memory):
    teacher = task.counting_teacher()
    estimator = task.estimator(teacher, memory=str(tmp_path) if memory else None, **small())
    grid = {"alpha": [0.5, 0.8, 1.0], "lr": [1e-2, 2e-2]}
    GridSearchCV(estimator, grid, cv=3).fit(task.X, task.y)
    n_folds, n_candidates = 3, 6
    expected = n_folds + 1 if memory else n_folds * n_candidates + 1  # + 1: the refit
    assert task.counting.calls == expected


def test_set_params_reaches_a_skorch_student(task):
    net = NeuralNet(module=LinearModule, criterion=torch.nn.MSELoss, max_epochs=3, verbose=0)
    estimator = task.estimator(task.teacher, student=net)
    assert "student__lr" in estimator.get_params()
    search = GridSearchCV(estimator, {"student__lr": [0.01, 0.1]}, cv=2).fit(task.X, task.y)
    assert search.best_estimator_.student_.lr in (0.01, 0.1)
    assert net.lr == 0.01  # the user's net is not modified by the search


# -- the student --------------------------------------------------------------------


def test_student_module_class(task):
    student = _fit(task, y=task.y, student=LinearModule, max_epochs=40)
    assert isinstance(student.student_.module_.body, LinearModule)
    # A linear student of a forest: 0.87 agreement on iris, R^2 0.84 on diabetes.
    assert task.fidelity(student, task.teacher, task.X) > task.good_fidelity - 0.1


def test_student_module_instance_is_copied_not_trained_in_place(task):
    n_outputs = 3 if task.name == "classification" else 1
    module = LinearModule(task.X.shape[1], n_outputs)
    before = {name: value.clone() for name, value in module.state_dict().items()}
    _fit(task, y=task.y, student=module)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, before[name])


def test_skorch_net_student_keeps_its_settings(task):
    net = NeuralNet(
        module=LinearModule,
        criterion=torch.nn.MSELoss,
        max_epochs=4,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    student = _fit(task, y=task.y, student=net)
    assert len(student.student_.history) == 4 and student.student_.lr == 0.05
    loss = "DistillationLoss" if task.name == "classification" else "RegressionDistillationLoss"
    assert type(student.student_.criterion_).__name__ == loss
    assert not hasattr(net, "module_")


def test_a_module_that_cannot_be_built_is_named(task):
    with pytest.raises(TypeError, match="Could not build the student module Linear"):
        _fit(task, y=task.y, student=torch.nn.Linear)


def test_skorch_classifier_as_student_is_refused(task):
    with pytest.raises(TypeError, match="pass a skorch.NeuralNet"):
        _fit(task, y=task.y, student=NeuralNetClassifier(module=LinearModule))


def test_early_stopping_holds_out_rows_and_keeps_the_best(task):
    student = _fit(task, y=task.y, early_stopping=True, n_iter_no_change=2, max_epochs=200)
    history = student.student_.history
    assert "valid_loss" in history[-1]
    assert student.n_iter_ < 200
    best = int(np.argmin(history[:, "valid_loss"]))
    assert history[best, "valid_loss_best"]


def test_validation_rows_drive_early_stopping(task):
    n_train = len(task.X) * 2 // 3
    student = task.estimator(task.teacher, **small(max_epochs=200, n_iter_no_change=3))
    student.fit(task.X[:n_train], X_val=task.X[n_train:])
    history = student.student_.history
    assert "valid_loss" in history[-1] and student.n_iter_ < 200
    with pytest.raises(ValueError, match="y_val was given without X_val"):
        student.fit(task.X, task.y, y_val=task.y)


def test_training_stops_on_a_loss_plateau(task):
    student = _fit(task, y=task.y, max_epochs=500, tol=0.5, n_iter_no_change=2)
    assert student.n_iter_ < 500


def test_callbacks_are_cloned_and_run(task):
    class EpochCounter(Callback):
        def __init__(self, count=0):
            self.count = count

        def on_epoch_end(self, net, **kwargs):
            self.count += 1

    counter = EpochCounter()
    student = _fit(task, y=task.y, callbacks=[counter], max_epochs=5)
    [used] = [cb for cb in student.student_.callbacks_ if isinstance(cb[1], EpochCounter)]
    assert used[1].count == student.n_iter_ and counter.count == 0


# -- reproducibility, weights, pickling, persistence ---------------------------------------


def test_same_random_state_same_model_and_no_global_state(task):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = task.predict(_fit(task, y=task.y, early_stopping=True), task.X)
    assert torch.equal(torch.get_rng_state(), state)
    second = task.predict(_fit(task, y=task.y, early_stopping=True), task.X)
    other = task.predict(_fit(task, y=task.y, early_stopping=True, random_state=1), task.X)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_unit_sample_weights_change_nothing(task):
    plain = task.predict(_fit(task, y=task.y), task.X)
    ones = _fit(task, y=task.y, fit_params=dict(sample_weight=np.ones(len(task.y))))
    np.testing.assert_allclose(task.predict(ones, task.X), plain, rtol=1e-6)


def test_pickle_round_trip(task):
    student = _fit(task, y=task.y)
    restored = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(task.predict(restored, task.X), task.predict(student, task.X))


def test_save_load_and_onnx_round_trip(task, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from skdistill import to_onnx

    student = _fit(task)
    loaded = load_student(save_student(student, tmp_path / "saved"))
    assert isinstance(loaded, task.estimator)
    np.testing.assert_array_equal(task.predict(loaded, task.X), task.predict(student, task.X))

    path = to_onnx(student, tmp_path / "student.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: task.X.astype(np.float32)})[0]
    expected = task.predict(student, task.X)
    np.testing.assert_allclose(outputs.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)


# -- extra rows: transfer sets and unlabeled rows --------------------------------------------


def test_transfer_set_rows_are_labelled_by_the_teacher(task):
    teacher = task.counting_teacher()
    munge = Munge(size_multiplier=3)
    first = _fit(task, teacher=teacher, y=task.y, transfer=munge)
    assert task.counting.rows == len(task.X) * (1 + 3)
    assert munge.random_state is None  # the user's generator is not modified
    second = _fit(task, teacher=teacher, y=task.y, transfer=munge)
    np.testing.assert_array_equal(task.predict(first, task.X), task.predict(second, task.X))


def test_unlabeled_rows_are_labelled_by_the_teacher(task):
    teacher = task.counting_teacher()
    estimator = task.estimator(teacher, **small(max_epochs=60))
    student = estimator.fit(task.X[:100], task.y[:100], X_unlabeled=task.X[100:])
    assert task.counting.rows == len(task.X)
    # (iris: the first 100 rows hold no class 2, which the teacher alone teaches)
    assert task.fidelity(student, teacher.model, task.X[100:]) > 0.5
    n_features = task.X.shape[1]
    match = f"X_unlabeled has 3 features, but X has {n_features}"
    with pytest.raises(ValueError, match=match):
        estimator.fit(task.X, task.y, X_unlabeled=task.X[:, :3])


# -- preprocessing ------------------------------------------------------------------------


def test_numeric_input_needs_no_preprocessor(task):
    assert _fit(task, y=task.y, max_epochs=2).preprocessor_ is None


def _table(task, seed=0, unseen=False):
    """task.X as a DataFrame with missing values and a categorical column.

    ``band`` holds the tercile of column 2 (iris' petal length, diabetes'
    body mass index) as a word, and replaces it: the teacher and the
    student must read the word; 10% of column 3 is missing. ``unseen``: a
    level fit never saw, and missing values in ``band``.
    """
    rng = np.random.default_rng(seed)
    X = task.X[rng.permutation(len(task.X))]
    cuts = np.quantile(task.X[:, 2], [1 / 3, 2 / 3])
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).drop(columns="x2")
    frame["band"] = np.array(["low", "mid", "high"], dtype=object)[np.searchsorted(cuts, X[:, 2])]
    frame.loc[rng.random(len(frame)) < 0.1, "x3"] = np.nan
    if unseen:
        frame.loc[frame.index[::10], "band"] = "extreme"
        frame.loc[frame.index[5::10], "band"] = None
    return frame


def test_mixed_table_with_missing_values(task):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from skdistill._preprocessing import AutoPreprocessor

    frame = _table(task)
    y = task.y[np.random.default_rng(0).permutation(len(task.X))]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["band"]), remainder=SimpleImputer()
    )
    pipeline = make_pipeline(encode, clone(task.unfitted_teacher)).fit(frame, y)
    student = _fit(task, teacher=task.counting_teacher(pipeline), X=frame, max_epochs=60)
    # the teacher got the very DataFrame given, missing values and strings included
    assert task.counting.seen[0] is frame
    assert isinstance(student.preprocessor_, AutoPreprocessor)
    # measured: 1.0 (iris) and 0.9998 (diabetes); a student blind to ``band``
    # reaches 0.90 and 0.87
    assert task.fidelity(student, pipeline, frame) > 0.95
    unseen = _table(task, seed=1, unseen=True)
    assert np.isfinite(task.predict(student, unseen)).all()
    assert task.fidelity(student, pipeline, unseen) > 0.9  # measured: 0.96, 0.994


def test_arrays_with_missing_values(task):
    X = task.X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    teacher = task.counting_teacher(task.teacher)  # a forest: it takes NaN
    student = _fit(task, teacher=teacher, X=X, max_epochs=60)
    assert task.counting.seen[0] is X
    assert student.preprocessor_.input_kind_ == "array"
    assert student.preprocessor_.indicators_ == [True] * X.shape[1]
    rows = np.flatnonzero(np.isnan(X).any(axis=1))
    assert task.fidelity(student, teacher.model, X[rows]) > task.good_fidelity - 0.15
    np.testing.assert_array_equal(
        task.predict(student, X[rows[:3]]), task.predict(student, X[rows])[:3]
    )


def test_missing_values_without_preprocessing_name_columns_and_way_out(task):
    X = task.X.copy()
    X[[3, 7], 1] = np.nan
    teacher = task.counting_teacher()
    with pytest.raises(ValueError, match=r"NaN\) in column\(s\) \[1\].*preprocessor='auto'"):
        _fit(task, teacher=teacher, X=X, preprocessor=None)
    assert task.counting.calls == 0
    # a student fitted without missing values has no preprocessing to impute them
    student = _fit(task, y=task.y, max_epochs=2)
    with pytest.raises(ValueError, match=r"column\(s\) \[1\].*fitted without preprocessing"):
        student.predict(X)
    # a preprocessor that leaves NaN: its output's columns are named
    with pytest.raises(ValueError, match=r"preprocessor's output .* \['x1'\].*SimpleImputer"):
        _fit(task, teacher=teacher, X=X, preprocessor=StandardScaler())
    assert task.counting.calls == 0


def test_user_preprocessor_is_cloned_and_used(task):
    scaler = StandardScaler()
    student = _fit(task, y=task.y, preprocessor=scaler, max_epochs=2)
    assert not hasattr(scaler, "mean_") and hasattr(student.preprocessor_, "mean_")


# -- bad input fails before any training, with a clear message --------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"early_stopping": "sometimes"}, "early_stopping"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"n_jobs": "all"}, "n_jobs"),
    ],
)
def test_invalid_parameters_are_named_before_the_teacher_runs(task, params, match):
    teacher = task.counting_teacher()
    with pytest.raises(InvalidParameterError, match=match):
        task.estimator(teacher, **params).fit(task.X, task.y)
    assert task.counting.calls == 0


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (True,)}, ValueError, "True is not a layer width"),
        ({"hidden_layer_sizes": (np.True_,)}, ValueError, "True_? is not a layer width"),
        ({"hidden_layer_sizes": (2.0,)}, ValueError, "2.0 is not a layer width"),
        ({"hidden_layer_sizes": ("8",)}, ValueError, "'8' is not a layer width"),
        ({"hidden_layer_sizes": ((8, 8), 4)}, ValueError, r"\(8, 8\) is not a layer width"),
        ({"device": "gpu0"}, ValueError, "device='gpu0' is not a torch device"),
        ({"student": "mlp"}, TypeError, "student must be None"),
    ],
)
def test_invalid_values_are_named_before_the_teacher_runs(task, params, error, match):
    teacher = task.counting_teacher()
    with pytest.raises(error, match=match):
        task.estimator(teacher, **params).fit(task.X, task.y)
    assert task.counting.calls == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(task):
    with pytest.raises(ValueError, match="CUDA is not available"):
        task.estimator(task.teacher, device="cuda").fit(task.X, task.y)


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda X, y: (np.where(np.eye(*X.shape) > 0, np.inf, X), y), "infinity"),
        (lambda X, y: (X[:, :3], y), "3 features, but the teacher"),
        (lambda X, y: (X[:0], y[:0]), "0 sample"),
        (lambda X, y: (X[:, 0], y), "Expected 2D array"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    ],
)
def test_bad_data_is_named_before_training(task, make_input, match):
    X, y = make_input(task.X, task.y)
    with pytest.raises(ValueError, match=match):
        task.estimator(task.teacher).fit(X, y)


def test_values_beyond_float32_are_named_in_fit_and_predict(task):
    huge = task.X.copy()
    huge[0, 0] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError, match="too large for float32"):
        task.estimator(clone(task.unfitted_teacher), **small()).fit(huge, task.y)
    student = _fit(task, y=task.y, max_epochs=2)
    with pytest.raises(ValueError, match="too large for float32"):
        student.predict(huge)
    # float32 input was checked finite once by validation and is used as is
    np.testing.assert_array_equal(
        task.predict(student, task.X.astype(np.float32)), task.predict(student, task.X)
    )


def test_huge_and_constant_features_train_without_nan(task):
    X = np.column_stack([task.X * 1e12, np.full(len(task.X), 3.0)])
    teacher = clone(task.unfitted_teacher)
    student = task.estimator(teacher, **small(max_epochs=40)).fit(X, task.y)
    assert np.isfinite(task.predict(student, X)).all()
    assert task.fidelity(student, student.teacher_, X) > task.good_fidelity


@pytest.mark.parametrize("feature", ["near-float32-limits", "subnormal-spread"])
def test_features_at_float32_limits_train_to_finite_predictions(task, feature):
    X = task.X.copy()
    rare = np.random.default_rng(0).random(len(X)) < 0.02
    if feature == "near-float32-limits":
        X[:, 0] = np.where(rare, 2.7e38, -1e38)
    else:
        X[:, 1] = np.where(rare, 1e-45, 0.0)
    student = _fit(task, X=X, max_epochs=5)
    assert np.isfinite(task.predict(student, X)).all()


def test_a_diverging_student_is_refused(task):
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights.*lower lr"):
        _fit(task, lr=1e30, max_epochs=5)


# -- devices --------------------------------------------------------------------------------


def test_auto_device_picks_cuda_only_when_available(task):
    student = _fit(task, y=task.y, device="auto", max_epochs=2)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(student.student_.module_.parameters()).device.type == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_student_trains_and_predicts_on_cuda(task):
    gpu = _fit(task, y=task.y, device="cuda")
    cpu = _fit(task, y=task.y, device="cpu")
    assert next(gpu.student_.module_.parameters()).is_cuda
    assert task.fidelity(gpu, cpu, task.X) > task.good_fidelity
    again = _fit(task, y=task.y, device="cuda")
    np.testing.assert_allclose(task.predict(again, task.X), task.predict(gpu, task.X), atol=1e-6)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(task.predict(restored, task.X), task.predict(gpu, task.X))


# -- MLPClassifier's training attributes, warm starts, progress ---------------------------


def _sklearn_mlp(task, early_stopping):
    """scikit-learn's own MLP of the task, fitted briefly: the reference of the attributes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    mlp = MLPClassifier if task.name == "classification" else MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return mlp(
            hidden_layer_sizes=(8,), max_iter=3, early_stopping=early_stopping, random_state=0
        ).fit(task.X, task.y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_training_curves_mean_what_mlp_s_mean(task, early_stopping):
    student = _fit(task, y=task.y, early_stopping=early_stopping, max_epochs=8)
    reference = _sklearn_mlp(task, early_stopping)
    history = student.student_.history
    assert student.n_iter_ == len(history)
    np.testing.assert_allclose(student.loss_curve_, history[:, "train_loss"])
    for name in ("best_loss_", "validation_scores_", "best_validation_score_"):
        # None exactly where MLPClassifier / MLPRegressor has None.
        assert (getattr(student, name) is None) == (getattr(reference, name) is None), name
    if early_stopping:
        assert len(student.validation_scores_) == student.n_iter_
        assert student.best_validation_score_ == max(student.validation_scores_)
    else:
        assert student.best_loss_ == min(student.loss_curve_)


def _kept_epoch_score(student):
    """The validation score of the epoch whose weights early stopping kept."""
    [stopping] = [cb for name, cb in student.student_.callbacks_ if name == "EarlyStopping"]
    return student.validation_scores_[stopping.best_epoch_ - 1]


def test_validation_scores_are_the_estimator_s_score_on_the_validation_rows(task):
    n_train = len(task.X) * 2 // 3
    X_val, y_val = task.X[n_train:], task.y[n_train:]
    student = task.estimator(task.teacher, **small(max_epochs=15, n_iter_no_change=100))
    student.fit(task.X[:n_train], task.y[:n_train], X_val=X_val, y_val=y_val)
    # Read off the validation loss's forward pass, yet the estimator's score
    # (accuracy, or R^2) of the weights kept.
    assert _kept_epoch_score(student) == pytest.approx(student.score(X_val, y_val), abs=1e-6)
    # Without y_val the rows are scored against the teacher.
    student.fit(task.X[:n_train], task.y[:n_train], X_val=X_val)
    expected = student.score(X_val, task.teacher.predict(X_val))
    assert _kept_epoch_score(student) == pytest.approx(expected, abs=1e-6)


class _WeightsAtStart(Callback):
    """Records the module's weights as training begins (on the class: fits clone callbacks)."""

    seen = []

    def on_train_begin(self, net, **kwargs):
        type(self).seen.append(copy.deepcopy(net.module_.state_dict()))


def test_warm_start_continues_from_the_previous_weights(task):
    _WeightsAtStart.seen = []
    student = task.estimator(
        task.teacher, callbacks=[_WeightsAtStart()], **small(max_epochs=6, early_stopping=False)
    )
    student.fit(task.X, task.y)
    first_curve = list(student.loss_curve_)
    final = copy.deepcopy(student.student_.module_.state_dict())
    first_net = student.student_

    student.set_params(warm_start=True, max_epochs=4).fit(task.X, task.y)
    # The second fit's first step starts from the first fit's final weights,
    # standardisation and output layer.
    for name, value in _WeightsAtStart.seen[1].items():
        torch.testing.assert_close(value, final[name], rtol=0, atol=0, msg=name)
    assert student.n_iter_ == 4
    assert student.loss_curve_[:6] == first_curve and len(student.loss_curve_) == 10
    # The curve goes on from where it stopped, not from the start.
    assert student.loss_curve_[6] < (first_curve[0] + first_curve[-1]) / 2
    assert student.best_loss_ == min(student.loss_curve_)
    # The previous fit's net is left as it was.
    for name, value in first_net.module_.state_dict().items():
        torch.testing.assert_close(value, final[name], rtol=0, atol=0)

    # warm_start=False starts over: the same model as a fresh fit.
    cold = student.set_params(warm_start=False, max_epochs=6).fit(task.X, task.y)
    assert cold.loss_curve_ == first_curve
    np.testing.assert_array_equal(
        task.predict(cold, task.X),
        task.predict(_fit(task, y=task.y, max_epochs=6, early_stopping=False), task.X),
    )


def test_warm_start_refuses_a_fit_it_cannot_continue(task):
    student = _fit(task, y=task.y, max_epochs=2, warm_start=True)
    with pytest.raises(ValueError, match="warm_start=True continues .* this X has 2"):
        student.fit(task.X[:, :2], task.y)
    with pytest.raises(ValueError, match="hidden_layer_sizes is now \\(8,\\)"):
        clone(student).set_params(max_epochs=1).fit(task.X, task.y).set_params(
            hidden_layer_sizes=(8,)
        ).fit(task.X, task.y)
    with pytest.raises(ValueError, match="student now builds a LinearModule"):
        student.set_params(student=LinearModule).fit(task.X, task.y)


def test_warm_start_in_a_search_starts_each_clone_over(task):
    grid = {"warm_start": [False, True]}
    search = GridSearchCV(task.estimator(task.teacher, **small()), grid, cv=2).fit(task.X, task.y)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] == scores[1]


_EPOCH_LINE = re.compile(
    r"epoch (\d+)/(\d+), train loss [-+.e\d]+(, valid loss [-+.e\d]+, valid score [-.\d]+)?, "
    r"[\d.]+ s"
)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_verbose_prints_one_plain_line_per_epoch_into_a_pipe(task, capsys, early_stopping):
    student = _fit(task, y=task.y, verbose=1, max_epochs=5, early_stopping=early_stopping)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == student.n_iter_ == 5 and err == ""
    for epoch, line in enumerate(lines, start=1):
        match = _EPOCH_LINE.fullmatch(line)
        assert match and match.group(1, 2) == (str(epoch), "5"), line
        assert bool(match.group(3)) == early_stopping
    assert "\x1b" not in out and "\r" not in out
    _fit(task, y=task.y, verbose=0, max_epochs=2)
    assert capsys.readouterr() == ("", "")


def test_verbose_shows_the_epoch_early_stopping_ends_on(task, capsys, monkeypatch):
    # EarlyStopping ends the fit inside the last epoch's on_epoch_end, before
    # the progress callbacks after it: they catch up in on_train_end.
    settings = dict(y=task.y, max_epochs=50, early_stopping=True, n_iter_no_change=2, tol=10.0)
    student = _fit(task, verbose=1, **settings)
    lines = capsys.readouterr().out.splitlines()
    assert student.n_iter_ < 50 and len(lines) == student.n_iter_
    assert lines[-1].startswith(f"epoch {student.n_iter_}/50,")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _fit(task, verbose=1, **settings)
    assert f"{student.n_iter_}/50" in terminal.getvalue()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_shows_a_bar_on_a_terminal(task, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _fit(task, y=task.y, verbose=1, max_epochs=3)
    assert "3/3" in terminal.getvalue() and "train loss=" in terminal.getvalue()
    assert capsys.readouterr().out == ""
    # verbose=2: lines even on a terminal.
    _fit(task, y=task.y, verbose=2, max_epochs=3)
    assert len(capsys.readouterr().out.splitlines()) == 3


# -- CPU threads ---------------------------------------------------------------------


class _ThreadsSeen(Callback):
    """Records torch's thread count at every training step (on the class: fits clone it)."""

    seen = []

    def on_batch_begin(self, net, training=False, **kwargs):
        type(self).seen.append(torch.get_num_threads())


class _FailsAfterAnEpoch(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("boom")


def test_a_small_student_trains_on_one_thread_and_leaves_the_count_as_it_was(task, two_threads):
    _ThreadsSeen.seen = []
    _fit(task, y=task.y, max_epochs=2, callbacks=[_ThreadsSeen()])
    assert _ThreadsSeen.seen and set(_ThreadsSeen.seen) == {1}
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"):
        _fit(task, y=task.y, max_epochs=2, callbacks=[_FailsAfterAnEpoch()])
    assert torch.get_num_threads() == 2


def test_cuda_graph_true_on_the_cpu_warns_and_trains_eagerly(task):
    eager = _fit(task, y=task.y, max_epochs=3, cuda_graph=False)
    with pytest.warns(UserWarning, match="cuda_graph=True but the training steps run eagerly"):
        asked = _fit(task, y=task.y, max_epochs=3, cuda_graph=True)
    np.testing.assert_array_equal(task.predict(asked, task.X), task.predict(eager, task.X))


# -- the defaults (docs/defaults.md) ---------------------------------------------------


def test_early_stopping_is_on_at_every_size_by_default(task):
    # Far below 10,000 rows: a held-out share stops the training, as the
    # defaults panel found best; "auto" keeps version 0.1's rule.
    student = task.estimator(task.teacher, random_state=0).fit(task.X, task.y)
    assert "valid_loss" in student.student_.history[-1]
    assert student.n_iter_ < student.max_epochs
    old_rule = task.estimator(task.teacher, early_stopping="auto", **small(max_epochs=3))
    assert "valid_loss" not in old_rule.fit(task.X, task.y).student_.history[-1]


def test_a_classifier_holds_out_every_class_of_the_teacher(iris, iris_forest):
    # A stratified hold-out: 10% of 10 rows of each of 3 classes is one row
    # of each; a random one misses a class for each of these 5 seeds.
    X, y = iris
    rows = np.concatenate([np.flatnonzero(y == label)[:10] for label in range(3)])
    X_rows = X[rows].astype(np.float32)
    targets = ClassificationTargets.pack(teacher_logits(iris_forest, X_rows), y[rows])
    for seed in range(5):
        student = DistilledClassifier(iris_forest, **small(max_epochs=2, random_state=seed))
        split = student.fit(X[rows], y[rows]).student_.train_split
        _, valid = split(TensorDataset(X_rows, targets))
        assert sorted(ClassificationTargets.strata(valid.y).tolist()) == [0, 1, 2]
