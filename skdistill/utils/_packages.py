"""Optional packages: which of them are missing, for errors that say what to install."""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib

__all__ = ["missing_packages"]


def missing_packages(names):
    """The names, among ``names``, of the packages that cannot be imported.

    Parameters
    ----------
    names : iterable of str

    Returns
    -------
    missing : list of str
        In the order of ``names``.

    Examples
    --------
    >>> from skdistill.utils._packages import missing_packages
    >>> missing_packages(["numpy", "no_such_package_here"])
    ['no_such_package_here']
    """
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing
