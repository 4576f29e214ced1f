"""The validation scores behind ``validation_scores_``, summed over batches,
against scikit-learn's metrics on all the rows at once."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score
from skorch.history import History

from skdistill._curves import ValidationAccuracy, ValidationR2
from skdistill.losses import ClassificationTargets, RegressionTargets


def _epoch_score(scorer, y_pred, targets, batch_size=7):
    """The score a scorer records for one epoch of validation batches."""
    net = SimpleNamespace(history=History())
    net.history.new_epoch()
    scorer.on_train_begin(net)
    scorer.on_epoch_begin(net)
    for start in range(0, len(y_pred), batch_size):
        rows = slice(start, start + batch_size)
        batch = (None, torch.as_tensor(targets[rows]))
        scorer.on_batch_end(net, batch=batch, training=False, y_pred=torch.as_tensor(y_pred[rows]))
        # Training batches are not scored.
        scorer.on_batch_end(net, batch=batch, training=True, y_pred=torch.zeros(1))
    scorer.on_epoch_end(net)
    return net.history[-1, "valid_score"]


def test_accuracy_counts_labels_else_the_teacher_s_class_and_weights():
    rng = np.random.default_rng(0)
    n_rows, n_classes = 40, 3
    teacher = rng.normal(size=(n_rows, n_classes))
    labels = rng.integers(0, n_classes, n_rows)
    labels[::3] = -1  # rows without a label: the teacher's class stands in
    weights = rng.uniform(0.1, 2.0, n_rows)
    student = rng.normal(size=(n_rows, n_classes)).astype(np.float32)
    targets = ClassificationTargets.pack(teacher, labels, weights)
    expected_labels = np.where(labels >= 0, labels, teacher.argmax(axis=1))
    expected = accuracy_score(expected_labels, student.argmax(axis=1), sample_weight=weights)
    assert _epoch_score(ValidationAccuracy(), student, targets) == pytest.approx(expected)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_r2_uses_y_else_the_teacher_weights_and_averages_outputs(n_outputs):
    rng = np.random.default_rng(0)
    n_rows = 50
    # Far from zero: the sums must not lose the spread to cancellation.
    teacher = 1e4 + rng.normal(size=(n_rows, n_outputs))
    y = teacher + rng.normal(scale=0.5, size=teacher.shape)
    y[::4] = np.nan
    weights = rng.uniform(0.1, 2.0, n_rows)
    student = (teacher + rng.normal(scale=0.3, size=teacher.shape)).astype(np.float32)
    targets = RegressionTargets.pack(teacher, y, weights)
    unpacked_teacher, unpacked_y, _ = RegressionTargets.unpack(targets.astype(np.float64))
    truth = np.where(np.isnan(unpacked_y), unpacked_teacher, unpacked_y)
    expected = r2_score(truth, student, sample_weight=weights)
    assert _epoch_score(ValidationR2(), student, targets) == pytest.approx(expected, abs=1e-9)


def test_r2_of_a_constant_target_is_one_when_met_else_zero():
    targets = RegressionTargets.pack(np.full((6, 1), 2.0))
    assert _epoch_score(ValidationR2(), np.full((6, 1), 2.0, np.float32), targets) == 1.0
    assert _epoch_score(ValidationR2(), np.full((6, 1), 3.0, np.float32), targets) == 0.0
