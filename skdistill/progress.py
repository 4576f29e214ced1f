"""Progress of a student's training: a per-epoch bar for skorch nets."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._progress import EpochProgressBar

__all__ = ["EpochProgressBar"]
