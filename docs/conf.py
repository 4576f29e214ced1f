"""Sphinx configuration of the skdistill documentation.

Build from the repository root::

    python -m pip install -e ".[docs,onnx]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``examples/plot_*.py``) is executed during the build; set
``SKDISTILL_DOCS_NO_GALLERY=1`` to skip running it while editing prose.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import skdistill  # noqa: E402

project = "skdistill"
author = "The skdistill developers"
copyright = "The skdistill developers, BSD-3-Clause"
release = skdistill.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
# benchmarks/results/specialists.md goes from "#" to "###"; it is included as
# written by the benchmark script.
suppress_warnings = ["myst.header"]

# -- API reference ------------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
# Members follow each module's __all__ (the package's re-exports included).
autosummary_ignore_module_all = False
# Names re-exported by the package, documented once under ``skdistill``
# (see _templates/autosummary/module.rst).
autosummary_context = {"toplevel": [name for name in skdistill.__all__ if name[0] != "_"]}
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
# numpydoc renders the Parameters/Attributes sections; the class template
# below lists the methods, so numpydoc's own member tables are off (they
# would need a stub page for every inherited scikit-learn method).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Every documented docstring is checked against numpydoc's rules (warnings,
# so errors under -W) but for those the house style departs from, as in
# tests/test_docstrings.py: returns are named, an extended summary and a See
# Also section are not required everywhere, a summary may run to a second
# line. Examples are required of classes and functions by that test (here a
# method could not be told from a function).
numpydoc_validation_checks = {"all", "ES01", "SA01", "SS06", "GL01", "GL02", "RT02", "EX01"}
# Private helpers and inherited third-party members are not held to them.
numpydoc_validation_exclude = {r"\._[a-z]", r"\.__[a-z_]+__$"}


def _quote_shape_names(app, what, name, obj, options, lines):
    """Quote attribute names in shapes: ``(n_features_in_,)`` would be a link.

    reStructuredText reads ``n_features_in_`` as a reference to a target
    named "n_features_in"; scikit-learn writes ``(`n_features_in_`,)``. This
    keeps docstrings written either way building without warnings.
    """
    for i, line in enumerate(lines):
        lines[i] = re.sub(r"\((?<!`)(n_\w+_),\)", r"(`\1`,)", line)


def _unlink_foreign_roles(app, what, name, obj, options, lines):
    """Plain text for the :ref: and :term: roles of inherited scikit-learn methods.

    ``score`` and friends come from scikit-learn, whose docstrings point at
    labels of scikit-learn's own documentation (``accuracy_score``).
    """
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        line = re.sub(r":(?:ref|term):`([^`<]*?)\s*<[^`]*>`", r"\1", line)
        lines[i] = re.sub(r":(?:ref|term):`([^`]*)`", r"\1", line)


def setup(app):
    app.connect("autodoc-process-docstring", _quote_shape_names, priority=400)
    app.connect("autodoc-process-docstring", _unlink_foreign_roles, priority=400)


# -- Markdown (MyST) ------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- Gallery ------------------------------------------------------------------

# The examples are tiny: one torch thread is as fast as several for them, and
# leaves the other cores alone on a shared CI machine.
torch.set_num_threads(1)


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Only plot_*.py files are executed; the others (dask, accelerate: they
    # need a cluster or GPUs) are shown as code.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "plot_gallery": os.environ.get("SKDISTILL_DOCS_NO_GALLERY", "") == "",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib",),
    "doc_module": ("skdistill",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skdistill": None},
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 0,
}

# -- HTML ---------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skdistill {release}"
html_static_path = ["_static"]
# Code and output that fit (or wrap, or scroll) at a laptop's 1280 px.
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "navigation_with_keys": False,
}
html_show_sourcelink = True
# Pages without sub-pages get no (empty) section navigation: the room goes to the text.
_SINGLE_PAGES = ("index", "install", "getting_started", "defaults", "benchmarks", "changes")
html_sidebars = {page: [] for page in _SINGLE_PAGES}
