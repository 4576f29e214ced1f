"""Teachers: checking them, fitting unfitted ones on a clone, and turning
their outputs into the logits that soft targets are made of.

A teacher is any fitted classifier with ``classes_`` and either
``predict_proba`` or ``decision_function`` (an estimator, a Pipeline, a
``FrozenEstimator``, a skorch classifier), or a list of them (an ensemble
whose probabilities are averaged, as scikit-learn's soft voting does).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
from contextlib import contextmanager

import numpy as np
import torch
from joblib import Parallel, delayed
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils import _safe_indexing, gen_batches
from sklearn.utils.validation import check_is_fitted, check_memory, has_fit_parameter

from .student import module_device

__all__ = [
    "TeacherEnsemble",
    "TeacherLogits",
    "normalised_weights",
    "teacher_predictions",
    "as_single_teacher",
    "check_teacher_list",
    "fit_teachers",
    "is_fitted",
    "resolve_proba_floor",
    "teacher_classes",
    "teacher_logits",
    "teacher_proba",
]

#: Rows sent to a teacher at once: bounds the memory of its intermediate
#: results (a forest's per-tree probabilities) whatever the size of X.
TEACHER_BATCH_SIZE = 10_000

#: With ``proba_floor="auto"`` an exact zero probability is replaced by this
#: fraction of the smallest positive probability the teacher gave on the
#: rows: just below anything the teacher can express, so that no real
#: probability, however small, is changed (see ``resolve_proba_floor``)...
AUTO_FLOOR_FRACTION = 0.5
#: ...but never above this: a teacher whose outputs are all 0 or 1 (a fully
#: grown decision tree, 1-NN) would otherwise get a floor of 0.5 and nearly
#: uniform soft targets. A floor of 1e-3 did as well as the data-driven one
#: on letter (benchmarks/results/defaults.md, section 3).
AUTO_FLOOR_MAX = 1e-3


def is_fitted(estimator):
    """Whether ``estimator`` is a fitted estimator, by scikit-learn's rules.

    Parameters
    ----------
    estimator : object
        Any estimator.

    Returns
    -------
    fitted : bool

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import is_fitted
    >>> is_fitted(LogisticRegression())
    False
    >>> is_fitted(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    True
    """
    if not hasattr(estimator, "fit"):
        return True  # it cannot be fitted, so it is used as it is
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def as_teacher_list(teacher):
    """The teacher parameter as a list of estimators (one for a single teacher)."""
    if isinstance(teacher, (list, tuple)):
        return list(teacher)
    return [teacher]


def check_teacher_list(teacher, kind="classifier"):
    """Check the ``teacher`` parameter before any work is done.

    Parameters
    ----------
    teacher : estimator or list of estimators
        The ``teacher`` parameter of a distilled estimator.
    kind : {"classifier", "regressor"}, default="classifier"
        What the teachers must be: classifiers with ``predict_proba`` or
        ``decision_function``, or regressors with ``predict``.

    Returns
    -------
    teachers : list of estimators
        The teacher(s), as a list.

    Raises
    ------
    ValueError
        For an empty list, or for an estimator of the other kind.
    TypeError
        For an object without the methods the kind needs.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression, Ridge
    >>> from skdistill.teachers import check_teacher_list
    >>> check_teacher_list(LogisticRegression())
    [LogisticRegression()]
    >>> check_teacher_list([Ridge(), Ridge(alpha=2.0)], kind="regressor")
    [Ridge(), Ridge(alpha=2.0)]
    """
    other, distiller = _OTHER_KIND[kind]
    teachers = as_teacher_list(teacher)
    if not teachers:
        raise ValueError(
            f"The teacher parameter is an empty list; pass a {kind} or a non-empty list of {kind}s."
        )
    for position, estimator in enumerate(teachers):
        where = "teacher" if len(teachers) == 1 else f"teacher[{position}]"
        if isinstance(estimator, type):
            raise TypeError(
                f"{where} is the class {estimator.__name__}, not an estimator; "
                f"pass an instance, e.g. {estimator.__name__}()."
            )
        if _estimator_type(estimator) == other:
            raise ValueError(
                f"{where} is a {other} ({type(estimator).__name__}); {distiller} "
                f"needs a {kind} teacher."
            )
        if not _has_outputs(estimator, kind):
            needs = (
                "a classifier with predict_proba or decision_function"
                if kind == "classifier"
                else "a regressor with predict"
            )
            raise TypeError(f"{where} must be {needs}; got {type(estimator).__name__}.")
    return teachers


#: For each kind of teacher: the other kind, and the distiller that takes it.
_OTHER_KIND = {
    "classifier": ("regressor", "DistilledClassifier"),
    "regressor": ("classifier", "DistilledRegressor"),
}


def _has_outputs(estimator, kind):
    if kind == "regressor":
        return hasattr(estimator, "predict")
    has_output = hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")
    return has_output and (
        _estimator_type(estimator) == "classifier" or hasattr(estimator, "classes_")
    )


def _estimator_type(estimator):
    """ "classifier", "regressor" or None, also for objects without tags."""
    try:
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
    except AttributeError:  # not a scikit-learn estimator: judged by its methods
        pass
    return None


def fit_teachers(teachers, X, y, sample_weight=None, estimator_name="DistilledClassifier"):
    """Fitted teachers: fitted ones as they are, unfitted ones fitted on a clone.

    The user's objects are never modified: a fitted teacher is returned
    as is (shared, never refit), an unfitted one is cloned and the clone
    is fitted on ``(X, y)``.

    Parameters
    ----------
    teachers : list of estimators
        As returned by :func:`check_teacher_list`.
    X : array-like of shape (n_samples, n_features)
        Rows to fit unfitted teachers on.
    y : array-like of shape (n_samples,) or None
        Labels to fit unfitted teachers on.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the fit of an unfitted teacher that accepts it.
    estimator_name : str, default="DistilledClassifier"
        The distilled estimator, named in the error for a missing y.

    Returns
    -------
    fitted : list of estimators

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import fit_teachers
    >>> user_teacher = LogisticRegression()
    >>> [fitted] = fit_teachers([user_teacher], [[0.0], [1.0]], [0, 1])
    >>> fitted is user_teacher, hasattr(user_teacher, "coef_")
    (False, False)
    """
    fitted = []
    for estimator in teachers:
        if is_fitted(estimator):
            fitted.append(estimator)
            continue
        if y is None:
            raise ValueError(
                f"The teacher {type(estimator).__name__} is not fitted, so "
                f"{estimator_name} requires y to be passed, but the target y "
                "is None. Pass y, or a fitted teacher."
            )
        estimator = clone(estimator)
        fit_params = {}
        if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
            fit_params["sample_weight"] = sample_weight
        fitted.append(estimator.fit(X, y, **fit_params))
    return fitted


def teacher_classes(teachers):
    """The classes shared by every teacher, checked to agree.

    Parameters
    ----------
    teachers : list of fitted estimators

    Returns
    -------
    classes : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import teacher_classes
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], ["a", "b"])
    >>> teacher_classes([teacher]).tolist()
    ['a', 'b']
    """
    classes = None
    for position, estimator in enumerate(teachers):
        if not hasattr(estimator, "classes_"):
            raise TypeError(
                f"The teacher {type(estimator).__name__} has no classes_ attribute; "
                "a teacher must be a fitted classifier."
            )
        own = np.asarray(estimator.classes_)
        if own.ndim != 1:
            raise ValueError(
                f"The teacher {type(estimator).__name__} has classes_ of shape "
                f"{own.shape}; multi-output teachers are not supported."
            )
        if classes is None:
            classes = own
        elif own.shape != classes.shape or not np.array_equal(own, classes):
            raise ValueError(
                "The teachers disagree on classes_: teacher[0] has "
                f"{classes.tolist()} and teacher[{position}] has {own.tolist()}."
            )
    return classes


#: How deep ``_torch_modules`` looks into a teacher's attributes for torch
#: modules (a skorch net inside a Pipeline inside a FrozenEstimator is 3).
_MODULE_SEARCH_DEPTH = 6


def _torch_modules(obj, depth=_MODULE_SEARCH_DEPTH, seen=None):
    """Torch modules held by an estimator, its attributes and its steps."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        return [obj]
    if isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return []
    return [module for child in children for module in _torch_modules(child, depth - 1, seen)]


