"""The documentation: every hook is documented, the build is warning-free, and the
tutorial script prints what the tutorial shows."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.cmd.build import build_main

from dynamo_toolkit import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"
TUTORIAL = DOCS / "examples" / "assemble_store.py"
TUTORIAL_OUTPUT = DOCS / "examples" / "assemble_store.out"

HOOKS = sorted(
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("dtk_")
)


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the HTML docs once, as ``make docs`` does: warnings are errors."""
    out = tmp_path_factory.mktemp("html")
    status = build_main(["-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)])
    assert status == 0, "the docs build has warnings or errors (see stderr, or run make docs)"
    return out


def test_the_kernel_defines_hooks() -> None:
    assert "dtk_register_components" in HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    first_line = doc.splitlines()[0] if doc else ""
    assert len(first_line.split()) >= 3, f"{name} needs a docstring sentence"
    assert "." in doc, f"{name} needs a docstring sentence"


@pytest.mark.docs
def test_docs_build_without_warnings(html: Path) -> None:
    # The fixture asserts the return code; check that autodoc produced real pages.
    api = (html / "api.html").read_text(encoding="utf-8")
    assert 'id="dynamo_toolkit._coordinator.Coordinator"' in api
    assert 'id="dynamo_toolkit.config.StoreConfig"' in api
    assert (html / "_images" / "components.svg").is_file()


@pytest.mark.parametrize("name", HOOKS)
@pytest.mark.docs
def test_every_hook_is_in_the_hook_reference(html: Path, name: str) -> None:
    page = (html / "hooks.html").read_text(encoding="utf-8")
    assert f'id="dynamo_toolkit.hookspecs.{name}"' in page, f"{name} is missing from hooks.html"


def test_tutorial_script_prints_what_the_tutorial_shows(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(TUTORIAL)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    # The story the tutorial tells, step by step.
    assert "storage_engine: sqlitedict" in out
    assert "sibling ['buy milk', 'call Bob']" in out
    assert "sibling ['buy milk', 'fix bike']" in out
    assert "resolved with the context -> ['buy milk', 'call Bob', 'fix bike']" in out
    assert "R=W=2 still works" in out
    assert "an R=3 read repaired 1 stale replica" in out
    assert "fails after 1.0 s: write quorum not reached: 1 of 3 replicas answered" in out
    assert "fails after 0.0 s: read quorum not reached" in out
    assert "failure detector reports" in out
    assert "healed; an R=3 read finds 2 siblings" in out
    assert "too large: pair of 5006 bytes" in out
    assert "lww: the same two writes leave [['buy milk', 'fix bike']]" in out
    # The page shows the output file verbatim: it must match the run exactly.
    assert out == TUTORIAL_OUTPUT.read_text(encoding="utf-8"), (
        "the tutorial's output changed: check docs/tutorial.rst still tells the story, then "
        "run `python docs/examples/assemble_store.py > docs/examples/assemble_store.out`"
    )
