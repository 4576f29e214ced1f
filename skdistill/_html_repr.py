"""scikit-learn's HTML diagram of a distiller: the teacher(s) and the student
side by side, the fitted ones after ``fit``.

scikit-learn's own meta-estimator detection finds only parameters that are
estimators: it misses a list of teachers, the default student (None) and a
torch module, which are the heart of a distiller.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import torch
from skorch import NeuralNet

from ._student import MLP
from ._teacher_ensemble import TeacherEnsemble
from .utils.fixes import _VisualBlock

__all__ = ["visual_block"]


def visual_block(estimator):
    """The ``_sk_visual_block_`` of a distiller: one box per estimator parameter.

    Parameters
    ----------
    estimator : estimator with a ``teacher`` parameter

    Returns
    -------
    block : scikit-learn's ``_VisualBlock``
    """
    names, blocks = [], []
    for name, value in _displayed_params(estimator):
        block = _param_block(estimator, name, value)
        if block is not None:
            names.append(f"{name}: {_block_title(value, block)}")
            blocks.append(block)
    return _VisualBlock("parallel", blocks, names=names)


def _displayed_params(estimator):
    """(name, value) of the parameters, teacher then student (as the knowledge
    flows) then the others; a fitted ``<name>_`` replaces its parameter."""
    params = estimator.get_params(deep=False)
    first = [name for name in ("teacher", "student") if name in params]
    for name in [*first, *(name for name in params if name not in first)]:
        fitted = getattr(estimator, f"{name}_", None)
        yield name, params[name] if fitted is None else fitted


def _param_block(estimator, name, value):
    """What to draw for one parameter, or None for a plain setting."""
    if name == "teacher":
        return _teacher_block(value)
    if name == "student":
        return _student_block(estimator, value)
    if hasattr(value, "get_params") and not isinstance(value, type):
        return value  # transfer, generalist, preprocessor: scikit-learn draws them
    return None


def _block_title(value, block):
    """What follows ``name:`` in a parameter's label."""
    if isinstance(block, _VisualBlock) and block.kind == "single":
        return block.names
    if isinstance(value, (list, tuple)):
        return f"{len(value)} teachers"
    return type(value).__name__


def _teacher_block(teacher):
    """The teacher as it is, or the members of a list (or of a fitted TeacherEnsemble)."""
    if isinstance(teacher, TeacherEnsemble):
        teacher = teacher.estimators
    if not isinstance(teacher, (list, tuple)):
        return teacher
    names = [f"{index}: {type(member).__name__}" for index, member in enumerate(teacher)]
    return _VisualBlock("parallel", list(teacher), names=names, dash_wrapped=False)


def _student_block(estimator, student):
    """A box for the student: the default MLP, a torch module (class or instance), or a net."""
    if isinstance(student, NeuralNet) and getattr(student, "initialized_", False):
        # The fitted student_, named after the parameter it was built from,
        # with the architecture it got from the data and the epochs it ran.
        title, caption = _student_title(getattr(estimator, "student", None))
        body = getattr(student.module_, "body", None)
        if isinstance(body, MLP):
            title = f"{title} {'-'.join(map(str, body.layer_sizes))}"
        n_epochs = getattr(estimator, "n_iter_", len(student.history))
        caption = ", ".join(filter(None, [caption, f"{n_epochs} epochs"]))
        details = f"{student}\n\n{_training_summary(estimator, n_epochs)}"
        return _VisualBlock(
            "single", student, names=title, name_details=details, name_caption=caption
        )
    title, caption = _student_title(student)
    if student is None:
        details = f"MLP(hidden_layer_sizes={getattr(estimator, 'hidden_layer_sizes', None)!r})"
        details += "\nReLU layers, built at fit for the data's features and classes."
    elif isinstance(student, type):
        details = f"{student.__module__}.{student.__qualname__}, instantiated at fit."
    else:
        details = str(student)
    return _VisualBlock("single", student, names=title, name_details=details, name_caption=caption)


def _training_summary(estimator, n_epochs):
    """One line on the training: epochs, and the last losses and score."""
    summary = f"Trained for {n_epochs} epochs"
    curve = getattr(estimator, "loss_curve_", None)
    if curve:
        summary += f"; last training loss {curve[-1]:.4g}"
    scores = getattr(estimator, "validation_scores_", None)
    if scores:
        summary += f", best validation score {estimator.best_validation_score_:.4f}"
    return summary + "."


def _student_title(student):
    """(name, caption) describing the ``student`` parameter."""
    if student is None:
        return "MLP", "default student"
    if isinstance(student, type) and issubclass(student, torch.nn.Module):
        return student.__name__, "torch.nn.Module class"
    if isinstance(student, torch.nn.Module):
        return type(student).__name__, "torch.nn.Module"
    if isinstance(student, NeuralNet):
        module = getattr(student, "module", None)
        module_name = getattr(module, "__name__", type(module).__name__)
        return f"{type(student).__name__}({module_name})", "skorch net"
    return type(student).__name__, None
