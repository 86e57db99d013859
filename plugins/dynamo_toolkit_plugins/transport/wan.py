"""A WAN model: latency and loss per pair of datacenters, and links that can be cut.

Shared by the ``simulated`` transport (virtual time, one seeded generator for
the whole cluster) and the ``delayed`` wrapper (real processes on one
machine). A node's datacenter is its :attr:`~dynamo_toolkit.node_info.NodeInfo.datacenter`
("" when undeclared: all such nodes share one datacenter).

In TOML, under the transport's section (every delay in milliseconds; the
distributions are those of :func:`dynamo_toolkit.latency.distribution_from_config`)::

    [transport]
    name = "simulated"

    [transport.wan.local]            # inside one datacenter
    latency = "uniform"
    min_ms = 0.2
    max_ms = 1.0

    [transport.wan.default]          # between datacenters no link names
    latency = "lognormal"
    median_ms = 80
    p99_ms = 200

    [[transport.wan.links]]
    between = ["dc1", "dc2"]         # both directions; or from = "dc1", to = "dc2"
    latency = "lognormal"
    median_ms = 40
    p99_ms = 120
    loss = 0.001                     # probability a message is lost on this link

Links are symmetric (``between``) unless given one direction (``from`` and
``to``), which then wins over a ``between`` of the same pair. A pair with no
link and no ``default`` (or a datacenter's own traffic with no ``local``) takes
the transport's own delay (``min_delay``..``max_delay`` for ``simulated``,
none for ``delayed``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.latency import Distribution, Sampler, config_keys, distribution_from_config
from dynamo_toolkit.node_info import NodeInfo

__all__ = ["Link", "WanModel", "WanState"]


@attrs.frozen
class Link:
    """One direction's one-way ``latency`` (ms) and ``loss`` probability."""

    latency: Distribution
    loss: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ConfigurationError(f"loss must be a probability in [0, 1], got {self.loss}")

    @classmethod
    def from_config(cls, table: Any, where: str, extra: Iterable[str] = ()) -> Link:
        """Read ``latency = ..`` (with its keys) and ``loss`` from a table."""
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"{where} must be a table, got {table!r}")
        unknown = set(table) - config_keys(table) - {"loss", *extra}
        if unknown:
            raise ConfigurationError(f"{where}: unknown setting(s) {sorted(unknown)}")
        try:
            latency = distribution_from_config(table)
        except ValueError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        loss = table.get("loss", 0.0)
        if isinstance(loss, bool) or not isinstance(loss, int | float):
            raise ConfigurationError(f"{where}: loss must be a number, got {loss!r}")
        try:
            return cls(latency, float(loss))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None


@attrs.frozen
class WanModel:
    """Links by (sender's datacenter, receiver's datacenter), plus two defaults.

    ``local`` applies inside a datacenter, ``default`` between datacenters
    that ``links`` does not name; ``None`` leaves the transport's own delay.
    """

    links: Mapping[tuple[str, str], Link] = attrs.field(factory=dict)
    local: Link | None = None
    default: Link | None = None

    @property
    def empty(self) -> bool:
        """True when the model changes nothing (no link, no default)."""
        return not self.links and self.local is None and self.default is None

    def link(self, source_dc: str, dest_dc: str) -> Link | None:
        """The link a message from ``source_dc`` to ``dest_dc`` takes (None: the transport's)."""
        if source_dc == dest_dc:
            return self.links.get((source_dc, dest_dc), self.local)
        return self.links.get((source_dc, dest_dc), self.default)

    @classmethod
    def from_config(cls, table: Any) -> WanModel:
        """Read the ``[transport.wan]`` table (see the module docstring)."""
        if isinstance(table, WanModel):
            return table
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"[transport] wan must be a table, got {table!r}")
        unknown = set(table) - {"local", "default", "links"}
        if unknown:
            raise ConfigurationError(
                f"[transport.wan]: unknown setting(s) {sorted(unknown)}; "
                "known: local, default, links"
            )
        local = (
            Link.from_config(table["local"], "[transport.wan.local]") if "local" in table else None
        )
        default = (
            Link.from_config(table["default"], "[transport.wan.default]")
            if "default" in table
            else None
        )
        entries = table.get("links", [])
        if not isinstance(entries, list):
            raise ConfigurationError("[transport.wan] links must be an array of tables")
        symmetric: dict[tuple[str, str], Link] = {}
        directed: dict[tuple[str, str], Link] = {}
        for index, entry in enumerate(entries):
            where = f"[[transport.wan.links]] #{index + 1}"
            link = Link.from_config(entry, where, extra=("between", "from", "to"))
            if "between" in entry:
                pair = entry["between"]
                if "from" in entry or "to" in entry:
                    raise ConfigurationError(f"{where}: give between or from/to, not both")
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ConfigurationError(
                        f'{where}: between must name two datacenters, as ["dc1", "dc2"]'
                    )
                a, b = (_datacenter(name, where) for name in pair)
                for key in ((a, b), (b, a)):
                    if key in symmetric:
                        raise ConfigurationError(f"{where}: link {a}-{b} is given twice")
                    symmetric[key] = link
            elif "from" in entry and "to" in entry:
                key = (_datacenter(entry["from"], where), _datacenter(entry["to"], where))
                if key in directed:
                    raise ConfigurationError(f"{where}: link {key[0]}->{key[1]} is given twice")
                directed[key] = link
            else:
                raise ConfigurationError(
                    f'{where}: name the datacenters, as between = ["dc1", "dc2"] '
                    'or from = "dc1", to = "dc2"'
                )
        return cls({**symmetric, **directed}, local, default)


