"""``DistilledClassifier``: a fitted classifier distilled into a neural net."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from contextlib import contextmanager
from numbers import Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNet

from .bias import fit_logit_bias
from .distiller import BaseDistiller
from .losses import NO_LABEL, DistillationLoss, pack_targets
from .student import predict_logits
from .teachers import (
    TeacherLogits,
    _train_modes_preserved,
    as_single_teacher,
    check_teacher_list,
    teacher_classes,
    teacher_logits,
)

__all__ = ["DistilledClassifier"]


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
        Stop when the distillation loss on validation rows has not
        improved for ``n_iter_no_change`` epochs, and keep the best weights.
        The validation rows are ``fit``'s ``X_val`` when given, else a
        held-out share of the training rows. ``"auto"`` turns it on from
        10,000 training rows, or when ``X_val`` is given.
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
    calibrate_bias : bool, default=False
        After training, set the student's output biases (and nothing else)
        to maximise the log-likelihood of the validation rows: ``fit``'s
        ``y_val`` when given, else the teacher's probabilities on ``X_val``
        (so unlabelled rows will do); see
        :func:`skdistill.bias.fit_logit_bias`. This is the automatic form
        of Hinton's correction for a class missing from the transfer set
        (+3.5 on the bias of the omitted 3s, which he tuned on the test
        set): the offset can only be read off rows that show the class.
        Needs ``X_val``. The biases are ``logit_bias_``. On MNIST without
        3s it took the errors on test 3s from 170 to 65, as well as the best
        offset picked on the test set (not Hinton's 14); with every class in
        the transfer set, 1,000 validation rows gave offsets of up to 1.7
        that were noise (330 test errors became 326 to 350 depending on the
        rows), so keep it for missing classes.
    derivative_weight : float, default=0.0
        Weight of a Sobolev term matching the student's input-derivatives
        to the teacher's (Czarnecki et al. 2017), with one random projection
        per row and step (see :class:`skdistill.student.StudentNet`): worth
        trying when the transfer set is small (on MNIST with 1,000 rows,
        weights of 0.01 to 0.1 cut test errors by 15%, at 4-5x the fit
        time; weights of 1 and more hurt). Needs a differentiable teacher,
        a fitted skorch classifier whose module takes X as given, and a
        student that is None or a torch module. 0 turns it off.
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
    logit_bias_ : ndarray of shape (n_classes,)
        The offsets added to the student's logits (``calibrate_bias``);
        zeros without calibration.
    student_ : skorch.NeuralNet
        The fitted student, with its ``module_`` and ``history``.
    n_iter_ : int
        Epochs the student was trained for.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
    .. [3] W. M. Czarnecki, S. Osindero, M. Jaderberg, G. Swirszcz and R. Pascanu,
       "Sobolev Training for Neural Networks", NeurIPS 2017.

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
        **BaseDistiller._parameter_constraints,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "loss": [StrOptions({"kl", "logit_mse"})],
        "proba_floor": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="neither")],
        "teacher_averaging": [StrOptions({"arithmetic", "geometric"})],
        "calibrate_bias": ["boolean"],
        "derivative_weight": [Interval(Real, 0, None, closed="left")],
    }

    _no_label = NO_LABEL

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
        calibrate_bias=False,
        derivative_weight=0.0,
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
        self.calibrate_bias = calibrate_bias
        self.derivative_weight = derivative_weight
        self.preprocessor = preprocessor
        self.memory = memory
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, X_unlabeled=None, X_val=None, y_val=None):
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
        X_val : array-like or DataFrame of shape (n_val, n_features), default=None
            Validation rows, of the same kind as X, never trained on: early
            stopping monitors the distillation loss on them (in place of a
            held-out share of X), and ``calibrate_bias`` fits the output
            biases on them. Named as in ``HistGradientBoostingClassifier``.
            A skorch net passed as ``student`` keeps its own ``train_split``.
        y_val : array-like of shape (n_val,), default=None
            Labels of ``X_val``, for its hard-label term and for
            ``calibrate_bias``; without them the teacher's outputs on
            ``X_val`` stand in.

        Returns
        -------
        self : DistilledClassifier
            The fitted estimator.
        """
        if self.calibrate_bias and X_val is None:
            raise ValueError(
                "calibrate_bias=True needs validation rows: pass X_val (and y_val "
                "if you have labels) to fit. The bias of a class missing from the "
                "training rows can only be read off rows that show it."
            )
        self._fit(X, y, sample_weight, X_unlabeled, X_val, y_val)
        return self

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
        logits = self._student_outputs(X)
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
        return softmax(self._student_outputs(X).astype(np.float64), axis=1)

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
        logits = self._student_outputs(X)
        return self.classes_[np.argmax(logits, axis=1)]

    # -- BaseDistiller's hooks ------------------------------------------------

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

    def _set_output_attributes(self, fitted, y):
        self.classes_ = teacher_classes(fitted)

    def _encode_labels(self, y):
        return _label_indices(y, self.classes_)

    def _teacher_outputs(self, teacher, X):
        return teacher_logits(
            teacher, X, proba_floor=self.proba_floor, memory=self.memory, n_jobs=self.n_jobs
        )

    def _pack_targets(self, outputs, labels, sample_weight):
        return pack_targets(outputs, labels, sample_weight)

    def _criterion(self, outputs=None):
        return dict(
            criterion=DistillationLoss,
            criterion__temperature=float(self.temperature),
            criterion__alpha=float(self.alpha),
            criterion__loss=self.loss,
        )

    def _module_kwargs(self, outputs):
        return {}

    def _check_before_teacher(self, teachers):
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
        elif self.preprocessor_ is not None:
            problem = "numeric X that the teacher and the student both take as is"
        if problem:
            raise ValueError(f"derivative_weight > 0 needs {problem}.")

    def _training_context(self, teacher):
        if self.derivative_weight == 0:
            return super()._training_context(teacher)
        return _teacher_in_eval_mode(teacher)

    def _net_kwargs(self, teacher, device):
        if self.derivative_weight == 0:
            return {}
        return dict(
            derivative_teacher=TeacherLogits(teacher),
            derivative_weight=float(self.derivative_weight),
        )

    def _after_training(self, net, teacher, validation, y_val):
        if hasattr(net, "derivative_teacher"):
            # The fitted student must not hold (nor pickle) the teacher.
            net.derivative_teacher = None
        bias = np.zeros(len(self.classes_), dtype=np.float32)
        if self.calibrate_bias:
            X_val, targets = validation
            student_logits = predict_logits(net.module_, X_val, net.device)
            if y_val is not None:
                goal = targets[:, -2].astype(int)
            else:
                goal = softmax(targets[:, :-2].astype(np.float64), axis=1)
            bias = fit_logit_bias(student_logits, goal)
            net.module_.logit_bias.copy_(torch.as_tensor(bias))
        self.logit_bias_ = bias


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


@contextmanager
def _teacher_in_eval_mode(teacher):
    """The teacher's modules in eval mode (no dropout) while the student trains.

    Every train/eval flag is restored afterwards: the teacher belongs to the
    user.
    """
    with _train_modes_preserved(teacher):
        for module in TeacherLogits(teacher).modules():
            module.eval()
        yield
