"""``SpecialistEnsemble``: a generalist student and specialists for confusable classes.

Hinton, Vinyals & Dean (2015, section 5): when a problem has many classes
and a small student confuses some of them with each other, distil one
*generalist* over every class, then *specialists*, each for one subset of
classes the generalist confuses plus a "dustbin" class that stands for
every other class. At prediction time the generalist's most probable
classes choose the specialists to consult, and one distribution over all
classes is fitted to agree with the generalist and with every consulted
specialist.

The three steps are public functions, so each can be used and tested on
its own: :func:`confusable_class_subsets` (which classes go together),
:func:`dustbin_logit_offset` (undoing a specialist's rebalanced training
set, when its targets were shifted by it) and :func:`combine_predictions`
(the combined distribution).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from .base import TeacherMixin
from .classifier import DistilledClassifier, _label_indices
from .distiller import _seeded_torch
from .losses import pack_targets
from .student import predict_logits
from .teachers import as_teacher_list, is_fitted, teacher_classes

__all__ = [
    "SpecialistEnsemble",
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
    """Groups of classes that a model confuses with each other.

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
    buckets = [_class_buckets(subset, n_classes) for subset in class_subsets]
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


def _class_buckets(subset, n_classes):
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


#: DistilledClassifier's parameters that SpecialistEnsemble takes too, to
#: build its generalist (and so its specialists) with. Not taken: the
#: transfer set, whose synthetic rows would need the specialists' own
#: rebalancing.
_GENERALIST_PARAMS = (
    "teacher",
    "teacher_weights",
    "teacher_averaging",
    "temperature",
    "alpha",
    "loss",
    "student",
    "hidden_layer_sizes",
    "max_epochs",
    "batch_size",
    "lr",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "tol",
    "proba_floor",
    "preprocessor",
    "memory",
    "device",
    "random_state",
    "verbose",
)


