"""Conformance suites: pytest classes any implementation of an interface can run.

Subclass a suite in a test module and provide its factory fixture::

    import pytest
    from dynamo_toolkit.testing.conformance import StorageEngineSuite

    class TestMyEngine(StorageEngineSuite):
        @pytest.fixture
        def make_engine(self, tmp_path):
            return lambda: MyEngine(node_id="n1", data_dir=tmp_path)

Each suite's docstring names the fixture it needs.
"""

from dynamo_toolkit.testing.conformance.anti_entropy import AntiEntropySuite
from dynamo_toolkit.testing.conformance.clock import ClockSuite
from dynamo_toolkit.testing.conformance.failure_detector import FailureDetectorSuite
from dynamo_toolkit.testing.conformance.partitioner import PartitionerSuite
from dynamo_toolkit.testing.conformance.replicator import ReplicatorSuite
from dynamo_toolkit.testing.conformance.resolver import ConflictResolverSuite
from dynamo_toolkit.testing.conformance.storage import StorageEngineSuite
from dynamo_toolkit.testing.conformance.transport import TransportSuite

__all__ = [
    "AntiEntropySuite",
    "ClockSuite",
    "ConflictResolverSuite",
    "FailureDetectorSuite",
    "PartitionerSuite",
    "ReplicatorSuite",
    "StorageEngineSuite",
    "TransportSuite",
]
