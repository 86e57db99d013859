"""Prometheus metrics of one node process (one registry per node, no globals)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dynamo_toolkit.node import Node

__all__ = ["NodeMetrics"]

# Buckets in seconds, dense below 5 ms where a healthy node answers.
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip


class NodeMetrics:
    """Request counters and latencies by protocol and command, plus node gauges."""

    def __init__(self, node: Node | None = None) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dtk_requests",
            "Client requests handled, by protocol, command and outcome.",
            ["protocol", "command", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dtk_request_latency_seconds",
            "Client request latency, by protocol and command.",
            ["protocol", "command"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        gauges = {
            "quorum_failures": "Requests that did not reach their R or W quorum.",
            "read_repairs": "Stale replicas repaired after reads coordinated here.",
            "coordinated_reads": "Reads coordinated by this node.",
            "coordinated_writes": "Writes coordinated by this node.",
            "replica_writes": "Replica writes applied to local storage.",
            "hints_pending": "Hinted-handoff writes held for other nodes.",
            "hints_delivered": "Hinted writes handed over to their owners.",
            "hints_refused": "Hinted writes refused because the hint store was full.",
            "hints_expired": "Hints dropped because they outlived hint_max_age.",
            "hinted_requests": "Requests coordinated here that used stand-ins.",
            "anti_entropy_partitions": "Partition exchanges run by anti-entropy from this node.",
            "anti_entropy_keys_repaired": "Keys anti-entropy found different and reconciled.",
            "tombstones_collected": "Tombstones removed once every replica held them.",
            "membership_epoch": "Latest committed membership epoch this node knows.",
            "serving_epoch": "Membership epoch whose ownership table this node serves.",
            "handoff_ranges_total": "Key ranges this node must receive for the latest commit.",
            "handoff_ranges_done": "Key ranges received so far for the latest commit.",
            "handoff_keys_received": "Records received by handoff for the latest commit.",
            "storage_compression_ratio": "Stored bytes over original bytes (compressed engine).",
            "storage_cache_hit_ratio": "Hits over lookups of the storage cache (cached engine).",
            "storage_cache_bytes": "Bytes the storage cache holds (cached engine).",
            "stored_keys": "Keys in local storage.",
        }
        self._gauges = {
            name: Gauge(f"dtk_{name}", text, registry=self.registry)
            for name, text in gauges.items()
        }

    @contextmanager
    def track(self, protocol: str, command: str) -> Iterator[None]:
        """Time a request and count it as ok or error."""
        start = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.latency.labels(protocol, command).observe(time.perf_counter() - start)
            self.requests.labels(protocol, command, outcome).inc()

    def observe(self, protocol: str, command: str, seconds: float, ok: bool) -> None:
        """Record a request measured by the caller."""
        self.latency.labels(protocol, command).observe(seconds)
        self.requests.labels(protocol, command, "ok" if ok else "error").inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self.node is not None:
            stats = self.node.stats
            values = {
                "quorum_failures": stats.quorum_failures,
                "read_repairs": stats.read_repairs,
                "coordinated_reads": stats.reads,
                "coordinated_writes": stats.writes,
                "replica_writes": stats.replica_writes,
                "hints_pending": len(self.node.hints),
                "hints_delivered": self.node.hints.delivered,
                "hints_refused": self.node.hints.refused,
                "hints_expired": self.node.hints.expired,
                "hinted_requests": stats.hinted_requests,
                "anti_entropy_partitions": self.node.repairs.partitions,
                "anti_entropy_keys_repaired": self.node.repairs.keys_repaired,
                "tombstones_collected": self.node.repairs.tombstones_collected,
                "membership_epoch": self.node.membership.state.epoch,
                "serving_epoch": self.node.membership.serving_epoch,
                "handoff_ranges_total": self.node.membership.progress.ranges_total,
                "handoff_ranges_done": self.node.membership.progress.ranges_done,
                "handoff_keys_received": self.node.membership.progress.keys_received,
                "stored_keys": len(self.node.engine),
            }
            # Wrapper engines (compressed, cached) expose their figures; walk
            # the chain of wrapped engines to find them.
            engine: object | None = self.node.engine
            while engine is not None:
                if hasattr(engine, "ratio"):
                    values["storage_compression_ratio"] = engine.ratio
                if hasattr(engine, "hit_ratio"):
                    values["storage_cache_hit_ratio"] = engine.hit_ratio
                    values["storage_cache_bytes"] = getattr(engine, "bytes_used", 0)
                engine = getattr(engine, "inner", None)
            for name, value in values.items():
                self._gauges[name].set(value)
        return generate_latest(self.registry)
