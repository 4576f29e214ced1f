"""Save and load a distilled student without pickle.

:func:`save_student` writes two files to a directory (three with a custom
preprocessor):

``model.safetensors``
    The student module's ``state_dict`` (weights, the input
    standardisation's ``mean`` and ``scale`` buffers and, when the module
    has one, its ``logit_bias`` buffer), in the safetensors
    format: raw tensors and a JSON header, nothing executable.
``metadata.json``
    The format version, the skdistill version that wrote it, the student's
    architecture, ``classes_`` (with their dtype) for a classifier, the
    feature names, the estimator's parameters that are plain JSON values
    and the automatic preprocessing (``preprocessor="auto"``) as data: each
    column's name, dtype and kind, median and indicator flag, or levels.
``preprocessor.skops``
    A custom ``preprocessor_`` (a scikit-learn transformer passed as
    ``preprocessor``), in skops' format: loaded trusting only the types
    skops trusts by default (scikit-learn's estimators, numpy arrays...).

:func:`load_student` rebuilds a fitted :class:`~skdistill.DistilledClassifier`
or :class:`~skdistill.DistilledRegressor` from them that predicts exactly as
the saved one, without unpickling anything: loading runs no code from the
files, so they can be shared like data. Only the built-in student
(:class:`~skdistill.student.MLP` behind its standardisation) can be
rebuilt this way; a custom module class would have to be imported and run,
which is what pickle does and what this format avoids.

The files are untrusted input: ``skdistill._student_file_checks`` holds the
format's constants and every check a file passes before anything is built
from it.

The teacher is not saved: ``teacher_`` is None after loading, and so is the
``teacher`` parameter. Pickle (or joblib) still saves the whole estimator,
teacher included, for trusted use.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import inspect
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from ._classifier import DistilledClassifier
from ._distiller import check_parameters
from ._export import fitted_student_module
from ._json_arrays import decode_array, encode_array, is_plain_scalar, python_scalar
from ._losses import classification_criterion, regression_criterion
from ._preprocessing import AutoPreprocessor
from ._student import MLP, Standardize, StudentModule, build_student_module
from ._student_file_checks import (
    ESTIMATORS,
    FORMAT_NAME,
    FORMAT_VERSION,
    SkopsPreprocessor,
    check_tensor_header,
    checked_metadata,
    describe_architecture,
    expected_tensors,
    load_skops_preprocessor,
    read_json,
    read_tensors,
)
from ._training import TrainingSettings, make_student_net, resolve_device
from ._version import __version__

__all__ = [
    "save_student",
    "load_student",
    "WEIGHTS_FILE",
    "METADATA_FILE",
    "PREPROCESSOR_FILE",
    "FORMAT_VERSION",
]

#: File names inside the directory.
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
PREPROCESSOR_FILE = "preprocessor.skops"

#: Parameters never saved nor restored. ``teacher`` is an arbitrary Python
#: object. The others belong to the machine that runs the estimator, not to
#: the model, and a file from someone else must not choose them for the
#: machine that loads it: ``memory`` is a cache directory that joblib
#: writes the user's X to and unpickles from, ``callbacks`` are objects
#: that run during a refit, ``n_jobs`` and ``verbose`` set how many workers
#: a refit starts and what it prints, and ``device`` is load_student's
#: ``device`` argument.
_UNSAVED_PARAMS = frozenset({"teacher", "memory", "callbacks", "n_jobs", "verbose", "device"})


def save_student(estimator, directory):
    """Write a fitted student to ``directory``, without pickle.

    Parameters
    ----------
    estimator : DistilledClassifier or DistilledRegressor
        A fitted estimator whose student is the built-in MLP (the default,
        ``student=None``, or :class:`~skdistill.student.MLP` passed as the
        student). Its teacher is not saved; its ``preprocessor_`` is: the
        automatic one as data in ``metadata.json``, a custom one with skops
        in ``preprocessor.skops``.
    directory : str or path-like
        Created if needed; ``model.safetensors``, ``metadata.json`` and
        ``preprocessor.skops`` in it are overwritten (the last one removed
        when the student has no custom preprocessor).

    Returns
    -------
    directory : pathlib.Path
        ``directory`` as a path, to pass to :func:`load_student`.

    Raises
    ------
    ValueError
        If the estimator is not fitted, has a custom student module, has
        classes that JSON cannot hold (bytes, dates, ...), or has a custom
        ``preprocessor_`` that skops cannot save or holds types skops does
        not trust by default (load_student would refuse it).
    ImportError
        If the estimator has a custom ``preprocessor_`` and skops is not
        installed.

    See Also
    --------
    load_student : Read the files back.
    skdistill.export.to_onnx : Export the student for other runtimes.

    Notes
    -----
    Parameters whose values are not plain JSON (a ``student`` module or
    skorch net, a ``RandomState``) are listed under ``unsaved_params`` in
    ``metadata.json`` and take their default values when loading, as do
    the parameters of the machine rather than the model, which are never
    saved: ``memory`` (a local cache path), ``callbacks``, ``n_jobs``,
    ``verbose`` and ``device``. The training history
    (``student_.history``) is not saved.

    Each file is written to a temporary file in ``directory`` and then
    renamed over its destination, so a symbolic link at the destination is
    replaced, never followed, and a save that fails while writing leaves
    the previous files as they were.

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
    from safetensors.torch import save

    if type(estimator) not in ESTIMATORS.values():
        raise ValueError(
            "save_student saves a DistilledClassifier or a DistilledRegressor; got "
            f"{type(estimator).__name__}, which load_student could not rebuild as it is. "
            "Use pickle for other estimators."
        )
    module, _ = fitted_student_module(estimator)
    architecture = _architecture(module)
    preprocessor, extra_files = _saved_preprocessor(estimator)
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
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if names is None else [str(name) for name in names],
        "n_iter": int(getattr(estimator, "n_iter_", 0)),
        "params": params,
        "tuple_params": tuple_params,
        "unsaved_params": unsaved,
        "preprocessor": preprocessor,
    }
    text = json.dumps(metadata, indent=2, allow_nan=False)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in module.state_dict().items()
    }
    _replace_files(
        directory,
        {
            WEIGHTS_FILE: save(tensors, metadata={"format": FORMAT_NAME}),
            METADATA_FILE: (text + "\n").encode("utf-8"),
            **extra_files,
        },
    )
    stale = directory / PREPROCESSOR_FILE
    if PREPROCESSOR_FILE not in extra_files and os.path.lexists(stale):
        os.remove(stale)  # an earlier student's, which this metadata does not name
    return directory


