"""store/codec.py: compress when it pays, verify every record against its id."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from zerofs.errors import CorruptionError, DamagedObjectError
from zerofs.objects import Kind, SymlinkNode, chunk_id, encode, object_id
from zerofs.store.codec import CODEC_RAW, CODEC_ZSTD, MIN_COMPRESS_BYTES, Record, decode_record, encode_record

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
    assert record.codec == codec
    assert record.kind is Kind.CHUNK
    assert record.raw_bytes == len(data)
    if codec == CODEC_ZSTD:
        assert len(record.payload) < len(data) // 2
    else:
        assert bytes(record.payload) == data
    assert decode_record(chunk_id(data), record) == data


def test_node_record_round_trip() -> None:
    body = encode(SymlinkNode(b"target" * 50))
    node_id = object_id(Kind.SYMLINK, body)
    assert decode_record(node_id, encode_record(Kind.SYMLINK, body, 3)) == body


def _with_payload(record: Record, payload: bytes) -> Record:
    return Record(record.kind, record.codec, record.raw_bytes, payload)


@pytest.mark.parametrize("data", [COMPRESSIBLE, RANDOM, b"short body"])
def test_any_flipped_byte_is_detected(data: bytes) -> None:
    record = encode_record(Kind.CHUNK, data, 3)
    payload = bytes(record.payload)
    for position in sorted({0, 1, len(payload) // 2, len(payload) - 1}):
        damaged = bytearray(payload)
        damaged[position] ^= 0x01
        with pytest.raises(DamagedObjectError):
            decode_record(chunk_id(data), _with_payload(record, bytes(damaged)))


@pytest.mark.parametrize("data", [COMPRESSIBLE, RANDOM])
def test_truncated_record_is_detected(data: bytes) -> None:
    record = encode_record(Kind.CHUNK, data, 3)
    payload = bytes(record.payload)
    for length in (0, 1, 2, len(payload) // 2, len(payload) - 1):
        with pytest.raises(DamagedObjectError):
            decode_record(chunk_id(data), _with_payload(record, payload[:length]))


def test_wrong_raw_length_is_detected() -> None:
    record = encode_record(Kind.CHUNK, COMPRESSIBLE, 3)
    with pytest.raises(DamagedObjectError):
        decode_record(chunk_id(COMPRESSIBLE), record._replace(raw_bytes=record.raw_bytes - 1))


def test_unknown_codec() -> None:
    record = encode_record(Kind.CHUNK, RANDOM, 3)._replace(codec=7)
    with pytest.raises(DamagedObjectError, match="codec"):
        decode_record(chunk_id(RANDOM), record)


def test_record_under_the_wrong_id() -> None:
    record = encode_record(Kind.CHUNK, b"one", 3)
    with pytest.raises(CorruptionError, match="hash"):
        decode_record(chunk_id(b"two"), record)


def test_kind_is_part_of_the_check() -> None:
    # The same bytes stored with another kind do not verify under the chunk id.
    record = encode_record(Kind.CHUNK, RANDOM, 3)._replace(kind=Kind.SYMLINK)
    with pytest.raises(DamagedObjectError):
        decode_record(chunk_id(RANDOM), record)


@pytest.mark.parametrize("level", [1, 3, 19])
def test_levels_round_trip(level: int) -> None:
    record = encode_record(Kind.CHUNK, COMPRESSIBLE, level)
    assert decode_record(chunk_id(COMPRESSIBLE), record) == COMPRESSIBLE


def test_every_flipped_bit_of_a_zstd_payload_is_detected() -> None:
    # zstd ignores some bits of a frame (an unused header bit, weights of symbols a block never
    # uses): without the frame's CRC such a flip decompresses to the same body and passes the hash.
    source = Path(__file__).read_bytes()[:3000]
    record = encode_record(Kind.CHUNK, source, 3)
    assert record.codec == CODEC_ZSTD
    good = bytes(record.payload)
    missed = []
    for offset in range(len(good)):
        for bit in range(8):
            damaged = bytearray(good)
            damaged[offset] ^= 1 << bit
            with contextlib.suppress(DamagedObjectError):
                decode_record(chunk_id(source), record._replace(payload=bytes(damaged)))
                missed.append((offset, bit))
    assert missed == []
