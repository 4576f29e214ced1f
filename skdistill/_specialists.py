"""``SpecialistEnsemble``: a generalist student and specialists for confusable classes.

Hinton, Vinyals & Dean (2015, section 5): when a problem has many classes
and a small student confuses some of them with each other, distil one
*generalist* over every class, then *specialists*, each for one subset of
classes the generalist confuses plus a "dustbin" class that stands for
every other class. At prediction time the generalist's most probable
classes choose the specialists to consult, and one distribution over all
classes is fitted to agree with the generalist and with every consulted
specialist. The mathematics of each step is in ``_specialist_math``.
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
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import TeacherMixin
from ._classifier import DistilledClassifier
from ._losses import ClassificationTargets, classification_criterion
from ._predict import predict_logits, softmax_rows
from ._preprocessing import student_features
from ._specialist_math import (
    class_buckets,
    combine_predictions,
    confusable_class_subsets,
    dustbin_logit_offset,
)
from ._teacher_checks import as_teacher_list, is_fitted, teacher_classes
from ._teacher_labels import OutputsMemo, teacher_logits
from ._training import (
    TrainingSettings,
    build_student,
    check_student_settings,
    finish_training,
    fit_net,
    label_indices,
    seeded_torch,
)
from .utils._docstring import Substitution, shared_docs
from .utils.fixes import Interval, StrOptions, _fit_context

__all__ = ["SpecialistEnsemble"]

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
    "cuda_graph",
    "device",
    "random_state",
    "verbose",
)


@Substitution(
    **shared_docs(
        *(name for name in _GENERALIST_PARAMS if name not in ("teacher", "alpha", "random_state"))
    )
)
class SpecialistEnsemble(ClassifierMixin, TeacherMixin, BaseEstimator):
    """A distilled generalist plus specialists for the classes it confuses.

    Hinton, Vinyals & Dean (2015, section 5), on a teacher that can be any
    classifier :class:`~skdistill.DistilledClassifier` accepts. Read more in
    the :ref:`User Guide <specialists>`.

    1. **Generalist.** A :class:`~skdistill.DistilledClassifier` is
       distilled from the teacher over every class.
    2. **Class subsets.** The columns of the covariance matrix of the
       generalist's probabilities on the training rows (scaled to unit
       variance per class) are clustered with k-means
       (:func:`~skdistill.specialists.confusable_class_subsets`). The generalist's
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
       is found (:func:`~skdistill.specialists.combine_predictions`); rows with no specialist keep
       the generalist's distribution.

    The rebalanced training rows are chosen by the teacher's top class, a
    function of the features: the targets of a row (soft, and hard when y
    is given) stay what they were, so the specialist's dustbin needs no
    correction. The paper's
    correction (the prior shift of rows sampled by label,
    :func:`~skdistill.specialists.dustbin_logit_offset`) is available as
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
        Lets subsets overlap; see :func:`~skdistill.specialists.confusable_class_subsets`.
    top_n : int, default=1
        A row consults the specialists of its ``top_n`` most probable
        classes according to the generalist.
    dustbin_correction : {"none", "prior"}, default="none"
        ``"prior"`` adds :func:`~skdistill.specialists.dustbin_logit_offset` to each specialist's
        dustbin logit at prediction time, as the paper does for training
        rows sampled by label; see above why ``"none"`` is right here.
    combine_tol : float, default=1e-6
        Tolerance of :func:`~skdistill.specialists.combine_predictions`.
    combine_max_iter : int, default=200
        Most steps of :func:`~skdistill.specialists.combine_predictions`.
    n_jobs : int or None, default=None
        Specialists trained in parallel, in joblib worker processes; for
        CPU students. With joblib's threading backend the fits take turns
        (each owns torch's global generator while it trains), so threads
        give the same model but no speed-up.
    {teacher_weights}
    {teacher_averaging}
    {temperature}
    alpha : float, default=0.9
        Weight in ``[0, 1]`` of the soft-target term; ``1 - alpha`` weighs
        the hard labels.
    {loss}
    {student}
    {hidden_layer_sizes}
    {max_epochs}
    {batch_size}
    {lr}
    {early_stopping}
    {validation_fraction}
    {n_iter_no_change}
    {tol}
    {proba_floor}
    {preprocessor}
    {memory}
    {cuda_graph}
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the generalist (see ``generalist``), k-means, the
        specialists' training rows and their training.
    {verbose}

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
        temperature=2.0,
        alpha=0.9,
        loss="kl",
        student=None,
        hidden_layer_sizes=(256, 256),
        max_epochs=200,
        batch_size=256,
        lr=1e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        proba_floor="auto",
        preprocessor="auto",
        memory=None,
        cuda_graph="auto",
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
        self.cuda_graph = cuda_graph
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
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        self._check_ensemble_size(_n_classes_before_fit(self.teacher, y))
        template = self._generalist_template()
        check_student_settings(template.student, template.hidden_layer_sizes)
        rng = check_random_state(self.random_state)
        generalist, logits = self._fit_generalist(template, X, y, rng)
        validate_data(self, X, skip_check_array=True)
        classes = generalist.classes_
        self._check_ensemble_size(len(classes))
        X_student = student_features(generalist.preprocessor_, X)
        labels = None if y is None else label_indices(y, classes)

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
            self._specialist_job(generalist, X_student, logits, labels, subset, rng)
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

    def _fit_generalist(self, generalist, X, y, rng):
        """The fitted generalist, and the teacher's logits on X it was trained on.

        The generalist keeps the teacher's outputs in an
        :class:`~skdistill.teachers.OutputsMemo` while it fits, so the
        specialists read them back instead of running the teacher again.
        """
        if generalist.random_state is None:
            generalist.set_params(random_state=_draw_seed(rng))
        memory = generalist.memory
        memo = OutputsMemo(memory)
        generalist.set_params(teacher=self.teacher, memory=memo)
        try:
            generalist.fit(X, y)
            logits = teacher_logits(
                generalist.teacher_,
                X,
                proba_floor=generalist.proba_floor,
                memory=memo,
                n_jobs=generalist.n_jobs,
            )
        finally:
            generalist.set_params(memory=memory)
        return generalist, logits

    def predict_proba(self, X):
        """Return probabilities over all the teacher's classes, generalist and specialists combined.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows of the same kind as ``fit``'s X; the generalist's
            ``preprocessor_``, if any, turns them into the features of the
            generalist and the specialists.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X_student = student_features(self.generalist_.preprocessor_, X)  # checks X too
        validate_data(self, X, reset=False, skip_check_array=True)
        X = X_student
        generalist_proba = _net_proba(self.generalist_.student_, X)
        subsets = [label_indices(subset, self.classes_) for subset in self.class_subsets_]
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
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows of the same kind as ``fit``'s X, as for :meth:`predict_proba`.

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

    def _specialist_job(self, generalist, X, logits, labels, subset, rng):
        """The arguments of :func:`_train_net` for one specialist, and its dustbin offset."""
        in_subset = np.isin(np.argmax(logits, axis=1), subset)
        rows = _rebalanced_rows(in_subset, rng)
        seed = _draw_seed(rng)
        net = build_student(
            TrainingSettings.from_params(generalist.get_params(deep=False)),
            X[rows],
            len(subset) + 1,
            criterion=classification_criterion(
                generalist.temperature, generalist.alpha, generalist.loss
            ),
            seed=seed,
            device=generalist.student_.device,
            module=_specialist_module(
                generalist.student_.module_, subset, len(generalist.classes_)
            ),
            strata=ClassificationTargets.strata,
        )
        targets = _specialist_targets(
            logits[rows], subset, None if labels is None else labels[rows]
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
    return softmax_rows(predict_logits(net.module_, X, net.device))


def _rebalanced_rows(in_subset, rng):
    """Every row of the subset and as many drawn from the others, sorted."""
    inside = np.flatnonzero(in_subset)
    outside = np.flatnonzero(~in_subset)
    n_drawn = min(len(outside), max(len(inside), 1))
    drawn = rng.choice(outside, size=n_drawn, replace=False)
    return np.sort(np.concatenate([inside, drawn]))


def _specialist_targets(logits, subset, labels):
    """Packed targets over the subset plus a dustbin, from the teacher's logits.

    The dustbin's logit is ``logsumexp`` of the other classes' log
    probabilities, so its probability is the sum of theirs. A hard label
    outside the subset becomes the dustbin.
    """
    log_proba = log_softmax(logits.astype(np.float64), axis=1)
    rest = np.setdiff1d(np.arange(logits.shape[1]), subset)
    collapsed = np.column_stack([log_proba[:, subset], logsumexp(log_proba[:, rest], axis=1)])
    if labels is not None:
        labels = class_buckets(subset, logits.shape[1])[labels]
    return ClassificationTargets.pack(collapsed, labels)


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
    with seeded_torch(seed, net.device):
        fit_net(net, X, targets)
    return finish_training(net)