@contextmanager
def _train_modes_preserved(teacher):
    """Restore the train/eval flag of every torch module of the teacher.

    A skorch net's ``predict_proba`` switches its module to eval mode and
    leaves it there; the teacher belongs to the user and must come back
    exactly as it was.
    """
    modes = [
        (submodule, submodule.training)
        for module in _torch_modules(teacher)
        for submodule in module.modules()
    ]
    try:
        yield
    finally:
        for submodule, training in modes:
            submodule.training = training


def _raw_outputs(estimator, X):
    """One teacher's outputs on X: ("proba", p) or ("logits", z), float64."""
    with _train_modes_preserved(estimator):
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


class TeacherEnsemble(ClassifierMixin, BaseEstimator):
    """Fitted classifiers combined into one teacher, without refitting them.

    Probabilities are averaged, arithmetically (as scikit-learn's soft
    voting) or geometrically (a weighted mean of log-probabilities,
    renormalised). A member with only ``decision_function`` contributes
    the softmax of its scores.

    Parameters
    ----------
    estimators : list of fitted classifiers
        They must agree on ``classes_``.
    weights : array-like of shape (n_estimators,), default=None
        Weight of each member; equal weights when None.
    averaging : {"arithmetic", "geometric"}, default="arithmetic"

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from skdistill.teachers import TeacherEnsemble
    >>> X, y = load_iris(return_X_y=True)
    >>> members = [LogisticRegression(max_iter=500).fit(X, y), GaussianNB().fit(X, y)]
    >>> ensemble = TeacherEnsemble(members, weights=[2, 1], averaging="geometric")
    >>> ensemble.predict_proba(X[:2]).sum(axis=1)
    array([1., 1.])
    """

    def __init__(self, estimators, weights=None, averaging="arithmetic"):
        self.estimators = estimators
        self.weights = weights
        self.averaging = averaging

    def __sklearn_is_fitted__(self):
        return all(map(is_fitted, self.estimators))

    @property
    def classes_(self):
        return teacher_classes(self.estimators)

    @property
    def n_features_in_(self):
        counts = {getattr(estimator, "n_features_in_", None) for estimator in self.estimators}
        counts.discard(None)
        if len(counts) != 1:
            raise AttributeError("The members do not declare one n_features_in_.")
        return counts.pop()

    def predict_proba(self, X):
        """Averaged class probabilities of the members.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        weights = normalised_weights(self.weights, len(self.estimators))
        probas = []
        for estimator in self.estimators:
            kind, values = _raw_outputs(estimator, X)
            probas.append(values if kind == "proba" else softmax(values, axis=1))
        if self.averaging == "arithmetic":
            return np.tensordot(weights, probas, axes=1)
        with np.errstate(divide="ignore"):
            log_probas = np.log(probas)
        # A zero from a member with positive weight makes the geometric mean
        # zero; 0 * -inf from a zero-weight member must not make it NaN.
        log_mean = np.tensordot(
            weights, np.where(weights[:, None, None] > 0, log_probas, 0), axes=1
        )
        return softmax(log_mean, axis=1)

    def predict(self, X):
        """Most probable class of the averaged distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def normalised_weights(weights, n_teachers):
    """Teacher weights summing to one (equal ones for None), checked.

    Parameters
    ----------
    weights : array-like of shape (n_teachers,) or None
    n_teachers : int

    Returns
    -------
    weights : ndarray of shape (n_teachers,)

    Examples
    --------
    >>> from skdistill.teachers import normalised_weights
    >>> normalised_weights([3, 1], 2).tolist()
    [0.75, 0.25]
    """
    if weights is None:
        return np.full(n_teachers, 1 / n_teachers)
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (n_teachers,) or (array < 0).any() or not array.sum() > 0:
        raise ValueError(
            f"teacher_weights must be {n_teachers} non-negative numbers, "
            f"one per teacher, not all zero; got {weights!r}."
        )
    return array / array.sum()


