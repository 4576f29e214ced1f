"""Safe persistence: safetensors + JSON, exact round trips, no unpickling."""

import copy
import json
import os
import pickle
import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LinearModule, small
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdistill import DistilledClassifier
from skdistill._preprocessing import AutoPreprocessor
from skdistill.persistence import (
    FORMAT_VERSION,
    METADATA_FILE,
    PREPROCESSOR_FILE,
    WEIGHTS_FILE,
    load_student,
    save_student,
)
from skdistill.student import MLP, Standardize

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
    assert metadata["unsaved_params"] == [
        "callbacks",
        "device",
        "memory",
        "n_jobs",
        "teacher",
        "verbose",
    ]
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
    assert {"teacher", "student", "random_state"} <= set(metadata["unsaved_params"])
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


def test_refuses_unfitted(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_student(DistilledClassifier(LogisticRegression()), tmp_path)


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

    metadata_path.write_text("[1, 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_student(tmp_path)


# -- untrusted files ----------------------------------------------------------------


def _saved_metadata(student, directory):
    save_student(student, directory)
    return json.loads((directory / METADATA_FILE).read_text())


def _with(metadata, **changes):
    """A deep copy of ``metadata`` with ``changes``; ``a__b`` sets ``metadata[a][b]``
    (``a__0`` the first item of a list)."""
    metadata = copy.deepcopy(metadata)
    for key, value in changes.items():
        *parents, last = [int(part) if part.isdigit() else part for part in key.split("__")]
        target = metadata
        for parent in parents:
            target = target[parent]
        target[last] = value
    return metadata


def _refused(directory, match):
    """load_student's ValueError on ``directory``, matching ``match``."""
    with pytest.raises(ValueError, match=match) as error:
        load_student(directory)
    return str(error.value)


MALFORMED_METADATA = {
    "version-0": (dict(format_version=0), "format_version must be a positive integer; got 0"),
    "version-negative": (dict(format_version=-5), "format_version must be a positive integer"),
    "version-bool": (dict(format_version=True), "format_version must be a positive integer"),
    "version-str": (dict(format_version="1"), "format_version must be a positive integer"),
    "version-float": (dict(format_version=1.0), "format_version must be a positive integer"),
    "not-a-student": (dict(format="other"), "does not describe a saved skdistill student"),
    "estimator": (dict(estimator="Pipeline"), "estimator must be one of"),
    "estimator-list": (dict(estimator=[]), "estimator must be one of"),
    "5-classes-for-3-outputs": (
        dict(classes=[0, 1, 2, 3, 4]),
        "classes must be a list of 3 labels, one per output",
    ),
    "dict-labels": (dict(classes=[{}, {}, {}]), "classes must hold labels of dtype <i8"),
    "null-labels": (dict(classes=None), "classes must be a list of 3 labels"),
    "list-labels": (dict(classes=[[0], [1], [2]]), "classes must hold labels of dtype"),
    "float-labels-for-int-dtype": (dict(classes=[0.5, 1, 2]), "labels of dtype <i8"),
    "repeated-labels": (dict(classes=[0, 0, 1]), "classes must be distinct"),
    "int-out-of-dtype": (
        dict(classes=[0, 1, 300], classes_dtype="|u1"),
        "out of the range of |u1",
    ),
    "void-dtype": (dict(classes_dtype="|V8"), "classes_dtype must name a numpy dtype"),
    "subarray-dtype": (dict(classes_dtype="(2,)i4"), "classes_dtype must name"),
    "unknown-dtype": (dict(classes_dtype="garbage"), "classes_dtype must name"),
    "huge-str-dtype": (
        dict(classes=["a", "b", "c"], classes_dtype="<U100000000"),
        "does not fit labels",
    ),
    "n-features-differs": (
        dict(n_features_in=5),
        "n_features_in is 5, but the architecture takes 4 features",
    ),
    "n-features-bool": (dict(n_features_in=True), "n_features_in must be a positive integer"),
    "feature-names-length": (dict(feature_names_in=["a"]), "a list of 4 strings"),
    "feature-names-ints": (dict(feature_names_in=[1, 2, 3, 4]), "a list of 4 strings"),
    "params-list": (dict(params=[]), "params must be an object"),
    "param-object": (
        dict(params={"alpha": {"x": 1}}),
        re.escape("params['alpha'] must be a plain"),
    ),
    "architecture-null": (dict(architecture=None), "architecture must be an object"),
    "hidden-float": (
        dict(architecture__hidden_layer_sizes=[8.0]),
        "architecture.hidden_layer_sizes must be a list of positive integers",
    ),
    "hidden-bool": (
        dict(architecture__hidden_layer_sizes=[True]),
        "architecture.hidden_layer_sizes must be",
    ),
    "dropout-str": (
        dict(architecture__dropout="0"),
        re.escape("dropout must be a number in [0, 1)"),
    ),
    "dropout-1.5": (dict(architecture__dropout=1.5), "dropout must be a number"),
    "body": (dict(architecture__body="ResNet"), "architecture 'ResNet' is unknown"),
    "output-scale-on-classifier": (
        dict(architecture__output_scale=True),
        "architecture.output_scale must be false for a DistilledClassifier",
    ),
    "n-iter": (dict(n_iter=-1), "n_iter must be a non-negative integer"),
    "preprocessor-str": (dict(preprocessor="auto"), "preprocessor must be null or an object"),
    "preprocessor-pickle": (
        dict(preprocessor={"kind": "pickle"}),
        "preprocessor.kind must be 'auto' or 'skops'",
    ),
    "preprocessor-skops-kinds": (
        dict(preprocessor={"kind": "skops", "class": "x", "column_kinds": ["numeric"]}),
        "column_kinds must be null or a list of 4",
    ),
    "tuple-params": (dict(tuple_params="hidden_layer_sizes"), "tuple_params must be a list"),
}


@pytest.mark.parametrize(
    "changes, match", MALFORMED_METADATA.values(), ids=list(MALFORMED_METADATA)
)
def test_load_refuses_malformed_metadata(student, tmp_path, changes, match):
    metadata = _saved_metadata(student, tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps(_with(metadata, **changes)))
    message = _refused(tmp_path, match)
    assert message.startswith(f"{tmp_path / METADATA_FILE} is not a valid saved student: ")


@pytest.mark.parametrize(
    "text, match",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "nests JSON values too deeply", id="deep"),
        pytest.param('{"format_version": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param('{"format_version": 1e999}', "1e999 overflows a float", id="overflow"),
        pytest.param("1" * 5000, "not valid JSON", id="huge-int"),
        pytest.param(b"\xff\xfe{}", "not valid JSON", id="not-utf8"),
        pytest.param("[1, 2", "not valid JSON", id="truncated"),
        pytest.param("[]", "does not describe a saved skdistill student", id="list"),
    ],
)
def test_load_refuses_malformed_json(student, tmp_path, text, match):
    save_student(student, tmp_path)
    path = tmp_path / METADATA_FILE
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    _refused(tmp_path, match)


def _forbid_building_networks(monkeypatch):
    """From now on, building any part of a student network fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("load_student built a network before checking the tensors")

    monkeypatch.setattr(torch.nn.Linear, "__init__", forbidden)
    monkeypatch.setattr(Standardize, "__init__", forbidden)


@pytest.mark.parametrize(
    "changes, match",
    [
        pytest.param(
            dict(
                architecture__hidden_layer_sizes=[20000, 20000],
                params__hidden_layer_sizes=[20000, 20000],
            ),
            re.escape(
                "body.layers.0.weight is F32 of shape (8, 4); expected F32 of shape (20000, 4)"
            ),
            id="20000x20000-layers",
        ),
        pytest.param(
            dict(architecture__n_features=10**9, n_features_in=10**9, feature_names_in=None),
            re.escape("expected F32 of shape (1000000000,)"),
            id="1e9-features",
        ),
        pytest.param(
            dict(architecture__n_classes=5, classes=[0, 1, 2, 3, 4]),
            re.escape("shape (3, 8); expected F32 of shape (5, 8)"),
            id="5-classes-for-3-outputs",
        ),
        pytest.param(
            dict(architecture__dropout=0.5),
            re.escape("tensors missing: ['body.layers.3.bias', 'body.layers.3.weight']"),
            id="dropout-moves-layers",
        ),
    ],
)
def test_load_checks_tensor_shapes_before_building(student, tmp_path, monkeypatch, changes, match):
    metadata = _saved_metadata(student, tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps(_with(metadata, **changes)))
    _forbid_building_networks(monkeypatch)
    message = _refused(tmp_path, match)
    assert message.startswith(f"{tmp_path / WEIGHTS_FILE} does not match")


def _rewrite_weights(directory, change):
    from safetensors.torch import load_file, save_file

    path = directory / WEIGHTS_FILE
    save_file(change(load_file(str(path))), str(path))


@pytest.mark.parametrize(
    "change, match",
    [
        pytest.param(
            lambda state: {name: tensor.double() for name, tensor in state.items()},
            re.escape("standardize.mean is F64 of shape (4,); expected F32"),
            id="float64",
        ),
        pytest.param(
            lambda state: {**state, "extra": torch.zeros(2)},
            re.escape("unexpected: ['extra']"),
            id="extra-tensor",
        ),
        pytest.param(
            lambda state: {**state, "standardize.mean": torch.full((4,), float("nan"))},
            "standardize.mean holds NaN or infinite values",
            id="nan",
        ),
        pytest.param(
            lambda state: {**state, "standardize.scale": torch.zeros(4)},
            "standardize.scale holds values that are not positive",
            id="zero-scale",
        ),
    ],
)
def test_load_refuses_bad_tensors(student, tmp_path, change, match):
    save_student(student, tmp_path)
    _rewrite_weights(tmp_path, change)
    _refused(tmp_path, match)


def test_load_refuses_a_file_that_is_not_safetensors(student, tmp_path):
    save_student(student, tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"\x08" + b"\x00" * 7 + b"garbage!")
    _refused(tmp_path, "is not a valid safetensors file")


def test_load_sets_no_machine_parameters_from_the_file(student, iris_frame, tmp_path):
    cache = tmp_path / "cache"
    metadata = _saved_metadata(student, tmp_path)
    hostile = dict(memory=str(cache), n_jobs=-1, verbose=3, callbacks=["print"], device="cuda:7")
    (tmp_path / METADATA_FILE).write_text(
        json.dumps(_with(metadata, params={**metadata["params"], **hostile}))
    )
    loaded = load_student(tmp_path)
    params = loaded.get_params(deep=False)
    assert {name: params[name] for name in hostile} == dict(
        memory=None, n_jobs=None, verbose=0, callbacks=None, device="cpu"
    )
    _assert_same_predictions(loaded, student, iris_frame[0])
    assert not cache.exists()


def test_save_writes_no_machine_parameters(student, tmp_path):
    cache = tmp_path / "my-private-cache"
    local = copy.copy(student).set_params(memory=str(cache), n_jobs=2, verbose=1)
    save_student(local, tmp_path / "saved")
    text = (tmp_path / "saved" / METADATA_FILE).read_text()
    assert "my-private-cache" not in text
    params = json.loads(text)["params"]
    assert not {"memory", "n_jobs", "verbose", "callbacks", "device"} & set(params)


@pytest.mark.parametrize(
    "params, match",
    [
        pytest.param(dict(alpha=5), "'alpha' parameter of DistilledClassifier must be", id="alpha"),
        pytest.param(dict(lr=-1.0), "'lr' parameter", id="lr"),
        pytest.param(dict(student="torch.nn.Linear"), "student must be None", id="student-str"),
        pytest.param(dict(transfer="Munge"), "'transfer' parameter", id="transfer-str"),
        pytest.param(
            dict(hidden_layer_sizes=[64]),
            re.escape("hidden_layer_sizes is (64,), but the saved network's hidden layers are [8]"),
            id="hidden-layer-sizes",
        ),
    ],
)
def test_load_validates_parameters(student, tmp_path, params, match):
    metadata = _saved_metadata(student, tmp_path)
    (tmp_path / METADATA_FILE).write_text(
        json.dumps(_with(metadata, params={**metadata["params"], **params}))
    )
    message = _refused(tmp_path, match)
    assert "holds invalid parameters" in message


def test_save_replaces_symlinks_instead_of_following_them(student, iris_frame, tmp_path):
    outside, directory = tmp_path / "outside", tmp_path / "saved"
    outside.mkdir()
    directory.mkdir()
    for name in (METADATA_FILE, WEIGHTS_FILE):
        (outside / name).write_text("precious")
        (directory / name).symlink_to(outside / name)
    save_student(student, directory)
    for name in (METADATA_FILE, WEIGHTS_FILE):
        assert (outside / name).read_text() == "precious"
        assert not (directory / name).is_symlink()
    # No temporary file is left behind, and the files get the usual permissions.
    assert sorted(os.listdir(directory)) == [METADATA_FILE, WEIGHTS_FILE]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (directory / METADATA_FILE).stat().st_mode & 0o777 == 0o666 & ~umask
    _assert_same_predictions(load_student(directory), student, iris_frame[0])


# -- students with preprocessing ----------------------------------------------------


def _table(n_rows, seed, unseen=False):
    """A table with missing values and categories; ``unseen``: levels fit never saw."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n_rows),
            "count": pd.array(rng.integers(0, 5, n_rows), dtype="Int64"),
            "colour": pd.Categorical(rng.choice(["red", "blue"] + ["green"] * unseen, n_rows)),
            "city": pd.Series(rng.choice(["Lyon", "Nice"], n_rows), dtype=object),
            "vip": rng.random(n_rows) < 0.3,
        }
    )
    for column in ("size", "count", "colour"):
        frame.loc[rng.random(n_rows) < 0.15, column] = None
    y = (frame["size"].fillna(0) > 0).to_numpy() ^ (frame["colour"] == "red").to_numpy()
    return frame, y.astype(int)


