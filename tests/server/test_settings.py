"""A node's [node] settings: where it may listen without authentication."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_server.auth import Role, hash_password
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
    with pytest.raises(ConfigurationError, match=re.escape(f"{name} = {address} (no ")):
        NodeSettings.from_dict(_node(**{name: address}))
    settings = NodeSettings.from_dict(_node(**{name: address}, unauthenticated_network=True))
    assert settings.unauthenticated_network


#: One user, hashed once for the module (scrypt is slow on purpose).
ADMIN = {"name": "admin", "role": "admin", "password_hash": hash_password("pw")}


@pytest.mark.parametrize("name", ["resp", "http", "native"])
def test_a_client_port_beyond_loopback_needs_users(name: str) -> None:
    data = _node(**{name: "0.0.0.0:7101"})
    with pytest.raises(ConfigurationError, match=r"\(no \[\[users\]\]\)"):
        NodeSettings.from_dict(data)
    settings = NodeSettings.from_dict({**data, "users": [ADMIN]})
    assert [user.name for user in settings.security.users] == ["admin"]
    assert settings.security.users[0].role is Role.ADMIN
    assert "password_hash" not in repr(settings.security.users[0])


def test_the_peer_port_beyond_loopback_needs_a_cluster_secret() -> None:
    data = _node(peer="0.0.0.0:7100")
    with pytest.raises(ConfigurationError, match="no \\[security\\] cluster_secret_file"):
        NodeSettings.from_dict({**data, "users": [ADMIN]})
    secured = {**data, "security": {"cluster_secret_file": "cluster.secret"}}
    assert NodeSettings.from_dict(secured).security.peers_authenticated


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"node": {"password": "x"}}, "password is replaced by \\[\\[users\\]\\]"),
        ({"users": [{"name": "a", "role": "root", "password_hash": "x"}]}, "unknown role"),
        ({"users": [{"name": "a", "role": "read"}]}, "missing \\['password_hash'\\]"),
        ({"users": [{"name": "a", "role": "read", "password_hash": "plain"}]}, "scrypt"),
        ({"users": [ADMIN, ADMIN]}, "names must be unique"),
        ({"security": {"tls_cert": "a.crt"}}, "tls_cert and tls_key go together"),
        ({"security": {"tls_client_certs": "always"}}, "tls_client_certs must be one of"),
        ({"security": {"tls_cert": "a", "tls_key": "b"}}, "peer_tls needs tls_ca"),
        ({"security": {"cluster_secret": "abc"}}, "unknown \\[security\\] setting"),
    ],
)
def test_security_settings_are_checked(data: dict[str, Any], message: str) -> None:
    base = _node()
    merged = {**base, **data, "node": {**base["node"], **data.get("node", {})}}
    with pytest.raises(ConfigurationError, match=message):
        NodeSettings.from_dict(merged)


def test_max_clients_is_a_positive_integer() -> None:
    assert NodeSettings.from_dict(_node()).max_clients == 10_000
    assert NodeSettings.from_dict(_node(max_clients=2)).max_clients == 2
    with pytest.raises(ConfigurationError, match="max_clients must be a positive integer"):
        NodeSettings.from_dict(_node(max_clients=0))


def test_the_transport_is_tcp_or_the_delayed_wrapper_around_it() -> None:
    plain = NodeSettings.from_dict({**_node(), "transport": "memory"})
    assert plain.store.component("transport").name == "tcp"
    wan = {"links": [{"between": ["dc1", "dc2"], "latency": "constant", "ms": 40}]}
    delayed = NodeSettings.from_dict({**_node(), "transport": {"name": "delayed", "wan": wan}})
    assert delayed.store.component("transport").name == "delayed"
    assert delayed.store.component("transport").params["wan"] == wan
