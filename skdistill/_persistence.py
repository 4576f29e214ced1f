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

The teacher is not saved: ``teacher_`` is None after loading, and so is the
``teacher`` parameter. Pickle (or joblib) still saves the whole estimator,
teacher included, for trusted use.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import inspect
import json
import os
import reprlib
import tempfile
from numbers import Real
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import clone

from ._classifier import DistilledClassifier
from ._distiller import check_parameters
from ._export import fitted_student_module
from ._json_arrays import decode_array, encode_array, is_plain_scalar, python_scalar
from ._losses import classification_criterion, regression_criterion
from ._preprocessing import AutoPreprocessor
from ._regressor import DistilledRegressor
from ._student import MLP, Standardize, StudentModule, build_student_module
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

#: Version of the metadata layout; :func:`load_student` reads versions up to
#: it. Version 2 added ``preprocessor``, which version 1 readers would ignore.
FORMAT_VERSION = 2
FORMAT_NAME = "skdistill-student"

#: A preprocessor.skops larger than this is refused before it is read.
MAX_PREPROCESSOR_BYTES = 1 << 28


class _SkopsPreprocessor(NamedTuple):
    """metadata.json's entry of a preprocessor saved with skops, checked."""

    name: str
    column_kinds: list | None


#: The estimators save_student writes and load_student rebuilds, by name.
_ESTIMATORS = {cls.__name__: cls for cls in (DistilledClassifier, DistilledRegressor)}

#: Parameters never saved nor restored. ``teacher`` is an arbitrary Python
#: object. The others belong to the machine that runs the estimator, not to
#: the model, and a file from someone else must not choose them for the
#: machine that loads it: ``memory`` is a cache directory that joblib
#: writes the user's X to and unpickles from, ``callbacks`` are objects
#: that run during a refit, ``n_jobs`` and ``verbose`` set how many workers
#: a refit starts and what it prints, and ``device`` is load_student's
#: ``device`` argument.
_UNSAVED_PARAMS = frozenset({"teacher", "memory", "callbacks", "n_jobs", "verbose", "device"})

#: A metadata.json larger than this is refused before it is read: even
#: a million feature names take a few tens of MB.
MAX_METADATA_BYTES = 1 << 28

#: Bytes the decoded ``classes_`` may take: a file's str dtype could claim
#: labels of billions of characters.
_MAX_CLASSES_BYTES = 1 << 26

#: The dtype of every saved tensor, as the safetensors header names it.
_TENSOR_DTYPE = "F32"


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

    if type(estimator) not in _ESTIMATORS.values():
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
        metadata = _checked_metadata(_read_json(metadata_path))
    except ValueError as error:
        raise ValueError(f"{metadata_path} is not a valid saved student: {error}") from error
    cls, architecture = _ESTIMATORS[metadata["estimator"]], metadata["architecture"]
    try:
        _check_tensor_header(weights_path, _expected_tensors(architecture))
        state = _read_tensors(weights_path)
    except ValueError as error:
        raise ValueError(
            f"{weights_path} does not match {metadata_path} ({_describe(architecture)}): {error}"
        ) from error
    try:
        estimator = _restored_estimator(cls, metadata, device)
    except ValueError as error:
        raise ValueError(f"{metadata_path} holds invalid parameters: {error}") from error
    preprocessor, column_kinds = metadata["preprocessor"], None
    if isinstance(preprocessor, _SkopsPreprocessor):
        column_kinds = preprocessor.column_kinds
        preprocessor = _load_skops_preprocessor(directory / PREPROCESSOR_FILE, metadata)
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


# -- reading untrusted files ---------------------------------------------------------


def _read_json(path):
    """The JSON value in ``path``; a ValueError for anything that is not plain, finite JSON."""
    size = path.stat().st_size
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"it has {size} bytes, more than the {MAX_METADATA_BYTES} a saved "
            "student's metadata may have."
        )
    try:
        return json.loads(
            path.read_bytes().decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise ValueError("it nests JSON values too deeply to be read.") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, the hooks below
        raise ValueError(f"it is not valid JSON: {error}") from error


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"{text} overflows a float")
    return value


