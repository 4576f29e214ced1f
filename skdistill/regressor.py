"""``DistilledRegressor``: a fitted regressor distilled into a neural net."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils.validation import check_array

from .distiller import BaseDistiller
from .losses import RegressionDistillationLoss, pack_regression_targets
from .teachers import check_teacher_list, teacher_predictions

__all__ = ["DistilledRegressor"]


class DistilledRegressor(RegressorMixin, BaseDistiller):
    """A neural network trained to behave like a fitted regressor.

    Model compression (Bucila, Caruana & Niculescu-Mizil, 2006) for
    regression: the teacher's predictions on the training rows, and on a
    transfer set of synthetic or unlabelled rows, are the student's
    targets, optionally mixed with ``y``. The objective per row is::

        alpha * mean_k ((f_k - t_k) / s_k)**2 + (1 - alpha) * mean_k ((f_k - y_k) / s_k)**2

    with ``f`` the student's and ``t`` the teacher's predictions and ``s``
    the standard deviation of the teacher's predictions on the training
    rows, so that the loss has no units. The student learns standardised
    targets and gives predictions back in the teacher's units; like
    :class:`~skdistill.DistilledClassifier`, it carries its own input
    standardisation and takes the same raw X as the teacher.

    Parameters
    ----------
    teacher : regressor or list of regressors
        A fitted regressor with ``predict`` (an estimator, a Pipeline, a
        ``FrozenEstimator``, a skorch regressor), used as is and never
        modified; or an unfitted one, fitted on a clone on ``(X, y)``; or a
        list of them, whose predictions are averaged (with
        ``teacher_weights``). ``clone`` keeps a fitted teacher fitted.
    alpha : float, default=1.0
        Weight in ``[0, 1]`` of the teacher's term; ``1 - alpha`` weighs the
        targets ``y``. Rows without a target learn from the teacher alone.
        The default follows the teacher alone: in compression, the teacher
        is the better-informed target.
    student : None, nn.Module class or instance, or skorch.NeuralNet, default=None
        As for :class:`~skdistill.DistilledClassifier`; a module class is
        built with ``n_features`` and ``n_outputs`` keyword arguments when
        its ``__init__`` takes them.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layer widths of the default student.
    max_epochs : int, default=200
        Most passes over the training rows.
    batch_size : int, default=256
        Rows per gradient step.
    lr : float, default=1e-3
        Learning rate of the Adam optimizer.
    early_stopping : "auto" or bool, default="auto"
        Stop when the loss on validation rows (``fit``'s ``X_val``, else a
        held-out share of the rows) has not improved for
        ``n_iter_no_change`` epochs, and keep the best weights. ``"auto"``
        turns it on from 10,000 training rows, or when ``X_val`` is given.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without a relative improvement of ``tol`` before stopping.
    tol : float, default=1e-4
        Relative improvement of the loss that counts as progress.
    teacher_weights : array-like of shape (n_teachers,), default=None
        Weights of the teachers of a list; equal when None.
    transfer : generator or None, default=None
        A synthetic transfer set, e.g. :class:`skdistill.transfer.Munge`,
        labelled by the teacher.
    preprocessor : "auto", transformer or None, default="auto"
        Turns X into the student's numeric features; as for
        :class:`~skdistill.DistilledClassifier`.
    memory : str, joblib.Memory or None, default=None
        Caches the teacher's predictions on disk.
    callbacks : list of skorch callbacks, default=None
        Added to the student's callbacks (cloned per fit).
    n_jobs : int or None, default=None
        Workers (joblib) computing the teacher's predictions, in batches of
        10,000 rows.
    device : str, default="cpu"
        Torch device of the student: ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        or ``"auto"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the student's initial weights, the batch order, the
        early-stopping split and the transfer set.
    verbose : int, default=0
        Print skorch's per-epoch log when positive.

    Attributes
    ----------
    teacher_ : regressor or list of regressors
        The fitted teacher(s) used: the user's own objects when fitted.
    preprocessor_ : transformer or None
        The fitted preprocessing of X for the student, if any.
    student_ : skorch.NeuralNet
        The fitted student, with its ``module_`` and ``history``.
    n_outputs_ : int
        Number of outputs of the teacher.
    n_iter_ : int
        Epochs the student was trained for.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    DistilledClassifier : The same for classifiers.

    References
    ----------
    .. [1] C. Bucila, R. Caruana and A. Niculescu-Mizil, "Model Compression",
       KDD 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from skdistill import DistilledRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> forest = RandomForestRegressor(n_estimators=50, random_state=0).fit(X, y)
    >>> student = DistilledRegressor(forest, max_epochs=50, random_state=0).fit(X)
    >>> student.predict(X[:3]).shape
    (3,)
    >>> bool(student.score(X, forest.predict(X)) > 0.8)  # R^2 against the teacher
    True
    """

    _parameter_constraints = {**BaseDistiller._parameter_constraints}

    _multi_output_y = True

    def __init__(
        self,
        teacher,
        *,
        alpha=1.0,
        student=None,
        hidden_layer_sizes=(256, 256),
        max_epochs=200,
        batch_size=256,
        lr=1e-3,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        teacher_weights=None,
        transfer=None,
        preprocessor="auto",
        memory=None,
        callbacks=None,
        n_jobs=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.teacher = teacher
        self.alpha = alpha
        self.student = student
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.teacher_weights = teacher_weights
        self.transfer = transfer
        self.preprocessor = preprocessor
        self.memory = memory
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, X_unlabeled=None, X_val=None, y_val=None):
        """Fit the student to the teacher's predictions (and to y, if given).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows, given to the teacher as they are.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets. With None the student learns from the teacher alone
            (the teacher must then be fitted).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows of X, for both terms (and for fitting an
            unfitted teacher that accepts them).
        X_unlabeled : array-like or DataFrame of shape (n_unlabeled, n_features), default=None
            Real rows without targets: the teacher labels them.
        X_val : array-like or DataFrame of shape (n_val, n_features), default=None
            Validation rows for early stopping, in place of a held-out
            share of X (a skorch net passed as ``student`` keeps its own
            ``train_split``).
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Targets of ``X_val``, for its ``1 - alpha`` term.

        Returns
        -------
        self : DistilledRegressor
            The fitted estimator.
        """
        self._fit(X, y, sample_weight, X_unlabeled, X_val, y_val)
        return self

    def predict(self, X):
        """The student's predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when the teacher has one output.
        """
        predictions = self._student_outputs(X).astype(np.float64)
        return predictions.ravel() if self.n_outputs_ == 1 else predictions

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # -- BaseDistiller's hooks ------------------------------------------------

    def _check_teachers(self):
        return check_teacher_list(self.teacher, kind="regressor")

    def _check_targets(self, y):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        return y

    def _combine_teachers(self, fitted):
        return fitted if isinstance(self.teacher, (list, tuple)) else fitted[0]

    def _set_output_attributes(self, fitted, y):
        # Known for sure only once the teacher has spoken; set again then.
        self.n_outputs_ = None if y is None else (1 if y.ndim == 1 else y.shape[1])

    def _encode_labels(self, y):
        return np.reshape(y, (len(y), -1)).astype(np.float32)

    def _teacher_outputs(self, teacher, X):
        predictions = teacher_predictions(
            teacher, X, weights=self.teacher_weights, memory=self.memory, n_jobs=self.n_jobs
        )
        if self.n_outputs_ is not None and predictions.shape[1] != self.n_outputs_:
            raise ValueError(
                f"The teacher predicts {predictions.shape[1]} outputs, but y has {self.n_outputs_}."
            )
        self.n_outputs_ = predictions.shape[1]
        return predictions

    def _pack_targets(self, outputs, labels, sample_weight):
        return pack_regression_targets(outputs, labels, sample_weight)

    def _criterion(self, outputs):
        return dict(
            criterion=RegressionDistillationLoss,
            criterion__alpha=float(self.alpha),
            criterion__scale=tuple(_scale(outputs).tolist()),
        )

    def _module_kwargs(self, outputs):
        return dict(
            output_scale=_scale(outputs), output_offset=outputs.mean(axis=0, dtype=np.float64)
        )


def _scale(predictions):
    """Standard deviation per output of the teacher's predictions on the training
    and transfer rows; 1 for a constant output."""
    scale = predictions.std(axis=0, dtype=np.float64)
    scale[~(scale > 0)] = 1.0
    return scale
