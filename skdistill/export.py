"""Export a fitted student to ONNX, for serving without Python or torch."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

from ._export import onnx_feeds, read_onnx_metadata, to_onnx

__all__ = ["onnx_feeds", "read_onnx_metadata", "to_onnx"]
