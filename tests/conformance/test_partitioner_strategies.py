"""The partitioner conformance suite against the equal-partition strategies.

The classes are built directly: their entry points are not registered yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces.partitioner import Partitioner
from dynamo_toolkit.testing.conformance.partitioner import PartitionerSuite
from dynamo_toolkit_plugins.partitioning.bounded_load import BoundedLoadPartitioner
from dynamo_toolkit_plugins.partitioning.fixed_q import FixedQPartitioner
from dynamo_toolkit_plugins.partitioning.jump import JumpPartitioner
from dynamo_toolkit_plugins.partitioning.maglev import MaglevPartitioner
from dynamo_toolkit_plugins.partitioning.rendezvous import RendezvousPartitioner


class TestFixedQ(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return FixedQPartitioner


class TestFixedQSmall(PartitionerSuite):
    """Fewer partitions than some walks need: nodes without a partition drop out."""

    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return lambda: FixedQPartitioner(q=7)


class TestRendezvous(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return RendezvousPartitioner


class TestJump(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return JumpPartitioner


class TestMaglev(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return MaglevPartitioner


class TestMaglevSmallTable(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return lambda: MaglevPartitioner(table_size=13, q=50)


class TestBoundedLoad(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return BoundedLoadPartitioner


class TestBoundedLoadTight(PartitionerSuite):
    @pytest.fixture
    def make_partitioner(self) -> Callable[[], Partitioner]:
        return lambda: BoundedLoadPartitioner(eps=0.01, vnodes_per_capacity=2, q=100)


@pytest.mark.parametrize(
    ("factory", "params"),
    [
        (FixedQPartitioner, {"q": 0}),
        (FixedQPartitioner, {"q": True}),
        (RendezvousPartitioner, {"q": "8"}),
        (JumpPartitioner, {"q": -1}),
        (MaglevPartitioner, {"table_size": 65536}),
        (MaglevPartitioner, {"q": 0}),
        (BoundedLoadPartitioner, {"eps": 0}),
        (BoundedLoadPartitioner, {"vnodes_per_capacity": 0}),
    ],
)
def test_bad_parameters_rejected(factory: Callable[..., Partitioner], params: Any) -> None:
    with pytest.raises(ConfigurationError):
        factory(**params)
