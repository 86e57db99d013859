"""The typed component interfaces every strategy plugin implements.

One module per interface; this package only re-exports them.
"""

from dynamo_toolkit.interfaces.anti_entropy import AntiEntropy, PartitionDigest
from dynamo_toolkit.interfaces.clock import Clock
from dynamo_toolkit.interfaces.failure_detector import (
    ActiveFailureDetector,
    FailureDetector,
    Prober,
)
from dynamo_toolkit.interfaces.partitioner import OwnershipTable, Partitioner
from dynamo_toolkit.interfaces.replicator import DatacenterPlacement, Placement, Replicator
from dynamo_toolkit.interfaces.resolver import ConflictResolver
from dynamo_toolkit.interfaces.storage import StorageEngine
from dynamo_toolkit.interfaces.transport import Handler, Network, Transport

__all__ = [
    "ActiveFailureDetector",
    "AntiEntropy",
    "Clock",
    "ConflictResolver",
    "DatacenterPlacement",
    "FailureDetector",
    "Handler",
    "Network",
    "OwnershipTable",
    "PartitionDigest",
    "Partitioner",
    "Placement",
    "Prober",
    "Replicator",
    "StorageEngine",
    "Transport",
]
