"""What the distilled estimators share: checking the data, labelling it with
the teacher, and training the student.

:class:`BaseDistiller` holds the training loop of
:class:`~skdistill.DistilledClassifier` and
:class:`~skdistill.DistilledRegressor`; they differ only in what the
teacher's outputs are (logits or predictions), how the labels are encoded,
and the loss. scikit-learn's estimators are organised the same way
(``BaseForest`` for ``RandomForestClassifier`` and ``RandomForestRegressor``).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import inspect
import threading
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.compose import make_column_transformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
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
from skorch.helper import predefined_split

from .base import TeacherMixin
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
from .teachers import fit_teachers, is_fitted

__all__ = ["BaseDistiller"]

#: With ``early_stopping="auto"``, early stopping is on from this many
#: training rows (as in HistGradientBoostingClassifier).
AUTO_EARLY_STOPPING_MIN_SAMPLES = 10_000


class BaseDistiller(TeacherMixin, BaseEstimator):
    """Base class of the distilled estimators; not for direct use.

    Subclasses implement the hooks that differ
    between classification and regression: :meth:`_check_teachers`,
    :meth:`_check_targets`, :meth:`_combine_teachers`,
    :meth:`_set_output_attributes`, :meth:`_encode_labels`,
    :meth:`_teacher_outputs`, :meth:`_pack_targets`, :meth:`_criterion` and
    :meth:`_module_kwargs`; :meth:`_check_before_teacher`,
    :meth:`_training_context`, :meth:`_net_kwargs` and
    :meth:`_after_training` have defaults.

    Examples
    --------
    >>> from skdistill import DistilledClassifier, DistilledRegressor
    >>> from skdistill.distiller import BaseDistiller
    >>> [issubclass(cls, BaseDistiller) for cls in (DistilledClassifier, DistilledRegressor)]
    [True, True]
    """

    #: Fill value of the encoded label of a row without one.
    _no_label = np.nan

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
        "n_jobs": [None, Integral],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _fit(self, X, y=None, sample_weight=None, X_unlabeled=None, X_val=None, y_val=None):
        """Fit, and return the teacher's outputs on the rows of X and the extra rows.

        :class:`~skdistill.specialists.SpecialistEnsemble` trains its
        specialists on the same teacher outputs; returning them spares a
        second pass of the teacher.
        """
        teachers = self._check_teachers()
        self._check_training_params()
        X_teacher = X
        X, y = self._validate_training_data(X, y, teachers)
        if not _is_indexable(X_teacher):
            X_teacher = X
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight sums to zero; at least one row needs weight.")
        extra_rows = self._check_extra_rows(X_teacher, X_unlabeled, "X_unlabeled")
        validation_rows = self._check_extra_rows(X_teacher, X_val, "X_val")
        if y_val is not None and X_val is None:
            raise ValueError("y_val was given without X_val.")
        if validation_rows and y_val is not None:
            y_val = self._check_targets(column_or_1d(y_val) if np.ndim(y_val) == 1 else y_val)
            check_consistent_length(validation_rows[0], y_val)
        self._check_before_teacher(teachers)

        fitted = fit_teachers(teachers, X_teacher, y, sample_weight, type(self).__name__)
        if sample_weight is not None:
            # Mean 1 keeps the loss on the scale of unweighted training, so
            # the learning rate means the same with or without weights.
            sample_weight = sample_weight / sample_weight.mean()
        teacher = self._combine_teachers(fitted)
        self._set_output_attributes(fitted, y)
        _check_teacher_n_features(fitted, self.n_features_in_)
        labels = None if y is None else self._encode_labels(y)

        torch_seed, transfer_seed = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=2
        )
        extra_rows = self._add_transfer_rows(X_teacher, extra_rows, transfer_seed)
        X_teacher_all = _concat_rows([X_teacher, *extra_rows])
        X_student_all = (
            np.concatenate([X, *map(self._student_features, extra_rows)]) if extra_rows else X
        )
        outputs = self._checked_teacher_outputs(teacher, X_teacher_all, len(X_student_all))
        # The teacher's copies of the transfer rows (float64, the largest
        # arrays of a fit on a big transfer set) are not needed to train.
        del X_teacher_all, extra_rows
        n_extra = len(X_student_all) - len(X)
        targets = self._pack_targets(
            outputs,
            None if labels is None else _pad(labels, n_extra, self._no_label),
            None if sample_weight is None else _pad(sample_weight, n_extra, 1.0),
        )
        validation = None
        if validation_rows:
            X_val_student = self._student_features(validation_rows[0])
            val_outputs = self._checked_teacher_outputs(
                teacher, validation_rows[0], len(X_val_student)
            )
            val_labels = None if y_val is None else self._encode_labels(y_val)
            validation = (X_val_student, self._pack_targets(val_outputs, val_labels, None))

        device = _resolve_device(self.device)
        with _seeded_torch(torch_seed, device), self._training_context(teacher):
            net = self._build_student(
                X,
                outputs.shape[1],
                sample_weight,
                torch_seed,
                device,
                validation=validation,
                criterion=self._criterion(outputs),
                module_kwargs=self._module_kwargs(outputs),
                net_kwargs=self._net_kwargs(teacher, device),
            )
            net.fit(X_student_all, targets)
        self._after_training(net, teacher, validation, y_val)

        self.teacher_ = teacher
        self.student_ = net
        self.n_iter_ = len(net.history)
        return outputs

    # -- hooks with a default ------------------------------------------------

    def _check_before_teacher(self, teachers):
        """Checks of the parameters against the teacher, before it is called."""

    def _net_kwargs(self, teacher, device):
        """Extra parameters of the student's StudentNet."""
        return {}

    def _training_context(self, teacher):
        """A context manager around the student's training; none by default."""
        return nullcontext()

    def _after_training(self, net, teacher, validation, y_val):
        """Adjust the fitted net (e.g. its output bias); nothing by default."""

    # -- prediction ------------------------------------------------------------

    def _student_outputs(self, X):
        """The student's raw outputs (logits, or predictions) on checked rows."""
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

    # -- checks ------------------------------------------------------------------

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
        multi_output = self._multi_output_y
        if self.preprocessor_ is None:
            if y is None:
                X = validate_data(self, X, dtype=[np.float32, np.float64])
            else:
                X, y = validate_data(
                    self, X, y, dtype=[np.float32, np.float64], multi_output=multi_output
                )
        else:
            validate_data(self, X, skip_check_array=True)
            if y is not None:
                y = np.asarray(y) if multi_output else column_or_1d(y, warn=True)
                check_consistent_length(X, y)
            X = self.preprocessor_.fit_transform(X)
            X = X.toarray() if hasattr(X, "toarray") else X
        if y is not None:
            y = self._check_targets(y)
        return _as_float32(X, checked=self.preprocessor_ is None), y

    #: Whether y may be 2-D (several outputs).
    _multi_output_y = False

    def _check_extra_rows(self, X_teacher, X_extra, name):
        """Extra rows checked against X (same kind, same columns), as a list of 0 or 1."""
        if X_extra is None:
            return []
        if hasattr(X_teacher, "columns"):
            columns = getattr(X_extra, "columns", None)
            if columns is None or list(columns) != list(X_teacher.columns):
                raise ValueError(
                    f"{name} must be a DataFrame with the same columns as X, "
                    f"in the same order: {list(X_teacher.columns)[:20]}."
                )
            if len(X_extra) == 0:
                raise ValueError(f"{name} has no rows.")
            return [X_extra]
        X_extra = check_array(X_extra, dtype=[np.float32, np.float64], input_name=name)
        if X_extra.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has {X_extra.shape[1]} features, but X has {self.n_features_in_}."
            )
        return [X_extra]

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

    def _checked_teacher_outputs(self, teacher, X, n_samples):
        outputs = self._teacher_outputs(teacher, X)
        if outputs.ndim != 2 or outputs.shape[0] != n_samples:
            raise ValueError(
                f"The teacher's outputs have shape {outputs.shape}, expected "
                f"({n_samples}, n_outputs)."
            )
        if not np.isfinite(outputs).all():
            raise ValueError("The teacher's outputs contain NaN or infinity on the training rows.")
        return outputs

    def _early_stopping_on(self, n_samples, has_validation=False):
        if self.early_stopping == "auto":
            return has_validation or n_samples >= AUTO_EARLY_STOPPING_MIN_SAMPLES
        return bool(self.early_stopping) and (has_validation or n_samples >= 2)

    # -- the student ---------------------------------------------------------------

    def _build_student(
        self,
        X,
        n_outputs,
        sample_weight,
        seed,
        device,
        validation=None,
        criterion=None,
        module_kwargs=None,
        net_kwargs=None,
    ):
        """An unfitted skorch net around the student body and its standardisation."""
        standardize = Standardize.from_data(X, sample_weight)
        module_kwargs = {"n_outputs": n_outputs, **(module_kwargs or {})}
        criterion = self._criterion() if criterion is None else criterion
        n_features = X.shape[1]
        if isinstance(self.student, NeuralNet):
            return _adapt_user_net(
                self.student, standardize, n_features, n_outputs, criterion, module_kwargs
            )

        if self.student is None:
            body = MLP(n_features, n_outputs, tuple(self.hidden_layer_sizes))
        else:
            body = _make_body(self.student, {}, n_features, n_outputs)
        # As MLPClassifier: stop when the loss has not improved by tol for
        # n_iter_no_change epochs, on held-out rows (keeping the best
        # weights) or, without early stopping, on the training rows.
        if self._early_stopping_on(len(X), validation is not None):
            if validation is None:
                train_split = HoldoutSplit(self.validation_fraction, random_state=seed)
            else:
                train_split = predefined_split(TensorDataset(*validation, device=device))
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
            module=StudentModule(standardize, body, **module_kwargs),
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
            **(net_kwargs or {}),
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


