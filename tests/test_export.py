"""ONNX export: onnxruntime reproduces predict_proba, with any batch size."""

import copy
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LinearModule, small
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from skdistill import DistilledClassifier, DistilledRegressor
from skdistill._preprocessing import AutoPreprocessor
from skdistill.export import onnx_feeds, read_onnx_metadata, to_onnx

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TINY = small(hidden_layer_sizes=(8,), max_epochs=3)

#: Largest |onnxruntime - predict_proba| accepted.
TOLERANCE = 1e-5


def _run(path, X, outputs=None):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"X": np.asarray(X, dtype=np.float32)})


@pytest.fixture(scope="module")
def iris_frame():
    data = load_iris(as_frame=True)
    return data.data, data.target_names[data.target]


@pytest.fixture(scope="module")
def student(iris_frame):
    X, y = iris_frame
    teacher = LogisticRegression(max_iter=500).fit(X, y)
    return DistilledClassifier(teacher, **TINY).fit(X, y)


@pytest.fixture(scope="module")
def exported(student, tmp_path_factory):
    return to_onnx(student, tmp_path_factory.mktemp("onnx") / "student.onnx")


@pytest.mark.parametrize("n_rows", [1, 1000])
def test_onnxruntime_reproduces_predict_proba(student, exported, iris_frame, n_rows):
    X = iris_frame[0]
    rng = np.random.default_rng(0)
    rows = X.iloc[rng.integers(len(X), size=n_rows)] + rng.normal(
        scale=0.5, size=(n_rows, X.shape[1])
    )
    proba, logits = _run(exported, rows)
    assert proba.shape == (n_rows, 3) and proba.dtype == np.float32
    assert np.abs(proba - student.predict_proba(rows)).max() < TOLERANCE
    assert np.abs(logits - student.decision_function(rows)).max() < TOLERANCE
    np.testing.assert_array_equal(student.classes_[proba.argmax(axis=1)], student.predict(rows))


def test_graph_signature(exported, student):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(exported))
    (graph_input,) = model.graph.input
    assert graph_input.name == "X"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch, features = graph_input.type.tensor_type.shape.dim
    assert batch.dim_param and not batch.dim_value  # dynamic batch size
    assert features.dim_value == student.n_features_in_
    assert [output.name for output in model.graph.output] == ["probabilities", "logits"]
    assert not list(exported.parent.glob("*.data"))  # weights inside the one file


def test_metadata(exported, student):
    metadata = read_onnx_metadata(exported)
    np.testing.assert_array_equal(metadata["classes"], student.classes_)
    assert metadata["classes"].dtype == student.classes_.dtype
    assert list(metadata["feature_names"]) == list(student.feature_names_in_)
    assert metadata["n_features"] == 4
    assert metadata["output"] == "proba"
    assert metadata["inputs"] == "X" and metadata["input_kinds"] is None
    assert metadata["preprocessor"] is None and metadata["preprocessor_state"] is None


def test_binary_numpy_without_feature_names(binary_data, tmp_path):
    X, y = binary_data
    teacher = LogisticRegression().fit(X, y)
    student = DistilledClassifier(teacher, **TINY).fit(X, y)
    path = to_onnx(student, tmp_path / "binary.onnx", opset=18)
    (proba,) = _run(path, X, ["probabilities"])
    assert proba.shape == (len(X), 2)
    assert np.abs(proba - student.predict_proba(X)).max() < TOLERANCE
    assert read_onnx_metadata(path)["feature_names"] is None
    onnx = pytest.importorskip("onnx")
    assert {op.domain: op.version for op in onnx.load(str(path)).opset_import}[""] == 18


def test_logit_bias_is_exported(student, iris_frame, tmp_path):
    if getattr(student.student_.module_, "logit_bias", None) is None:
        pytest.skip("this StudentModule has no logit_bias")
    biased = copy.deepcopy(student)
    biased.student_.module_.logit_bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    proba, _ = _run(to_onnx(biased, tmp_path / "biased.onnx"), iris_frame[0])
    assert np.abs(proba - biased.predict_proba(iris_frame[0])).max() < TOLERANCE
    assert np.abs(proba - student.predict_proba(iris_frame[0])).max() > 0.01


