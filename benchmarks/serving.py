"""What the student is worth once served: latency, throughput and size.

A fitted tree ensemble is distilled into the package's default student
(``DistilledClassifier(teacher, random_state=0)``), then every usual way of
serving the teacher is timed side by side with the student's:

- letter (KEEL, 20000 x 16, 26 classes) with a 500-tree RandomForestClassifier
  and, separately, a 500-round LightGBM (26 trees a round: 13000 trees);
- magic (KEEL, 19020 x 10, binary) with a 500-round XGBoost;
- crx (KEEL credit approval, 653 x 15: 9 nominal columns, 6 numeric) with a
  500-iteration HistGradientBoostingClassifier(categorical_features="from_dtype"),
  which takes the categories and NaN natively. The KEEL copy has no missing
  cells (the rows that had any were dropped; UCI's crx has 5% such rows), so
  5% of the cells of every column are blanked at random (fixed seed), for the
  missing values a served model meets. crx is the cached KEEL set with both
  real continuous columns and nominal ones (german has no missing values
  originally; marketing, mushroom and housevotes are nominal or integer-coded
  only).

Split: 70 / 30, stratified, seed 0. Class labels are coded 0..k-1 for every
teacher (XGBoost and hummingbird's random-forest converter need integers).

Ways of serving the teacher: its own ``predict_proba``; onnxruntime's
TreeEnsemble (skl2onnx for scikit-learn models, onnxmltools for XGBoost and
LightGBM); treelite + tl2cgen compiled C (compiled in a subprocess, killed
past ``--compile-limit`` seconds); hummingbird's torch backend. The student:
its ``predict_proba`` and onnxruntime on ``skdistill.to_onnx``'s file. For
reference, scikit-learn's ``MLPClassifier`` of the student's architecture
(256-256, fitted for 5 epochs only: its accuracy is not the point, its
``predict_proba`` time is).

Columns: median latency of single-row calls (``--latency-calls`` different
test rows after a warm-up), throughput on 10k rows (test rows repeated,
best of ``--repeats``, fewer for a way slower than a minute a call), bytes
of the artefact each way serves from (joblib pickle of the estimator,
``.onnx`` file, compiled ``.so``, hummingbird's saved ``.zip``,
``skdistill.save_student``'s files), test accuracy, agreement with the
teacher's own predictions, and the largest difference to the teacher's
probabilities (a conversion should keep it near 1e-6; hummingbird 0.4.12
ignores the base_score XGBoost 3 estimates, which shows there). Rows are
turned into each runtime's input format (ONNX feeds, tl2cgen ``DMatrix``)
before the clock starts. Every way is timed on one core (torch,
onnxruntime, XGBoost, LightGBM, tl2cgen and numpy/OpenMP pools limited to 1
thread) and again on each other count of ``--threads`` (default: 1 and the
machine's CPUs). Teachers and students train with ``--fit-threads`` (1)
threads: fitting is not what is timed.

The student on crx takes the table as it is (NaN, pandas categories): the
automatic preprocessing goes into its ONNX model. Its ONNX file is timed in
both forms ``skdistill.to_onnx`` writes: one input per column (named as the
column, shape (N, 1), float for numeric columns with NaN for missing, string
for categorical ones with "" for missing) and ``inputs="grouped"`` (one float
and one string matrix), fed by ``skdistill.export.onnx_feeds``.

Usage::

    nice -n 10 python benchmarks/serving.py --quick     # 50 trees: ~3 min on 2 cores
    nice -n 10 python benchmarks/serving.py             # ~1 h, on a quiet machine
    nice -n 10 python benchmarks/serving.py --datasets magic,crx --threads 1

Writes ``benchmarks/results/serving{,_quick}.md`` and ``.json`` (after every
case, so a long run leaves its finished cases behind).
"""

import argparse
import contextlib
import gc
import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelEncoder
from threadpoolctl import threadpool_limits

from skdistill import DistilledClassifier, save_student, to_onnx
from skdistill.export import onnx_feeds as package_onnx_feeds
from skdistill.export import read_onnx_metadata

try:
    from datasets import describe_machine, load_keel
except ImportError:  # run from another folder
    from benchmarks.datasets import describe_machine, load_keel

RESULTS = Path(__file__).parent / "results"
N_CPUS = len(os.sched_getaffinity(0))

#: (data set, teacher) pairs, in the order they run.
CASES = (
    ("letter", "random forest"),
    ("letter", "LightGBM"),
    ("magic", "XGBoost"),
    ("crx", "HistGradientBoosting"),
)
DATASETS = ("letter", "magic", "crx")
MIXED = "crx"
#: Share of the cells of every crx column blanked (UCI's crx has 5% incomplete rows).
MISSING_RATE = 0.05
TEST_SIZE = 0.3
SEED = 0

