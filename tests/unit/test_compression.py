"""The ``compressed`` wrapper engine: codecs, threshold, headers and accounting."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit.registry import ComponentRegistry
from dynamo_toolkit_plugins.storage.compressed import (
    CODECS,
    HEADERS,
    CompressedStorage,
    dtk_register_components,
)
from dynamo_toolkit_plugins.storage.memory import MemoryStorage

#: A compressible record: JSON-like text, 1.7 KB.
TEXT = json.dumps(
    [{"id": i, "name": f"user-{i}", "tags": ["a", "b"], "active": True} for i in range(30)]
).encode()


@pytest.mark.parametrize("codec", CODECS)
@given(record=st.binary(max_size=2000), threshold=st.sampled_from([0, 1, 64, 256]))
def test_roundtrip_any_record(codec: str, record: bytes, threshold: int) -> None:
    """Whatever the codec and threshold, get returns the record put."""
    engine = CompressedStorage("n", codec=codec, threshold=threshold)
    engine.put(b"k", 5, record)
    assert engine.get(b"k") == record
    assert list(engine.scan(0, 10)) == [(b"k", 5, record)]


@pytest.mark.parametrize("codec", ["snappy", "lz4", "zstd"])
def test_threshold_decides_what_is_compressed(codec: str) -> None:
    """Records below the threshold are stored raw (header 0); at or above it, compressed."""
    inner = MemoryStorage()
    engine = CompressedStorage("n", inner=inner, codec=codec, threshold=len(TEXT))
    engine.put(b"small", 1, TEXT[:-1])
    engine.put(b"large", 2, TEXT)
    small, large = inner.get(b"small"), inner.get(b"large")
    assert small is not None
    assert large is not None
    assert small == b"\x00" + TEXT[:-1]
    assert large[0] == HEADERS[codec]
    assert len(large) < len(TEXT) / 2
    assert (engine.raw_records, engine.compressed_records) == (1, 1)
    assert engine.get(b"small") == TEXT[:-1]
    assert engine.get(b"large") == TEXT


def test_incompressible_records_are_stored_raw() -> None:
    """A record the codec would not shrink costs one header byte, not more."""
    inner = MemoryStorage()
    engine = CompressedStorage("n", inner=inner, codec="zstd", threshold=0)
    noise = random.Random(1).randbytes(4096)
    engine.put(b"k", 1, noise)
    assert inner.get(b"k") == b"\x00" + noise
    assert engine.raw_records == 1
    assert engine.bytes_stored == len(noise) + 1


def test_none_codec_stores_everything_raw() -> None:
    """Codec ``none`` only adds the header."""
    inner = MemoryStorage()
    engine = CompressedStorage("n", inner=inner, codec="none", threshold=0)
    engine.put(b"k", 1, TEXT)
    assert inner.get(b"k") == b"\x00" + TEXT
    assert engine.ratio == (len(TEXT) + 1) / len(TEXT)


def test_codec_switch_reads_old_records() -> None:
    """Records written under every codec stay readable by an engine using any other."""
    inner = MemoryStorage()
    for i, codec in enumerate(CODECS):
        CompressedStorage("n", inner=inner, codec=codec, threshold=0).put(
            codec.encode(), i, TEXT + codec.encode()
        )
    assert sorted({stored[0] for _, _, stored in inner.scan(0, 2**64)}) == sorted(HEADERS.values())
    for reader_codec in CODECS:
        reader = CompressedStorage("n", inner=inner, codec=reader_codec)
        for codec in CODECS:
            assert reader.get(codec.encode()) == TEXT + codec.encode()
        assert [record for _, _, record in reader.scan(0, 2**64)] == [
            TEXT + codec.encode() for codec in CODECS
        ]


def test_ratio_accounting() -> None:
    """bytes_in / bytes_stored / ratio / record counters follow every put, headers included."""
    inner = MemoryStorage()
    engine = CompressedStorage("n", inner=inner, codec="zstd", threshold=100)
    assert engine.ratio == 1.0
    assert (engine.bytes_in, engine.bytes_stored) == (0, 0)
    engine.put(b"a", 1, TEXT)
    engine.put(b"b", 2, b"tiny")
    engine.put(b"a", 3, TEXT)  # an overwrite counts again: counters follow puts
    stored = sum(len(inner.get(k) or b"") for k in (b"a", b"b")) + len(inner.get(b"a") or b"")
    assert engine.bytes_in == 2 * len(TEXT) + 4
    assert engine.bytes_stored == stored
    assert engine.ratio == pytest.approx(stored / (2 * len(TEXT) + 4))
    assert engine.ratio < 0.3
    assert (engine.compressed_records, engine.raw_records) == (2, 1)
    engine.delete(b"a")
    assert engine.bytes_in == 2 * len(TEXT) + 4  # deletes do not rewind the counters


def test_unknown_codec_lists_the_available_ones() -> None:
    """A typo names the codecs that exist."""
    with pytest.raises(ConfigurationError) as info:
        CompressedStorage("n", codec="zstandard")
    message = str(info.value)
    assert "'zstandard'" in message
    for codec in CODECS:
        assert codec in message


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": -1},
        {"threshold": "256"},
        {"codec": "snappy", "level": 3},
        {"codec": "zstd", "level": "high"},
        {"inner": 42},
        {"inner": {"codec": "zstd"}},
        {"inner": "sqlitedict"},  # no registry to build it
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    """Bad parameters fail at construction, with a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        CompressedStorage("n", **params)  # type: ignore[arg-type]


def test_levels() -> None:
    """zstd and lz4 accept a level; a higher zstd level does not compress worse here."""
    sizes = {}
    for level in (1, 19):
        engine = CompressedStorage("n", codec="zstd", threshold=0, level=level)
        engine.put(b"k", 1, TEXT * 4)
        assert engine.get(b"k") == TEXT * 4
        sizes[level] = engine.bytes_stored
    assert sizes[19] <= sizes[1]
    engine = CompressedStorage("n", codec="lz4", threshold=0, level=9)
    engine.put(b"k", 1, TEXT)
    assert engine.get(b"k") == TEXT


@pytest.mark.parametrize("stored", [b"", b"\x09abc", b"\x03not zstd at all"])
def test_corrupt_records_raise_value_error(stored: bytes) -> None:
    """An empty record, an unknown header or a broken body are reported, not returned."""
    inner = MemoryStorage()
    inner.put(b"k", 1, stored)
    with pytest.raises(ValueError, match="corrupt"):
        CompressedStorage("n", inner=inner).get(b"k")


def test_registered_and_built_through_the_registry() -> None:
    """The plugin registers ``compressed``; the registry hands itself over to build ``inner``."""
    registry = ComponentRegistry()
    registry.add_storage_engine("memory", MemoryStorage)
    dtk_register_components(registry)
    engine = registry.create(
        "storage_engine", "compressed", node_id="n", inner={"name": "memory"}, codec="lz4"
    )
    assert isinstance(engine, CompressedStorage)
    assert isinstance(engine.inner, MemoryStorage)
    assert engine.inner.node_id == "n"
    with pytest.raises(ConfigurationError, match="available"):
        registry.create("storage_engine", "compressed", node_id="n", inner="nope")
