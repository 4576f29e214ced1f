"""``BaseDistiller``: the one ``fit`` of :class:`~skdistill.DistilledClassifier`
and :class:`~skdistill.DistilledRegressor`.

As in scikit-learn's ``BaseForest``, the training is written once, in the
base class, and reads top to bottom: check the data, fit or take the
teacher, label the rows with it, train the student. The two tasks differ
only in the abstract methods below (which teachers they take, what the
teacher's outputs are, how targets are encoded, the loss), each with one
signature and no side effects, except :meth:`_set_target_attributes`, the one
place a task sets its own fitted attributes.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from abc import ABCMeta, abstractmethod
from contextlib import nullcontext
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._base import TeacherMixin
from ._curves import training_curves
from ._predict import predict_logits
from ._preprocessing import (
    AutoPreprocessor,
    as_float32,
    column_kind,
    concat_rows,
    is_frame,
    make_preprocessor,
    missing_values_named,
    student_features,
)
from ._teacher_checks import check_teacher_n_features, fit_teachers, is_fitted
from ._training import (
    TrainingSettings,
    build_student,
    check_student_settings,
    finish_training,
    fit_net,
    resolve_device,
    seeded_torch,
    warm_start_module,
)
from .utils.fixes import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    _num_features,
    _num_samples,
    validate_parameter_constraints,
)

__all__ = ["BaseDistiller", "check_parameters"]


class Validation(NamedTuple):
    """Validation rows as the student sees them, and their packed targets."""

    X: np.ndarray
    targets: np.ndarray
    labelled: bool


class BaseDistiller(TeacherMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the distilled estimators; not for direct use.

    Subclasses set ``_target_layout`` (a target layout of
    :mod:`skdistill.losses`) and implement the abstract methods; ``fit`` and
    the prediction path are shared.

    Examples
    --------
    >>> from skdistill import DistilledClassifier, DistilledRegressor
    >>> from skdistill._distiller import BaseDistiller
    >>> [issubclass(cls, BaseDistiller) for cls in (DistilledClassifier, DistilledRegressor)]
    [True, True]
    """

    _parameter_constraints = {
        "teacher": "no_validation",
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "student": "no_validation",
        "hidden_layer_sizes": ["array-like"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "teacher_weights": ["array-like", None],
        "transfer": [None, HasMethods(["generate"])],
        "preprocessor": [None, StrOptions({"auto"}), HasMethods(["fit", "transform"])],
        "memory": [None, str, HasMethods(["cache"])],
        "callbacks": [None, list],
        "cuda_graph": [StrOptions({"auto"}), "boolean"],
        "n_jobs": [None, Integral],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    #: The layout of the packed targets: ``ClassificationTargets`` or
    #: ``RegressionTargets`` of :mod:`skdistill.losses`.
    _target_layout = None

    #: Whether y may be 2-D (several outputs).
    _multi_output_y = False

    #: The skorch callback that scores the validation rows at each epoch
    #: (``validation_scores_``), as the task's ``score`` does.
    _validation_scorer = None

    #: The fitted attributes of the training curves (``MLPClassifier``'s names).
    _CURVES = ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_")

    # -- what differs between the tasks ---------------------------------------

    @abstractmethod
    def _check_teachers(self):
        """The ``teacher`` parameter as a checked list of estimators."""

    @abstractmethod
    def _check_targets(self, y):
        """``y`` checked for the task (before any teacher runs)."""

    @abstractmethod
    def _combine_teachers(self, fitted):
        """One teacher object from the list of fitted teachers."""

    @abstractmethod
    def _encode_targets(self, y, fitted):
        """``y`` as the student's targets (label indices, or a float matrix)."""

    @abstractmethod
    def _teacher_outputs(self, teacher, X):
        """The teacher's outputs on X (logits, or predictions), float32, 2-D."""

    @abstractmethod
    def _set_target_attributes(self, fitted, outputs, y):
        """Set ``classes_`` or ``n_outputs_``, checking the teacher's outputs against them."""

    @abstractmethod
    def _criterion(self, outputs):
        """skorch's criterion settings for the student (:mod:`skdistill.losses`)."""

    def _module_kwargs(self, outputs):
        """Extra arguments of the student module (a regressor's output scale)."""
        return {}

    def _check_fit_request(self, y, X_val):
        """Checks of parameters that need ``fit``'s arguments (none by default)."""

    def _class_weights(self, y, sample_weight, teachers):
        """The weight of each class of y, ``{label: weight}``, or None: no class weights."""
        return None

    def _warm_start_mismatch(self, fitted, outputs):
        """Why the teacher's outputs cannot continue the previous fit, or None."""
        return None

    def _prepare_warm_start(self, module):
        """Undo on a module continuing training what :meth:`_after_training` set."""

    def _check_before_teacher(self, teachers, preprocessor):
        """Checks of parameters against the teachers, before they run (none by default)."""

    def _training_extras(self, teacher):
        """(context manager around training, extra StudentNet parameters); none by default."""
        return nullcontext(), {}

    def _after_training(self, net, validation):
        """Adjust the fitted net, such as its output bias; nothing by default."""

    # -- the training -----------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, X_unlabeled=None, X_val=None, y_val=None):
        """Fit the student to the teacher's outputs (and to ``y``, if given).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows. The teacher gets them exactly as given (a
            DataFrame stays a DataFrame).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Labels (a subset of the teacher's classes) or regression targets.
            With None the student learns from the teacher alone, which must
            then be fitted.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows of X, for both terms of the loss (and for
            fitting an unfitted teacher that accepts them). Transfer-set and
            unlabeled rows weigh 1, as an average row of X.
        X_unlabeled : array-like or DataFrame of shape (n_unlabeled, n_features), default=None
            Real rows without labels, of the same kind as X: the teacher
            labels them and the student learns them from the teacher alone.
        X_val : array-like or DataFrame of shape (n_val, n_features), default=None
            Validation rows, of the same kind as X, never trained on: early
            stopping monitors the loss on them (in place of a held-out share
            of X), and a classifier's ``calibrate_bias`` fits the output
            biases on them. Named as in ``HistGradientBoostingClassifier``.
            A skorch net passed as ``student`` keeps its own ``train_split``.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Labels or targets of ``X_val``, for the ``1 - alpha`` term (and
            ``calibrate_bias``); without them the teacher's outputs on
            ``X_val`` stand in.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        teachers = self._check_teachers()
        device = _check_student_and_device(self)
        self._check_fit_request(y, X_val)
        if y_val is not None and X_val is None:
            raise ValueError("y_val was given without X_val.")
        # As MLPClassifier: a warm start needs a previous fit to continue.
        warm = bool(self.warm_start) and hasattr(self, "student_")
        X_student, y = self._validate_training_data(X, y, teachers, warm)
        sample_weight = _check_weights(sample_weight, X_student)
        # Class weights act as sample weights do: on both terms of the loss,
        # and on the fit of an unfitted teacher.
        class_weights = None if y is None else self._class_weights(y, sample_weight, teachers)
        row_weights = _row_weights(sample_weight, class_weights, y)
        unlabeled = self._check_extra_rows(X, X_unlabeled, "X_unlabeled")
        validation_rows = self._check_extra_rows(X, X_val, "X_val")
        if validation_rows and y_val is not None:
            y_val = self._check_targets(column_or_1d(y_val) if np.ndim(y_val) == 1 else y_val)
            check_consistent_length(validation_rows[0], y_val)
        self._check_before_teacher(teachers, self.preprocessor_)

        fitted = fit_teachers(teachers, X, y, row_weights, type(self).__name__)
        check_teacher_n_features(fitted, self.n_features_in_)
        teacher = self._combine_teachers(fitted)
        labels = None if y is None else self._encode_targets(y, fitted)
        torch_seed, transfer_seed = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=2
        )
        extra_rows = [*unlabeled, *self._transfer_rows(X, transfer_seed)]
        outputs = self._checked_teacher_outputs(teacher, concat_rows([X, *extra_rows]))
        problem = self._warm_start_mismatch(fitted, outputs) if warm else None
        if problem is not None:
            raise ValueError(
                f"warm_start=True continues the previous fit, but {problem}. "
                "Set warm_start=False to start over."
            )
        self._set_target_attributes(fitted, outputs, y)
        X_train = np.concatenate(
            [X_student, *(student_features(self.preprocessor_, rows) for rows in extra_rows)]
        )
        # The teacher's copies of the extra rows (float64, the largest arrays
        # of a fit on a big transfer set) are not needed to train.
        del extra_rows
        # Mean 1 keeps the loss on the scale of unweighted training, so the
        # learning rate means the same with or without weights.
        weights = None if row_weights is None else row_weights / row_weights.mean()
        targets = self._target_layout.pack(outputs, labels, weights)
        validation = self._validation(teacher, validation_rows, y_val, fitted, class_weights)
        settings = TrainingSettings.from_params(self.get_params(deep=False))
        module = warm_start_module(self.student_, settings) if warm else None
        if module is not None:
            self._prepare_warm_start(module)
        previous_curves = {name: getattr(self, name, None) for name in self._CURVES}

        net = self._train_student(
            teacher,
            X_student,
            X_train,
            targets,
            outputs,
            validation,
            row_weights,
            torch_seed,
            device,
            settings,
            module,
        )
        self._after_training(net, validation)
        self.teacher_ = teacher
        self.student_ = net
        # As MLPClassifier: n_iter_ counts this fit's epochs, and a warm start
        # continues the curves of the fit it continues.
        self.n_iter_ = len(net.history)
        for name, value in training_curves(net.history, previous_curves if warm else None).items():
            setattr(self, name, value)
        return self

    def _train_student(
        self,
        teacher,
        X_student,
        X_train,
        targets,
        outputs,
        validation,
        sample_weight,
        seed,
        device,
        settings,
        module,
    ):
        """A student built for the data (or continuing ``module``), trained on the targets."""
        context, net_kwargs = self._training_extras(teacher)
        with seeded_torch(seed, device), context:
            net = build_student(
                settings,
                X_student,
                outputs.shape[1],
                criterion=self._criterion(outputs),
                seed=seed,
                device=device,
                sample_weight=sample_weight,
                validation=None if validation is None else validation[:2],
                module_kwargs=self._module_kwargs(outputs),
                net_kwargs=net_kwargs,
                module=module,
                scorer=None if self._validation_scorer is None else self._validation_scorer(),
                strata=self._target_layout.strata,
            )
            fit_net(net, X_train, targets)
        return finish_training(net)

    # -- checks ----------------------------------------------------------------------

    def _validate_training_data(self, X, y, teachers, warm):
        """Check X and y, fit ``preprocessor_``, and return the student's float32 X and y.

        A warm start keeps the fitted ``preprocessor_`` and checks X against
        the previous fit's columns instead.
        """
        if y is None and not all(map(is_fitted, teachers)):
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None: the teacher is not fitted. Pass y, or a fitted teacher."
            )
        if warm:
            n_features = _num_features(X)
            if n_features != self.n_features_in_:
                raise ValueError(
                    "warm_start=True continues the previous fit, whose X had "
                    f"{self.n_features_in_} features; this X has {n_features}. Pass "
                    "the same columns, or set warm_start=False to start over."
                )
        else:
            self.preprocessor_ = make_preprocessor(self.preprocessor, X)
        multi_output = self._multi_output_y
        if self.preprocessor_ is None:
            with missing_values_named(X, fitted=warm):
                if y is None:
                    X_student = validate_data(
                        self, X, reset=not warm, dtype=[np.float32, np.float64]
                    )
                else:
                    X_student, y = validate_data(
                        self,
                        X,
                        y,
                        reset=not warm,
                        dtype=[np.float32, np.float64],
                        multi_output=multi_output,
                    )
            X_student = as_float32(X_student, checked=True)
        else:
            validate_data(self, X, reset=not warm, skip_check_array=True)
            if y is not None:
                y = np.asarray(y) if multi_output else column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            if warm:
                X_student = student_features(self.preprocessor_, X)
            else:
                X_student = as_float32(
                    self.preprocessor_.fit_transform(X), preprocessor=self.preprocessor_
                )
        # How a custom preprocessor's columns reach its ONNX graph (to_onnx):
        # as numbers or as strings. The automatic preprocessing knows its own.
        if not warm:
            self._column_kinds = None
            if is_frame(X) and not isinstance(self.preprocessor_, AutoPreprocessor | None):
                self._column_kinds = [column_kind(dtype) for dtype in X.dtypes]
        if y is not None:
            y = self._check_targets(y)
        return X_student, y

    def _check_extra_rows(self, X, X_extra, name):
        """Extra rows checked against X (same kind, same columns), as a list of 0 or 1."""
        if X_extra is None:
            return []
        if hasattr(X, "columns"):
            columns = getattr(X_extra, "columns", None)
            if columns is None or list(columns) != list(X.columns):
                raise ValueError(
                    f"{name} must be a DataFrame with the same columns as X, "
                    f"in the same order: {list(X.columns)[:20]}."
                )
            if len(X_extra) == 0:
                raise ValueError(f"{name} has no rows.")
            return [X_extra]
        # With a preprocessor, NaN is its to handle (the automatic one imputes it).
        with missing_values_named(X_extra, fitted=False, name=name):
            X_extra = check_array(
                X_extra,
                dtype=[np.float32, np.float64],
                ensure_all_finite="allow-nan" if self.preprocessor_ is not None else True,
                input_name=name,
            )
        if X_extra.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has {X_extra.shape[1]} features, but X has {self.n_features_in_}."
            )
        return [X_extra]

    def _transfer_rows(self, X, seed):
        """The synthetic rows of the transfer generator, as a list of 0 or 1 arrays."""
        if self.transfer is None:
            return []
        generator = clone(self.transfer)
        if "random_state" in generator.get_params():
            generator.set_params(random_state=seed)
        synthetic = generator.generate(X)
        return [synthetic] if len(synthetic) else []

    def _checked_teacher_outputs(self, teacher, X):
        outputs = self._teacher_outputs(teacher, X)
        n_samples = _num_samples(X)
        if outputs.ndim != 2 or outputs.shape[0] != n_samples:
            raise ValueError(
                f"The teacher's outputs have shape {outputs.shape}, expected "
                f"({n_samples}, n_outputs)."
            )
        if not np.isfinite(outputs).all():
            raise ValueError("The teacher's outputs contain NaN or infinity on the training rows.")
        return outputs

    def _validation(self, teacher, validation_rows, y_val, fitted, class_weights):
        """The validation rows as the student sees them, with their packed targets.

        Labelled rows weigh their class's weight, as training rows do, so that
        early stopping watches the objective the student is trained on.
        """
        if not validation_rows:
            return None
        X_val = validation_rows[0]
        outputs = self._checked_teacher_outputs(teacher, X_val)
        labels = None if y_val is None else self._encode_targets(y_val, fitted)
        return Validation(
            student_features(self.preprocessor_, X_val),
            self._target_layout.pack(outputs, labels, _row_weights(None, class_weights, y_val)),
            labelled=y_val is not None,
        )

    # -- prediction ---------------------------------------------------------------

    def __sklearn_is_fitted__(self):
        # The student is the last thing fit sets; scikit-learn's default test
        # (any attribute ending in "_") scans every attribute at each predict.
        return hasattr(self, "student_")

    def _student_outputs(self, X):
        """The student's raw outputs (logits, or predictions) on rows of X."""
        check_is_fitted(self)
        if self.preprocessor_ is None:
            with missing_values_named(X, fitted=True):
                X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
            features = as_float32(X, checked=True)
        else:
            validate_data(self, X, reset=False, skip_check_array=True)
            features = student_features(self.preprocessor_, X)
        return predict_logits(self.student_.module_, features, self.student_.device)


def _row_weights(sample_weight, class_weights, y):
    """Each row's sample weight times its class's weight (1 for a class left out), or None."""
    if class_weights is None or y is None:
        return sample_weight
    labels, inverse = np.unique(y, return_inverse=True)
    weights = np.array([class_weights.get(label, 1.0) for label in labels.tolist()])[inverse]
    return weights if sample_weight is None else weights * sample_weight


def check_parameters(estimator):
    """Check a distiller's parameters as its ``fit`` does before it looks at any data.

    For callers that build a distiller from outside input (the command line,
    a saved student's file) and refuse bad settings before they load data or
    a teacher: the parameter constraints, the student settings, the device.

    Parameters
    ----------
    estimator : BaseDistiller
        An unfitted distiller; its ``teacher`` is not checked.

    Returns
    -------
    device : str
        The torch device it would train on.

    Raises
    ------
    ValueError or TypeError
        Naming the first parameter that ``fit`` would refuse.
    """
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )
    return _check_student_and_device(estimator)


def _check_student_and_device(estimator):
    check_student_settings(estimator.student, estimator.hidden_layer_sizes)
    return resolve_device(estimator.device)


def _check_weights(sample_weight, X):
    """Checked, non-negative sample weights with a positive sum, or None."""
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
    if not sample_weight.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one row needs weight.")
    return sample_weight
