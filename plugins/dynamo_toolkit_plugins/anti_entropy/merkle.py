"""Anti-entropy ``merkle``: one Merkle tree per partition (Dynamo §4.7).

A tree has ``fanout ** depth`` leaf buckets; a key's bucket comes from its own
mmh3 hash (not its ring position, which would crowd one partition's keys into
a few buckets). Level 0 is the root, level ``depth`` the leaves; node
``(level, i)`` has children ``(level + 1, i * fanout + j)``. Only non-empty
buckets and non-empty subtrees are stored: the hash of an empty subtree is a
per-level constant, so a tree costs memory in proportion to its keys.
"""

from __future__ import annotations

import hashlib

import mmh3

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.hookspecs import hookimpl
from dynamo_toolkit.interfaces.anti_entropy import AntiEntropy, PartitionDigest
from dynamo_toolkit.registry import ComponentRegistry

__all__ = ["MerkleAntiEntropy", "MerkleTree", "dtk_register_components"]

#: Seed of the bucket hash, so buckets are independent of ``key_position``.
_BUCKET_SEED = 0x6D65726B
#: Above this many leaves a tree's empty-hash tables and indices get silly.
_MAX_LEAVES = 1 << 24
_DIGEST_SIZE = 16


def _leaf_hash(items: dict[bytes, bytes]) -> bytes:
    h = hashlib.blake2b(b"L", digest_size=_DIGEST_SIZE)
    # Length prefixes keep (key, value) boundaries unambiguous.
    for key in sorted(items):
        value = items[key]
        h.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return h.digest()


def _inner_hash(children: list[bytes]) -> bytes:
    return hashlib.blake2b(b"I" + b"".join(children), digest_size=_DIGEST_SIZE).digest()


