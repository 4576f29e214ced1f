"""Tests of skdistill.plotting: the drawn data, not only that something is drawn."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import sys
import warnings

import numpy as np
import pytest
from conftest import FixedProba, small
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import DistilledClassifier, Munge, RandomMarginal
from skdistill.plotting import (
    plot_reliability,
    plot_search_scores,
    plot_softened_distribution,
    plot_transfer_size_agreement,
)
from skdistill.teachers import teacher_logits

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture
def ax():
    figure, axes = plt.subplots()
    yield axes
    plt.close(figure)


# plot_softened_distribution


def test_softened_bars_are_the_softmax_of_the_logits(iris, iris_forest, ax):
    X, _ = iris
    temperatures = (1, 3, 10)
    plot_softened_distribution(iris_forest, X[70], temperatures, ax=ax)
    logits = teacher_logits(iris_forest, X[70:71])[0].astype(np.float64)
    assert len(ax.containers) == len(temperatures)
    for container, temperature in zip(ax.containers, temperatures, strict=True):
        heights = [bar.get_height() for bar in container]
        np.testing.assert_allclose(heights, softmax(logits / temperature))
        assert container.get_label() == f"T = {temperature}"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "1", "2"]


def test_softened_distribution_of_a_distilled_student(iris, iris_forest, ax):
    X, y = iris
    student = DistilledClassifier(iris_forest, **small(max_epochs=3)).fit(X, y)
    plot_softened_distribution(student, X[:1], (1,), class_names=["a", "b", "c"], ax=ax)
    heights = [bar.get_height() for bar in ax.containers[0]]
    # At T = 1 the bars are the student's own probabilities.
    np.testing.assert_allclose(heights, student.predict_proba(X[:1])[0], atol=1e-6)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["a", "b", "c"]


def test_softened_distribution_keeps_a_dataframe_row(iris, ax):
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        plot_softened_distribution(forest, frame.iloc[0], (1,), ax=ax)
        plot_softened_distribution(forest, frame.iloc[:1], (1,), ax=ax)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(X_row=np.zeros((2, 4))), ValueError, "one example"),
        (dict(temperatures=(1, 0)), ValueError, "positive numbers"),
        (dict(temperatures=()), ValueError, "non-empty"),
        (dict(class_names=["a", "b"]), ValueError, "2 names but the estimator has 3"),
    ],
)
def test_softened_distribution_rejects_bad_input(iris, iris_forest, ax, kwargs, error, match):
    X, _ = iris
    kwargs = {"X_row": X[0], **kwargs}
    with pytest.raises(error, match=match):
        plot_softened_distribution(iris_forest, ax=ax, **kwargs)


def test_softened_distribution_needs_a_fitted_estimator(iris):
    from sklearn.ensemble import RandomForestClassifier

    X, _ = iris
    with pytest.raises(NotFittedError, match="not fitted"):
        plot_softened_distribution(RandomForestClassifier(), X[0])


def test_no_ax_draws_on_the_current_axes(iris, iris_forest):
    X, _ = iris
    try:
        figure, current = plt.subplots()
        assert plot_softened_distribution(iris_forest, X[0]) is current
    finally:
        plt.close("all")


def test_missing_matplotlib_names_the_extra(iris, iris_forest, monkeypatch):
    X, _ = iris
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(ImportError, match=r"pip install skdistill\[plotting\]"):
        plot_softened_distribution(iris_forest, X[0])


# plot_search_scores


@pytest.fixture(scope="module")
def pipeline_search(iris, iris_forest):
    X, y = iris
    student = DistilledClassifier(iris_forest, **small(max_epochs=3))
    grid = {
        "distilledclassifier__temperature": [1.0, 20.0],
        "distilledclassifier__alpha": [0.5, 1.0],
    }
    return GridSearchCV(make_pipeline(StandardScaler(), student), grid, cv=2).fit(X, y)


def test_search_lines_are_the_mean_test_scores(pipeline_search, ax):
    plot_search_scores(pipeline_search, ax=ax)  # bare names find the prefixed ones
    results = pipeline_search.cv_results_
    temperatures = np.asarray(results["param_distilledclassifier__temperature"], dtype=float)
    alphas = np.asarray(results["param_distilledclassifier__alpha"], dtype=float)
    assert [line.get_label() for line in ax.lines] == ["0.5", "1.0"]
    for line, band, alpha in zip(ax.lines, ax.collections, [0.5, 1.0], strict=True):
        rows = np.flatnonzero(alphas == alpha)
        rows = rows[np.argsort(temperatures[rows])]
        np.testing.assert_allclose(line.get_xdata(), [1.0, 20.0])
        np.testing.assert_allclose(line.get_ydata(), results["mean_test_score"][rows])
        # The band spans mean +- std.
        band_y = band.get_paths()[0].vertices[:, 1]
        means, stds = results["mean_test_score"][rows], results["std_test_score"][rows]
        np.testing.assert_allclose(band_y.min(), (means - stds).min())
        np.testing.assert_allclose(band_y.max(), (means + stds).max())
    assert ax.get_xscale() == "log"  # 1 to 20
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "20"]
    assert ax.get_xlabel() == "temperature"
    assert ax.get_legend().get_title().get_text() == "alpha"


def test_search_with_full_names_and_no_hue(pipeline_search, ax):
    plot_search_scores(pipeline_search, "distilledclassifier__alpha", hue=None, ax=ax)
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [0.5, 1.0])
    assert ax.get_xscale() == "linear"


class FakeSearch:
    """A 'fitted' search holding hand-made cv_results_."""

    def __init__(self, cv_results, refit=True):
        self.cv_results_ = cv_results
        self.refit = refit


def masked(values, mask=None):
    return np.ma.MaskedArray(np.array(values, dtype=object), mask=mask or [False] * len(values))


def test_search_point_is_the_best_over_other_parameters(ax):
    # Two learning rates per (temperature, alpha): the better mean is drawn.
    results = {
        "param_temperature": masked([1, 1, 4, 4, 1, 1, 4, 4]),
        "param_alpha": masked([0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]),
        "param_lr": masked([0.1, 0.01] * 4),
        "mean_test_score": np.array([0.6, 0.7, 0.9, 0.8, 0.5, 0.4, 0.3, 0.35]),
        "std_test_score": np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]),
    }
    plot_search_scores(FakeSearch(results), ax=ax)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.7, 0.9])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.5, 0.35])
    assert ax.get_xscale() == "linear"  # 1 to 4


def test_search_skips_masked_candidates_and_picks_the_metric(ax):
    # Candidates of a second sub-grid have no temperature (masked).
    results = {
        "param_temperature": masked([8, 2, 0], mask=[False, False, True]),
        "mean_test_agreement": np.array([0.8, 0.9, 0.1]),
        "std_test_agreement": np.zeros(3),
        "mean_test_accuracy": np.array([0.5, 0.6, 0.7]),
        "std_test_accuracy": np.zeros(3),
    }
    search = FakeSearch(results, refit="agreement")
    plot_search_scores(search, hue=None, ax=ax)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2, 8])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.9, 0.8])
    assert ax.get_ylabel() == "mean test agreement"
    plot_search_scores(search, hue=None, scoring="accuracy", ax=ax)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.6, 0.5])
    with pytest.raises(ValueError, match="several metrics"):
        plot_search_scores(FakeSearch(results, refit=False), hue=None, ax=ax)


@pytest.mark.parametrize(
    "param, hue, match",
    [
        ("temperature", "alpha", "ambiguous"),
        ("teacher_temperature", None, "not a searched parameter"),
        ("a__temperature", "beta", "pass hue=None"),
    ],
)
def test_search_parameter_names_are_checked(ax, param, hue, match):
    results = {
        "param_a__temperature": masked([1, 2]),
        "param_b__temperature": masked([1, 2]),
        "param_alpha": masked([0.5, 1.0]),
        "mean_test_score": np.array([0.5, 0.6]),
        "std_test_score": np.zeros(2),
    }
    with pytest.raises(ValueError, match=match):
        plot_search_scores(FakeSearch(results), param, hue, ax=ax)


def test_unfitted_search_is_reported(iris_forest):
    search = GridSearchCV(DistilledClassifier(iris_forest), {"alpha": [0.5, 1.0]})
    with pytest.raises(NotFittedError, match="no cv_results_"):
        plot_search_scores(search)


# plot_reliability


def test_reliability_points_on_a_hand_made_case(ax):
    proba = [[0.9, 0.1], [0.21, 0.79], [0.7, 0.3], [1.0, 0.0], [0.5, 0.5]]
    y = [0, 1, 1, 0, 0]
    plot_reliability({"model": FixedProba(proba)}, np.zeros((5, 1)), y, n_bins=5, ax=ax)
    diagonal, model = ax.lines
    assert diagonal.get_label() == "perfectly calibrated"
    np.testing.assert_allclose(diagonal.get_xdata(), [0, 1])
    assert model.get_label() == "model"
    # Bins [0.4, 0.6): 0.5 right (ties go to the first class); [0.6, 0.8):
    # 0.79 right, 0.7 wrong; [0.8, 1]: 0.9 and 1.0 right.
    np.testing.assert_allclose(model.get_xdata(), [0.5, 0.745, 0.95])
    np.testing.assert_allclose(model.get_ydata(), [1.0, 0.5, 1.0])


def test_reliability_edge_goes_to_the_lower_bin_as_calibration_curve(ax):
    proba = [[0.5, 0.5], [0.0, 1.0]]
    plot_reliability(FixedProba(proba), np.zeros((2, 1)), [1, 1], n_bins=2, ax=ax)
    model = ax.lines[1]
    assert model.get_label() == "FixedProba"  # a lone estimator is named after its class
    np.testing.assert_allclose(model.get_xdata(), [0.5, 1.0])
    np.testing.assert_allclose(model.get_ydata(), [0.0, 1.0])


def test_reliability_of_teacher_and_student(iris, iris_forest, ax):
    X, y = iris
    student = DistilledClassifier(iris_forest, **small(max_epochs=3)).fit(X, y)
    plot_reliability({"teacher": iris_forest, "student": student}, X, y, ax=ax)
    assert [line.get_label() for line in ax.lines[1:]] == ["teacher", "student"]
    for line in ax.lines[1:]:
        assert np.all((0 <= line.get_ydata()) & (line.get_ydata() <= 1))


@pytest.mark.parametrize(
    "estimators, y, n_bins, error, match",
    [
        ({}, [0], 10, ValueError, "empty"),
        (FixedProba([[1.0, 0.0]]), [0, 1], 10, ValueError, "inconsistent numbers"),
        (FixedProba([[1.0, 0.0]]), [0], 0, ValueError, "n_bins"),
    ],
)
def test_reliability_rejects_bad_input(ax, estimators, y, n_bins, error, match):
    with pytest.raises(error, match=match):
        plot_reliability(estimators, np.zeros((1, 1)), y, n_bins=n_bins, ax=ax)


def test_reliability_needs_fitted_estimators(iris, iris_forest, ax):
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    models = {"teacher": iris_forest, "other": RandomForestClassifier()}
    with pytest.raises(NotFittedError, match="RandomForestClassifier instance is not fitted"):
        plot_reliability(models, X, y, ax=ax)


# plot_transfer_size_agreement


class RecordingStudent(ClassifierMixin, BaseEstimator):
    """A 'distilled estimator' agreeing with its teacher more, the more rows it got."""

    fitted_transfers = []

    def __init__(self, teacher, transfer=None):
        self.teacher = teacher
        self.transfer = transfer

    def fit(self, X, y=None):
        RecordingStudent.fitted_transfers.append(self.transfer)
        self.teacher_ = self.teacher
        self.classes_ = self.teacher.classes_
        size = 0 if self.transfer is None else self.transfer.size_multiplier
        self.n_right_ = min(size, 4)
        return self

    def predict(self, X):
        # Right on the first n_right_ of 4 rows, wrong on the others.
        right = np.arange(len(X)) < self.n_right_
        return np.where(right, 0, 1)


def test_transfer_size_agreement_refits_with_each_size(ax):
    teacher = FixedProba([[1.0, 0.0]] * 4)
    RecordingStudent.fitted_transfers = []
    estimator = RecordingStudent(teacher, transfer=RandomMarginal(size_multiplier=7))
    X = np.zeros((4, 1))
    plot_transfer_size_agreement(estimator, X, X, size_multipliers=(0, 1, 3), ax=ax)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 3])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.0, 0.25, 0.75])
    first, *others = RecordingStudent.fitted_transfers
    assert first is None  # 0: no transfer set
    # The estimator's own generator is kept, resized; the estimator is untouched.
    assert [type(t).__name__ for t in others] == ["RandomMarginal", "RandomMarginal"]
    assert [t.size_multiplier for t in others] == [1, 3]
    assert estimator.transfer.size_multiplier == 7


def test_transfer_size_agreement_uses_munge_without_a_generator(ax):
    RecordingStudent.fitted_transfers = []
    estimator = RecordingStudent(FixedProba([[1.0, 0.0]] * 2))
    plot_transfer_size_agreement(estimator, np.zeros((2, 1)), np.zeros((2, 1)), (2,), ax=ax)
    (transfer,) = RecordingStudent.fitted_transfers
    assert isinstance(transfer, Munge) and transfer.size_multiplier == 2


def test_transfer_size_agreement_with_a_distilled_classifier(iris, iris_forest, ax):
    X, y = iris
    student = DistilledClassifier(iris_forest, **small(max_epochs=3))
    plot_transfer_size_agreement(student, X[::2], X[1::2], (0, 1), y=y[::2], ax=ax)
    agreement = ax.lines[0].get_ydata()
    assert agreement.shape == (2,) and np.all((0 <= agreement) & (agreement <= 1))
    assert not hasattr(student, "teacher_")  # cloned, never fitted itself


@pytest.mark.parametrize(
    "estimator, multipliers, error, match",
    [
        (StandardScaler(), (1,), TypeError, "transfer parameter"),
        (RecordingStudent(None), (), ValueError, "non-negative integers"),
        (RecordingStudent(None), (1, -1), ValueError, "non-negative integers"),
        (RecordingStudent(None), (1.5,), ValueError, "non-negative integers"),
    ],
)
def test_transfer_size_agreement_rejects_bad_input(ax, estimator, multipliers, error, match):
    X = np.zeros((2, 1))
    with pytest.raises(error, match=match):
        plot_transfer_size_agreement(estimator, X, X, multipliers, ax=ax)
