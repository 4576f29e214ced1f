"""One teacher's raw outputs on rows: probabilities, logits or predictions.

The teacher is called exactly as the user would call it, on X as given,
with the train/eval flags of any torch module it holds put back afterwards.
Its outputs are checked on every call, so a broken teacher is named after
its first batch of rows, before it labels the others and long before any
student trains on what it said.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from ._teacher_torch import train_modes_preserved
from .utils.fixes import _num_samples

__all__ = ["PROBA_TOLERANCE", "raw_outputs", "regression_outputs"]

#: How far a row of ``predict_proba`` may be from summing to 1, and a
#: probability from [0, 1], before the teacher is refused: a relative
#: rounding error, not a modelling choice.
PROBA_TOLERANCE = 1e-3


def raw_outputs(estimator, X):
    """One teacher's outputs on X: ("proba", p) or ("logits", z), float64, checked."""
    with train_modes_preserved(estimator):
        return _unguarded_raw_outputs(estimator, X)


def _unguarded_raw_outputs(estimator, X):
    n_classes = _n_classes(estimator)
    if hasattr(estimator, "predict_proba"):
        proba = _checked_array(estimator, "predict_proba", estimator.predict_proba(X), X, (2,))
        _check_columns(estimator, "predict_proba", proba, n_classes)
        return "proba", _checked_proba(estimator, proba)
    scores = _checked_array(
        estimator, "decision_function", estimator.decision_function(X), X, (1, 2)
    )
    _check_finite(estimator, "decision_function", scores)
    if scores.ndim == 1:
        if n_classes not in (None, 2):
            raise _teacher_error(
                estimator,
                "decision_function",
                f"returned one score per row, but classes_ has {n_classes} classes: one "
                "score is the log-odds of the second of two classes.",
                "Give a teacher whose decision_function has one column per class.",
            )
        # A binary decision_function is the log-odds of the second class;
        # centred logits make softmax give back exactly sigmoid(score).
        scores = np.column_stack([-scores / 2, scores / 2])
    _check_columns(estimator, "decision_function", scores, n_classes)
    return "logits", scores


def regression_outputs(estimator, X):
    """One regressor's predictions on X as a float64 (n_samples, n_outputs) array, checked."""
    with train_modes_preserved(estimator):
        values = _checked_array(estimator, "predict", estimator.predict(X), X, (1, 2))
    _check_finite(estimator, "predict", values)
    return "predictions", values.reshape(len(values), -1)


def _n_classes(estimator):
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else len(classes)


def _checked_array(estimator, method, values, X, dimensions):
    """``values`` as a float64 array of one row per row of X, with one of ``dimensions``."""
    if isinstance(values, (list, tuple)) and values and all(np.ndim(v) == 2 for v in values):
        raise _teacher_error(
            estimator,
            method,
            f"returned a {type(values).__name__} of {len(values)} arrays, as a multi-output "
            "estimator does; skdistill distils estimators of one output.",
            "Distil the estimator of each output separately (a MultiOutputClassifier's "
            "estimators_), or give a teacher that returns one array.",
        )
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise _teacher_error(
            estimator,
            method,
            f"returned a {type(values).__name__} that is not an array of numbers with "
            f"rows of equal length ({error}).",
            "Give a teacher that returns a numeric array.",
        ) from error
    n_rows = _num_samples(X)
    if array.ndim not in dimensions:
        raise _teacher_error(
            estimator,
            method,
            f"returned an array of shape {array.shape}; expected "
            + " or ".join({1: f"({n_rows},)", 2: f"({n_rows}, n_outputs)"}[d] for d in dimensions)
            + ".",
            "Give a teacher of one output that returns one row per row of X.",
        )
    if len(array) != n_rows:
        raise _teacher_error(
            estimator,
            method,
            f"returned {len(array)} rows for {n_rows} rows of X.",
            "A teacher must return one row per row of X, in the same order.",
        )
    return array


def _check_columns(estimator, method, values, n_classes):
    if n_classes is not None and values.shape[1] != n_classes:
        raise _teacher_error(
            estimator,
            method,
            f"returned {values.shape[1]} columns, but its classes_ has {n_classes} classes "
            f"({np.asarray(estimator.classes_).tolist()[:10]}).",
            "The columns must be the classes of classes_, in that order: refit the teacher, "
            "or correct its classes_.",
        )


def _check_finite(estimator, method, values):
    bad = ~np.isfinite(values)
    if bad.any():
        raise _teacher_error(
            estimator,
            method,
            f"returned NaN or infinite values, such as {_first_row(values, bad)}.",
            "Check the teacher and the rows given to it.",
        )


def _checked_proba(estimator, proba):
    """Probabilities on the simplex (within PROBA_TOLERANCE), clipped to [0, 1]."""
    finite = np.isfinite(proba)
    sums = proba.sum(axis=1)
    off = np.abs(sums - 1) > PROBA_TOLERANCE
    outside = (proba < -PROBA_TOLERANCE) | (proba > 1 + PROBA_TOLERANCE)
    problem = None
    if not finite.all():
        problem = f"NaN or infinite probabilities, such as {_first_row(proba, ~finite)}"
    elif (sums == 0).any():
        problem = "a row of zeros, which is no distribution"
    elif off.any():
        problem = (
            f"rows that do not sum to 1, such as {_first_row(proba, off)} (sum {sums[off][0]:.6g})"
        )
    elif outside.any():
        problem = f"probabilities outside [0, 1], such as {_first_row(proba, outside)}"
    if problem:
        raise _teacher_error(
            estimator,
            "predict_proba",
            f"returned {problem}.",
            "A teacher's predict_proba must give each row a probability distribution "
            "over classes_: fix or calibrate the teacher (such as with "
            "sklearn.calibration.CalibratedClassifierCV).",
        )
    # Rounding errors within the tolerance: a probability of -1e-17 would
    # have no logarithm.
    return np.clip(proba, 0.0, 1.0)


def _first_row(values, mask, limit=6):
    """The first row of ``values`` where ``mask`` holds, as short text."""
    row = values[np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0]]
    row = np.atleast_1d(row)
    shown = ", ".join(f"{value:.4g}" for value in row[:limit])
    return f"the row [{shown}{', ...' if len(row) > limit else ''}]"


def _teacher_error(estimator, method, problem, way_out):
    return ValueError(f"The teacher {type(estimator).__name__}'s {method} {problem} {way_out}")
