"""Group commit: writes wait for the flush that covers them, and share it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from dynamo_toolkit._group_commit import GroupCommit
from dynamo_toolkit.in_process_cluster import Cluster


async def test_writes_of_one_turn_share_one_flush_and_later_ones_get_the_next() -> None:
    flushed: list[int] = []
    commits = GroupCommit(lambda: flushed.append(len(flushed)))
    first = [commits.after_flush() for _ in range(5)]
    assert len({id(future) for future in first}) == 1  # one flush for the lot
    assert not first[0].done()  # nobody is acknowledged before it runs
    await asyncio.gather(*first)
    assert flushed == [0]
    await commits.after_flush()
    assert flushed == [0, 1]
    assert (commits.flushes, commits.writes) == (2, 6)


async def test_a_failed_flush_fails_every_write_waiting_for_it() -> None:
    def broken() -> None:
        raise OSError("disk full")

    commits = GroupCommit(broken)
    waiting = [commits.after_flush(), commits.after_flush()]
    for future in waiting:
        with pytest.raises(OSError, match="disk full"):
            await future


async def test_a_node_acknowledges_a_buffered_write_after_its_flush(tmp_path: Path) -> None:
    config = {
        "store": {"n": 1, "r": 1, "w": 1},
        "storage_engine": {"name": "sqlite", "durability": "group"},
    }
    data_dir = tmp_path
    async with await Cluster.start(1, config, data_dir=data_dir) as cluster:
        node = cluster.node("n1")
        await asyncio.gather(*(cluster.put(f"k{i}", i) for i in range(20)))
        # Acknowledged: committed, as another connection (a restarted process) sees.
        [database] = data_dir.rglob("n1.sqlite3")
        with sqlite3.connect(database) as reader:
            (count,) = reader.execute("SELECT COUNT(*) FROM records").fetchone()
        assert count == 20
        commits = node.group_commit
        assert commits is not None
        assert commits.writes == 20
        assert commits.flushes < 20  # shared
