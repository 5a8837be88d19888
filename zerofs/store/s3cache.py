"""The host cache of an S3 repository, and the index objects it is filled from.

Every batch that makes blobs durable publishes one *index object*
(``index/TTTTTTTTTTTT-RRRRRRRR.idx``): what it added, one entry per blob
(id, pack name, offset of the blob header, stored and raw length, kind),
zstd-compressed, after a magic and the BLAKE3 of the compressed body. The
union of every index object is the repository's index; nothing else names
where a blob is.

Each host keeps what it has learnt of that index in an LMDB environment
(``s3-cache.mdb`` in ``CACHE_DIR/REPO_ID/``), reusing the local index's
layout: ``blobs`` (id -> location) and ``packs`` (number -> name) as in
``index.py``, and three databases of its own:

- ``loaded``: the keys of the index objects already loaded;
- ``pack-names``: pack name -> number (the reverse of ``packs``);
- ``records``: small records (nodes, commits, small chunks) by id, so that
  reading cached metadata makes no request.

It is only a cache: deleting it loses nothing (the next command lists
``index/`` and loads every index object again), and it is written without
``fsync``; an entry a crash damaged is at worst one whose pack header or
hash does not check, which is reported, never returned.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

import blake3
import lmdb
import zstandard

from zerofs.errors import CorruptionError
from zerofs.objects import Kind, ObjectId
from zerofs.store.codec import Record
from zerofs.store.index import PACK_ENTRY, PACK_KEY, LmdbIndex, Location, encode_location, index_damaged

CACHE_FILE: Final = "s3-cache.mdb"
INDEX_PREFIX: Final = "index"
INDEX_MAGIC: Final = b"ZFIX\x01"
INDEX_ENTRY: Final = struct.Struct("<32s16sIIIB")
"""id, pack name, offset of the blob header, stored bytes, raw bytes, kind."""
RECORD_HEAD: Final = struct.Struct("<BBI")
"""kind, codec, raw bytes: before the payload of a cached record."""
SMALL_RECORD_BYTES: Final = 64 << 10
"""Records up to this long (stored) are kept in the cache after a read."""
_EXTRA: Final = (b"loaded", b"pack-names", b"records")


class IndexEntry(NamedTuple):
    """Where one blob is: its pack's name and its location inside it."""

    object_id: ObjectId
    pack_name: bytes
    offset: int
    stored_bytes: int
    raw_bytes: int
    kind: Kind


