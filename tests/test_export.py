"""ONNX export: onnxruntime reproduces predict_proba, with any batch size."""

import copy

import numpy as np
import pytest
import torch
from conftest import LinearModule, small
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skdistill import DistilledClassifier
from skdistill.export import read_onnx_metadata, to_onnx

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


def test_refuses_fitted_preprocessor(student, tmp_path):
    with_preprocessor = copy.copy(student)
    with_preprocessor.preprocessor_ = StandardScaler().fit(np.eye(4))
    with pytest.raises(ValueError, match="preprocessing is not supported yet.*transformer"):
        to_onnx(with_preprocessor, tmp_path / "m.onnx")


def test_refuses_estimators_without_student(iris, tmp_path):
    X, y = iris
    with pytest.raises(ValueError, match="no fitted student_"):
        to_onnx(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "m.onnx")


def test_refuses_unknown_output_kind(student, tmp_path):
    with pytest.raises(ValueError, match="output must be"):
        to_onnx(student, tmp_path / "m.onnx", output="labels")
