"""The pack file format: blobs appended one after another, then a trailer.

A pack is immutable once closed. It is self-describing, so the index can
always be rebuilt from the packs alone::

    pack    = PACK_HEADER blob* [trailer]
    blob    = BLOB_HEADER payload
    trailer = offset* TAIL

``PACK_HEADER`` (16 bytes): magic ``ZFPK``, format version, flags (bit 0
reserved for encrypted packs), 10 reserved bytes (for a key id).

``BLOB_HEADER`` (42 bytes): the object id (32), its kind, its codec (low
four bits: raw or zstd; the high bit is reserved for a sealed, encrypted
payload), the payload's stored length and the body's raw length (u32 each,
little-endian). The payload follows (a zstd payload ends with the CRC-32 of
its frame: ``codec``). Nothing checksums a header by itself: the payload
decodes and hashes to the id only if the header is intact, so verifying a
blob verifies its header too.

The trailer lists the offset of every blob header (u32 each) and ends with
``TAIL`` (28 bytes): the number of blobs, the offset where the trailer
starts, a BLAKE3-128 checksum of the offsets and those two numbers, and the
magic ``ZFPT``. A pack without a valid trailer is one whose writer died
before closing it: its blobs are found by reading headers from the start,
and the first header that does not verify ends it (a torn tail).

Ids are not repeated in the trailer: a repository of many tiny files would
pay 32 bytes more per object for a copy that the headers already hold.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, NamedTuple

import blake3

from zerofs.objects import ID_BYTES, Kind, ObjectId
from zerofs.store.codec import CODECS, Record

PACK_MAGIC: Final = b"ZFPK"
TAIL_MAGIC: Final = b"ZFPT"
PACK_FORMAT_VERSION: Final = 1
PACK_HEADER: Final = struct.Struct("<4sBB10x")
BLOB_HEADER: Final = struct.Struct("<32sBBII")
TAIL: Final = struct.Struct("<II16s4s")
OFFSET: Final = struct.Struct("<I")
MAX_PACK_BYTES: Final = (1 << 32) - 1
"""Offsets are u32: a pack is rotated long before this."""
CODEC_MASK: Final = 0x0F


class BlobHeader(NamedTuple):
    """What a blob header says."""

    object_id: ObjectId
    kind: Kind
    codec: int
    stored_bytes: int
    raw_bytes: int


def pack_header() -> bytes:
    """The first bytes of every pack."""
    return PACK_HEADER.pack(PACK_MAGIC, PACK_FORMAT_VERSION, 0)


def is_pack_header(data: bytes) -> bool:
    """True if ``data`` starts with a pack header this version reads."""
    if len(data) < PACK_HEADER.size:
        return False
    magic, version, flags = PACK_HEADER.unpack_from(data)
    return bool(magic == PACK_MAGIC and version == PACK_FORMAT_VERSION and flags == 0)


def blob_header(object_id: ObjectId, record: Record) -> bytes:
    """The header written before a record's payload."""
    return BLOB_HEADER.pack(object_id, record.kind, record.codec, len(record.payload), record.raw_bytes)


def parse_blob_header(data: bytes | memoryview, offset: int = 0) -> BlobHeader | None:
    """Decode a blob header, or None if it cannot be one (unknown kind or codec)."""
    if len(data) - offset < BLOB_HEADER.size:
        return None
    object_id, kind, codec, stored, raw = BLOB_HEADER.unpack_from(data, offset)
    if codec & CODEC_MASK not in CODECS or codec & ~CODEC_MASK or kind not in _KINDS:
        return None
    return BlobHeader(bytes(object_id), Kind(kind), codec, stored, raw)


_KINDS: Final = frozenset(int(k) for k in Kind)


def trailer(offsets: list[int], data_end: int) -> bytes:
    """The trailer that closes a pack whose blobs start at ``offsets`` and end at ``data_end``."""
    body = b"".join(OFFSET.pack(o) for o in offsets)
    return body + TAIL.pack(len(offsets), data_end, _trailer_checksum(body, len(offsets), data_end), TAIL_MAGIC)


def _trailer_checksum(body: bytes, count: int, data_end: int) -> bytes:
    hasher = blake3.blake3(body)
    hasher.update(struct.pack("<II", count, data_end))
    return hasher.digest(16)


class Trailer(NamedTuple):
    """A valid trailer: where the blobs start and where they end."""

    offsets: tuple[int, ...]
    data_end: int


def parse_tail(tail: bytes, file_bytes: int) -> tuple[int, int] | None:
    """(count, data_end) from the last ``TAIL.size`` bytes of a pack, or None if they are not a tail."""
    if len(tail) != TAIL.size:
        return None
    count, data_end, _, magic = TAIL.unpack(tail)
    if magic != TAIL_MAGIC or data_end + count * OFFSET.size + TAIL.size != file_bytes:
        return None
    return count, data_end


def parse_trailer(body_and_tail: bytes, file_bytes: int) -> Trailer | None:
    """Check and decode a trailer (its offsets and tail), or None if it is not a valid one."""
    parsed = parse_tail(body_and_tail[-TAIL.size :], file_bytes)
    if parsed is None:
        return None
    count, data_end = parsed
    body = body_and_tail[: -TAIL.size]
    if len(body) != count * OFFSET.size:
        return None
    _, _, checksum, _ = TAIL.unpack(body_and_tail[-TAIL.size :])
    if _trailer_checksum(body, count, data_end) != checksum:
        return None
    offsets = tuple(o for (o,) in OFFSET.iter_unpack(body))
    previous = PACK_HEADER.size
    for offset in offsets:  # blobs are laid end to end, in order, inside the data
        if offset < previous or offset + BLOB_HEADER.size > data_end:
            return None
        previous = offset + BLOB_HEADER.size
    return Trailer(offsets, data_end)


class ScannedBlob(NamedTuple):
    """One blob met when reading a pack from its start."""

    offset: int
    header: BlobHeader
    record: Record


def scan_blobs(
    data: bytes | memoryview, start: int = PACK_HEADER.size, end: int | None = None
) -> Iterator[ScannedBlob]:
    """Yield the blobs laid end to end in ``data`` from ``start``, stopping at the first that cannot be one.

    Only the headers' shape is checked here (kind, codec, lengths within
    the data); the caller verifies each record against its id.
    """
    view = memoryview(data)
    stop = len(view) if end is None else end
    offset = start
    while offset + BLOB_HEADER.size <= stop:
        header = parse_blob_header(view, offset)
        if header is None:
            return
        payload_start = offset + BLOB_HEADER.size
        payload_end = payload_start + header.stored_bytes
        if payload_end > stop:
            return
        record = Record(header.kind, header.codec, header.raw_bytes, view[payload_start:payload_end])
        yield ScannedBlob(offset, header, record)
        offset = payload_end


def blob_end(offset: int, stored_bytes: int) -> int:
    """Where the blob whose header is at ``offset`` ends."""
    return offset + BLOB_HEADER.size + stored_bytes


assert ID_BYTES == 32  # the header's id field
