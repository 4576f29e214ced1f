"""scikit-learn's private names that skdistill uses, imported in one place.

scikit-learn moves its private helpers between releases; keeping every such
import here means a new release breaks one file, not the package. Each name
is what scikit-learn's own estimators use for the same job.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    _is_fitted,
    _num_features,
    _num_samples,
)

try:  # scikit-learn >= 1.7
    from sklearn.utils._repr_html.estimator import _VisualBlock
except ImportError:  # scikit-learn 1.6
    from sklearn.utils._estimator_html_repr import _VisualBlock

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_VisualBlock",
    "_check_sample_weight",
    "_fit_context",
    "_is_fitted",
    "_num_features",
    "_num_samples",
    "_safe_indexing",
    "validate_parameter_constraints",
]
