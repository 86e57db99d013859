"""The floor: a RESP server that parses every command and stores nothing.

It runs the node's own event loop (uvloop) and RESP parser, and answers each
command with a constant reply of the shape ``redis-benchmark`` expects (a
bulk string for GET, ``+OK`` for SET, an integer for LPUSH, 100 items for
LRANGE). No store, no versions, no replicas: its throughput is what any
Python server built on these parts could reach on this machine, so
``reference_server.py`` measures it beside Redis and the nodes.

Run: ``python benchmarks/resp_floor.py PORT`` (127.0.0.1; stops on SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference_server"))

from dynamo_toolkit_server.resp.protocol import (
    ProtocolError,
    RespParser,
    array,
    bulk,
    error,
    integer,
    simple,
)

#: The constant reply to each command redis-benchmark sends; anything else: +OK.
REPLIES = {
    b"GET": bulk(b"xxx"),
    b"SET": simple("OK"),
    b"LPUSH": integer(1),
    b"LRANGE": array([bulk(b"xxx")] * 100),
    b"CONFIG": array([]),
    b"PING": simple("PONG"),
}
_OK = simple("OK")


class FloorProtocol(asyncio.Protocol):
    """One client: parse what arrives, answer each command with its constant."""

    def __init__(self) -> None:
        self._parser = RespParser()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write to."""
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Answer every complete command, in one write."""
        assert self._transport is not None
        try:
            commands = self._parser.feed(data)
        except ProtocolError as exc:
            self._transport.write(error(f"ERR {exc}"))
            self._transport.close()
            return
        if commands:
            replies = [REPLIES.get(args[0].upper(), _OK) for args in commands]
            self._transport.write(b"".join(replies))


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(FloorProtocol, "127.0.0.1", port)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    """Serve on the port given as the only argument."""
    try:
        import uvloop
    except ImportError:  # the node falls back to asyncio's loop the same way
        asyncio.run(serve(int(sys.argv[1])))
    else:
        uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
