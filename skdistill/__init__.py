"""skdistill: distil any fitted scikit-learn classifier into a small neural net.

The public names are re-exported here; implementation lives in modules
named for what they hold.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from .classifier import DistilledClassifier

__version__ = "0.1.0.dev0"

__all__ = ["DistilledClassifier", "__version__"]
