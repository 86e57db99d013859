"""The benchmark's floor server answers what redis-benchmark sends, in order."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from dynamo_toolkit_server.resp.protocol import encode_command

FLOOR_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "resp_floor.py"


def _floor_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("resp_floor", FLOOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _exchange(requests: bytes, expected: int) -> bytes:
    floor = _floor_module()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(floor.FloorProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(requests)
        received = b""
        while len(received) < expected:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            received += chunk
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    return received


def test_floor_answers_each_benchmark_command_with_its_shape() -> None:
    floor = _floor_module()
    commands = [
        ["PING"],
        ["SET", "key:1", "xxx"],
        ["GET", "key:1"],
        ["LPUSH", "mylist", "xxx"],
        ["LRANGE", "mylist", "0", "99"],
        ["CONFIG", "GET", "save"],
    ]
    # One pipeline: one reply per command, in order.
    raw = b"".join(encode_command(c) for c in commands)
    expected = b"+PONG\r\n+OK\r\n$3\r\nxxx\r\n:1\r\n" + floor.REPLIES[b"LRANGE"] + b"*0\r\n"
    received = asyncio.run(_exchange(raw, len(expected)))
    assert received == expected
    assert floor.REPLIES[b"LRANGE"].startswith(b"*100\r\n$3\r\nxxx\r\n")


def test_floor_refuses_a_malformed_request_and_closes() -> None:
    received = asyncio.run(_exchange(b"*1\r\n$x\r\n", 1))
    assert received.startswith(b"-ERR Protocol error")
