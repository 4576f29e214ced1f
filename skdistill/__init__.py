"""skdistill: distil any fitted scikit-learn model into a small neural net.

The estimators and the functions most users need are importable from here.
The public submodules (``metrics``, ``transfer``, ``teachers``,
``specialists``, ``student``, ``losses``, ``bias``, ``export``,
``persistence``, ``progress``, ``plotting``) hold the tools behind them;
the implementation lives in private modules (``skdistill._*``).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._classifier import DistilledClassifier
from ._export import to_onnx
from ._persistence import load_student, save_student
from ._regressor import DistilledRegressor
from ._specialists import SpecialistEnsemble
from ._teacher_ensemble import TeacherEnsemble
from ._transfer import Munge, RandomMarginal
from ._version import __version__

__all__ = [
    "DistilledClassifier",
    "DistilledRegressor",
    "Munge",
    "RandomMarginal",
    "SpecialistEnsemble",
    "TeacherEnsemble",
    "__version__",
    "load_student",
    "save_student",
    "to_onnx",
]
