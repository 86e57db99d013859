"""A Sphinx directive that lists a package's modules with what each holds.

Usage, in any page::

    .. module-map:: lab/dynamo_toolkit_lab

One row per module (``__init__`` first, then by path, sub-packages
included): its path in the repository and the first line of its
docstring. The modules are parsed, not imported, and the list is read at
every build, so it cannot drift from the tree. A module without a
docstring is an error, and with ``-W`` so is the build.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


def module_rows(folder: str) -> list[tuple[str, str | None]]:
    """``(path, first docstring line or None)`` for every module under ``folder``."""
    base = ROOT / folder
    paths = sorted(base.rglob("*.py"), key=lambda p: (p.parent != base, p.name != "__init__.py", p))
    rows = []
    for path in paths:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        first = " ".join(doc.split("\n\n", 1)[0].split()) if doc else None
        rows.append((str(path.relative_to(ROOT)), first))
    return rows


class ModuleMap(SphinxDirective):
    """``.. module-map:: FOLDER``: a two-column table, module and purpose."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        folder = self.arguments[0]
        rows = module_rows(folder)
        missing = [path for path, first in rows if first is None]
        if not rows or missing:
            error = self.state.document.reporter.error(
                f"module-map {folder}: no modules, or modules without a docstring: {missing}",
                line=self.lineno,
            )
            return [error]
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 2 5", ""]
        lines += ["   * - module", "     - what it holds"]
        for path, first in rows:
            lines += [f"   * - ``{path}``", f"     - {first}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=folder), self.content_offset, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("module-map", ModuleMap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
