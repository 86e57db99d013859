"""What every front-end server (RESP, HTTP, native) has in common: where it
listens, and ``async with`` that closes it."""

from __future__ import annotations

import asyncio

from dynamo_toolkit.closing import AsyncClosing

__all__ = ["ListeningServer"]


class ListeningServer(AsyncClosing):
    """A front-end bound to one address; subclasses implement :meth:`close`."""

    _bound: tuple[str, int] = ("", 0)  # kept after close, for messages

    def _remember_address(self, server: asyncio.Server) -> None:
        """Note the address ``server``'s (first) socket is bound to."""
        name = server.sockets[0].getsockname()
        self._bound = (str(name[0]), int(name[1]))

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._bound[0]

    @property
    def port(self) -> int:
        """The port the server listens on (useful after binding port 0)."""
        return self._bound[1]

    @property
    def address(self) -> str:
        """``host:port``, as clients take it (IPv6 hosts in brackets)."""
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