def as_single_teacher(teacher, weights=None, averaging="arithmetic"):
    """One classifier: the teacher itself, or a :class:`TeacherEnsemble` of a list.

    Parameters
    ----------
    teacher : fitted classifier or list of fitted classifiers
    weights : array-like, default=None
        Member weights, for a list.
    averaging : {"arithmetic", "geometric"}, default="arithmetic"

    Returns
    -------
    teacher : fitted classifier

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import as_single_teacher
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> as_single_teacher(teacher) is teacher
    True
    >>> type(as_single_teacher([teacher, teacher])).__name__
    'TeacherEnsemble'
    """
    if isinstance(teacher, (list, tuple)):
        return TeacherEnsemble(list(teacher), weights=weights, averaging=averaging)
    return teacher


def resolve_proba_floor(proba_floor, smallest_positive):
    """The value that replaces exact zero probabilities.

    Parameters
    ----------
    proba_floor : "auto" or float
        A float is used as is. ``"auto"`` gives half the smallest
        probability the teacher expressed on the rows, so a class no tree
        voted for stays less likely than any class some tree voted for, and
        at most ``1e-3``, for teachers whose outputs are all 0 or 1.
    smallest_positive : float
        The smallest positive probability in the teacher's outputs.

    Returns
    -------
    floor : float

    Examples
    --------
    >>> from skdistill.teachers import resolve_proba_floor
    >>> resolve_proba_floor("auto", 0.0002)
    0.0001
    >>> resolve_proba_floor("auto", 1.0)  # one-hot outputs: the cap
    0.001
    >>> resolve_proba_floor(1e-6, 0.002)
    1e-06
    """
    if isinstance(proba_floor, numbers.Real):
        return float(proba_floor)
    floor = min(AUTO_FLOOR_FRACTION * smallest_positive, AUTO_FLOOR_MAX)
    # Never below float32's smallest normal number, so log stays finite.
    return max(floor, float(np.finfo(np.float32).tiny))


