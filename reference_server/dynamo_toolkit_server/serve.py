"""One node process: the kernel's node over TCP, behind its protocol front-ends.

``dtk serve --config node.toml`` runs it in the foreground. SIGTERM or SIGINT
stops it gracefully: front-ends stop accepting and finish in-flight requests,
then the node stops and its storage is flushed and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from dynamo_toolkit.components import build_components
from dynamo_toolkit.node import Node
from dynamo_toolkit.plugin_host import PluginHost, load_plugins
from dynamo_toolkit_plugins.transport.tcp import parse_address
from dynamo_toolkit_server.auth import Authenticator
from dynamo_toolkit_server.client_limit import ClientLimit
from dynamo_toolkit_server.metrics import NodeMetrics
from dynamo_toolkit_server.service import StoreService
from dynamo_toolkit_server.settings import NodeSettings
from dynamo_toolkit_server.tls import peer_contexts, read_cluster_secrets, server_context

__all__ = ["READY_FILE", "NodeProcess", "run_node", "tune_garbage_collector"]

log = logging.getLogger(__name__)

#: Written into the data directory once every listener is up; removed on stop.
READY_FILE = "ready.json"


class _Closable(Protocol):
    async def close(self) -> None: ...


class NodeProcess:
    """A node and its front-ends, started and stopped together."""

    def __init__(self, settings: NodeSettings, host: PluginHost | None = None) -> None:
        self.settings = settings
        self.host = host or load_plugins()
        self.node: Node | None = None
        self.service: StoreService | None = None
        self.metrics: NodeMetrics | None = None
        #: One cap on client connections for all the node's front-ends, with
        #: the per-connection limits (timeouts, sizes) each of them applies.
        self.client_limit = ClientLimit(settings.max_clients, settings.limits)
        #: Who may log in on the client ports (nobody needs to, without users).
        self.authenticator = Authenticator(settings.security.users)
        self.frontends: dict[str, _Closable] = {}
        self.bound: dict[str, str] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        """Start the node, then each configured front-end; write the ready file."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        choice = s.store.component("transport")
        params = dict(choice.params)
        # This node listens on its [node] peer address whatever else is said.
        params["addresses"] = {**params.get("addresses", {}), s.node_id: s.peer}
        params.update(self._peer_security())
        # Bad TLS files fail the start before the node joins anything.
        self._tls = self._client_tls()
        network = self.host.registry.create(
            "transport", choice.name, seed=0, members=s.members, **params
        )
        node = Node(
            s.info,
            s.members,
            s.store,
            host=self.host,
            network=network,
            components=build_components(
                s.store, self.host.registry, node_id=s.node_id, data_dir=s.data_dir
            ),
            data_dir=s.data_dir,
            joining=s.join,
            seeds=s.seeds if s.join else (),
        )
        await node.start()
        self.node = node
        self.service = StoreService(node)
        self.metrics = NodeMetrics(node, self.client_limit)
        self.bound["peer"] = s.peer
        starters = self._starters()
        for name, address in (("resp", s.resp), ("http", s.http), ("native", s.native)):
            if not address:
                continue
            host, port = parse_address(address)
            server = await starters[name](host, port)
            self.frontends[name] = server
            self.bound[name] = f"{host}:{getattr(server, 'port', port)}"
        self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())
        self._write_ready()
        log.info("node %s ready: %s", s.node_id, self.bound)
        if not self.authenticator.enabled:
            log.warning(
                "no [[users]]: client ports do not authenticate anyone (the security docs "
                "say how; off loopback only with unauthenticated_network)"
            )
        if not s.security.peers_authenticated:
            log.warning(
                "no cluster secret or peer TLS: any process that reaches the peer port is "
                "trusted as a node (the security docs say how; off loopback only with "
                "unauthenticated_network)"
            )

    def _peer_security(self) -> dict[str, Any]:
        """The peer transport's cluster secrets and TLS contexts, from ``[security]``."""
        security = self.settings.security
        options: dict[str, Any] = {}
        if security.cluster_secret_file is not None:
            options["cluster_secret"] = read_cluster_secrets(security.cluster_secret_file)
        if security.tls and security.peer_tls:
            assert security.tls_cert is not None
            assert security.tls_key is not None
            assert security.tls_ca is not None  # SecuritySettings checks it
            server_tls, client_tls = peer_contexts(
                security.tls_cert, security.tls_key, security.tls_ca
            )
            options.update(server_tls=server_tls, client_tls=client_tls)
        return options

    def _client_tls(self) -> ssl.SSLContext | None:
        """The client ports' TLS context, from ``[security]`` (``None``: plain TCP)."""
        security = self.settings.security
        if not security.tls:
            return None
        assert security.tls_cert is not None
        assert security.tls_key is not None
        return server_context(
            security.tls_cert, security.tls_key, security.tls_ca, security.tls_client_certs
        )

    def _starters(self) -> dict[str, Callable[[str, int], Awaitable[Any]]]:
        assert self.service is not None
        service, metrics, authenticator = self.service, self.metrics, self.authenticator
        limit = self.client_limit
        tls = self._tls

        async def resp(host: str, port: int) -> Any:
            from dynamo_toolkit_server.resp.server import start_resp_server

            return await start_resp_server(
                service,
                host,
                port,
                metrics=metrics,
                authenticator=authenticator,
                client_limit=limit,
                tls=tls,
            )

        async def http(host: str, port: int) -> Any:
            from dynamo_toolkit_server.http_api import start_http_server

            return await start_http_server(
                service,
                host,
                port,
                metrics=metrics,
                client_limit=limit,
                authenticator=authenticator,
                tls=tls,
            )

        async def native(host: str, port: int) -> Any:
            from dynamo_toolkit_server.native.server import start_native_server

            return await start_native_server(
                service,
                host,
                port,
                metrics=metrics,
                client_limit=limit,
                authenticator=authenticator,
                tls=tls,
            )

        return {"resp": resp, "http": http, "native": native}

    async def _flush_periodically(self) -> None:
        # Group commit: engines buffer writes; flushing on a timer bounds what a
        # crash can lose to one interval, without a sync per write.
        assert self.node is not None
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            self.node.engine.flush()
            self.node.hints.engine.flush()

    def _write_ready(self) -> None:
        payload = {"node": self.settings.node_id, "pid": os.getpid(), **self.bound}
        ready = self.settings.data_dir / READY_FILE
        temporary = ready.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload))
        temporary.replace(ready)  # atomic: a reader never sees half a file

    async def stop(self) -> None:
        """Graceful stop: front-ends first (finishing in-flight requests), then the node."""
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / READY_FILE).unlink()
        for server in self.frontends.values():
            await server.close()
        self.frontends.clear()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self.node is not None:
            await self.node.close()
            self.node = None
            log.info("node %s stopped cleanly: storage flushed and closed", self.settings.node_id)


async def _serve(settings: NodeSettings) -> None:
    process = NodeProcess(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await process.start()
        tune_garbage_collector()
        await stop.wait()
    finally:
        await process.stop()


#: Allocations between young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a long-running node.

    A node keeps many long-lived objects (decoded sibling sets, clocks) and
    allocates a few hundred short-lived ones per request, nearly all freed by
    reference counting. With CPython's defaults the collector ran every few
    requests and took about a fifth of a busy node's CPU (``perf``): what
    exists after start-up is frozen out of every collection, and the young
    generation is collected after 50,000 allocations instead of 700.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run_node(settings: NodeSettings) -> None:
    """Run a node in the foreground until SIGTERM or SIGINT (uvloop when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(_serve(settings))
    else:
        uvloop.run(_serve(settings))


def main(config: str | Path) -> None:
    """Entry point of ``python -m dynamo_toolkit_server.serve CONFIG``."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_node(NodeSettings.from_toml(config))


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(sys.argv[1])
