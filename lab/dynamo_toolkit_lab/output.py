"""How every lab suite reports: a rich table, ``--json``, ``--plot FILE``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

__all__ = ["emit", "float_list", "int_list", "name_list", "progress", "suite_options"]


def suite_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options every suite takes: ``--json``, ``--plot FILE``, ``--seed``."""
    function = click.option("--seed", default=1, show_default=True, help="Random seed.")(function)
    function = click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Draw a plot (PNG or SVG, by extension; needs matplotlib).",
    )(function)
    return click.option("--json", "as_json", is_flag=True, help="Emit JSON on stdout.")(function)


def emit(
    payload: dict[str, Any],
    *,
    as_json: bool,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    plot_path: Path | None = None,
    draw: Callable[[dict[str, Any], Path], None] | None = None,
) -> None:
    """Print ``payload`` as JSON or as a table, and draw its plot if asked."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=float))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        Console().print(table)
    if plot_path is not None:
        if draw is None:
            raise click.ClickException("this suite has no plot")
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError as exc:
            raise click.ClickException("plots need matplotlib: pip install matplotlib") from exc
        draw(payload, plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def progress(total: int, label: str, quiet: bool) -> tuple[Any, Any]:
    """A rich progress bar on stderr (silent when ``quiet``) and its task id.

    Use the bar as a context manager and call ``bar.advance(task)`` per step.
    """
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), disable=quiet, transient=True)
    return bar, bar.add_task(label, total=total)


# -- comma-separated option values ---------------------------------------------------


def _parts(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _numbers(text: str, option: str, convert: Callable[[str], Any], what: str) -> list[Any]:
    try:
        return [convert(part) for part in _parts(text)]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated {what}, got {text!r}", param_hint=option
        ) from None


def int_list(text: str, option: str, least: int = 1) -> list[int]:
    """``"10,100"`` as integers, each at least ``least``; a clear error otherwise."""
    values: list[int] = _numbers(text, option, int, "integers")
    if not values or min(values) < least:
        raise click.BadParameter(f"expected integers >= {least}, got {text!r}", param_hint=option)
    return values


def float_list(text: str, option: str, *, positive: bool = True) -> list[float]:
    """``"0.5,1"`` as finite numbers, all > 0 (``positive``) or all >= 0."""
    values: list[float] = _numbers(text, option, float, "numbers")
    if not values or any(not math.isfinite(v) or v < 0 or (positive and v == 0) for v in values):
        wanted = "positive" if positive else "non-negative"
        raise click.BadParameter(f"expected {wanted} numbers, got {text!r}", param_hint=option)
    return values


def name_list(text: str, known: Sequence[str], option: str) -> list[str]:
    """``"a,b"`` as names from ``known`` (duplicates dropped, order kept)."""
    names = _parts(text)
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise click.BadParameter(
            f"unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}",
            param_hint=option,
        )
    return list(dict.fromkeys(names))