def _num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _batched_outputs(teacher, X, batch_size, n_jobs, method=_raw_outputs):
    """(rows, kind, values) of ``method(teacher, batch)`` for consecutive batches of X.

    With ``n_jobs`` the batches are labelled by joblib workers; results
    arrive as a generator, so only a few batches are held at once. Threads
    are preferred (a soft hint: ``joblib.parallel_config`` overrides it):
    tree and numpy predictions release the GIL, and worker processes would
    get a pickled copy of the teacher with every batch (81 MiB per batch for
    a 500-tree forest in ``benchmarks/scale.py``, and 2-5x slower than one
    process). Not for a teacher holding torch modules, whose train/eval
    flags are switched and restored around each call: threads sharing it
    would switch them under each other.
    """
    batches = list(gen_batches(_num_rows(X), batch_size))
    prefer = None if _torch_modules(teacher) else "threads"
    outputs = Parallel(n_jobs=n_jobs, return_as="generator", prefer=prefer)(
        delayed(method)(teacher, _safe_indexing(X, rows)) for rows in batches
    )
    for rows, (kind, values) in zip(batches, outputs, strict=True):
        yield rows, kind, values


def _compute_teacher_logits(teacher, X, proba_floor, batch_size, n_jobs=None):
    n_rows = _num_rows(X)
    logits = None
    smallest_positive = np.inf
    for rows, kind, values in _batched_outputs(teacher, X, batch_size, n_jobs):
        if kind == "proba":
            positive = values[values > 0]
            if positive.size:
                smallest_positive = min(smallest_positive, positive.min())
            with np.errstate(divide="ignore"):
                values = np.log(values)  # exact zeros become -inf, floored below
        if logits is None:
            logits = np.empty((n_rows, values.shape[1]), dtype=np.float32)
        logits[rows] = values
    # Only exact zeros (a forest where no tree voted for a class) are
    # floored; every positive probability keeps its value, however small,
    # since that is where the dark knowledge lives. The floor is known only
    # once every row is seen, hence this second, teacher-free pass.
    if kind == "proba":
        log_floor = np.log(resolve_proba_floor(proba_floor, smallest_positive))
        np.maximum(logits, np.float32(log_floor), out=logits)
    # Zero-mean rows: softmax ignores a per-row constant, and logit
    # matching (loss="logit_mse") compares centred logits.
    logits -= logits.mean(axis=1, keepdims=True)
    return logits


