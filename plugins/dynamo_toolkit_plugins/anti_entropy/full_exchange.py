"""Anti-entropy ``full-exchange``: a flat digest, the baseline Merkle trees are measured against.

The digest is the partition's whole ``{key: record_hash}`` map behind one root
hash, a tree of depth 0: the root *is* the only leaf. Two replicas compare
roots (one round trip when in sync); when the roots differ, the exchange
(:mod:`dynamo_toolkit.anti_entropy_exchange`) asks for leaf 0 and so receives
every key and record hash of the partition at once. The cost of finding the
differences therefore grows with the partition's size, not with how many keys
differ: the naive scheme Dynamo's Merkle trees (§4.7) avoid.

The root is an additive set hash (AdHash, Bellare and Micciancio 1997): the sum
modulo ``2 ** 256`` of a 32-byte BLAKE2b hash of each ``(key, record_hash)``
pair, hashed once more with the key count. Adding, replacing or removing a key
adds or subtracts one term, so every update and every ``root()`` is O(1) and
the root does not depend on insertion order. Accidental collisions are as
unlikely as for any 128-bit hash; the sum is not meant to resist an adversary
choosing keys, which anti-entropy between one's own replicas does not face.
"""

from __future__ import annotations

import hashlib

from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.anti_entropy import AntiEntropy, PartitionDigest
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["FlatDigest", "FullExchangeAntiEntropy", "dtk_register_components"]

_MODULUS = 1 << 256
_DIGEST_SIZE = 16


def _item_term(key: bytes, record_hash: bytes) -> int:
    # Length prefixes keep (key, hash) boundaries unambiguous.
    h = hashlib.blake2b(b"F", digest_size=32)
    h.update(len(key).to_bytes(4, "big") + key + len(record_hash).to_bytes(4, "big") + record_hash)
    return int.from_bytes(h.digest(), "big")


class FlatDigest(PartitionDigest):
    """``{key: record_hash}`` with an incrementally maintained set-hash root (depth 0)."""

    def __init__(self) -> None:
        self._items: dict[bytes, bytes] = {}
        self._sum = 0
        self._root: bytes | None = None

    # -- PartitionDigest ----------------------------------------------------

    @property
    def depth(self) -> int:
        """Always 0: the root is the single leaf."""
        return 0

    def update(self, key: bytes, record_hash: bytes) -> None:
        """Insert ``key`` or replace its record hash (O(1))."""
        old = self._items.get(key)
        if old == record_hash:
            return
        if old is not None:
            self._sum -= _item_term(key, old)
        self._sum = (self._sum + _item_term(key, record_hash)) % _MODULUS
        self._items[key] = record_hash
        self._root = None

    def remove(self, key: bytes) -> None:
        """Forget ``key``; nothing happens if it is absent."""
        old = self._items.pop(key, None)
        if old is None:
            return
        self._sum = (self._sum - _item_term(key, old)) % _MODULUS
        self._root = None

    def root(self) -> bytes:
        """A 16-byte hash of the key count and the sum of the item terms."""
        if self._root is None:
            data = len(self._items).to_bytes(8, "big") + self._sum.to_bytes(32, "big")
            self._root = hashlib.blake2b(b"R" + data, digest_size=_DIGEST_SIZE).digest()
        return self._root

    def diff(self, other: PartitionDigest) -> set[bytes]:
        """Keys whose hashes differ or exist on one side only: a comparison of the two maps."""
        if other.depth != 0:
            raise TypeError(
                f"can only diff a flat digest with another depth-0 digest, "
                f"not {type(other).__name__} of depth {other.depth}"
            )
        mine = self._items
        theirs = other._items if isinstance(other, FlatDigest) else other.leaf_items(0)
        return {key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key)}

    def __len__(self) -> int:
        """Number of keys in the digest."""
        return len(self._items)

    # -- for a remote exchange -----------------------------------------------

    def node_hash(self, level: int, index: int) -> bytes:
        """The root: the only node is ``(0, 0)``."""
        self._check_node(level, index)
        return self.root()

    def children_hashes(self, level: int, index: int) -> list[bytes]:
        """Never valid: the only node is a leaf."""
        self._check_node(level, index)
        raise ValueError("a flat digest has a single leaf and no inner nodes")

    def leaf_items(self, index: int) -> dict[bytes, bytes]:
        """A copy of every ``{key: record_hash}`` (``index`` must be 0)."""
        self._check_node(0, index)
        return dict(self._items)

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _check_node(level: int, index: int) -> None:
        if level != 0:
            raise IndexError(f"level {level} is outside 0..0")
        if index != 0:
            raise IndexError(f"index {index} is outside level 0 (0..0)")

    def __repr__(self) -> str:
        return f"FlatDigest(keys={len(self._items)})"


class FullExchangeAntiEntropy(AntiEntropy):
    """Flat digests: an exchange that finds differences ships every key and record hash."""

    def new_digest(self) -> FlatDigest:
        """An empty flat digest."""
        return FlatDigest()

    def __repr__(self) -> str:
        return "FullExchangeAntiEntropy()"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``full-exchange`` anti-entropy component."""
    registry.add_anti_entropy("full-exchange", FullExchangeAntiEntropy)
