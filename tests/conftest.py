"""Shared fixtures: small data and small teachers, so the suite stays fast."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier

# The students in the tests are tiny: a second intra-op thread buys nothing,
# and on a busy machine OpenMP threads spinning against other processes
# make each fit 10-20 times slower.
torch.set_num_threads(1)

#: Training settings of a student that fits in a fraction of a second.
FAST = dict(hidden_layer_sizes=(16,), max_epochs=30, batch_size=16, lr=1e-2, random_state=0)


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
