"""The plugin system: entry points, attribution, selection by name, an outside plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit.config import StoreConfig
from dynamo_toolkit.errors import ConfigurationError, UnknownComponentError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.interfaces import StorageEngine
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.registry import INTERFACES, ComponentRegistry
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit.testing.conformance.storage import StorageEngineSuite

BUILT_INS = {
    "partitioner": ["ring"],
    "replicator": ["preference-list"],
    "conflict_resolver": ["lww", "vector-clock"],
    "failure_detector": ["timeout"],
    "anti_entropy": ["merkle"],
    "storage_engine": ["memory", "sqlitedict"],
    "transport": ["memory", "simulated"],
}

OUTSIDE_PLUGIN = textwrap.dedent(
    '''
    """An outside storage engine: a dict that counts its writes."""
    from dynamo_toolkit.hookspecs import hookimpl
    from dynamo_toolkit.interfaces import StorageEngine

    class CountingStorage(StorageEngine):
        """Keeps records in a dict and counts puts."""

        def __init__(self, node_id, data_dir=None, label="counting"):
            self.node_id, self.label = node_id, label
            self.records, self.puts = {}, 0

        def get(self, key):
            item = self.records.get(key)
            return None if item is None else item[1]

        def put(self, key, position, record):
            self.puts += 1
            self.records[key] = (position, record)

        def delete(self, key):
            self.records.pop(key, None)

        def scan(self, start, end):
            hits = [(p, k, r) for k, (p, r) in self.records.items() if start <= p < end]
            for position, key, record in sorted(hits):
                yield key, position, record

        def __len__(self):
            return len(self.records)

    @hookimpl
    def dtk_register_components(registry):
        registry.add_storage_engine("counting", CountingStorage)
    '''
)


@pytest.fixture
def outside_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install a plugin distribution made on the fly into a fresh site directory."""
    site = tmp_path / "site"
    package = site / "counting_engine"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(OUTSIDE_PLUGIN)
    info = site / "counting_engine-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counting-engine\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[dynamo_toolkit]\ncounting = counting_engine\n")
    (info / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_builtins_register_through_entry_points() -> None:
    host = load_plugins()
    components = host.registry.components()
    assert list(components) == list(INTERFACES)
    for interface, names in BUILT_INS.items():
        assert set(names) <= set(components[interface]), interface
    # Without entry points nothing is registered: the kernel hard-wires no built-in.
    empty = load_plugins(entry_points=False)
    assert all(names == [] for names in empty.registry.components().values())


def test_every_plugin_reports_its_version_and_components() -> None:
    infos = {info.name: info for info in load_plugins().plugins()}
    assert infos["ring"].components == {"partitioner": ["ring"]}
    assert infos["simulated"].distribution == "dynamo-toolkit"
    assert infos["simulated"].version


def test_unknown_name_lists_the_available_ones() -> None:
    host = load_plugins()
    with pytest.raises(UnknownComponentError) as caught:
        host.registry.create("storage_engine", "nope", node_id="n1", data_dir=None)
    assert caught.value.available == sorted(host.registry.names("storage_engine"))
    assert "memory" in str(caught.value)
    assert "sqlitedict" in str(caught.value)

    async def start() -> None:
        await Cluster.start(3, {"partitioner": "no-such-ring"}, host=host)

    with pytest.raises(UnknownComponentError, match=r"available: .*ring"):
        run_virtual(start())


def test_duplicate_names_need_replace() -> None:
    class Twice:
        @hookimpl
        def dtk_register_components(self, registry: ComponentRegistry) -> None:
            registry.add_partitioner("ring", object)

    with pytest.raises(ConfigurationError, match=r"partitioner 'ring' .* already registered"):
        load_plugins(extra=[("twice", Twice())])


def test_factory_returning_the_wrong_type_is_refused() -> None:
    class Wrong:
        @hookimpl
        def dtk_register_components(self, registry: ComponentRegistry) -> None:
            registry.add_storage_engine("wrong", lambda **_: object())

    host = load_plugins(extra=[("wrong", Wrong())])
    with pytest.raises(ConfigurationError, match="not a StorageEngine"):
        host.registry.create("storage_engine", "wrong", node_id="n1", data_dir=None)


def test_outside_plugin_replaces_the_storage_engine(outside_plugin: Path) -> None:
    host = load_plugins()
    spec = host.registry.get("storage_engine", "counting")
    assert spec.plugin == "counting"
    info = {i.name: i for i in host.plugins()}["counting"]
    assert (info.distribution, info.version) == ("counting-engine", "1.2.3")

    config = StoreConfig.from_dict(
        {"store": {"n": 3}, "storage_engine": {"name": "counting", "label": "x"}}
    )

    async def scenario() -> None:
        async with await Cluster.start(4, config, host=host) as cluster:
            await cluster.put("k", "v", w=3)
            assert (await cluster.get("k")).value == "v"
            engines = [cluster.node(r).engine for r in cluster.replicas("k")]
            assert all(type(e).__name__ == "CountingStorage" for e in engines)
            assert [e.puts for e in engines] == [1, 1, 1]  # type: ignore[attr-defined]

    run_virtual(scenario())


def test_outside_plugin_shows_in_dtk_plugins_json(outside_plugin: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(outside_plugin)}
    out = subprocess.run(
        [sys.executable, "-m", "dynamo_toolkit.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    payload = json.loads(out)
    assert "counting" in payload["components"]["storage_engine"]
    assert {"memory", "sqlitedict"} <= set(payload["components"]["storage_engine"])
    names = {p["name"]: p for p in payload["plugins"]}
    assert names["counting"]["version"] == "1.2.3"
    assert names["counting"]["components"] == {"storage_engine": ["counting"]}


class TestOutsideEngineConformance(StorageEngineSuite):
    """A third party runs our conformance suite on its engine, as the docs say."""

    @pytest.fixture
    def make_engine(self, outside_plugin: Path) -> Callable[[], StorageEngine]:
        host = load_plugins()
        return lambda: host.registry.create("storage_engine", "counting", node_id="n1")


def test_node_lifecycle_hooks_are_called() -> None:
    events: list[tuple[str, str, bool]] = []

    class Watcher:
        @hookimpl
        def dtk_node_started(self, node: Any) -> None:
            events.append(("started", node.node_id, node.running))

        @hookimpl
        def dtk_node_stopping(self, node: Any) -> None:
            events.append(("stopping", node.node_id, node.running))

    host = load_plugins(extra=[("watcher", Watcher())])

    async def scenario() -> None:
        cluster = await Cluster.start(["a", "b"], {"store": {"n": 2, "r": 1, "w": 1}}, host=host)
        await cluster.stop_node("a")
        await cluster.restart_node("a")
        await cluster.close()

    run_virtual(scenario())
    assert events == [
        ("started", "a", True),
        ("started", "b", True),
        ("stopping", "a", True),
        ("started", "a", True),
        ("stopping", "a", True),
        ("stopping", "b", True),
    ]


def test_a_hook_implementation_without_spec_fails_at_start() -> None:
    class Typo:
        @hookimpl
        def dtk_register_component(self, registry: ComponentRegistry) -> None:
            """Misspelt: no such hook."""

    with pytest.raises(Exception, match="unknown hook 'dtk_register_component'"):
        load_plugins(extra=[("typo", Typo())])


def test_replace_wins_whatever_the_load_order() -> None:
    class Replacement:
        @hookimpl
        def dtk_register_components(self, registry: ComponentRegistry) -> None:
            registry.add_conflict_resolver("lww", Replacement, replace=True)

    for extra_first in (True, False):
        registry = ComponentRegistry()
        plugins = [("mine", Replacement()), ("theirs", None)]
        order = plugins if extra_first else list(reversed(plugins))
        for name, plugin in order:
            registry.current_plugin = name
            if plugin is None:
                registry.add_conflict_resolver("lww", object)
            else:
                plugin.dtk_register_components(registry)
        assert registry.get("conflict_resolver", "lww").plugin == "mine"
    host = load_plugins(extra=[("mine", Replacement())])
    assert host.registry.get("conflict_resolver", "lww").factory is Replacement
