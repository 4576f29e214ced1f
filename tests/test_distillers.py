"""What DistilledClassifier and DistilledRegressor share, tested once on both.

``BaseDistiller.fit`` is one training loop; each test here runs on each
distiller (the ``task`` fixture of conftest.py: iris and a forest, diabetes
and a forest). What only one task has is in test_classifier.py and
test_regressor.py.
"""

import pickle
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

from skdistill import Munge, load_student, save_student


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
        (lambda X, y: (np.where(np.eye(*X.shape) > 0, np.nan, X), y), "NaN"),
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
