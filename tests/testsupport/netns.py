"""A throwaway network of Linux namespaces for real-network fault tests (needs root).

Layout: a hub namespace holding a bridge, and one namespace per member (each
node, and a client) linked to that bridge by a veth pair created directly
between the two namespaces. Addresses come from ``SUBNET``.0/24 and exist only
inside the lab's namespaces: nothing is configured in the root namespace.

Run as a script (``python netns.py OPS_JSON``, inside the client
namespace) it is the client driver: it runs a list of operations with
:class:`dynamo_toolkit_server.client.Client` and prints one JSON result each.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBNET = "10.231.77"  # only ever configured inside the lab's own namespaces
BRIDGE = "br0"
LINK = "eth0"  # a member's end of its veth pair
PORTS = {"peer": 7100, "resp": 7101, "http": 7102, "native": 7103}


class LabError(RuntimeError):
    """A namespace, link or qdisc could not be set up; the message has the command."""


def run(command: str) -> subprocess.CompletedProcess[str]:
    """Run an ``ip``/``tc`` command line; :class:`LabError` with its stderr when it fails."""
    argv = shlex.split(command)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{command}: {exc}") from exc
    if done.returncode != 0:
        raise LabError(f"{command}: {done.stderr.strip() or done.returncode}")
    return done


@dataclass
class Member:
    """One namespace on the bridge."""

    name: str
    namespace: str
    address: str
    hub_link: str  # the hub's end of the veth pair

    def endpoint(self, kind: str) -> str:
        """``host:port`` of this member's ``peer``/``resp``/``http``/``native`` listener."""
        return f"{self.address}:{PORTS[kind]}"


