"""Synthetic transfer sets: unlabeled rows for a teacher to label (Bucila et al. 2006)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._transfer import Munge, RandomMarginal, nearest_other_row, neighbour_encoding

__all__ = ["Munge", "RandomMarginal", "nearest_other_row", "neighbour_encoding"]