class SpecialistEnsemble(ClassifierMixin, TeacherMixin, BaseEstimator):
    """A distilled generalist plus specialists for the classes it confuses.

    Hinton, Vinyals & Dean (2015, section 5), on a teacher that can be any
    classifier :class:`~skdistill.DistilledClassifier` accepts:

    1. **Generalist.** A :class:`~skdistill.DistilledClassifier` is
       distilled from the teacher over every class.
    2. **Class subsets.** The columns of the covariance matrix of the
       generalist's probabilities on the training rows (scaled to unit
       variance per class) are clustered with k-means
       (:func:`confusable_class_subsets`). The generalist's
       predictions, not the teacher's, as in the paper: the specialists
       are there to resolve the generalist's confusions, which are the
       ones consulted at prediction time; and a teacher scored on its own
       training rows (a forest) is over-confident, which hides the
       confusions. Clusters of one class, or of every class, are dropped.
    3. **Specialists.** One per subset: a student with the generalist's
       architecture whose outputs are the subset's classes plus a dustbin.
       Its soft targets are the teacher's probabilities on the subset and
       their remainder on the dustbin. It is trained on every row whose
       teacher's top class is in the subset, plus as many rows drawn at
       random from the others (half and half, as in the paper), starting
       from the generalist's weights: every hidden layer is copied, the
       output rows of the subset's classes too, and the dustbin's row is
       the mean of the other classes' rows with ``log(n_other)`` added to
       its bias, so the dustbin logit starts at ``mean + log n``, the
       value ``logsumexp`` of the other logits takes when they are equal
       (and a lower bound on it otherwise): a linear layer cannot output
       ``logsumexp`` itself, and this is the linear choice that is exact
       when the generalist has no preference among the other classes.
    4. **Prediction.** Per row, the specialists whose subset holds one of
       the generalist's ``top_n`` most probable classes are consulted, and
       the distribution minimising ``KL(p_g || q) + sum_m KL(p_m || C_m q)``
       is found (:func:`combine_predictions`); rows with no specialist keep
       the generalist's distribution.

    The rebalanced training rows are chosen by the teacher's top class, a
    function of the features: the targets of a row (soft, and hard when y
    is given) stay what they were, so the specialist's dustbin needs no
    correction. The paper's
    correction (the prior shift of rows sampled by label,
    :func:`dustbin_logit_offset`) is available as
    ``dustbin_correction="prior"``.

    Parameters
    ----------
    teacher : classifier or list of classifiers
        As for :class:`~skdistill.DistilledClassifier`: a fitted classifier
        (kept fitted and shared through ``clone``), an unfitted one (fitted
        on a clone on ``(X, y)``), or a list of them.
    n_specialists : int
        Number of class subsets k-means forms, at most the number of the
        teacher's classes; one specialist per subset of at least two
        classes and fewer than all of them (``class_subsets_`` tells how
        many were fitted).
    generalist : DistilledClassifier or None, default=None
        Template of the generalist. ``None`` builds one from this
        estimator's student and training parameters. Given, a clone of it
        is fitted with this estimator's teacher in place of its own, and
        its student and training parameters then apply to the generalist
        and the specialists alike: this estimator's parameters shared with
        DistilledClassifier (``teacher_weights`` to ``verbose`` below) are
        not used, and its ``random_state`` seeds the generalist only when
        the template has none. The object itself is never fitted nor
        modified.
    overlap_correlation : float in (0, 1] or None, default=None
        Lets subsets overlap; see :func:`confusable_class_subsets`.
    top_n : int, default=1
        A row consults the specialists of its ``top_n`` most probable
        classes according to the generalist.
    dustbin_correction : {"none", "prior"}, default="none"
        ``"prior"`` adds :func:`dustbin_logit_offset` to each specialist's
        dustbin logit at prediction time, as the paper does for training
        rows sampled by label; see above why ``"none"`` is right here.
    combine_tol : float, default=1e-6
        Tolerance of :func:`combine_predictions`.
    combine_max_iter : int, default=200
        Most steps of :func:`combine_predictions`.
    n_jobs : int or None, default=None
        Specialists trained in parallel, in joblib worker processes; for
        CPU students. With joblib's threading backend the fits take turns
        (each owns torch's global generator while it trains), so threads
        give the same model but no speed-up.
    teacher_weights, teacher_averaging, temperature, alpha, loss, student, \
hidden_layer_sizes, max_epochs, batch_size, lr, early_stopping, \
validation_fraction, n_iter_no_change, tol, proba_floor, \
preprocessor, memory, device, verbose
        As for :class:`~skdistill.DistilledClassifier`, for the generalist
        and the specialists alike (unless ``generalist`` is given).
    random_state : int, RandomState instance or None, default=None
        Seeds the generalist (see ``generalist``), k-means, the
        specialists' training rows and their training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The teacher's classes.
    teacher_ : classifier
        The fitted teacher used (the generalist's ``teacher_``).
    generalist_ : DistilledClassifier
        The fitted generalist.
    class_subsets_ : list of ndarray
        Per specialist, its class labels (values from ``classes_``).
    specialists_ : list of skorch.NeuralNet
        The fitted specialists; specialist ``i`` outputs logits for
        ``class_subsets_[i]`` in that order, then its dustbin.
    dustbin_offsets_ : ndarray of shape (n_specialists_fitted,)
        What is added to each specialist's dustbin logit at prediction
        time (zeros unless ``dustbin_correction="prior"``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    skdistill.DistilledClassifier : The generalist alone.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a
       Neural Network", 2015, section 5.

    Examples
    --------
    Versicolor and virginica are the iris classes that get confused:

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill.specialists import SpecialistEnsemble
    >>> iris = load_iris()
    >>> X, y = iris.data, iris.target_names[iris.target]
    >>> forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    >>> ensemble = SpecialistEnsemble(forest, n_specialists=2, hidden_layer_sizes=(8,),
    ...                               max_epochs=30, batch_size=32, lr=0.01,
    ...                               random_state=0).fit(X, y)
    >>> ensemble.class_subsets_
    [array(['versicolor', 'virginica'], dtype='<U10')]
    >>> ensemble.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool(ensemble.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **{name: DistilledClassifier._parameter_constraints[name] for name in _GENERALIST_PARAMS},
        "n_specialists": [Interval(Integral, 1, None, closed="left")],
        "generalist": [None, DistilledClassifier],
        "overlap_correlation": [None, Interval(Real, 0, 1, closed="right")],
        "top_n": [Interval(Integral, 1, None, closed="left")],
        "dustbin_correction": [StrOptions({"none", "prior"})],
        "combine_tol": [Interval(Real, 0, None, closed="neither")],
        "combine_max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [None, Integral],
    }

    def __init__(
        self,
        teacher,
        *,
        n_specialists,
        generalist=None,
        overlap_correlation=None,
        top_n=1,
        dustbin_correction="none",
        combine_tol=1e-6,
        combine_max_iter=200,
        n_jobs=None,
        teacher_weights=None,
        teacher_averaging="arithmetic",
        temperature=4.0,
        alpha=0.9,
        loss="kl",
        student=None,
        hidden_layer_sizes=(256, 256),
        max_epochs=200,
        batch_size=256,
        lr=1e-3,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        proba_floor="auto",
        preprocessor="auto",
        memory=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.teacher = teacher
        self.n_specialists = n_specialists
        self.generalist = generalist
        self.overlap_correlation = overlap_correlation
        self.top_n = top_n
        self.dustbin_correction = dustbin_correction
        self.combine_tol = combine_tol
        self.combine_max_iter = combine_max_iter
        self.n_jobs = n_jobs
        self.teacher_weights = teacher_weights
        self.teacher_averaging = teacher_averaging
        self.temperature = temperature
        self.alpha = alpha
        self.loss = loss
        self.student = student
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.proba_floor = proba_floor
        self.preprocessor = preprocessor
        self.memory = memory
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the generalist, find the class subsets, fit the specialists.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows, passed to the teacher as given.
        y : array-like of shape (n_samples,), default=None
            Hard labels, a subset of the teacher's classes; None to learn
            from a fitted teacher alone.

        Returns
        -------
        self : SpecialistEnsemble
            The fitted estimator.
        """
        template = self._generalist_template()
        template._validate_params()
        template._check_training_params()
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        self._check_ensemble_size(_n_classes_before_fit(self.teacher, y))
        rng = check_random_state(self.random_state)
        if template.random_state is None:
            template.set_params(random_state=_draw_seed(rng))
        # The generalist checks X and y, fits an unfitted teacher, and
        # preprocesses X for its student; the specialists reuse all three.
        generalist = template.set_params(teacher=self.teacher)
        logits = generalist._fit(X, y)  # the teacher's outputs, computed once for all
        validate_data(self, X, skip_check_array=True)
        classes = generalist.classes_
        self._check_ensemble_size(len(classes))
        X_student = generalist._student_features(X)
        label_indices = None if y is None else _label_indices(y, classes)

        subsets = confusable_class_subsets(
            _net_proba(generalist.student_, X_student),
            self.n_specialists,
            overlap_correlation=self.overlap_correlation,
            random_state=_draw_seed(rng),
        )
        if not subsets:
            warnings.warn(
                f"None of the {self.n_specialists} groups of classes k-means formed "
                "holds at least two classes and not all of them: no specialist is "
                "fitted, and the ensemble predicts as its generalist.",
                UserWarning,
                stacklevel=2,
            )
        jobs = [
            self._specialist_job(generalist, X_student, logits, label_indices, subset, rng)
            for subset in subsets
        ]
        # Processes, not threads: each fit seeds torch's global generator.
        fitted = Parallel(n_jobs=self.n_jobs, prefer="processes")(
            delayed(_train_net)(*args) for args, _ in jobs
        )

        self.classes_ = classes
        self.teacher_ = generalist.teacher_
        self.generalist_ = generalist
        self.class_subsets_ = [classes[subset] for subset in subsets]
        self.specialists_ = fitted
        self.dustbin_offsets_ = np.array([offset for _, offset in jobs], dtype=np.float64)
        return self

    def predict_proba(self, X):
        """Probabilities over all of the teacher's classes, generalist and specialists combined.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X_student = self.generalist_._student_features(X)  # checks X as an array too
        validate_data(self, X, reset=False, skip_check_array=True)
        X = X_student
        generalist_proba = _net_proba(self.generalist_.student_, X)
        subsets = [_label_indices(subset, self.classes_) for subset in self.class_subsets_]
        active = self._active_specialists(generalist_proba, subsets)
        specialist_proba = [self._specialist_proba(m, X, active[:, m]) for m in range(len(subsets))]
        return combine_predictions(
            generalist_proba,
            specialist_proba,
            subsets,
            active,
            tol=self.combine_tol,
            max_iter=self.combine_max_iter,
        )

    def predict(self, X):
        """Most probable class of the combined distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def _generalist_template(self):
        if self.generalist is not None:
            return clone(self.generalist)
        return DistilledClassifier(**{name: getattr(self, name) for name in _GENERALIST_PARAMS})

    def _check_ensemble_size(self, n_classes):
        if n_classes is None:
            return
        if self.n_specialists > n_classes:
            raise ValueError(
                f"n_specialists={self.n_specialists} is larger than the teacher's "
                f"{n_classes} classes: each specialist needs a subset of at least "
                "two classes, and k-means cannot form more subsets than classes."
            )
        if self.top_n > n_classes:
            raise ValueError(
                f"top_n={self.top_n} is larger than the teacher's {n_classes} classes."
            )

    def _specialist_job(self, generalist, X, logits, label_indices, subset, rng):
        """The arguments of :func:`_train_net` for one specialist, and its dustbin offset."""
        in_subset = np.isin(np.argmax(logits, axis=1), subset)
        rows = _rebalanced_rows(in_subset, rng)
        seed = _draw_seed(rng)
        device = generalist.student_.device
        net = generalist._build_student(X[rows], len(subset) + 1, None, seed, device)
        module = _specialist_module(generalist.student_.module_, subset, len(generalist.classes_))
        if module is not None:
            # skorch refuses set_params(module=...) on a torch module, so the
            # net is rebuilt with every other setting as it was.
            net = type(net)(**{**net.get_params(deep=False), "module": module})
        targets = _specialist_targets(
            logits[rows], subset, None if label_indices is None else label_indices[rows]
        )
        offset = 0.0
        if self.dustbin_correction == "prior":
            n_rest = np.count_nonzero(~in_subset)
            offset = dustbin_logit_offset(
                _open_share(n_rest, len(X)),
                _open_share(np.count_nonzero(~in_subset[rows]), len(rows)),
            )
        return (net, X[rows], targets, seed), offset

    def _active_specialists(self, generalist_proba, subsets):
        """(n_samples, n_specialists) bool: subsets holding one of a row's top classes."""
        n_classes = generalist_proba.shape[1]
        membership = np.zeros((n_classes, len(subsets)), dtype=bool)
        for m, subset in enumerate(subsets):
            membership[subset, m] = True
        top = np.argsort(-generalist_proba, axis=1, kind="stable")[:, : self.top_n]
        return membership[top].any(axis=1)

    def _specialist_proba(self, m, X, rows):
        """Specialist m's probabilities on the given rows (NaN elsewhere)."""
        net = self.specialists_[m]
        n_outputs = len(self.class_subsets_[m]) + 1
        proba = np.full((len(X), n_outputs), np.nan)
        if rows.any():
            logits = predict_logits(net.module_, X[rows], net.device).astype(np.float64)
            logits[:, -1] += self.dustbin_offsets_[m]
            proba[rows] = softmax(logits, axis=1)
        return proba


