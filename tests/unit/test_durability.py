"""Crash tests for the durable engines: a writer process is SIGKILLed mid-loop.

The child writes records in order and prints a line each time a ``put``
(``sync`` mode) or a ``flush`` (``group`` mode) has returned; the parent
waits for enough lines (no sleeps), kills the child with SIGKILL, reads what
it printed before dying, reopens the store and checks that everything
acknowledged is there, intact, and that the store is consistent.

SIGKILL is a process crash: it shows the engines commit what they
acknowledge and recover cleanly, not what an OS crash or power loss would
keep (that depends on the fsyncs, which a process kill cannot observe).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dynamo_toolkit_plugins.storage.lmdb_engine import LmdbStorage
from dynamo_toolkit_plugins.storage.rocksdb_engine import RocksdbStorage
from dynamo_toolkit_plugins.storage.sqlite_engine import SqliteStorage

ENGINES: dict[str, type[SqliteStorage] | type[LmdbStorage] | type[RocksdbStorage]] = {
    "sqlite": SqliteStorage,
    "lmdb": LmdbStorage,
    "rocksdb": RocksdbStorage,
}

# Reopened after the crash with an exact count, so len() is checked too (rocksdb
# then recounts: the killed writer never closed it cleanly).
EXACT: dict[str, dict[str, Any]] = {"sqlite": {}, "lmdb": {}, "rocksdb": {"count": "exact"}}

SYNC_ACKS = 300  # kill after this many acknowledged puts
GROUP_FLUSHES = 4  # kill after this many flushes...
FLUSH_EVERY = 50  # ...of this many puts each

# argv: module, class, data_dir, durability. Writes up to a million records,
# far more than it gets to write before the parent kills it.
CHILD = f"""
import importlib, sys
module, name, data_dir, durability = sys.argv[1:5]
engine = getattr(importlib.import_module(module), name)(
    node_id="n1", data_dir=data_dir, durability=durability
)
print("open", flush=True)
for i in range(1_000_000):
    engine.put(b"key-%07d" % i, i * 7919, b"record-%07d-" % i * 8)
    if durability == "sync":
        print("put", i, flush=True)
    elif i % {FLUSH_EVERY} == {FLUSH_EVERY - 1}:
        engine.flush()
        print("flushed", i, flush=True)
"""


def _key(i: int) -> bytes:
    return b"key-%07d" % i


def _record(i: int) -> bytes:
    return b"record-%07d-" % i * 8


def _run_and_kill(name: str, data_dir: Path, durability: str, lines_wanted: int) -> list[str]:
    """Start the writer, SIGKILL it after ``lines_wanted`` progress lines; all lines it printed."""
    engine = ENGINES[name]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            engine.__module__,
            engine.__name__,
            str(data_dir),
            durability,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    lines: list[str] = []
    try:
        while len(lines) < lines_wanted + 1:  # + the "open" line
            line = child.stdout.readline()
            if not line:
                child.wait()
                pytest.fail(f"writer ended early ({child.returncode}): {child.stderr.read()}")
            lines.append(line.strip())
        child.send_signal(signal.SIGKILL)
        lines.extend(line.strip() for line in child.stdout.read().splitlines())
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL  # killed mid-loop, not finished
    assert lines[0] == "open"
    return lines[1:]


def _check_recovered(name: str, data_dir: Path, durability: str, acknowledged: int) -> None:
    """Reopen: records 0..acknowledged-1 are intact, the rest is a consistent prefix."""
    engine = ENGINES[name](node_id="n1", data_dir=data_dir, durability=durability, **EXACT[name])
    try:
        rows = list(engine.scan(0, 2**64))
        # Writes are sequential and each is atomic: what survived is a prefix, without holes.
        assert [key for key, _, _ in rows] == [_key(i) for i in range(len(rows))]
        assert rows == [(_key(i), i * 7919, _record(i)) for i in range(len(rows))]
        assert len(rows) >= acknowledged, f"acknowledged {acknowledged}, recovered {len(rows)}"
        assert len(engine) == len(rows)
        for i in range(acknowledged):
            assert engine.get(_key(i)) == _record(i)
        # The store takes writes again after recovery.
        engine.put(b"after-crash", 1, b"ok")
        engine.flush()
    finally:
        engine.close()
    if name == "sqlite":
        with sqlite3.connect(data_dir / "n1.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    engine = ENGINES[name](node_id="n1", data_dir=data_dir, durability=durability, **EXACT[name])
    try:
        assert engine.get(b"after-crash") == b"ok"
        assert len(engine) == len(rows) + 1
    finally:
        engine.close()
    if durability == "sync":
        # At most the put in progress when the child died is there unacknowledged.
        assert len(rows) <= acknowledged + 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(ENGINES))
def test_sync_puts_that_returned_survive_sigkill(name: str, tmp_path: Path) -> None:
    lines = _run_and_kill(name, tmp_path, "sync", SYNC_ACKS)
    assert lines == [f"put {i}" for i in range(len(lines))]
    _check_recovered(name, tmp_path, "sync", acknowledged=len(lines))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(ENGINES))
def test_group_flushed_puts_survive_sigkill(name: str, tmp_path: Path) -> None:
    lines = _run_and_kill(name, tmp_path, "group", GROUP_FLUSHES)
    flushed = [int(line.split()[1]) for line in lines]
    assert flushed == [FLUSH_EVERY * (n + 1) - 1 for n in range(len(flushed))]
    _check_recovered(name, tmp_path, "group", acknowledged=flushed[-1] + 1)
