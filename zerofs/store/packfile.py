"""The pack file format: blobs appended one after another, then a trailer.

A pack is immutable once closed. It is self-describing, so the index can
always be rebuilt from the packs alone::

    pack    = PACK_HEADER blob* [trailer]
    blob    = BLOB_HEADER payload
    trailer = offset* TAIL

``PACK_HEADER`` (16 bytes): magic ``ZFPK``, format version, flags (bit 0:
an encrypted pack), the key check id (8 bytes, zero in a plain pack; see
``store/sealer.py``), 2 reserved bytes.

``BLOB_HEADER`` (42 bytes): the object id (32), its kind, its codec (low
four bits: raw or zstd; the high bit, ``CODEC_SEALED``, marks a sealed
payload), the payload's stored length and the body's raw length (u32 each,
little-endian). A sealed blob's header keeps only the id and the stored
length: its kind byte is 0, its codec ``CODEC_SEALED`` and its raw length
0; kind, codec and raw length are inside the sealed payload
(``Sealer.seal_record``), and an encrypted pack holds sealed blobs only.
The payload follows (a zstd payload ends with the CRC-32 of its frame:
``codec``). Nothing checksums a header by itself: the payload
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

An encrypted pack's trailer is ``sealed(offset* | count u32 | data_end u32)
| SEALED_TAIL`` (``data_end`` u32 and the magic ``ZFPE``), sealed to the
pack's name, so it is authentic and a trailer or pack copied under another
name fails (``Sealer.open_trailer``). It hides little: the plain blob
headers still let anyone walk the blobs, as a reader of a pack without a
trailer must.

The blobs of an encrypted pack are not in the order they were stored in
(issue #15): a writer holds sealed blobs back and appends them in a random
order (``shuffled``), a run at a time (a local pack: runs of at most
``local.SHUFFLE_BYTES``, or up to the end of the pack or of a batch; an S3
pack, built in memory: the whole pack), so neighbours in a pack are not
neighbours in a file. Readers never depend on the order: the index and the
trailer give offsets.

Functions that take a ``sealer`` read and write the encrypted form with
it, and the plain form when it is None.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, NamedTuple, TypeVar

import blake3

from zerofs.errors import DamagedObjectError
from zerofs.objects import ID_BYTES, Kind, ObjectId
from zerofs.store.codec import CODEC_SEALED, CODECS, Record

if TYPE_CHECKING:  # a plain repository never imports the crypto behind it
    from zerofs.store.sealer import Sealer

PACK_MAGIC: Final = b"ZFPK"
TAIL_MAGIC: Final = b"ZFPT"
PACK_FORMAT_VERSION: Final = 1
PACK_HEADER: Final = struct.Struct("<4sBB8s2x")
FLAG_ENCRYPTED: Final = 1
SEALED_KIND: Final = 0
"""The kind byte of a sealed blob's header: none (the kind is inside the sealed payload)."""
SEALED_TAIL: Final = struct.Struct("<I4s")
SEALED_TAIL_MAGIC: Final = b"ZFPE"
_SEALED_COUNTS: Final = struct.Struct("<II")
BLOB_HEADER: Final = struct.Struct("<32sBBII")
TAIL: Final = struct.Struct("<II16s4s")
OFFSET: Final = struct.Struct("<I")
MAX_PACK_BYTES: Final = (1 << 32) - 1
"""Offsets are u32: a pack is rotated long before this."""
CODEC_MASK: Final = 0x0F
_SHUFFLE_KEY_BYTES: Final = 8
T = TypeVar("T")


class BlobHeader(NamedTuple):
    """What a blob header says."""

    object_id: ObjectId
    kind: Kind
    codec: int
    stored_bytes: int
    raw_bytes: int


def pack_header(key_check: bytes | None = None) -> bytes:
    """The first bytes of every pack: of an encrypted one when ``key_check`` is given."""
    if key_check is None:
        return PACK_HEADER.pack(PACK_MAGIC, PACK_FORMAT_VERSION, 0, bytes(8))
    return PACK_HEADER.pack(PACK_MAGIC, PACK_FORMAT_VERSION, FLAG_ENCRYPTED, key_check)


