"""One teacher's raw outputs on rows: probabilities, logits or predictions.

The teacher is called exactly as the user would call it, on X as given,
with the train/eval flags of any torch module it holds put back afterwards.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from ._teacher_torch import train_modes_preserved

__all__ = ["raw_outputs", "regression_outputs"]


def raw_outputs(estimator, X):
    """One teacher's outputs on X: ("proba", p) or ("logits", z), float64."""
    with train_modes_preserved(estimator):
        return _unguarded_raw_outputs(estimator, X)


def _unguarded_raw_outputs(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return "proba", np.asarray(estimator.predict_proba(X), dtype=np.float64)
    scores = np.asarray(estimator.decision_function(X), dtype=np.float64)
    if scores.ndim == 1:
        # A binary decision_function is the log-odds of the second class;
        # centred logits make softmax give back exactly sigmoid(score).
        scores = np.column_stack([-scores / 2, scores / 2])
    return "logits", scores


def regression_outputs(estimator, X):
    """One regressor's predictions on X as a float64 (n_samples, n_outputs) array."""
    with train_modes_preserved(estimator):
        values = np.asarray(estimator.predict(X), dtype=np.float64)
    return "predictions", values.reshape(len(values), -1)