N_TREES = 500
BATCH_ROWS = 10_000
LATENCY_CALLS = 200
WARMUP_CALLS = 20
REPEATS = 3
#: Seconds of large-batch calls per way and thread count after which no more
#: repeats are made (hummingbird on 13000 LightGBM trees takes minutes a call).
BATCH_BUDGET_S = 60
COMPILE_LIMIT_S = 600
#: --quick: fewer trees, rows, student epochs and timing calls.
QUICK = {
    "n_trees": 50,
    "train_rows": 3000,
    "test_rows": 2000,
    "batch_rows": 2000,
    "max_epochs": 10,
    "latency_calls": 50,
    "repeats": 2,
    "batch_budget": 5,
    "compile_limit": 30,
}
#: tl2cgen puts this many trees in one C file: gcc -O3 slows down far more than
#: linearly on one huge function, so many small files compile faster.
TREES_PER_UNIT = 20

#: Targets of the issue.
TARGET_STUDENT_VS_MLP = 1.5
TARGET_MIXED_VS_NUMERIC = 2.0
MLP_HIDDEN = (256, 256)
MLP_MAX_ITER = 5


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@dataclass
class Data:
    name: str
    X_train: object
    y_train: np.ndarray
    X_test: object
    y_test: np.ndarray
    n_classes: int
    how: str


def blank_cells(X, rate, seed):
    """X with a share ``rate`` of every column's cells set missing, at random."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    for column in X.columns:
        X.loc[rng.random(len(X)) < rate, column] = np.nan
    return X


def load_data(name, train_rows=None, test_rows=None):
    """The 70/30 split of a data set, labels coded 0..k-1, X float32 when numeric.

    ``train_rows`` / ``test_rows`` keep only the first rows of each part (--quick).
    """
    X, labels = load_keel(name)
    y = LabelEncoder().fit_transform(labels)
    how = "70/30 stratified split, seed 0"
    if name == MIXED:
        X = blank_cells(X, MISSING_RATE, SEED)
        how += f"; {MISSING_RATE:.0%} of each column's cells blanked (seed {SEED})"
    else:
        # float32 is what every runtime computes in: no copy or cast inside the timings.
        X = np.ascontiguousarray(X, dtype=np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=SEED
    )
    if train_rows is not None and train_rows < len(y_train):
        X_train, y_train = take(X_train, np.arange(train_rows)), y_train[:train_rows]
        how += f"; first {train_rows} training rows only"
    if test_rows is not None and test_rows < len(y_test):
        X_test, y_test = take(X_test, np.arange(test_rows)), y_test[:test_rows]
        how += f"; first {test_rows} test rows only"
    return Data(name, X_train, y_train, X_test, y_test, len(np.unique(y)), how)


def take(X, rows):
    """Rows of an array or a DataFrame (a DataFrame keeps its dtypes)."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def describe_columns(X):
    if not hasattr(X, "dtypes"):
        return f"{X.shape[1]} numeric columns"
    nominal = sum(isinstance(dtype, pd.CategoricalDtype) for dtype in X.dtypes)
    n_missing = int(X.isna().sum().sum())
    return (
        f"{X.shape[1]} columns ({nominal} nominal, {X.shape[1] - nominal} numeric; "
        f"{n_missing} missing cells)"
    )


# ---------------------------------------------------------------------------
# Teachers
# ---------------------------------------------------------------------------


def make_teacher(kind, n_trees, n_jobs):
    """An unfitted teacher fitting with n_jobs threads (serving is timed per thread count)."""
    if kind == "random forest":
        return RandomForestClassifier(n_estimators=n_trees, n_jobs=n_jobs, random_state=SEED)
    if kind == "LightGBM":
        import lightgbm

        return lightgbm.LGBMClassifier(
            n_estimators=n_trees, n_jobs=n_jobs, random_state=SEED, verbose=-1
        )
    if kind == "XGBoost":
        import xgboost

        return xgboost.XGBClassifier(n_estimators=n_trees, n_jobs=n_jobs, random_state=SEED)
    if kind == "HistGradientBoosting":
        # early_stopping=False: all the iterations asked for are kept.
        return HistGradientBoostingClassifier(
            max_iter=n_trees,
            categorical_features="from_dtype",
            early_stopping=False,
            random_state=SEED,
        )
    raise ValueError(f"unknown teacher {kind!r}")


def set_teacher_threads(teacher, threads):
    """Make the teacher's own predict_proba use ``threads`` threads.

    Forests, XGBoost and LightGBM take an n_jobs parameter (XGBoost's set_params
    passes it on to the fitted booster); HistGradientBoosting uses OpenMP,
    which threadpoolctl limits.
    """
    if "n_jobs" in teacher.get_params():
        teacher.set_params(n_jobs=threads)


# ---------------------------------------------------------------------------
# Threads and timing
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def thread_limit(threads):
    """torch, BLAS and OpenMP pools limited to ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def no_gc():
    """No garbage collection pauses inside a timed loop."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def median_latency(predict, single_rows, warmup=WARMUP_CALLS):
    """Median seconds of one call on one row, each call on a different row."""
    for rows in single_rows[:warmup]:
        predict(rows)
    seconds = []
    with no_gc():
        for rows in single_rows:
            start = time.perf_counter()
            predict(rows)
            seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def best_time(predict, rows, repeats, budget_s):
    """Shortest of ``repeats`` calls (the others met more of the machine's other
    load), fewer once the calls add up to ``budget_s``; and the first call's output.

    The first call counts: its one-time costs (allocations, thread pools) make
    it the slowest for a fast way, which the minimum then ignores, and a slow
    way is not worth calling just to warm it up.
    """
    best, total, first = math.inf, 0.0, None
    with no_gc():
        for _ in range(repeats):
            start = time.perf_counter()
            output = predict(rows)
            seconds = time.perf_counter() - start
            first = output if first is None else first
            best, total = min(best, seconds), total + seconds
            if total >= budget_s:
                break
    return best, first


