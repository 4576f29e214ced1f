"""The mathematics of Hinton's specialists, as functions of arrays.

Three steps of :class:`~skdistill.specialists.SpecialistEnsemble` that can
be used and tested on their own: :func:`confusable_class_subsets` (which
classes go together), :func:`dustbin_logit_offset` (undoing a specialist's
rebalanced training set, when its targets were shifted by it) and
:func:`combine_predictions` (the combined distribution).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import math
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array

__all__ = [
    "class_buckets",
    "combine_predictions",
    "confusable_class_subsets",
    "dustbin_logit_offset",
]

#: Rows combined at once by :func:`combine_predictions`: bounds the memory
#: of the per-(row, specialist) work arrays whatever the size of X.
COMBINE_CHUNK_SIZE = 4096

#: Every class keeps at least this probability when the combination starts,
#: so that a class the generalist rules out entirely (a float64 underflow)
#: can still receive mass from a specialist; the fixed-point iteration
#: cannot move mass into an exact zero.
COMBINE_START_FLOOR = 1e-12


def confusable_class_subsets(proba, n_subsets, *, overlap_correlation=None, random_state=None):
    """Find the groups of classes that a model confuses with each other.

    As Hinton et al. (2015): the columns of the covariance matrix of the
    predicted probabilities (one column per class) are clustered with
    k-means. Classes that are predicted together, with probability moving
    between them from row to row, have similar columns and land in one
    cluster. No true labels are needed. Each class's predictions are first
    scaled to unit variance (the covariance becomes the correlation
    matrix), or the classes predicted most confidently each form a cluster
    of their own and every other class lands in one large cluster.

    A cluster of a single class (nothing to confuse it with) or of every
    class (no "other" class left for a dustbin) is dropped, so fewer than
    ``n_subsets`` groups may come back.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities, one row per example.
    n_subsets : int
        Number of k-means clusters, at most ``n_classes``.
    overlap_correlation : float in (0, 1] or None, default=None
        Lets a class also join every other group holding a class whose
        predicted probabilities correlate with its own at least this much
        (on the letter set, 0.3 adds G to the group of O and Q, and Q to
        that of C, E and G), so that a class on the border of two groups
        is covered by both specialists. None: disjoint groups.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means.

    Returns
    -------
    subsets : list of ndarray of int
        Column indices of each group, sorted; groups ordered by their
        smallest index.

    Examples
    --------
    Classes 0 and 1 are confused with each other, and so are 2 and 3:

    >>> import numpy as np
    >>> from skdistill.specialists import confusable_class_subsets
    >>> proba = np.array([[0.6, 0.4, 0.0, 0.0], [0.3, 0.7, 0.0, 0.0],
    ...                   [0.0, 0.0, 0.8, 0.2], [0.0, 0.0, 0.4, 0.6]])
    >>> confusable_class_subsets(proba, 2, random_state=0)
    [array([0, 1]), array([2, 3])]
    """
    proba = check_array(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    if not 1 <= n_subsets <= n_classes:
        raise ValueError(
            f"n_subsets={n_subsets} must be between 1 and the number of classes, "
            f"{n_classes}: k-means cannot form more groups than there are classes."
        )
    if overlap_correlation is not None and not 0 < overlap_correlation <= 1:
        raise ValueError(
            f"overlap_correlation must be in (0, 1] or None; got {overlap_correlation!r}."
        )
    correlation = _prediction_correlation(proba)
    with warnings.catch_warnings():
        # Identical columns (classes never predicted) give fewer distinct
        # clusters than asked for; the empty ones are dropped below.
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=n_subsets, n_init=10, random_state=random_state)
        labels = kmeans.fit_predict(correlation)
    member = np.eye(n_subsets, dtype=bool)[labels]
    if overlap_correlation is not None:
        member |= _strongest_correlation(correlation, member) >= overlap_correlation
    subsets = {tuple(np.flatnonzero(member[:, j])) for j in range(n_subsets)}
    return [np.array(s) for s in sorted(subsets) if 2 <= len(s) < n_classes]


def _prediction_correlation(proba):
    """The covariance matrix of the predictions, each class scaled to unit variance.

    Unscaled, each column is dominated by its own class's variance: classes
    predicted confidently (high variance) end up alone, and the others in
    one large cluster. On the letter set, k-means into 6 on the covariance
    gives five single letters and 21 together; on this matrix, groups such
    as DHNOQR, CEGKX, BSZ, FP, TUVWY. A class never predicted (no variance)
    keeps a zero column.
    """
    covariance = np.atleast_2d(np.cov(proba, rowvar=False))
    scale = np.sqrt(np.diag(covariance))
    scale = np.where(scale > 0, scale, 1.0)
    return covariance / np.outer(scale, scale)


def _strongest_correlation(correlation, member):
    """(n_classes, n_groups): each class's largest correlation with another class of each group."""
    others = correlation.copy()
    np.fill_diagonal(others, -np.inf)
    return np.stack([others[:, group].max(axis=1, initial=-np.inf) for group in member.T], axis=1)


