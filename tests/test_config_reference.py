"""The configuration reference is generated from the code and lists every setting.

``docs/_ext/config_reference.py`` renders the option tables of
``docs/configuration.rst`` and ``docs/server/configuration.rst`` from the
attrs fields of the configuration classes. These tests build a small Sphinx
project with the directive and check the tables it produces: a new setting
without documentation fails here (and breaks the ``-W`` docs build).
"""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import docutils_namespace

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit_server import settings as node_settings
from dynamo_toolkit_server.settings import NodeSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import config_reference  # noqa: E402  (lives in docs/_ext)

CLASSES = {
    "dynamo_toolkit.config.StoreConfig": StoreConfig,
    "dynamo_toolkit_server.settings.NodeSettings": NodeSettings,
}


def _build(tmp_path: Path, body: str) -> tuple[nodes.document, str]:
    """Build a one-page project with ``body``; its doctree and the warnings."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n")
    (src / "index.rst").write_text("Settings\n========\n\n" + body)
    warnings = io.StringIO()
    # As sphinx-build does: the directives, roles and node classes this build
    # registers are dropped afterwards, so a later build in this process (the
    # docs build of test_docs.py, with -W) does not warn that they exist.
    with docutils_namespace():
        app = Sphinx(
            str(src),
            str(src),
            str(tmp_path / "out"),
            str(tmp_path / "doctrees"),
            "dummy",
            confoverrides={"extensions": ["config_reference"]},
            status=None,
            warning=warnings,
            freshenv=True,
        )
        app.build()
        doctree = app.env.get_doctree("index")
    return doctree, warnings.getvalue()


def _tables(doctree: nodes.document) -> Iterator[list[list[str]]]:
    """Each config-reference table as rows of cell texts (the header row first)."""
    for table in doctree.findall(nodes.table):
        if "config-reference" in table["classes"]:
            yield [[entry.astext() for entry in row] for row in table.findall(nodes.row)]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    body = "".join(f".. config-reference:: {path}\n\n" for path in CLASSES)
    doctree, warnings = _build(tmp_path_factory.mktemp("reference"), body)
    assert "config-reference" not in warnings, warnings
    built = list(_tables(doctree))
    assert len(built) == len(CLASSES)
    return dict(zip(CLASSES, built, strict=True))


@pytest.mark.parametrize("path", CLASSES)
def test_every_field_is_documented_in_the_code(path: str) -> None:
    for field in attrs.fields(CLASSES[path]):
        assert str(field.metadata.get("doc", "")).strip(), f"{path}.{field.name} has no doc"


@pytest.mark.parametrize("path", CLASSES)
def test_every_field_is_a_row_of_the_table(tables: dict[str, list[list[str]]], path: str) -> None:
    header, *rows = tables[path]
    assert header == ["Setting", "Type", "Default", "Meaning"]
    shown = {row[0]: row for row in rows}
    for field in attrs.fields(CLASSES[path]):
        key = field.metadata.get("key", field.name)
        if key is None:  # filled from another section of the file
            continue
        assert key in shown, f"{path}.{field.name} is missing from the generated table"
        assert all(cell.strip() for cell in shown[key]), f"{key}: an empty cell"


def test_the_store_table_lists_what_the_store_section_accepts(
    tables: dict[str, list[list[str]]],
) -> None:
    shown = [row[0] for row in tables["dynamo_toolkit.config.StoreConfig"][1:]]
    accepted = set(StoreConfig().to_dict()["store"])
    assert sorted(shown) == sorted(accepted)
    assert "gossip_interval" in shown


def test_the_node_table_lists_what_the_node_section_accepts(
    tables: dict[str, list[list[str]]],
) -> None:
    shown = [row[0] for row in tables["dynamo_toolkit_server.settings.NodeSettings"][1:]]
    assert sorted(shown) == sorted(node_settings._NODE_KEYS)


def test_defaults_come_from_the_code(tables: dict[str, list[list[str]]]) -> None:
    store = {row[0]: row for row in tables["dynamo_toolkit.config.StoreConfig"][1:]}
    assert store["n"][2] == str(StoreConfig().n)
    assert store["sloppy_quorum"][2] == "true"
    assert store["read_fanout"][2] == '"all"'
    assert store["hint_max_bytes"][1:3] == ["int, bytes", "67108864 (64 MiB)"]
    assert store["tombstone_grace"][1:3] == ["float, seconds", "86400.0 (1 day)"]
    node = {row[0]: row for row in tables["dynamo_toolkit_server.settings.NodeSettings"][1:]}
    assert node["id"][2] == "required"
    assert node["flush_interval"][2] == repr(NodeSettings.__attrs_attrs__.flush_interval.default)


@attrs.frozen
class _Undocumented:
    documented: int = attrs.field(default=1, metadata={"doc": "Has a description."})
    forgotten: int = 2


@pytest.fixture
def undocumented_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module: Any = types.ModuleType("dtk_undocumented_settings")
    module.Settings = _Undocumented
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return f"{module.__name__}.Settings"


def test_a_field_without_doc_is_an_error(tmp_path: Path, undocumented_module: str) -> None:
    with pytest.raises(ValueError, match="forgotten"):
        config_reference.option_rows(_Undocumented)
    doctree, warnings = _build(tmp_path, f".. config-reference:: {undocumented_module}\n")
    assert "forgotten" in warnings
    assert "ERROR" in warnings
    assert not list(_tables(doctree))


@pytest.mark.parametrize(
    ("page", "path"),
    [
        ("configuration.rst", "dynamo_toolkit.config.StoreConfig"),
        ("server/configuration.rst", "dynamo_toolkit_server.settings.NodeSettings"),
    ],
)
def test_the_pages_use_the_generated_tables(page: str, path: str) -> None:
    assert f".. config-reference:: {path}\n" in (DOCS / page).read_text(encoding="utf-8")
