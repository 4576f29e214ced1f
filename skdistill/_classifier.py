"""``DistilledClassifier``: a fitted classifier distilled into a neural net."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from contextlib import contextmanager
from numbers import Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNet

from ._bias import fit_logit_bias
from ._curves import ValidationAccuracy
from ._distiller import BaseDistiller
from ._losses import ClassificationTargets, classification_criterion
from ._predict import predict_logits, softmax_rows
from ._teacher_checks import check_teacher_list, is_fitted, teacher_classes
from ._teacher_ensemble import as_single_teacher
from ._teacher_labels import teacher_logits
from ._teacher_torch import TeacherLogits, train_modes_preserved
from ._training import label_indices
from .utils._docstring import Substitution, shared_docs
from .utils.fixes import Interval, StrOptions

__all__ = ["DistilledClassifier"]


@Substitution(
    **shared_docs(
        "temperature",
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
        "teacher_weights",
        "teacher_averaging",
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
class DistilledClassifier(ClassifierMixin, BaseDistiller):
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

    Read more in the :ref:`User Guide <soft_targets>`.

    Parameters
    ----------
    teacher : classifier or list of classifiers
        A fitted classifier with ``classes_`` and ``predict_proba`` or
        ``decision_function`` (an estimator, a Pipeline, a
        ``FrozenEstimator``, a skorch classifier), used as is and never
        modified; or an unfitted one, fitted on a clone on ``(X, y)``; or a
        list of them, an ensemble whose probabilities are averaged (they
        must agree on ``classes_``). ``clone`` keeps a fitted teacher
        fitted and shared, so ``GridSearchCV`` never refits it. See
        :ref:`teachers`.
    {temperature}
    alpha : float, default=0.9
        Weight in ``[0, 1]`` of the soft-target term; ``1 - alpha`` weighs
        the hard labels. Rows without a label (``y=None``, transfer and
        unlabeled rows) learn from the teacher alone. See :ref:`choosing`.
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
    {teacher_weights}
    {teacher_averaging}
    {transfer}
    calibrate_bias : bool, default=False
        After training, set the student's output biases (and nothing else)
        to maximise the log-likelihood of the validation rows: ``fit``'s
        ``y_val`` when given, else the teacher's probabilities on ``X_val``
        (so unlabelled rows will do); see
        :func:`~skdistill.bias.fit_logit_bias`. The automatic form of
        Hinton's correction for a class missing from the transfer set.
        Needs ``X_val``. The biases are ``logit_bias_``. See
        :ref:`classes_absent`.
    derivative_weight : float, default=0.0
        Weight of a Sobolev term matching the student's input-derivatives
        to the teacher's (Czarnecki et al. 2017), with one random
        projection per row and step (see
        :class:`~skdistill.student.StudentNet`). Needs a differentiable
        teacher, a fitted skorch classifier whose module takes X as given,
        and a student that is None or a torch module. 0 turns it off. See
        :ref:`derivatives`.
    {preprocessor}
    {memory}
    {callbacks}
    {cuda_graph}
    {n_jobs}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as in scikit-learn's classifiers: each row
        of X with a label weighs its class's weight, in both terms of the
        loss, multiplied with its ``sample_weight``; rows without a label
        (transfer and unlabeled rows) weigh 1. A dict maps classes (of the
        teacher's ``classes_``) to weights, 1 for a class it leaves out.
        ``"balanced"`` gives each class of ``y`` the weight
        ``n_samples / (n_classes_in_y * count)``, the counts weighted by
        ``sample_weight`` when given (scikit-learn's
        ``compute_class_weight``). Labelled validation rows (``y_val``)
        weigh their class's weight too. As with ``sample_weight``, an
        unfitted teacher is fitted with the weights too (when its ``fit``
        takes ``sample_weight``), and a fitted one is used as it is. Needs
        ``y``. See :ref:`class_weight`.
    {device}
    {random_state}
    {verbose}
    {warm_start}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The teacher's classes, including any absent from ``y``.
    teacher_ : classifier
        The fitted teacher used: the user's own object when it was fitted,
        else the fitted clone; for a list, a
        :class:`~skdistill.teachers.TeacherEnsemble` of them.
    {preprocessor_attribute}
    logit_bias_ : ndarray of shape (n_classes,)
        The offsets added to the student's logits (``calibrate_bias``);
        zeros without calibration.
    {student_attributes}

    See Also
    --------
    sklearn.frozen.FrozenEstimator : Keeps a fitted estimator fitted through clone.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a
       Neural Network", 2015.
    .. [2] C. Bucila, R. Caruana and A. Niculescu-Mizil, "Model Compression",
       KDD 2006.
    .. [3] W. M. Czarnecki, S. Osindero, M. Jaderberg, G. Swirszcz and R. Pascanu,
       "Sobolev Training for Neural Networks", NeurIPS 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skdistill import DistilledClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    >>> student = DistilledClassifier(forest, random_state=0).fit(X, y)
    >>> student.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool(student.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "loss": [StrOptions({"kl", "logit_mse"})],
        "proba_floor": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="neither")],
        "teacher_averaging": [StrOptions({"arithmetic", "geometric"})],
        "calibrate_bias": ["boolean"],
        "derivative_weight": [Interval(Real, 0, None, closed="left")],
    }

    _target_layout = ClassificationTargets

    _validation_scorer = ValidationAccuracy

    def __init__(
        self,
        teacher,
        *,
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
        teacher_weights=None,
        teacher_averaging="arithmetic",
        transfer=None,
        calibrate_bias=False,
        derivative_weight=0.0,
        preprocessor="auto",
        memory=None,
        callbacks=None,
        cuda_graph="auto",
        n_jobs=None,
        class_weight=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
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
        self.calibrate_bias = calibrate_bias
        self.derivative_weight = derivative_weight
        self.preprocessor = preprocessor
        self.memory = memory
        self.callbacks = callbacks
        self.cuda_graph = cuda_graph
        self.n_jobs = n_jobs
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @Substitution(**shared_docs("X_predict"))
    def decision_function(self, X):
        """The student's logits.

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Logits; for two classes, as scikit-learn's convention, the
            logit of the second class minus that of the first.
        """
        logits = self._student_outputs(X)
        if len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    @Substitution(**shared_docs("X_predict"))
    def predict_proba(self, X):
        """Class probabilities of the student (softmax at temperature 1).

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return softmax_rows(self._student_outputs(X))

    @Substitution(**shared_docs("X_predict"))
    def predict(self, X):
        """Most probable class according to the student.

        Parameters
        ----------
        {X_predict}

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._student_outputs(X)
        return self.classes_[np.argmax(logits, axis=1)]

    # -- BaseDistiller's abstract methods and hooks ---------------------------

    def _check_teachers(self):
        return check_teacher_list(self.teacher)

    def _check_targets(self, y):
        check_classification_targets(y)
        return y

    def _combine_teachers(self, fitted):
        is_list = isinstance(self.teacher, (list, tuple))
        return as_single_teacher(
            fitted if is_list else fitted[0], self.teacher_weights, self.teacher_averaging
        )

    def _encode_targets(self, y, fitted):
        return label_indices(y, teacher_classes(fitted))

    def _teacher_outputs(self, teacher, X):
        return teacher_logits(
            teacher, X, proba_floor=self.proba_floor, memory=self.memory, n_jobs=self.n_jobs
        )

    def _set_target_attributes(self, fitted, outputs, y):
        self.classes_ = teacher_classes(fitted)

    def _criterion(self, outputs):
        return classification_criterion(self.temperature, self.alpha, self.loss)

    def _check_fit_request(self, y, X_val):
        if self.class_weight is not None and y is None:
            raise ValueError(
                "class_weight weighs the rows of X by the class of their label, "
                "but fit was given no y. Pass y, or set class_weight=None."
            )
        if self.calibrate_bias and X_val is None:
            raise ValueError(
                "calibrate_bias=True needs validation rows: pass X_val (and y_val "
                "if you have labels) to fit. The bias of a class missing from the "
                "training rows can only be read off rows that show it."
            )

    def _class_weights(self, y, sample_weight, teachers):
        if self.class_weight is None:
            return None
        labels, inverse = np.unique(y, return_inverse=True)
        if self.class_weight == "balanced":
            # As compute_class_weight: n_samples / (n_classes * count), the
            # rows counted with their sample weights.
            counts = np.bincount(inverse.ravel(), weights=sample_weight)
            weights = counts.sum() / (len(labels) * counts)
            return dict(zip(labels.tolist(), weights.tolist(), strict=True))
        _check_class_weight(self.class_weight, _known_classes(teachers, labels))
        per_row = np.array([self.class_weight.get(label, 1.0) for label in labels.tolist()])
        if not (per_row[inverse] * (1 if sample_weight is None else sample_weight)).sum() > 0:
            raise ValueError(
                "class_weight and sample_weight leave every row of X with weight 0; "
                "at least one row needs weight."
            )
        return dict(self.class_weight)

    def _warm_start_mismatch(self, fitted, outputs):
        classes = teacher_classes(fitted)
        if not np.array_equal(classes, self.classes_):
            return (
                f"the teacher's classes {classes.tolist()[:20]} are not those of that "
                f"fit, {self.classes_.tolist()[:20]}"
            )
        return None

    def _prepare_warm_start(self, module):
        # The calibrated bias is a correction fitted after training, not a
        # weight: the continued training starts without it, and a
        # calibrate_bias fit sets it anew.
        if isinstance(getattr(module, "logit_bias", None), torch.Tensor):
            with torch.no_grad():
                module.logit_bias.zero_()

    def _check_before_teacher(self, teachers, preprocessor):
        if self.derivative_weight == 0:
            return
        problem = None
        if len(teachers) != 1 or not TeacherLogits.supports(teachers[0]):
            problem = (
                "a teacher that is one fitted skorch classifier, whose module is "
                f"differentiated; got {type(self.teacher).__name__}"
            )
        elif isinstance(self.student, NeuralNet):
            problem = "student=None or a torch module, not a skorch net"
        elif preprocessor is not None:
            problem = "numeric X that the teacher and the student both take as is"
        if problem:
            raise ValueError(f"derivative_weight > 0 needs {problem}.")

    def _training_extras(self, teacher):
        if self.derivative_weight == 0:
            return super()._training_extras(teacher)
        net_kwargs = dict(
            derivative_teacher=TeacherLogits(teacher),
            derivative_weight=float(self.derivative_weight),
        )
        return _teacher_in_eval_mode(teacher), net_kwargs

    def _after_training(self, net, validation):
        if hasattr(net, "derivative_teacher"):
            # The fitted student must not hold (nor pickle) the teacher.
            net.derivative_teacher = None
        bias = np.zeros(len(self.classes_), dtype=np.float32)
        if self.calibrate_bias:
            student_logits = predict_logits(net.module_, validation.X, net.device)
            teacher_logits_val, labels, _ = ClassificationTargets.unpack(validation.targets)
            goal = (
                labels
                if validation.labelled
                else softmax(teacher_logits_val.astype(np.float64), axis=1)
            )
            bias = fit_logit_bias(student_logits, goal)
            net.module_.logit_bias.copy_(torch.as_tensor(bias))
        self.logit_bias_ = bias


def _known_classes(teachers, labels):
    """The classes the teacher will have: the fitted teachers' (an unfitted one
    learns those of y)."""
    fitted = [teacher for teacher in teachers if is_fitted(teacher)]
    return teacher_classes(fitted) if fitted else labels


def _check_class_weight(class_weight, classes):
    """Refuse a class_weight dict with unknown classes or weights that are not weights."""
    known = set(classes.tolist())
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"class_weight has classes the teacher does not know: {unknown[:10]}. "
            f"The teacher's classes_ are {classes.tolist()[:50]}."
        )
    for label, weight in class_weight.items():
        if not (isinstance(weight, Real) and np.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"class_weight[{label!r}] is {weight!r}; class weights must be "
                "finite non-negative numbers."
            )


@contextmanager
def _teacher_in_eval_mode(teacher):
    """The teacher's modules in eval mode (no dropout) while the student trains.

    Every train/eval flag is restored afterwards: the teacher belongs to the
    user.
    """
    with train_modes_preserved(teacher):
        for module in TeacherLogits(teacher).modules():
            module.eval()
        yield