def is_pack_header(data: bytes) -> bool:
    """True if ``data`` starts with a plain pack header this version reads."""
    return pack_header_problem(data, None) is None


def pack_header_problem(data: bytes, key_check: bytes | None) -> str | None:
    """What is wrong with ``data`` as the start of a pack of this repository, or None.

    ``key_check``: the repository is encrypted, and its packs carry this key check id.
    """
    if len(data) < PACK_HEADER.size:
        return "its first bytes are not a pack header"
    magic, version, flags, found_check = PACK_HEADER.unpack_from(data)
    if magic != PACK_MAGIC or version != PACK_FORMAT_VERSION or flags & ~FLAG_ENCRYPTED:
        return "its first bytes are not a pack header"
    if key_check is None:
        return "it is an encrypted pack, and this repository is not encrypted" if flags else None
    if not flags:
        return "it is a plain pack, and this repository is encrypted"
    if found_check != key_check:
        return "it was sealed with another key (a pack of another repository)"
    return None


def blob_header(object_id: ObjectId, record: Record) -> bytes:
    """The header written before a record's payload."""
    return BLOB_HEADER.pack(object_id, record.kind, record.codec, len(record.payload), record.raw_bytes)


def stored_blob(
    object_id: ObjectId, record: Record, sealer: Sealer | None
) -> tuple[bytes, bytes | bytearray | memoryview]:
    """The header and payload a pack stores for a record: as it is, or sealed."""
    if sealer is None:
        return blob_header(object_id, record), record.payload
    # CODEC_SEALED: sealed ahead for this id already (``Repository.chunk_record``)
    sealed = record.payload if record.codec == CODEC_SEALED else sealer.seal_record(object_id, record)
    return BLOB_HEADER.pack(object_id, SEALED_KIND, CODEC_SEALED, len(sealed), 0), sealed


def parse_sealed_blob_header(data: bytes | memoryview, offset: int = 0) -> tuple[ObjectId, int] | None:
    """(id, stored length) from a sealed blob's header, or None if it cannot be one."""
    if len(data) - offset < BLOB_HEADER.size:
        return None
    object_id, kind, codec, stored, raw = BLOB_HEADER.unpack_from(data, offset)
    if (kind, codec, raw) != (SEALED_KIND, CODEC_SEALED, 0):
        return None
    return bytes(object_id), stored


def open_blob(
    sealer: Sealer, data: bytes | memoryview, offset: int, end: int, kind: Kind | None = None
) -> ScannedBlob | None:
    """The sealed blob whose header is at ``offset`` (ending by ``end``), opened; None if its header is not one.

    The header of the result has the kind, codec and raw length from inside
    the seal and the stored (sealed) length from the pack.

    Raises:
        AuthenticationError: the payload does not open (as ``kind``, or as any kind when None).
        DamagedObjectError: it opens to something that is not a record.
    """
    view = memoryview(data)
    parsed = parse_sealed_blob_header(view, offset)
    if parsed is None:
        return None
    object_id, stored = parsed
    payload_start = offset + BLOB_HEADER.size
    if payload_start + stored > end:
        return None
    record = sealer.open_record(object_id, view[payload_start : payload_start + stored], kind)
    return ScannedBlob(offset, BlobHeader(object_id, record.kind, record.codec, stored, record.raw_bytes), record)


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


def pack_trailer(offsets: list[int], data_end: int, pack_name: bytes, sealer: Sealer | None) -> bytes:
    """The trailer of pack ``pack_name``: plain, or sealed to its name."""
    if sealer is None:
        return trailer(offsets, data_end)
    body = b"".join(OFFSET.pack(o) for o in offsets) + _SEALED_COUNTS.pack(len(offsets), data_end)
    return sealer.seal_trailer(pack_name, body) + SEALED_TAIL.pack(data_end, SEALED_TAIL_MAGIC)


def tail_bytes(sealer: Sealer | None) -> int:
    """Length of the fixed tail that ends a pack's trailer."""
    return TAIL.size if sealer is None else SEALED_TAIL.size


