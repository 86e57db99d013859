"""Properties of the ``merkle`` anti-entropy component."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.interfaces.anti_entropy import PartitionDigest
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit_plugins.anti_entropy.merkle import MerkleAntiEntropy, MerkleTree

keys = st.binary(max_size=6)
hashes = st.binary(min_size=1, max_size=4)
records = st.dictionaries(keys, hashes, max_size=80)
# None deletes the key, bytes set it: applied on top of a base dict to make a second replica.
changes = st.dictionaries(keys, st.none() | hashes, max_size=30)
shapes = st.sampled_from([(2, 1), (2, 3), (4, 2), (16, 3)])


def build(shape: tuple[int, int], contents: dict[bytes, bytes]) -> MerkleTree:
    tree = MerkleTree(*shape)
    for key, value in contents.items():
        tree.update(key, value)
    return tree


def apply(base: dict[bytes, bytes], edits: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    result = dict(base)
    for key, value in edits.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def expected_diff(a: dict[bytes, bytes], b: dict[bytes, bytes]) -> set[bytes]:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


def remote_diff(mine: MerkleTree, theirs: MerkleTree) -> set[bytes]:
    """What a node pair would find exchanging only node hashes and leaf items."""
    found: set[bytes] = set()
    pending = [(0, 0)] if mine.node_hash(0, 0) != theirs.node_hash(0, 0) else []
    while pending:
        level, index = pending.pop()
        if level == mine.depth:
            a, b = mine.leaf_items(index), theirs.leaf_items(index)
            found |= expected_diff(a, b)
            continue
        ours, other = mine.children_hashes(level, index), theirs.children_hashes(level, index)
        for j, (x, y) in enumerate(zip(ours, other, strict=True)):
            if x != y:
                pending.append((level + 1, index * mine.fanout + j))
    return found


@given(shape=shapes, base=records, edits=changes)
def test_diff_is_exactly_the_differing_keys(
    shape: tuple[int, int], base: dict[bytes, bytes], edits: dict[bytes, bytes | None]
) -> None:
    other = apply(base, edits)
    mine, theirs = build(shape, base), build(shape, other)
    expected = expected_diff(base, other)
    assert mine.diff(theirs) == expected == theirs.diff(mine)
    assert remote_diff(mine, theirs) == expected
    assert (mine.root() == theirs.root()) == (not expected)


@given(
    shape=shapes,
    ops=st.lists(st.tuples(keys, st.none() | hashes, st.booleans()), max_size=60),
)
def test_lazy_rehash_matches_a_fresh_build(
    shape: tuple[int, int], ops: list[tuple[bytes, bytes | None, bool]]
) -> None:
    # Interleaving root() with edits exercises the dirty flags; a tree built in one
    # go from the final contents must agree on every node.
    tree = MerkleTree(*shape)
    model: dict[bytes, bytes] = {}
    for key, value, look in ops:
        if value is None:
            tree.remove(key)
            model.pop(key, None)
        else:
            tree.update(key, value)
            model[key] = value
        if look:
            tree.root()
    fresh = build(shape, model)
    assert tree.root() == fresh.root()
    assert len(tree) == len(model)
    fanout, depth = shape
    for index in range(fanout**depth):
        assert tree.node_hash(depth, index) == fresh.node_hash(depth, index)
        assert tree.leaf_items(index) == fresh.leaf_items(index)


def test_empty_root_is_a_constant_and_removal_restores_it() -> None:
    tree = MerkleTree()
    empty = tree.root()
    assert empty == MerkleTree().root()
    tree.update(b"k", b"h")
    assert tree.root() != empty
    tree.remove(b"k")
    assert tree.root() == empty
    assert tree.leaf_items(tree.bucket(b"k")) == {}


def test_children_hashes_agree_with_node_hash() -> None:
    tree = build((4, 3), {bytes([i, j]): bytes([j]) for i in range(20) for j in range(5)})
    for level in range(3):
        for index in range(4**level):
            children = tree.children_hashes(level, index)
            assert children == [tree.node_hash(level + 1, index * 4 + j) for j in range(4)]
    with pytest.raises(ValueError, match="leaf"):
        tree.children_hashes(3, 0)
    with pytest.raises(IndexError):
        tree.node_hash(1, 4)
    with pytest.raises(IndexError):
        tree.node_hash(4, 0)


def test_diff_rejects_other_shapes_and_kinds() -> None:
    class Other(PartitionDigest):
        def update(self, key: bytes, record_hash: bytes) -> None: ...
        def remove(self, key: bytes) -> None: ...
        def root(self) -> bytes:
            return b""

        def diff(self, other: PartitionDigest) -> set[bytes]:
            return set()

        def __len__(self) -> int:
            return 0

        depth = 0

        def node_hash(self, level: int, index: int) -> bytes:
            return b""

        def children_hashes(self, level: int, index: int) -> list[bytes]:
            return []

        def leaf_items(self, index: int) -> dict[bytes, bytes]:
            return {}

    with pytest.raises(TypeError, match="different shapes"):
        MerkleTree(16, 3).diff(MerkleTree(16, 2))
    with pytest.raises(TypeError, match="not Other"):
        MerkleTree().diff(Other())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fanout": 1}, "fanout must be an integer >= 2"),
        ({"depth": 0}, "depth must be an integer >= 1"),
        ({"fanout": 2.0}, "fanout must be an integer"),
        ({"fanout": 1024, "depth": 3}, "too many"),
    ],
)
def test_parameters_are_validated(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MerkleAntiEntropy(**params)  # type: ignore[arg-type]


def test_registered_through_the_plugin_host() -> None:
    component = load_plugins().registry.create("anti_entropy", "merkle", fanout=8, depth=2)
    assert isinstance(component, MerkleAntiEntropy)
    digest = component.new_digest()
    assert (digest.fanout, digest.depth, digest.leaf_count) == (8, 2, 64)
