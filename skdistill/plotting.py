"""Figures for distillation (needs matplotlib: ``pip install "skdistill[plotting]"``)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._plotting import (
    plot_reliability,
    plot_search_scores,
    plot_softened_distribution,
    plot_transfer_size_agreement,
)

__all__ = [
    "plot_reliability",
    "plot_search_scores",
    "plot_softened_distribution",
    "plot_transfer_size_agreement",
]
