"""Store configuration from dicts and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_toolkit.config import DEFAULT_COMPONENTS, StoreConfig
from dynamo_toolkit.errors import ConfigurationError, InvalidQuorumError


def test_defaults_follow_dynamo() -> None:
    config = StoreConfig()
    assert (config.n, config.r, config.w, config.max_pair_bytes) == (3, 2, 2, 10240)
    assert {i: c.name for i, c in config.components.items()} == DEFAULT_COMPONENTS


def test_toml_picks_components_by_name(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(
        'storage_engine = "sqlitedict"\n[store]\nn = 5\nr = 1\nw = 5\n'
        '[partitioner]\nname = "ring"\nvnodes_per_capacity = 16\n'
    )
    config = StoreConfig.from_toml(path)
    assert (config.n, config.r, config.w) == (5, 1, 5)
    assert config.component("storage_engine").name == "sqlitedict"
    assert config.component("partitioner").params == {"vnodes_per_capacity": 16}
    assert StoreConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"n": 3, "r": 4}, "R must satisfy"),
        ({"n": 3, "w": 0}, "W must satisfy"),
        ({"n": 0, "r": 1, "w": 1}, "N must be at least 1"),
        ({"r": "2"}, "R must be an integer"),
    ],
)
def test_quorum_rules(store: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuorumError, match=message):
        StoreConfig.from_dict({"store": store})


def test_unknown_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown \[store\] setting\(s\) \['nn'\]"):
        StoreConfig.from_dict({"store": {"nn": 3}})
    with pytest.raises(ConfigurationError, match="unknown configuration section 'storage'"):
        StoreConfig.from_dict({"storage": "memory"})


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[store\n")
    with pytest.raises(ConfigurationError, match=r"bad\.toml"):
        StoreConfig.from_toml(path)


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"max_pair_bytes": 10.5}, "max_pair_bytes must be an integer"),
        ({"request_timeout": "1s"}, "request_timeout must be a positive number"),
        ({"heartbeat_interval": None}, "heartbeat_interval must be a positive number"),
    ],
)
def test_store_settings_are_type_checked(store: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        StoreConfig.from_dict({"store": store})
