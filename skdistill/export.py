"""Export a fitted student to ONNX, for serving without Python or torch."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._export import read_onnx_metadata, to_onnx

__all__ = ["read_onnx_metadata", "to_onnx"]
