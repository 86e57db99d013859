"""Prometheus metrics of one node process (one registry per node, no globals)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dynamo_toolkit.node import Node
from dynamo_toolkit_server.client_limit import CLOSE_REASONS, ClientLimit

__all__ = ["NodeMetrics"]

# A counter's "_created" timestamp series doubles what /metrics shows and tells
# an operator nothing a restart does not; no metric of a node carries one.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Buckets in seconds, dense below 5 ms where a healthy node answers.
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip


class _CommandStats:
    """Counts and latency buckets of one ``(protocol, command)``; plain ints, no locks."""

    __slots__ = ("buckets", "errors", "ok", "seconds")

    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0
        self.seconds = 0.0
        # One slot per bucket bound plus the +Inf overflow; not cumulative.
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)


class _RequestCollector(Collector):
    """Exposes the per-command stats as ``dtk_requests`` and ``dtk_request_latency_seconds``.

    Requests are counted in plain Python objects and turned into Prometheus
    families only when scraped: ``Counter.labels().inc()`` and
    ``Histogram.observe()`` cost microseconds per request, a large share of a
    cached read's whole budget.
    """

    def __init__(self, stats: dict[tuple[str, str], _CommandStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """Both families, built from the current counts."""
        requests = CounterMetricFamily(
            "dtk_requests",
            "Client requests handled, by protocol, command and outcome.",
            labels=["protocol", "command", "outcome"],
        )
        latency = HistogramMetricFamily(
            "dtk_request_latency_seconds",
            "Client request latency, by protocol and command.",
            labels=["protocol", "command"],
        )
        for (protocol, command), stats in sorted(self._stats.items()):
            if stats.ok:
                requests.add_metric([protocol, command, "ok"], stats.ok)
            if stats.errors:
                requests.add_metric([protocol, command, "error"], stats.errors)
            cumulative, buckets = 0, []
            for bound, count in zip((*_LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append((_bucket_label(bound), cumulative))
            latency.add_metric([protocol, command], buckets, stats.seconds)
        yield requests
        yield latency


class _NodeCounterCollector(Collector):
    """Exposes the node's monotonic counts as Prometheus counters (``dtk_NAME_total``).

    The values are read from the node by :meth:`NodeMetrics.render` just
    before each scrape; a name with no value yet is left out.
    """

    def __init__(self, help_texts: dict[str, str], values: dict[str, float]) -> None:
        self._help = help_texts
        self._values = values

    def collect(self) -> Iterator[Metric]:
        """One counter family per name that has a value."""
        for name, text in self._help.items():
            value = self._values.get(name)
            if value is not None:
                yield CounterMetricFamily(f"dtk_{name}", text, value=value)


class _ClientLimitCollector(Collector):
    """Exposes what the client limits cost clients, by protocol and reason.

    ``dtk_clients_closed_total`` counts connections the node closed (idle,
    slow, too large a request); ``dtk_requests_refused_total`` requests it
    refused on a connection it kept (past ``max_pipelined``). Every known
    series is shown from zero, so ``rate()`` works before the first event.
    """

    def __init__(self, client_limit: ClientLimit | None) -> None:
        self._limit = client_limit

    def collect(self) -> Iterator[Metric]:
        """Both families, read from the shared :class:`ClientLimit`."""
        closed = CounterMetricFamily(
            "dtk_clients_closed",
            "Client connections the node closed for a limit, by protocol and reason "
            "(idle, slow, too_large).",
            labels=["protocol", "reason"],
        )
        refused = CounterMetricFamily(
            "dtk_requests_refused",
            "Client requests refused for a limit on a connection kept open, by protocol "
            "and reason (pipeline).",
            labels=["protocol", "reason"],
        )
        counts = dict.fromkeys(
            ((p, r) for p in ("resp", "http", "native") for r in CLOSE_REASONS), 0
        )
        refusals = dict.fromkeys(((p, "pipeline") for p in ("resp", "native")), 0)
        if self._limit is not None:
            counts.update(self._limit.closed)
            refusals.update(self._limit.requests_refused)
        for (protocol, reason), value in sorted(counts.items()):
            closed.add_metric([protocol, reason], value)
        for (protocol, reason), value in sorted(refusals.items()):
            refused.add_metric([protocol, reason], value)
        yield closed
        yield refused


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class NodeMetrics:
    """Request counters and latencies by protocol and command, plus node gauges."""

    def __init__(self, node: Node | None = None, client_limit: ClientLimit | None = None) -> None:
        self.node = node
        self.client_limit = client_limit
        self.registry = CollectorRegistry()
        #: Per ``(protocol, command)`` counts and latency buckets.
        self.commands: dict[tuple[str, str], _CommandStats] = {}
        self.registry.register(_RequestCollector(self.commands))
        self.registry.register(_ClientLimitCollector(client_limit))
        counters = {
            "quorum_failures": "Requests that did not reach their R or W quorum.",
            "read_repairs": "Stale replicas repaired after reads coordinated here.",
            "coordinated_reads": "Reads coordinated by this node.",
            "coordinated_writes": "Writes coordinated by this node.",
            "forwarded_writes": "Writes handed to a replica of their key to coordinate.",
            "replica_reads": "Replica reads answered from local storage.",
            "replica_writes": "Replica writes applied to local storage.",
            "hints_delivered": "Hinted writes handed over to their owners.",
            "hints_refused": "Hinted writes refused because the hint store was full.",
            "hints_expired": "Hints dropped because they outlived hint_max_age.",
            "clients_refused": "Client connections turned away at max_clients.",
            "peer_auth_failures": "Peer connections refused: no or wrong cluster secret "
            "or certificate.",
            "peer_bytes_uncompressed": "Bytes of message bodies sent on compressing peer "
            "connections, before compression (tcp compression = dc or all).",
            "peer_bytes_sent_compressed": "Bytes sent for those bodies after compression; "
            "the difference from dtk_peer_bytes_uncompressed_total is what compression saved.",
            "peer_frames_compressed": "Peer frames sent with a compressed body.",
            "hinted_requests": "Requests coordinated here that used stand-ins.",
            "anti_entropy_partitions": "Partition exchanges run by anti-entropy from this node.",
            "anti_entropy_keys_repaired": "Keys anti-entropy found different and reconciled.",
            "tombstones_collected": "Tombstones removed once every replica held them.",
            "storage_cache_hits": "Lookups the storage cache answered (cached engine).",
            "storage_cache_misses": "Lookups the storage cache passed on (cached engine).",
            "store_lookups": "Reads of stored sibling sets (client reads, replica reads, "
            "the reads before writes).",
            "store_decoded_hits": "Store reads answered by the node's decoded-set cache.",
        }
        gauges = {
            "hints_pending": "Hinted-handoff writes held for other nodes.",
            "membership_epoch": "Latest committed membership epoch this node knows.",
            "serving_epoch": "Membership epoch whose ownership table this node serves.",
            "handoff_ranges_total": "Key ranges this node must receive for the latest commit.",
            "handoff_ranges_done": "Key ranges received so far for the latest commit.",
            "handoff_keys_received": "Records received by handoff for the latest commit.",
            "storage_compression_ratio": "Stored bytes over original bytes (compressed engine).",
            "storage_cache_hit_ratio": "Hits over lookups of the storage cache (cached engine).",
            "storage_cache_bytes": "Bytes the storage cache holds (cached engine).",
            "stored_keys": "Keys in local storage.",
            "clients_connected": "Client connections open (RESP, HTTP and native together).",
            "store_decoded_bytes": "Bytes held by the node's decoded-set cache (estimated; "
            "at most decoded_cache_bytes).",
        }
        #: The node's counters as of the last :meth:`render`, by name.
        self.counter_values: dict[str, float] = {}
        self.registry.register(_NodeCounterCollector(counters, self.counter_values))
        self._gauges = {
            name: Gauge(f"dtk_{name}", text, registry=self.registry)
            for name, text in gauges.items()
        }
        self._auth_failures = Counter(
            "dtk_auth_failures",
            "Client logins refused (unknown user or wrong password), by protocol.",
            ["protocol"],
            registry=self.registry,
        )
        self._denied = Counter(
            "dtk_permission_denied",
            "Requests refused because the user's role does not allow them, by protocol.",
            ["protocol"],
            registry=self.registry,
        )
        if node is not None:
            # An info metric (Prometheus convention): constant 1, the facts in its
            # labels, joined onto other series by ``node`` rather than labelling them.
            info = Gauge(
                "dtk_node_info",
                "This node: its id, datacenter and rack (empty: not declared); always 1.",
                ["node", "datacenter", "rack"],
                registry=self.registry,
            )
            info.labels(node.node_id, node.info.datacenter, node.info.rack).set(1)

    def auth_failed(self, protocol: str) -> None:
        """Count a refused login on ``protocol``."""
        self._auth_failures.labels(protocol).inc()

    def denied(self, protocol: str) -> None:
        """Count a request refused for want of a role on ``protocol``."""
        self._denied.labels(protocol).inc()

    @contextmanager
    def track(self, protocol: str, command: str) -> Iterator[None]:
        """Time a request and count it as ok or error."""
        start = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.observe(protocol, command, time.perf_counter() - start, outcome == "ok")

    def observe(self, protocol: str, command: str, seconds: float, ok: bool) -> None:
        """Record a request measured by the caller."""
        key = (protocol, command)
        stats = self.commands.get(key)
        if stats is None:
            stats = self.commands[key] = _CommandStats()
        if ok:
            stats.ok += 1
        else:
            stats.errors += 1
        stats.seconds += seconds
        stats.buckets[bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self.node is not None:
            stats = self.node.stats
            values = {
                "quorum_failures": stats.quorum_failures,
                "read_repairs": stats.read_repairs,
                "coordinated_reads": stats.reads,
                "coordinated_writes": stats.writes,
                "forwarded_writes": stats.forwarded_writes,
                "replica_reads": stats.replica_reads,
                "replica_writes": stats.replica_writes,
                "hints_pending": len(self.node.hints),
                "hints_delivered": self.node.hints.delivered,
                "hints_refused": self.node.hints.refused,
                "hints_expired": self.node.hints.expired,
                "clients_refused": self.client_limit.refused if self.client_limit else 0,
                "clients_connected": self.client_limit.open if self.client_limit else 0,
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
                "store_lookups": self.node.store.lookups,
                "store_decoded_hits": self.node.store.decoded_hits,
                "store_decoded_bytes": self.node.store.decoded_bytes,
            }
            # Transports that authenticate peers or compress (tcp) count refusals
            # and bytes; wrapper transports (delayed) hold theirs as ``inner``.
            transport = _innermost(self.node.transport, "auth_failures")
            values["peer_auth_failures"] = getattr(transport, "auth_failures", 0)
            values["peer_bytes_uncompressed"] = getattr(transport, "bytes_uncompressed", 0)
            values["peer_bytes_sent_compressed"] = getattr(transport, "bytes_compressed", 0)
            values["peer_frames_compressed"] = getattr(transport, "frames_compressed", 0)
            # Wrapper engines (compressed, cached) expose their figures; walk
            # the chain of wrapped engines to find them.
            engine: object | None = self.node.engine
            while engine is not None:
                if hasattr(engine, "ratio"):
                    values["storage_compression_ratio"] = engine.ratio
                if hasattr(engine, "hit_ratio"):
                    values["storage_cache_hit_ratio"] = engine.hit_ratio
                    values["storage_cache_bytes"] = getattr(engine, "bytes_used", 0)
                    values["storage_cache_hits"] = getattr(engine, "hits", 0)
                    values["storage_cache_misses"] = getattr(engine, "misses", 0)
                engine = getattr(engine, "inner", None)
            for name, value in values.items():
                if name in self._gauges:
                    self._gauges[name].set(value)
                else:
                    self.counter_values[name] = value
        return generate_latest(self.registry)


def _innermost(component: object, attribute: str) -> object:
    """The first of ``component`` and the ones it wraps (``inner``) with ``attribute``."""
    current: object | None = component
    while current is not None:
        if hasattr(current, attribute):
            return current
        current = getattr(current, "inner", None)
    return component
