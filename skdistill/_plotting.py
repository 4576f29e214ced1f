"""Plots for distillation: soft targets, searches, calibration, transfer sets.

Each function draws on a matplotlib ``Axes`` (``ax``, by default the
current one) and returns it, as :func:`sklearn.tree.plot_tree` does.
matplotlib is an optional dependency, imported only when a function is
called: ``pip install skdistill[plotting]``.

- :func:`plot_softened_distribution`: one example's class distribution at
  several temperatures, the soft targets a student sees.
- :func:`plot_search_scores`: a ``GridSearchCV`` or ``RandomizedSearchCV``
  over temperature and alpha, mean test score with its spread.
- :func:`plot_reliability`: reliability diagrams of teacher and student.
- :func:`plot_transfer_size_agreement`: agreement with the teacher as the
  synthetic transfer set grows (Bucila et al. 2006).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._metrics import agreement_scorer
from ._teacher_checks import is_fitted
from ._teacher_labels import teacher_logits, teacher_proba
from ._transfer import Munge

__all__ = [
    "plot_reliability",
    "plot_search_scores",
    "plot_softened_distribution",
    "plot_transfer_size_agreement",
]

#: Above this ratio of the largest to the smallest value, a positive
#: numeric axis is drawn on a log scale (temperatures 1 to 20, lr 1e-4 to 1e-2).
LOG_SCALE_MIN_RATIO = 10
#: On such an axis, up to this many searched values are the tick labels.
MAX_LABELLED_TICKS = 12


def plot_softened_distribution(
    estimator, X_row, temperatures=(1, 2, 5, 10), class_names=None, *, proba_floor="auto", ax=None
):
    """Bar chart of one example's class distribution at several temperatures.

    The estimator's logits (as :func:`skdistill.teachers.teacher_logits`
    makes them: ``log p`` for a ``predict_proba``, with exact zeros
    floored, so a random forest works; else ``decision_function``) are
    divided by each temperature ``T`` and put through a softmax: the soft
    targets of Hinton et al. (2015). A higher ``T`` shows more of the
    "dark knowledge", the relative probabilities of the wrong classes.

    Parameters
    ----------
    estimator : fitted classifier
        A teacher, or a fitted :class:`~skdistill.DistilledClassifier`.
    X_row : array-like of shape (n_features,) or (1, n_features)
        The example; a one-row DataFrame or a pandas Series is passed to
        the estimator as a one-row DataFrame.
    temperatures : sequence of float, default=(1, 2, 5, 10)
        Positive temperatures, one group of bars each.
    class_names : sequence of str, default=None
        Tick labels of the classes; ``estimator.classes_`` when None.
    proba_floor : "auto" or float, default="auto"
        What replaces exact zero probabilities before taking logs; see
        :func:`skdistill.teachers.resolve_proba_floor`.
    ax : matplotlib Axes, default=None
        Where to draw; the current Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        One ``BarContainer`` per temperature in ``ax.containers``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill.plotting import plot_softened_distribution
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> ax = plot_softened_distribution(forest, X[70], ax=Figure().subplots())
    >>> [container.get_label() for container in ax.containers]
    ['T = 1', 'T = 2', 'T = 5', 'T = 10']
    """
    _require_matplotlib()
    _check_fitted(estimator)
    temperatures = _check_temperatures(temperatures)
    logits = teacher_logits(estimator, _one_row(X_row), proba_floor=proba_floor)[0]
    names = _class_names(estimator, class_names, len(logits))

    ax = _axes(ax)
    positions = np.arange(len(logits))
    width = 0.8 / len(temperatures)
    for index, temperature in enumerate(temperatures):
        offset = (index - (len(temperatures) - 1) / 2) * width
        proba = softmax(logits.astype(np.float64) / temperature)
        ax.bar(positions + offset, proba, width, label=f"T = {temperature:g}")
    ax.set_xticks(positions, names)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.legend(title="temperature")
    return ax


def plot_search_scores(search, param="temperature", hue="alpha", *, scoring=None, ax=None):
    """Mean test score of a search against one parameter, a line per value of another.

    Parameters
    ----------
    search : fitted GridSearchCV or RandomizedSearchCV
        Any fitted search with ``cv_results_``, e.g. over a
        :class:`~skdistill.DistilledClassifier` or a Pipeline ending in one.
    param : str, default="temperature"
        The parameter on the x-axis. A bare name finds a prefixed one
        (``"temperature"`` finds ``"distilledclassifier__temperature"``)
        when exactly one searched parameter ends with it.
    hue : str or None, default="alpha"
        One line per value of this parameter; None for a single line.
    scoring : str, default=None
        The metric, for a search with several (``scoring`` a dict or a
        list); None: the search's only score, or its ``refit`` metric.
    ax : matplotlib Axes, default=None
        Where to draw; the current Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        One line per hue value (in ``ax.lines``) and a band of plus or
        minus one standard deviation over the folds (in ``ax.collections``).
        The x-axis is logarithmic for positive numbers spanning more than a
        factor of 10.

    Notes
    -----
    When other parameters were searched too, each point is the best
    candidate among those with its ``param`` and ``hue`` values: the curve
    shows what the best choice of the others achieves.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.plotting import plot_search_scores
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=1000).fit(X, y)
    >>> student = DistilledClassifier(teacher, hidden_layer_sizes=(8,), max_epochs=2,
    ...                               random_state=0)
    >>> grid = {"temperature": [1.0, 4.0], "alpha": [0.5, 1.0]}
    >>> search = GridSearchCV(student, grid, cv=2).fit(X, y)
    >>> ax = plot_search_scores(search, ax=Figure().subplots())
    >>> [line.get_label() for line in ax.lines]
    ['0.5', '1.0']
    """
    _require_matplotlib()
    results = _cv_results(search)
    x_key = _param_key(results, param)
    hue_key = None if hue is None else _param_key(results, hue)
    mean_key, metric = _score_key(results, search, scoring)

    lines = _score_lines(results, x_key, hue_key, mean_key)
    ax = _axes(ax)
    for hue_value, xs, means, stds in lines:
        label = None if hue is None else str(hue_value)
        (line,) = ax.plot(xs, means, marker="o", label=label)
        ax.fill_between(xs, means - stds, means + stds, color=line.get_color(), alpha=0.2)
    _set_log_scale_if_wide(ax, [x for _, xs, _, _ in lines for x in xs])
    ax.set_xlabel(param)
    ax.set_ylabel(f"mean test {metric}")
    if hue is not None:
        ax.legend(title=hue)
    return ax


def plot_reliability(estimators, X, y, *, n_bins=10, ax=None):
    """Reliability diagram: confidence in the predicted class against accuracy.

    The rows are put in ``n_bins`` bins of equal width by the probability
    each estimator gives its predicted class (its confidence), as
    :func:`sklearn.calibration.calibration_curve` does; each non-empty bin
    gives a point at (mean confidence, share of correct predictions). A
    calibrated model lies on the diagonal (Guo et al. 2017); distillation
    at a high temperature often leaves the student less confident than
    its teacher.

    Parameters
    ----------
    estimators : dict of {str: fitted classifier} or fitted classifier
        The models, e.g. ``{"teacher": forest, "student": distilled}``;
        one classifier is named after its class. Each needs ``classes_``
        and ``predict_proba`` (or ``decision_function``, softmaxed).
    X : array-like of shape (n_samples, n_features)
        Rows, passed to every estimator as they are.
    y : array-like of shape (n_samples,)
        True labels.
    n_bins : int, default=10
        Number of bins of ``[0, 1]``.
    ax : matplotlib Axes, default=None
        Where to draw; the current Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        ``ax.lines[0]`` is the diagonal, then one line per estimator,
        labelled with its name.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.plotting import plot_reliability
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> student = DistilledClassifier(forest, hidden_layer_sizes=(8,), max_epochs=5,
    ...                               random_state=0).fit(X, y)
    >>> models = {"teacher": forest, "student": student}
    >>> ax = plot_reliability(models, X, y, n_bins=5, ax=Figure().subplots())
    >>> [line.get_label() for line in ax.lines]
    ['perfectly calibrated', 'teacher', 'student']
    """
    _require_matplotlib()
    estimators = _named_estimators(estimators)
    y = column_or_1d(y)
    check_consistent_length(X, y)
    if not (isinstance(n_bins, Integral) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    curves = {name: _reliability_curve(est, X, y, n_bins) for name, est in estimators.items()}

    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for name, (confidence, accuracy) in curves.items():
        ax.plot(confidence, accuracy, "s-", label=name)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.legend()
    return ax


def plot_transfer_size_agreement(
    estimator, X, X_test, size_multipliers=(0, 1, 5, 10), *, y=None, ax=None
):
    """Agreement with the teacher on held-out rows as the transfer set grows.

    For each multiplier ``m``, a clone of the estimator is fitted on X with
    a synthetic transfer set of ``m * len(X)`` rows (none for 0) and its
    top-1 agreement with its teacher on ``X_test`` is measured, as
    :func:`skdistill.metrics.agreement_scorer` does. This is the question
    of Bucila et al. (2006): how much synthetic data does the student need?

    Parameters
    ----------
    estimator : DistilledClassifier
        A distilled estimator with a ``transfer`` parameter, fitted or not;
        it is cloned, never modified. Its transfer generator is kept with
        ``size_multiplier=m``; without one, ``Munge(size_multiplier=m)`` is
        used.
    X : array-like of shape (n_samples, n_features)
        Training rows.
    X_test : array-like of shape (n_test, n_features)
        Held-out rows on which agreement is measured.
    size_multipliers : sequence of int, default=(0, 1, 5, 10)
        Synthetic rows per training row, one fit each.
    y : array-like of shape (n_samples,), default=None
        Labels of X, passed to ``fit``; None to learn from the teacher
        alone (the teacher must then be fitted).
    ax : matplotlib Axes, default=None
        Where to draw; the current Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        ``ax.lines[0]`` holds the multipliers (x) and the agreements (y).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill import DistilledClassifier
    >>> from skdistill.plotting import plot_transfer_size_agreement
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> student = DistilledClassifier(forest, hidden_layer_sizes=(8,), max_epochs=2,
    ...                               random_state=0)
    >>> ax = plot_transfer_size_agreement(student, X[::2], X[1::2], size_multipliers=(0, 1),
    ...                                   ax=Figure().subplots())
    >>> ax.lines[0].get_xdata().tolist()
    [0, 1]
    """
    _require_matplotlib()
    if "transfer" not in getattr(estimator, "get_params", dict)():
        raise TypeError(
            f"plot_transfer_size_agreement needs a distilled estimator with a transfer "
            f"parameter, such as DistilledClassifier; got {type(estimator).__name__}."
        )
    multipliers = _check_multipliers(size_multipliers)
    agreements = []
    for multiplier in multipliers:
        transfer = _transfer_of_size(estimator.get_params()["transfer"], multiplier)
        student = clone(estimator).set_params(transfer=transfer).fit(X, y)
        agreements.append(agreement_scorer(student, X_test))

    ax = _axes(ax)
    ax.plot(multipliers, agreements, marker="o")
    ax.set_xticks(sorted(set(multipliers)))
    ax.set_xlabel("transfer-set size (synthetic rows per training row)")
    ax.set_ylabel("agreement with the teacher on X_test")
    return ax


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "skdistill.plotting needs matplotlib, an optional dependency: "
            "pip install skdistill[plotting]"
        ) from error


def _axes(ax):
    """The given Axes, or the current one (pyplot is imported only then)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.gca()