def dustbin_logit_offset(true_rest_share, sampled_rest_share):
    """What to add to a dustbin logit to undo a rebalanced training set.

    A model trained on a sample in which the labels outside the subset
    ("the rest", the dustbin) make up ``sampled_rest_share`` of the rows,
    where they make up ``true_rest_share`` of the population, learns
    posterior odds shifted by the sampling (prior shift): the rest's by
    ``sampled / true``, the subset's by ``(1 - sampled) / (1 - true)``.
    Undoing both and keeping softmax's invariance to a common constant, the
    dustbin logit must go up, relative to the subset's logits, by::

        log(true / sampled) - log((1 - true) / (1 - sampled))

    The first term alone (the "oversampling proportion") is not enough: it
    leaves the over-represented subset classes as likely as they were in
    the sample.

    This holds when the sample was drawn by *label*, which shifts the
    distribution of the label given the features. A sample drawn by a
    function of the features alone (the teacher's top class, as
    :class:`SpecialistEnsemble` does) leaves the targets given the
    features unchanged and needs no offset.

    Parameters
    ----------
    true_rest_share : float
        Share of the rest in the population, in ``(0, 1)``.
    sampled_rest_share : float
        Share of the rest in the training sample, in ``(0, 1)``.

    Returns
    -------
    offset : float
        Positive when the rest was under-represented by the sample.

    Examples
    --------
    The rest is 90% of the rows, half of the sample: its odds were cut by
    a factor of 9, so its logit goes up by log 9.

    >>> from skdistill.specialists import dustbin_logit_offset
    >>> round(dustbin_logit_offset(0.9, 0.5), 4)
    2.1972
    >>> dustbin_logit_offset(0.5, 0.5)
    0.0
    """
    for name, share in [
        ("true_rest_share", true_rest_share),
        ("sampled_rest_share", sampled_rest_share),
    ]:
        if not 0 < share < 1:
            raise ValueError(f"{name} must be strictly between 0 and 1; got {share!r}.")
    rest = math.log(true_rest_share / sampled_rest_share)
    subset = math.log((1 - true_rest_share) / (1 - sampled_rest_share))
    return rest - subset


def combine_predictions(
    generalist_proba,
    specialist_proba,
    class_subsets,
    active,
    *,
    tol=1e-6,
    max_iter=200,
    return_n_iter=False,
):
    """One distribution per row that agrees with the generalist and the specialists.

    Per row, the distribution ``q`` over all classes minimising::

        KL(p_g || q) + sum over the active specialists m of KL(p_m || C_m q)

    where ``C_m q`` collapses ``q`` onto specialist ``m``'s classes plus a
    dustbin holding the sum of ``q`` over every other class (Hinton et al.
    2015, section 5). Rows with no active specialist get ``p_g`` back.

    The objective is convex in ``q``; it is the negative log-likelihood of
    a multinomial observed fully (``p_g``) and in coarsened form (each
    ``p_m`` sees the dustbin's classes only as one group). It is minimised
    by the EM iteration for that model, which needs no step size, keeps
    ``q`` on the simplex, and decreases the objective at every step::

        q <- (p_g + sum_m q * p_m[bucket] / (C_m q)[bucket]) / (1 + n_active)

    It runs batched over rows in float64 torch and stops when no
    probability changes by more than ``tol``, or after ``max_iter`` steps.
    With one active specialist the first step already lands on the
    minimum: the mean of ``p_g`` and ``p_m``, with ``p_m``'s dustbin shared
    among its classes in the proportions of ``p_g``. Overlapping
    specialists (``top_n > 1`` or overlapping subsets) take more steps.

    Parameters
    ----------
    generalist_proba : array-like of shape (n_samples, n_classes)
        The generalist's probabilities ``p_g``.
    specialist_proba : list of array-like of shape (n_samples, len(subset) + 1)
        Per specialist, its probabilities over its subset's classes (in the
        order of ``class_subsets``) and then the dustbin. Rows where the
        specialist is not active are ignored (they may hold NaN).
    class_subsets : list of array-like of int
        Per specialist, the column indices of its classes.
    active : array-like of bool, shape (n_samples, n_specialists)
        Which specialists speak for which rows.
    tol : float, default=1e-6
        Stop when the largest change of a probability is below this.
    max_iter : int, default=200
        Most EM steps.
    return_n_iter : bool, default=False
        Also return the number of steps taken (the largest over the
        chunks of rows).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The combined distributions, rows summing to 1.
    n_iter : int
        Steps taken; only with ``return_n_iter=True``.

    Examples
    --------
    The generalist slightly prefers class 0; a specialist for classes 0
    and 1 is sure it is 1:

    >>> import numpy as np
    >>> from skdistill.specialists import combine_predictions
    >>> p_g = np.array([[0.5, 0.4, 0.1]])
    >>> p_m = np.array([[0.05, 0.85, 0.1]])  # classes 0, 1, then the dustbin {2}
    >>> q = combine_predictions(p_g, [p_m], [[0, 1]], np.array([[True]]))
    >>> q.round(3)
    array([[0.275, 0.625, 0.1  ]])
    """
    p_g = check_array(generalist_proba, dtype=np.float64)
    n_samples, n_classes = p_g.shape
    active = np.asarray(active, dtype=bool).reshape(n_samples, len(class_subsets))
    if len(specialist_proba) != len(class_subsets):
        raise ValueError(
            f"Got {len(specialist_proba)} specialists' probabilities for "
            f"{len(class_subsets)} class subsets."
        )
    buckets = [class_buckets(subset, n_classes) for subset in class_subsets]
    result = np.empty_like(p_g)
    n_iter = 0
    for start in range(0, n_samples, COMBINE_CHUNK_SIZE):
        rows = slice(start, start + COMBINE_CHUNK_SIZE)
        pairs = _active_pairs(
            active[rows], buckets, [np.asarray(p)[rows] for p in specialist_proba]
        )
        result[rows], steps = _combine_chunk(p_g[rows], *pairs, tol=tol, max_iter=max_iter)
        n_iter = max(n_iter, steps)
    return (result, n_iter) if return_n_iter else result


