"""The names ``dynamo_toolkit`` re-exports: importable, documented, and all listed."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import dynamo_toolkit

PUBLIC = [name for name in dynamo_toolkit.__all__ if name != "__version__"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_exists_and_has_a_docstring(name: str) -> None:
    obj = getattr(dynamo_toolkit, name)
    assert inspect.getdoc(obj), f"dynamo_toolkit.{name} has no docstring"


def test_the_list_is_sorted_and_has_what_the_readme_uses() -> None:
    assert dynamo_toolkit.__all__ == sorted(dynamo_toolkit.__all__)
    assert {"Cluster", "run_virtual", "StoreConfig", "load_plugins", "hookimpl"} <= set(PUBLIC)


def test_the_readme_example_runs_as_written() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("(['apple'],) b'dtk1")  # the value, then its context