def _pad(values, n_extra, fill):
    """values for the real rows, then ``fill`` for the extra rows."""
    if n_extra == 0:
        return values
    return np.concatenate([values, np.full((n_extra, *values.shape[1:]), fill)])


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


#: Held by a seeded fit: torch's generators are process-wide, so two fits
#: in threads of one process (joblib's threading backend, a dask worker with
#: several threads) would otherwise draw from each other's seeds.
_TORCH_RNG_LOCK = threading.RLock()


class _seeded_torch:
    """Seed torch's generators for one fit, restoring them afterwards.

    Fits in threads of one process take turns: the generators are shared,
    and a fit owns them from seeding to the end of training, so that the
    same ``random_state`` gives the same model whatever runs beside it.
    ``device=None`` (a net whose accelerator places it) seeds the CPU only.
    """

    def __init__(self, seed, device):
        self.seed = seed
        device = torch.device("cpu" if device is None else device)
        cuda = device.type == "cuda"
        index = device.index
        self.devices = [index if index is not None else torch.cuda.current_device()] if cuda else []

    def __enter__(self):
        _TORCH_RNG_LOCK.acquire()
        try:
            self._fork = torch.random.fork_rng(devices=self.devices)
            self._fork.__enter__()
            torch.manual_seed(self.seed)
        except BaseException:
            _TORCH_RNG_LOCK.release()
            raise

    def __exit__(self, *exc_info):
        try:
            return self._fork.__exit__(*exc_info)
        finally:
            _TORCH_RNG_LOCK.release()