def class_buckets(subset, n_classes):
    """Per class, its position in a specialist's outputs (the dustbin is last)."""
    subset = np.asarray(subset, dtype=np.intp)
    bucket = np.full(n_classes, len(subset), dtype=np.int64)
    bucket[subset] = np.arange(len(subset))
    return bucket


def _active_pairs(active, buckets, specialist_proba):
    """The (row, specialist) pairs that take part, as flat arrays.

    Returns the row of each pair, each class's bucket for that pair's
    specialist, and the specialist's probability of each class's bucket.
    """
    pair_rows, pair_buckets, pair_targets = [], [], []
    for m, bucket in enumerate(buckets):
        rows = np.flatnonzero(active[:, m])
        if not len(rows):
            continue
        proba = np.asarray(specialist_proba[m][rows], dtype=np.float64)
        pair_rows.append(rows)
        pair_buckets.append(np.broadcast_to(bucket, (len(rows), len(bucket))))
        pair_targets.append(proba[:, bucket])
    n_classes = len(buckets[0]) if buckets else 0
    if not pair_rows:
        return np.empty(0, np.int64), np.empty((0, n_classes), np.int64), np.empty((0, n_classes))
    return np.concatenate(pair_rows), np.concatenate(pair_buckets), np.concatenate(pair_targets)


def _combine_chunk(p_g, pair_rows, pair_buckets, pair_targets, *, tol, max_iter):
    """EM for one chunk of rows; returns the distributions and the steps taken."""
    p_g = torch.from_numpy(p_g)
    q = p_g.clamp(min=COMBINE_START_FLOOR)
    q = q / q.sum(dim=1, keepdim=True)
    if not len(pair_rows):
        return p_g.numpy(), 0
    rows = torch.from_numpy(pair_rows)
    buckets = torch.from_numpy(np.ascontiguousarray(pair_buckets))
    targets = torch.from_numpy(pair_targets)
    weight = 1.0 + torch.bincount(rows, minlength=len(p_g)).to(p_g.dtype)[:, None]
    n_buckets = int(buckets.max()) + 1
    tiny = torch.finfo(p_g.dtype).tiny
    for step in range(1, max_iter + 1):
        q_pairs = q[rows]
        bucket_mass = torch.zeros(len(rows), n_buckets, dtype=q.dtype).scatter_add_(
            1, buckets, q_pairs
        )
        # E-step: each specialist's bucket mass is shared among the bucket's
        # classes in proportion to the current q.
        shares = q_pairs * targets / bucket_mass.gather(1, buckets).clamp(min=tiny)
        q_new = p_g.index_add(0, rows, shares) / weight
        change = float((q_new - q).abs().max())
        q = q_new
        if change < tol:
            return q.numpy(), step
    return q.numpy(), max_iter