def _saved_preprocessor(estimator):
    """metadata.json's ``preprocessor`` entry, and the files it needs (name: bytes)."""
    preprocessor = getattr(estimator, "preprocessor_", None)
    if preprocessor is None:
        return None, {}
    if isinstance(preprocessor, AutoPreprocessor):
        return {"kind": "auto", "state": preprocessor.to_state()}, {}
    kind = type(preprocessor)
    entry = {
        "kind": "skops",
        "class": f"{kind.__module__}.{kind.__qualname__}",
        # how its columns reach to_onnx's graph, for a DataFrame
        "column_kinds": getattr(estimator, "_column_kinds", None),
    }
    return entry, {PREPROCESSOR_FILE: _skops_bytes(preprocessor)}


def _skops_bytes(preprocessor):
    """The preprocessor in skops' format, if load_student's default trust will take it."""
    name = type(preprocessor).__name__
    way_out = (
        "Fit the student with preprocessor='auto' (saved as plain data), or save the "
        "estimator with pickle or joblib (trusted files only)."
    )
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(
            f"save_student saves a custom preprocessor_ ({name}) with skops, which is not "
            f"installed: pip install skops. Or: {way_out}"
        ) from error
    try:
        data = skops.io.dumps(preprocessor)
    except Exception as error:  # skops' reasons are many kinds of errors
        raise ValueError(
            f"skops cannot save the preprocessor_ ({name}): {type(error).__name__}: "
            f"{error}. {way_out}"
        ) from error
    untrusted = skops.io.get_untrusted_types(data=data)
    if untrusted:
        raise ValueError(
            f"The preprocessor_ ({name}) holds types skops does not trust by default "
            f"({', '.join(untrusted)}), which load_student would refuse to load. {way_out}"
        )
    return data


def _replace_files(directory, contents):
    """Write each file of ``contents`` (name: bytes) in ``directory``, all or none.

    Every file is first written whole to a new temporary file in the
    directory, then renamed over its destination: a rename replaces a
    symbolic link instead of writing through it to its target.
    """
    mode = 0o666 & ~_umask()
    written = {}
    try:
        for name, data in contents.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            written[name] = temporary
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            # mkstemp's files are private (0o600); a saved student gets the
            # permissions of any new file.
            os.chmod(temporary, mode)
        for name, temporary in written.items():
            os.replace(temporary, directory / name)
    finally:
        for temporary in written.values():
            if os.path.lexists(temporary):
                os.remove(temporary)