def trailer_start(tail: bytes, file_bytes: int, sealer: Sealer | None) -> int | None:
    """Where the trailer starts, from a pack's last ``tail_bytes`` bytes, or None if they are not a tail."""
    if sealer is None:
        parsed = parse_tail(tail, file_bytes)
        return None if parsed is None else parsed[1]
    if len(tail) != SEALED_TAIL.size:
        return None
    data_end, magic = SEALED_TAIL.unpack(tail)
    if magic != SEALED_TAIL_MAGIC or not PACK_HEADER.size <= data_end < file_bytes - SEALED_TAIL.size:
        return None
    return int(data_end)


def read_trailer(
    body_and_tail: bytes | memoryview, file_bytes: int, pack_name: bytes, sealer: Sealer | None
) -> Trailer | None:
    """Check and decode a pack's trailer (plain or sealed), or None if it is not a valid one.

    Raises:
        AuthenticationError: a sealed trailer that does not open (damaged, or another pack's).
    """
    if sealer is None:
        return parse_trailer(bytes(body_and_tail), file_bytes)
    view = memoryview(body_and_tail)
    data_end = trailer_start(bytes(view[-SEALED_TAIL.size :]), file_bytes, sealer)
    if data_end is None or file_bytes - data_end != len(view):
        return None
    body = sealer.open_trailer(pack_name, view[: -SEALED_TAIL.size])
    if len(body) < _SEALED_COUNTS.size or (len(body) - _SEALED_COUNTS.size) % OFFSET.size:
        return None
    count, sealed_end = _SEALED_COUNTS.unpack_from(body, len(body) - _SEALED_COUNTS.size)
    if sealed_end != data_end or count * OFFSET.size != len(body) - _SEALED_COUNTS.size:
        return None
    offsets = tuple(o for (o,) in OFFSET.iter_unpack(body[: -_SEALED_COUNTS.size]))
    return Trailer(offsets, data_end) if _in_order(offsets, data_end) else None


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
    return Trailer(offsets, data_end) if _in_order(offsets, data_end) else None


def _in_order(offsets: tuple[int, ...], data_end: int) -> bool:
    """True if blob headers at ``offsets`` are laid end to end, in order, inside the data."""
    previous = PACK_HEADER.size
    for offset in offsets:
        if offset < previous or offset + BLOB_HEADER.size > data_end:
            return False
        previous = offset + BLOB_HEADER.size
    return True


class ScannedBlob(NamedTuple):
    """One blob met when reading a pack from its start."""

    offset: int
    header: BlobHeader
    record: Record


def scan_blobs(
    data: bytes | memoryview, start: int = PACK_HEADER.size, end: int | None = None, sealer: Sealer | None = None
) -> Iterator[ScannedBlob]:
    """Yield the blobs laid end to end in ``data`` from ``start``, stopping at the first that cannot be one.

    Only the headers' shape is checked here (kind, codec, lengths within
    the data); the caller verifies each record against its id. With a
    ``sealer``, each blob is opened, and the first that does not open ends
    the walk too.
    """
    view = memoryview(data)
    stop = len(view) if end is None else end
    if sealer is not None:
        yield from _scan_sealed(sealer, view, start, stop)
        return
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


def _scan_sealed(sealer: Sealer, view: memoryview, offset: int, stop: int) -> Iterator[ScannedBlob]:
    while offset + BLOB_HEADER.size <= stop:
        try:
            blob = open_blob(sealer, view, offset, stop)
        except DamagedObjectError:  # AuthenticationError is one: a torn or damaged blob ends the walk
            return
        if blob is None:
            return
        yield blob
        offset = blob_end(offset, blob.header.stored_bytes)


def shuffled(items: list[T]) -> list[T]:
    """``items`` in a random order: sorted by a random 64-bit key each (one ``os.urandom`` call for them all).

    Not ``random.shuffle``: the order of an encrypted pack's blobs must not
    be predictable from earlier packs, and the Mersenne Twister's can be.
    """
    keys = os.urandom(_SHUFFLE_KEY_BYTES * len(items))
    order = sorted(range(len(items)), key=lambda i: keys[_SHUFFLE_KEY_BYTES * i : _SHUFFLE_KEY_BYTES * (i + 1)])
    return [items[i] for i in order]


def blob_end(offset: int, stored_bytes: int) -> int:
    """Where the blob whose header is at ``offset`` ends."""
    return offset + BLOB_HEADER.size + stored_bytes


assert ID_BYTES == 32  # the header's id field