def _mixed_student(preprocessor="auto", frame=None):
    if frame is None:
        frame, y = _table(200, 0)
    else:
        y = np.arange(len(frame)) % 2
    teacher = make_pipeline(AutoPreprocessor(), LogisticRegression()).fit(frame, y)
    return DistilledClassifier(teacher, preprocessor=preprocessor, **TINY).fit(frame, y)


@pytest.fixture(scope="module")
def mixed_student():
    return _mixed_student()


def test_automatic_preprocessing_round_trip_as_data(mixed_student, tmp_path, monkeypatch):
    metadata = _saved_metadata(mixed_student, tmp_path)
    assert sorted(os.listdir(tmp_path)) == [METADATA_FILE, WEIGHTS_FILE]
    entry = metadata["preprocessor"]
    assert entry["kind"] == "auto" and metadata["n_features_in"] == 5
    assert [c["kind"] for c in entry["state"]["columns"]] == ["numeric"] * 2 + ["categorical"] * 3
    assert entry["state"]["columns"][0] == {
        "name": "size",
        "dtype": "float64",
        "kind": "numeric",
        "statistic": mixed_student.preprocessor_.statistics_[0],
        "indicator": True,
    }
    assert entry["state"]["columns"][2]["categories"] == ["", "blue", "red"]
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _forbidden)
    loaded = load_student(tmp_path)
    monkeypatch.undo()
    assert isinstance(loaded.preprocessor_, AutoPreprocessor)
    rows, _ = _table(100, 1, unseen=True)
    assert rows.isna().any().any() and (rows["colour"] == "green").any()
    _assert_same_predictions(loaded, mixed_student, rows)


