import numpy as np
import pytest
import torch
from conftest import small
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.history import History

from skdistill import DistilledClassifier
from skdistill._predict import CPU_CHUNK_ROWS
from skdistill._student import MIN_SCALE_OF_RANGE, build_student_module
from skdistill._training import cuda_graph_kwargs
from skdistill.student import (
    MLP,
    HoldoutSplit,
    Standardize,
    StudentNet,
    TensorBatchIterator,
    TensorDataset,
    directional_derivative,
    predict_logits,
)


def test_standardize_centres_and_scales():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[5.0, -3.0], scale=[2.0, 0.5], size=(2000, 2))
    out = Standardize.from_data(X)(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)


def test_standardize_bounds_the_scale_of_nearly_constant_features():
    # A rare binary flag: std 0.01, a standardised 1 would be about 100.
    X = np.zeros((10_000, 1))
    X[:1] = 1.0
    layer = Standardize.from_data(X)
    assert float(layer.scale[0]) == pytest.approx(MIN_SCALE_OF_RANGE * 1.0)
    assert float(layer(torch.ones(1, 1))[0, 0]) <= 1 / MIN_SCALE_OF_RANGE


def test_standardize_constant_and_huge_features_stay_finite():
    X = np.column_stack([np.full(50, 7.0), np.linspace(-1e12, 1e12, 50)])
    layer = Standardize.from_data(X)
    assert float(layer.scale[0]) == 1.0
    out = layer(torch.as_tensor(X, dtype=torch.float32))
    assert torch.isfinite(out).all() and float(out.abs().max()) < 10


def test_standardize_is_finite_in_float32_at_its_limits():
    X = np.zeros((50, 2), dtype=np.float32)
    # Values on both sides of 0 near float32's limit: a row is further from
    # the mean than float32 reaches.
    X[:, 0] = -1e38
    X[0, 0] = 2.7e38
    # A spread of subnormal values, whose scale rounds to 0 in float32.
    X[::2, 1] = 1e-45
    layer = Standardize.from_data(X)
    assert torch.isfinite(layer.mean).all() and torch.isfinite(layer.scale).all()
    assert (layer.scale >= torch.finfo(torch.float32).tiny).all()
    out = layer(torch.from_numpy(X))
    assert torch.isfinite(out).all()
    # Bounded as any feature's: the scale is at least a share of the range.
    assert float(out[:, 0].abs().max()) <= 1 / MIN_SCALE_OF_RANGE
    assert float(layer.scale[1]) == 1.0  # as good as constant


def test_standardize_uses_sample_weight():
    X = np.array([[0.0], [10.0]])
    layer = Standardize.from_data(X, sample_weight=np.array([3.0, 1.0]))
    assert float(layer.mean[0]) == 2.5


def test_batch_iterator_shuffles_and_covers_every_row_once():
    dataset = TensorDataset(np.arange(10.0).reshape(10, 1), np.arange(10))
    torch.manual_seed(0)
    batches = list(TensorBatchIterator(dataset, batch_size=4, shuffle=True))
    seen = torch.cat([y for _, y in batches]).tolist()
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    for X, y in batches:  # rows stay paired with their targets
        np.testing.assert_array_equal(X[:, 0].numpy(), y.numpy())


def test_holdout_split_is_disjoint_and_reproducible():
    dataset = TensorDataset(np.arange(20.0).reshape(20, 1), np.arange(20))
    train, valid = HoldoutSplit(0.25, random_state=3)(dataset)
    _, valid_again = HoldoutSplit(0.25, random_state=3)(dataset)
    assert len(valid) == 5 and len(train) == 15
    assert set(train.y.tolist()).isdisjoint(valid.y.tolist())
    torch.testing.assert_close(valid.y, valid_again.y)


def test_predictions_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    module = MLP(30, 4, hidden_layer_sizes=(64, 64))
    X = np.random.default_rng(0).normal(size=(CPU_CHUNK_ROWS + 37, 30)).astype(np.float32)
    together = predict_logits(module, X, "cpu")
    for row in [0, 5, CPU_CHUNK_ROWS + 3]:
        alone = predict_logits(module, X[row : row + 1], "cpu")
        np.testing.assert_array_equal(alone[0], together[row])


def test_predict_logits_restores_training_mode():
    module = MLP(3, 2, hidden_layer_sizes=(4,), dropout=0.5)
    module.train()
    predict_logits(module, np.zeros((2, 3), dtype=np.float32), "cpu")
    assert module.training


