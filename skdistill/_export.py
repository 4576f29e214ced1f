"""Export a fitted student to ONNX, for serving without Python or torch.

The exported graph takes the raw float32 features, applies the student's
input standardisation and body, and ends with the softmax of
``predict_proba``, so that any ONNX runtime reproduces the estimator::

    X (float32, batch x n_features) -> probabilities (float32, batch x n_classes)
                                    -> logits        (float32, batch x n_classes)

The batch dimension is dynamic. The classes and the feature names are stored
in the model's ``metadata_props`` as JSON, so a server can map the output
columns back to labels without the Python estimator.

Exporting needs the optional packages ``onnx`` and ``onnxscript`` (used by
torch's ``torch.export``-based exporter); running the result needs an ONNX
runtime such as ``onnxruntime``.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import copy
import json
import logging
import warnings
from pathlib import Path

import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._json_arrays import decode_array, encode_array
from ._version import __version__

__all__ = ["fitted_student_module", "read_onnx_metadata", "to_onnx"]

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


def to_onnx(estimator, path, *, opset=None, output="auto"):
    """Write the fitted student of ``estimator`` as an ONNX model.

    The graph holds the input standardisation, the student network and,
    for a classifier, the final softmax: ``onnxruntime`` gives the
    estimator's ``predict_proba`` to float32 precision (differences of the
    order of 1e-7). The input is named ``X`` (float32, shape
    ``(batch, n_features_in_)``, any batch size, columns in the order of
    ``feature_names_in_``); the outputs are ``probabilities`` and
    ``logits``, in the order of ``classes_``.

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

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the estimator is not fitted, has no skorch student, or has a
        fitted ``preprocessor_`` (whose ONNX export is not supported yet).
    ImportError
        If ``onnx`` or ``onnxscript`` is not installed.

    See Also
    --------
    read_onnx_metadata : The classes and feature names stored in the file.
    skdistill.persistence.save_student : Safe persistence for Python.

    Notes
    -----
    The model's ``metadata_props`` hold, as JSON strings: ``classes`` and
    ``classes_dtype`` (a numpy dtype string), ``feature_names`` (null when
    the estimator was fitted without column names), ``n_features``,
    ``output`` (the output kind) and ``skdistill_version``.

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
    metadata = _metadata(estimator, kind, n_features)
    try:
        import onnx  # noqa: F401  (needed by torch.onnx's exporter)
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "to_onnx needs the packages onnx and onnxscript (torch.onnx's exporter "
            "uses them): pip install onnx onnxscript"
        ) from error

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
    for key, value in metadata.items():
        program.model.metadata_props[key] = value
    path = Path(path)
    # A single file: weights are written alongside only beyond ONNX's 2 GB.
    program.save(path)
    return path


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
        ``n_features``, ``output`` and ``skdistill_version``.

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
    return {
        "classes": None
        if classes is None
        else decode_array(classes, json.loads(props["classes_dtype"])),
        "feature_names": None if names is None else decode_array(names, "|O"),
        "n_features": json.loads(props.get("n_features", "null")),
        "output": json.loads(props.get("output", "null")),
        "skdistill_version": json.loads(props.get("skdistill_version", "null")),
    }


def _output_kind(estimator, output):
    if output == "auto":
        return "proba" if is_classifier(estimator) else "raw"
    if output not in OUTPUT_NAMES:
        raise ValueError(f"output must be 'auto', 'proba' or 'raw'; got {output!r}.")
    return output


def fitted_student_module(estimator):
    """The fitted student module of ``estimator`` and its number of features.

    Shared with :func:`~skdistill.persistence.save_student`: refuses
    unfitted estimators and fitted preprocessors with a clear message.
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
    if getattr(estimator, "preprocessor_", None) is not None:
        raise ValueError(
            f"{name} has a fitted preprocessor_ ({type(estimator.preprocessor_).__name__}); "
            "exporting or saving the preprocessing is not supported yet: it is a "
            "scikit-learn transformer, which torch can neither trace into ONNX nor "
            "store as tensors, so the student alone would expect already-transformed "
            "columns. Fit the student on numeric features to export or save it."
        )
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ValueError(f"{name} has no n_features_in_; is it fitted?")
    return module, int(n_features)


def _metadata(estimator, kind, n_features):
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
        "n_features": json.dumps(n_features),
        "output": json.dumps(kind),
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
