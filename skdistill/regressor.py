"""Deprecated: import :class:`~skdistill.DistilledRegressor` from ``skdistill``."""

from .utils._deprecation import moved_names

__getattr__ = moved_names(__name__, {"DistilledRegressor": "skdistill"})