def teacher_logits(
    teacher, X, *, proba_floor="auto", batch_size=TEACHER_BATCH_SIZE, memory=None, n_jobs=None
):
    """The teacher's logits on X, computed once, in batches, as float32.

    ``predict_proba`` is used when the teacher has it (logits are
    ``log p``, with exact zeros replaced by ``proba_floor``), else
    ``decision_function`` (a binary score ``s`` gives logits
    ``(-s/2, s/2)``). A list of teachers is averaged as probabilities.
    Rows are centred to zero mean, which softmax ignores.

    Parameters
    ----------
    teacher : fitted classifier or list of fitted classifiers
        The teacher(s).
    X : array-like of shape (n_samples, n_features)
        Rows, passed to the teacher as they are (a DataFrame stays one).
    proba_floor : "auto" or float, default="auto"
        What replaces exact zero probabilities; see :func:`resolve_proba_floor`.
    batch_size : int, default=10_000
        Rows sent to the teacher at once, bounding memory.
    memory : str, joblib.Memory or None, default=None
        Caches the result on disk, keyed on the teacher, X and the floor,
        so that a search over temperature and alpha computes it once per
        fold.
    n_jobs : int or None, default=None
        Batches labelled in parallel by joblib workers (threads unless the
        teacher holds torch modules or ``joblib.parallel_config`` says
        otherwise); results are written into one float32 array as they
        arrive, so memory stays bounded whatever the number of rows.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes), dtype float32

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill.teachers import teacher_logits
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> logits = teacher_logits(forest, X[:3])
    >>> logits.shape, logits.dtype
    ((3, 3), dtype('float32'))
    """
    compute = check_memory(memory).cache(_compute_teacher_logits, ignore=["n_jobs"])
    return compute(as_single_teacher(teacher), X, proba_floor, batch_size, n_jobs=n_jobs)


def teacher_proba(teacher, X, *, batch_size=TEACHER_BATCH_SIZE):
    """The teacher's class probabilities on X (averaged over a list).

    Parameters
    ----------
    teacher : fitted classifier or list of fitted classifiers
    X : array-like of shape (n_samples, n_features)
    batch_size : int, default=10_000

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), dtype float64

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import teacher_proba
    >>> teacher = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> teacher_proba(teacher, [[0.0]]).shape
    (1, 2)
    """
    proba = None
    for rows, kind, values in _batched_outputs(as_single_teacher(teacher), X, batch_size, None):
        if kind == "logits":
            values = softmax(values, axis=1)
        if proba is None:
            proba = np.empty((_num_rows(X), values.shape[1]))
        proba[rows] = values
    return proba


def _predictions(estimator, X):
    """One regressor's predictions on X as a float64 (n_samples, n_outputs) array."""
    with _train_modes_preserved(estimator):
        values = np.asarray(estimator.predict(X), dtype=np.float64)
    return "predictions", values.reshape(len(values), -1)


