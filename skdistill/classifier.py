"""``DistilledClassifier``: a fitted classifier distilled into a neural net."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import inspect
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.compose import make_column_transformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping

from .base import TeacherMixin
from .bias import absent_class_bias, absent_classes
from .losses import NO_LABEL, DistillationLoss, pack_targets
from .student import (
    MLP,
    HoldoutSplit,
    Standardize,
    StudentModule,
    StudentNet,
    TensorBatchIterator,
    TensorDataset,
    predict_logits,
)
from .teachers import (
    as_single_teacher,
    check_teacher_list,
    fit_teachers,
    is_fitted,
    teacher_classes,
    teacher_logits,
)

__all__ = ["DistilledClassifier"]

#: With ``early_stopping="auto"``, early stopping is on from this many
#: training rows (as in HistGradientBoostingClassifier).
AUTO_EARLY_STOPPING_MIN_SAMPLES = 10_000


class DistilledClassifier(ClassifierMixin, TeacherMixin, BaseEstimator):
    """A neural network trained to behave like a fitted classifier.

    The teacher's outputs on the training rows are turned into soft
    targets at a temperature (Hinton, Vinyals & Dean, 2015) and a small
    network, the student, is fitted to them with skorch, optionally mixed
    with the hard labels ``y``. The objective per row is::

        alpha * T**2 * KL(p_T || q_T) + (1 - alpha) * CE(y, q_1)

    with ``p_T`` and ``q_T`` the teacher's and the student's softmax at
    temperature ``T``; KL is summed over classes and averaged over rows.
    The student carries its own input standardisation, so it takes the
    same raw X as the teacher.

    Parameters
    ----------
    teacher : classifier or list of classifiers
        A fitted classifier with ``classes_`` and ``predict_proba`` or
        ``decision_function`` (an estimator, a Pipeline, a
        ``FrozenEstimator``, a skorch classifier), used as is and never
        modified; or an unfitted one, fitted on a clone on ``(X, y)``; or a
        list of them, an ensemble whose probabilities are averaged (they
        must agree on ``classes_``). ``clone`` keeps a fitted teacher
        fitted and shared, so ``GridSearchCV`` never refits it.
    temperature : float, default=4.0
        Temperature ``T > 0`` of the soft targets (``loss="kl"`` only).
    alpha : float, default=0.9
        Weight in ``[0, 1]`` of the soft-target term; ``1 - alpha`` weighs
        the hard labels. Rows without a label (``y=None``) learn from the
        teacher alone.
    loss : {"kl", "logit_mse"}, default="kl"
        The soft term: temperature-scaled KL divergence, or the squared
        error between row-centred student and teacher logits (Bucila et al.
        2006; Ba & Caruana 2014), for which ``temperature`` does not apply.
    student : None, nn.Module class or instance, or skorch.NeuralNet, default=None
        ``None`` builds a multilayer perceptron from ``hidden_layer_sizes``.
        A ``torch.nn.Module`` class is instantiated with ``n_features`` and
        ``n_classes`` keyword arguments when its ``__init__`` takes them; an
        instance is copied and trained from its current weights. Either
        maps ``(batch, n_features)`` to ``(batch, n_classes)`` logits. An
        unfitted ``skorch.NeuralNet`` keeps its own settings (optimizer,
        lr, epochs, batch size, callbacks, split, device), which then take
        the place of this estimator's training parameters; only its
        criterion is replaced by the distillation loss. Its parameters are
        reachable as ``student__<name>``.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layer widths of the default student.
    max_epochs : int, default=200
        Most passes over the training rows.
    batch_size : int, default=256
        Rows per gradient step.
    lr : float, default=1e-3
        Learning rate of the Adam optimizer.
    early_stopping : "auto" or bool, default="auto"
        Stop when the distillation loss on a held-out share of the rows
        has not improved for ``n_iter_no_change`` epochs, and keep the best
        weights. ``"auto"`` turns it on from 10,000 training rows.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.
    n_iter_no_change : int, default=10
        Training stops when the loss (on the held-out rows with early
        stopping, else on the training rows) has not improved by a
        relative ``tol`` for this many epochs, as in ``MLPClassifier``.
    tol : float, default=1e-4
        Relative improvement of the loss that counts as progress.
    proba_floor : "auto" or float, default="auto"
        Replaces the exact zero probabilities of a teacher (a forest where
        no tree voted for a class) before taking logs. ``"auto"``: half the
        smallest positive probability the teacher gave on the rows, at most
        1e-3 (for teachers whose outputs are all 0 or 1). Positive
        probabilities are never changed.
    teacher_weights : array-like of shape (n_teachers,), default=None
        Weights of the teachers of a list; equal when None.
    teacher_averaging : {"arithmetic", "geometric"}, default="arithmetic"
        How a list of teachers is combined: the weighted mean of their
        probabilities (scikit-learn's soft voting), or of their
        log-probabilities (renormalised).
    transfer : generator or None, default=None
        A synthetic transfer set (Bucila et al. 2006), e.g.
        :class:`skdistill.transfer.Munge`: its ``generate(X)`` rows are
        labelled by the teacher and join the soft-target term, while the
        real rows keep their hard labels too. Its ``random_state`` is set
        from this estimator's.
    correct_absent_classes : bool, default=False
        For each class that the teacher never predicts on the training and
        transfer rows and that ``y`` does not contain (Hinton's omitted 3s),
        set the student's output bias so that its mean predicted probability
        of the class on those rows equals the teacher's; see
        :func:`skdistill.bias.absent_class_bias`. Other classes are left
        alone. The corrected classes are ``absent_classes_``. Off by
        default: on MNIST without 3s (``benchmarks/mnist_hinton.py
        --quick``) the rule moved the bias by -0.03 where Hinton's +3.5 was
        needed, since a student trained to match the teacher on those rows
        already matches its mean probabilities there; and a teacher that
        labels a few rows as the missing class keeps it from triggering.
    preprocessor : "auto", transformer or None, default="auto"
        Turns X into the student's numeric features (the teacher always
        gets X as given). ``"auto"``: for a DataFrame with categorical,
        object, string or bool columns, one-hot encodes them and passes the
        numeric columns through (the student standardises them itself); no
        preprocessing otherwise. A transformer is cloned and fitted on X.
        Fitted as ``preprocessor_``.
    memory : str, joblib.Memory or None, default=None
        Caches the teacher's outputs on disk, so that a search over
        temperature and alpha computes them once per fold.
    callbacks : list of skorch callbacks, default=None
        Added to the student's callbacks (after the stopping rule), e.g.
        skorch's ``Checkpoint`` or :class:`skdistill.progress.EpochProgressBar`.
        Each fit uses clones, so the list's callbacks are never modified.
    n_jobs : int or None, default=None
        Workers (joblib) labelling the rows with the teacher, in batches of
        10,000: worth it for a large transfer set and a slow teacher. The
        student's training threads are torch's.
    device : str, default="cpu"
        Torch device of the student: ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        or ``"auto"`` (CUDA when available).
    random_state : int, RandomState instance or None, default=None
        Seeds the student's initial weights, the batch order and the
        early-stopping split. Torch's global generator is left as it was.
    verbose : int, default=0
        Print skorch's per-epoch log when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The teacher's classes, including any absent from ``y``.
    teacher_ : classifier
        The fitted teacher used: the user's own object when it was fitted,
        else the fitted clone; for a list, a
        :class:`~skdistill.teachers.TeacherEnsemble` of them.
    preprocessor_ : transformer or None
        The fitted preprocessing of X for the student, if any.
    absent_classes_ : ndarray
        Classes whose output bias was corrected (see
        ``correct_absent_classes``); usually empty.
    student_ : skorch.NeuralNet
        The fitted student, with its ``module_`` and ``history``.
    n_iter_ : int
        Epochs the student was trained for.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.frozen.FrozenEstimator : Keeps a fitted estimator fitted through clone.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a
       Neural Network", 2015.
    .. [2] C. Bucila, R. Caruana and A. Niculescu-Mizil, "Model Compression",
       KDD 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill import DistilledClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    >>> student = DistilledClassifier(forest, max_epochs=30, random_state=0).fit(X, y)
    >>> student.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool(student.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        "teacher": "no_validation",
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "loss": [StrOptions({"kl", "logit_mse"})],
        "student": "no_validation",
        "hidden_layer_sizes": ["array-like"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "proba_floor": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="neither")],
        "teacher_weights": ["array-like", None],
        "teacher_averaging": [StrOptions({"arithmetic", "geometric"})],
        "transfer": [None, HasMethods(["generate"])],
        "correct_absent_classes": ["boolean"],
        "preprocessor": [None, StrOptions({"auto"}), HasMethods(["fit", "transform"])],
        "memory": [None, str, HasMethods(["cache"])],
        "callbacks": [None, list],
        "n_jobs": [None, Integral],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        teacher,
        *,
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
        teacher_weights=None,
        teacher_averaging="arithmetic",
        transfer=None,
        correct_absent_classes=False,
        preprocessor="auto",
        memory=None,
        callbacks=None,
        n_jobs=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.teacher = teacher
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
        self.teacher_weights = teacher_weights
        self.teacher_averaging = teacher_averaging
        self.transfer = transfer
        self.correct_absent_classes = correct_absent_classes
        self.preprocessor = preprocessor
        self.memory = memory
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, X_unlabeled=None):
        """Fit the student to the teacher's soft targets (and to y, if given).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows. The teacher sees them exactly as given (a
            DataFrame stays a DataFrame).
        y : array-like of shape (n_samples,), default=None
            Hard labels, a subset of the teacher's classes. With None the
            student learns from the teacher alone (the teacher must then be
            fitted).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows of X, for both loss terms (and for fitting an
            unfitted teacher that accepts them). Transfer-set and unlabeled
            rows weigh 1, as an average row of X.
        X_unlabeled : array-like or DataFrame of shape (n_unlabeled, n_features), default=None
            Real rows without labels, of the same kind as X: the teacher
            labels them and they join the soft-target term.

        Returns
        -------
        self : DistilledClassifier
            The fitted estimator.
        """
        self._fit(X, y, sample_weight, X_unlabeled)
        return self

    def _fit(self, X, y=None, sample_weight=None, X_unlabeled=None):
        """Fit, and return the teacher's logits on the rows of X and the extra rows.

        The specialists of :class:`~skdistill.specialists.SpecialistEnsemble`
        are trained on the same teacher outputs; returning them spares a
        second pass of the teacher.
        """
        teachers = check_teacher_list(self.teacher)
        self._check_training_params()
        X_teacher = X
        X, y = self._validate_training_data(X, y, teachers)
        if not _is_indexable(X_teacher):
            X_teacher = X
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight sums to zero; at least one row needs weight.")
        extra_rows = self._check_extra_rows(X_teacher, X_unlabeled)

        fitted = fit_teachers(teachers, X_teacher, y, sample_weight)
        if sample_weight is not None:
            # Mean 1 keeps the loss on the scale of unweighted training, so
            # the learning rate means the same with or without weights.
            sample_weight = sample_weight / sample_weight.mean()
        is_list = isinstance(self.teacher, (list, tuple))
        teacher = as_single_teacher(
            fitted if is_list else fitted[0], self.teacher_weights, self.teacher_averaging
        )
        self.classes_ = teacher_classes(fitted)
        _check_teacher_n_features(fitted, self.n_features_in_)
        label_indices = None if y is None else _label_indices(y, self.classes_)

        torch_seed, transfer_seed = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=2
        )
        extra_rows = self._add_transfer_rows(X_teacher, extra_rows, transfer_seed)
        X_teacher_all = _concat_rows([X_teacher, *extra_rows])
        X_student_all = (
            np.concatenate([X, *map(self._student_features, extra_rows)]) if extra_rows else X
        )
        logits = teacher_logits(
            teacher,
            X_teacher_all,
            proba_floor=self.proba_floor,
            memory=self.memory,
            n_jobs=self.n_jobs,
        )
        _check_teacher_logits(logits, len(X_student_all), len(self.classes_))
        n_extra = len(X_student_all) - len(X)
        targets = pack_targets(
            logits,
            _pad(label_indices, len(X), n_extra, NO_LABEL),
            _pad(sample_weight, len(X), n_extra, 1.0),
        )

        device = _resolve_device(self.device)
        with _seeded_torch(torch_seed, device):
            net = self._build_student(X, len(self.classes_), sample_weight, torch_seed, device)
            net.fit(X_student_all, targets)
        absent = self._absent_classes(logits, label_indices)
        if absent.size:
            student_logits = predict_logits(net.module_, X_student_all, device)
            bias = absent_class_bias(student_logits, logits, absent)
            net.module_.logit_bias.copy_(torch.as_tensor(bias))
        self.absent_classes_ = self.classes_[absent]

        self.teacher_ = teacher
        self.student_ = net
        self.n_iter_ = len(net.history)
        return logits

    def decision_function(self, X):
        """The student's logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Logits; for two classes, as scikit-learn's convention, the
            logit of the second class minus that of the first.
        """
        logits = self._student_logits(X)
        if len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities of the student (softmax at temperature 1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return softmax(self._student_logits(X).astype(np.float64), axis=1)

    def predict(self, X):
        """Most probable class according to the student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._student_logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def _student_logits(self, X):
        check_is_fitted(self)
        if self.preprocessor_ is None:
            X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
            features = _as_float32(X, checked=True)
        else:
            validate_data(self, X, reset=False, skip_check_array=True)
            features = self._student_features(X)
        return predict_logits(self.student_.module_, features, self.student_.device)

    def _student_features(self, X):
        """Float32 features for the module from unchecked rows (extra rows, specialists)."""
        if self.preprocessor_ is not None:
            X = self.preprocessor_.transform(X)
            return _as_float32(X.toarray() if hasattr(X, "toarray") else X)
        return _as_float32(check_array(X, dtype=[np.float32, np.float64]), checked=True)

    def _check_training_params(self):
        sizes = np.asarray(self.hidden_layer_sizes)
        if sizes.ndim != 1 or not all(
            isinstance(size, Integral) and size >= 1 for size in self.hidden_layer_sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive integers; got "
                f"{self.hidden_layer_sizes!r}."
            )
        _check_student_param(self.student)

    def _validate_training_data(self, X, y, teachers):
        """Check X and y, fit preprocessor_, and return the student's float32 X and y."""
        if y is None and not all(map(is_fitted, teachers)):
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None: the teacher is not fitted. Pass y, or a fitted teacher."
            )
        self.preprocessor_ = _make_preprocessor(self.preprocessor, X)
        if self.preprocessor_ is None:
            if y is None:
                X = validate_data(self, X, dtype=[np.float32, np.float64])
            else:
                X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        else:
            validate_data(self, X, skip_check_array=True)
            if y is not None:
                y = column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            X = self.preprocessor_.fit_transform(X)
            X = X.toarray() if hasattr(X, "toarray") else X
        if y is not None:
            check_classification_targets(y)
        return _as_float32(X, checked=self.preprocessor_ is None), y

    def _check_extra_rows(self, X_teacher, X_unlabeled):
        """X_unlabeled checked against X: same kind, same columns."""
        if X_unlabeled is None:
            return []
        if hasattr(X_teacher, "columns"):
            columns = getattr(X_unlabeled, "columns", None)
            if columns is None or list(columns) != list(X_teacher.columns):
                raise ValueError(
                    "X_unlabeled must be a DataFrame with the same columns as X, "
                    f"in the same order: {list(X_teacher.columns)[:20]}."
                )
            if len(X_unlabeled) == 0:
                raise ValueError("X_unlabeled has no rows.")
            return [X_unlabeled]
        X_unlabeled = check_array(
            X_unlabeled, dtype=[np.float32, np.float64], input_name="X_unlabeled"
        )
        if X_unlabeled.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X_unlabeled has {X_unlabeled.shape[1]} features, but X has {self.n_features_in_}."
            )
        return [X_unlabeled]

    def _add_transfer_rows(self, X_teacher, extra_rows, seed):
        """Synthetic rows from the transfer generator, after the unlabeled ones."""
        if self.transfer is None:
            return extra_rows
        generator = clone(self.transfer)
        if "random_state" in generator.get_params():
            generator.set_params(random_state=seed)
        synthetic = generator.generate(X_teacher)
        if len(synthetic) == 0:
            return extra_rows
        return [*extra_rows, synthetic]

    def _absent_classes(self, teacher_logits, label_indices):
        """Classes to correct: never the teacher's argmax, and not in y."""
        if not self.correct_absent_classes:
            return np.array([], dtype=int)
        absent = absent_classes(teacher_logits)
        if label_indices is not None:
            absent = np.setdiff1d(absent, label_indices)
        return absent

    def _early_stopping_on(self, n_samples):
        if self.early_stopping == "auto":
            return n_samples >= AUTO_EARLY_STOPPING_MIN_SAMPLES
        return bool(self.early_stopping) and n_samples >= 2

    def _build_student(self, X, n_classes, sample_weight, seed, device):
        """An unfitted skorch net around the student body and its standardisation."""
        standardize = Standardize.from_data(X, sample_weight)
        criterion = dict(
            criterion=DistillationLoss,
            criterion__temperature=float(self.temperature),
            criterion__alpha=float(self.alpha),
            criterion__loss=self.loss,
        )
        n_features = X.shape[1]
        if isinstance(self.student, NeuralNet):
            return _adapt_user_net(self.student, standardize, n_features, n_classes, criterion)

        if self.student is None:
            body = MLP(n_features, n_classes, tuple(self.hidden_layer_sizes))
        else:
            body = _make_body(self.student, {}, n_features, n_classes)
        # As MLPClassifier: stop when the loss has not improved by tol for
        # n_iter_no_change epochs, on held-out rows (keeping the best
        # weights) or, without early stopping, on the training rows.
        if self._early_stopping_on(len(X)):
            train_split = HoldoutSplit(self.validation_fraction, random_state=seed)
            monitor, load_best = "valid_loss", True
        else:
            train_split, monitor, load_best = None, "train_loss", False
        stopping = EarlyStopping(
            monitor=monitor,
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="rel",
            load_best=load_best,
        )
        return StudentNet(
            module=StudentModule(standardize, body, n_outputs=n_classes),
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            dataset=TensorDataset,
            dataset__device=device,
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchIterator,
            train_split=train_split,
            callbacks=[stopping, *[clone(callback) for callback in self.callbacks or []]],
            device=device,
            verbose=self.verbose,
            **criterion,
        )


