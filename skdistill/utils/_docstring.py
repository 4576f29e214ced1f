"""Shared parameter documentation, substituted into the estimators' docstrings.

The distillers and :class:`~skdistill.specialists.SpecialistEnsemble` share
about twenty parameters; each is described once here and put in place with
:class:`Substitution`, as imbalanced-learn does
(``imblearn/utils/_docstring.py``), so that the descriptions cannot drift
apart. A placeholder is the parameter's name in braces on a line of its own,
indented as a parameter line (``    {max_epochs}`` in a class's docstring,
eight spaces in a method's); the texts below are written for a class's
indentation: name line unindented, description lines indented by eight
spaces, and :class:`Substitution` indents them further in a method.
"""

import re

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

__all__ = ["Substitution", "shared_docs"]

#: Indentation of a parameter line in a class's docstring, for which the
#: shared texts are written.
_CLASS_INDENT = 4


class Substitution:
    r"""Put shared texts in place of ``{name}`` placeholders in a docstring.

    Only the given names are replaced; other braces in the docstring (a
    parameter's ``{"kl", "logit_mse"}`` options) are left alone, and a
    placeholder left without a text is an error at import time. A
    placeholder on a line of its own indented deeper than a class's
    parameter lines (in a method's docstring) gets the text's following
    lines indented as much deeper.

    Parameters
    ----------
    **texts : str
        The text of each placeholder, by name.

    Examples
    --------
    >>> from skdistill.utils._docstring import Substitution
    >>> @Substitution(unit="in seconds")
    ... def wait(delay):
    ...     '''Wait for ``delay``, {unit}; options {"a", "b"} stay.'''
    >>> wait.__doc__
    'Wait for ``delay``, in seconds; options {"a", "b"} stay.'
    >>> @Substitution(rows="rows : array\n        Rows to predict.")
    ... def predict(rows):
    ...     '''Predict.
    ...
    ...         Parameters
    ...         ----------
    ...         {rows}
    ...     '''
    >>> print(predict.__doc__.splitlines()[-2])
                Rows to predict.
    """

    def __init__(self, **texts):
        self.texts = texts

    def __call__(self, obj):
        doc = obj.__doc__
        if doc is None:  # python -OO strips docstrings
            return obj
        for name, text in self.texts.items():
            placeholder = "{" + name + "}"
            if placeholder not in doc:
                raise ValueError(f"{obj.__qualname__}'s docstring has no {placeholder}.")
            own_line = re.compile(r"^( *)" + re.escape(placeholder) + r"$", re.MULTILINE)
            doc = own_line.sub(lambda match, text=text: match[1] + _indented(text, match[1]), doc)
            doc = doc.replace(placeholder, text)
        obj.__doc__ = doc
        return obj


def _indented(text, indent):
    """``text`` with its lines after the first indented for a placeholder at ``indent``."""
    extra = " " * max(0, len(indent) - _CLASS_INDENT)
    first, *rest = text.split("\n")
    return "\n".join([first, *(extra + line if line else line for line in rest)])


def shared_docs(*names):
    """The shared texts of ``names``, ready for ``Substitution(**shared_docs(...))``."""
    return {name: _SHARED[name] for name in names}


