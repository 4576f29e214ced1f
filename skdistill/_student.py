"""The student's torch modules: an MLP body behind its input standardisation.

The modules hold everything a fitted student needs to map raw features to
outputs (the standardisation statistics, a regression student's output
scale, a classifier's fixed logit correction) as buffers, so that a saved
``state_dict``, an ONNX graph or a pickled module carries it along.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import copy

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "Standardize", "StudentModule", "build_student_module", "folded_float64"]

#: A feature's scale is at least this share of its range, so that a nearly
#: constant feature (a rare binary flag, an image's border pixel) is not
#: blown up by a tiny standard deviation.
MIN_SCALE_OF_RANGE = 0.1

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Standardize(nn.Module):
    """Centre and scale the inputs with statistics fitted on training rows.

    The statistics are buffers: they are saved with the module and moved
    to its device with it, so the student takes raw features.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
        Subtracted from each feature.
    scale : array-like of shape (n_features,)
        Each centred feature is divided by it, so it must be positive
        (:meth:`from_data` makes sure it is).

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import Standardize
    >>> layer = Standardize.from_data(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> layer(torch.tensor([[1.0, 5.0]]))
    tensor([[0., 0.]])
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    @classmethod
    def from_data(cls, X, sample_weight=None):
        """Fit the statistics on X (float64 sums, so large values do not overflow).

        The scale is the standard deviation, but at least
        ``MIN_SCALE_OF_RANGE`` times the feature's range, and 1 for a
        constant feature (or one whose spread float32 cannot hold). Both
        statistics are finite in float32 and the standardised training rows
        too: for a feature whose values lie further from its mean than
        float32 reaches, the mean is replaced by the centre of the range.
        The sums run over chunks of rows, so that a large float32 X is never
        copied whole to float64.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training rows, as the student takes them (float32, or any
            numeric dtype: the sums are float64 either way).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the mean and the standard deviation
            (not in the range); None weighs every row 1.

        Returns
        -------
        standardize : Standardize
            A layer with the fitted ``mean`` and ``scale``.
        """
        n_samples = len(X)
        weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight)
        total = weights.sum(dtype=np.float64)
        mean = (
            sum(
                weights[rows] @ np.asarray(X[rows], dtype=np.float64) for rows in _chunks(n_samples)
            )
            / total
        )
        variance = (
            sum(
                weights[rows] @ (np.asarray(X[rows], dtype=np.float64) - mean) ** 2
                for rows in _chunks(n_samples)
            )
            / total
        )
        low = np.min(X, axis=0).astype(np.float64)
        high = np.max(X, axis=0).astype(np.float64)
        # The layer computes (X - mean) / scale in float32: where a row lies
        # further from the mean than float32 reaches (values near its limit
        # on both sides), the centre of the range takes the mean's place, as
        # no row is further from it than half the range.
        too_far = np.maximum(high - mean, mean - low) > _FLOAT32_MAX
        mean = np.where(too_far, low / 2 + high / 2, mean)
        scale = np.maximum(np.sqrt(variance), MIN_SCALE_OF_RANGE * (high - low))
        # The scale must be a positive, normal float32 (a spread of a few
        # subnormal values rounds to 0 or loses its digits there): else the
        # feature is as good as constant.
        scale = np.minimum(scale, _FLOAT32_MAX)
        scale[~(scale >= np.finfo(np.float32).tiny)] = 1.0
        return cls(mean, scale)

    def forward(self, X):
        """Standardise a batch of rows.

        Parameters
        ----------
        X : Tensor of shape (batch_size, n_features)
            Raw features, float32, on the module's device.

        Returns
        -------
        X_standardized : Tensor of shape (batch_size, n_features)
            ``(X - mean) / scale``.
        """
        return (X - self.mean) / self.scale


def _chunks(n_samples, size=65_536):
    """Slices of consecutive rows."""
    return [slice(start, start + size) for start in range(0, n_samples, size)]


