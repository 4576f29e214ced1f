"""Deprecated: ``BaseDistiller`` is internal (``skdistill._distiller``)."""

from .utils._deprecation import moved_names

__getattr__ = moved_names(__name__, {"BaseDistiller": "skdistill._distiller"})
