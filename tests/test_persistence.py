"""Safe persistence: safetensors + JSON, exact round trips, no unpickling."""

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LinearModule, small
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skdistill import DistilledClassifier
from skdistill.persistence import (
    FORMAT_VERSION,
    METADATA_FILE,
    WEIGHTS_FILE,
    load_student,
    save_student,
)
from skdistill.student import MLP

pytest.importorskip("safetensors")

TINY = small(hidden_layer_sizes=(8,), max_epochs=3)


def _fit(X, y, **params):
    teacher = LogisticRegression(max_iter=500).fit(X, y)
    return DistilledClassifier(teacher, **{**TINY, **params}).fit(X, y)


def _assert_same_predictions(loaded, original, X):
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(loaded.decision_function(X), original.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))


@pytest.fixture(scope="module")
def iris_frame():
    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


@pytest.fixture(scope="module")
def student(iris_frame):
    return _fit(*iris_frame)


def test_round_trip_predicts_identically(student, iris_frame, tmp_path):
    X, y = iris_frame
    directory = save_student(student, tmp_path / "saved")
    assert sorted(path.name for path in directory.iterdir()) == [METADATA_FILE, WEIGHTS_FILE]
    loaded = load_student(directory)
    _assert_same_predictions(loaded, student, X)
    assert type(loaded) is DistilledClassifier
    assert loaded.classes_.dtype == student.classes_.dtype
    np.testing.assert_array_equal(loaded.feature_names_in_, student.feature_names_in_)
    assert loaded.n_features_in_ == 4 and loaded.n_iter_ == student.n_iter_
    assert loaded.teacher_ is None and loaded.teacher is None
    assert loaded.preprocessor_ is None
    expected = {**student.get_params(deep=False), "teacher": None}
    assert loaded.get_params(deep=False) == expected
    assert loaded.hidden_layer_sizes == (8,)
    assert loaded.score(X, y) == student.score(X, y)


def test_metadata_file(student, tmp_path):
    save_student(student, tmp_path)
    metadata = json.loads((tmp_path / METADATA_FILE).read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    architecture = metadata["architecture"]
    assert architecture.pop("logit_bias") == (
        getattr(student.student_.module_, "logit_bias", None) is not None
    )
    assert architecture == {
        "standardize": "Standardize",
        "body": "MLP",
        "n_features": 4,
        "n_classes": 3,
        "hidden_layer_sizes": [8],
        "dropout": 0.0,
        "output_scale": False,
    }
    assert metadata["estimator"] == "DistilledClassifier"
    assert metadata["classes"] == [0, 1, 2]
    assert metadata["unsaved_params"] == ["teacher"]
    assert metadata["feature_names_in"][0] == "sepal length (cm)"


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(np.array([3, 7, 11]), id="int"),
        pytest.param(np.array([-1.0, 2.0, 5.0]), id="float"),
        pytest.param(np.array(["setosa", "versicolor", "virginica"]), id="str"),
        pytest.param(np.array(["a", "b", "c"], dtype=object), id="object-str"),
        pytest.param(np.array([True, False, False]), id="bool"),
        pytest.param(np.array([0.0, 1.0, 2.0], dtype=np.float32), id="float32"),
    ],
)
def test_label_types_round_trip(labels, iris, tmp_path):
    X, y = iris
    y = labels[y]
    student = _fit(X, y)
    loaded = load_student(save_student(student, tmp_path))
    assert loaded.classes_.dtype == student.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, student.classes_)
    _assert_same_predictions(loaded, student, X)
    assert not hasattr(loaded, "feature_names_in_")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float_classes_round_trip_exactly(student, tmp_path, dtype):
    # Fitted classes are integral floats; any float survives the JSON text.
    odd = copy.copy(student)
    odd.classes_ = np.array([0.1, 1 / 3, 2.5e-300], dtype=dtype)
    loaded = load_student(save_student(odd, tmp_path))
    assert loaded.classes_.dtype == dtype
    np.testing.assert_array_equal(loaded.classes_, odd.classes_)