def test_directional_derivative_is_the_jacobian_times_the_direction():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    X, direction = torch.randn(5, 3), torch.randn(5, 3)
    expected = direction @ layer.weight.T
    torch.testing.assert_close(directional_derivative(layer, X, direction), expected)
    # Gradients flow to the parameters through it (the student's side).
    directional_derivative(layer, X, direction).pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


# -- the training loop ----------------------------------------------------------------


class _RecordsBatchLossType(Callback):
    """Records, per batch, the type of the loss the history holds during on_batch_end."""

    def on_batch_end(self, net, training=False, **kwargs):
        key = "train_loss" if training else "valid_loss"
        net.history.record_batch("loss_type", type(net.history[-1, "batches", -1, key]).__name__)


def _loop_record(student):
    """What the loop writes to the history (timings aside), and the weights."""
    keys = ("epoch", "train_loss", "valid_loss", "train_batch_count", "valid_batch_count")
    batch_keys = ("train_loss", "valid_loss", "train_batch_size", "valid_batch_size")
    history = [
        (
            {key: row[key] for key in keys if key in row},
            [{key: batch[key] for key in batch_keys if key in batch} for batch in row["batches"]],
        )
        for row in student.student_.history
    ]
    return history, {k: v.clone() for k, v in student.student_.module_.state_dict().items()}


def test_batch_losses_are_read_once_per_epoch_with_skorchs_values(iris, iris_forest, monkeypatch):
    X, y = iris
    params = small(max_epochs=20, early_stopping=True, n_iter_no_change=2, tol=0.2)
    fit = dict(X_val=X[::5], y_val=y[::5])
    lazy = DistilledClassifier(iris_forest, callbacks=[_RecordsBatchLossType()], **params)
    lazy.fit(X, y, **fit)
    types = {batch["loss_type"] for row in lazy.student_.history for batch in row["batches"]}
    assert types == {"Tensor"}  # a 0-d tensor while the epoch runs: no host sync per step
    every_loss = [
        batch[key]
        for row in lazy.student_.history
        for batch in row["batches"]
        for key in ("train_loss", "valid_loss")
        if key in batch
    ]
    assert all(type(loss) is float for loss in every_loss)  # floats once the epoch ends

    monkeypatch.setattr(StudentNet, "run_single_epoch", NeuralNet.run_single_epoch)
    eager = DistilledClassifier(iris_forest, **params).fit(X, y, **fit)
    (lazy_history, lazy_weights), (eager_history, eager_weights) = map(_loop_record, (lazy, eager))
    assert len(lazy_history) < 20  # early stopping stopped both, at the same epoch
    assert lazy_history == eager_history  # bit for bit
    for name, tensor in lazy_weights.items():
        torch.testing.assert_close(tensor, eager_weights[name], rtol=0, atol=0)


class _OtherHistory(History):
    """A history that is not skorch's plain History (as accelerate's is not)."""


def test_a_history_of_another_kind_gets_skorchs_own_loop():
    class Net(StudentNet):
        def initialize_history(self):
            self.history_ = _OtherHistory()
            return self

    net = Net(
        torch.nn.Linear,
        criterion=torch.nn.MSELoss,
        module__in_features=2,
        module__out_features=1,
        max_epochs=1,
        batch_size=2,
        train_split=None,
        callbacks=[_RecordsBatchLossType()],
        verbose=0,
    )
    net.fit(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32"))
    assert [batch["loss_type"] for batch in net.history[-1, "batches"]] == ["float", "float"]


def test_cuda_graph_auto_is_on_for_cuda_and_the_builtin_mlp_only():
    standardize = Standardize.from_data(np.eye(4))
    mlp = build_student_module(MLP(4, 3, (8,)), standardize, 3)
    custom = build_student_module(torch.nn.Linear(4, 3), standardize, 3)
    on = {"cuda_graph": True, "optimizer__capturable": True}
    assert cuda_graph_kwargs("auto", "cuda", mlp) == on
    assert cuda_graph_kwargs("auto", "cuda:1", mlp) == on
    assert cuda_graph_kwargs("auto", "cpu", mlp) == {}
    assert cuda_graph_kwargs("auto", "cuda", mlp, {"derivative_weight": 0.1}) == {}
    assert cuda_graph_kwargs("auto", "cuda", custom) == {}
    assert cuda_graph_kwargs(True, "cuda", custom) == on
    # Asked for on the CPU: the net warns and steps eagerly (Adam refuses
    # capturable=True there, so it is not set).
    assert cuda_graph_kwargs(True, "cpu", mlp) == {"cuda_graph": True}
    assert cuda_graph_kwargs(False, "cuda", mlp) == {}