def _checked_metadata(metadata):
    """metadata.json's content, checked against the format's schema, with defaults filled in.

    Every field is checked for its type and range, and against the others
    (classes against the outputs, feature names against the features),
    before anything is built from it. Raises a ValueError naming the first
    field that is wrong.
    """
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(
            f"it does not describe a saved skdistill student (no format {FORMAT_NAME!r})."
        )
    version = _field(metadata, "format_version", _is_int, "a positive integer")
    if version < 1:
        raise ValueError(f"format_version must be a positive integer; got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"it has format version {version}; this skdistill reads versions up to "
            f"{FORMAT_VERSION}. Upgrade skdistill to load it."
        )
    # Format 1 files of the first releases saved classifiers only.
    metadata = {"estimator": "DistilledClassifier", "n_iter": 0, "tuple_params": [], **metadata}
    name = _field(
        metadata,
        "estimator",
        lambda value: isinstance(value, str) and value in _ESTIMATORS,
        f"one of {sorted(_ESTIMATORS)}",
    )
    architecture = _checked_architecture(_field(metadata, "architecture", _is_dict, "an object"))
    n_features = _field(metadata, "n_features_in", _is_int, "a positive integer")
    # with preprocessing, the network takes the preprocessing's width (checked below)
    if metadata.get("preprocessor") is None and n_features != architecture["n_features"]:
        raise ValueError(
            f"n_features_in is {n_features}, but the architecture takes "
            f"{architecture['n_features']} features."
        )
    names = metadata.get("feature_names_in")
    if names is not None and not (
        isinstance(names, list)
        and len(names) == n_features
        and all(isinstance(n, str) for n in names)
    ):
        raise ValueError(
            f"feature_names_in must be null or a list of {n_features} strings; got {_short(names)}."
        )
    _field(
        metadata, "n_iter", lambda value: _is_int(value) and value >= 0, "a non-negative integer"
    )
    params = _field(metadata, "params", _is_dict, "an object")
    for param, value in params.items():
        if not (_is_plain(value) or (isinstance(value, list) and all(map(_is_plain, value)))):
            raise ValueError(
                f"params[{param!r}] must be a plain value (null, bool, number, string) or a "
                f"list of them; got {_short(value)}."
            )
    _field(metadata, "tuple_params", _is_str_list, "a list of parameter names")
    metadata["preprocessor"] = _checked_preprocessor(
        metadata.get("preprocessor"), n_features, names, architecture
    )
    if _ESTIMATORS[name] is DistilledClassifier:
        _check_classes(metadata.get("classes"), metadata.get("classes_dtype"), architecture)
        # Format 1 files of the first releases have no logit_bias buffer.
        buffers = {"output_scale": False}
    elif metadata.get("classes") is not None:
        raise ValueError(f"classes must be null for a {name}; got {_short(metadata['classes'])}.")
    else:
        buffers = {"logit_bias": True, "output_scale": True}
    for buffer, expected in buffers.items():
        if architecture[buffer] != expected:
            raise ValueError(f"architecture.{buffer} must be {str(expected).lower()} for a {name}.")
    metadata["architecture"] = architecture
    return metadata


def _checked_preprocessor(entry, n_features, names, architecture):
    """The ``preprocessor`` entry: None, a fitted AutoPreprocessor, or a _SkopsPreprocessor.

    The automatic preprocessing is rebuilt from its data (checked field by
    field, nothing run) and checked against the columns and the network.
    """
    width = architecture["n_features"]
    if entry is None:
        return None
    kind = _field(
        _field({"preprocessor": entry}, "preprocessor", _is_dict, "null or an object"),
        "kind",
        lambda value: value in ("auto", "skops"),
        "'auto' or 'skops'",
        "preprocessor.",
    )
    if kind == "skops":
        _field(entry, "class", lambda value: isinstance(value, str), "a string", "preprocessor.")
        kinds = entry.get("column_kinds")
        if kinds is not None and not (
            isinstance(kinds, list)
            and len(kinds) == n_features
            and all(kind in ("numeric", "categorical") for kind in kinds)
        ):
            raise ValueError(
                f"preprocessor.column_kinds must be null or a list of {n_features} "
                f"'numeric' or 'categorical'; got {_short(kinds)}."
            )
        return _SkopsPreprocessor(entry["class"], kinds)
    try:
        preprocessor = AutoPreprocessor.from_state(entry.get("state"))
    except ValueError as error:
        raise ValueError(f"preprocessor.state is invalid: {error}") from error
    expected_names = preprocessor.columns_ if preprocessor.input_kind_ == "frame" else None
    if preprocessor.n_features_in_ != n_features or names != expected_names:
        raise ValueError(
            f"the preprocessing's columns ({_short(preprocessor.columns_)}) are not the "
            f"estimator's ({n_features} features named {_short(names)})."
        )
    if preprocessor.n_features_out_ != width:
        raise ValueError(
            f"the preprocessing gives {preprocessor.n_features_out_} features, but the "
            f"architecture takes {width}."
        )
    return preprocessor