def _check_student_param(student):
    if student is None or isinstance(student, torch.nn.Module):
        return
    if isinstance(student, type) and issubclass(student, torch.nn.Module):
        return
    if isinstance(student, (NeuralNetClassifier, NeuralNetRegressor)):
        raise TypeError(
            f"student is a skorch {type(student).__name__}, whose own target "
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


def _make_body(module, kwargs, n_features, n_outputs):
    """A fresh body module from a class (instantiated) or an instance (copied)."""
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)
    accepted = inspect.signature(module).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    # A module class states its output size as n_classes (classification) or
    # n_outputs; it gets whichever it takes.
    sizes = {"n_features": n_features, "n_classes": n_outputs, "n_outputs": n_outputs}
    for name, value in sizes.items():
        if (name in accepted or (takes_any and name != "n_outputs")) and name not in kwargs:
            kwargs = {**kwargs, name: value}
    try:
        return module(**kwargs)
    except TypeError as error:
        raise TypeError(
            f"Could not build the student module {module.__name__} with {kwargs}: "
            f"{error}. A module class is called with n_features and n_classes "
            "(or n_outputs) when its __init__ takes them, plus a skorch student's "
            "module__ parameters."
        ) from error


def _adapt_user_net(net, standardize, n_features, n_outputs, criterion, module_kwargs):
    """A copy of the user's unfitted NeuralNet, with our module wrapper and loss."""
    params = clone(net).get_params(deep=False)
    body_kwargs = {
        name[len("module__") :]: params.pop(name)
        for name in list(params)
        if name.startswith("module__")
    }
    for name in [name for name in params if name.startswith("criterion__")]:
        del params[name]
    body = _make_body(params["module"], body_kwargs, n_features, n_outputs)
    params.update(criterion, module=StudentModule(standardize, body, **module_kwargs))
    return type(net)(**params)
