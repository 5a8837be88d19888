"""store/codec.py: compress when it pays, verify every record against its id."""

from __future__ import annotations

import os

import pytest

from zerofs.errors import CorruptionError
from zerofs.objects import Kind, SymlinkNode, chunk_id, encode, object_id
from zerofs.store.codec import (
    CODEC_RAW,
    CODEC_ZSTD,
    MIN_COMPRESS_BYTES,
    decode_record,
    encode_record,
    record_kind,
)

COMPRESSIBLE = b"zerofs " * 10_000
RANDOM = os.urandom(64 * 1024)


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (COMPRESSIBLE, CODEC_ZSTD),
        (RANDOM, CODEC_RAW),
        (b"", CODEC_RAW),
        (b"a" * (MIN_COMPRESS_BYTES - 1), CODEC_RAW),
        (b"a" * 4096, CODEC_ZSTD),
    ],
)
def test_compress_or_raw(data: bytes, codec: int) -> None:
    record = encode_record(Kind.CHUNK, data, 3)
    assert record[0] == codec
    assert record[1] == Kind.CHUNK
    if codec == CODEC_ZSTD:
        assert len(record) < len(data) // 2
    else:
        assert record[2:] == data
    assert decode_record(chunk_id(data), record) == (Kind.CHUNK, data)
    assert record_kind(record) is Kind.CHUNK


def test_node_record_round_trip() -> None:
    body = encode(SymlinkNode(b"target" * 50))
    node_id = object_id(Kind.SYMLINK, body)
    assert decode_record(node_id, encode_record(Kind.SYMLINK, body, 3)) == (Kind.SYMLINK, body)


@pytest.mark.parametrize("data", [COMPRESSIBLE, RANDOM, b"short body"])
def test_any_flipped_byte_is_detected(data: bytes) -> None:
    record = encode_record(Kind.CHUNK, data, 3)
    object_id_ = chunk_id(data)
    positions = sorted({0, 1, 2, len(record) // 2, len(record) - 1})
    for position in positions:
        damaged = bytearray(record)
        damaged[position] ^= 0x01
        with pytest.raises(CorruptionError):
            decode_record(object_id_, bytes(damaged))


@pytest.mark.parametrize("data", [COMPRESSIBLE, RANDOM])
def test_truncated_record_is_detected(data: bytes) -> None:
    record = encode_record(Kind.CHUNK, data, 3)
    for length in (0, 1, 2, 3, len(record) // 2, len(record) - 1):
        with pytest.raises(CorruptionError):
            decode_record(chunk_id(data), record[:length])


def test_unknown_codec() -> None:
    record = bytearray(encode_record(Kind.CHUNK, RANDOM, 3))
    record[0] = 7
    with pytest.raises(CorruptionError, match="codec"):
        decode_record(chunk_id(RANDOM), bytes(record))


def test_unknown_kind() -> None:
    record = bytearray(encode_record(Kind.CHUNK, RANDOM, 3))
    record[1] = 200
    with pytest.raises(CorruptionError, match="kind"):
        decode_record(chunk_id(RANDOM), bytes(record))
    assert record_kind(bytes(record)) is None


def test_record_under_the_wrong_id() -> None:
    record = encode_record(Kind.CHUNK, b"one", 3)
    with pytest.raises(CorruptionError, match="hash"):
        decode_record(chunk_id(b"two"), record)


def test_kind_is_part_of_the_check() -> None:
    # The same bytes stored with another kind byte do not verify under the chunk id.
    record = bytearray(encode_record(Kind.CHUNK, RANDOM, 3))
    record[1] = Kind.SYMLINK
    with pytest.raises(CorruptionError):
        decode_record(chunk_id(RANDOM), bytes(record))


@pytest.mark.parametrize("level", [1, 3, 19])
def test_levels_round_trip(level: int) -> None:
    record = encode_record(Kind.CHUNK, COMPRESSIBLE, level)
    assert decode_record(chunk_id(COMPRESSIBLE), record)[1] == COMPRESSIBLE
