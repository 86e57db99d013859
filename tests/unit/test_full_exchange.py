"""The ``full-exchange`` anti-entropy baseline: the flat digest and its exchange in a cluster."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.in_process_cluster import Cluster
from dynamo_toolkit.message_codec import decode_message, encode_message
from dynamo_toolkit.messages import TreeReply
from dynamo_toolkit.plugin_host import load_plugins
from dynamo_toolkit.testing import run_virtual
from dynamo_toolkit_plugins.anti_entropy.full_exchange import FlatDigest, FullExchangeAntiEntropy
from dynamo_toolkit_plugins.anti_entropy.merkle import MerkleTree

keys = st.binary(max_size=6)
hashes = st.binary(min_size=1, max_size=4)
records = st.dictionaries(keys, hashes, max_size=80)
changes = st.dictionaries(keys, st.none() | hashes, max_size=30)


def build(contents: dict[bytes, bytes]) -> FlatDigest:
    digest = FlatDigest()
    for key, value in contents.items():
        digest.update(key, value)
    return digest


@given(base=records, edits=changes)
def test_incremental_root_equals_a_fresh_build(
    base: dict[bytes, bytes], edits: dict[bytes, bytes | None]
) -> None:
    # The root is maintained by adding and subtracting terms: after any edits
    # it must equal the root of a digest built from the final contents.
    digest = build(base)
    digest.root()
    final = dict(base)
    for key, value in edits.items():
        if value is None:
            digest.remove(key)
            final.pop(key, None)
        else:
            digest.update(key, value)
            final[key] = value
    fresh = build(final)
    assert digest.root() == fresh.root()
    assert digest.leaf_items(0) == final
    expected = {k for k in base.keys() | final.keys() if base.get(k) != final.get(k)}
    assert build(base).diff(digest) == expected
    assert (build(base).root() == digest.root()) == (not expected)


def test_shape_is_one_leaf() -> None:
    digest = build({b"a": b"1", b"b": b"2"})
    assert digest.depth == 0
    assert digest.node_hash(0, 0) == digest.root()
    assert digest.leaf_items(0) == {b"a": b"1", b"b": b"2"}
    items = digest.leaf_items(0)
    items[b"c"] = b"3"  # a copy: the digest does not change
    assert len(digest) == 2
    with pytest.raises(ValueError, match="no inner nodes"):
        digest.children_hashes(0, 0)
    for level, index in ((1, 0), (0, 1), (-1, 0)):
        with pytest.raises(IndexError):
            digest.node_hash(level, index)
    with pytest.raises(IndexError):
        digest.leaf_items(1)


def test_diff_takes_any_flat_digest_but_not_a_tree() -> None:
    with pytest.raises(TypeError, match="depth 3"):
        FlatDigest().diff(MerkleTree(16, 3))


def test_leaf_survives_the_wire() -> None:
    # Over TCP the whole partition travels as one msgpack map in a TreeReply.
    items = build({bytes([i]) * 3: bytes([i]) * 16 for i in range(50)}).leaf_items(0)
    packed = msgpack.packb(encode_message(TreeReply(0, (items,))), use_bin_type=True)
    decoded = decode_message(msgpack.unpackb(packed, raw=False, strict_map_key=False))
    assert decoded == TreeReply(0, (items,))


def test_registered_through_the_plugin_host() -> None:
    component = load_plugins().registry.create("anti_entropy", "full-exchange")
    assert isinstance(component, FullExchangeAntiEntropy)
    assert isinstance(component.new_digest(), FlatDigest)


QUIET = {
    "store": {
        "n": 3,
        "r": 2,
        "w": 2,
        "sloppy_quorum": False,
        "anti_entropy_interval": 3600.0,
    },
    "anti_entropy": "full-exchange",
}


def test_a_cluster_repairs_with_full_exchange() -> None:
    """A replica that missed writes is repaired through the depth-0 exchange."""

    async def scenario() -> None:
        async with await Cluster.start(4, QUIET, transport="simulated", seed=5) as cluster:
            assert isinstance(cluster.node("n3").anti_entropy, FullExchangeAntiEntropy)
            for i in range(10):
                await cluster.put(f"before{i}", i)
            await cluster.settle()
            await cluster.stop_node("n3")
            written = [f"k{i}" for i in range(40)]
            for key in written:
                await cluster.put(key, key, via=next(n for n in cluster.replicas(key) if n != "n3"))
            await cluster.restart_node("n3")
            await cluster.settle()
            missed = [k for k in written if "n3" in cluster.replicas(k)]
            assert missed
            report = await cluster.node("n3").repair_all()
            assert report.keys_repaired == len(missed)
            for key in missed:
                assert [v.value for v in cluster.node("n3").store.read(key.encode())]
            for partition in cluster.node("n3").my_partitions():
                owners = cluster.node("n3").placement(partition).replicas
                roots = {cluster.node(o).store.digest(partition).root() for o in owners}
                assert len(roots) == 1
            again = await cluster.node("n3").repair_all()
            assert again.keys_repaired == 0
            # In sync, a flat digest also costs one round trip per peer: the roots.
            assert again.round_trips == 2 * again.partitions

    run_virtual(scenario())
