import numpy as np
import pytest
import torch

from skdistill._predict import CPU_CHUNK_ROWS
from skdistill._student import MIN_SCALE_OF_RANGE
from skdistill.student import (
    MLP,
    HoldoutSplit,
    Standardize,
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
