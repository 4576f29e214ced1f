"""The command line: ``skdistill compress`` and ``skdistill demo``, run in-process."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import skdistill
from skdistill import DistilledClassifier
from skdistill.__main__ import main
from skdistill.export import read_onnx_metadata
from skdistill.persistence import load_student

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("safetensors")

TINY = ["--max-epochs", "3", "--hidden-layer-sizes", "8"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """iris as CSV (features + 'species'), and saved teachers and non-teachers."""
    root = tmp_path_factory.mktemp("cli")
    data = load_iris(as_frame=True)
    X, y = data.data, data.target
    paths = {
        "csv": root / "iris.csv",
        "features_csv": root / "iris_features.csv",
        "forest": root / "forest.joblib",
        "forest_numpy": root / "forest_numpy.pkl",
        "regressor": root / "regressor.joblib",
        "list": root / "list.pkl",
        "garbage": root / "garbage.joblib",
        "empty": root / "empty.joblib",
    }
    X.assign(species=y).to_csv(paths["csv"], index=False)
    X.to_csv(paths["features_csv"], index=False)
    joblib.dump(RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), paths["forest"])
    with open(paths["forest_numpy"], "wb") as file:
        pickle.dump(
            RandomForestClassifier(n_estimators=10, random_state=0).fit(X.to_numpy(), y), file
        )
    joblib.dump(RandomForestRegressor(n_estimators=2, random_state=0).fit(X, y), paths["regressor"])
    with open(paths["list"], "wb") as file:
        pickle.dump([1, 2, 3], file)
    paths["garbage"].write_text("not a pickle")
    paths["empty"].write_bytes(b"")
    return paths


def _error(capsys, argv, status=2):
    """Run a failing command: its status, and its one-line message."""
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("skdistill compress: error: ")
    return err


def _onnx_proba(path, X):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"X": np.asarray(X, dtype=np.float32)})[0]


def test_compress_writes_and_reports(files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "compress",
        str(files["forest"]),
        str(files["csv"]),
        "--out",
        str(out),
        "--target",
        "species",
    ]
    assert main(argv + TINY) == 0
    printed = capsys.readouterr().out
    assert "150 rows, 4 features; 120 training rows, 30 held-out rows" in printed
    assert "accuracy" in printed and "agreement" in printed and "predict 10k rows" in printed
    assert "teacher " in printed and "student " in printed
    assert "checked model.onnx with onnxruntime" in printed
    # Progress into a pipe: a plain line per epoch, no bar, no escape codes.
    epochs = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert [line.split(",")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "\x1b" not in printed and "\r" not in printed
    assert {path.name for path in out.iterdir()} == {
        "model.onnx",
        "model.safetensors",
        "metadata.json",
    }

    saved = load_student(out)
    assert saved.hidden_layer_sizes == (8,) and saved.n_iter_ == 3
    X = pd.read_csv(files["csv"]).drop(columns="species")
    assert np.abs(_onnx_proba(out / "model.onnx", X) - saved.predict_proba(X)).max() < 1e-5
    metadata = read_onnx_metadata(out / "model.onnx")
    assert list(metadata["feature_names"]) == list(X.columns)
    np.testing.assert_array_equal(metadata["classes"], saved.classes_)


def test_compress_without_labels_numpy_teacher(files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["compress", str(files["forest_numpy"]), str(files["features_csv"]), "--out", str(out)]
    assert main(argv + TINY + ["--test-size", "0.5", "--random-state", "3"]) == 0
    printed = capsys.readouterr().out
    assert "75 training rows, 75 held-out rows" in printed
    assert "n/a" in printed  # no accuracy without labels
    saved = load_student(out)
    assert not hasattr(saved, "feature_names_in_")
    X = pd.read_csv(files["features_csv"]).to_numpy()
    assert np.abs(_onnx_proba(out / "model.onnx", X) - saved.predict_proba(X)).max() < 1e-5


def test_columns_in_another_order_are_reordered(files, tmp_path, capsys):
    table = pd.read_csv(files["csv"])
    shuffled = tmp_path / "shuffled.csv"
    table[list(reversed(table.columns))].to_csv(shuffled, index=False)
    out = tmp_path / "out"
    argv = [
        "compress",
        str(files["forest"]),
        str(shuffled),
        "--out",
        str(out),
        "--target",
        "species",
    ]
    assert main(argv + TINY) == 0
    capsys.readouterr()
    assert list(load_student(out).feature_names_in_) == list(table.columns[:4])


def test_missing_files(files, tmp_path, capsys):
    out = str(tmp_path / "out")
    err = _error(
        capsys, ["compress", str(tmp_path / "nope.joblib"), str(files["csv"]), "--out", out]
    )
    assert "TEACHER file not found" in err and "nope.joblib" in err
    err = _error(
        capsys, ["compress", str(files["forest"]), str(tmp_path / "nope.csv"), "--out", out]
    )
    assert "DATA file not found" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "teacher, message",
    [
        ("list", "holds a list, not a scikit-learn classifier"),
        ("regressor", "holds a regressor (RandomForestRegressor), not a classifier"),
        ("garbage", "is not a file written by joblib.dump or pickle.dump (KeyError: 110)"),
        ("empty", "is not a file written by joblib.dump or pickle.dump (EOFError"),
    ],
)
def test_not_a_classifier(files, tmp_path, capsys, teacher, message):
    argv = [
        "compress",
        str(files[teacher]),
        str(files["csv"]),
        "--out",
        str(tmp_path),
        "--target",
        "species",
    ]
    assert message in _error(capsys, argv)


def test_unfitted_teacher(files, tmp_path, capsys):
    path = tmp_path / "unfitted.joblib"
    joblib.dump(RandomForestClassifier(), path)
    argv = ["compress", str(path), str(files["csv"]), "--out", str(tmp_path), "--target", "species"]
    assert "unfitted RandomForestClassifier" in _error(capsys, argv)


def test_columns_that_do_not_match(files, tmp_path, capsys):
    out = str(tmp_path / "out")
    # the label column left in, by name and by count
    err = _error(capsys, ["compress", str(files["forest"]), str(files["csv"]), "--out", out])
    assert "do not match the teacher" in err and "'species'" in err and "--target" in err
    err = _error(capsys, ["compress", str(files["forest_numpy"]), str(files["csv"]), "--out", out])
    assert "5 feature column(s) but the teacher was fitted on 4" in err and "--target" in err
    # a column missing
    fewer = tmp_path / "fewer.csv"
    pd.read_csv(files["csv"]).drop(columns="petal width (cm)").to_csv(fewer, index=False)
    argv = ["compress", str(files["forest"]), str(fewer), "--out", out, "--target", "species"]
    assert "lacks the teacher's column(s) ['petal width (cm)']" in _error(capsys, argv)
    argv = ["compress", str(files["forest_numpy"]), str(fewer), "--out", out, "--target", "species"]
    assert "3 feature column(s) but the teacher was fitted on 4" in _error(capsys, argv)


def test_unknown_target_and_bad_data(files, tmp_path, capsys):
    out = str(tmp_path / "out")
    argv = ["compress", str(files["forest"]), str(files["csv"]), "--out", out, "--target", "label"]
    assert "--target 'label' is not a column of DATA" in _error(capsys, argv)

    # text where the teacher was fitted on numbers: the teacher refuses it, before training
    text = tmp_path / "text.csv"
    pd.read_csv(files["csv"]).assign(**{"petal width (cm)": "wide"}).to_csv(text, index=False)
    argv = ["compress", str(files["forest"]), str(text), "--out", out, "--target", "species"]
    err = _error(capsys, argv)
    assert "could not distil the teacher on DATA" in err and "'wide'" in err
    argv[1] = str(files["forest_numpy"])
    err = _error(capsys, argv)
    assert "['petal width (cm)'] of DATA" in err and "fitted on an array of numbers" in err

    other = tmp_path / "data.json"
    other.write_text("{}")
    argv = ["compress", str(files["forest"]), str(other), "--out", out]
    assert "unknown format '.json'" in _error(capsys, argv)

    labels = tmp_path / "labels.csv"
    pd.read_csv(files["csv"]).assign(species=7).to_csv(labels, index=False)
    argv = ["compress", str(files["forest"]), str(labels), "--out", out, "--target", "species"]
    assert "labels the teacher does not know" in _error(capsys, argv + TINY)


def test_parquet(files, tmp_path, capsys, monkeypatch):
    parquet = tmp_path / "iris.parquet"
    argv = [
        "compress",
        str(files["forest"]),
        str(parquet),
        "--out",
        str(tmp_path / "out"),
        "--target",
        "species",
    ]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        parquet.write_bytes(b"PAR1")
        assert "needs pyarrow: pip install pyarrow" in _error(capsys, argv, status=1)
        return
    pd.read_csv(files["csv"]).to_parquet(parquet)
    assert main(argv + TINY) == 0


def test_usage_errors_exit_2(files, tmp_path):
    base = ["compress", str(files["forest"]), str(files["csv"]), "--out", str(tmp_path)]
    for extra in (["--test-size", "1.5"], ["--hidden-layer-sizes", "8,x"], ["--loss", "hinge"]):
        with pytest.raises(SystemExit) as exit_info:
            main(base + extra)
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(files["forest"])])  # no DATA, no --out
    assert exit_info.value.code == 2


@pytest.mark.parametrize("argv", [[], ["demo"], ["demo", "--random-state", "4"]])
def test_demo_is_the_default(monkeypatch, argv):
    calls = []
    monkeypatch.setattr("skdistill._demo.run_demo", lambda random_state: calls.append(random_state))
    assert main(argv) == 0
    assert calls == [4 if argv[1:] else 0]


def test_demo_shows_progress_and_an_honest_summary(monkeypatch, capsys):
    # The demo's own models, made tiny: what is checked is what it prints.
    import functools

    from skdistill import DistilledClassifier, _demo

    monkeypatch.setattr(
        _demo,
        "RandomForestClassifier",
        functools.partial(RandomForestClassifier, n_estimators=5, n_jobs=1),
    )
    monkeypatch.setattr(
        _demo,
        "DistilledClassifier",
        functools.partial(DistilledClassifier, hidden_layer_sizes=(8,), max_epochs=3),
    )
    rows = _demo.run_demo()
    printed = capsys.readouterr().out
    assert [line[:9] for line in printed.splitlines() if line.startswith("epoch ")] == [
        "epoch 1/3",
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert "student: MLP 64-8-10, distilled in" in printed
    assert printed.rstrip().endswith(_demo.summarize_comparison(rows))


def _forbidden(*args, **kwargs):
    raise AssertionError("the command went on after bad input")


def test_test_size_leaving_too_few_training_rows(files, tmp_path, capsys):
    sixty = tmp_path / "sixty.csv"
    pd.read_csv(files["csv"]).sample(60, random_state=0).to_csv(sixty, index=False)
    argv = ["compress", str(files["forest"]), str(sixty), "--out", str(tmp_path / "out")]
    err = _error(capsys, argv + ["--target", "species", "--test-size", "0.99"])
    assert "splits the 60 rows of DATA" in err and "into 0 training and 60 held-out rows" in err
    assert "lower --test-size" in err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--alpha", "2"], "The 'alpha' parameter of DistilledClassifier must be"),
        (["--temperature", "0"], "The 'temperature' parameter"),
        (["--lr", "-1"], "The 'lr' parameter"),
        (["--max-epochs", "0"], "The 'max_epochs' parameter"),
        (["--batch-size", "0"], "The 'batch_size' parameter"),
        (["--device", "nonsense"], "device='nonsense' is not a torch device"),
    ],
)
def test_student_options_are_checked_before_loading(
    files, tmp_path, capsys, monkeypatch, option, message
):
    monkeypatch.setattr(joblib, "load", _forbidden)
    monkeypatch.setattr(pd, "read_csv", _forbidden)
    out = tmp_path / "out"
    argv = ["compress", str(files["forest"]), str(files["csv"]), "--out", str(out)]
    err = _error(capsys, argv + ["--target", "species", *option])
    assert "invalid student option (see --help): " in err and message in err
    assert not out.exists()


def test_unwritable_out_is_refused_before_training(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(DistilledClassifier, "fit", _forbidden)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for out in ("/proc/nope", str(a_file / "sub")):
        argv = ["compress", str(files["forest"]), str(files["csv"]), "--out", out]
        err = _error(capsys, argv + ["--target", "species"])
        assert f"--out {out} is not a writable directory" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"skdistill {skdistill.__version__}\n"


# -- a table with categorical columns and empty cells ------------------------------


@pytest.fixture(scope="module")
def mixed_files(tmp_path_factory):
    """A CSV with string columns and empty cells, and a Pipeline teacher fitted on it."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    n_rows = 200
    table = pd.DataFrame(
        {
            "income": rng.lognormal(3, 1, n_rows).round(2),
            "age": rng.integers(18, 80, n_rows).astype(float),
            "city": rng.choice(["Lyon", "Nice", "Paris"], n_rows),
            "plan": rng.choice(["basic", "premium"], n_rows),
        }
    )
    table["churn"] = np.where((table["plan"] == "basic") & (table["age"] < 40), "yes", "no")
    table.loc[rng.random(n_rows) < 0.15, "income"] = np.nan
    table.loc[rng.random(n_rows) < 0.1, "city"] = None
    csv = root / "customers.csv"
    table.to_csv(csv, index=False)
    text = csv.read_text()
    assert ",," in text or text.count(",\n") > 0  # empty cells in the file itself
    rows = pd.read_csv(csv)
    teacher = make_pipeline(
        make_column_transformer(
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["city", "plan"],
            ),
            remainder=SimpleImputer(add_indicator=True),
        ),
        LogisticRegression(max_iter=1000),
    ).fit(rows.drop(columns="churn"), rows["churn"])
    joblib.dump(teacher, root / "pipeline.joblib")
    return csv, root / "pipeline.joblib"


