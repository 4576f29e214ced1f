"""A saved student's files as untrusted input: the format, and every check a file passes.

:func:`~skdistill.persistence.load_student` reads files that may come from
anyone. Before anything is built from them, ``metadata.json`` is read as
plain, finite JSON of bounded size and checked field by field against the
format's schema (:func:`checked_metadata`), and the safetensors header
alone is read and checked against the architecture the metadata describes
(:func:`check_tensor_header`), so that a file claiming huge tensors is
refused before anything is allocated. Every failure is a ValueError that
says what is wrong. A custom preprocessor is read with skops, trusting only
the types skops trusts by default (:func:`load_skops_preprocessor`).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import json
import reprlib
from numbers import Real
from typing import NamedTuple

import numpy as np
import torch

from ._classifier import DistilledClassifier
from ._preprocessing import AutoPreprocessor
from ._regressor import DistilledRegressor

__all__ = [
    "ESTIMATORS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SkopsPreprocessor",
    "check_tensor_header",
    "checked_metadata",
    "describe_architecture",
    "expected_tensors",
    "load_skops_preprocessor",
    "read_json",
    "read_tensors",
]

#: Version of the metadata layout; :func:`load_student` reads versions up to
#: it. Version 2 added ``preprocessor``, which version 1 readers would ignore.
FORMAT_VERSION = 2
FORMAT_NAME = "skdistill-student"

#: A preprocessor.skops larger than this is refused before it is read.
MAX_PREPROCESSOR_BYTES = 1 << 28


class SkopsPreprocessor(NamedTuple):
    """metadata.json's entry of a preprocessor saved with skops, checked."""

    name: str
    column_kinds: list | None


#: The estimators save_student writes and load_student rebuilds, by name.
ESTIMATORS = {cls.__name__: cls for cls in (DistilledClassifier, DistilledRegressor)}


#: A metadata.json larger than this is refused before it is read: even
#: a million feature names take a few tens of MB.
MAX_METADATA_BYTES = 1 << 28

#: Bytes the decoded ``classes_`` may take: a file's str dtype could claim
#: labels of billions of characters.
_MAX_CLASSES_BYTES = 1 << 26

#: The dtype of every saved tensor, as the safetensors header names it.
_TENSOR_DTYPE = "F32"


def read_json(path):
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


def checked_metadata(metadata):
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
        lambda value: isinstance(value, str) and value in ESTIMATORS,
        f"one of {sorted(ESTIMATORS)}",
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
    if ESTIMATORS[name] is DistilledClassifier:
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
    """The ``preprocessor`` entry: None, a fitted AutoPreprocessor, or a SkopsPreprocessor.

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
        return SkopsPreprocessor(entry["class"], kinds)
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


def load_skops_preprocessor(path, metadata):
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


def describe_architecture(architecture):
    sizes = [
        architecture["n_features"],
        *architecture["hidden_layer_sizes"],
        architecture["n_classes"],
    ]
    return "an MLP " + "-".join(map(str, sizes))


def expected_tensors(architecture):
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


def check_tensor_header(path, expected):
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


def read_tensors(path):
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
