"""Output-bias calibration (skdistill.bias) and DistilledClassifier(calibrate_bias=True)."""

import numpy as np
import pytest
from conftest import small
from scipy.special import softmax
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from skdistill import DistilledClassifier
from skdistill.bias import fit_logit_bias


def _log_likelihood(logits, labels):
    proba = softmax(logits, axis=1)
    return np.log(proba[np.arange(len(labels)), labels]).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bias_recovers_a_shift_of_the_logits(seed):
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(4000, 4)) * 2
    labels = np.array([rng.choice(4, p=p) for p in softmax(true_logits, axis=1)])
    shift = np.array([0.0, 0.0, -3.0, 1.0])  # a student that undervalues class 2
    bias = fit_logit_bias(true_logits + shift, labels)
    # The fitted bias undoes the shift, up to a constant softmax ignores.
    np.testing.assert_allclose(bias - bias.mean(), -(shift - shift.mean()), atol=0.15)


def test_bias_is_the_likelihood_optimum_and_centred():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3))
    labels = rng.integers(0, 3, size=300)
    bias = fit_logit_bias(logits, labels)
    assert abs(bias.sum()) < 1e-5
    best = _log_likelihood(logits + bias, labels)
    for step in np.eye(3) * 0.05:
        assert best >= _log_likelihood(logits + bias + step, labels)
        assert best >= _log_likelihood(logits + bias - step, labels)


def test_soft_targets_equal_to_the_student_give_no_bias():
    logits = np.random.default_rng(0).normal(size=(200, 5))
    np.testing.assert_allclose(fit_logit_bias(logits, softmax(logits, axis=1)), 0, atol=1e-4)


def test_a_class_no_row_shows_gets_a_finite_bias():
    logits = np.zeros((10, 3))
    bias = fit_logit_bias(logits, np.array([0, 1] * 5))
    assert np.isfinite(bias).all() and bias[2] < bias[0] - 5


def _blobs():
    X, y = make_blobs(
        n_samples=900, centers=[[0, 0], [4, 0], [2, 3.5]], cluster_std=1.2, random_state=0
    )
    return X, y


SETTINGS = small(hidden_layer_sizes=(32,), max_epochs=60, batch_size=32)


def test_calibration_recovers_a_class_absent_from_the_transfer_set():
    X, y = _blobs()
    train, val = np.arange(0, 900, 2), np.arange(1, 900, 2)
    teacher = LogisticRegression().fit(X[train], y[train])
    seen = train[y[train] != 2]  # Hinton's omitted 3s: no row of class 2 to distil on
    plain = DistilledClassifier(teacher, temperature=2.0, early_stopping=False, **SETTINGS).fit(
        X[seen]
    )
    calibrated = DistilledClassifier(
        teacher, temperature=2.0, calibrate_bias=True, early_stopping=False, **SETTINGS
    ).fit(X[seen], X_val=X[val], y_val=y[val])
    # Same training (same seed, no early stopping): only the bias differs.
    np.testing.assert_array_equal(
        plain.student_.module_.body.layers[0].weight.detach().numpy(),
        calibrated.student_.module_.body.layers[0].weight.detach().numpy(),
    )
    assert calibrated.logit_bias_[2] > calibrated.logit_bias_[:2].max()
    assert not plain.logit_bias_.any()
    on_class_2 = [np.mean(model.predict(X[val][y[val] == 2]) == 2) for model in (plain, calibrated)]
    assert on_class_2[1] > on_class_2[0] + 0.02
    accuracy = [model.score(X[val], y[val]) for model in (plain, calibrated)]
    assert accuracy[1] > accuracy[0]


def test_calibration_without_labels_uses_the_teacher():
    X, y = _blobs()
    teacher = LogisticRegression().fit(X, y)
    seen = y != 2
    calibrated = DistilledClassifier(
        teacher, calibrate_bias=True, early_stopping=False, **SETTINGS
    ).fit(X[seen], X_val=X)
    on_class_2 = np.mean(calibrated.predict(X[~seen]) == 2)
    assert on_class_2 > 0.8
    # The bias lives in the module, so exported and saved students carry it.
    np.testing.assert_array_equal(
        calibrated.student_.module_.logit_bias.numpy(), calibrated.logit_bias_
    )


def test_calibrate_bias_without_validation_rows_is_refused_before_training():
    X, y = _blobs()
    teacher = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="calibrate_bias=True needs validation rows: pass X_val"):
        DistilledClassifier(teacher, calibrate_bias=True).fit(X)
    with pytest.raises(ValueError, match="y_val was given without X_val"):
        DistilledClassifier(teacher).fit(X, y_val=y)
