"""Deprecated: import :class:`~skdistill.DistilledClassifier` from ``skdistill``."""

from .utils._deprecation import moved_names

__getattr__ = moved_names(__name__, {"DistilledClassifier": "skdistill"})
