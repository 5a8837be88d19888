"""Stored records: compression and verification against the object id.

A record is ``[codec byte][kind byte][payload]``; the payload is the object
body, raw or zstd-compressed (whichever is smaller by a useful margin). Every
decode re-hashes the body and compares it with the id it was stored under,
so a damaged record is reported, never returned as data.
"""

from __future__ import annotations

import threading
from typing import Final

import zstandard

from zerofs.errors import CorruptionError
from zerofs.objects import Kind, ObjectId, object_id

CODEC_RAW: Final = 0
CODEC_ZSTD: Final = 1
MIN_COMPRESS_BYTES: Final = 64
"""Bodies shorter than this are stored raw: a zstd frame costs more than it saves."""
MIN_SAVING: Final = 0.03
"""Compression must save at least 3% or the body is stored raw."""

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # zstd contexts are not thread-safe; one per thread and level.
    compressors: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("compressors", {})
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = _local.__dict__.get("decompressor")
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def encode_record(kind: Kind, body: bytes, level: int) -> bytes:
    """Return the record that stores ``body``: compressed when that pays."""
    if len(body) >= MIN_COMPRESS_BYTES:
        packed = _compressor(level).compress(body)
        if len(packed) < len(body) * (1 - MIN_SAVING):
            return bytes((CODEC_ZSTD, kind)) + packed
    return bytes((CODEC_RAW, kind)) + body


RECORD_HEADER_BYTES: Final = 2
_SAMPLE_BYTES: Final = 2048
_SAMPLE_FROM_BYTES: Final = 32 * 1024


def _looks_compressible(body: memoryview, level: int) -> bool:
    """Guess from three small samples whether compressing ``body`` can pay.

    Incompressible data (media, archives, encrypted files) is common and
    zstd spends real time finding that out on a whole chunk; three 2 KiB
    samples cost a few percent of that.
    """
    if len(body) < _SAMPLE_FROM_BYTES:
        return True
    middle = len(body) // 2
    sample = b"".join((body[:_SAMPLE_BYTES], body[middle : middle + _SAMPLE_BYTES], body[-_SAMPLE_BYTES:]))
    return len(_compressor(1).compress(sample)) < len(sample) * (1 - MIN_SAVING)


def finish_chunk_record(buffer: bytearray, level: int) -> bytes | bytearray:
    """Turn a buffer of ``RECORD_HEADER_BYTES`` spare bytes and a chunk into its record.

    Stored raw, the buffer itself becomes the record: no copy of the chunk.
    """
    body = memoryview(buffer)[RECORD_HEADER_BYTES:]
    if len(body) >= MIN_COMPRESS_BYTES and _looks_compressible(body, level):
        packed = _compressor(level).compress(body)
        if len(packed) < len(body) * (1 - MIN_SAVING):
            return bytes((CODEC_ZSTD, Kind.CHUNK)) + packed
    buffer[0], buffer[1] = CODEC_RAW, Kind.CHUNK
    return buffer


def decode_record(expected_id: ObjectId, record: bytes) -> tuple[Kind, bytes]:
    """Return (kind, body) of a record after checking it hashes to ``expected_id``.

    Raises:
        CorruptionError: unknown codec or kind, undecompressible payload, or
            a body whose hash is not ``expected_id``.
    """
    hex_id = expected_id.hex()
    if len(record) < 2:
        raise CorruptionError(f"object {hex_id[:16]} is truncated")
    codec = record[0]
    try:
        kind = Kind(record[1])
    except ValueError:
        raise CorruptionError(f"object {hex_id[:16]} has an unknown kind {record[1]}") from None
    if codec == CODEC_RAW:
        body = record[2:]
    elif codec == CODEC_ZSTD:
        try:
            body = _decompressor().decompress(memoryview(record)[2:])
        except zstandard.ZstdError as exc:
            raise CorruptionError(f"object {hex_id[:16]} cannot be decompressed: {exc}") from exc
    else:
        raise CorruptionError(f"object {hex_id[:16]} has an unknown codec {codec}")
    if object_id(kind, body) != expected_id:
        raise CorruptionError(f"object {hex_id[:16]} does not match its hash: damaged on disk")
    return kind, body


def record_kind(record: bytes) -> Kind | None:
    """Return the kind byte of a record without decoding it, or None if unknown."""
    try:
        return Kind(record[1])
    except (ValueError, IndexError):
        return None
