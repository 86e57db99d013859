"""/metrics shows what the tcp transport's compression saved, through wrappers too."""

from __future__ import annotations

import asyncio
import re
import socket
import tomllib
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError, QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit_plugins.transport.tcp import TcpNetwork
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.settings import NodeSettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _counter(text: str, name: str) -> float:
    found = re.search(rf"^dtk_{name}_total (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


@pytest.mark.parametrize("transport", ["tcp", "delayed"])
def test_metrics_show_the_bytes_compression_saved(transport: str) -> None:
    infos = [
        NodeInfo("n1", f"127.0.0.1:{_free_port()}", datacenter="dc1"),
        NodeInfo("n2", f"127.0.0.1:{_free_port()}", datacenter="dc1"),
        NodeInfo("n3", f"127.0.0.1:{_free_port()}", datacenter="dc2"),
    ]
    params: dict[str, Any] = {"compression": "dc"}
    if transport == "delayed":
        params = {"inner": {"name": "tcp", "compression": "dc"}}

    async def scenario() -> None:
        cluster = await Cluster.start(
            infos, {"store": {"n": 3, "r": 1, "w": 3}}, transport=transport, **params
        )
        try:
            for _ in range(100):  # until every node listens and no link backs off
                try:
                    await cluster.put("doc", "the same words, over and over. " * 100, via="n1")
                    break
                except QuorumNotReachedError:
                    await asyncio.sleep(0.05)
            text = NodeMetrics(cluster.node("n1")).render().decode()
            before = _counter(text, "peer_bytes_uncompressed")
            after = _counter(text, "peer_bytes_sent_compressed")
            assert before > 2000
            assert after < before / 2
            assert _counter(text, "peer_frames_compressed") >= 1
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_transports_without_compression_show_zero() -> None:
    async def scenario() -> None:
        cluster = await Cluster.start(1, {"store": {"n": 1, "r": 1, "w": 1}}, transport="memory")
        try:
            text = NodeMetrics(cluster.node("n1")).render().decode()
            assert _counter(text, "peer_bytes_uncompressed") == 0
            assert _counter(text, "peer_bytes_sent_compressed") == 0
        finally:
            await cluster.close()

    asyncio.run(scenario())


def test_node_toml_transport_section_sets_compression() -> None:
    text = """
        [node]
        id = "n1"
        peer = "127.0.0.1:7100"

        [transport]
        name = "tcp"
        compression = "dc"
        compression_codec = "zstd"
    """
    settings = NodeSettings.from_dict(tomllib.loads(text))
    choice = settings.store.component("transport")
    assert choice.name == "tcp"
    host = load_plugins()
    network = host.registry.create("transport", choice.name, seed=0, **choice.params)
    assert isinstance(network, TcpNetwork)
    assert (network.compression, network.compression_codec) == ("dc", "zstd")
    with pytest.raises(ConfigurationError, match="compression must be one of"):
        host.registry.create("transport", "tcp", compression="yes")
