"""Versions of a key: vector clocks, versions (value or tombstone) and contexts."""

from dynamo_toolkit.versioning.context import decode_context, encode_context
from dynamo_toolkit.versioning.vector_clock import ClockEntry, Ordering, VectorClock
from dynamo_toolkit.versioning.version import Version, pack_versions, unpack_versions

__all__ = [
    "ClockEntry",
    "Ordering",
    "VectorClock",
    "Version",
    "decode_context",
    "encode_context",
    "pack_versions",
    "unpack_versions",
]
