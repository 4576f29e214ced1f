"""Output-bias calibration, for classes a transfer set lacks (Hinton 2015)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._bias import fit_logit_bias

__all__ = ["fit_logit_bias"]
