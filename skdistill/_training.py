"""Building and training a student: the steps every estimator that trains one
shares, as functions with explicit arguments.

:class:`~skdistill.DistilledClassifier`, :class:`~skdistill.DistilledRegressor`
and :class:`~skdistill.specialists.SpecialistEnsemble` all train skorch nets
through :func:`build_student` inside :class:`seeded_torch`, and
:func:`~skdistill.persistence.load_student` rebuilds a fitted one through
:func:`make_student_net`, so a loaded student is the same net.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import inspect
import threading
from dataclasses import dataclass, fields
from numbers import Integral

import numpy as np
import torch
from sklearn.base import clone
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split

from ._net import HoldoutSplit, StudentNet, TensorBatchIterator, TensorDataset
from ._progress import progress_callbacks
from ._student import MLP, Standardize, StudentModule, build_student_module
from ._threads import AdaptiveThreads, training_threads

__all__ = [
    "TrainingSettings",
    "build_student",
    "check_student_settings",
    "cuda_graph_kwargs",
    "early_stopping_on",
    "finish_training",
    "fit_net",
    "label_indices",
    "make_student_net",
    "resolve_device",
    "seeded_torch",
    "warm_start_module",
]

#: With ``early_stopping="auto"``, early stopping is on from this many
#: training rows (as in HistGradientBoostingClassifier).
AUTO_EARLY_STOPPING_MIN_SAMPLES = 10_000


@dataclass(frozen=True)
class TrainingSettings:
    """The parameters of a distiller that say how its student is trained.

    The names are the estimators' parameter names, so
    ``TrainingSettings.from_params(estimator.get_params())`` reads them off
    any distiller.
    """

    student: object = None
    hidden_layer_sizes: tuple = (256, 256)
    max_epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    early_stopping: object = True
    validation_fraction: float = 0.1
    n_iter_no_change: int = 20
    tol: float = 1e-4
    callbacks: object = None
    cuda_graph: object = "auto"
    verbose: int = 0

    @classmethod
    def from_params(cls, params):
        """The settings among ``params`` (a ``get_params()`` dict); others are ignored."""
        return cls(
            **{field.name: params[field.name] for field in fields(cls) if field.name in params}
        )


def check_student_settings(student, hidden_layer_sizes):
    """Refuse a ``student`` or ``hidden_layer_sizes`` that cannot build a net.

    Parameters
    ----------
    student : object
        A distiller's ``student`` parameter.
    hidden_layer_sizes : array-like
        A distiller's ``hidden_layer_sizes`` parameter.
    """
    not_sizes = (
        [hidden_layer_sizes]
        if isinstance(hidden_layer_sizes, (str, bytes)) or not np.iterable(hidden_layer_sizes)
        else [size for size in hidden_layer_sizes if not _is_layer_width(size)]
    )
    if not_sizes:
        raise ValueError(
            f"hidden_layer_sizes must be a tuple of positive integers, such as (256, 256); "
            f"got {hidden_layer_sizes!r}, and {not_sizes[0]!r} is not a layer width."
        )
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


def _is_layer_width(size):
    """A positive integer; not a bool (True is an Integral, but not a width)."""
    return isinstance(size, Integral) and not isinstance(size, (bool, np.bool_)) and size >= 1


def early_stopping_on(early_stopping, n_samples, has_validation):
    """Whether a fit on ``n_samples`` rows stops early on validation rows.

    ``"auto"``: from ``AUTO_EARLY_STOPPING_MIN_SAMPLES`` rows, or when
    validation rows are given.
    """
    if early_stopping == "auto":
        return has_validation or n_samples >= AUTO_EARLY_STOPPING_MIN_SAMPLES
    return bool(early_stopping) and (has_validation or n_samples >= 2)


def build_student(
    settings,
    X,
    n_outputs,
    *,
    criterion,
    seed,
    device,
    sample_weight=None,
    validation=None,
    module_kwargs=None,
    net_kwargs=None,
    module=None,
    scorer=None,
    strata=None,
):
    """An unfitted skorch net around a student module and its standardisation.

    Parameters
    ----------
    settings : TrainingSettings
    X : ndarray of shape (n_samples, n_features), float32
        The student's training features: they fit the standardisation.
    n_outputs : int
        Outputs of the student (classes, or regression outputs).
    criterion : dict
        skorch's ``criterion`` settings (``skdistill.losses.classification_criterion``).
    seed : int
        Seed of the early-stopping split.
    device : str
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the standardisation's statistics.
    validation : tuple (X_val, targets) or None, default=None
        Validation rows in place of a held-out share.
    module_kwargs : dict, default=None
        Extra arguments of :func:`~skdistill.student.build_student_module`.
    net_kwargs : dict, default=None
        Extra parameters of the :class:`~skdistill.student.StudentNet`.
    module : nn.Module, default=None
        A ready module to train instead of a new one (a specialist starts
        from its generalist's weights, a warm start from the previous fit's);
        its own standardisation is kept.
    scorer : skorch callback or None, default=None
        Records the validation score of each epoch (``skdistill._curves``);
        added to the user's net too.
    strata : callable or None, default=None
        Maps packed targets to each row's stratum for the held-out share of
        early stopping (``ClassificationTargets.strata``); None holds out
        rows at random.

    Returns
    -------
    net : skorch.NeuralNet
        Unfitted.
    """
    n_features = X.shape[1]
    user_net = settings.student if isinstance(settings.student, NeuralNet) else None
    if module is None:
        if user_net is not None:
            body = _user_net_body(user_net, n_features, n_outputs)
        elif settings.student is None:
            body = MLP(n_features, n_outputs, tuple(settings.hidden_layer_sizes))
        else:
            body = _make_body(settings.student, {}, n_features, n_outputs)
        standardize = Standardize.from_data(X, sample_weight)
        module = build_student_module(body, standardize, n_outputs, **(module_kwargs or {}))
    if user_net is not None:
        # The user's net keeps every setting of its own; only its module and
        # its loss are the distillation's.
        params = {
            name: value
            for name, value in clone(user_net).get_params(deep=False).items()
            if not name.startswith(("module__", "criterion__"))
        }
        if scorer is not None and params.get("callbacks") != "disable":
            params["callbacks"] = [*(params.get("callbacks") or []), scorer]
        return type(user_net)(**{**params, **criterion, "module": module})
    # As MLPClassifier: stop when the loss has not improved by tol for
    # n_iter_no_change epochs, on held-out rows (keeping the best
    # weights) or, without early stopping, on the training rows.
    if early_stopping_on(settings.early_stopping, len(X), validation is not None):
        if validation is None:
            train_split = HoldoutSplit(
                settings.validation_fraction, random_state=seed, stratify=strata
            )
        else:
            train_split = predefined_split(TensorDataset(*validation, device=device))
        monitor, load_best = "valid_loss", True
    else:
        train_split, monitor, load_best = None, "train_loss", False
    stopping = EarlyStopping(
        monitor=monitor,
        patience=settings.n_iter_no_change,
        threshold=settings.tol,
        threshold_mode="rel",
        load_best=load_best,
    )
    # On the CPU, one thread or the caller's, whichever steps faster
    # (it does nothing when training_threads already chose one).
    threads = [("threads", AdaptiveThreads())] if torch.device(device).type == "cpu" else []
    return make_student_net(
        module,
        criterion,
        settings,
        device=device,
        train_split=train_split,
        # The score first, so the stopping rule and the progress see it; the
        # progress last, so it reports what the user's callbacks recorded.
        callbacks=[
            *([] if scorer is None else [scorer]),
            stopping,
            *threads,
            *[clone(callback) for callback in settings.callbacks or []],
            *progress_callbacks(settings.verbose),
        ],
        net_kwargs=net_kwargs,
    )


def make_student_net(
    module, criterion, settings, *, device, train_split=None, callbacks=None, net_kwargs=None
):
    """The :class:`~skdistill.student.StudentNet` that trains (or holds) ``module``.

    Parameters
    ----------
    module : nn.Module
    criterion : dict
        skorch's ``criterion`` settings.
    settings : TrainingSettings
    device : str
    train_split : callable or None, default=None
    callbacks : list or None, default=None
    net_kwargs : dict, default=None

    Returns
    -------
    net : StudentNet
        Unfitted.
    """
    net_kwargs = {
        **cuda_graph_kwargs(settings.cuda_graph, device, module, net_kwargs),
        **(net_kwargs or {}),
    }
    return StudentNet(
        module=module,
        optimizer=torch.optim.Adam,
        lr=settings.lr,
        max_epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        dataset=TensorDataset,
        dataset__device=device,
        iterator_train=TensorBatchIterator,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatchIterator,
        train_split=train_split,
        callbacks=callbacks,
        device=device,
        # skorch's PrintLog (a wide table with colour codes) stays silent:
        # the distiller's verbose shows progress through its own callbacks.
        verbose=0,
        **net_kwargs,
        **criterion,
    )


def cuda_graph_kwargs(cuda_graph, device, module, net_kwargs=None):
    """The StudentNet parameters that turn its CUDA-graph step on, or none.

    ``"auto"``: on for a CUDA device, the built-in MLP student and no
    derivative term. ``True``: asked for; the net falls back to eager
    steps, with a warning, where the step cannot be captured (on the CPU
    among others). ``False``: off.

    Parameters
    ----------
    cuda_graph : "auto" or bool
        A distiller's ``cuda_graph`` parameter.
    device : str
    module : nn.Module
        The student module.
    net_kwargs : dict, default=None
        The other extra parameters of the net (``derivative_weight``).

    Returns
    -------
    kwargs : dict
        ``cuda_graph=True``, with ``optimizer__capturable=True`` on CUDA
        (torch's Adam refuses it for CPU tensors); empty when off.
    """
    on_cuda = torch.device(device).type == "cuda"
    if cuda_graph == "auto":
        derivative = (net_kwargs or {}).get("derivative_weight", 0) > 0
        cuda_graph = on_cuda and not derivative and _is_builtin_mlp(module)
    if not cuda_graph:
        return {}
    return {"cuda_graph": True, **({"optimizer__capturable": True} if on_cuda else {})}


def _is_builtin_mlp(module):
    """Whether a student module is the package's MLP: no data-dependent Python control flow."""
    return type(module) is StudentModule and type(module.body) is MLP


def fit_net(net, X, y):
    """``net.fit(X, y)`` with torch's CPU threads chosen for the fit and restored after.

    Call it inside :class:`seeded_torch`, so that fits in threads of one
    process take turns with the thread count too.

    Parameters
    ----------
    net : skorch.NeuralNet
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, ...)

    Returns
    -------
    net : skorch.NeuralNet
        Fitted.
    """
    with training_threads(net, len(X)):
        return net.fit(X, y)


def warm_start_module(net, settings):
    """A copy of a fitted student's module, to continue training it (``warm_start``).

    Parameters
    ----------
    net : skorch.NeuralNet
        The fitted student (``student_``).
    settings : TrainingSettings
        The distiller's settings now: they must still describe the module.

    Returns
    -------
    module : nn.Module
        A deep copy, with the fitted weights and standardisation; the
        previous fit's net is left as it was.

    Raises
    ------
    ValueError
        If ``student`` or ``hidden_layer_sizes`` changed since that fit.
    """
    module = copy.deepcopy(net.module_)
    problem = _architecture_change(getattr(module, "body", None), settings)
    if problem is not None:
        raise ValueError(
            f"warm_start=True continues the previous fit, whose student has {problem}. "
            "Keep the student's settings, or set warm_start=False to start over."
        )
    return module


def _architecture_change(body, settings):
    """How a fitted body differs from what the settings build now, or None."""
    expected = _body_class(settings.student)
    if expected is not None and not isinstance(body, expected):
        return f"a {type(body).__name__} body, but student now builds a {expected.__name__}"
    if settings.student is None and isinstance(body, MLP):
        widths = body.layer_sizes[1:-1]
        if widths != tuple(settings.hidden_layer_sizes):
            return (
                f"hidden layers {widths}, but hidden_layer_sizes is now "
                f"{tuple(settings.hidden_layer_sizes)}"
            )
    return None


def _body_class(student):
    """The class of the body a ``student`` parameter builds, where it is known."""
    if student is None:
        return MLP
    if isinstance(student, NeuralNet):
        student = student.module
    if isinstance(student, type):
        return student
    return type(student) if isinstance(student, torch.nn.Module) else None


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


def _user_net_body(net, n_features, n_outputs):
    """The body of a user's unfitted NeuralNet: its module, built with its ``module__`` params."""
    params = net.get_params(deep=False)
    body_kwargs = {
        name[len("module__") :]: value
        for name, value in params.items()
        if name.startswith("module__")
    }
    return _make_body(params["module"], body_kwargs, n_features, n_outputs)


def finish_training(net):
    """A student net after ``fit``: refused if its training diverged, else put in eval mode.

    Parameters
    ----------
    net : skorch.NeuralNet
        Fitted.

    Returns
    -------
    net : skorch.NeuralNet
        The same net, its module in eval mode (a fitted student predicts in
        eval mode; prediction never switches it).

    Raises
    ------
    ValueError
        If a weight or buffer of the module is NaN or infinite, as
        scikit-learn's MLP does: such a student would predict NaN.
    """
    diverged = [
        name
        for name, tensor in net.module_.state_dict().items()
        if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if diverged:
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may contain "
            "large values and need to be preprocessed. The student's "
            f"{', '.join(diverged[:3])}{' ...' if len(diverged) > 3 else ''} became NaN or "
            f"infinite during training: scale the features (a StandardScaler, or a "
            f"preprocessor), or lower lr (now {net.lr})."
        )
    net.module_.eval()
    return net


def resolve_device(device):
    """A distiller's ``device`` parameter as a torch device string, checked.

    ``"auto"`` is CUDA when available, else the CPU.
    """
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


class seeded_torch:
    """Seed torch's generators for one fit, restoring them afterwards.

    Fits in threads of one process take turns: the generators are shared,
    and a fit owns them from seeding to the end of training, so that the
    same ``random_state`` gives the same model whatever runs beside it.
    ``device=None`` (a net whose accelerator places it) seeds the CPU only.

    Parameters
    ----------
    seed : int
    device : str, torch.device or None
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


def label_indices(y, classes):
    """Index of each label of y in ``classes``; a clear error for unknown labels.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    indices : ndarray of int of shape (n_samples,)
    """
    labels, inverse = np.unique(y, return_inverse=True)
    position = {label: index for index, label in enumerate(classes.tolist())}
    unknown = [label for label in labels.tolist() if label not in position]
    if unknown:
        raise ValueError(
            f"y contains labels the teacher does not know: {unknown[:10]}. "
            f"The teacher's classes_ are {classes.tolist()[:50]}."
        )
    return np.array([position[label] for label in labels.tolist()], dtype=np.intp)[inverse.ravel()]
