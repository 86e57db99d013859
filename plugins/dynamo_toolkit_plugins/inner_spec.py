"""What a wrapper component wraps: a component name, or a ``{name = ..., ...}`` table.

The storage wrappers (``compressed``, ``cached``) and the ``delayed``
transport take their ``inner`` component the same way; this module reads
that setting once for all of them. Building the component stays with each
wrapper (an engine and a network need different arguments).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamo_toolkit.errors import ConfigurationError

__all__ = ["split_inner_spec"]


def split_inner_spec(
    inner: str | Mapping[str, Any], *, owner: str, kind: str, example: str
) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of ``inner``, or a clear error naming ``owner``.

    ``kind`` is what is wrapped with its article (``"an engine"``), and
    ``example`` a name for the error's example table.
    """
    if isinstance(inner, str):
        return inner, {}
    if isinstance(inner, Mapping):
        params = dict(inner)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ConfigurationError(
                f'{owner}: inner must name {kind}, as inner = {{name = "{example}"}}; got {inner!r}'
            )
        return name, params
    raise ConfigurationError(
        f"{owner}: inner must be {kind} name or a table, got {type(inner).__name__}"
    )
