"""Two datacenters on the simulated WAN: what a quorum costs, and a cut link.

``network-topology`` puts two replicas in dc1 and one in dc2; the link
between them is 40 ms each way. Virtual time, seeded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dynamo_toolkit.errors import QuorumNotReachedError
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.node_info import NodeInfo
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_plugins.transport.simulated import SimulatedNetwork

MEMBERS = [
    NodeInfo(f"n{i}", datacenter="dc1" if i <= 3 else "dc2", rack="ab"[i % 2]) for i in range(1, 7)
]
DC = {member.node_id: member.datacenter for member in MEMBERS}
ONE_WAY = 0.040
CONFIG: dict[str, Any] = {
    "store": {"n": 3, "r": 1, "w": 2, "request_timeout": 0.5},
    "replicator": {"name": "network-topology", "replicas": {"dc1": 2, "dc2": 1}},
    "transport": {
        "name": "simulated",
        "wan": {
            "local": {"latency": "uniform", "min_ms": 0.2, "max_ms": 1.0},
            "links": [{"between": ["dc1", "dc2"], "latency": "constant", "ms": ONE_WAY * 1000}],
        },
    },
}


def test_a_local_quorum_is_fast_a_remote_one_pays_the_wan_and_a_cut_heals() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with await Cluster.start(MEMBERS, CONFIG, seed=8) as cluster:
            network = cluster.network
            assert isinstance(network, SimulatedNetwork)
            replicas = cluster.replicas("doc")
            via = next(r for r in replicas if DC[r] == "dc1")
            remote = next(r for r in replicas if DC[r] == "dc2")

            start = loop.time()
            await cluster.put("doc", "w2", None, w=2, via=via)
            assert loop.time() - start < 0.005  # both dc1 replicas: no WAN
            start = loop.time()
            await cluster.put("doc", "w3", None, w=3, via=via)
            assert 2 * ONE_WAY <= loop.time() - start < 2 * ONE_WAY + 0.005

            network.cut("dc1", "dc2")
            start = loop.time()
            await cluster.put("doc", "during the cut", None, w=2, via=via)
            assert loop.time() - start < 0.005  # dc1 alone still makes W=2
            with pytest.raises(QuorumNotReachedError):
                await cluster.put("doc", "all three", None, w=3, via=via)
            stale = await cluster.get("doc", r=1, via=remote)
            assert "during the cut" not in stale.values

            network.restore()
            await asyncio.sleep(10.0)  # hinted handoff and read repair have time to run
            await cluster.get("doc", r=3, via=via)  # read repair, if handoff has not
            await cluster.settle()
            healed = await cluster.get("doc", r=1, via=remote)
            # The refused W=3 write still landed in dc1 (Dynamo does not roll
            # back) and supersedes the one before; dc2 now has what dc1 has.
            assert healed.values == (await cluster.get("doc", r=1, via=via)).values
            assert healed.values == ("all three",)

    run_virtual(scenario())