@pytest.mark.parametrize("inputs", ["columns", "grouped"])
def test_compress_a_table_with_categories_and_empty_cells(mixed_files, tmp_path, capsys, inputs):
    from skdistill.export import onnx_feeds

    csv, teacher = mixed_files
    out = tmp_path / "out"
    argv = ["compress", str(teacher), str(csv), "--out", str(out), "--target", "churn"]
    assert main(argv + TINY + ["--onnx-inputs", inputs]) == 0
    printed = capsys.readouterr().out
    assert "columns: 2 numeric (1 with empty cells" in printed and "2 categorical" in printed
    assert "teacher: Pipeline(ColumnTransformer, LogisticRegression)" in printed
    difference = float(printed.split("predict_proba on the held-out rows: ")[1].split()[0])
    assert difference < 1e-5
    assert {path.name for path in out.iterdir()} == {
        "model.onnx",
        "model.safetensors",
        "metadata.json",
    }
    # the saved student takes the CSV's rows as they are, and so does the ONNX model
    rows = pd.read_csv(csv).drop(columns="churn")
    assert rows.isna().any().any()
    saved = load_student(out)
    metadata = read_onnx_metadata(out / "model.onnx")
    assert metadata["inputs"] == inputs
    session = onnxruntime.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [spec.name for spec in session.get_inputs()]
    expected = (
        ["income", "age", "city", "plan"] if inputs == "columns" else ["numeric", "categorical"]
    )
    assert names == expected
    proba = session.run(["probabilities"], onnx_feeds(rows, metadata))[0]
    assert np.abs(proba - saved.predict_proba(rows)).max() < 1e-5


def test_student_options_default_to_the_estimator_s_defaults():
    import inspect

    from skdistill import DistilledClassifier
    from skdistill._cli import _build_parser

    args = _build_parser().parse_args(["compress", "t.joblib", "d.csv", "--out", "o"])
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(DistilledClassifier).parameters.items()
    }
    for name in ("temperature", "alpha", "loss", "max_epochs", "batch_size", "lr", "device"):
        assert getattr(args, name) == defaults[name], name
    assert args.hidden_layer_sizes == tuple(defaults["hidden_layer_sizes"])
    as_option = {True: "on", False: "off", "auto": "auto"}
    assert args.early_stopping == as_option[defaults["early_stopping"]]
