"""The placement suites (partitioner, replicator, anti-entropy) against the built-ins.

Components are built through the plugin host, exactly as a store would build them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit.testing.conformance.anti_entropy import AntiEntropySuite
from dynamo_toolkit.testing.conformance.partitioner import PartitionerSuite
from dynamo_toolkit.testing.conformance.replicator import ReplicatorSuite


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """One plugin host for the module (building it loads every entry point)."""
    return load_plugins()


def _builder(host: PluginHost, interface: str, name: str, **params: Any) -> Callable[[], Any]:
    return lambda: host.registry.create(interface, name, **params)


class TestRingDefault(PartitionerSuite):
    """``ring`` with its default 64 virtual nodes per unit of capacity."""

    @pytest.fixture
    def make_partitioner(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "partitioner", "ring")


class TestRingFewVnodes(PartitionerSuite):
    """``ring`` with 2 virtual nodes per node: coarse partitions, same contract."""

    @pytest.fixture
    def make_partitioner(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "partitioner", "ring", vnodes_per_capacity=2)


class TestPreferenceList(ReplicatorSuite):
    """``preference-list``."""

    @pytest.fixture
    def make_replicator(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "replicator", "preference-list")


class TestNetworkTopologyDerived(ReplicatorSuite):
    """``network-topology`` without per-datacenter factors: N spread over the datacenters."""

    @pytest.fixture
    def make_replicator(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "replicator", "network-topology")


class TestMerkleDefault(AntiEntropySuite):
    """``merkle`` with its default shape (16 ** 3 leaves)."""

    @pytest.fixture
    def make_anti_entropy(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "anti_entropy", "merkle")


class TestMerkleSmall(AntiEntropySuite):
    """``merkle`` with 4 leaves, so leaves hold many keys and collide often."""

    @pytest.fixture
    def make_anti_entropy(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "anti_entropy", "merkle", fanout=2, depth=2)


class TestFullExchange(AntiEntropySuite):
    """``full-exchange``: one flat digest (depth 0), the baseline."""

    @pytest.fixture
    def make_anti_entropy(self, host: PluginHost) -> Callable[[], Any]:
        return _builder(host, "anti_entropy", "full-exchange")