def _compute_teacher_predictions(teachers, weights, X, batch_size, n_jobs=None):
    predictions = None
    for weight, estimator in zip(weights, teachers, strict=True):
        batches = _batched_outputs(estimator, X, batch_size, n_jobs, _predictions)
        for rows, _, values in batches:
            if predictions is None:
                predictions = np.zeros((_num_rows(X), values.shape[1]), dtype=np.float32)
            predictions[rows] += weight * values
    return predictions


def teacher_predictions(
    teacher, X, *, weights=None, batch_size=TEACHER_BATCH_SIZE, memory=None, n_jobs=None
):
    """A regression teacher's predictions on X, computed once, in batches, as float32.

    Parameters
    ----------
    teacher : fitted regressor or list of fitted regressors
        A list is averaged with ``weights``.
    X : array-like of shape (n_samples, n_features)
        Rows, passed to the teacher as they are.
    weights : array-like of shape (n_teachers,), default=None
        Weights of the teachers of a list; equal when None.
    batch_size : int, default=10_000
        Rows sent to the teacher at once, bounding memory.
    memory : str, joblib.Memory or None, default=None
        Caches the result on disk (see :func:`teacher_logits`).
    n_jobs : int or None, default=None
        Batches predicted in parallel by joblib workers.

    Returns
    -------
    predictions : ndarray of shape (n_samples, n_outputs), dtype float32

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skdistill.teachers import teacher_predictions
    >>> X = np.arange(4.0).reshape(-1, 1)
    >>> teacher = LinearRegression().fit(X, 2 * X.ravel())
    >>> teacher_predictions(teacher, X[:2]).round(3).tolist()
    [[0.0], [2.0]]
    """
    teachers = as_teacher_list(teacher)
    weights = normalised_weights(weights, len(teachers))
    compute = check_memory(memory).cache(_compute_teacher_predictions, ignore=["n_jobs"])
    return compute(teachers, weights, X, batch_size, n_jobs=n_jobs)


class TeacherLogits:
    """A fitted skorch classifier's logits as a differentiable function of X.

    Used to match the student's input-derivatives to the teacher's
    (``DistilledClassifier(derivative_weight=...)``). The logits are the
    log of the net's ``predict_proba`` (its module's output through the
    net's prediction nonlinearity), so they are the teacher's whatever its
    criterion. The module is called in eval mode and never updated: the
    estimator restores the train/eval flags of the teacher's modules after
    training, and gradients never flow into it.

    Parameters
    ----------
    net : fitted skorch.NeuralNet
        A classifier whose module maps float32 X to its outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skdistill.teachers import TeacherLogits
    >>> X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=3, module__out_features=2,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=2, train_split=None, verbose=0,
    ... ).fit(X, y)
    >>> TeacherLogits.supports(net)
    True
    >>> TeacherLogits(net)(torch.from_numpy(X[:4])).shape
    torch.Size([4, 2])
    """

    def __init__(self, net):
        self.net = net

    @staticmethod
    def supports(teacher):
        """Whether ``teacher`` is a fitted skorch net whose module can be differentiated."""
        from skorch import NeuralNet

        return (
            isinstance(teacher, NeuralNet)
            and getattr(teacher, "initialized_", False)
            and isinstance(getattr(teacher, "module_", None), torch.nn.Module)
        )

    def __call__(self, X):
        net = self.net
        device = X.device
        outputs = net.module_(X.to(module_device(net.module_)))
        if isinstance(outputs, tuple):  # skorch's convention: the first one is the prediction
            outputs = outputs[0]
        proba = net._get_predict_nonlinearity()(outputs)
        return torch.log(proba.clamp_min(torch.finfo(proba.dtype).tiny)).to(device)

    def modules(self):
        """The torch modules of the teacher, to set to eval mode during training."""
        return [self.net.module_]