def index_key(now_ns: int | None = None) -> str:
    """A new index object's key: milliseconds since the epoch (12 hex digits), then 8 random ones."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    return f"{INDEX_PREFIX}/{millis:012x}-{secrets.token_hex(4)}.idx"


def encode_index(entries: Iterable[IndexEntry]) -> bytes:
    """The bytes of an index object."""
    body = b"".join(
        INDEX_ENTRY.pack(e.object_id, e.pack_name, e.offset, e.stored_bytes, e.raw_bytes, e.kind)
        for e in sorted(entries)
    )
    frame = zstandard.ZstdCompressor(level=3).compress(body)
    return INDEX_MAGIC + blake3.blake3(frame).digest() + frame


def decode_index(data: bytes, where: str) -> list[IndexEntry]:
    """The entries of an index object.

    Raises:
        CorruptionError: it fails its checksum or does not decode.
    """
    start = len(INDEX_MAGIC) + 32
    frame = data[start:]
    if not data.startswith(INDEX_MAGIC) or blake3.blake3(frame).digest() != data[len(INDEX_MAGIC) : start]:
        raise CorruptionError(f"index object {where} is damaged (it fails its checksum)")
    try:
        body = zstandard.ZstdDecompressor().decompress(frame)
        rows = INDEX_ENTRY.iter_unpack(body)
        entries = [IndexEntry(bytes(i), bytes(p), o, s, r, Kind(k)) for i, p, o, s, r, k in rows]
    except (zstandard.ZstdError, struct.error, ValueError) as exc:
        raise CorruptionError(f"index object {where} is damaged ({exc})") from exc
    return entries


class HostCache:
    """This host's LMDB cache of one S3 repository."""

    def __init__(self, directory: str) -> None:
        """Open (or make) the cache in ``directory``; one that cannot be opened is thrown away and made again."""
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        try:
            self.index = self._open()
        except CorruptionError:
            for name in (CACHE_FILE, CACHE_FILE + "-lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(directory, name))
            self.index = self._open()
        self.loaded, self.pack_names, self.records = (self.index.extra[name] for name in _EXTRA)

    def _open(self) -> LmdbIndex:
        return LmdbIndex(self.directory, create=True, file_name=CACHE_FILE, extra_databases=_EXTRA, sync=False)

    def close(self) -> None:
        """Close the environment."""
        self.index.close()

    def locate(self, object_id: ObjectId) -> Location | None:
        """Where the cache places a blob, or None."""
        return self.index.locate(object_id)

    def snapshot(self) -> CacheSnapshot:
        """Membership tests over one read transaction (``CacheSnapshot``)."""
        return CacheSnapshot(self)

    def pack_name(self, pack_no: int) -> bytes | None:
        """The name of a pack by its number in this cache."""
        raw = self.index.get(self.index.packs, PACK_KEY.pack(pack_no))
        return None if raw is None else PACK_ENTRY.unpack(raw)[0]

    def packs(self) -> dict[int, bytes]:
        """Every pack the cache knows: number -> name."""
        return {entry.pack_no: entry.name for entry in self.index.pack_entries().values()}

    def loaded_keys(self) -> set[str]:
        """The index objects already loaded."""
        with self.index.reading() as txn:
            return {bytes(key).decode() for key, _ in txn.cursor(db=self.loaded)}

    def record(self, object_id: ObjectId) -> Record | None:
        """A small record kept here, or None."""
        raw = self.index.get(self.records, object_id)
        if raw is None or len(raw) < RECORD_HEAD.size:
            return None
        kind, codec, raw_bytes = RECORD_HEAD.unpack_from(raw)
        try:
            return Record(Kind(kind), codec, raw_bytes, memoryview(raw)[RECORD_HEAD.size :])
        except ValueError:
            return None  # a damaged entry: read the pack instead

    def keep_records(self, records: dict[ObjectId, Record]) -> None:
        """Keep small records (a full disk is ignored: it is only a cache)."""
        with contextlib.suppress(lmdb.Error, OSError), self.index.writing() as txn:
            for object_id, record in records.items():
                head = RECORD_HEAD.pack(record.kind, record.codec, record.raw_bytes)
                txn.put(object_id, head + bytes(record.payload), db=self.records)

    def add(self, key: str | None, entries: Iterable[IndexEntry]) -> None:
        """Place the blobs of one index object (``key``: mark it loaded), in one transaction.

        A blob the cache places already keeps its place: every copy is a valid one.
        """
        index = self.index
        with index.writing() as txn:
            numbers: dict[bytes, int] = {}
            for entry in entries:
                pack_no = numbers.get(entry.pack_name)
                if pack_no is None:
                    raw = txn.get(entry.pack_name, db=self.pack_names)
                    if raw is None:
                        pack_no = index.new_pack_no(txn, entry.pack_name)
                        txn.put(entry.pack_name, PACK_KEY.pack(pack_no), db=self.pack_names)
                    else:
                        (pack_no,) = PACK_KEY.unpack(raw)
                    numbers[entry.pack_name] = pack_no
                location = Location(pack_no, entry.offset, entry.stored_bytes, entry.raw_bytes, entry.kind)
                txn.put(entry.object_id, encode_location(location), db=index.blobs, overwrite=False)
            if key is not None:
                txn.put(key.encode(), b"1", db=self.loaded)

    def iter_locations(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, Location]]:
        """Every placed blob starting with ``prefix``, in id order."""
        return self.index.iter_locations(prefix)

    def used_bytes(self) -> int:
        """Bytes of the cache file in use."""
        return self.index.used_bytes()


class CacheSnapshot:
    """Tests of whether the cache places a blob, over one read transaction taken at the first test.

    A transaction per test cost more than the test: besides its own work,
    beginning and ending one lets go of the GIL twice, and an importer's
    walking thread then waits for its workers to give it back. A snapshot
    misses what is added after it was taken (``renew`` takes a new one): at
    worst a blob is encoded or written again, a dead copy, never lost. One
    thread at a time.
    """

    def __init__(self, cache: HostCache) -> None:
        self._index = cache.index
        self._txn: lmdb.Transaction[bytes] | None = None

    def places(self, object_id: ObjectId) -> bool:
        """True if the cache placed ``object_id`` when the snapshot was taken."""
        index = self._index
        try:
            if self._txn is None:
                self._txn = index.env.begin(db=index.blobs)
            return self._txn.get(object_id) is not None
        except lmdb.Error as exc:
            raise index_damaged(str(exc), index.root) from exc

    def renew(self) -> None:
        """Let the next test see what was added since (ends the transaction)."""
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.abort()
