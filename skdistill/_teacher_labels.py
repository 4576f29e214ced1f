"""Labelling rows with the teacher: its logits, probabilities or predictions,
computed once per fit, in batches, as float32.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers

import numpy as np
from joblib import Parallel, delayed
from scipy.special import softmax
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_memory

from ._teacher_checks import as_teacher_list
from ._teacher_ensemble import as_single_teacher, normalised_weights
from ._teacher_outputs import raw_outputs, regression_outputs
from ._teacher_torch import torch_modules
from .utils.fixes import _num_samples, _safe_indexing

__all__ = [
    "OutputsMemo",
    "resolve_proba_floor",
    "teacher_logits",
    "teacher_predictions",
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
#: on letter (docs/defaults.md, and benchmarks/results/defaults.md, section 3).
AUTO_FLOOR_MAX = 1e-3


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
        The floor; with ``"auto"``, never below float32's smallest normal
        number, so that its log stays finite.

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
    return _num_samples(X)


def _batches_of(X, batch_size):
    """(rows, X[rows]) for consecutive batches: X itself, as given, when one batch holds it.

    A container that cannot be indexed by rows (an object with only
    ``__array__``) is split as a numpy array of the same values.
    """
    n_rows = _num_rows(X)
    if n_rows <= batch_size:
        return [(slice(0, n_rows), X)]
    if not hasattr(X, "__getitem__"):
        X = np.asarray(X)
    return [(rows, _safe_indexing(X, rows)) for rows in gen_batches(n_rows, batch_size)]


def _batched_outputs(teacher, X, batch_size, n_jobs, method=raw_outputs):
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
    batches = _batches_of(X, batch_size)
    prefer = None if torch_modules(teacher) else "threads"
    outputs = Parallel(n_jobs=n_jobs, return_as="generator", prefer=prefer)(
        delayed(method)(teacher, batch) for _, batch in batches
    )
    for (rows, _), (kind, values) in zip(batches, outputs, strict=True):
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
        Each row centred to zero mean; columns in the order of the
        teacher's ``classes_``.

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
        The teacher(s); a list is averaged with equal weights, as a
        :class:`TeacherEnsemble` with arithmetic averaging.
    X : array-like of shape (n_samples, n_features)
        Rows, passed to the teacher as they are.
    batch_size : int, default=10_000
        Rows sent to the teacher at once, bounding memory.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), dtype float64
        ``predict_proba``, with no floor applied; for a teacher without it,
        the softmax of ``decision_function`` (a binary score ``s`` taken
        as the logits ``(-s/2, s/2)``). Columns in the order of
        ``classes_``.

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


def _compute_teacher_predictions(teachers, weights, X, batch_size, n_jobs=None):
    predictions = None
    for weight, estimator in zip(weights, teachers, strict=True):
        batches = _batched_outputs(estimator, X, batch_size, n_jobs, regression_outputs)
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
        The weighted mean of the teachers' predictions; a teacher's 1-D
        predictions become one column.

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


class OutputsMemo:
    """An in-process memory for teacher outputs, shaped like ``joblib.Memory``.

    ``memory=OutputsMemo()`` makes a distiller keep the teacher's outputs it
    computes, so that whoever fits it (a meta-estimator training more
    students on the same rows, such as
    :class:`~skdistill.specialists.SpecialistEnsemble`) reads them back
    with :func:`teacher_logits` instead of running the teacher a second
    time. A call is recognised by the identity of its array and estimator
    arguments (the very objects) and the equality of the others. An inner
    ``memory`` (a path or a ``joblib.Memory``) still caches on disk.

    Parameters
    ----------
    memory : str, joblib.Memory or None, default=None
        What computes a call that is not remembered.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.teachers import OutputsMemo, teacher_logits
    >>> X, y = load_iris(return_X_y=True)
    >>> teacher = LogisticRegression(max_iter=500).fit(X, y)
    >>> memo = OutputsMemo()
    >>> first = teacher_logits(teacher, X, memory=memo)
    >>> teacher_logits(teacher, X, memory=memo) is first
    True
    """

    def __init__(self, memory=None):
        self.memory = memory
        self._calls = []

    def cache(self, func, ignore=None, **kwargs):
        """Wrap ``func`` so that it is computed once per distinct call.

        Calls are told apart as the class docstring says: by the identity
        of array and estimator arguments, the equality of the others.

        Parameters
        ----------
        func : callable
            The computation to remember, such as the one behind
            :func:`teacher_logits`.
        ignore : list of str, default=None
            Keyword arguments that do not change the result (``n_jobs``).
        **kwargs
            Passed to the inner memory's ``cache``.

        Returns
        -------
        cached : callable
            Takes ``func``'s arguments and returns the result of the same
            call made before, or computes it (through the inner memory)
            and remembers it.
        """
        compute = check_memory(self.memory).cache(func, ignore=ignore, **kwargs)
        ignored = set(ignore or ())

        def remembered(*args, **call_kwargs):
            key = (func, args, {k: v for k, v in call_kwargs.items() if k not in ignored})
            for known, result in self._calls:
                if _same_call(known, key):
                    return result
            result = compute(*args, **call_kwargs)
            self._calls.append((key, result))
            return result

        return remembered

    def clear(self):
        """Forget every remembered result."""
        self._calls.clear()


def _same_call(known, key):
    """Whether two (func, args, kwargs) keys are the same call: the very same
    objects for arrays and estimators, equal values for numbers and strings."""
    (func, args, kwargs), (other_func, other_args, other_kwargs) = known, key
    if (
        func is not other_func
        or len(args) != len(other_args)
        or kwargs.keys() != other_kwargs.keys()
    ):
        return False
    pairs = [*zip(args, other_args, strict=True), *((kwargs[k], other_kwargs[k]) for k in kwargs)]
    return all(_same_value(a, b) for a, b in pairs)


def _same_value(a, b):
    if a is b:
        return True
    plain = (str, bytes, numbers.Number, type(None))
    return isinstance(a, plain) and isinstance(b, plain) and type(a) is type(b) and a == b