def _forbidden(*args, **kwargs):
    raise AssertionError("load_student unpickled something")


def test_array_with_missing_values_round_trip(tmp_path):
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    teacher = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(X, y)
    student = DistilledClassifier(teacher, **TINY).fit(X, y)
    loaded = load_student(save_student(student, tmp_path))
    assert loaded.preprocessor_.input_kind_ == "array"
    _assert_same_predictions(loaded, student, X)


@pytest.mark.parametrize(
    "state_changes, match",
    [
        pytest.param(
            dict(columns__0__statistic="__import__('os')"), "statistic", id="statistic-str"
        ),
        pytest.param(dict(columns__0__name="weight"), "are not the estimator's", id="name"),
        pytest.param(
            dict(columns__2__categories=["red"]),
            "gives 9 features, but the architecture takes 11",
            id="width",
        ),
        pytest.param(dict(input="array"), "preprocessor.state is invalid", id="array"),
    ],
)
def test_load_refuses_malformed_preprocessing(mixed_student, tmp_path, state_changes, match):
    metadata = _saved_metadata(mixed_student, tmp_path)
    changes = {f"preprocessor__state__{key}": value for key, value in state_changes.items()}
    (tmp_path / METADATA_FILE).write_text(json.dumps(_with(metadata, **changes)))
    _refused(tmp_path, match)


