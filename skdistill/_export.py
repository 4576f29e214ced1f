"""Export a fitted student to ONNX, for serving without Python or torch.

The exported graph takes the raw float32 features, applies the student's
input standardisation and body, and ends with the softmax of
``predict_proba``, so that any ONNX runtime reproduces the estimator::

    X (float32, batch x n_features) -> probabilities (float32, batch x n_classes)
                                    -> logits        (float32, batch x n_classes)

A student with a ``preprocessor_`` (a table with categorical columns or
missing values) gets its preprocessing in front of that graph, and then
takes the raw columns (``_onnx_preprocessing.py``).

The batch dimension is dynamic. The classes and the feature names are stored
in the model's ``metadata_props`` as JSON, so a server can map the output
columns back to labels without the Python estimator.

Exporting needs the optional packages ``onnx`` and ``onnxscript`` (used by
torch's ``torch.export``-based exporter), and ``skl2onnx`` for a student
with preprocessing; running the result needs an ONNX runtime such as
``onnxruntime``.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import copy
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._json_arrays import decode_array, encode_array
from ._onnx_preprocessing import INPUT_FORMS, compose_with_preprocessing, input_layout
from ._preprocessing import category_strings, float_column, is_frame
from ._version import __version__
from .utils._packages import missing_packages

__all__ = ["fitted_student_module", "onnx_feeds", "read_onnx_metadata", "to_onnx"]

#: Output kinds of :func:`to_onnx`, with the names of the graph's outputs.
OUTPUT_NAMES = {
    "proba": ("probabilities", "logits"),
    "raw": ("predictions",),
}

#: Batch size of the example input the graph is traced with. Not 0 or 1,
#: which ``torch.export`` would specialise on.
_EXAMPLE_BATCH = 2


class _ProbaHead(torch.nn.Module):
    """The student's module followed by the softmax of ``predict_proba``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, X):
        logits = self.module(X)
        return torch.softmax(logits, dim=1), logits