class MLP(nn.Module):
    """A multilayer perceptron mapping features to class logits.

    Parameters
    ----------
    n_features : int
        Width of the input layer.
    n_classes : int
        Number of outputs: the class logits (or a regressor's outputs).
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers, each followed by a ReLU; empty for a
        linear model.
    dropout : float, default=0.0
        Dropout after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skdistill.student import MLP
    >>> MLP(4, 3, hidden_layer_sizes=(8,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> MLP(4, 3, hidden_layer_sizes=(8,)).layer_sizes
    (4, 8, 3)
    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(256, 256), dropout=0.0):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    @property
    def layer_sizes(self):
        """Widths of the layers, input and output included: ``(64, 256, 256, 10)``."""
        linears = [layer for layer in self.layers if isinstance(layer, nn.Linear)]
        return (linears[0].in_features, *(layer.out_features for layer in linears))

    def forward(self, X):
        """Map a batch of rows to their logits.

        Parameters
        ----------
        X : Tensor of shape (batch_size, n_features)
            Features, float32 (standardised inside a :class:`StudentModule`).

        Returns
        -------
        logits : Tensor of shape (batch_size, n_classes)
            The last linear layer's outputs.
        """
        return self.layers(X)


class StudentModule(nn.Module):
    """A student body behind its input standardisation.

    Parameters
    ----------
    standardize : Standardize
        The input standardisation, applied before ``body``.
    body : nn.Module
        Maps standardised ``(batch, n_features)`` inputs to outputs.
    n_outputs : int, default=None
        With a number, a ``logit_bias`` buffer of that size (zeros) is added
        to the body's outputs: a correction set after training, not learnt
        (see :func:`skdistill.bias.fit_logit_bias`).
    output_scale : array-like of shape (n_outputs,), default=None
        With values, the body's outputs are multiplied by this buffer
        before ``logit_bias`` is added: a regression student learns
        standardised targets and gives them back in the teacher's units.
    output_offset : array-like of shape (n_outputs,), default=None
        Initial value of ``logit_bias`` (zeros when None): a regression
        student's target mean.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import MLP, Standardize, StudentModule
    >>> module = StudentModule(Standardize.from_data(np.eye(3)), MLP(3, 2, (4,)))
    >>> module(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, standardize, body, n_outputs=None, output_scale=None, output_offset=None):
        super().__init__()
        self.standardize = standardize
        self.body = body
        bias = None if n_outputs is None else torch.zeros(n_outputs)
        if bias is not None and output_offset is not None:
            bias += torch.as_tensor(np.asarray(output_offset), dtype=torch.float32)
        self.register_buffer("logit_bias", bias)
        if output_scale is not None:
            output_scale = torch.as_tensor(np.asarray(output_scale), dtype=torch.float32)
        self.register_buffer("output_scale", output_scale)

    def forward(self, X):
        """Map a batch of raw rows to the student's outputs.

        Parameters
        ----------
        X : Tensor of shape (batch_size, n_features)
            Raw features, float32, on the module's device.

        Returns
        -------
        outputs : Tensor of shape (batch_size, n_outputs)
            ``body(standardize(X))``, multiplied by ``output_scale`` and
            then shifted by ``logit_bias`` where the module has them.
        """
        outputs = self.body(self.standardize(X))
        if self.output_scale is not None:
            outputs = outputs * self.output_scale
        if self.logit_bias is not None:
            outputs = outputs + self.logit_bias
        return outputs


def build_student_module(body, standardize, n_outputs, *, output_scale=None, output_offset=None):
    """The student module of every built-in distiller: ``body`` behind ``standardize``.

    One place builds it, for training and for loading a saved student alike,
    so that both give the same network.

    Parameters
    ----------
    body : nn.Module
        Maps standardised ``(batch, n_features)`` inputs to ``n_outputs`` outputs.
    standardize : Standardize
        The input standardisation: fitted on the training rows
        (:meth:`Standardize.from_data`), or holding the saved statistics
        when a student is loaded.
    n_outputs : int
        Size of the ``logit_bias`` buffer added to the outputs.
    output_scale, output_offset : array-like of shape (n_outputs,), default=None
        A regression student's target scale and mean; see :class:`StudentModule`.

    Returns
    -------
    module : StudentModule
        ``body`` behind ``standardize``, with a ``logit_bias`` buffer of
        ``n_outputs`` values (``output_offset``, or zeros).

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.student import MLP, Standardize, build_student_module
    >>> module = build_student_module(MLP(3, 2, (4,)), Standardize(np.zeros(3), np.ones(3)), 2)
    >>> module.logit_bias.tolist()
    [0.0, 0.0]
    """
    return StudentModule(
        standardize,
        body,
        n_outputs=n_outputs,
        output_scale=output_scale,
        output_offset=output_offset,
    )


def folded_float64(module):
    """The built-in student as a float64 stack of linear and ReLU layers, or None.

    The input standardisation is folded into the first linear layer and the
    output scale and ``logit_bias`` into the last, so that prediction runs
    half as many operations (the standardisation's subtraction and division,
    the output's scale and shift); dropout is left out, as in eval mode.
    The result computes the same function to float64 precision.

    Parameters
    ----------
    module : nn.Module
        A student module.

    Returns
    -------
    layers : nn.Sequential or None
        None unless ``module`` is a :class:`StudentModule` around
        :class:`Standardize` and :class:`MLP`.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdistill.student import MLP, Standardize, build_student_module
    >>> X = np.random.default_rng(0).normal(size=(6, 3))
    >>> module = build_student_module(MLP(3, 2, (4,)), Standardize.from_data(X), 2)
    >>> from skdistill._student import folded_float64
    >>> folded = folded_float64(module)
    >>> torch.allclose(folded(torch.from_numpy(X)), module(torch.from_numpy(X).float()).double())
    True
    """
    if not (
        type(module) is StudentModule
        and type(module.standardize) is Standardize
        and type(module.body) is MLP
    ):
        return None
    layers = [
        copy.deepcopy(layer).double()
        for layer in module.body.layers
        if not isinstance(layer, nn.Dropout)
    ]
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        first, last = linears[0], linears[-1]
        scale = module.standardize.scale.double()
        first.weight /= scale
        first.bias -= first.weight @ module.standardize.mean.double()
        if module.output_scale is not None:
            last.weight *= module.output_scale.double()[:, None]
            last.bias *= module.output_scale.double()
        if module.logit_bias is not None:
            last.bias += module.logit_bias.double()
    return nn.Sequential(*layers).eval()
