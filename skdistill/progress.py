"""Progress of a student's training: a per-epoch bar or a per-epoch log line for skorch nets."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._progress import EpochLog, EpochProgressBar

__all__ = ["EpochLog", "EpochProgressBar"]
