"""The command line: ``python -m skdistill`` or ``skdistill``.

``skdistill demo`` (the default with no arguments) distils a random forest
on scikit-learn's digits. ``skdistill compress TEACHER DATA --out DIR``
distils a saved classifier on a table of rows and writes the student as
ONNX and as safe (pickle-free) files, with a teacher-versus-student report.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import inspect
import math
import pickle
import sys
import tempfile
import time
from pathlib import Path

from ._version import __version__

__all__ = ["main"]

#: Exit status of a command that was given bad input (as argparse's).
EXIT_USAGE = 2
#: Exit status of a command that failed for another reason (a missing package).
EXIT_FAILURE = 1

#: --early-stopping's choices and the ``early_stopping`` values they stand for.
_EARLY_STOPPING = {"on": True, "off": False, "auto": "auto"}

#: Rows the split must leave on each side: training and held-out.
MIN_TRAINING_ROWS = 2
MIN_TEST_ROWS = 1

_CSV_SUFFIXES = {".csv", ".txt"}
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


class CommandError(Exception):
    """A failure reported as one line on stderr, with an exit status."""

    def __init__(self, message, status=EXIT_USAGE):
        super().__init__(message)
        self.status = status


def main(argv=None):
    """Run the ``skdistill`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; ``sys.argv[1:]`` when None. No command runs the demo.

    Returns
    -------
    status : int
        The exit status: 0 on success, 2 for bad input (a missing or
        unreadable file, a teacher that is not a classifier, columns that do
        not match it), 1 for other failures (a missing optional package).

    Examples
    --------
    >>> from skdistill.__main__ import main
    >>> main(["compress", "no-such-teacher.joblib", "no-such-data.csv", "--out", "out"])
    2
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "compress":
        try:
            return _compress(args)
        except CommandError as error:
            message = " ".join(str(error).split())
            print(f"skdistill compress: error: {message}", file=sys.stderr)
            return error.status
    from ._demo import run_demo

    run_demo(random_state=getattr(args, "random_state", 0))
    return 0


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skdistill",
        description="Distil fitted scikit-learn classifiers into small neural nets.",
    )
    parser.add_argument("--version", action="version", version=f"skdistill {__version__}")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo", help="distil a random forest on scikit-learn's digits and compare (the default)"
    )
    demo.add_argument("--random-state", type=int, default=0)

    compress = commands.add_parser(
        "compress",
        help="distil a saved classifier on a CSV or Parquet file; write ONNX and safe files",
        description=(
            "Distil a fitted classifier (TEACHER) into a small neural network on the "
            "rows of DATA, compare them on held-out rows, and write DIR/model.onnx, "
            "DIR/model.safetensors and DIR/metadata.json (load the last two with "
            "skdistill.persistence.load_student, which runs no code from the files). "
            "Categorical columns and empty cells are taken as the teacher takes them; "
            "the student's preprocessing (median imputation with missing-value "
            "indicators, one-hot categories) is in both outputs."
        ),
        epilog=(
            "Security: TEACHER is loaded with joblib.load, which, like pickle, runs "
            "code stored in the file. Only pass files you trust."
        ),
    )
    compress.add_argument(
        "teacher",
        metavar="TEACHER",
        help=(
            "a fitted classifier saved with joblib.dump or pickle "
            "(runs code from the file: trusted files only)"
        ),
    )
    compress.add_argument(
        "data",
        metavar="DATA",
        help="rows to distil on: .csv (with a header row) or .parquet (needs pyarrow)",
    )
    compress.add_argument(
        "--out", metavar="DIR", required=True, help="output directory (created if needed)"
    )
    compress.add_argument(
        "--target",
        metavar="COLUMN",
        help=(
            "column of DATA holding the labels: dropped from the features, "
            "used for hard labels and accuracy"
        ),
    )
    compress.add_argument(
        "--onnx-inputs",
        choices=["columns", "grouped"],
        default="columns",
        help=(
            "inputs of model.onnx for a table with categorical columns or empty cells: "
            "one per column (default), or two, 'numeric' and 'categorical' (faster to "
            "call from Python); see skdistill.export.to_onnx"
        ),
    )
    compress.add_argument(
        "--test-size",
        type=_fraction,
        default=0.2,
        help="share of the rows held out for the report (default 0.2)",
    )
    compress.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the split and of the student (default 0)",
    )
    student = compress.add_argument_group("student options (as DistilledClassifier's parameters)")
    # Defaults read from DistilledClassifier's signature, so they cannot drift from it.
    default = _estimator_defaults()
    student.add_argument(
        "--temperature",
        type=float,
        default=default["temperature"],
        help=f"default {default['temperature']}",
    )
    student.add_argument(
        "--alpha",
        type=float,
        default=default["alpha"],
        help=f"weight of the soft targets (default {default['alpha']})",
    )
    student.add_argument(
        "--loss",
        choices=["kl", "logit_mse"],
        default=default["loss"],
        help=f"default {default['loss']}",
    )
    student.add_argument(
        "--hidden-layer-sizes",
        type=_layer_sizes,
        default=tuple(default["hidden_layer_sizes"]),
        metavar="SIZES",
        help=f"comma-separated hidden layer widths "
        f"(default {','.join(map(str, default['hidden_layer_sizes']))})",
    )
    for name in ("max_epochs", "batch_size", "lr"):
        student.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default[name]),
            default=default[name],
            help=f"default {default[name]}",
        )
    early = next(
        key for key, value in _EARLY_STOPPING.items() if value == default["early_stopping"]
    )
    student.add_argument(
        "--early-stopping",
        choices=list(_EARLY_STOPPING),
        default=early,
        help=f"on: at every size; auto: from 10,000 training rows (default {early})",
    )
    student.add_argument(
        "--device",
        default=default["device"],
        help=f"torch device: cpu, cuda, auto (default {default['device']})",
    )
    student.add_argument(
        "--verbose",
        action="store_true",
        help="a line per epoch even on a terminal (default: a progress bar there, lines elsewhere)",
    )
    return parser


def _estimator_defaults():
    """DistilledClassifier's parameter defaults, by name: the student options' defaults."""
    from ._classifier import DistilledClassifier

    return {
        name: parameter.default
        for name, parameter in inspect.signature(DistilledClassifier).parameters.items()
    }


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive); got {text}")
    return value


def _layer_sizes(text):
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 128,128; got {text!r}"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive; got {text!r}")
    return sizes


# -- compress ------------------------------------------------------------------


def _compress(args):
    # Every check that needs no file comes first: a typo in an option must
    # not wait for the data and the teacher to load.
    student = _student(args)
    for what, path in (("TEACHER", args.teacher), ("DATA", args.data)):
        if not Path(path).is_file():
            raise CommandError(f"{what} file not found: {path}")
    out = _output_directory(Path(args.out))
    _require_packages()
    teacher = _load_teacher(Path(args.teacher))
    table = _read_table(Path(args.data))
    X, y = _features_and_labels(table, teacher, args.target, args.data)

    from ._demo import compare, format_comparison, summarize_comparison
    from ._export import to_onnx
    from ._persistence import METADATA_FILE, WEIGHTS_FILE, save_student
    from ._preprocessing import make_preprocessor

    if make_preprocessor("auto", X) is not None:
        _require_packages(["skl2onnx"])  # the preprocessing's ONNX graph
    X_train, X_test, y_train, y_test = _split(X, y, args)
    print(
        f"data: {args.data}: {len(X)} rows, {X.shape[1]} features; "
        f"{len(X_train)} training rows, {len(X_test)} held-out rows"
        + ("" if y is None else f"; labels from column {args.target!r}")
    )
    columns = _describe_columns(X)
    if columns:
        print(f"columns: {columns}")
    print(f"teacher: {_describe(teacher)} from {args.teacher}")

    student.set_params(teacher=teacher)
    start = time.perf_counter()
    try:
        student.fit(X_train, y_train)
    except (ValueError, TypeError) as error:
        raise CommandError(f"could not distil the teacher on DATA: {error}") from error
    width = getattr(student.preprocessor_, "n_features_out_", X.shape[1])
    sizes = "-".join(map(str, (width, *args.hidden_layer_sizes, len(student.classes_))))
    print(
        f"student: MLP {sizes}, distilled in {time.perf_counter() - start:.1f} s "
        f"({student.n_iter_} epochs, T={args.temperature}, alpha={args.alpha})"
    )

    try:
        save_student(student, out)
        onnx_path = to_onnx(student, out / "model.onnx", inputs=args.onnx_inputs)
    except (OSError, ValueError) as error:
        raise CommandError(
            f"could not write the student to {out}: {error}", EXIT_FAILURE
        ) from error

    print()
    try:
        rows = compare(teacher, student, X_test, y_test)
    except Exception as error:  # the report is a bonus: the files are written
        print(
            f"skdistill compress: warning: could not compare the models: {error}", file=sys.stderr
        )
    else:
        print(format_comparison(rows))
        print(f"\n{summarize_comparison(rows)}")

    print()
    for path in (onnx_path, out / WEIGHTS_FILE, out / METADATA_FILE):
        print(f"wrote {path} ({path.stat().st_size / 1e3:.1f} kB)")
    difference = _onnx_difference(onnx_path, student, X_test)
    if difference is not None:
        print(
            f"checked {onnx_path.name} with onnxruntime: max |difference| from "
            f"predict_proba on the held-out rows: {difference:.2g}"
        )
    return 0


def _student(args):
    """The unfitted DistilledClassifier of the student options, checked as fit would."""
    from ._classifier import DistilledClassifier
    from ._distiller import check_parameters

    student = DistilledClassifier(
        None,
        temperature=args.temperature,
        alpha=args.alpha,
        loss=args.loss,
        hidden_layer_sizes=args.hidden_layer_sizes,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        early_stopping=_EARLY_STOPPING[args.early_stopping],
        device=args.device,
        random_state=args.random_state,
        # A bar on a terminal, a line per epoch in a log; lines everywhere with --verbose.
        verbose=2 if args.verbose else 1,
    )
    try:
        check_parameters(student)
    except (ValueError, TypeError) as error:
        raise CommandError(f"invalid student option (see --help): {error}") from error
    return student


def _output_directory(out):
    """``out``, created, once a file could be written in it (before any training)."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} exists and is not a directory.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise CommandError(f"--out {out} is not a writable directory: {error}") from error
    return out


def _split(X, y, args):
    """Training and held-out rows (and labels), or a clear refusal when a side is too small."""
    from sklearn.model_selection import train_test_split

    # train_test_split's sizes: the held-out share rounded up.
    n_test = math.ceil(args.test_size * len(X))
    n_train = len(X) - n_test
    if n_train < MIN_TRAINING_ROWS or n_test < MIN_TEST_ROWS:
        raise CommandError(
            f"--test-size {args.test_size} splits the {len(X)} rows of DATA {args.data} into "
            f"{n_train} training and {n_test} held-out rows; at least {MIN_TRAINING_ROWS} "
            f"training rows and {MIN_TEST_ROWS} held-out row are needed: "
            + ("lower --test-size." if n_train < MIN_TRAINING_ROWS else "raise --test-size.")
            + ("" if len(X) >= MIN_TRAINING_ROWS + MIN_TEST_ROWS else " DATA needs more rows.")
        )
    split = train_test_split(
        *([X] if y is None else [X, y]), test_size=args.test_size, random_state=args.random_state
    )
    X_train, X_test = split[0], split[1]
    y_train, y_test = (None, None) if y is None else (split[2], split[3])
    return X_train, X_test, y_train, y_test


def _require_packages(names=("pandas", "safetensors", "onnx", "onnxscript")):
    """Check for the packages compress needs; a one-line error names the missing."""
    from .utils._packages import missing_packages

    missing = missing_packages(names)
    if missing:
        raise CommandError(
            f"skdistill compress needs the package(s) {', '.join(missing)}: "
            f"pip install {' '.join(missing)}",
            EXIT_FAILURE,
        )


def _load_teacher(path):
    import joblib
    from sklearn.base import is_classifier, is_regressor

    from ._teacher_checks import is_fitted

    if not path.is_file():
        raise CommandError(f"TEACHER file not found: {path}")
    try:
        teacher = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, KeyError) as error:
        # KeyError: an unknown pickle opcode in joblib's unpickler.
        raise CommandError(
            f"TEACHER {path} is not a file written by joblib.dump or pickle.dump "
            f"({type(error).__name__}: {error}); save the fitted classifier with "
            "joblib.dump(teacher, path)."
        ) from error
    except Exception as error:
        raise CommandError(
            f"could not load TEACHER {path} with joblib: {type(error).__name__}: {error}"
        ) from error
    name = type(teacher).__name__
    if _safe(is_regressor, teacher):
        raise CommandError(
            f"TEACHER {path} holds a regressor ({name}), not a classifier; "
            "compress distils classifiers."
        )
    has_outputs = hasattr(teacher, "predict_proba") or hasattr(teacher, "decision_function")
    if not (_safe(is_classifier, teacher) and has_outputs and hasattr(teacher, "fit")):
        raise CommandError(
            f"TEACHER {path} holds a {name}, not a scikit-learn classifier "
            "(an estimator with predict_proba or decision_function)."
        )
    if not is_fitted(teacher):
        raise CommandError(f"TEACHER {path} holds an unfitted {name}; fit it before saving it.")
    return teacher


def _safe(check, obj):
    """check(obj), False where it raises (scikit-learn's tags fail on non-estimators)."""
    try:
        return bool(check(obj))
    except Exception:
        return False


def _read_table(path):
    import pandas as pd

    if not path.is_file():
        raise CommandError(f"DATA file not found: {path}")
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    try:
        if suffix in _PARQUET_SUFFIXES:
            try:
                return pd.read_parquet(path)
            except ImportError as error:
                raise CommandError(
                    f"reading Parquet ({path}) needs pyarrow: pip install pyarrow", EXIT_FAILURE
                ) from error
        if suffix in _CSV_SUFFIXES:
            return pd.read_csv(path)
    except CommandError:
        raise
    except Exception as error:
        raise CommandError(
            f"could not read DATA {path}: {type(error).__name__}: {error}"
        ) from error
    raise CommandError(
        f"DATA {path} has an unknown format {suffix or '(no suffix)'!r}; use .csv or .parquet."
    )


def _features_and_labels(table, teacher, target, data_name):
    """X (a DataFrame, in the teacher's column order, or an array) and y (or None)."""
    from pandas.api.types import is_numeric_dtype

    columns = [str(column) for column in table.columns]
    table.columns = columns
    y = None
    if target is not None:
        if target not in columns:
            raise CommandError(
                f"--target {target!r} is not a column of DATA {data_name}; its columns are "
                f"{_shorten(columns)}."
            )
        y = table[target].to_numpy()
        table = table.drop(columns=[target])
        columns.remove(target)
    hint = "" if target is not None else " (if one of them holds the labels, pass --target COLUMN)"

    expected = getattr(teacher, "feature_names_in_", None)
    if expected is not None:
        expected = [str(name) for name in expected]
        missing = [name for name in expected if name not in columns]
        extra = [name for name in columns if name not in expected]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"lacks the teacher's column(s) {_shorten(missing)}")
            if extra:
                problems.append(
                    f"has column(s) the teacher was not fitted on: {_shorten(extra)}{hint}"
                )
            raise CommandError(
                f"the columns of DATA {data_name} do not match the teacher: "
                f"it {'; it '.join(problems)}."
            )
        table = table[expected]
    else:
        n_expected = getattr(teacher, "n_features_in_", None)
        if n_expected is not None and n_expected != len(columns):
            raise CommandError(
                f"DATA {data_name} has {len(columns)} feature column(s) but the teacher "
                f"was fitted on {n_expected}{hint if len(columns) > n_expected else ''}."
            )

    if expected is not None:
        return table, y
    # A teacher fitted without column names is given arrays, as it was fitted:
    # numbers only (an empty cell is NaN).
    not_numeric = [column for column, dtype in table.dtypes.items() if not is_numeric_dtype(dtype)]
    if not_numeric:
        raise CommandError(
            f"column(s) {_shorten(not_numeric)} of DATA {data_name} are not numeric, but the "
            "teacher was fitted on an array of numbers (without column names), so it "
            "takes numbers only: encode these columns as numbers, or fit the teacher "
            "on a DataFrame (a Pipeline that encodes them)."
        )
    return table.to_numpy(dtype=float), y


def _describe_columns(X):
    """'3 numeric (1 with empty cells), 2 categorical' for a table that needs preprocessing."""
    from ._preprocessing import column_kind, is_frame

    if not is_frame(X):
        return ""
    kinds = [column_kind(dtype) for dtype in X.dtypes]
    missing = X.isna().to_numpy().any(axis=0)
    n_missing = sum(bool(m) for m, kind in zip(missing, kinds, strict=True) if kind == "numeric")
    if "categorical" not in kinds and not n_missing:
        return ""
    return (
        f"{kinds.count('numeric')} numeric ({n_missing} with empty cells: imputed with their "
        f"median, plus a missing-value indicator), {kinds.count('categorical')} categorical "
        "(one-hot, empty cells a level of their own)"
    )


def _shorten(names, limit=10):
    shown = ", ".join(repr(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def _describe(teacher):
    steps = getattr(teacher, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    n_estimators = getattr(teacher, "n_estimators", None)
    if isinstance(n_estimators, int):
        return f"{type(teacher).__name__}(n_estimators={n_estimators})"
    return type(teacher).__name__


def _onnx_difference(onnx_path, student, X):
    """Max |onnxruntime - predict_proba| on X, or None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import numpy as np

    from ._export import onnx_feeds

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (proba,) = session.run(["probabilities"], onnx_feeds(X, onnx_path))
    return float(np.abs(proba - student.predict_proba(X)).max())