def test_load_runs_no_unpickling(student, iris_frame, tmp_path, monkeypatch):
    save_student(student, tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_student unpickled something")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded = load_student(tmp_path)
    monkeypatch.undo()
    _assert_same_predictions(loaded, student, iris_frame[0])


def test_logit_bias_round_trip(student, iris_frame, tmp_path):
    if getattr(student.student_.module_, "logit_bias", None) is None:
        pytest.skip("this StudentModule has no logit_bias")
    biased = copy.deepcopy(student)
    biased.student_.module_.logit_bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    loaded = load_student(save_student(biased, tmp_path))
    np.testing.assert_array_equal(loaded.student_.module_.logit_bias.numpy(), [0.5, -1.0, 2.0])
    _assert_same_predictions(loaded, biased, iris_frame[0])
    np.testing.assert_array_equal(loaded.logit_bias_, [0.5, -1.0, 2.0])


def test_pickle_still_works(student, iris_frame, tmp_path):
    save_student(student, tmp_path)
    X = iris_frame[0]
    _assert_same_predictions(pickle.loads(pickle.dumps(student)), student, X)
    loaded = load_student(tmp_path)
    _assert_same_predictions(pickle.loads(pickle.dumps(loaded)), student, X)


def test_dropout_mlp_and_unsaved_params(iris, tmp_path):
    X, y = iris
    body = MLP(4, 3, hidden_layer_sizes=(8, 4), dropout=0.25)
    student = _fit(X, y, student=body, random_state=np.random.RandomState(0))
    save_student(student, tmp_path)
    metadata = json.loads((tmp_path / METADATA_FILE).read_text())
    assert metadata["architecture"]["hidden_layer_sizes"] == [8, 4]
    assert metadata["architecture"]["dropout"] == 0.25
    assert set(metadata["unsaved_params"]) == {"teacher", "student", "random_state"}
    loaded = load_student(tmp_path)
    assert loaded.student is None and loaded.random_state is None
    _assert_same_predictions(loaded, student, X)


def test_refuses_custom_student_module(iris, tmp_path):
    student = _fit(*iris, student=LinearModule)
    with pytest.raises(
        ValueError, match="custom module .*LinearModule.*built-in MLP.*running its code"
    ):
        save_student(student, tmp_path)
    assert not list(tmp_path.iterdir())


def test_refuses_modified_mlp(student, tmp_path):
    modified = copy.deepcopy(student)
    modified.student_.module_.body.layers.append(torch.nn.Tanh())
    with pytest.raises(ValueError, match="modified"):
        save_student(modified, tmp_path)


def test_refuses_unfitted_and_preprocessed(student, tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_student(DistilledClassifier(LogisticRegression()), tmp_path)
    with_preprocessor = copy.copy(student)
    with_preprocessor.preprocessor_ = StandardScaler().fit(np.eye(4))
    with pytest.raises(ValueError, match="preprocessor_"):
        save_student(with_preprocessor, tmp_path)


def test_refuses_classes_json_cannot_hold(student, tmp_path):
    odd = copy.copy(student)
    odd.classes_ = np.array([b"a", b"b", b"c"])
    with pytest.raises(ValueError, match="classes_ of dtype"):
        save_student(odd, tmp_path)
    odd.classes_ = np.array([pd.Timestamp(0), 1, "b"], dtype=object)
    with pytest.raises(ValueError, match="only int, float, bool and str"):
        save_student(odd, tmp_path)


def test_load_errors(student, tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json is missing"):
        load_student(tmp_path)
    save_student(student, tmp_path)
    metadata_path = tmp_path / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())

    metadata_path.write_text(json.dumps({**metadata, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="Upgrade skdistill"):
        load_student(tmp_path)

    wrong_shape = {**metadata["architecture"], "hidden_layer_sizes": [9]}
    metadata_path.write_text(json.dumps({**metadata, "architecture": wrong_shape}))
    with pytest.raises(ValueError, match="do not make a valid saved student"):
        load_student(tmp_path)

    metadata_path.write_text("[1, 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_student(tmp_path)
