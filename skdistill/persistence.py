"""Save and load a distilled student without pickle (safetensors and JSON)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._persistence import (
    FORMAT_VERSION,
    METADATA_FILE,
    PREPROCESSOR_FILE,
    WEIGHTS_FILE,
    load_student,
    save_student,
)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "PREPROCESSOR_FILE",
    "WEIGHTS_FILE",
    "load_student",
    "save_student",
]
