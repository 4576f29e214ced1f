"""Save and load a distilled student without pickle.

:func:`save_student` writes two files to a directory:

``model.safetensors``
    The student module's ``state_dict`` (weights, the input
    standardisation's ``mean`` and ``scale`` buffers and, when the module
    has one, its ``logit_bias`` buffer), in the safetensors
    format: raw tensors and a JSON header, nothing executable.
``metadata.json``
    The format version, the skdistill version that wrote it, the student's
    architecture, ``classes_`` (with their dtype) for a classifier, the
    feature names and the estimator's parameters that are plain JSON values.

:func:`load_student` rebuilds a fitted :class:`~skdistill.DistilledClassifier`
or :class:`~skdistill.DistilledRegressor` from them that predicts exactly as
the saved one, without unpickling anything: loading runs no code from the
files, so they can be shared like data. Only the built-in student
(:class:`~skdistill.student.MLP` behind its standardisation) can be
rebuilt this way; a custom module class would have to be imported and run,
which is what pickle does and what this format avoids.

The teacher is not saved: ``teacher_`` is None after loading, and so is the
``teacher`` parameter. Pickle (or joblib) still saves the whole estimator,
teacher included, for trusted use.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import inspect
import json
from numbers import Real
from pathlib import Path

import numpy as np
import torch

from ._classifier import DistilledClassifier
from ._export import fitted_student_module
from ._json_arrays import decode_array, encode_array, is_plain_scalar, python_scalar
from ._losses import classification_criterion, regression_criterion
from ._regressor import DistilledRegressor
from ._student import MLP, Standardize, StudentModule, build_student_module
from ._training import TrainingSettings, make_student_net
from ._version import __version__

__all__ = ["save_student", "load_student", "WEIGHTS_FILE", "METADATA_FILE", "FORMAT_VERSION"]

#: File names inside the directory.
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"

#: Version of the metadata layout; :func:`load_student` reads versions up to it.
FORMAT_VERSION = 1
FORMAT_NAME = "skdistill-student"

#: The estimators save_student writes and load_student rebuilds, by name.
_ESTIMATORS = {cls.__name__: cls for cls in (DistilledClassifier, DistilledRegressor)}

#: Parameters never saved: the teacher is an arbitrary Python object.
_UNSAVED_PARAMS = {"teacher"}


def save_student(estimator, directory):
    """Write a fitted student to ``directory``, without pickle.

    Parameters
    ----------
    estimator : DistilledClassifier or DistilledRegressor
        A fitted estimator whose student is the built-in MLP (the default,
        ``student=None``, or :class:`~skdistill.student.MLP` passed as the
        student). Its teacher is not saved.
    directory : str or path-like
        Created if needed; ``model.safetensors`` and ``metadata.json`` in
        it are overwritten.

    Returns
    -------
    directory : pathlib.Path
        ``directory`` as a path, to pass to :func:`load_student`.

    Raises
    ------
    ValueError
        If the estimator is not fitted, has a fitted ``preprocessor_``, has a
        custom student module, or has classes that JSON cannot hold
        (bytes, dates, ...).

    See Also
    --------
    load_student : Read the files back.
    skdistill.export.to_onnx : Export the student for other runtimes.

    Notes
    -----
    Parameters whose values are not plain JSON (a ``student`` module or
    skorch net, a ``memory`` object, a ``RandomState``) are listed under
    ``unsaved_params`` in ``metadata.json`` and take their default values
    when loading. The training history (``student_.history``) is not
    saved.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.persistence import save_student
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=500).fit(X, y)
    >>> student = DistilledClassifier(
    ...     teacher, hidden_layer_sizes=(8,), max_epochs=3, random_state=0
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     sorted(os.listdir(save_student(student, directory)))
    ['metadata.json', 'model.safetensors']
    """
    from safetensors.torch import save_file

    if type(estimator) not in _ESTIMATORS.values():
        raise ValueError(
            "save_student saves a DistilledClassifier or a DistilledRegressor; got "
            f"{type(estimator).__name__}, which load_student could not rebuild as it is. "
            "Use pickle for other estimators."
        )
    module, n_features = fitted_student_module(estimator)
    architecture = _architecture(module)
    classes, classes_dtype = None, None
    if hasattr(estimator, "classes_"):
        classes, classes_dtype = encode_array(estimator.classes_, "classes_")
    names = getattr(estimator, "feature_names_in_", None)
    params, tuple_params, unsaved = _plain_params(estimator.get_params(deep=False))
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skdistill_version": __version__,
        "estimator": type(estimator).__name__,
        "architecture": architecture,
        "classes": classes,
        "classes_dtype": classes_dtype,
        "n_features_in": n_features,
        "feature_names_in": None if names is None else [str(name) for name in names],
        "n_iter": int(getattr(estimator, "n_iter_", 0)),
        "params": params,
        "tuple_params": tuple_params,
        "unsaved_params": unsaved,
    }
    text = json.dumps(metadata, indent=2, allow_nan=False)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in module.state_dict().items()
    }
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
    (directory / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


def load_student(directory, *, device="cpu"):
    """Rebuild a fitted estimator from :func:`save_student`'s files.

    Nothing is unpickled: the weights are read as raw tensors and the rest
    as JSON, so loading runs no code from the files.

    Parameters
    ----------
    directory : str or path-like
        A directory written by :func:`save_student`.
    device : str, default="cpu"
        Torch device the student is loaded to.

    Returns
    -------
    estimator : DistilledClassifier or DistilledRegressor
        Fitted: ``predict`` (and ``predict_proba`` and
        ``decision_function`` for a classifier) give exactly the saved
        estimator's results. ``teacher`` and
        ``teacher_`` are None (set ``teacher`` before refitting), and
        ``student_.history`` is empty.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If the files are not a saved student, come from a newer format, or
        do not match each other.

    See Also
    --------
    save_student : Write the files.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.persistence import load_student, save_student
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=500).fit(X, y)
    >>> student = DistilledClassifier(
    ...     teacher, hidden_layer_sizes=(8,), max_epochs=3, random_state=0
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     loaded = load_student(save_student(student, directory))
    >>> bool(np.array_equal(loaded.predict_proba(X), student.predict_proba(X)))
    True
    >>> loaded.teacher_ is None
    True
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    metadata_path, weights_path = directory / METADATA_FILE, directory / WEIGHTS_FILE
    for path in (metadata_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"No saved student in {directory}: {path.name} is missing.")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{metadata_path} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{metadata_path} does not describe a saved skdistill student.")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{metadata_path} has format version {version!r}; this skdistill reads "
            f"versions up to {FORMAT_VERSION}. Upgrade skdistill to load it."
        )

    cls = _ESTIMATORS.get(metadata.get("estimator", "DistilledClassifier"))
    if cls is None:
        raise ValueError(
            f"{metadata_path} describes a {metadata.get('estimator')!r}; this skdistill "
            f"loads {sorted(_ESTIMATORS)}."
        )
    try:
        module = _build_module(metadata["architecture"])
        module.load_state_dict(load_file(str(weights_path), device="cpu"), strict=True)
        classes = None
        if cls is DistilledClassifier:
            classes = decode_array(metadata["classes"], metadata["classes_dtype"])
        params = _restore_params(cls, metadata["params"], metadata.get("tuple_params", []))
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(
            f"The files in {directory} do not make a valid saved student: {error}"
        ) from error

    estimator = cls(teacher=None, **params)
    if classes is not None:
        criterion = classification_criterion(estimator.temperature, estimator.alpha, estimator.loss)
    else:
        criterion = regression_criterion(estimator.alpha, module.output_scale.tolist())
    settings = TrainingSettings.from_params(estimator.get_params(deep=False))
    net = make_student_net(module, criterion, settings, device=device).initialize()
    net.module_.eval()
    if classes is not None:
        estimator.classes_ = classes
        estimator.logit_bias_ = module.logit_bias.numpy().copy()
    else:
        estimator.n_outputs_ = int(module.logit_bias.shape[0])
    estimator.n_features_in_ = int(metadata["n_features_in"])
    if metadata.get("feature_names_in") is not None:
        estimator.feature_names_in_ = decode_array(metadata["feature_names_in"], "|O")
    estimator.preprocessor_ = None
    estimator.teacher_ = None
    estimator.student_ = net
    estimator.n_iter_ = int(metadata.get("n_iter", 0))
    return estimator