def _datacenter(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{where}: a datacenter name must be a non-empty string")
    return name


class WanState:
    """A :class:`WanModel` at run time: who is where, which links are cut, the draws.

    Every draw comes from ``rng``. With an empty model nothing is drawn, so a
    network without a WAN draws exactly what it drew before there was one.
    """

    def __init__(self, model: WanModel, rng: random.Random, members: Iterable[NodeInfo]) -> None:
        self.model = model
        self._rng = rng
        self._datacenter: dict[str, str] = {}
        self._samplers: dict[tuple[str, str], Sampler | None] = {}
        self._cut: set[frozenset[str]] = set()
        self._isolated: set[str] = set()
        self.learn(members)

    def learn(self, members: Iterable[NodeInfo]) -> None:
        """Record each member's datacenter (repeats are harmless)."""
        for member in members:
            self._datacenter[member.node_id] = member.datacenter

    def datacenter(self, node_id: str) -> str:
        """The datacenter of ``node_id`` ("" when it declared none or is unknown)."""
        return self._datacenter.get(node_id, "")

    # -- cutting links ----------------------------------------------------------

    def cut(self, dc_a: str, dc_b: str | None = None) -> None:
        """Cut the link between two datacenters, or ``dc_a`` from every other one."""
        if dc_b is None:
            self._isolated.add(dc_a)
        elif dc_a == dc_b:
            raise ValueError("cut needs two different datacenters (partition splits one)")
        else:
            self._cut.add(frozenset((dc_a, dc_b)))

    def restore(self, dc_a: str | None = None, dc_b: str | None = None) -> None:
        """Undo :meth:`cut`: one link, every cut touching ``dc_a``, or (no argument) all."""
        if dc_a is None:
            self._cut.clear()
            self._isolated.clear()
        elif dc_b is None:
            self._isolated.discard(dc_a)
            self._cut = {pair for pair in self._cut if dc_a not in pair}
        else:
            self._cut.discard(frozenset((dc_a, dc_b)))

    @property
    def cuts(self) -> frozenset[frozenset[str]]:
        """The cut links (pairs of datacenters; a one-element set is an isolated one)."""
        return frozenset(self._cut | {frozenset((dc,)) for dc in self._isolated})

    def is_cut(self, source: str, dest: str) -> bool:
        """Whether the link between the two nodes' datacenters is cut."""
        if not (self._cut or self._isolated):
            return False
        a, b = self.datacenter(source), self.datacenter(dest)
        if a == b:
            return False
        return a in self._isolated or b in self._isolated or frozenset((a, b)) in self._cut

    # -- drawing ----------------------------------------------------------------

    def draw(self, source: str, dest: str) -> tuple[bool, float | None]:
        """Draw one message's fate: (lost on the link, one-way delay in seconds or None).

        ``None`` means the model has no link for this pair: the transport's
        own delay applies. The loss draw happens for every message whatever
        the link, so the random stream does not depend on who talks to whom.
        """
        if self.model.empty:
            return False, None
        key = (self.datacenter(source), self.datacenter(dest))
        link = self.model.link(*key)
        lost = self._rng.random() < (link.loss if link is not None else 0.0)
        if link is None:
            return lost, None
        sampler = self._samplers.get(key)
        if sampler is None:
            sampler = self._samplers[key] = link.latency.sampler(self._rng)
        return lost, sampler() / 1000.0