@pytest.fixture(scope="module")
def custom_student():
    frame, _ = _table(200, 0)
    frame = frame.assign(size=frame["size"].fillna(0), colour=frame["colour"].astype(str))
    scale = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["colour", "city"]),
        (StandardScaler(), ["size"]),
    )
    return _mixed_student(scale, frame[["size", "colour", "city"]]), frame[
        ["size", "colour", "city"]
    ]


def test_custom_preprocessor_round_trip_with_skops(custom_student, tmp_path):
    student, frame = custom_student
    metadata = _saved_metadata(student, tmp_path)
    assert sorted(os.listdir(tmp_path)) == [METADATA_FILE, WEIGHTS_FILE, PREPROCESSOR_FILE]
    assert metadata["preprocessor"] == {
        "kind": "skops",
        "class": "sklearn.compose._column_transformer.ColumnTransformer",
        "column_kinds": ["numeric", "categorical", "categorical"],
    }
    loaded = load_student(tmp_path)
    assert type(loaded.preprocessor_).__name__ == "ColumnTransformer"
    assert type(loaded.preprocessor).__name__ == "ColumnTransformer"
    _assert_same_predictions(loaded, student, frame)
    # an automatic student saved over it: the stale skops file goes
    save_student(_fit(*load_iris(return_X_y=True)), tmp_path)
    assert PREPROCESSOR_FILE not in os.listdir(tmp_path)


def test_custom_preprocessor_skops_does_not_trust_is_refused(tmp_path):
    X, y = load_iris(return_X_y=True)
    student = _fit(X, y, preprocessor=SimpleImputer())  # keeps a numpy.dtype
    with pytest.raises(ValueError, match=r"does not trust by default \(numpy.dtype\).*pickle"):
        save_student(student, tmp_path)
    assert not list(tmp_path.iterdir())


def test_load_refuses_untrusted_types_in_the_skops_file(custom_student, tmp_path):
    skops_io = pytest.importorskip("skops.io")
    save_student(custom_student[0], tmp_path)
    (tmp_path / PREPROCESSOR_FILE).write_bytes(skops_io.dumps(_Untrusted()))
    message = _refused(tmp_path, "does not trust by default .*_Untrusted.*pickle")
    assert str(tmp_path / PREPROCESSOR_FILE) in message
    (tmp_path / PREPROCESSOR_FILE).write_bytes(b"PK garbage")
    _refused(tmp_path, "is not a valid skops file")


class _Untrusted(StandardScaler):
    """A transformer class skops does not know."""


def test_save_without_skops_says_how_to_get_it(custom_student, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match="pip install skops.*preprocessor='auto'"):
        save_student(custom_student[0], tmp_path)
