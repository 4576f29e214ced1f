"""The GPU paths: copies to the device, the CUDA-graph training step, prediction.

Every test needs CUDA and is skipped without it (run them with
``pytest -k "cuda or device"`` on a GPU machine, as benchmarks/device_check.sh does).
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import small
from skorch.callbacks import Callback, LRScheduler

from skdistill import DistilledClassifier, DistilledRegressor
from skdistill._device import to_device
from skdistill._predict import DEVICE_CHUNK_ROWS
from skdistill.student import MLP, predict_logits

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class _RecordsGraph(Callback):
    """Records per epoch whether the net's training steps replay a captured graph."""

    def on_epoch_end(self, net, **kwargs):
        state = getattr(net, "graph_state_", None)
        replaying = state is not None and state.enabled and state.graph is not None
        net.history.record("graph_captured", replaying)


def _cuda_student(iris_forest, iris, **params):
    X, y = iris
    # 150 rows at batch 16: 9 full batches per epoch and one of 6 rows
    params = small(max_epochs=5, device="cuda", **params)
    return DistilledClassifier(iris_forest, **params).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.float64])
def test_to_device_copies_every_block(dtype):
    array = np.arange(10_001 * 3).reshape(10_001, 3).astype(dtype)
    for staging_bytes in [64, 1000, 1 << 26]:
        tensor = to_device(array, "cuda", staging_bytes=staging_bytes)
        assert tensor.is_cuda and tensor.dtype == torch.from_numpy(array).dtype
        np.testing.assert_array_equal(tensor.cpu().numpy(), array)
    assert to_device(array[::2], "cuda").cpu().numpy().tolist() == array[::2].tolist()
    assert to_device(np.empty((0, 3), dtype), "cuda").shape == (0, 3)


def test_cuda_graph_is_captured_by_default_and_released_after_fit(iris, iris_forest):
    student = _cuda_student(iris_forest, iris, callbacks=[_RecordsGraph()])
    net = student.student_
    assert net.cuda_graph and net.optimizer_.param_groups[0]["capturable"]
    assert all(row["graph_captured"] for row in net.history)
    assert net.graph_state_ is None  # released with fit
    losses = [batch["train_loss"] for row in net.history for batch in row["batches"]]
    assert all(type(loss) is float and np.isfinite(loss) for loss in losses)
    assert net.history[-1, "train_loss"] < net.history[0, "train_loss"]


def test_cuda_graph_same_seed_same_model_close_to_eager(iris, iris_forest):
    X, _ = iris
    graph = _cuda_student(iris_forest, iris)
    again = _cuda_student(iris_forest, iris)
    np.testing.assert_array_equal(graph.predict_proba(X), again.predict_proba(X))
    eager = _cuda_student(iris_forest, iris, cuda_graph=False)
    assert not eager.student_.cuda_graph
    np.testing.assert_allclose(graph.predict_proba(X), eager.predict_proba(X), atol=1e-3)


def test_cuda_graph_with_early_stopping_and_a_regressor(
    diabetes, diabetes_forest, iris, iris_forest
):
    X, y = iris
    params = small(max_epochs=8, device="cuda", early_stopping=True, n_iter_no_change=3)
    first = DistilledClassifier(iris_forest, callbacks=[_RecordsGraph()], **params)
    first.fit(X, y, X_val=X[::4], y_val=y[::4])
    second = DistilledClassifier(iris_forest, **params).fit(X, y, X_val=X[::4], y_val=y[::4])
    assert first.student_.history[-1, "graph_captured"]
    assert [r["valid_loss"] for r in first.student_.history] == [
        r["valid_loss"] for r in second.student_.history
    ]
    X, y = diabetes
    regressor = DistilledRegressor(diabetes_forest, **small(max_epochs=5, device="cuda"))
    regressor.fit(X, y)
    assert regressor.student_.optimizer_.param_groups[0]["capturable"]
    assert np.isfinite(regressor.predict(X)).all()


class _GradientHook(Callback):
    def on_grad_computed(self, net, named_parameters, **kwargs):
        pass


def test_cuda_graph_falls_back_to_eager_steps_with_a_warning(iris, iris_forest):
    with pytest.warns(UserWarning, match="on_grad_computed"):
        student = _cuda_student(iris_forest, iris, cuda_graph=True, callbacks=[_GradientHook()])
    assert np.isfinite(student.predict_proba(iris[0])).all()
    # "auto" leaves user modules eager, without a warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        custom = _cuda_student(iris_forest, iris, student=torch.nn.Linear(4, 3))
    assert not custom.student_.cuda_graph
    assert not [w for w in caught if "cuda_graph" in str(w.message)]


def test_a_learning_rate_schedule_leaves_the_graph(iris, iris_forest):
    # The graph holds the learning rate as a constant: a schedule ends it.
    schedule = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    with pytest.warns(UserWarning, match="optimizer's settings changed"):
        student = _cuda_student(iris_forest, iris, callbacks=[schedule, _RecordsGraph()])
    history = student.student_.history
    assert history[0, "graph_captured"] and not history[-1, "graph_captured"]
    assert student.student_.optimizer_.param_groups[0]["lr"] < 1e-2 / 8


def test_a_graph_trained_student_pickles(iris, iris_forest):
    X, _ = iris
    student = _cuda_student(iris_forest, iris)
    restored = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(restored.predict_proba(X), student.predict_proba(X))


def test_cuda_prediction_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    module = MLP(30, 4, hidden_layer_sizes=(64, 64)).cuda().eval()
    X = np.random.default_rng(0).normal(size=(DEVICE_CHUNK_ROWS + 37, 30)).astype(np.float32)
    together = predict_logits(module, X, "cuda")
    for row in [0, 5, DEVICE_CHUNK_ROWS + 3]:
        alone = predict_logits(module, X[row : row + 1], "cuda")
        np.testing.assert_array_equal(alone[0], together[row])
