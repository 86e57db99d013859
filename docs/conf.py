"""Sphinx configuration of the dynamo-toolkit documentation.

Build with ``make docs`` (``sphinx-build -W --keep-going -q -b html docs
docs/_build/html``). Every extension used here ships with Sphinx or lives in
``docs/_ext``, and none needs network access or extra binaries.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dynamo_toolkit import __version__

# Local extensions, rendering from the code: config_reference the configuration
# tables, module_map the file-by-file lists of docs/layout.rst.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "dynamo-toolkit"
author = "the dynamo-toolkit authors"
copyright = "the dynamo-toolkit authors, Apache-2.0"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "config_reference",
    "module_map",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"dynamo-toolkit {release}"

# Unresolvable references (mostly to the standard library, since intersphinx
# would need the network) are left as plain text rather than warnings.
nitpicky = False

# -- autodoc -----------------------------------------------------------------

# Type hints go into the parameter descriptions, where long unions stay
# readable; signatures show names only.
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
# The code's docstrings are plain reST. Napoleon stays loaded for Google- or
# NumPy-style sections, but both parsers are off for now: the Google parser
# reads any ``#: words: more words`` attribute comment as "type: description"
# and mangles it (e.g. interfaces.transport.Handler, VIRTUAL_EPOCH).
napoleon_google_docstring = False
napoleon_numpy_docstring = False

# Keep the sources readable next to the reference (no network needed).
viewcode_line_numbers = True