def _check_shape(fanout: int, depth: int) -> None:
    for name, value, least in (("fanout", fanout, 2), ("depth", depth, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(f"{name} must be an integer >= {least}, got {value!r}")
    if fanout**depth > _MAX_LEAVES:
        raise ConfigurationError(
            f"fanout ** depth = {fanout**depth} leaves is too many (at most {_MAX_LEAVES})"
        )


class MerkleTree(PartitionDigest):
    """A lazily rehashed Merkle tree over ``{key: record_hash}``."""

    def __init__(self, fanout: int = 16, depth: int = 3) -> None:
        _check_shape(fanout, depth)
        self.fanout = fanout
        self._depth = depth
        self.leaf_count: int = fanout**depth
        self._leaves: dict[int, dict[bytes, bytes]] = {}
        # _hashes[level] holds the hashes of non-empty nodes that are up to date.
        self._hashes: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]
        self._dirty: set[int] = set()
        self._size = 0
        empty = [_leaf_hash({})]
        for _ in range(depth):
            empty.append(_inner_hash([empty[-1]] * fanout))
        empty.reverse()
        self._empty: tuple[bytes, ...] = tuple(empty)

    # -- PartitionDigest ----------------------------------------------------

    @property
    def depth(self) -> int:
        """Levels below the root (leaves are at level ``depth``)."""
        return self._depth

    def bucket(self, key: bytes) -> int:
        """The leaf index of ``key``."""
        return int(mmh3.hash64(key, seed=_BUCKET_SEED, signed=False)[0]) % self.leaf_count

    def update(self, key: bytes, record_hash: bytes) -> None:
        """Insert ``key`` or replace its record hash (O(1); hashing waits for ``root``)."""
        index = self.bucket(key)
        leaf = self._leaves.setdefault(index, {})
        if leaf.get(key) == record_hash:
            return
        if key not in leaf:
            self._size += 1
        leaf[key] = record_hash
        self._dirty.add(index)

    def remove(self, key: bytes) -> None:
        """Forget ``key``; nothing happens if it is absent."""
        index = self.bucket(key)
        leaf = self._leaves.get(index)
        if leaf is None or key not in leaf:
            return
        del leaf[key]
        self._size -= 1
        if not leaf:
            del self._leaves[index]
        self._dirty.add(index)

    def root(self) -> bytes:
        """The root hash; only the paths above changed leaves are rehashed."""
        self._flush()
        return self._hashes[0].get(0, self._empty[0])

    def diff(self, other: PartitionDigest) -> set[bytes]:
        """Keys whose hashes differ or exist on one side only, descending differing nodes."""
        if not isinstance(other, MerkleTree):
            raise TypeError(
                f"can only diff a MerkleTree with a MerkleTree, not {type(other).__name__}"
            )
        if (other.fanout, other.depth) != (self.fanout, self.depth):
            raise TypeError(
                f"cannot diff Merkle trees of different shapes: fanout={self.fanout}, "
                f"depth={self.depth} vs fanout={other.fanout}, depth={other.depth}"
            )
        self._flush()
        other._flush()
        differing: set[bytes] = set()
        stack = [(0, 0)]
        while stack:
            level, index = stack.pop()
            if self.node_hash(level, index) == other.node_hash(level, index):
                continue
            if level == self.depth:
                mine, theirs = self.leaf_items(index), other.leaf_items(index)
                differing.update(
                    k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)
                )
            else:
                first = index * self.fanout
                stack.extend((level + 1, first + j) for j in range(self.fanout))
        return differing

    def __len__(self) -> int:
        """Number of keys in the tree."""
        return self._size

    # -- for a remote exchange -----------------------------------------------

    def node_hash(self, level: int, index: int) -> bytes:
        """Hash of node ``index`` at ``level`` (0 = root, ``depth`` = leaves)."""
        self._check_node(level, index)
        self._flush()
        return self._hashes[level].get(index, self._empty[level])

    def children_hashes(self, level: int, index: int) -> list[bytes]:
        """Hashes of the ``fanout`` children of an inner node, in index order."""
        self._check_node(level, index)
        if level == self.depth:
            raise ValueError(f"node ({level}, {index}) is a leaf and has no children")
        self._flush()
        hashes, empty = self._hashes[level + 1], self._empty[level + 1]
        first = index * self.fanout
        return [hashes.get(first + j, empty) for j in range(self.fanout)]

    def leaf_items(self, index: int) -> dict[bytes, bytes]:
        """A copy of leaf bucket ``index``: ``{key: record_hash}``."""
        self._check_node(self.depth, index)
        return dict(self._leaves.get(index, {}))

    # -- internals ------------------------------------------------------------

    def _check_node(self, level: int, index: int) -> None:
        if not 0 <= level <= self.depth:
            raise IndexError(f"level {level} is outside 0..{self.depth}")
        if not 0 <= index < self.fanout**level:
            raise IndexError(
                f"index {index} is outside level {level} (0..{self.fanout**level - 1})"
            )

    def _flush(self) -> None:
        # Rehash dirty leaves, then their parents level by level: each dirty path
        # costs depth hashes, and a node shared by several dirty leaves is hashed once.
        dirty = self._dirty
        if not dirty:
            return
        level = self.depth
        hashes = self._hashes[level]
        for index in dirty:
            leaf = self._leaves.get(index)
            if leaf:
                hashes[index] = _leaf_hash(leaf)
            else:
                hashes.pop(index, None)
        while level > 0:
            children, empty_child = self._hashes[level], self._empty[level]
            level -= 1
            parents = {index // self.fanout for index in dirty}
            hashes = self._hashes[level]
            for parent in parents:
                first = parent * self.fanout
                kids = [children.get(first + j, empty_child) for j in range(self.fanout)]
                if all(kid == empty_child for kid in kids):
                    hashes.pop(parent, None)  # an empty subtree hashes to the constant
                else:
                    hashes[parent] = _inner_hash(kids)
            dirty = parents
        self._dirty = set()

    def __repr__(self) -> str:
        return f"MerkleTree(fanout={self.fanout}, depth={self.depth}, keys={self._size})"


class MerkleAntiEntropy(AntiEntropy):
    """Merkle-tree digests with ``fanout ** depth`` leaf buckets per partition."""

    def __init__(self, fanout: int = 16, depth: int = 3) -> None:
        _check_shape(fanout, depth)
        self.fanout = fanout
        self.depth = depth

    def new_digest(self) -> MerkleTree:
        """An empty Merkle tree of this shape."""
        return MerkleTree(self.fanout, self.depth)

    def __repr__(self) -> str:
        return f"MerkleAntiEntropy(fanout={self.fanout}, depth={self.depth})"


@hookimpl
def dtk_register_components(registry: ComponentRegistry) -> None:
    """Register the ``merkle`` anti-entropy component."""
    registry.add_anti_entropy("merkle", MerkleAntiEntropy)
