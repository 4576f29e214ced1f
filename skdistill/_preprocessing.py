"""The student's features: X turned into a float32 matrix the network takes.

The teacher always gets X exactly as the user gave it; only the student's
copy goes through these functions.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_array

__all__ = ["as_float32", "concat_rows", "make_preprocessor", "student_features"]


def make_preprocessor(preprocessor, X):
    """The unfitted preprocessing of X for the student, or None for none.

    Parameters
    ----------
    preprocessor : "auto", transformer or None
        A distiller's ``preprocessor`` parameter. ``"auto"`` one-hot encodes
        the categorical columns of a DataFrame and passes the numeric ones
        through; a transformer is cloned.
    X : array-like or DataFrame
        The training rows.

    Returns
    -------
    preprocessor : unfitted transformer or None
    """
    if preprocessor is None:
        return None
    if preprocessor != "auto":
        return clone(preprocessor)
    if not hasattr(X, "iloc"):
        return None
    from pandas.api.types import is_numeric_dtype  # X is a DataFrame: pandas is there

    categorical = [column for column, dtype in X.dtypes.items() if not is_numeric_dtype(dtype)]
    if not categorical:
        return None
    return make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        remainder="passthrough",
        verbose_feature_names_out=False,
    )


def student_features(preprocessor, X):
    """Float32 features for the student module from rows of X not yet checked.

    Parameters
    ----------
    preprocessor : fitted transformer or None
        A distiller's ``preprocessor_``.
    X : array-like or DataFrame of shape (n_samples, n_features)

    Returns
    -------
    features : ndarray of shape (n_samples, n_student_features), dtype float32
    """
    if preprocessor is not None:
        X = preprocessor.transform(X)
        return as_float32(X.toarray() if hasattr(X, "toarray") else X)
    return as_float32(check_array(X, dtype=[np.float32, np.float64]), checked=True)


def as_float32(X, checked=False):
    """X as a C-contiguous float32 array, finite.

    ``checked`` means X went through check_array (finite): only a cast from
    float64, which can overflow, then needs looking at again.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    if (not checked or X.dtype != np.float32) and not np.isfinite(X32).all():
        raise ValueError(
            "X has values too large for float32 (beyond ±3.4e38), which the student computes in."
        )
    return X32


def concat_rows(parts):
    """Rows of several arrays or several DataFrames, one after the other."""
    if len(parts) == 1:
        return parts[0]
    if hasattr(parts[0], "iloc"):
        import pandas as pd  # only reached with DataFrame input

        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(part) for part in parts])
