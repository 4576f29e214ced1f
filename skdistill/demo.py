"""Deprecated: the demo is run by ``python -m skdistill`` (``skdistill._demo``)."""

from .utils._deprecation import moved_names

__getattr__ = moved_names(
    __name__, {name: "skdistill._demo" for name in ("compare", "format_comparison", "run_demo")}
)
