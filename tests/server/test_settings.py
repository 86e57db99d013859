"""A node's [node] settings: where it may listen without authentication."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_server.settings import NodeSettings


def _node(**node: Any) -> dict[str, Any]:
    return {"node": {"id": "n1", "peer": "127.0.0.1:7100", **node}}


@pytest.mark.parametrize(
    "ports",
    [
        {"resp": "127.0.0.1:7101", "http": "127.0.0.2:7102"},
        {"native": "localhost:7103"},
        {"peer": "[::1]:7100"},
    ],
)
def test_loopback_addresses_need_nothing(ports: dict[str, str]) -> None:
    NodeSettings.from_dict(_node(**ports))


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("resp", "0.0.0.0:7101"),
        ("http", "[::]:7102"),
        ("native", "node1.example:7103"),
        ("peer", "0.0.0.0:7100"),
    ],
)
def test_a_port_beyond_loopback_is_refused_unless_asked_for(name: str, address: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"{name} = {address}: beyond loopback")):
        NodeSettings.from_dict(_node(**{name: address}))
    settings = NodeSettings.from_dict(_node(**{name: address}, unauthenticated_network=True))
    assert settings.unauthenticated_network


def test_max_clients_is_a_positive_integer() -> None:
    assert NodeSettings.from_dict(_node()).max_clients == 10_000
    assert NodeSettings.from_dict(_node(max_clients=2)).max_clients == 2
    with pytest.raises(ConfigurationError, match="max_clients must be a positive integer"):
        NodeSettings.from_dict(_node(max_clients=0))
