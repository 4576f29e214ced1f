import pickle

import numpy as np
import pytest
import torch
from conftest import small
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import DistilledClassifier
from skdistill._specialists import _rebalanced_rows, _specialist_module
from skdistill.specialists import (
    SpecialistEnsemble,
    combine_predictions,
    confusable_class_subsets,
    dustbin_logit_offset,
)
from skdistill.student import MLP, Standardize, StudentModule

#: A student that trains in a fraction of a second on a few hundred rows.
#: No early stopping: the specialists' effects are measured on a fixed number
#: of epochs, with every row of these small sets trained on.
TINY = small(hidden_layer_sizes=(8,), max_epochs=15, batch_size=32, early_stopping=False)


# -- data ---------------------------------------------------------------------


def planted_proba(groups, n_rows, rng, frequencies=None):
    """Predictions that confuse classes within each group and never across."""
    n_classes = sum(len(group) for group in groups)
    group_of = {c: group for group in groups for c in group}
    true = rng.choice(n_classes, size=n_rows, p=frequencies)
    proba = 0.02 * rng.dirichlet(np.ones(n_classes), size=n_rows)
    for row, c in enumerate(true):
        group = group_of[c]
        within = 0.5 * rng.dirichlet(np.ones(len(group)))
        within[group.index(c)] += 0.5
        proba[row, group] += 0.98 * within
    return proba


