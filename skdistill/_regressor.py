"""``DistilledRegressor``: a fitted regressor distilled into a neural net."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_array

from ._curves import ValidationR2
from ._distiller import BaseDistiller
from ._losses import RegressionTargets, regression_criterion
from ._teacher_checks import check_teacher_list
from ._teacher_labels import teacher_predictions
from .utils._docstring import Substitution, shared_docs

__all__ = ["DistilledRegressor"]


@Substitution(
    **shared_docs(
        "student",
        "hidden_layer_sizes",
        "max_epochs",
        "batch_size",
        "lr",
        "early_stopping",
        "validation_fraction",
        "n_iter_no_change",
        "tol",
        "teacher_weights",
        "transfer",
        "preprocessor",
        "memory",
        "callbacks",
        "cuda_graph",
        "n_jobs",
        "device",
        "random_state",
        "verbose",
        "warm_start",
        "preprocessor_attribute",
        "student_attributes",
    )
)
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

    Read more in the :ref:`User Guide <regression>`.

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
    {student}
    {hidden_layer_sizes}
    {max_epochs}
    {batch_size}
    {lr}
    {early_stopping}
    {validation_fraction}
    {n_iter_no_change}
    {tol}
    {teacher_weights}
    {transfer}
    {preprocessor}
    {memory}
    {callbacks}
    {cuda_graph}
    {n_jobs}
    {device}
    {random_state}
    {verbose}
    {warm_start}

    Attributes
    ----------
    teacher_ : regressor or list of regressors
        The fitted teacher(s) used: the user's own objects when fitted.
    {preprocessor_attribute}
    n_outputs_ : int
        Number of outputs of the teacher.
    {student_attributes}

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
    >>> from sklearn.model_selection import train_test_split
    >>> from skdistill import DistilledRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> forest = RandomForestRegressor(n_estimators=50, random_state=0).fit(X_train, y_train)
    >>> student = DistilledRegressor(forest, random_state=0).fit(X_train)
    >>> student.predict(X_test[:3]).shape
    (3,)
    >>> # On held-out rows, as good as its teacher (R^2):
    >>> bool(student.score(X_test, y_test) > forest.score(X_test, y_test) - 0.05)
    True
    """

    _parameter_constraints = {**BaseDistiller._parameter_constraints}

    _target_layout = RegressionTargets

    _validation_scorer = ValidationR2

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
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        teacher_weights=None,
        transfer=None,
        preprocessor="auto",
        memory=None,
        callbacks=None,
        cuda_graph="auto",
        n_jobs=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
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
        self.cuda_graph = cuda_graph
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @Substitution(**shared_docs("X_predict"))
    def predict(self, X):
        """The student's predictions.

        Parameters
        ----------
        {X_predict}

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

    # -- BaseDistiller's abstract methods and hooks ---------------------------

    def _check_teachers(self):
        return check_teacher_list(self.teacher, kind="regressor")

    def _check_targets(self, y):
        return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")

    def _combine_teachers(self, fitted):
        return fitted if isinstance(self.teacher, (list, tuple)) else fitted[0]

    def _encode_targets(self, y, fitted):
        return np.reshape(y, (len(y), -1)).astype(np.float32)

    def _teacher_outputs(self, teacher, X):
        return teacher_predictions(
            teacher, X, weights=self.teacher_weights, memory=self.memory, n_jobs=self.n_jobs
        )

    def _set_target_attributes(self, fitted, outputs, y):
        n_outputs = outputs.shape[1]
        if y is not None and np.reshape(y, (len(y), -1)).shape[1] != n_outputs:
            raise ValueError(
                f"The teacher predicts {n_outputs} outputs, but y has "
                f"{np.reshape(y, (len(y), -1)).shape[1]}."
            )
        self.n_outputs_ = n_outputs

    def _warm_start_mismatch(self, fitted, outputs):
        if outputs.shape[1] != self.n_outputs_:
            return f"the teacher predicts {outputs.shape[1]} outputs, that fit's {self.n_outputs_}"
        return None

    def _criterion(self, outputs):
        return regression_criterion(self.alpha, _scale(outputs))

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
