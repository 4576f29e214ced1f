"""Deprecated: ``TeacherMixin`` is internal (``skdistill._base``)."""

from .utils._deprecation import moved_names

__getattr__ = moved_names(__name__, {"TeacherMixin": "skdistill._base"})