def _check_fitted(estimator):
    if not is_fitted(estimator):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' "
            "with appropriate arguments before plotting its outputs."
        )
    if not (hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")):
        raise TypeError(
            f"{type(estimator).__name__} has neither predict_proba nor decision_function; "
            "a classifier is needed."
        )


def _check_temperatures(temperatures):
    temperatures = list(np.atleast_1d(temperatures))
    if not temperatures or not all(
        isinstance(t, Real) and np.isfinite(t) and t > 0 for t in temperatures
    ):
        raise ValueError(
            f"temperatures must be a non-empty sequence of positive numbers; got {temperatures!r}."
        )
    return [float(t) for t in temperatures]


def _one_row(X_row):
    """X_row as a one-row 2-D array, or a one-row DataFrame (column names kept)."""
    if hasattr(X_row, "iloc"):
        frame = X_row.to_frame().T.infer_objects() if X_row.ndim == 1 else X_row
        if len(frame) != 1:
            raise ValueError(f"X_row must be one row; got a DataFrame of {len(frame)} rows.")
        return frame
    row = np.asarray(X_row)
    if row.ndim == 1:
        return row.reshape(1, -1)
    if row.ndim != 2 or row.shape[0] != 1:
        raise ValueError(
            f"X_row must be one example, of shape (n_features,) or (1, n_features); "
            f"got shape {row.shape}."
        )
    return row


def _class_names(estimator, class_names, n_classes):
    if class_names is None:
        class_names = getattr(estimator, "classes_", range(n_classes))
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise ValueError(
            f"class_names has {len(names)} names but the estimator has {n_classes} classes."
        )
    return names


def _cv_results(search):
    results = getattr(search, "cv_results_", None)
    if results is None:
        raise NotFittedError(
            f"This {type(search).__name__} instance is not fitted yet (it has no "
            "cv_results_). Call 'fit' before plotting its scores."
        )
    return results


def _param_key(results, name):
    """The ``param_...`` column of a parameter, by full name or by unique suffix."""
    searched = [key[len("param_") :] for key in results if key.startswith("param_")]
    if name in searched:
        return f"param_{name}"
    matches = [full for full in searched if full.endswith(f"__{name}")]
    if len(matches) == 1:
        return f"param_{matches[0]}"
    if matches:
        raise ValueError(
            f"{name!r} is ambiguous: it matches the searched parameters {matches}; "
            "pass the full name."
        )
    raise ValueError(
        f"{name!r} is not a searched parameter; the search varied {searched}. "
        "(For hue, pass hue=None to draw a single line.)"
    )


def _score_key(results, search, scoring):
    """(column of mean test scores, metric name for the axis label)."""
    if scoring is None:
        if "mean_test_score" in results:
            return "mean_test_score", "score"
        refit = getattr(search, "refit", None)
        if isinstance(refit, str):
            scoring = refit
        else:
            metrics = sorted(key[len("mean_test_") :] for key in results if "mean_test_" in key)
            raise ValueError(f"The search has several metrics, {metrics}; choose with scoring=.")
    if f"mean_test_{scoring}" not in results:
        raise ValueError(f"The search has no test scores for {scoring!r}.")
    return f"mean_test_{scoring}", scoring


#: Stands for a masked entry of a ``param_...`` column.
_MASKED = object()


def _score_lines(results, x_key, hue_key, mean_key):
    """[(hue value, xs, means, stds)], xs sorted, the best candidate per (hue, x)."""
    means = np.asarray(results[mean_key], dtype=np.float64)
    stds = np.asarray(results["std" + mean_key[len("mean") :]], dtype=np.float64)
    xs = _column(results, x_key)
    hues = [None] * len(means) if hue_key is None else _column(results, hue_key)

    groups = {}  # hue -> {x: index of the candidate with the best mean}
    hue_values = {}  # the values themselves, for unhashable ones (lists)
    for index, (hue, x) in enumerate(zip(hues, xs, strict=True)):
        if x is _MASKED or hue is _MASKED:
            continue  # a candidate of another sub-grid, without this parameter
        hue_values.setdefault(_hashable(hue), hue)
        group = groups.setdefault(_hashable(hue), {})
        current = group.get(_hashable(x))
        if current is None or _better(means[index], means[current]):
            group[_hashable(x)] = index

    lines = []
    for hue in _ordered(list(hue_values.values())):
        chosen = list(groups[_hashable(hue)].values())
        chosen = [chosen[i] for i in _argsort_values([xs[index] for index in chosen])]
        lines.append((hue, [xs[index] for index in chosen], means[chosen], stds[chosen]))
    return lines


def _column(results, key):
    """A ``param_...`` column as a list, masked entries as ``_MASKED``."""
    values = np.ma.getdata(results[key])
    mask = np.ma.getmaskarray(results[key])
    return [_MASKED if masked else value for value, masked in zip(values, mask, strict=True)]


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return repr(value)  # a list-valued parameter, e.g. hidden_layer_sizes=[64]
    return value


def _better(score, other):
    return not np.isnan(score) and (np.isnan(other) or score > other)


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _argsort_values(values):
    """Numeric order for numbers, else the order of first appearance."""
    if all(map(_is_number, values)):
        return list(np.argsort(np.asarray(values, dtype=np.float64), kind="stable"))
    return list(range(len(values)))


def _ordered(values):
    values = list(values)
    return [values[i] for i in _argsort_values(values)]


def _set_log_scale_if_wide(ax, values):
    """Log x-axis for positive numbers spanning more than LOG_SCALE_MIN_RATIO."""
    if not values or not all(_is_number(value) and value > 0 for value in values):
        return
    if max(values) / min(values) <= LOG_SCALE_MIN_RATIO:
        return
    ax.set_xscale("log")
    ticks = sorted(set(values))
    if len(ticks) <= MAX_LABELLED_TICKS:
        # The searched values themselves (1, 4, 20), rather than powers of 10.
        ax.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
        ax.minorticks_off()


def _named_estimators(estimators):
    if not isinstance(estimators, Mapping):
        estimators = {type(estimators).__name__: estimators}
    if not estimators:
        raise ValueError("estimators is empty; pass e.g. {'teacher': forest, 'student': student}.")
    for estimator in estimators.values():
        _check_fitted(estimator)
    return dict(estimators)


def _reliability_curve(estimator, X, y, n_bins):
    """(mean confidence, accuracy) of the non-empty bins of the top-class probability."""
    proba = teacher_proba(estimator, X)
    classes = np.asarray(estimator.classes_)
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # As calibration_curve: a value on an inner edge goes to the lower bin.
    bins = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(bins, minlength=n_bins)
    filled = counts > 0
    mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins)[filled]
    accuracy = np.bincount(bins, weights=correct, minlength=n_bins)[filled]
    return mean_confidence / counts[filled], accuracy / counts[filled]


def _check_multipliers(size_multipliers):
    multipliers = list(size_multipliers)
    if not multipliers or not all(
        isinstance(m, Integral) and not isinstance(m, bool) and m >= 0 for m in multipliers
    ):
        raise ValueError(
            "size_multipliers must be a non-empty sequence of non-negative integers; "
            f"got {size_multipliers!r}."
        )
    return [int(m) for m in multipliers]


def _transfer_of_size(transfer, multiplier):
    """The estimator's generator (or Munge) resized; None for no transfer set."""
    if multiplier == 0:
        return None
    if transfer is not None and "size_multiplier" in transfer.get_params():
        return clone(transfer).set_params(size_multiplier=multiplier)
    return Munge(size_multiplier=multiplier)