@pytest.fixture(scope="module")
def grouped():
    """Six classes in three pairs: a pair shares a position, its classes differ in x2."""
    rng = np.random.RandomState(0)
    n_rows = 600
    y = rng.randint(6, size=n_rows)
    centres = 6.0 * np.array([[0, 0], [1, 0], [0, 1]])
    X = np.column_stack(
        [
            centres[y // 2] + rng.normal(size=(n_rows, 2)),
            np.where(y % 2, 1.0, -1.0) + rng.normal(size=n_rows),
        ]
    )
    return X, y


@pytest.fixture(scope="module")
def teacher(grouped):
    X, y = grouped
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture(scope="module")
def ensemble(grouped, teacher):
    X, y = grouped
    return SpecialistEnsemble(teacher, n_specialists=3, **TINY).fit(X, y)


# -- class subsets --------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_clustering_recovers_planted_groups(seed):
    rng = np.random.default_rng(seed)
    classes = rng.permutation(12)
    groups = [classes[i : i + 3].tolist() for i in range(0, 12, 3)]
    frequencies = rng.dirichlet(5 * np.ones(12))  # unequal class sizes
    proba = planted_proba(groups, 3000, rng, frequencies)
    subsets = confusable_class_subsets(proba, 4, random_state=0)
    assert sorted(map(tuple, subsets)) == sorted(tuple(sorted(group)) for group in groups)


def test_clustering_drops_singletons_and_the_whole_set():
    rng = np.random.default_rng(0)
    proba = planted_proba([[0, 1], [2], [3, 4]], 2000, rng)
    subsets = confusable_class_subsets(proba, 3, random_state=0)
    assert [s.tolist() for s in subsets] == [[0, 1], [3, 4]]
    assert confusable_class_subsets(proba, 1, random_state=0) == []


def test_overlap_adds_classes_correlated_with_another_group():
    rng = np.random.default_rng(0)
    proba = planted_proba([[0, 1, 2], [3, 4, 5], [6, 7], [8]], 3000, rng)
    # Class 8 sits between the first two groups: confused with 2 and with 3.
    border = np.argmax(proba, axis=1) == 8
    proba[border, 8] -= 0.6
    proba[border, 2] += 0.3
    proba[border, 3] += 0.3

    def subsets(**params):
        found = confusable_class_subsets(proba, 3, random_state=0, **params)
        return [s.tolist() for s in found]

    assert subsets() == [[0, 1, 2, 8], [3, 4, 5], [6, 7]]
    assert subsets(overlap_correlation=0.5) == subsets()
    assert subsets(overlap_correlation=0.2) == [[0, 1, 2, 3, 8], [3, 4, 5, 8], [6, 7]]


def test_clustering_rejects_more_subsets_than_classes():
    with pytest.raises(ValueError, match="more groups than there are classes"):
        confusable_class_subsets(np.full((5, 3), 1 / 3), 4)


# -- combination --------------------------------------------------------------


def objective(z, p_g, specialists):
    """KL(p_g || q) + sum_m KL(p_m || C_m q) up to constants, q = softmax(z)."""
    log_q = log_softmax(z)
    value = -np.dot(p_g, log_q)
    for subset, p_m in specialists:
        rest = np.setdiff1d(np.arange(len(z)), subset)
        log_collapsed = np.append(log_q[subset], np.logaddexp.reduce(log_q[rest]))
        value -= np.dot(p_m, log_collapsed)
    return value


def test_combination_matches_a_direct_optimiser():
    rng = np.random.default_rng(0)
    n_rows, n_classes = 6, 7
    subsets = [[0, 1, 2], [2, 3], [4, 5, 6, 1]]
    p_g = rng.dirichlet(np.ones(n_classes), size=n_rows)
    p_s = [rng.dirichlet(np.ones(len(s) + 1), size=n_rows) for s in subsets]
    active = rng.random((n_rows, len(subsets))) < 0.6
    active[0] = False  # a row with no specialist
    active[1] = True  # one with all of them
    q, n_iter = combine_predictions(
        p_g, p_s, subsets, active, tol=1e-11, max_iter=10_000, return_n_iter=True
    )
    assert n_iter < 10_000
    np.testing.assert_allclose(q.sum(axis=1), 1)
    np.testing.assert_allclose(q[0], p_g[0])
    for row in range(n_rows):
        terms = [(s, p[row]) for s, p, on in zip(subsets, p_s, active[row], strict=True) if on]
        direct = minimize(
            objective,
            np.log(p_g[row]),
            args=(p_g[row], terms),
            method="BFGS",
            options=dict(gtol=1e-12, maxiter=10_000),
        )
        np.testing.assert_allclose(q[row], softmax(direct.x), atol=1e-6)
        assert objective(np.log(q[row]), p_g[row], terms) <= direct.fun + 1e-9


def test_combination_keeps_a_specialist_that_agrees():
    p_g = np.array([[0.1, 0.2, 0.3, 0.4]])
    p_m = np.array([[0.1, 0.2, 0.7]])  # p_g collapsed onto {0, 1} + dustbin
    q = combine_predictions(p_g, [p_m], [[0, 1]], [[True]])
    np.testing.assert_allclose(q, p_g, atol=1e-9)


def test_combination_ignores_inactive_rows_even_with_nan():
    p_g = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    p_m = np.array([[np.nan, np.nan, np.nan], [0.9, 0.05, 0.05]])
    q = combine_predictions(p_g, [p_m], [[0, 1]], [[False], [True]])
    np.testing.assert_array_equal(q[0], p_g[0])
    assert q[1, 0] > p_g[1, 0]
    assert np.isfinite(q).all()


# -- dustbin ------------------------------------------------------------------


def test_dustbin_offset_undoes_sampling_by_label():
    # A "model" of the label given no features is the label frequencies of
    # its training sample; the offset must turn the frequencies of a
    # rebalanced sample back into the population's.
    counts = np.array([50, 30, 400, 300, 220])  # classes 0, 1 are the subset
    subset, rest = counts[:2], counts[2:]
    drawn_rest = rest * subset.sum() / rest.sum()  # half and half
    learnt = np.append(subset, drawn_rest.sum()) / (subset.sum() + drawn_rest.sum())
    offset = dustbin_logit_offset(rest.sum() / counts.sum(), 0.5)
    corrected = softmax(np.log(learnt) + np.array([0, 0, offset]))
    np.testing.assert_allclose(corrected, np.append(subset, rest.sum()) / counts.sum())
    assert offset == pytest.approx(np.log(920 / 80))


def test_dustbin_offset_rejects_shares_outside_the_open_interval():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        dustbin_logit_offset(1.0, 0.5)


def test_rebalanced_rows_are_half_subset_half_others():
    in_subset = np.zeros(100, dtype=bool)
    in_subset[[3, 10, 50]] = True
    rows = _rebalanced_rows(in_subset, np.random.RandomState(0))
    assert len(rows) == 6 and set(rows) >= {3, 10, 50}
    assert np.all(np.diff(rows) > 0)


@pytest.mark.parametrize("logit_bias", [False, True])
def test_specialist_starts_as_the_generalist_collapsed(logit_bias):
    torch.manual_seed(0)
    standardize = Standardize(np.zeros(3), np.ones(3))
    generalist = StudentModule(standardize, MLP(3, 5, (4,)), n_outputs=5 if logit_bias else None)
    head = generalist.body.layers[-1]
    with torch.no_grad():  # equal logits for the classes outside the subset
        head.weight[2:] = head.weight[2]
        head.bias[2:] = head.bias[2]
        if logit_bias:
            generalist.logit_bias[:] = torch.tensor([0.5, -1.0, 0.3, 0.3, 0.3])
    specialist = _specialist_module(generalist, np.array([0, 1]), 5)
    X = torch.randn(10, 3)
    expected = softmax(generalist(X).detach().numpy().astype(float), axis=1)
    expected = np.column_stack([expected[:, :2], expected[:, 2:].sum(axis=1)])
    got = softmax(specialist(X).detach().numpy().astype(float), axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert generalist.body.layers[-1].out_features == 5  # the generalist is untouched


# -- the estimator ------------------------------------------------------------


def test_fitted_ensemble(grouped, teacher, ensemble):
    X, y = grouped
    assert sorted(s.tolist() for s in ensemble.class_subsets_) == [[0, 1], [2, 3], [4, 5]]
    assert len(ensemble.specialists_) == 3
    assert isinstance(ensemble.generalist_, DistilledClassifier)
    assert ensemble.teacher_ is teacher
    np.testing.assert_array_equal(ensemble.dustbin_offsets_, 0)
    proba = ensemble.predict_proba(X)
    assert proba.shape == (len(X), 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(ensemble.predict(X), proba.argmax(axis=1))
    assert ensemble.score(X, y) > 0.8


def test_specialists_fix_what_the_generalist_confuses(grouped, teacher):
    X, y = grouped
    # Three hidden units are too few for six classes, enough for two and a dustbin.
    params = dict(TINY, hidden_layer_sizes=(3,), max_epochs=30)
    ensemble = SpecialistEnsemble(teacher, n_specialists=3, **params).fit(X, y)
    assert ensemble.score(X, y) > ensemble.generalist_.score(X, y) + 0.1


def test_labels_keep_their_type_and_absent_classes_are_kept(grouped):
    X, y = grouped
    names = np.array(list("abcdef"))
    teacher = LogisticRegression(max_iter=1000).fit(X, names[y])
    kept = y != 5
    ensemble = SpecialistEnsemble(teacher, n_specialists=3, **TINY).fit(X[kept], names[y][kept])
    np.testing.assert_array_equal(ensemble.classes_, list("abcdef"))
    assert all(s.dtype == names.dtype for s in ensemble.class_subsets_)
    proba = ensemble.predict_proba(X)
    assert proba.shape == (len(X), 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_learns_from_a_fitted_teacher_without_labels(grouped, teacher):
    X, _ = grouped
    ensemble = SpecialistEnsemble(teacher, n_specialists=3, **TINY).fit(X)
    assert np.mean(ensemble.predict(X) == teacher.predict(X)) > 0.8


def test_prior_correction_sets_the_dustbin_offsets(grouped, teacher):
    X, _ = grouped
    ensemble = SpecialistEnsemble(
        teacher, n_specialists=3, dustbin_correction="prior", **dict(TINY, max_epochs=1)
    ).fit(X)
    in_share = [np.isin(teacher.predict(X), s).mean() for s in ensemble.class_subsets_]
    expected = [dustbin_logit_offset(1 - share, 0.5) for share in in_share]
    np.testing.assert_allclose(ensemble.dustbin_offsets_, expected)


def test_generalist_template(grouped, teacher):
    X, y = grouped
    template = DistilledClassifier(None, hidden_layer_sizes=(3,), max_epochs=2)
    ensemble = SpecialistEnsemble(teacher, n_specialists=3, generalist=template, **TINY)
    ensemble.fit(X, y)
    assert not hasattr(template, "classes_") and template.teacher is None
    assert ensemble.generalist_.teacher_ is teacher
    assert ensemble.generalist_.n_iter_ == 2
    assert ensemble.generalist_.student_.module_.body.layers[0].out_features == 3
    assert ensemble.specialists_[0].module_.body.layers[0].out_features == 3


def test_clone_keeps_a_fitted_teacher_and_grid_search_never_refits_it(grouped, teacher):
    X, y = grouped
    ensemble = SpecialistEnsemble(teacher, n_specialists=3, **dict(TINY, max_epochs=3))
    assert clone(ensemble).teacher is teacher
    search = GridSearchCV(ensemble, {"top_n": [1, 2]}, cv=2).fit(X, y)
    assert search.best_estimator_.teacher_ is teacher


def test_pickle_round_trip(grouped, ensemble):
    X, _ = grouped
    restored = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(restored.predict_proba(X), ensemble.predict_proba(X))


def test_parallel_training_gives_the_same_specialists(grouped, teacher, ensemble):
    X, y = grouped
    parallel = SpecialistEnsemble(teacher, n_specialists=3, n_jobs=2, **TINY).fit(X, y)
    np.testing.assert_allclose(parallel.predict_proba(X), ensemble.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(n_specialists=0), InvalidParameterError, "n_specialists"),
        (dict(n_specialists=7), ValueError, "larger than the teacher's 6 classes"),
        (dict(n_specialists=2, top_n=7), ValueError, "top_n=7"),
        (
            dict(n_specialists=2, generalist=LogisticRegression()),
            InvalidParameterError,
            "generalist",
        ),
        (dict(n_specialists=2, overlap_correlation=0.0), InvalidParameterError, "overlap"),
        (dict(n_specialists=2, hidden_layer_sizes=(0,)), ValueError, "hidden_layer_sizes"),
    ],
)
def test_clear_errors_before_training(grouped, teacher, params, error, match, monkeypatch):
    X, y = grouped

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(DistilledClassifier, "fit", no_training)
    with pytest.raises(error, match=match):
        SpecialistEnsemble(teacher, **params).fit(X, y)
