"""The package version, in a module of its own so that any module can read it
without importing the package's ``__init__`` (which imports everything)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

__version__ = "0.1.0.dev0"