def _architecture(module):
    """The JSON description of a built-in student module, or a clear refusal."""
    body = getattr(module, "body", None)
    if type(module) is not StudentModule or type(module.standardize) is not Standardize:
        raise ValueError(
            f"The student module is a {type(module).__name__}, not skdistill's "
            "StudentModule; it cannot be saved without pickle."
        )
    if type(body) is not MLP:
        raise ValueError(
            f"The student body is a custom module ({type(body).__module__}."
            f"{type(body).__qualname__}); save_student only saves the built-in MLP, "
            "because rebuilding any other module class means importing and running "
            "its code, which is what pickle does and this format avoids. Save it "
            "with pickle or joblib (trusted files only), or export it with to_onnx."
        )
    linears = [layer for layer in body.layers if isinstance(layer, torch.nn.Linear)]
    dropouts = [layer.p for layer in body.layers if isinstance(layer, torch.nn.Dropout)]
    architecture = {
        "standardize": "Standardize",
        "body": "MLP",
        "n_features": linears[0].in_features,
        "n_classes": linears[-1].out_features,
        "hidden_layer_sizes": [layer.out_features for layer in linears[:-1]],
        "dropout": float(dropouts[0]) if dropouts else 0.0,
        # A buffer added to the logits (a correction set after training).
        "logit_bias": getattr(module, "logit_bias", None) is not None,
        # A regression student's output scale (its target standard deviations).
        "output_scale": getattr(module, "output_scale", None) is not None,
    }
    # The description must rebuild the very same network (same layers,
    # same parameters and buffers): a modified MLP is refused.
    rebuilt = _build_module(architecture)
    if repr(rebuilt) != repr(module) or _shapes(rebuilt) != _shapes(module):
        raise ValueError(
            "The student's MLP was modified after it was built (its layers do not "
            "match MLP(n_features, n_classes, hidden_layer_sizes, dropout)); it "
            "cannot be saved without pickle."
        )
    return architecture