@dataclass
class Lab:
    """The namespaces, created by :meth:`build` and removed by :meth:`destroy`."""

    prefix: str
    names: Sequence[str]
    hub: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def build(self) -> None:
        """Hub with a bridge, then each member's namespace, veth pair and address."""
        self.hub = self._add_namespace("hub")
        run(f"ip -n {self.hub} link add {BRIDGE} type bridge")
        run(f"ip -n {self.hub} link set dev {BRIDGE} up")
        run(f"ip -n {self.hub} link set dev lo up")
        for index, name in enumerate(self.names):
            namespace = self._add_namespace(name)
            member = Member(name, namespace, f"{SUBNET}.{10 + index}", f"v-{name}")
            # Both ends are born in their namespaces: the root namespace never sees them.
            hub_end = f"ip -n {self.hub} link add {member.hub_link} type veth"
            run(f"{hub_end} peer name {LINK} netns {namespace}")
            run(f"ip -n {self.hub} link set dev {member.hub_link} master {BRIDGE}")
            run(f"ip -n {self.hub} link set dev {member.hub_link} up")
            run(f"ip -n {namespace} link set dev lo up")
            run(f"ip -n {namespace} addr add {member.address}/24 dev {LINK}")
            run(f"ip -n {namespace} link set dev {LINK} up")
            self.members[name] = member

    def _add_namespace(self, name: str) -> str:
        namespace = f"{self.prefix}{name}"
        run(f"ip netns add {namespace}")
        self.created.append(namespace)
        return namespace

    def destroy(self) -> list[str]:
        """Delete every namespace created (veths and bridge go with them); what failed."""
        failures = []
        for namespace in reversed(self.created):
            try:
                run(f"ip netns del {namespace}")
            except LabError as exc:
                failures.append(str(exc))
        self.created.clear()
        return failures

    def exec_argv(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``name``'s namespace."""
        return ["ip", "netns", "exec", self.members[name].namespace, *argv]

    def set_link(self, name: str, up: bool) -> None:
        """Take ``name``'s link down (a partition: no RST, packets vanish) or back up."""
        state = "up" if up else "down"
        run(f"ip -n {self.members[name].namespace} link set dev {LINK} {state}")

    def add_loss(self, name: str, percent: int) -> None:
        """Drop ``percent``% of packets both ways on ``name``'s link (tc netem on each end)."""
        member = self.members[name]
        run(f"tc -n {member.namespace} qdisc add dev {LINK} root netem loss {percent}%")
        run(f"tc -n {self.hub} qdisc add dev {member.hub_link} root netem loss {percent}%")

    def clear_loss(self, name: str) -> None:
        """Remove what :meth:`add_loss` added (absent qdiscs are fine)."""
        member = self.members[name]
        for namespace, link in ((member.namespace, LINK), (self.hub, member.hub_link)):
            with contextlib.suppress(LabError):
                run(f"tc -n {namespace} qdisc del dev {link} root")


# -- node processes ----------------------------------------------------------------


@dataclass
class Nodes:
    """Node processes, each in its own namespace; stopped by :meth:`stop`."""

    lab: Lab
    directory: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def node_toml(self, name: str, store: Mapping[str, Any], names: Sequence[str]) -> str:
        """The ``node.toml`` of ``name``, via ``dtk cluster``'s own writer."""
        from dynamo_toolkit_server.local_cluster import (
            SECRET_FILE,
            ClusterPlan,
            NodePlan,
            node_toml,
        )
        from dynamo_toolkit_server.tls import write_cluster_secret

        plans = tuple(NodePlan(n, *(self.lab.members[n].endpoint(k) for k in PORTS)) for n in names)
        plan = ClusterPlan(plans, store)
        node = next(p for p in plans if p.name == name)
        # The nodes prove the cluster secret to each other over the namespaces'
        # links, as a local cluster's do.
        write_cluster_secret(self.directory / SECRET_FILE)
        # The namespaces' addresses are not loopback and the tests' clients do
        # not log in: the node must be told its client ports may be open.
        text = node_toml(plan, node, self.directory / name)
        return text.replace("[node]\n", "[node]\nunauthenticated_network = true\n", 1)

    def start(self, names: Sequence[str], store: Mapping[str, Any]) -> None:
        """Launch every node in its namespace (not waiting for them)."""
        for name in names:
            node_dir = self.directory / name
            node_dir.mkdir(parents=True, exist_ok=True)
            config = node_dir / "node.toml"
            config.write_text(self.node_toml(name, store, names))
            with open(node_dir / "node.log", "ab") as log:
                # `ip netns exec` execs the command: the child's pid is the node's.
                self.processes[name] = subprocess.Popen(
                    self.lab.exec_argv(
                        name, [sys.executable, "-m", "dynamo_toolkit_server.serve", str(config)]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=node_dir,
                )

    def wait_ready(self, timeout: float) -> None:
        """Until every node wrote its ready file; :class:`LabError` if one exits or is late."""
        deadline = time.monotonic() + timeout
        waiting = dict(self.processes)
        while waiting:
            for name, process in list(waiting.items()):
                if (self.directory / name / "ready.json").exists():
                    del waiting[name]
                elif process.poll() is not None:
                    raise LabError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            if waiting and time.monotonic() > deadline:
                raise LabError(f"{sorted(waiting)} not ready after {timeout} s")
            if waiting:
                time.sleep(0.05)  # polling other processes' start-up

    def log(self, name: str, lines: int = 20) -> str:
        """The end of ``name``'s log."""
        with contextlib.suppress(FileNotFoundError):
            text = (self.directory / name / "node.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def stop(self, timeout: float = 10.0) -> list[str]:
        """SIGTERM every node, SIGKILL what is left after ``timeout``; names of those killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        killed = []
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                killed.append(name)
        return killed


# -- the client driver (runs inside the client namespace) ----------------------------


class _Driver:
    def __init__(self) -> None:
        self.clients: dict[tuple[str, float], Any] = {}

    def client(self, address: str, timeout: float = 5.0) -> Any:
        from dynamo_toolkit_server.client import Client

        if (address, timeout) not in self.clients:
            self.clients[address, timeout] = Client([address], timeout=timeout)
        return self.clients[address, timeout]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def run(self, op: Mapping[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        try:
            result = getattr(self, f"op_{op['op']}")(op)
        except Exception as exc:
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            result = {"ok": True, **result}
        return {**result, "op": op["op"], "at": start, "seconds": time.monotonic() - start}

    def op_put(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """A write; with ``tries`` > 1, a failed one is retried (same value, no context)."""
        from dynamo_toolkit_server.client import ClientError

        client = self.client(op["via"], op.get("timeout", 5.0))
        errors = []
        for _ in range(op.get("tries", 1) - 1):
            try:
                client.put(op["key"], op["value"], w=op.get("w"))
            except ClientError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                return {"retried": errors}
        client.put(op["key"], op["value"], w=op.get("w"))
        return {"retried": errors}

    def op_get(self, op: Mapping[str, Any]) -> dict[str, Any]:
        read = self.client(op["via"], op.get("timeout", 5.0)).get(op["key"], r=op.get("r"))
        return {"values": list(read.values)}

    def op_info(self, op: Mapping[str, Any]) -> dict[str, Any]:
        return {"info": self.client(op["via"]).info()}

    def op_repair(self, op: Mapping[str, Any]) -> dict[str, Any]:
        return {"report": self.client(op["via"], 600.0).repair()}

    def op_repair_rounds(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Repair passes on every node of ``via`` until one pass reaches every peer (the
        detectors may lag a healed link), at most ``max_rounds``; then one more pass."""
        rounds: list[list[dict[str, int]]] = []
        while len(rounds) < op["max_rounds"]:
            rounds.append([self.client(a, 600.0).repair() for a in op["via"]])
            if all(report["peers_unreachable"] == 0 for report in rounds[-1]):
                rounds.append([self.client(a, 600.0).repair() for a in op["via"]])
                break
            time.sleep(0.2)  # letting heartbeats over the healed link reach the detectors
        return {"rounds": rounds}

    def op_health(self, op: Mapping[str, Any]) -> dict[str, Any]:
        url = f"http://{op['via']}/health"
        with urllib.request.urlopen(url, timeout=op.get("timeout", 2.0)) as reply:
            return {"health": json.loads(reply.read())}

    def op_until_hinted(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Write and read keys round-robin through ``via``, a round every ``pace`` seconds,
        until each has coordinated a hinted request (its detector reports a replica down)."""
        via: list[str] = op["via"]
        baseline = {a: self.client(a).info()["stats"]["hinted_requests"] for a in via}
        waiting = set(via)
        attempts = []
        deadline = time.monotonic() + op["deadline"]
        index = 0
        while waiting and time.monotonic() < deadline:
            for position, address in enumerate(via):
                key, value = f"{op['prefix']}-{index}", f"value-{index}"
                index += 1
                put = self.run({"op": "put", "via": address, "key": key, "value": value})
                reader = via[(position + 1) % len(via)]
                get = self.run({"op": "get", "via": reader, "key": key})
                attempts.append({"key": key, "value": value, "put": put, "get": get})
            for address in sorted(waiting):
                if self.client(address).info()["stats"]["hinted_requests"] > baseline[address]:
                    waiting.discard(address)
            if waiting:
                time.sleep(op.get("pace", 0.0))  # a steady trickle, not a flood of keys
        return {"attempts": attempts, "not_hinted": sorted(waiting)}

    def op_until_hints_clear(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Poll every node's /health until all answer with no hint pending."""
        deadline = time.monotonic() + op["deadline"]
        while True:
            pending = {}
            for address in op["via"]:
                health = self.run({"op": "health", "via": address, "timeout": 0.5})
                pending[address] = health["health"]["hints_pending"] if health["ok"] else None
            if all(count == 0 for count in pending.values()):
                return {"pending": pending}
            if time.monotonic() > deadline:
                raise TimeoutError(f"hints still pending after {op['deadline']} s: {pending}")
            time.sleep(0.1)  # waiting for other processes' hint delivery


def main(argv: Sequence[str]) -> None:
    """Run the operations of ``argv[0]`` (JSON list); print a JSON list of results."""
    driver = _Driver()
    try:
        results = [driver.run(op) for op in json.loads(argv[0])]
    finally:
        driver.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
