"""Names that moved: the old import path keeps working, with a FutureWarning.

A module that became private leaves behind a module of the old name whose
attributes are looked up lazily (PEP 562), so that importing it costs
nothing and warns nobody; only using one of its names does.
"""

# Authors: The skdistill developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib
import warnings

__all__ = ["moved_names"]

#: The release in which the old paths go away.
REMOVED_IN = "0.3"


def moved_names(old_module, new_homes):
    """The ``__getattr__`` of a module whose names moved.

    No ``__dir__``: ``dir()`` of the old module lists none of the moved
    names, so tools that walk a module's members (doctest collectors) do not
    set the warnings off.

    Parameters
    ----------
    old_module : str
        The old module's ``__name__``.
    new_homes : dict of str to str
        For each name, the module it is imported from now.

    Returns
    -------
    getattr : callable
        To assign to the old module's ``__getattr__``.

    Examples
    --------
    >>> import warnings
    >>> from skdistill.utils._deprecation import moved_names
    >>> getattr_ = moved_names("old", {"DistilledClassifier": "skdistill"})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     getattr_("DistilledClassifier").__name__
    'DistilledClassifier'
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    old.DistilledClassifier is deprecated: import it from skdistill ... removed in 0.3.
    """

    def __getattr__(name):
        if name not in new_homes:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        home = new_homes[name]
        warnings.warn(
            f"{old_module}.{name} is deprecated: import it from {home} instead. "
            f"The module {old_module} will be removed in {REMOVED_IN}.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__
