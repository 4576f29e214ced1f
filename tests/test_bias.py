import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from skdistill import DistilledClassifier
from skdistill.bias import absent_class_bias, absent_classes


def test_absent_classes_are_those_never_predicted():
    logits = np.array([[3.0, 0.0, 1.0, 0.0], [0.0, 3.0, 1.0, 0.0]])
    assert absent_classes(logits).tolist() == [2, 3]


@pytest.mark.parametrize("seed", [0, 1])
def test_bias_matches_mean_probabilities_of_absent_classes(seed):
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(500, 5)) * 2
    teacher[:, 3] -= 12  # class 3 is never the argmax
    teacher[:, 4] -= 14  # nor class 4
    student = teacher + rng.normal(size=teacher.shape) * 0.5
    student[:, 3] -= 2.0  # the student underrates the absent classes
    student[:, 4] -= 1.0
    bias = absent_class_bias(student, teacher)
    assert not bias[:3].any() and bias[3] > 0 and bias[4] > 0
    got = softmax(student + bias, axis=1).mean(axis=0)
    want = softmax(teacher, axis=1).mean(axis=0)
    np.testing.assert_allclose(got[3:], want[3:], rtol=1e-5)


def test_no_absent_class_no_bias():
    logits = np.eye(3) * 5
    assert not absent_class_bias(logits - 1, logits).any()


def _blobs():
    X, y = make_blobs(n_samples=600, centers=[[0, 0], [6, 0], [3, 6]], random_state=0)
    return X, y


def test_student_recovers_a_class_absent_from_the_transfer_set():
    X, y = _blobs()
    teacher = LogisticRegression().fit(X, y)
    seen = y != 2  # Hinton's omitted 3s: no row of class 2 to distil on
    settings = dict(hidden_layer_sizes=(32,), max_epochs=60, batch_size=32, lr=1e-2)
    settings.update(temperature=8.0, random_state=0)
    corrected = DistilledClassifier(teacher, correct_absent_classes=True, **settings).fit(X[seen])
    plain = DistilledClassifier(teacher, **settings).fit(X[seen])
    assert corrected.absent_classes_.tolist() == [2]
    assert plain.absent_classes_.tolist() == []
    bias = corrected.student_.module_.logit_bias.numpy()
    assert bias[0] == bias[1] == 0
    # The student's mean probability of class 2 on the rows it saw is the
    # teacher's, and the correction costs nothing elsewhere.
    got = corrected.predict_proba(X[seen]).mean(axis=0)[2]
    want = teacher.predict_proba(X[seen]).mean(axis=0)[2]
    np.testing.assert_allclose(got, want, rtol=1e-3)
    on_class_2 = [np.mean(model.predict(X[~seen]) == 2) for model in (plain, corrected)]
    assert on_class_2[1] >= on_class_2[0] - 0.01 and on_class_2[1] > 0.9
    assert np.mean(corrected.predict(X[seen]) == y[seen]) > 0.95


def test_labels_in_y_are_never_corrected():
    X, y = _blobs()
    teacher = LogisticRegression().fit(X, y)
    seen = y != 2
    estimator = DistilledClassifier(
        teacher, correct_absent_classes=True, max_epochs=2, random_state=0
    )
    student = estimator.fit(X[seen], y[seen])
    assert student.absent_classes_.tolist() == [2]
    y_with_2 = y[seen].copy()
    y_with_2[0] = 2
    student = estimator.fit(X[seen], y_with_2)
    assert student.absent_classes_.tolist() == []
