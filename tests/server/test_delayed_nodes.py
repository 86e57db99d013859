"""Two node processes' worth of nodes over real loopback sockets, in two datacenters.

The ``delayed`` transport wraps ``tcp`` as a node process builds it (the
settings keep it, ``serve`` adds the peer addresses), and a write that needs
the other datacenter pays the configured round trip.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from dynamo_toolkit_server.serve import NodeProcess
from dynamo_toolkit_server.settings import NodeSettings

ONE_WAY_MS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(node_id: str, peers: dict[str, str], tmp_path: Path) -> NodeSettings:
    data: dict[str, Any] = {
        "node": {"id": node_id, "peer": peers[node_id], "data_dir": str(tmp_path / node_id)},
        "members": [
            {"id": name, "address": address, "datacenter": name[:3]}
            for name, address in peers.items()
        ],
        "store": {"n": 2, "r": 1, "w": 1},
        "storage_engine": "memory",
        "transport": {
            "name": "delayed",
            "wan": {
                "links": [{"between": ["dc1", "dc2"], "latency": "constant", "ms": ONE_WAY_MS}]
            },
        },
    }
    return NodeSettings.from_dict(data)


def test_a_write_that_needs_the_other_datacenter_pays_the_round_trip(tmp_path: Path) -> None:
    peers = {name: f"127.0.0.1:{_free_port()}" for name in ("dc1-a", "dc2-a")}

    async def scenario() -> tuple[float, float]:
        processes = [NodeProcess(_settings(name, peers, tmp_path)) for name in peers]
        for process in processes:
            await process.start()
        try:
            node = processes[0].node
            assert node is not None
            loop = asyncio.get_running_loop()
            await node.put("warm-up", 0, w=2)  # connections open
            start = loop.time()
            await node.put("k", 1, w=2)
            both = loop.time() - start
            start = loop.time()
            await node.put("k2", 1, w=1)
            one = loop.time() - start
            return both, one
        finally:
            for process in processes:
                await process.stop()

    both, one = asyncio.run(scenario())
    assert 2 * ONE_WAY_MS / 1000 <= both < 1.0
    assert one < 2 * ONE_WAY_MS / 1000