def _n_classes_before_fit(teacher, y):
    """The number of classes the generalist will have, known without training.

    None when it cannot be known yet (an invalid teacher, or an unfitted one
    and no y): the generalist's fit then reports the problem.
    """
    try:
        teachers = as_teacher_list(teacher)
        if teachers and all(map(is_fitted, teachers)):
            return len(teacher_classes(teachers))
    except (TypeError, ValueError, AttributeError):
        return None
    return None if y is None else len(np.unique(y))


def _draw_seed(rng):
    return rng.randint(np.iinfo(np.int32).max)


def _open_share(count, total):
    """count / total, kept inside (0, 1) by half a row either way."""
    return min(max(count, 0.5), total - 0.5) / total


def _net_proba(net, X):
    return softmax(predict_logits(net.module_, X, net.device).astype(np.float64), axis=1)


def _rebalanced_rows(in_subset, rng):
    """Every row of the subset and as many drawn from the others, sorted."""
    inside = np.flatnonzero(in_subset)
    outside = np.flatnonzero(~in_subset)
    n_drawn = min(len(outside), max(len(inside), 1))
    drawn = rng.choice(outside, size=n_drawn, replace=False)
    return np.sort(np.concatenate([inside, drawn]))


def _specialist_targets(logits, subset, label_indices):
    """Packed targets over the subset plus a dustbin, from the teacher's logits.

    The dustbin's logit is ``logsumexp`` of the other classes' log
    probabilities, so its probability is the sum of theirs. A hard label
    outside the subset becomes the dustbin.
    """
    log_proba = log_softmax(logits.astype(np.float64), axis=1)
    rest = np.setdiff1d(np.arange(logits.shape[1]), subset)
    collapsed = np.column_stack([log_proba[:, subset], logsumexp(log_proba[:, rest], axis=1)])
    labels = None
    if label_indices is not None:
        labels = _class_buckets(subset, logits.shape[1])[label_indices]
    return pack_targets(collapsed, labels)