def _load_skops_preprocessor(path, metadata):
    """A custom preprocessor from ``path``, trusting only skops' default trusted types."""
    if not path.is_file():
        raise FileNotFoundError(
            f"No saved student in {path.parent}: {path.name} is missing (metadata.json "
            "names a preprocessor saved with skops)."
        )
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(
            f"{path} is in skops' format: load_student needs skops to read it: pip install skops"
        ) from error
    size = path.stat().st_size
    if size > MAX_PREPROCESSOR_BYTES:
        raise ValueError(
            f"{path} has {size} bytes, more than the {MAX_PREPROCESSOR_BYTES} a saved "
            "preprocessor may have."
        )
    data = path.read_bytes()
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
        preprocessor = None if untrusted else skops.io.loads(data)
    except Exception as error:  # a malformed file fails in skops in many ways
        raise ValueError(
            f"{path} is not a valid skops file: {type(error).__name__}: {error}"
        ) from error
    if untrusted:
        raise ValueError(
            f"{path} holds types skops does not trust by default ({', '.join(untrusted)}); "
            "load_student loads only those. If you trust whoever wrote the file, save "
            "and load the estimator with pickle or joblib instead."
        )
    n_features = getattr(preprocessor, "n_features_in_", metadata["n_features_in"])
    if not hasattr(preprocessor, "transform") or n_features != metadata["n_features_in"]:
        raise ValueError(
            f"{path} holds a {type(preprocessor).__name__}, not a fitted transformer of the "
            f"estimator's {metadata['n_features_in']} features."
        )
    return preprocessor


def _checked_architecture(architecture):
    """The ``architecture`` object, checked, with its optional flags filled in."""
    architecture = {"logit_bias": False, "output_scale": False, **architecture}
    if architecture.get("standardize") != "Standardize" or architecture.get("body") != "MLP":
        raise ValueError(
            f"the student architecture {_short(architecture.get('body'))} is unknown; this "
            "skdistill rebuilds only the built-in MLP behind its Standardize layer."
        )
    for name in ("n_features", "n_classes"):
        _field(
            architecture,
            name,
            lambda value: _is_int(value) and value >= 1,
            "a positive integer",
            "architecture.",
        )
    _field(
        architecture,
        "hidden_layer_sizes",
        lambda sizes: (
            isinstance(sizes, list) and all(_is_int(size) and size >= 1 for size in sizes)
        ),
        "a list of positive integers",
        "architecture.",
    )
    _field(
        architecture,
        "dropout",
        lambda value: isinstance(value, Real) and not isinstance(value, bool) and 0 <= value < 1,
        "a number in [0, 1)",
        "architecture.",
    )
    for flag in ("logit_bias", "output_scale"):
        _field(
            architecture,
            flag,
            lambda value: isinstance(value, bool),
            "true or false",
            "architecture.",
        )
    return architecture