def row_indices(n_available, n_wanted):
    """n_wanted row indices, the available ones repeated if there are fewer."""
    return np.arange(n_wanted) % n_available


# ---------------------------------------------------------------------------
# Ways of serving
# ---------------------------------------------------------------------------


def _identity(X):
    return X


@dataclass
class Way:
    """One way of serving a model.

    ``load(threads)`` returns the prediction function (prepared rows ->
    probabilities, shape (n, n_classes)); ``prepare`` turns rows as the data
    set holds them into that function's input, outside the timings.
    """

    name: str
    side: str  # "teacher", "student" or "reference"
    artefact: str = ""
    n_bytes: int | None = None
    load: Callable | None = None
    prepare: Callable = _identity
    note: str = ""
    extra: dict = field(default_factory=dict)


def skipped(name, side, reason):
    return Way(name, side, note=reason)


def short_error(error):
    """The error's type and first line, short enough for a table cell."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(error).__name__}: {first}"


def file_size(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def own_predict_proba(teacher, workdir):
    """The teacher's own predict_proba, served from its joblib pickle."""
    path = workdir / "teacher.joblib"
    joblib.dump(teacher, path)

    def load(threads):
        set_teacher_threads(teacher, threads)
        return teacher.predict_proba

    return Way("teacher predict_proba", "teacher", "joblib pickle", file_size(path), load), path


