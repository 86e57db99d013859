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
        ({"r": 2.5}, "R must be an integer or a consistency level"),
        ({"r": "MOST"}, "R: unknown consistency level 'MOST'"),
        ({"n": 2, "w": "three"}, "W must satisfy 1 <= W <= N=2"),
    ],
)
def test_quorum_rules(store: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuorumError, match=message):
        StoreConfig.from_dict({"store": store})


def test_levels_as_quorums() -> None:
    """R and W may be consistency levels by name (any case); a count as text is a count."""
    config = StoreConfig.from_dict({"store": {"r": "local_quorum", "w": "Each-Quorum"}})
    assert (config.r, config.w) == ("LOCAL_QUORUM", "EACH_QUORUM")
    assert StoreConfig.from_dict(config.to_dict()) == config
    assert StoreConfig.from_dict({"store": {"r": "2"}}).r == 2


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


def test_a_hint_that_could_outlive_a_tombstone_is_refused() -> None:
    too_long = {"store": {"hint_max_age": 2 * 86_400.0}}
    with pytest.raises(ConfigurationError, match="would resurrect the deleted key"):
        StoreConfig.from_dict(too_long)
    equal = {"store": {"hint_max_age": 600.0, "tombstone_grace": 600.0}}
    with pytest.raises(ConfigurationError, match="must be shorter than tombstone_grace"):
        StoreConfig.from_dict(equal)
    # Without sloppy quorums no hint is written, so nothing can come back.
    StoreConfig.from_dict({"store": {**too_long["store"], "sloppy_quorum": False}})
    assert StoreConfig().hint_max_age < StoreConfig().tombstone_grace