def test_custom_student_module_exports(iris, tmp_path):
    X, y = iris
    teacher = LogisticRegression(max_iter=500).fit(X, y)
    student = DistilledClassifier(teacher, student=LinearModule, max_epochs=3, random_state=0).fit(
        X, y
    )
    proba, _ = _run(to_onnx(student, tmp_path / "linear.onnx"), X)
    assert np.abs(proba - student.predict_proba(X)).max() < TOLERANCE


def test_raw_output_for_regressor_like_estimators(student, iris_frame, tmp_path):
    class StudentRegressor(RegressorMixin, BaseEstimator):
        """A stand-in for a future DistilledRegressor: a student_, no classes_."""

    regressor = StudentRegressor()
    regressor.student_ = student.student_
    regressor.n_features_in_ = 4
    path = to_onnx(regressor, tmp_path / "regressor.onnx")
    X = iris_frame[0]
    (predictions,) = _run(path, X)
    assert np.abs(predictions - student.decision_function(X)).max() < TOLERANCE
    metadata = read_onnx_metadata(path)
    assert metadata["output"] == "raw" and metadata["classes"] is None


def test_refuses_unfitted_estimator(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        to_onnx(DistilledClassifier(LogisticRegression()), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_refuses_estimators_without_student(iris, tmp_path):
    X, y = iris
    with pytest.raises(ValueError, match="no fitted student_"):
        to_onnx(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "m.onnx")


def test_refuses_unknown_output_kind(student, tmp_path):
    with pytest.raises(ValueError, match="output must be"):
        to_onnx(student, tmp_path / "m.onnx", output="labels")


# -- students with preprocessing: tables with categories and missing values ---------------


def _table(n_rows, seed, unseen=False):
    """A mixed table with missing values; ``unseen``: levels and missing values fit never saw."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age (years)": rng.normal(40, 12, n_rows),
            "count": pd.array(rng.integers(0, 9, n_rows), dtype="Int64"),
            "grade": pd.Categorical(rng.choice([1, 2, 3] + [4] * unseen, n_rows)),
            "city": pd.Series(
                rng.choice(["Lyon", "Nice"] + ["Berlin"] * unseen, n_rows), dtype=object
            ),
            "vip": rng.random(n_rows) < 0.3,
            "X": rng.normal(size=n_rows),  # the name of the student's own input
        }
    )
    for column in ("age (years)", "count", "grade", "city"):
        frame.loc[rng.random(n_rows) < 0.15, column] = None
    if unseen:
        frame.loc[rng.random(n_rows) < 0.15, "X"] = np.nan  # complete in fit
    y = (frame["age (years)"].fillna(40) > 40).to_numpy() ^ (frame["city"] == "Lyon").to_numpy()
    return frame, y.astype(int) + frame["X"].fillna(0).to_numpy() * 0.1 * (not unseen)


def _teacher(kind, frame, y):
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["grade", "city", "vip"]),
        remainder=SimpleImputer(),
    )
    model = (
        HistGradientBoostingClassifier if kind == "classifier" else HistGradientBoostingRegressor
    )
    return make_pipeline(encode, model(max_iter=10)).fit(frame, y)


def _outputs(student, X):
    if hasattr(student, "predict_proba"):
        return student.predict_proba(X)
    return student.predict(X).reshape(len(X), -1)


@pytest.fixture(scope="module", params=["classifier", "regressor"])
def mixed(request, tmp_path_factory):
    """A student of each kind fitted on the mixed table, exported in both input forms."""
    frame, y = _table(300, 0)
    if request.param == "classifier":
        y = y.round().astype(int)
    estimator = DistilledClassifier if request.param == "classifier" else DistilledRegressor
    student = estimator(_teacher(request.param, frame, y), **TINY).fit(frame, y)
    folder = tmp_path_factory.mktemp("mixed")
    paths = {
        inputs: to_onnx(student, folder / f"{inputs}.onnx", inputs=inputs)
        for inputs in ("columns", "grouped")
    }
    return student, paths


@pytest.mark.parametrize("inputs", ["columns", "grouped"])
def test_mixed_table_model_reproduces_the_student(mixed, inputs):
    student, paths = mixed
    rows, _ = _table(200, 1, unseen=True)
    assert (
        rows["X"].isna().any() and (rows["city"] == "Berlin").any() and (rows["grade"] == 4).any()
    )
    session = onnxruntime.InferenceSession(str(paths[inputs]), providers=["CPUExecutionProvider"])
    metadata = read_onnx_metadata(paths[inputs])
    outputs = session.run(None, onnx_feeds(rows, metadata))[0]
    assert np.abs(outputs - _outputs(student, rows)).max() < TOLERANCE
    for i in range(0, 200, 20):  # one row at a time, as a server gets them
        row = rows.iloc[[i]]
        assert (
            np.abs(session.run(None, onnx_feeds(row, metadata))[0] - _outputs(student, row)).max()
            < TOLERANCE
        )


@pytest.mark.parametrize("inputs", ["columns", "grouped"])
def test_a_level_of_another_column_encodes_as_unseen(mixed, inputs):
    # The categorical columns are encoded against the union of their levels
    # in one node: "True" (vip's) and "2" (grade's) are unseen in city.
    student, paths = mixed
    rows, _ = _table(30, 2)
    rows["city"] = np.resize(np.array(["True", "2", "Lyon", "Nice", None], dtype=object), 30)
    session = onnxruntime.InferenceSession(str(paths[inputs]), providers=["CPUExecutionProvider"])
    outputs = session.run(None, onnx_feeds(rows, read_onnx_metadata(paths[inputs])))[0]
    assert np.abs(outputs - _outputs(student, rows)).max() < TOLERANCE
    seen_elsewhere = rows.iloc[:2]  # city "True" and "2"
    as_unseen = student.preprocessor_.transform(seen_elsewhere.assign(city="Berlin"))
    assert np.array_equal(student.preprocessor_.transform(seen_elsewhere), as_unseen)


def test_mixed_table_model_inputs(mixed):
    onnx = pytest.importorskip("onnx")
    student, paths = mixed

    def signature(path):
        return [
            (
                variable.name,
                variable.type.tensor_type.elem_type,
                [d.dim_value or d.dim_param for d in variable.type.tensor_type.shape.dim],
            )
            for variable in onnx.load(str(paths[path])).graph.input
        ]

    FLOAT, STRING = onnx.TensorProto.FLOAT, onnx.TensorProto.STRING
    assert signature("columns") == [
        ("age (years)", FLOAT, ["batch", 1]),
        ("count", FLOAT, ["batch", 1]),
        ("grade", STRING, ["batch", 1]),
        ("city", STRING, ["batch", 1]),
        ("vip", STRING, ["batch", 1]),
        ("X", FLOAT, ["batch", 1]),
    ]
    assert signature("grouped") == [
        ("numeric", FLOAT, ["batch", 3]),
        ("categorical", STRING, ["batch", 3]),
    ]
    outputs = [o.name for o in onnx.load(str(paths["columns"])).graph.output]
    assert outputs == (
        ["probabilities", "logits"] if hasattr(student, "classes_") else ["predictions"]
    )


def test_a_feed_written_by_hand_as_a_server_would(mixed):
    student, paths = mixed
    row = pd.DataFrame(
        {
            "age (years)": [np.nan],
            "count": pd.array([3], dtype="Int64"),
            "grade": pd.Categorical([2]),
            "city": pd.Series([None], dtype=object),
            "vip": [True],
            "X": [0.5],
        }
    )
    feeds = {
        "age (years)": np.array([[np.nan]], np.float32),
        "count": np.array([[3.0]], np.float32),
        "grade": np.array([["2"]], object),
        "city": np.array([[""]], object),
        "vip": np.array([["True"]], object),
        "X": np.array([[0.5]], np.float32),
    }
    built = onnx_feeds(row, paths["columns"])
    assert built.keys() == feeds.keys()
    for name, values in feeds.items():
        np.testing.assert_array_equal(built[name], values)
        assert built[name].dtype == values.dtype
    session = onnxruntime.InferenceSession(
        str(paths["columns"]), providers=["CPUExecutionProvider"]
    )
    assert np.abs(session.run(None, feeds)[0] - _outputs(student, row)).max() < TOLERANCE


def test_mixed_table_metadata(mixed):
    student, paths = mixed
    metadata = read_onnx_metadata(paths["grouped"])
    assert metadata["inputs"] == "grouped"
    assert list(metadata["feature_names"]) == list(student.feature_names_in_)
    assert metadata["n_features"] == 6
    assert metadata["input_kinds"] == ["numeric", "numeric"] + ["categorical"] * 3 + ["numeric"]
    assert metadata["preprocessor"] == "AutoPreprocessor"
    # the ONNX file alone rebuilds the preprocessing, without running code
    rebuilt = AutoPreprocessor.from_state(metadata["preprocessor_state"])
    rows, _ = _table(50, 2, unseen=True)
    np.testing.assert_array_equal(rebuilt.transform(rows), student.preprocessor_.transform(rows))


def test_numeric_array_with_missing_values_keeps_one_input_x(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X[rng.random(X.shape) < 0.15] = np.nan
    teacher = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    student = DistilledClassifier(teacher, **TINY).fit(X, y)
    path = to_onnx(student, tmp_path / "array.onnx")
    assert read_onnx_metadata(path)["inputs"] == "X"
    proba, _ = _run(path, X)
    assert np.isnan(X).any(axis=1).sum() > 100
    assert np.abs(proba - student.predict_proba(X)).max() < TOLERANCE


def test_custom_preprocessor_is_converted_by_skl2onnx(tmp_path):
    frame, y = _table(300, 0)
    frame = frame.assign(city=frame["city"].fillna("unknown"))[["age (years)", "city", "X"]]
    y = y.round().astype(int)
    preprocessor = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["city"]),
        (make_pipeline(SimpleImputer(), StandardScaler()), ["age (years)", "X"]),
    )
    teacher = make_pipeline(preprocessor, HistGradientBoostingClassifier(max_iter=10)).fit(frame, y)
    student = DistilledClassifier(teacher, preprocessor=preprocessor, **TINY).fit(frame, y)
    path = to_onnx(student, tmp_path / "custom.onnx")
    metadata = read_onnx_metadata(path)
    assert metadata["inputs"] == "columns" and metadata["preprocessor"] == "ColumnTransformer"
    assert metadata["input_kinds"] == ["numeric", "categorical", "numeric"]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    proba = session.run(None, onnx_feeds(frame, metadata))[0]
    assert np.abs(proba - student.predict_proba(frame)).max() < TOLERANCE
    with pytest.raises(ValueError, match="inputs='grouped' is available with the automatic"):
        to_onnx(student, tmp_path / "grouped.onnx", inputs="grouped")


def test_preprocessor_skl2onnx_cannot_convert_is_refused(iris, tmp_path):
    X, y = iris
    teacher = LogisticRegression(max_iter=500).fit(X, y)
    student = DistilledClassifier(teacher, preprocessor=FunctionTransformer(np.log1p), **TINY)
    with pytest.raises(ValueError, match="skl2onnx cannot convert.*FunctionTransformer.*pickle"):
        to_onnx(student.fit(X, y), tmp_path / "log.onnx")


def test_a_column_named_like_an_output_is_refused(tmp_path):
    frame = pd.DataFrame({"probabilities": [1.0, np.nan, 2.0, 3.0], "k": ["a", "b", "a", "b"]})
    y = np.array([0, 1, 0, 1])
    teacher = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["k"]), remainder=SimpleImputer()),
        LogisticRegression(),
    ).fit(frame, y)
    student = DistilledClassifier(teacher, **TINY).fit(frame, y)
    with pytest.raises(
        ValueError, match=r"\['probabilities'\] have the names of the model's outputs"
    ):
        to_onnx(student, tmp_path / "clash.onnx")
    with pytest.raises(ValueError, match="inputs must be 'columns' or 'grouped'"):
        to_onnx(student, tmp_path / "rows.onnx", inputs="rows")


def test_without_skl2onnx_says_what_to_install(mixed, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match="pip install skl2onnx"):
        to_onnx(mixed[0], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
