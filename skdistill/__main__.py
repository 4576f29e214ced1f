"""``python -m skdistill``: the command line (``skdistill._cli``)."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