def _shapes(module):
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def _build_module(architecture):
    """An untrained StudentModule of the given architecture (weights to be loaded)."""
    if architecture.get("standardize") != "Standardize" or architecture.get("body") != "MLP":
        raise ValueError(
            f"Unknown student architecture {architecture.get('body')!r}; this "
            "skdistill rebuilds only the built-in MLP."
        )
    n_features = _positive_int(architecture["n_features"], "n_features")
    n_classes = _positive_int(architecture["n_classes"], "n_classes")
    sizes = tuple(
        _positive_int(size, "hidden_layer_sizes") for size in architecture["hidden_layer_sizes"]
    )
    dropout = architecture["dropout"]
    if not isinstance(dropout, Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
    standardize = Standardize(np.zeros(n_features), np.ones(n_features))
    body = MLP(n_features, n_classes, sizes, dropout=dropout)
    n_outputs = n_classes if architecture.get("logit_bias", False) else None
    output_scale = np.ones(n_classes) if architecture.get("output_scale", False) else None
    if n_outputs is None:  # format 1 files of students without a logit_bias buffer
        return StudentModule(standardize, body, output_scale=output_scale)
    return build_student_module(body, standardize, n_outputs, output_scale=output_scale)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return value


def _plain_params(params):
    """Split parameters into JSON-storable ones and the names of the others."""
    saved, tuple_params, unsaved = {}, [], []
    for name, value in sorted(params.items()):
        if name in _UNSAVED_PARAMS:
            unsaved.append(name)
            continue
        if isinstance(value, tuple) and all(is_plain_scalar(item) for item in value):
            saved[name] = [python_scalar(item) for item in value]
            tuple_params.append(name)
        elif isinstance(value, list) and all(is_plain_scalar(item) for item in value):
            saved[name] = [python_scalar(item) for item in value]
        elif is_plain_scalar(value):
            saved[name] = python_scalar(value)
        else:
            unsaved.append(name)
    return saved, tuple_params, unsaved


def _restore_params(cls, saved, tuple_params):
    accepted = inspect.signature(cls).parameters
    params = {
        name: value for name, value in saved.items() if name in accepted and name != "teacher"
    }
    for name in tuple_params:
        if name in params:
            params[name] = tuple(params[name])
    return params
