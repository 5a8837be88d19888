"""Stored records: compression, and verification against the object id.

A record is what a backend stores for one object: its kind, the codec of its
payload (raw, or zstd when that saves enough), the length of the body it
decodes to, and the payload. Every decode decompresses and re-hashes the
body and compares it with the id it was stored under, so a damaged record
is reported, never returned as data.

A zstd payload is the frame followed by the CRC-32 of the frame (4 bytes,
little-endian), checked before decompressing. The hash of the body alone
cannot see every damaged bit of a frame: zstd ignores some of them (an
unused bit of the frame header, Huffman weights of symbols a block never
uses, ...), so such a flip decompresses to the same body. A raw payload is
the body itself, which the hash covers bit for bit.

In an encrypted repository a backend stores a record sealed
(``store/sealer.py``, codec byte ``CODEC_SEALED`` in a pack) and hands the
opened record to its reader; ``decode_record`` then hashes with the
repository's keyed id function instead of ``objects.object_id``.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable
from typing import Final, NamedTuple

import zstandard

from zerofs.errors import DamagedObjectError
from zerofs.objects import Kind, ObjectId, object_id

CODEC_RAW: Final = 0
CODEC_ZSTD: Final = 1
CODECS: Final = frozenset({CODEC_RAW, CODEC_ZSTD})
CODEC_SEALED: Final = 0x80
"""The codec byte of a sealed blob's header in a pack: the real codec is inside the sealed bytes."""
MIN_COMPRESS_BYTES: Final = 64
"""Bodies shorter than this are stored raw: a zstd frame costs more than it saves."""
MIN_SAVING: Final = 0.03
"""Compression must save at least 3% or the body is stored raw."""

_FRAME_CHECK: Final = struct.Struct("<I")
"""The CRC-32 of a zstd frame, after it in the payload."""

_local = threading.local()


class Record(NamedTuple):
    """One object as a backend stores it."""

    kind: Kind
    codec: int
    raw_bytes: int
    """Length of the body the payload decodes to."""
    payload: bytes | bytearray | memoryview

    @property
    def stored_bytes(self) -> int:
        """Length of the payload as stored."""
        return len(self.payload)


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


def encode_record(kind: Kind, body: bytes | bytearray | memoryview, level: int) -> Record:
    """Return the record that stores ``body``: compressed when that pays, else the body itself."""
    size = len(body)
    if size >= MIN_COMPRESS_BYTES and (kind is not Kind.CHUNK or _looks_compressible(body)):
        frame = _compressor(level).compress(body)
        if len(frame) + _FRAME_CHECK.size < size * (1 - MIN_SAVING):
            return Record(kind, CODEC_ZSTD, size, zstd_payload(frame))
    return Record(kind, CODEC_RAW, size, body)


def zstd_payload(frame: bytes | bytearray | memoryview) -> bytes:
    """The payload that stores a zstd ``frame``: the frame, then its CRC-32."""
    return bytes(frame) + _FRAME_CHECK.pack(zlib.crc32(frame))


_SAMPLE_BYTES: Final = 2048
_SAMPLE_FROM_BYTES: Final = 32 * 1024


def _looks_compressible(body: bytes | bytearray | memoryview) -> bool:
    """Guess from three small samples whether compressing a chunk can pay.

    Incompressible data (media, archives, encrypted files) is common and
    zstd spends real time finding that out on a whole chunk; three 2 KiB
    samples cost a few percent of that.
    """
    if len(body) < _SAMPLE_FROM_BYTES:
        return True
    view = memoryview(body)
    middle = len(body) // 2
    sample = b"".join((view[:_SAMPLE_BYTES], view[middle : middle + _SAMPLE_BYTES], view[-_SAMPLE_BYTES:]))
    return len(_compressor(1).compress(sample)) < len(sample) * (1 - MIN_SAVING)


def decode_record(
    expected_id: ObjectId,
    record: Record,
    id_function: Callable[[Kind, bytes], ObjectId] = object_id,
) -> bytes:
    """Return the body of a record after checking it hashes to ``expected_id``.

    ``id_function``: how ids are made (keyed in an encrypted repository).

    Raises:
        DamagedObjectError: unknown codec, a zstd frame that fails its
            checksum or does not decompress, a body of another length than
            recorded, or a body whose hash is not ``expected_id``.
    """
    hex_id = expected_id.hex()[:16]
    if record.codec == CODEC_RAW:
        body = bytes(record.payload)
    elif record.codec == CODEC_ZSTD:
        frame = memoryview(record.payload)[: -_FRAME_CHECK.size]
        check = bytes(record.payload[-_FRAME_CHECK.size :])
        if len(check) != _FRAME_CHECK.size or _FRAME_CHECK.pack(zlib.crc32(frame)) != check:
            raise DamagedObjectError(f"object {hex_id} does not match its checksum: damaged on disk")
        try:
            body = _decompressor().decompress(frame, max_output_size=record.raw_bytes)
        except zstandard.ZstdError as exc:
            raise DamagedObjectError(f"object {hex_id} cannot be decompressed: damaged on disk ({exc})") from exc
    else:
        raise DamagedObjectError(f"object {hex_id} has an unknown codec {record.codec}: damaged on disk")
    if len(body) != record.raw_bytes or id_function(record.kind, body) != expected_id:
        raise DamagedObjectError(f"object {hex_id} does not match its hash: damaged on disk")
    return body