def _make_preprocessor(preprocessor, X):
    """The unfitted preprocessing of X for the student, or None."""
    if preprocessor is None:
        return None
    if preprocessor != "auto":
        return clone(preprocessor)
    if not hasattr(X, "iloc"):
        return None
    from pandas.api.types import is_numeric_dtype  # X is a DataFrame: pandas is there

    categorical = [column for column, dtype in X.dtypes.items() if not is_numeric_dtype(dtype)]
    if not categorical:
        return None
    return make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        remainder="passthrough",
        verbose_feature_names_out=False,
    )


def _concat_rows(parts):
    """Rows of several arrays or several DataFrames, one after the other."""
    if len(parts) == 1:
        return parts[0]
    if hasattr(parts[0], "iloc"):
        import pandas as pd  # only reached with DataFrame input

        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(part) for part in parts])


def _pad(values, n_rows, n_extra, fill):
    """values (or None) for the real rows, then fill for the extra rows."""
    if values is None and n_extra == 0:
        return None
    real = np.full(n_rows, fill) if values is None else values
    return np.concatenate([real, np.full(n_extra, fill)])


def _is_indexable(X):
    return hasattr(X, "iloc") or isinstance(X, np.ndarray)


def _as_float32(X, checked=False):
    """X as a C-contiguous float32 array, finite.

    ``checked`` means X went through check_array (finite): only a cast from
    float64, which can overflow, then needs looking at again.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    if (not checked or X.dtype != np.float32) and not np.isfinite(X32).all():
        raise ValueError(
            "X has values too large for float32 (beyond ±3.4e38), which the student computes in."
        )
    return X32


def _check_teacher_n_features(teachers, n_features):
    for estimator in teachers:
        expected = getattr(estimator, "n_features_in_", None)
        if expected is not None and expected != n_features:
            raise ValueError(
                f"X has {n_features} features, but the teacher "
                f"{type(estimator).__name__} was fitted with {expected} features."
            )


def _label_indices(y, classes):
    """Index of each label of y in the teacher's classes; clear error for unknown ones."""
    labels, inverse = np.unique(y, return_inverse=True)
    position = {label: index for index, label in enumerate(classes.tolist())}
    unknown = [label for label in labels.tolist() if label not in position]
    if unknown:
        raise ValueError(
            f"y contains labels the teacher does not know: {unknown[:10]}. "
            f"The teacher's classes_ are {classes.tolist()[:50]}."
        )
    return np.array([position[label] for label in labels.tolist()])[inverse.ravel()]