def _specialist_module(generalist_module, subset, n_classes):
    """A copy of the generalist with its output layer cut down to subset + dustbin.

    The output layer is the generalist's last ``nn.Linear`` with
    ``n_classes`` outputs. None when there is none: the specialist then
    starts from fresh weights. A fixed ``logit_bias`` the generalist adds
    after that layer (its absent-class correction) is folded into the new
    layer's bias, so the specialist starts from the generalist's logits
    and can go on learning them.
    """
    module = copy.deepcopy(generalist_module)
    found = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear) and child.out_features == n_classes
    ]
    if not found:
        return None
    parent, name, head = found[-1]
    rest = torch.as_tensor(np.setdiff1d(np.arange(n_classes), subset))
    subset = torch.as_tensor(np.asarray(subset))
    like = dict(device=head.weight.device, dtype=head.weight.dtype)
    bias = _pop_logit_bias(module, n_classes, len(subset) + 1, like)
    if head.bias is not None:
        bias = bias + head.bias.detach()
    new_head = torch.nn.Linear(head.in_features, len(subset) + 1, **like)
    with torch.no_grad():
        new_head.weight[:-1] = head.weight[subset]
        new_head.weight[-1] = head.weight[rest].mean(dim=0)
        new_head.bias[:-1] = bias[subset]
        new_head.bias[-1] = bias[rest].mean() + math.log(len(rest))
    setattr(parent, name, new_head)
    return module


def _pop_logit_bias(module, n_classes, n_outputs, like):
    """The module's fixed ``logit_bias`` over the classes (zeros if none), reset for n_outputs."""
    logit_bias = getattr(module, "logit_bias", None)
    if not isinstance(logit_bias, torch.Tensor) or logit_bias.shape != (n_classes,):
        return torch.zeros(n_classes, **like)
    module.logit_bias = torch.zeros(n_outputs, **like)
    return logit_bias.detach().to(**like)


def _train_net(net, X, targets, seed):
    """Fit one specialist (run in a joblib worker when n_jobs > 1)."""
    # joblib hands large arrays to workers as read-only memory maps, which
    # torch warns about when wrapping them.
    X, targets = np.require(X, requirements="W"), np.require(targets, requirements="W")
    with _seeded_torch(seed, net.device):
        net.fit(X, targets)
    return net