def _check_classes(items, dtype_text, architecture):
    """A classifier's ``classes`` and ``classes_dtype``: one label per output, of that dtype."""
    try:
        dtype = np.dtype(dtype_text) if isinstance(dtype_text, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.str != dtype_text or dtype.kind not in "iufbUO":
        raise ValueError(
            f"classes_dtype must name a numpy dtype of int, unsigned, float, bool, str or "
            f"object labels (such as '<i8' or '<U5'); got {_short(dtype_text)}."
        )
    n_classes = architecture["n_classes"]
    if not isinstance(items, list) or len(items) != n_classes:
        raise ValueError(
            f"classes must be a list of {n_classes} labels, one per output of the network; "
            f"got {_short(items)}."
        )
    accepted = {
        "b": (bool,),
        "i": (int,),
        "u": (int,),
        "f": (int, float),
        "U": (str,),
        "O": (str, int, float, bool),
    }[dtype.kind]
    for item in items:
        if not isinstance(item, accepted) or (isinstance(item, bool) and bool not in accepted):
            raise ValueError(
                f"classes must hold labels of dtype {dtype_text}; got {_short(item)} among them."
            )
    if len(set(items)) != len(items):
        raise ValueError(f"classes must be distinct labels; got {_short(items)}.")
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        if not all(limits.min <= item <= limits.max for item in items):
            raise ValueError(f"classes holds integers out of the range of {dtype_text}.")
    if dtype.kind == "U":
        longest = max(map(len, items))
        if dtype.itemsize // 4 < longest or dtype.itemsize * len(items) > _MAX_CLASSES_BYTES:
            raise ValueError(
                f"classes_dtype {dtype_text} does not fit labels of up to {longest} characters."
            )


def _field(mapping, name, check, expected, prefix=""):
    """``mapping[name]``, or a ValueError saying what it must be."""
    value = mapping.get(name)
    if not check(value):
        raise ValueError(f"{prefix}{name} must be {expected}; got {_short(value)}.")
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_dict(value):
    return isinstance(value, dict)


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_plain(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _short(value):
    """A bounded repr: a file's values can be arbitrarily long."""
    return reprlib.repr(value)


def _describe(architecture):
    sizes = [
        architecture["n_features"],
        *architecture["hidden_layer_sizes"],
        architecture["n_classes"],
    ]
    return "an MLP " + "-".join(map(str, sizes))


def _expected_tensors(architecture):
    """Name: shape of every tensor of the module ``architecture`` describes, without building it."""
    n_features = architecture["n_features"]
    shapes = {"standardize.mean": (n_features,), "standardize.scale": (n_features,)}
    # MLP's layers: Linear, ReLU (, Dropout) per hidden layer, then a Linear.
    per_hidden_layer = 3 if architecture["dropout"] else 2
    width = n_features
    sizes = [*architecture["hidden_layer_sizes"], architecture["n_classes"]]
    for index, size in enumerate(sizes):
        prefix = f"body.layers.{index * per_hidden_layer}"
        shapes[f"{prefix}.weight"] = (size, width)
        shapes[f"{prefix}.bias"] = (size,)
        width = size
    for buffer in ("logit_bias", "output_scale"):
        if architecture[buffer]:
            shapes[buffer] = (architecture["n_classes"],)
    return shapes


def _check_tensor_header(path, expected):
    """The tensors' names, dtypes and shapes in ``path``'s header against ``expected``.

    Only the header is read: a file claiming huge tensors is refused
    before anything is allocated for them.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            found = {}
            for name in file.keys():
                tensor = file.get_slice(name)
                found[name] = (tensor.get_dtype(), tuple(tensor.get_shape()))
    except SafetensorError as error:
        raise ValueError(f"it is not a valid safetensors file ({error}).") from error
    for name, shape in expected.items():
        if name in found and found[name] != (_TENSOR_DTYPE, shape):
            raise ValueError(
                f"tensor {name} is {found[name][0]} of shape {found[name][1]}; expected "
                f"{_TENSOR_DTYPE} of shape {shape}."
            )
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"tensors missing: {_short(missing)}; unexpected: {_short(unexpected)}.")


def _read_tensors(path):
    """The tensors of a checked file; their values must be finite and the scales positive."""
    from safetensors.torch import load_file

    state = load_file(str(path), device="cpu")
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"tensor {name} holds NaN or infinite values.")
    for name in ("standardize.scale", "output_scale"):
        if name in state and not (state[name] > 0).all():
            raise ValueError(f"tensor {name} holds values that are not positive.")
    return state


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
    if repr(rebuilt) != repr(module) or _expected_tensors(architecture) != _shapes(module):
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
