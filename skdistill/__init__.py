"""skdistill: distil any fitted scikit-learn model into a small neural net.

The public names are re-exported here; implementation lives in modules
named for what they hold: ``classifier`` (DistilledClassifier),
``regressor`` (DistilledRegressor), ``distiller`` (what they share),
``teachers`` (teacher outputs and ensembles), ``losses``, ``student`` (the
network and its data pipeline), ``transfer`` (synthetic transfer sets), ``metrics``
(fidelity to the teacher), ``bias`` (output-bias calibration),
``export`` (ONNX), ``persistence`` (safetensors, no pickle), ``specialists``
(Hinton's specialists for confusable classes), ``plotting`` (matplotlib
figures; an optional extra, not imported here).
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from .classifier import DistilledClassifier
from .export import to_onnx
from .persistence import load_student, save_student
from .regressor import DistilledRegressor
from .specialists import SpecialistEnsemble
from .teachers import TeacherEnsemble
from .transfer import Munge, RandomMarginal

__version__ = "0.1.0.dev0"

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
