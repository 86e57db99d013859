"""A Sphinx directive that renders a configuration table from an attrs class.

Usage, in any page::

    .. config-reference:: dynamo_toolkit.config.StoreConfig

One row per field of the class: the setting's name, its type, its default
and its description. Everything comes from the class, so the table cannot
drift from the code. Each field documents itself in its ``metadata``:

``"doc"`` (required)
    The description, as reST. Only references that work from any page
    (``:ref:``, ``:class:``) belong in it; ``:doc:`` paths are relative.
``"unit"`` (optional)
    What a number counts, e.g. ``"seconds"`` or ``"bytes"``. It is shown with
    the type, and large defaults get a readable form (``10800.0 (3 h)``).
``"key"`` (optional)
    The setting's name in the file when it differs from the field's name.
    ``None`` leaves the field out of the table: it is filled from another
    section (it still needs its ``"doc"``).
``"default"`` (optional)
    Text shown as the default when the class has none but the file does
    (e.g. a path derived from another setting).

A field without ``"doc"`` is an error, and with ``-W`` so is the build.
"""

from __future__ import annotations

import importlib
import json
from pathlib import PurePath
from typing import Any

import attrs
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

__all__ = ["ConfigReference", "Row", "option_rows", "setup"]

HEADERS = ("Setting", "Type", "Default", "Meaning")
WIDTHS = (22, 14, 18, 46)


@attrs.frozen
class Row:
    """One setting as the table shows it (all plain text but ``doc``, which is reST)."""

    key: str
    type: str
    default: str
    doc: str


def _import(path: str) -> type[Any]:
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"{path!r} is not a dotted path module.Class")
    cls = getattr(importlib.import_module(module), name)
    if not attrs.has(cls):
        raise ValueError(f"{path} is not an attrs class")
    return cls


def _type_name(field: attrs.Attribute[Any]) -> str:
    kind = field.type
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", repr(kind))
    unit = field.metadata.get("unit")
    return f"{name}, {unit}" if unit else str(name)


def _readable(value: float, unit: str | None) -> str:
    """``67108864`` bytes as ``64 MiB``, ``10800.0`` seconds as ``3 h``; else ``""``."""
    if unit == "bytes":
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size and value % size == 0:
                return f"{int(value // size)} {name}"
    if unit == "seconds":
        for size, name in ((86_400, "day"), (3600, "h"), (60, "min")):
            if value >= size and value % size == 0:
                count = int(value // size)
                return f"{count} {name}{'s' if name == 'day' and count > 1 else ''}"
    return ""


def _default_text(field: attrs.Attribute[Any]) -> str:
    if "default" in field.metadata:
        return str(field.metadata["default"])
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # a function in the stubs
        factory: Any = default
        if factory.takes_self:
            return "computed"
        default = factory.factory()
    if isinstance(default, bool):
        text = "true" if default else "false"
    elif isinstance(default, str):
        text = json.dumps(default)  # TOML's basic string
    elif isinstance(default, int | float):
        text = repr(default)
        readable = _readable(default, field.metadata.get("unit"))
        if readable:
            return f"{text} ({readable})"
    elif isinstance(default, PurePath):
        text = json.dumps(str(default))
    else:
        text = repr(default)
    return text


def option_rows(cls: type[Any]) -> list[Row]:
    """The table of ``cls``: one row per field, in the class's order.

    Fields whose metadata has ``"key": None`` are left out. Raises
    ``ValueError`` naming every field that lacks a ``"doc"``.
    """
    fields = attrs.fields(cls)
    undocumented = [f.name for f in fields if not str(f.metadata.get("doc", "")).strip()]
    if undocumented:
        raise ValueError(
            f"{cls.__module__}.{cls.__qualname__}: field(s) {', '.join(undocumented)} "
            'have no metadata["doc"]'
        )
    rows = []
    for field in fields:
        key = field.metadata.get("key", field.name)
        if key is None:
            continue
        rows.append(Row(key, _type_name(field), _default_text(field), field.metadata["doc"]))
    return rows


class ConfigReference(SphinxDirective):
    """``.. config-reference:: module.Class``: the table of the class's settings."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        path = self.arguments[0]
        try:
            rows = option_rows(_import(path))
        except (ImportError, AttributeError, ValueError) as exc:
            return [self.state_machine.reporter.error(f"config-reference: {exc}", line=self.lineno)]
        table = nodes.table(classes=["config-reference"])
        group = nodes.tgroup(cols=len(HEADERS))
        table += group
        for width in WIDTHS:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self._row([nodes.paragraph(text=header) for header in HEADERS])
        group += head
        body = nodes.tbody()
        for row in rows:
            meaning = nodes.entry()
            self.state.nested_parse(StringList(row.doc.splitlines(), path), 0, meaning)
            default = (
                nodes.paragraph(text=row.default)
                if row.default == "required"
                else nodes.paragraph("", "", nodes.literal(text=row.default))
            )
            body += self._row(
                [
                    nodes.paragraph("", "", nodes.literal(text=row.key)),
                    nodes.paragraph(text=row.type),
                    default,
                    meaning,
                ]
            )
        group += body
        return [table]

    @staticmethod
    def _row(cells: list[nodes.Element]) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            if isinstance(cell, nodes.entry):
                row += cell
            else:
                entry = nodes.entry()
                entry += cell
                row += entry
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("config-reference", ConfigReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