def _umask():
    """The process's umask, read without changing it (which would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def load_student(directory, *, device="cpu"):
    """Rebuild a fitted estimator from :func:`save_student`'s files.

    Nothing is unpickled: the weights are read as raw tensors and the rest
    as JSON, so loading runs no code from the files.

    Parameters
    ----------
    directory : str or path-like
        A directory written by :func:`save_student`.
    device : str, default="cpu"
        Torch device the student is loaded to; also the loaded estimator's
        ``device`` parameter (a file does not choose the loading machine's
        device).

    Returns
    -------
    estimator : DistilledClassifier or DistilledRegressor
        Fitted: ``predict`` (and ``predict_proba`` and
        ``decision_function`` for a classifier) give exactly the saved
        estimator's results, on the same input (a DataFrame with the same
        columns for a student with preprocessing). ``teacher`` and
        ``teacher_`` are None (set ``teacher`` before refitting), and
        ``student_.history`` is empty.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If the files are not a saved student, come from a newer format, or
        do not match each other; the message says what is wrong. The files
        are untrusted input: ``metadata.json`` is checked field by field and
        the tensors' names, shapes and dtypes (read from the safetensors
        header alone) against the architecture it describes, before
        anything is allocated for the network. A ``preprocessor.skops``
        holding types skops does not trust by default is refused, naming
        them.

    See Also
    --------
    save_student : Write the files.

    Notes
    -----
    Only the estimator's own parameters with plain values are restored,
    each validated as ``fit`` would; ``memory``, ``callbacks``, ``n_jobs``
    and ``verbose`` keep their defaults whatever the file says (see
    :func:`save_student`).

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
    resolved_device = resolve_device(device)
    directory = Path(directory)
    metadata_path, weights_path = directory / METADATA_FILE, directory / WEIGHTS_FILE
    for path in (metadata_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"No saved student in {directory}: {path.name} is missing.")
    try:
        metadata = checked_metadata(read_json(metadata_path))
    except ValueError as error:
        raise ValueError(f"{metadata_path} is not a valid saved student: {error}") from error
    cls, architecture = ESTIMATORS[metadata["estimator"]], metadata["architecture"]
    try:
        check_tensor_header(weights_path, expected_tensors(architecture))
        state = read_tensors(weights_path)
    except ValueError as error:
        described = describe_architecture(architecture)
        raise ValueError(
            f"{weights_path} does not match {metadata_path} ({described}): {error}"
        ) from error
    try:
        estimator = _restored_estimator(cls, metadata, device)
    except ValueError as error:
        raise ValueError(f"{metadata_path} holds invalid parameters: {error}") from error
    preprocessor, column_kinds = metadata["preprocessor"], None
    if isinstance(preprocessor, SkopsPreprocessor):
        column_kinds = preprocessor.column_kinds
        preprocessor = load_skops_preprocessor(directory / PREPROCESSOR_FILE, metadata)
        estimator.set_params(preprocessor=clone(preprocessor))

    module = _build_module(architecture)
    module.load_state_dict(state, strict=True)
    if cls is DistilledClassifier:
        criterion = classification_criterion(estimator.temperature, estimator.alpha, estimator.loss)
    else:
        criterion = regression_criterion(estimator.alpha, module.output_scale.tolist())
    settings = TrainingSettings.from_params(estimator.get_params(deep=False))
    net = make_student_net(module, criterion, settings, device=resolved_device)
    net.initialize().module_.eval()
    if cls is DistilledClassifier:
        estimator.classes_ = decode_array(metadata["classes"], metadata["classes_dtype"])
        estimator.logit_bias_ = module.logit_bias.numpy().copy()
    else:
        estimator.n_outputs_ = architecture["n_classes"]
    estimator.n_features_in_ = metadata["n_features_in"]
    if metadata["feature_names_in"] is not None:
        estimator.feature_names_in_ = decode_array(metadata["feature_names_in"], "|O")
    estimator.preprocessor_ = preprocessor
    estimator._column_kinds = column_kinds
    estimator.teacher_ = None
    estimator.student_ = net
    estimator.n_iter_ = metadata["n_iter"]
    return estimator


def _restored_estimator(cls, metadata, device):
    """An unfitted ``cls`` with the file's allow-listed parameters, validated as fit would."""
    allowed = set(inspect.signature(cls).parameters) - _UNSAVED_PARAMS
    params = {name: value for name, value in metadata["params"].items() if name in allowed}
    for name in metadata["tuple_params"]:
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    try:
        estimator = cls(teacher=None, device=device, **params)
        check_parameters(estimator)
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from error
    sizes = metadata["architecture"]["hidden_layer_sizes"]
    # hidden_layer_sizes made the saved network when the saved student was
    # None (a student module given instead is not saved).
    built_from_sizes = "student" in params and params["student"] is None
    if built_from_sizes and list(estimator.hidden_layer_sizes) != sizes:
        raise ValueError(
            f"hidden_layer_sizes is {estimator.hidden_layer_sizes!r}, but the saved network's "
            f"hidden layers are {sizes}."
        )
    return estimator


# -- writing --------------------------------------------------------------------------


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
    # same parameters and buffers): a modified MLP is refused. The shapes
    # are also those load_student checks a file's tensors against.
    rebuilt = _build_module(architecture)
    if repr(rebuilt) != repr(module) or expected_tensors(architecture) != _shapes(module):
        raise ValueError(
            "The student's MLP was modified after it was built (its layers do not "
            "match MLP(n_features, n_classes, hidden_layer_sizes, dropout)); it "
            "cannot be saved without pickle."
        )
    return architecture


def _shapes(module):
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def _build_module(architecture):
    """An untrained StudentModule of a checked architecture (weights to be loaded)."""
    n_features, n_classes = architecture["n_features"], architecture["n_classes"]
    standardize = Standardize(np.zeros(n_features), np.ones(n_features))
    body = MLP(
        n_features,
        n_classes,
        tuple(architecture["hidden_layer_sizes"]),
        dropout=architecture["dropout"],
    )
    output_scale = np.ones(n_classes) if architecture["output_scale"] else None
    if not architecture["logit_bias"]:  # format 1 files of students without a logit_bias buffer
        return StudentModule(standardize, body, output_scale=output_scale)
    return build_student_module(body, standardize, n_classes, output_scale=output_scale)


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
