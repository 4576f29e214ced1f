"""Plain values and 1-d arrays as JSON, and back, without losing their dtype.

Shared by :func:`~skdistill.persistence.save_student` and
:func:`~skdistill.export.to_onnx`, which store an estimator's ``classes_``
and feature names as JSON next to the weights.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np

__all__ = ["decode_array", "encode_array", "is_plain_scalar", "python_scalar"]


def is_plain_scalar(value):
    if value is None or isinstance(value, (bool, str, np.bool_, np.str_)):
        return True
    if isinstance(value, (Integral, np.integer)):
        return True
    return isinstance(value, (Real, np.floating)) and bool(np.isfinite(value))


def python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def encode_array(values, what):
    """A 1-d array as (JSON list, numpy dtype string); refuses what JSON cannot round-trip.

    int, unsigned, float, bool and str arrays keep their dtype; object arrays
    may hold str, int, float and bool values (numpy scalars become Python
    ones).
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if values.ndim != 1 or kind not in "iufbUO":
        raise ValueError(
            f"{what} of dtype {values.dtype} and shape {values.shape} cannot be saved "
            "as JSON; supported: a 1-d array of int, float, bool or str values."
        )
    items = values.tolist()
    if kind == "O":
        if not all(is_plain_scalar(item) and item is not None for item in items):
            types = sorted({type(item).__name__ for item in items})
            raise ValueError(
                f"{what} holds values of type {types}; only int, float, bool and str "
                "values can be saved as JSON."
            )
        items = [python_scalar(item) for item in items]
    elif kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{what} holds NaN or infinite values, which JSON cannot hold.")
    return items, values.dtype.str


def decode_array(items, dtype):
    """Inverse of :func:`encode_array`."""
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    return np.array(items, dtype=dtype)
