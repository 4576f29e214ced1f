"""Tests of TeacherMixin: scikit-learn's HTML representation of distilled estimators."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import re

import pytest
import torch
from conftest import LinearModule, small
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.utils import estimator_html_repr
from skorch import NeuralNet

from skdistill import DistilledClassifier, Munge, SpecialistEnsemble
from skdistill.student import MLP


def labels(html):
    """The visible text of every box label of an estimator's HTML representation."""
    return [
        re.sub(r"<[^>]+>", " ", label).split() for label in re.findall(r"<label.*?</label>", html)
    ]


def label_texts(estimator):
    return [" ".join(words) for words in labels(estimator_html_repr(estimator))]


@pytest.fixture(scope="module")
def logistic(iris):
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


def test_teacher_and_default_student_are_shown(logistic):
    estimator = DistilledClassifier(logistic, hidden_layer_sizes=(32, 16))
    html = estimator._repr_html_()
    texts = label_texts(estimator)
    assert "teacher: LogisticRegression" in texts
    assert "student: MLP" in texts
    assert "MLP(hidden_layer_sizes=(32, 16))" in html
    # The teacher is drawn as scikit-learn draws it, with its own box.
    assert any(text.startswith("LogisticRegression") for text in texts)
    # Teacher first, then the student.
    assert texts.index("teacher: LogisticRegression") < texts.index("student: MLP")


def test_list_of_teachers_shows_every_member(iris):
    X, y = iris
    members = [LogisticRegression(max_iter=500), GaussianNB()]
    texts = label_texts(DistilledClassifier(members))
    assert "teacher: 2 teachers" in texts
    assert "0: LogisticRegression" in texts
    assert "1: GaussianNB" in texts


def test_fitted_estimator_shows_fitted_teacher_and_student(iris):
    X, y = iris
    members = [LogisticRegression(max_iter=500), GaussianNB()]
    student = DistilledClassifier(members, **small()).fit(X, y)
    html = estimator_html_repr(student)
    texts = label_texts(student)
    assert "Fitted" in texts[0]
    # The fitted ensemble of fitted clones, with its members.
    assert "teacher: TeacherEnsemble" in texts
    assert "1: GaussianNB" in texts
    # The trained network: the architecture it got from the data (4
    # features, 3 classes), the epochs it ran, and its layers.
    assert "student: MLP 4-16-3" in texts
    assert f"MLP 4-16-3 default student, {student.n_iter_} epochs" in texts
    assert "[initialized]" in html
    assert "in_features=4, out_features=16" in html
    assert f"Trained for {student.n_iter_} epochs; last training loss" in html


def test_fitted_student_of_a_module_class_shows_its_epochs(iris):
    # Only the built-in MLP has an architecture to spell out.
    X, y = iris
    student = DistilledClassifier(LogisticRegression(max_iter=500), **small(max_epochs=3))
    student.set_params(student=LinearModule).fit(X, y)
    assert "LinearModule torch.nn.Module class, 3 epochs" in label_texts(student)


@pytest.mark.parametrize(
    "student, title, detail",
    [
        (MLP, "student: MLP", "skdistill._student.MLP, instantiated at fit."),
        (torch.nn.Linear(4, 3), "student: Linear", "Linear(in_features=4, out_features=3"),
        (
            NeuralNet(MLP, criterion=torch.nn.MSELoss, module__hidden_layer_sizes=(4,)),
            "student: NeuralNet(MLP)",
            "module__hidden_layer_sizes=(4,)",
        ),
    ],
    ids=["module-class", "module-instance", "skorch-net"],
)
def test_student_kinds_are_described(logistic, student, title, detail):
    estimator = DistilledClassifier(logistic, student=student)
    assert title in label_texts(estimator)
    assert detail in estimator_html_repr(estimator)


def test_other_estimator_parameters_are_shown(logistic):
    texts = label_texts(DistilledClassifier(logistic, transfer=Munge(size_multiplier=2)))
    assert "transfer: Munge" in texts


def test_specialist_ensemble_shows_teacher_and_student(logistic):
    texts = label_texts(SpecialistEnsemble(logistic, n_specialists=2))
    assert "teacher: LogisticRegression" in texts
    assert "student: MLP" in texts


def test_fitted_specialist_ensemble_shows_its_generalist(iris, logistic):
    X, y = iris
    settings = dict(hidden_layer_sizes=(8,), max_epochs=5, batch_size=32, random_state=0)
    ensemble = SpecialistEnsemble(logistic, n_specialists=2, **settings).fit(X, y)
    texts = label_texts(ensemble)
    assert "teacher: LogisticRegression" in texts
    # The fitted generalist_ is drawn with its own teacher and student inside.
    assert "generalist: DistilledClassifier" in texts
    # The ensemble's student parameter, and the generalist's fitted student.
    assert "student: MLP" in texts
    assert "student: MLP 4-8-3" in texts