class _RawHead(torch.nn.Module):
    """The student's module as it is (a regressor's predictions)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, X):
        return self.module(X)


_HEADS = {"proba": _ProbaHead, "raw": _RawHead}


def to_onnx(estimator, path, *, opset=None, output="auto", inputs="columns"):
    """Write the fitted student of ``estimator`` as an ONNX model.

    The graph holds the student's preprocessing (if any), the input
    standardisation, the student network and, for a classifier, the final
    softmax: ``onnxruntime`` gives the estimator's ``predict_proba`` to
    float32 precision (differences of the order of 1e-7). The outputs are
    ``probabilities`` and ``logits``, in the order of ``classes_``. The
    inputs (any batch size):

    - a student without ``preprocessor_`` (numeric data without missing
      values): one input ``X``, float32, shape ``(batch, n_features_in_)``,
      columns in the order of ``feature_names_in_``;
    - a student fitted on a DataFrame with a ``preprocessor_`` (categorical
      columns or missing values): one input per column, named as the
      column, shape ``(batch, 1)``: ``tensor(float)`` for a numeric column
      (NaN for a missing value), ``tensor(string)`` for a categorical one
      (``""`` for a missing value; a category ``1`` is ``"1"``, ``True`` is
      ``"True"``). :func:`onnx_feeds` builds them from a DataFrame;
    - a student fitted on a numeric array with missing values: ``X`` as
      above, NaN for a missing value.

    Parameters
    ----------
    estimator : fitted estimator
        An estimator with a fitted skorch ``student_`` (whose ``module_``
        maps raw features to outputs), such as
        :class:`~skdistill.DistilledClassifier`; a classifier must have
        ``classes_``.
    path : str or path-like
        The ``.onnx`` file to write (a single file, weights included).
    opset : int, default=None
        ONNX opset version; None uses the default of the installed torch.
    output : {"auto", "proba", "raw"}, default="auto"
        What the graph returns. ``"proba"``: ``probabilities`` (softmax of
        the logits) and ``logits``. ``"raw"``: the module's output as
        ``predictions`` (for a regressor). ``"auto"``: ``"proba"`` for a
        classifier (``sklearn.base.is_classifier``), else ``"raw"``.
    inputs : {"columns", "grouped"}, default="columns"
        The inputs of a model with the preprocessing of a DataFrame.
        ``"columns"``: one per column, as above. ``"grouped"``: two,
        ``numeric`` (float, ``(batch, n_numeric)``, NaN for missing) and
        ``categorical`` (string, ``(batch, n_categorical)``, ``""`` for
        missing), the columns of each kind in their order in the frame;
        for the automatic preprocessing only. onnxruntime's Python binding
        costs about 1 µs per input, so on one row of a 15 to 20 column
        table the grouped form measured 1.9-2.3x a numeric student's latency,
        against 2.8-3.4x for one input per column.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the estimator is not fitted, has no skorch student, or has a
        custom ``preprocessor_`` that skl2onnx cannot convert.
    ImportError
        If ``onnx`` or ``onnxscript`` (or, for a student with a
        ``preprocessor_``, ``skl2onnx``) is not installed.

    See Also
    --------
    read_onnx_metadata : The classes, feature names and inputs stored in the file.
    onnx_feeds : The model's inputs from a DataFrame.
    skdistill.persistence.save_student : Safe persistence for Python.

    Notes
    -----
    The model's ``metadata_props`` hold, as JSON strings: ``classes`` and
    ``classes_dtype`` (a numpy dtype string), ``feature_names`` (null when
    the estimator was fitted without column names), ``n_features``,
    ``output`` (the output kind), ``inputs`` (``"X"``, ``"columns"`` or
    ``"grouped"``), ``input_kinds`` (``"numeric"`` or ``"categorical"`` per
    column, or null), ``preprocessor`` (its class name, or null),
    ``preprocessor_state`` (the automatic preprocessing's columns, kinds,
    medians, indicators and levels, or null) and ``skdistill_version``.

    A custom preprocessor is converted by skl2onnx as it is: categorical
    columns reach it as strings, with ``""`` for a missing value, which it
    must handle as its Python version handles its own input; compare the
    model with ``predict_proba`` on your own rows.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.export import to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=500).fit(X, y)
    >>> student = DistilledClassifier(
    ...     teacher, hidden_layer_sizes=(8,), max_epochs=3, random_state=0
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = to_onnx(student, Path(directory) / "student.onnx")
    ...     session = onnxruntime.InferenceSession(path)
    ...     proba, logits = session.run(None, {"X": X.astype(np.float32)})
    >>> proba.shape
    (150, 3)
    >>> bool(np.abs(proba - student.predict_proba(X)).max() < 1e-5)
    True
    """
    kind = _output_kind(estimator, output)
    module, n_features = fitted_student_module(estimator)
    metadata = _metadata(estimator, kind)
    preprocessed = getattr(estimator, "preprocessor_", None) is not None
    if preprocessed:
        input_layout(estimator, inputs)  # a bad ``inputs`` fails before the export
    elif inputs not in INPUT_FORMS:
        raise ValueError(f"inputs must be 'columns' or 'grouped'; got {inputs!r}.")
    _require(["onnx", "onnxscript", *(["skl2onnx"] if preprocessed else [])])

    graph = _HEADS[kind](copy.deepcopy(module).cpu()).eval()
    example = torch.zeros(_EXAMPLE_BATCH, n_features, dtype=torch.float32)
    with _quiet_exporter():
        program = torch.onnx.export(
            graph,
            (example,),
            None,
            input_names=["X"],
            output_names=list(OUTPUT_NAMES[kind]),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    path = Path(path)
    if preprocessed:
        import onnx

        model = compose_with_preprocessing(program.model_proto, estimator, inputs, metadata)
        onnx.save(model, path)
        return path
    for key, value in metadata.items():
        program.model.metadata_props[key] = value
    # A single file: weights are written alongside only beyond ONNX's 2 GB.
    program.save(path)
    return path


def _require(packages):
    missing = missing_packages(packages)
    if missing:
        raise ImportError(
            f"to_onnx needs the package(s) {', '.join(missing)} (torch.onnx's exporter "
            "uses onnx and onnxscript; skl2onnx converts the preprocessing): "
            f"pip install {' '.join(missing)}"
        )


def read_onnx_metadata(path):
    """The metadata :func:`to_onnx` stored in an ONNX file, decoded.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file written by :func:`to_onnx`.

    Returns
    -------
    metadata : dict
        ``classes`` (an ndarray of the stored dtype, or None for a
        regressor), ``feature_names`` (an ndarray of str, or None),
        ``n_features``, ``output``, ``inputs`` (``"X"``, ``"columns"`` or
        ``"grouped"``), ``input_kinds`` (a list, or None),
        ``preprocessor`` (a class name, or None), ``preprocessor_state``
        (a dict, or None) and ``skdistill_version``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.export import read_onnx_metadata, to_onnx
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> labels = load_iris().target_names[y]
    >>> teacher = LogisticRegression(max_iter=500).fit(X, labels)
    >>> student = DistilledClassifier(
    ...     teacher, hidden_layer_sizes=(8,), max_epochs=3, random_state=0
    ... ).fit(X, labels)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     metadata = read_onnx_metadata(to_onnx(student, Path(directory) / "m.onnx"))
    >>> metadata["classes"]
    array(['setosa', 'versicolor', 'virginica'], dtype='<U10')
    >>> metadata["feature_names"][:2]
    array(['sepal length (cm)', 'sepal width (cm)'], dtype=object)
    """
    import onnx

    props = {
        prop.key: prop.value
        for prop in onnx.load(str(path), load_external_data=False).metadata_props
    }
    classes = json.loads(props.get("classes", "null"))
    names = json.loads(props.get("feature_names", "null"))
    plain = ("n_features", "output", "input_kinds", "preprocessor", "preprocessor_state")
    return {
        "classes": None
        if classes is None
        else decode_array(classes, json.loads(props["classes_dtype"])),
        "feature_names": None if names is None else decode_array(names, "|O"),
        **{key: json.loads(props.get(key, "null")) for key in plain},
        # files of skdistill 0.1 before preprocessing was exported: "X"
        "inputs": json.loads(props.get("inputs", '"X"')),
        "skdistill_version": json.loads(props.get("skdistill_version", "null")),
    }


def onnx_feeds(X, model):
    """The onnxruntime inputs of a model written by ``to_onnx``, from rows of X.

    A server without skdistill builds the same arrays itself (see the
    deployment guide): numeric columns as float32 ``(N, 1)`` with NaN for a
    missing value, categorical columns as strings ``(N, 1)`` with ``""`` for a
    missing value (a category ``1`` as ``"1"``, ``True`` as ``"True"``).

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Rows as the estimator takes them: a DataFrame with the columns
        it was fitted on (by name, any order, extra columns ignored) or,
        for a model whose input is ``X``, an array.
    model : str, path-like or dict
        The ``.onnx`` file, or its metadata as
        :func:`~skdistill.export.read_onnx_metadata` returns them (read once
        for many calls).

    Returns
    -------
    feeds : dict of str to ndarray
        Input name to array, for ``onnxruntime.InferenceSession.run``.

    See Also
    --------
    to_onnx : Write the model.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import onnxruntime
    >>> import pandas as pd
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.export import onnx_feeds, to_onnx
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({
    ...     "size": np.where(rng.random(200) < 0.1, np.nan, rng.normal(size=200)),
    ...     "colour": pd.Categorical(rng.choice(["red", "blue", None], size=200)),
    ... })
    >>> y = (X["size"].fillna(0) > 0).to_numpy(int)
    >>> teacher = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    >>> student = DistilledClassifier(
    ...     teacher, hidden_layer_sizes=(8,), max_epochs=3, random_state=0
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = to_onnx(student, Path(directory) / "student.onnx")
    ...     session = onnxruntime.InferenceSession(path)
    ...     feeds = onnx_feeds(X.iloc[:2], path)
    ...     proba, logits = session.run(None, feeds)
    >>> sorted(feeds)
    ['colour', 'size']
    >>> feeds["colour"].shape, feeds["colour"].dtype
    ((2, 1), dtype('O'))
    >>> bool(np.abs(proba - student.predict_proba(X.iloc[:2])).max() < 1e-5)
    True
    """
    if not isinstance(model, dict):
        model = read_onnx_metadata(model)
    form = model.get("inputs") or "X"
    names = model.get("feature_names")
    if form == "X":
        if is_frame(X) and names is not None:
            X = _columns(X, names)
            return {"X": X.to_numpy(dtype=np.float32, na_value=np.nan)}
        return {"X": np.asarray(X, dtype=np.float32)}
    if not is_frame(X):
        raise ValueError(
            "This model takes the columns of a table: pass a DataFrame with the columns "
            f"{list(names)[:10]}."
        )
    X = _columns(X, names)
    kinds = model["input_kinds"]
    values = [
        _column_values(column, kind) for (_, column), kind in zip(X.items(), kinds, strict=True)
    ]
    if form == "columns":
        return {str(name): value for name, value in zip(names, values, strict=True)}
    pairs = list(zip(values, kinds, strict=True))
    return {
        group: np.hstack([value for value, kind in pairs if kind == group])
        for group in ("numeric", "categorical")
        if group in kinds
    }


def _columns(X, names):
    """X's columns of these names (as strings), in this order."""
    by_name = {str(column): column for column in X.columns}
    missing = [name for name in names if str(name) not in by_name]
    if missing:
        raise ValueError(f"X lacks the model's column(s) {missing[:10]}.")
    return X[[by_name[str(name)] for name in names]]


def _column_values(column, kind):
    if kind == "numeric":
        return np.asarray(float_column(column), dtype=np.float32).reshape(-1, 1)
    return category_strings(column).reshape(-1, 1)


def _output_kind(estimator, output):
    if output == "auto":
        return "proba" if is_classifier(estimator) else "raw"
    if output not in OUTPUT_NAMES:
        raise ValueError(f"output must be 'auto', 'proba' or 'raw'; got {output!r}.")
    return output


def fitted_student_module(estimator):
    """The fitted student module of ``estimator`` and the width of its input.

    Shared with :func:`~skdistill.persistence.save_student`: refuses
    unfitted estimators with a clear message. The width is
    ``n_features_in_``, or the preprocessing's output width for an
    estimator with a ``preprocessor_``.
    """
    name = type(estimator).__name__
    try:
        check_is_fitted(estimator)
    except NotFittedError as error:
        raise ValueError(
            f"This {name} is not fitted yet: call fit before exporting or saving its student."
        ) from error
    except TypeError:
        pass  # not a scikit-learn estimator (no fit): its student_ decides
    module = getattr(getattr(estimator, "student_", None), "module_", None)
    if not isinstance(module, torch.nn.Module):
        raise ValueError(
            f"{name} has no fitted student_ with a torch module_; only estimators "
            "that carry a fitted skorch student (such as DistilledClassifier) can "
            "be exported or saved."
        )
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ValueError(f"{name} has no n_features_in_; is it fitted?")
    if getattr(estimator, "preprocessor_", None) is None:
        return module, int(n_features)
    # The module takes the preprocessing's output: its standardisation says how wide.
    mean = getattr(getattr(module, "standardize", None), "mean", None)
    if mean is None:
        raise ValueError(
            f"{name}'s student module has no input standardisation (standardize.mean) "
            "telling the width of its input; only skdistill's StudentModule can be "
            "exported or saved with its preprocessing."
        )
    return module, int(mean.shape[0])


def _metadata(estimator, kind):
    """``metadata_props`` of the exported model: JSON strings by key."""
    classes = getattr(estimator, "classes_", None)
    if kind == "proba" and classes is None:
        raise ValueError(
            f"{type(estimator).__name__} has no classes_; output='proba' needs a classifier."
        )
    names = getattr(estimator, "feature_names_in_", None)
    encoded_classes, classes_dtype = (
        (None, None) if classes is None else encode_array(classes, "classes_")
    )
    return {
        "classes": json.dumps(encoded_classes),
        "classes_dtype": json.dumps(classes_dtype),
        "feature_names": json.dumps(None if names is None else [str(n) for n in names]),
        "n_features": json.dumps(int(estimator.n_features_in_)),
        "output": json.dumps(kind),
        "inputs": json.dumps("X"),
        "input_kinds": json.dumps(None),
        "preprocessor": json.dumps(None),
        "preprocessor_state": json.dumps(None),
        "skdistill_version": json.dumps(__version__),
    }


@contextlib.contextmanager
def _quiet_exporter():
    """Silence torch.onnx's notices that are not about the user's model.

    The exporter logs that torchvision's operators are skipped when
    torchvision is not installed, and torch's own pytree code raises a
    FutureWarning about its internals; neither calls for any action.
    """
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)
