"""Shared fixtures and helpers: small data, small teachers, small students,
so the suite stays fast; and the test doubles several modules use."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score

from skdistill import DistilledClassifier, DistilledRegressor

# The students in the tests are tiny: a second intra-op thread buys nothing,
# and on a busy machine OpenMP threads spinning against other processes
# make each fit 10-20 times slower.
torch.set_num_threads(1)

#: Training settings of a student that fits in a fraction of a second.
SMALL = dict(hidden_layer_sizes=(16,), max_epochs=30, batch_size=16, lr=1e-2, random_state=0)


def small(**overrides):
    """The small student's settings, with some changed."""
    return {**SMALL, **overrides}


@pytest.fixture
def two_threads():
    """Torch on two threads for the test (the suite runs on one), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


# -- data and teachers ------------------------------------------------------------


@pytest.fixture(scope="session")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float64), y


@pytest.fixture(scope="session")
def binary_data():
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    return X, y


@pytest.fixture(scope="session")
def iris_forest(iris):
    X, y = iris
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)


@pytest.fixture(scope="session")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def diabetes_forest(diabetes):
    X, y = diabetes
    return RandomForestRegressor(n_estimators=30, min_samples_leaf=5, random_state=0).fit(X, y)


@dataclass
class Task:
    """What a test of both distillers needs to know of one of them."""

    name: str
    estimator: type
    X: np.ndarray
    y: np.ndarray
    teacher: object  # fitted
    unfitted_teacher: object
    #: A student's fidelity to its teacher, 1 for a perfect copy.
    fidelity: object
    #: Counts the teacher's rows and calls: CountingClassifier or CountingRegressor.
    counting: type
    #: The fidelity a small student reaches on the training rows.
    good_fidelity: float

    def predict(self, student, X):
        """What the student says: probabilities, or predictions."""
        return student.predict_proba(X) if self.name == "classification" else student.predict(X)

    def counting_teacher(self, model=None):
        """A fitted teacher of the task that counts its calls and rows (reset to 0).

        It wraps ``model``, or the unfitted teacher fitted on X and y.
        """
        self.counting.calls = self.counting.rows = 0
        self.counting.seen = []
        if model is None:
            model = clone(self.unfitted_teacher).fit(self.X, self.y)
        return self.counting(model)


@pytest.fixture(scope="session", params=["classification", "regression"])
def task(request, iris, iris_forest, diabetes, diabetes_forest):
    """Each distiller in turn, with its data and teachers."""
    if request.param == "classification":
        X, y = iris
        return Task(
            "classification",
            DistilledClassifier,
            X,
            y,
            iris_forest,
            LogisticRegression(max_iter=500),
            lambda student, teacher, X: np.mean(student.predict(X) == teacher.predict(X)),
            CountingClassifier,
            good_fidelity=0.9,
        )
    X, y = diabetes
    return Task(
        "regression",
        DistilledRegressor,
        X,
        y,
        diabetes_forest,
        Ridge(alpha=0.1),
        lambda student, teacher, X: r2_score(teacher.predict(X), student.predict(X)),
        CountingRegressor,
        good_fidelity=0.8,
    )


# -- test doubles -----------------------------------------------------------------


class FixedProba(ClassifierMixin, BaseEstimator):
    """A 'fitted' classifier returning given probabilities, counting its calls.

    The count is on the class: the teacher itself must stay unchanged.
    """

    calls = 0

    def __init__(self, proba, classes=None):
        self.proba = proba
        self.classes = classes

    def fit(self, X, y):
        return self

    def __sklearn_is_fitted__(self):
        return True

    @property
    def classes_(self):
        if self.classes is not None:
            return np.asarray(self.classes)
        return np.arange(np.asarray(self.proba).shape[1])

    def predict_proba(self, X):
        type(self).calls += 1
        return np.asarray(self.proba, dtype=float)[: len(X)]


class _Returning(BaseEstimator):
    """A 'fitted' teacher whose output method returns ``make(X)``: a broken
    teacher to order. Counts its calls on the class."""

    calls = 0

    def __init__(self, make, classes=None):
        self.make = make
        self.classes = classes

    def __sklearn_is_fitted__(self):
        return True

    def _outputs(self, X):
        type(self).calls += 1
        return self.make(X)


class _ReturningClassifier(ClassifierMixin, _Returning):
    @property
    def classes_(self):
        return np.asarray(self.classes)


class ProbaReturning(_ReturningClassifier):
    def predict_proba(self, X):
        return self._outputs(X)


class ScoresReturning(_ReturningClassifier):
    def decision_function(self, X):
        return self._outputs(X)


class PredictionsReturning(RegressorMixin, _Returning):
    def predict(self, X):
        return self._outputs(X)


class _Counting(BaseEstimator):
    """A fitted model's outputs, counting calls and rows (on the class: the
    teacher itself must stay unchanged, it is hashed by caches and pickled
    by searches)."""

    calls = 0
    rows = 0
    #: The X of each call, as received.
    seen = []

    def __init__(self, model):
        self.model = model

    def __sklearn_is_fitted__(self):
        return True

    @property
    def n_features_in_(self):
        return self.model.n_features_in_

    def _count(self, X):
        type(self).calls += 1
        type(self).rows += len(X)
        type(self).seen.append(X)


class CountingClassifier(ClassifierMixin, _Counting):
    @property
    def classes_(self):
        return self.model.classes_

    def predict_proba(self, X):
        self._count(X)
        return self.model.predict_proba(X)


class CountingRegressor(RegressorMixin, _Counting):
    def predict(self, X):
        self._count(X)
        return self.model.predict(X)


class LinearModule(torch.nn.Module):
    """A student body of one linear layer, built from the sizes a distiller passes."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X)