def _check_teacher_logits(logits, n_samples, n_classes):
    if logits.shape != (n_samples, n_classes):
        raise ValueError(
            f"The teacher's outputs have shape {logits.shape}, expected "
            f"({n_samples}, {n_classes}) from its classes_."
        )
    if not np.isfinite(logits).all():
        raise ValueError("The teacher's outputs contain NaN or infinity on the training rows.")


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N' or 'auto'."
        ) from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available on this machine.")
    return device


class _seeded_torch:
    """Seed torch's generators for one fit, restoring them afterwards."""

    def __init__(self, seed, device):
        self.seed = seed
        cuda = torch.device(device).type == "cuda"
        index = torch.device(device).index
        self.devices = [index if index is not None else torch.cuda.current_device()] if cuda else []

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc_info):
        return self._fork.__exit__(*exc_info)


def _check_student_param(student):
    if student is None or isinstance(student, torch.nn.Module):
        return
    if isinstance(student, type) and issubclass(student, torch.nn.Module):
        return
    if isinstance(student, (NeuralNetClassifier, NeuralNetRegressor)):
        raise TypeError(
            f"student is a skorch {type(student).__name__}, whose hard-label "
            "machinery (NLLLoss, stratified split, predict returning indices) "
            "fights soft targets; pass a skorch.NeuralNet with the same module."
        )
    if isinstance(student, NeuralNet):
        if getattr(student, "initialized_", False):
            raise ValueError("student must be an unfitted skorch.NeuralNet; it is initialized.")
        return
    raise TypeError(
        "student must be None, a torch.nn.Module class or instance, or an unfitted "
        f"skorch.NeuralNet; got {type(student).__name__}."
    )


