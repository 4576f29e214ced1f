"""The prediction path: never changes the model, any number of threads, any batch."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import small

from skdistill import DistilledClassifier, SpecialistEnsemble
from skdistill._predict import CPU_CHUNK_ROWS
from skdistill.student import MLP, predict_logits


class BatchNormBody(torch.nn.Module):
    """A student body whose train mode would change its state and its outputs."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features, 32),
            torch.nn.BatchNorm1d(32),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(32, n_outputs),
        )

    def forward(self, X):
        return self.layers(X)


def _state(module):
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def _flags(module):
    return [submodule.training for submodule in module.modules()]


@pytest.fixture(scope="module")
def many_rows(iris):
    X, _ = iris
    return np.random.default_rng(0).normal(X.mean(0), X.std(0), size=(20_000, 4))


@pytest.mark.parametrize("body", [None, BatchNormBody], ids=["default MLP", "BatchNorm"])
def test_concurrent_predictions_are_the_sequential_ones(iris, iris_forest, many_rows, body):
    X, y = iris
    student = DistilledClassifier(iris_forest, student=body, **small()).fit(X, y)
    module = student.student_.module_
    state, flags = _state(module), _flags(module)
    expected = student.predict_proba(many_rows)

    def predict(_):
        return student.predict_proba(many_rows)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(predict, range(6 * 15)))
    for result in results:
        np.testing.assert_array_equal(result, expected)
    # Neither the weights, the BatchNorm statistics nor a flag moved.
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)
    assert _flags(module) == flags
    np.testing.assert_array_equal(student.predict_proba(many_rows), expected)


def test_a_student_left_in_train_mode_still_predicts_in_eval_mode(iris, iris_forest):
    X, y = iris
    student = DistilledClassifier(iris_forest, student=BatchNormBody, **small()).fit(X, y)
    expected = student.predict_proba(X)
    student.student_.module_.train()
    state = _state(student.student_.module_)
    np.testing.assert_array_equal(student.predict_proba(X), expected)
    assert student.student_.module_.training  # left as the user set it
    for name, tensor in student.student_.module_.state_dict().items():
        torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)


def test_specialists_predict_concurrently(iris, iris_forest):
    X, y = iris
    ensemble = SpecialistEnsemble(iris_forest, n_specialists=2, **small()).fit(X, y)
    expected = ensemble.predict_proba(X)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: ensemble.predict_proba(X), range(20)))
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_changed_weights_are_seen(iris, iris_forest):
    # The inference copy follows the module's tensors: an in-place change
    # (as calibrate_bias makes) is predicted with at once.
    X, y = iris
    student = DistilledClassifier(iris_forest, **small(max_epochs=2)).fit(X, y)
    before = student.decision_function(X[:5])
    with torch.no_grad():
        student.student_.module_.logit_bias += torch.tensor([1.0, 0.0, -1.0])
    after = student.decision_function(X[:5])
    np.testing.assert_allclose(after - before, np.tile([1.0, 0.0, -1.0], (5, 1)), atol=1e-5)


def test_a_row_alone_costs_one_row():
    # Lean path: one row is one row's forward pass, not a padded chunk, and
    # a large batch goes in chunks. The hook is copied with the module into
    # its float64 inference copy, so it sees the copy's passes: a one-row
    # dry run when the copy is made, then the calls.
    module = MLP(4, 3, hidden_layer_sizes=(8,))
    seen = []
    module.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].shape[0]))
    predict_logits(module, np.zeros((1, 4), dtype=np.float32), "cpu")
    predict_logits(module, np.zeros((CPU_CHUNK_ROWS + 5, 4), dtype=np.float32), "cpu")
    assert seen == [1, 1, CPU_CHUNK_ROWS, 5]
