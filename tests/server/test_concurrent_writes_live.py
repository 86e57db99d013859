"""Default settings keep concurrent read-modify-writes through one node (real processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynamo_toolkit_server.client import Client
from testsupport.live import dtk, free_base

pytestmark = pytest.mark.live  # real node processes


def test_writes_from_one_context_through_one_node_all_come_back(tmp_path: Path) -> None:
    base = free_base(3)
    up = ["cluster", "up", "--nodes", "3", "--dir", str(tmp_path), "--base-port", str(base)]
    nodes = json.loads(dtk(*up, "--json").stdout)["nodes"]
    try:
        with Client([nodes[0]["native"]]) as client:
            client.put("cart", ["milk"])
            seen = client.get("cart")
            # Three clients read the same version and each write their change
            # back through the same coordinator, as a web tier would.
            for item in ("eggs", "bread", "tea"):
                client.put("cart", ["milk", item], context=seen.context)
            after = client.get("cart")
            assert sorted(after.values) == [["milk", "bread"], ["milk", "eggs"], ["milk", "tea"]]
            # A write with the merged context replaces all of them.
            client.put("cart", ["milk", "bread", "eggs", "tea"], context=after.context)
            assert client.get("cart").values == (["milk", "bread", "eggs", "tea"],)
            # A blind write (no context) replaces what the node holds: no pile-up.
            for attempt in range(20):
                client.put("counter", attempt)
            assert client.get("counter").values == (19,)
    finally:
        dtk("cluster", "down", "--dir", str(tmp_path), check=False)