def onnx_session(path, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # LightGBM's converted label output has a declared shape onnxruntime warns about.
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_feeds(inputs, X):
    """onnxruntime feeds for rows X, following the graph's inputs.

    One input: the whole float32 matrix. Several: one (N, 1) column each,
    by name; strings for tensor(string) inputs with "" for missing, float32
    (NaN for missing) otherwise.
    """
    if len(inputs) == 1:
        values = X.to_numpy(np.float32) if hasattr(X, "iloc") else X
        return {inputs[0].name: np.ascontiguousarray(values, dtype=np.float32)}
    feeds = {}
    for spec in inputs:
        column = X[spec.name]
        if spec.type == "tensor(string)":
            text = column.astype(object).where(column.notna(), "").astype(str)
            feeds[spec.name] = text.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[spec.name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
    return feeds


def onnx_way(name, side, path, note="", prepare=None):
    """Serving an .onnx file with onnxruntime, reading its probabilities output.

    ``prepare`` turns rows into the session's feeds (default: by the graph's
    inputs, see :func:`onnx_feeds`).
    """
    probe = onnx_session(path, 1)
    inputs = probe.get_inputs()
    outputs = [o.name for o in probe.get_outputs()]
    output = "probabilities" if "probabilities" in outputs else outputs[-1]

    def load(threads):
        session = onnx_session(path, threads)
        return lambda feeds: session.run([output], feeds)[0]

    return Way(
        name,
        side,
        ".onnx file",
        file_size(path),
        load,
        prepare=prepare or (lambda X: onnx_feeds(inputs, X)),
        note=note,
    )


def onnx_initial_types(X, float_type, string_type):
    """One float matrix input "X", or one (N, 1) input per DataFrame column."""
    if not hasattr(X, "dtypes"):
        return [("X", float_type([None, X.shape[1]]))]
    return [
        (
            str(column),
            string_type([None, 1])
            if isinstance(dtype, pd.CategoricalDtype)
            else float_type([None, 1]),
        )
        for column, dtype in X.dtypes.items()
    ]


def convert_teacher_to_onnx(teacher, kind, X):
    """The teacher as an ONNX model: onnxmltools for XGBoost/LightGBM, else skl2onnx."""
    if kind in ("XGBoost", "LightGBM"):
        import onnxmltools

        # onnxmltools checks for its own FloatTensorType class, not skl2onnx's.
        from onnxmltools.convert.common.data_types import FloatTensorType, StringTensorType

        types = onnx_initial_types(X, FloatTensorType, StringTensorType)
        if kind == "XGBoost":
            return onnxmltools.convert_xgboost(teacher, initial_types=types)
        return onnxmltools.convert_lightgbm(teacher, initial_types=types, zipmap=False)
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = onnx_initial_types(X, FloatTensorType, StringTensorType)
    # zipmap=False: probabilities as a tensor, not a list of dicts.
    return convert_sklearn(teacher, initial_types=types, options={id(teacher): {"zipmap": False}})


def teacher_onnx(teacher, kind, data, workdir):
    name = "teacher onnxruntime"
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_teacher_to_onnx(teacher, kind, data.X_train)
    except Exception as error:  # any converter failure is a result to report
        return skipped(name, "teacher", f"skipped: conversion failed ({short_error(error)})")
    path = workdir / "teacher.onnx"
    path.write_bytes(model.SerializeToString())
    return onnx_way(name, "teacher", path, note=f"converted in {time.perf_counter() - start:.0f} s")


def treelite_model(teacher):
    """The teacher as a treelite model (treelite 4: one importer per library)."""
    import treelite

    if type(teacher).__name__ == "XGBClassifier":
        return treelite.frontend.from_xgboost(teacher.get_booster())
    if type(teacher).__name__ == "LGBMClassifier":
        return treelite.frontend.from_lightgbm(teacher.booster_)
    return treelite.sklearn.import_model(teacher)


def compile_child(pickle_path, library_path):
    """Run in a subprocess: compile the pickled teacher into a shared library."""
    import tl2cgen

    model = treelite_model(joblib.load(pickle_path))
    units = max(N_CPUS, min(model.num_tree // TREES_PER_UNIT, 1000))
    tl2cgen.export_lib(
        model,
        toolchain="gcc",
        libpath=library_path,
        params={"parallel_comp": units},
        nthread=N_CPUS,
    )
    print(json.dumps({"trees": model.num_tree, "units": units}))


def compile_library(pickle_path, library_path, limit_s, workdir):
    """Compile in a subprocess, killed (with its gcc children) past ``limit_s``.

    Returns (seconds, details, None) or (None, None, reason). The child's
    temporary sources go under workdir, so that a killed compile leaves
    nothing behind once workdir is removed.
    """
    scratch = workdir / "tl2cgen-tmp"
    scratch.mkdir(exist_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--compile-child",
        str(pickle_path),
        str(library_path),
    ]
    start = time.perf_counter()
    # A session of its own: on timeout the whole group (python and gcc) is killed.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, None, f"skipped: compiling took over {limit_s:.0f} s (the limit)"
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        return None, None, f"skipped: {lines[-1] if lines else f'exit {process.returncode}'}"
    details = json.loads(out.strip().splitlines()[-1])
    return seconds, details, None


def tl2cgen_proba(out):
    """tl2cgen's (n, 1, k) or (n, 1, 1) output as (n, n_classes) probabilities."""
    out = out.reshape(out.shape[0], -1)
    if out.shape[1] == 1:
        return np.column_stack([1 - out[:, 0], out[:, 0]])
    return out


def teacher_tl2cgen(pickle_path, data, cfg, workdir):
    name = "teacher tl2cgen (compiled C)"
    if hasattr(data.X_train, "iloc"):
        # Say why treelite refuses the model; were it to accept it, tl2cgen's
        # DMatrix would still take numbers only, not string categories.
        try:
            treelite_model(joblib.load(pickle_path))
        except Exception as error:
            reason = f"treelite import failed ({short_error(error)})"
        else:
            reason = "tl2cgen's DMatrix takes no string categories"
        return skipped(name, "teacher", f"skipped: {reason}")
    import tl2cgen

    library = workdir / "teacher.so"
    seconds, details, reason = compile_library(pickle_path, library, cfg["compile_limit"], workdir)
    if reason:
        return skipped(name, "teacher", reason)

    def load(threads):
        predictor = tl2cgen.Predictor(str(library), nthread=threads)
        return lambda dmat: tl2cgen_proba(predictor.predict(dmat))

    return Way(
        name,
        "teacher",
        ".so library",
        file_size(library),
        load,
        prepare=lambda X: tl2cgen.DMatrix(X, dtype="float32"),
        note=f"{details['trees']} trees in {details['units']} C files, compiled in {seconds:.0f} s",
    )


def teacher_hummingbird(teacher, data, workdir):
    name = "teacher hummingbird (torch)"
    from hummingbird.ml import convert

    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # n_threads: otherwise hummingbird sets torch's threads to the physical cores.
            model = convert(
                teacher, "torch", take(data.X_train, np.arange(100)), extra_config={"n_threads": 1}
            )
    except Exception as error:
        return skipped(name, "teacher", f"skipped: conversion failed ({short_error(error)})")
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    path = workdir / "hummingbird"
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the zip's digest
        model.save(str(path))
    return Way(
        name,
        "teacher",
        "saved .zip",
        file_size(f"{path}.zip"),
        lambda threads: model.predict_proba,
        note=f"converted in {seconds:.0f} s",
    )


def student_predict_proba(student, workdir):
    path = workdir / "student"
    try:
        save_student(student, path)
        n_bytes, note = file_size(path), ""
    except Exception as error:
        n_bytes, note = None, f"save_student failed ({short_error(error)})"
    return Way(
        "student predict_proba",
        "student",
        "save_student files",
        n_bytes,
        lambda threads: student.predict_proba,
        note=note,
    )


def student_onnx(student, workdir, inputs="columns"):
    """The student's ONNX model: one input per column, or ``inputs="grouped"``
    (a numeric and a categorical input), fed by ``skdistill.export.onnx_feeds``."""
    grouped = inputs == "grouped"
    name = "student onnxruntime" + (" (grouped inputs)" if grouped else "")
    path = workdir / f"student_{inputs}.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            to_onnx(student, path, inputs=inputs)
    except Exception as error:
        return skipped(name, "student", f"not supported yet ({short_error(error)})")
    metadata = read_onnx_metadata(path)
    return onnx_way(name, "student", path, prepare=lambda X: package_onnx_feeds(X, metadata))


def reference_mlp(data, workdir):
    """scikit-learn's MLPClassifier of the student's architecture (numeric X only)."""
    name = "MLPClassifier 256-256 predict_proba"
    if hasattr(data.X_train, "iloc"):
        return skipped(name, "reference", "n/a: MLPClassifier takes no NaN or categories")
    mlp = MLPClassifier(hidden_layer_sizes=MLP_HIDDEN, max_iter=MLP_MAX_ITER, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(data.X_train, data.y_train)
    path = workdir / "mlp.joblib"
    joblib.dump(mlp, path)
    return Way(
        name,
        "reference",
        "joblib pickle",
        file_size(path),
        lambda threads: mlp.predict_proba,
        note=f"fitted {MLP_MAX_ITER} epochs only",
    )


# ---------------------------------------------------------------------------
# Measuring a way
# ---------------------------------------------------------------------------


def score(row, proba, data, teacher):
    """Accuracy, agreement with the teacher's predictions and the largest
    probability difference to its predict_proba, on the test rows."""
    predicted = teacher["classes"][np.argmax(proba, axis=1)]
    row["accuracy"] = float(np.mean(predicted == data.y_test))
    row["agreement"] = float(np.mean(predicted == teacher["labels"]))
    row["max_abs_dp"] = float(np.max(np.abs(np.asarray(proba, np.float64) - teacher["proba"])))


def measure(way, data, teacher, thread_counts, cfg):
    """Scores and timings of one way, per thread count.

    The large batch is the test rows in order, repeated up to ``batch_rows``:
    its first call's output gives the scores.
    """
    row = {
        "way": way.name,
        "side": way.side,
        "artefact": way.artefact,
        "bytes": way.n_bytes,
        "note": way.note,
        "accuracy": None,
        "agreement": None,
        "max_abs_dp": None,
        "timings": {},
    }
    if way.load is None:
        return row
    n_test, n_batch = len(data.y_test), cfg["batch_rows"]
    singles = [
        way.prepare(take(data.X_test, [i])) for i in row_indices(n_test, cfg["latency_calls"])
    ]
    batch = way.prepare(take(data.X_test, row_indices(n_test, n_batch)))
    for threads in thread_counts:
        with thread_limit(threads):
            predict = way.load(threads)
            latency = median_latency(predict, singles)
            seconds, output = best_time(predict, batch, cfg["repeats"], cfg["batch_budget"])
            if row["accuracy"] is None:
                proba = output[:n_test] if n_test <= n_batch else predict(way.prepare(data.X_test))
                score(row, proba, data, teacher)
            row["timings"][str(threads)] = {"batch1_s": latency, "rows_per_s": n_batch / seconds}
    return row


# ---------------------------------------------------------------------------
# One case: a data set and a teacher
# ---------------------------------------------------------------------------


def fit_student(teacher, data, cfg):
    """The default student, or (None, reason) where fit fails."""
    params = {"random_state": SEED}
    if cfg["quick"]:
        params["max_epochs"] = QUICK["max_epochs"]
    start = time.perf_counter()
    try:
        with thread_limit(cfg["fit_threads"]):
            student = DistilledClassifier(teacher, **params).fit(data.X_train, data.y_train)
    except Exception as error:
        return None, short_error(error), time.perf_counter() - start
    return student, None, time.perf_counter() - start


def student_ways(teacher, data, cfg, workdir):
    student, reason, seconds = fit_student(teacher, data, cfg)
    if student is None:
        print(f"  student: not supported yet ({reason})", flush=True)
        return [
            skipped(name, "student", f"not supported yet ({reason})")
            for name in ("student predict_proba", "student onnxruntime")
        ], {"student_fit_s": seconds, "student_error": reason}
    print(f"  student fitted in {seconds:.0f} s ({student.n_iter_} epochs)", flush=True)
    info = {"student_fit_s": seconds, "student_epochs": int(student.n_iter_)}
    ways = [student_predict_proba(student, workdir), student_onnx(student, workdir)]
    if hasattr(data.X_train, "iloc"):  # a mixed table: the grouped inputs too
        ways.append(student_onnx(student, workdir, inputs="grouped"))
    return ways, info


def run_case(dataset, kind, data, cfg, mlp_cache):
    n_trees = cfg["n_trees"]
    print(f"\n== {dataset} / {kind} ({n_trees} trees)", flush=True)
    fit_threads = cfg["fit_threads"]
    teacher = make_teacher(kind, n_trees, fit_threads)
    start = time.perf_counter()
    with thread_limit(fit_threads):
        teacher.fit(data.X_train, data.y_train)
        teacher_fit_s = time.perf_counter() - start
        reference = {
            "classes": teacher.classes_,
            "labels": teacher.predict(data.X_test),
            "proba": teacher.predict_proba(data.X_test).astype(np.float64),
        }
    print(f"  teacher fitted in {teacher_fit_s:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="serving-", dir=cfg["workdir"]) as folder:
        workdir = Path(folder)
        own, pickle_path = own_predict_proba(teacher, workdir)
        ways = [own]
        for build in (
            lambda: teacher_onnx(teacher, kind, data, workdir),
            lambda: teacher_tl2cgen(pickle_path, data, cfg, workdir),
            lambda: teacher_hummingbird(teacher, data, workdir),
        ):
            ways.append(build())
            print(f"  {ways[-1].name}: {ways[-1].note or 'ready'}", flush=True)
        set_teacher_threads(teacher, fit_threads)  # for the student's labelling of its rows
        more, info = student_ways(teacher, data, cfg, workdir)
        ways += more
        if dataset not in mlp_cache:
            # Fitted once per data set; its pickle is measured here, then kept in memory.
            mlp_cache[dataset] = reference_mlp(data, workdir)
        ways.append(mlp_cache[dataset])
        rows = []
        for way in ways:
            rows.append(measure(way, data, reference, cfg["threads"], cfg))
            if rows[-1]["timings"]:
                print(f"  {format_progress(rows[-1])}", flush=True)
    return {
        "dataset": dataset,
        "teacher": kind,
        "n_trees": n_trees,
        "split": data.how,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "columns": describe_columns(data.X_train),
        "n_classes": data.n_classes,
        "teacher_fit_s": teacher_fit_s,
        **info,
        "ways": rows,
    }


def format_progress(row):
    if not row["timings"]:
        return f"{row['way']}: {row['note']}"
    one = row["timings"][min(row["timings"], key=int)]
    return (
        f"{row['way']}: batch 1 {one['batch1_s'] * 1e3:.3f} ms, "
        f"{one['rows_per_s']:,.0f} rows/s, acc {row['accuracy']:.4f}, "
        f"agreement {row['agreement']:.4f}, max |dp| {row['max_abs_dp']:.2g}"
    )


# ---------------------------------------------------------------------------
# Ratios against the targets
# ---------------------------------------------------------------------------


def timing(row, threads, key):
    return row["timings"].get(str(threads), {}).get(key) if row else None


def find(case, way):
    return next((r for r in case["ways"] if r["way"] == way and r["timings"]), None)


def case_ratios(case, threads):
    """Student ONNX against the fastest teacher way; student against MLPClassifier."""
    teachers = [r for r in case["ways"] if r["side"] == "teacher" and r["timings"]]
    onnx_row = find(case, "student onnxruntime")
    student_row = find(case, "student predict_proba")
    mlp_row = find(case, "MLPClassifier 256-256 predict_proba")
    out = {"threads": threads}
    if teachers:
        fastest = min(teachers, key=lambda r: timing(r, threads, "batch1_s"))
        busiest = max(teachers, key=lambda r: timing(r, threads, "rows_per_s"))
        out.update(
            teacher_batch1_way=fastest["way"],
            teacher_batch1_s=timing(fastest, threads, "batch1_s"),
            teacher_batch_way=busiest["way"],
            teacher_rows_per_s=timing(busiest, threads, "rows_per_s"),
        )
    if onnx_row and teachers:
        student_s = timing(onnx_row, threads, "batch1_s")
        student_rps = timing(onnx_row, threads, "rows_per_s")
        # Time ratios: below 1, the student is faster.
        out.update(
            student_onnx_batch1_s=student_s,
            student_onnx_rows_per_s=student_rps,
            batch1_ratio=student_s / out["teacher_batch1_s"],
            throughput_ratio=out["teacher_rows_per_s"] / student_rps,
        )
    if student_row and mlp_row:
        out["student_vs_mlp_batch1"] = timing(student_row, threads, "batch1_s") / timing(
            mlp_row, threads, "batch1_s"
        )
    return out


def mixed_vs_numeric(cases, threads, way="student onnxruntime"):
    """Mixed-table student ONNX latency (``way``) over the numeric (magic) student's."""
    by_name = {c["dataset"]: c for c in cases}
    mixed, numeric = by_name.get(MIXED), by_name.get("magic")
    if not mixed or not numeric:
        return None
    a, b = find(mixed, way), find(numeric, "student onnxruntime")
    if not a or not b:
        return None
    return timing(a, threads, "batch1_s") / timing(b, threads, "batch1_s")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def fmt_ms(seconds):
    return "—" if seconds is None else f"{seconds * 1e3:.3g}"


def fmt_rate(rate):
    return "—" if rate is None else f"{rate:,.0f}"


def fmt_bytes(n):
    if n is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def fmt_share(value):
    return "—" if value is None else f"{value:.4f}"


def fmt_ratio(value, target, below=True):
    if value is None:
        return "—"
    met = value < target if below else value > target
    return f"{value:.3g}x {'✓' if met else '✗'}"


def fmt_rows(n):
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def case_table(case, thread_counts, batch_rows):
    head = "| way | artefact | size | accuracy | agreement | max abs dp |"
    rule = "|---|---|---:|---:|---:|---:|"
    for t in thread_counts:
        head += f" batch 1, ms ({t} thr) | {fmt_rows(batch_rows)} rows, rows/s ({t} thr) |"
        rule += "---:|---:|"
    lines = [head + " note |", rule + "---|"]
    for row in case["ways"]:
        cells = [
            row["way"],
            row["artefact"] or "—",
            fmt_bytes(row["bytes"]),
            fmt_share(row["accuracy"]),
            fmt_share(row["agreement"]),
            "—" if row["max_abs_dp"] is None else f"{row['max_abs_dp']:.2g}",
        ]
        for t in thread_counts:
            cells += [fmt_ms(timing(row, t, "batch1_s")), fmt_rate(timing(row, t, "rows_per_s"))]
        cells.append(row["note"].replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratio_table(cases, thread_counts, batch_rows):
    rows = fmt_rows(batch_rows)
    lines = [
        "| case | threads | fastest teacher at batch 1 | student ONNX / it, batch 1 "
        f"| fastest teacher at {rows} rows | student ONNX / it, {rows} rows "
        "| student predict_proba / MLPClassifier, batch 1 |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for case in cases:
        for t in thread_counts:
            r = case_ratios(case, t)
            batch1_ms, batch_rate = (
                fmt_ms(r.get("teacher_batch1_s")),
                fmt_rate(r.get("teacher_rows_per_s")),
            )
            lines.append(
                f"| {case['dataset']} / {case['teacher']} | {t} "
                f"| {r.get('teacher_batch1_way', '—')} ({batch1_ms} ms) "
                f"| {fmt_ratio(r.get('batch1_ratio'), 1)} "
                f"| {r.get('teacher_batch_way', '—')} ({batch_rate} rows/s) "
                f"| {fmt_ratio(r.get('throughput_ratio'), 1)} "
                f"| {fmt_ratio(r.get('student_vs_mlp_batch1'), TARGET_STUDENT_VS_MLP)} |"
            )
    return lines


def report(results):
    cfg = results["config"]
    threads = cfg["threads"]
    lines = [
        "# Serving the student against serving the teacher",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}.",
        "",
        f"Runtimes: {results['versions']}.",
        "",
        f"Load average (1/5/15 min): {results['load_before']} before, "
        f"{results.get('load_after', '(running)')} after; wall time "
        f"{results.get('wall_s', 0) / 60:.1f} min.",
        "",
        f"Teachers with {cfg['n_trees']} trees / rounds; student "
        f"`DistilledClassifier(teacher, random_state=0)`"
        + (f" with max_epochs={QUICK['max_epochs']} (--quick)" if cfg["quick"] else "")
        + f"; fits with {cfg['fit_threads']} thread(s). Batch 1: median of "
        f"{cfg['latency_calls']} single-row calls on different test rows after "
        f"{WARMUP_CALLS} warm-up calls. {fmt_rows(cfg['batch_rows'])} rows: the test rows "
        f"repeated, best of {cfg['repeats']} calls (fewer past {cfg['batch_budget']:g} s). "
        "Size: the artefact each way serves from. Agreement: with the teacher's own "
        "predictions on the test rows; max abs dp: largest difference to its "
        "predict_proba. Timings with more than one thread mean little while the load "
        "average is above the number of CPUs.",
        "",
    ]
    for case in results["cases"]:
        lines += [
            f"## {case['dataset']} / {case['teacher']}",
            "",
            f"{case['n_train']} training rows, {case['n_test']} test rows, "
            f"{case['columns']}, {case['n_classes']} classes ({case['split']}). "
            f"Teacher fitted in {case['teacher_fit_s']:.0f} s; student "
            + (
                f"fitted in {case['student_fit_s']:.0f} s ({case['student_epochs']} epochs)."
                if "student_epochs" in case
                else f"not fitted: {case.get('student_error', '').rstrip('.')}."
            ),
            "",
            *case_table(case, threads, cfg["batch_rows"]),
            "",
        ]
    lines += [
        "## Ratios",
        "",
        "Time ratios, below 1 when the student is faster (✓: target met).",
        "",
        *ratio_table(results["cases"], threads, cfg["batch_rows"]),
        "",
    ]
    for t in threads:
        for way, form in [
            ("student onnxruntime", "one input per column"),
            ("student onnxruntime (grouped inputs)", 'inputs="grouped"'),
        ]:
            ratio = mixed_vs_numeric(results["cases"], t, way)
            lines.append(
                f"- Mixed-table ({MIXED}) student ONNX ({form}) / numeric (magic) student "
                f"ONNX, batch 1, {t} thread(s): {fmt_ratio(ratio, TARGET_MIXED_VS_NUMERIC)}"
                + ("" if ratio is not None else " (needs both students exported)")
            )
    lines += [
        "",
        "Targets: the student's ONNX model faster than every way of serving the teacher "
        "at batch 1 and at 10k rows on every data set; student `predict_proba` on one row "
        f"within {TARGET_STUDENT_VS_MLP}x of `MLPClassifier.predict_proba` of the same "
        f"architecture; mixed-table student ONNX within {TARGET_MIXED_VS_NUMERIC}x of a "
        "numeric student's latency.",
    ]
    if results.get("not_run"):
        lines += ["", "Not run: " + "; ".join(results["not_run"])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def runtime_versions():
    names = [
        ("onnxruntime", "onnxruntime"),
        ("skl2onnx", "skl2onnx"),
        ("onnxmltools", "onnxmltools"),
        ("xgboost", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("treelite", "treelite"),
        ("tl2cgen", "tl2cgen"),
        ("hummingbird-ml", "hummingbird"),
    ]
    parts = []
    for label, module in names:
        try:
            version = __import__(module, fromlist=["__version__"]).__version__
        except Exception:  # missing or broken: say so rather than stop
            version = "not available"
        parts.append(f"{label} {version}")
    return ", ".join(parts)


def load_average():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def command_line():
    nice = os.nice(0)
    prefix = f"nice -n {nice} " if nice else ""
    return (
        prefix
        + "python benchmarks/serving.py"
        + "".join(" " + shlex.quote(arg) for arg in sys.argv[1:])
    )


def parse_list(text, allowed=None, kind=str):
    items = [kind(item) for item in text.split(",") if item.strip()]
    if allowed is not None:
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise SystemExit(f"unknown {unknown}; choose among {','.join(allowed)}")
    return items


def config_from_args(args):
    quick = args.quick
    default_threads = f"1,{N_CPUS}" if N_CPUS > 1 else "1"
    threads = sorted(set(parse_list(args.threads or default_threads, kind=int)))
    return {
        "quick": quick,
        "datasets": parse_list(args.datasets, DATASETS) if args.datasets else list(DATASETS),
        "n_trees": args.n_trees or (QUICK["n_trees"] if quick else N_TREES),
        "train_rows": QUICK["train_rows"] if quick else None,
        "test_rows": QUICK["test_rows"] if quick else None,
        "batch_rows": args.batch_rows or (QUICK["batch_rows"] if quick else BATCH_ROWS),
        "batch_budget": QUICK["batch_budget"] if quick else BATCH_BUDGET_S,
        "latency_calls": args.latency_calls or (QUICK["latency_calls"] if quick else LATENCY_CALLS),
        "repeats": args.repeats or (QUICK["repeats"] if quick else REPEATS),
        "compile_limit": args.compile_limit
        or (QUICK["compile_limit"] if quick else COMPILE_LIMIT_S),
        "threads": threads,
        "fit_threads": args.fit_threads,
        "workdir": args.workdir,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['n_trees']} trees, {QUICK['train_rows']} training rows, student "
        f"max_epochs={QUICK['max_epochs']}, {QUICK['latency_calls']} latency calls, best of "
        f"{QUICK['repeats']}, compile limit {QUICK['compile_limit']} s",
    )
    parser.add_argument("--datasets", help=f"comma-separated, among {','.join(DATASETS)}")
    parser.add_argument(
        "--threads", help=f"comma-separated thread counts (default 1,{N_CPUS}: 1 and nproc)"
    )
    parser.add_argument(
        "--fit-threads",
        type=int,
        default=1,
        help="threads while the teachers and students train (1: fitting is not what is "
        "timed, and one thread never waits for another on a shared machine)",
    )
    parser.add_argument("--n-trees", type=int, help=f"trees / rounds per teacher ({N_TREES})")
    parser.add_argument("--batch-rows", type=int, help=f"rows of the large batch ({BATCH_ROWS})")
    parser.add_argument("--latency-calls", type=int, help=f"single-row calls ({LATENCY_CALLS})")
    parser.add_argument("--repeats", type=int, help=f"large-batch calls, best kept ({REPEATS})")
    parser.add_argument(
        "--compile-limit", type=float, help=f"seconds for a tl2cgen compile ({COMPILE_LIMIT_S})"
    )
    parser.add_argument("--workdir", help="folder for the artefacts (default: the system's temp)")
    parser.add_argument("--compile-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_child:
        compile_child(*args.compile_child)
        return

    cfg = config_from_args(args)
    # hummingbird sets torch's inter-op threads to 1, which torch only allows
    # before any parallel work: do it first. Serving is one request at a time.
    torch.set_num_interop_threads(1)
    stem = "serving" + ("_quick" if cfg["quick"] else "")
    RESULTS.mkdir(exist_ok=True)
    results = {
        "command": command_line(),
        "machine": describe_machine(),
        "versions": runtime_versions(),
        "load_before": load_average(),
        "config": cfg,
        "cases": [],
        "not_run": [],
    }
    start = time.perf_counter()
    datasets, mlp_cache = {}, {}
    for dataset, kind in CASES:
        if dataset not in cfg["datasets"]:
            continue
        if dataset not in datasets:
            datasets[dataset] = load_data(dataset, cfg["train_rows"], cfg["test_rows"])
        try:
            results["cases"].append(run_case(dataset, kind, datasets[dataset], cfg, mlp_cache))
        except Exception as error:  # keep the other cases' results
            results["not_run"].append(f"{dataset} / {kind}: {short_error(error)}")
            print(f"  FAILED: {short_error(error)}", flush=True)
        results["wall_s"] = time.perf_counter() - start
        (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    results["load_after"] = load_average()
    results["wall_s"] = time.perf_counter() - start
    text = report(results)
    print("\n" + text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