_SHARED = {
    "X_predict": """X : array-like or DataFrame of shape (n_samples, n_features)
        Rows of the same kind as ``fit``'s X (a DataFrame with the same
        columns when fitted on one); ``preprocessor_``, if any, turns
        them into the student's features.""",
    "student": """student : None, nn.Module class or instance, or skorch.NeuralNet, default=None
        ``None`` builds a multilayer perceptron from ``hidden_layer_sizes``.
        A ``torch.nn.Module`` class is instantiated with the keyword
        arguments ``n_features`` and ``n_classes`` (or ``n_outputs``) that
        its ``__init__`` takes; an instance is copied and trained from its
        current weights. Either maps ``(batch, n_features)`` to ``(batch,
        n_outputs)``. An unfitted ``skorch.NeuralNet`` keeps its own settings
        (optimizer, lr, epochs, batch size, callbacks, split, device), which
        then take the place of this estimator's training parameters; only
        its criterion is replaced by the distillation loss. Its parameters
        are reachable as ``student__<name>``.""",
    "hidden_layer_sizes": """hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layer widths of the default student.""",
    "max_epochs": """max_epochs : int, default=200
        Most passes over the training rows.""",
    "batch_size": """batch_size : int, default=256
        Rows per gradient step.""",
    "lr": """lr : float, default=1e-3
        Learning rate of the Adam optimizer.""",
    "early_stopping": """early_stopping : bool or "auto", default=True
        Stop when the loss on validation rows has not improved for
        ``n_iter_no_change`` epochs, and keep the best weights. The
        validation rows are ``fit``'s ``X_val`` when given, else a held-out
        share of the training rows (a classifier's is stratified by the
        teacher's predicted class). ``"auto"`` (the default of version 0.1)
        turns it on from 10,000 training rows, or when ``X_val`` is given.
        On at every size by default: below 10,000 rows, training to the end
        copies a teacher's over-confident outputs on its own training rows
        (see :doc:`/defaults`).""",
    "validation_fraction": """validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.""",
    "n_iter_no_change": """n_iter_no_change : int, default=20
        Training stops when the loss (on the validation rows with early
        stopping, else on the training rows) has not improved by a relative
        ``tol`` for this many epochs, as in ``MLPClassifier``.""",
    "tol": """tol : float, default=1e-4
        Relative improvement of the loss that counts as progress.""",
    "temperature": """temperature : float, default=2.0
        Temperature ``T > 0`` of the soft targets (``loss="kl"`` only).""",
    "loss": """loss : {"kl", "logit_mse"}, default="kl"
        The soft term: temperature-scaled KL divergence, or the squared
        error between row-centred student and teacher logits (Bucila et al.
        2006; Ba & Caruana 2014), for which ``temperature`` does not apply.""",
    "proba_floor": """proba_floor : "auto" or float, default="auto"
        Replaces the exact zero probabilities of a teacher (a forest where
        no tree voted for a class) before taking logs. ``"auto"``: half the
        smallest positive probability the teacher gave on the rows, at most
        1e-3 (for teachers whose outputs are all 0 or 1). Positive
        probabilities are never changed.""",
    "teacher_weights": """teacher_weights : array-like of shape (n_teachers,), default=None
        Weights of the teachers of a list; equal when None.""",
    "teacher_averaging": """teacher_averaging : {"arithmetic", "geometric"}, default="arithmetic"
        How a list of teachers is combined: the weighted mean of their
        probabilities (scikit-learn's soft voting), or of their
        log-probabilities (renormalised).""",
    "transfer": """transfer : generator or None, default=None
        A synthetic transfer set (Bucila et al. 2006), such as
        :class:`~skdistill.Munge`: its ``generate(X)`` rows are labelled by
        the teacher and learnt from the teacher alone, while the real rows
        keep their labels too. Its ``random_state`` is set from this
        estimator's. See :ref:`transfer_sets`.""",
    "preprocessor": """preprocessor : "auto", transformer or None, default="auto"
        Turns X into the student's numeric features; the teacher always
        gets X as given. ``"auto"``, for a DataFrame with a categorical
        (object, string, category or bool) column or a missing value, or
        an array with NaN: numeric columns are imputed with their median in
        fit, plus a missing-value indicator for each column that had a
        missing value in fit; categorical columns are one-hot encoded, a
        missing value being a level of its own and a level unseen in fit
        all zeros (the student standardises its inputs itself). No
        preprocessing for numeric data without missing values. A
        transformer is cloned and fitted on X; None takes finite numbers
        only. Fitted as ``preprocessor_``, exported with the student by
        :func:`~skdistill.export.to_onnx` and saved by
        :func:`~skdistill.persistence.save_student`.""",
    "memory": """memory : str, joblib.Memory or None, default=None
        Caches the teacher's outputs on disk, so that a search over the
        student's parameters computes them once per fold.""",
    "callbacks": """callbacks : list of skorch callbacks, default=None
        Added to the student's callbacks (after the stopping rule), such as
        skorch's ``Checkpoint`` or :class:`~skdistill.progress.EpochProgressBar`.
        Each fit uses clones, so the list's callbacks are never modified.""",
    "cuda_graph": """cuda_graph : "auto" or bool, default="auto"
        On a CUDA device, capture the student's training step (forward,
        loss, backward, Adam's update) once in a CUDA graph and replay it
        for every full batch: one launch per step instead of dozens, which
        is what bounds a small network's training on a GPU (5.7x the rows
        per second at batch 256 on an H200, bare loops). ``"auto"``: on for
        CUDA with the built-in MLP student (``student=None``) and no
        derivative term; off for other modules, whose forward may branch on
        the data. ``True`` also tries other modules; a step that cannot be
        captured runs eagerly, with a warning. It does not apply on the CPU
        (``True`` warns there), nor to a skorch net passed as ``student``.
        Same ``random_state``, same model, for a given device and setting;
        graph and eager students differ in the last bits (the captured Adam
        computes its step on the device). See :ref:`scale`.""",
    "n_jobs": """n_jobs : int or None, default=None
        Workers (joblib) labelling the rows with the teacher, in batches of
        10,000: worth it for a large transfer set and a slow teacher. The
        student's training threads are torch's. See :ref:`scale`.""",
    "device": """device : str, default="cpu"
        Torch device of the student: ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        or ``"auto"`` (CUDA when available).""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds the student's initial weights, the batch order, the
        early-stopping split and the transfer set. Torch's global generator
        is left as it was.""",
    "verbose": """verbose : int, default=0
        Progress of the student's training, one update per epoch. 0:
        silent. 1: a progress bar (tqdm) with the epoch's losses when
        stderr is a terminal or in a notebook, else one plain line per
        epoch on stdout (``epoch 12/200, train loss 0.1234, valid loss
        0.2345, valid score 0.9600, 0.08 s``), without escape codes, for
        logs and pipes. 2: the lines everywhere. A skorch net passed as
        ``student`` keeps its own ``verbose``.""",
    "warm_start": """warm_start : bool, default=False
        When True, reuse the solution of the previous call to fit as
        initialization (as ``MLPClassifier``): the student continues from
        its fitted weights, input standardisation and output layer, for up
        to ``max_epochs`` more epochs (with a new optimizer), on the
        teacher's outputs for the new X. X must have the same columns, the
        teacher the same outputs (classes), and ``student`` and
        ``hidden_layer_sizes`` must not change. ``n_iter_`` counts the
        epochs of the last fit; ``loss_curve_`` and ``validation_scores_``
        go on from the previous fit's. ``clone`` (a search) starts over.""",
    "student_attributes": """student_ : skorch.NeuralNet
        The fitted student, with its ``module_`` and ``history``.
    n_iter_ : int
        Epochs the student was trained for in the last fit.
    loss_curve_ : list of float
        The training loss of each epoch (the weighted mean over the
        training rows), continued by a warm start.
    best_loss_ : float or None
        The lowest training loss of ``loss_curve_``; None when the student
        was validated (early stopping), as ``MLPClassifier``'s.
    validation_scores_ : list of float or None
        With early stopping, the score on the validation rows at each
        epoch: the accuracy of a classifier, R² (averaged over outputs) of a
        regressor, the estimator's ``score``. A row is scored against its
        label (or ``y``) where it has one, else against the teacher's
        label (or prediction), so rows without labels count too; rows
        weigh their weights. Read off the outputs the validation loss is
        computed on, at no extra cost. None without early stopping.
    best_validation_score_ : float or None
        The highest of ``validation_scores_``; None without early
        stopping. The kept weights are those of the lowest validation
        loss, which may come from another epoch.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.""",
    "preprocessor_attribute": """preprocessor_ : transformer or None
        The fitted preprocessing of X for the student, if any.""",
}