def _make_body(module, kwargs, n_features, n_classes):
    """A fresh body module from a class (instantiated) or an instance (copied)."""
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)
    accepted = inspect.signature(module).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    sizes = {"n_features": n_features, "n_classes": n_classes}
    for name, value in sizes.items():
        if (name in accepted or takes_any) and name not in kwargs:
            kwargs = {**kwargs, name: value}
    try:
        return module(**kwargs)
    except TypeError as error:
        raise TypeError(
            f"Could not build the student module {module.__name__} with {kwargs}: "
            f"{error}. A module class is called with n_features and n_classes "
            "when its __init__ takes them, plus a skorch student's module__ "
            "parameters."
        ) from error


def _adapt_user_net(net, standardize, n_features, n_classes, criterion):
    """A copy of the user's unfitted NeuralNet, with our module wrapper and loss."""
    params = clone(net).get_params(deep=False)
    module_kwargs = {
        name[len("module__") :]: params.pop(name)
        for name in list(params)
        if name.startswith("module__")
    }
    for name in [name for name in params if name.startswith("criterion__")]:
        del params[name]
    body = _make_body(params["module"], module_kwargs, n_features, n_classes)
    params.update(criterion, module=StudentModule(standardize, body, n_outputs=n_classes))
    return type(net)(**params)
