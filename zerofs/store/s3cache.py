"""The host cache of an S3 repository, and the index objects it is filled from.

Every pack a writer uploads is followed by its *index objects*
(``index/TTTTTTTTTTTT-RRRRRRRR.meta.idx`` for its nodes, symlinks and special
files, ``....data.idx`` for its chunks): what it added, one entry per blob
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
DONE_SUFFIX: Final = ".done"
"""The suffix of a finished gc's marker (``s3gc.py``), kept in ``loaded`` once the cache reflects it."""


class IndexEntry(NamedTuple):
    """Where one blob is: its pack's name and its location inside it."""

    object_id: ObjectId
    pack_name: bytes
    offset: int
    stored_bytes: int
    raw_bytes: int
    kind: Kind


META_SUFFIX: Final = ".meta.idx"
"""Index objects of nodes, symlinks and special files: what browsing needs."""
DATA_SUFFIX: Final = ".data.idx"
"""Index objects of chunks: what reading and deduplicating file contents need."""


def index_key(suffix: str, now_ns: int | None = None) -> str:
    """A new index object's key: milliseconds since the epoch (12 hex digits), 8 random ones, then ``suffix``."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    return f"{INDEX_PREFIX}/{millis:012x}-{secrets.token_hex(4)}{suffix}"


def is_data_key(key: str) -> bool:
    """True for an index object of chunks only (one without a suffix, from before the split, holds both)."""
    return key.endswith(DATA_SUFFIX)


def index_objects(entries: Iterable[IndexEntry], limit: int = 1 << 62) -> list[tuple[str, list[IndexEntry]]]:
    """New keys for ``entries``, split into index objects of chunks and of the rest, at most ``limit`` each.

    Apart, so that a host with an empty cache can browse after loading the
    index of the metadata only: its size grows with the number of files and
    directories, not with the bytes in them. Chunks first: published in this
    order, no node is ever indexed before the chunks it references.
    """
    meta = [entry for entry in entries if entry.kind is not Kind.CHUNK]
    data = [entry for entry in entries if entry.kind is Kind.CHUNK]
    return [
        (index_key(suffix), part[start : start + limit])
        for suffix, part in ((DATA_SUFFIX, data), (META_SUFFIX, meta))
        for start in range(0, len(part), limit)
    ]


def encode_index(entries: Iterable[IndexEntry]) -> bytes:
    """The bytes of an index object."""
    body = b"".join(
        INDEX_ENTRY.pack(e.object_id, e.pack_name, e.offset, e.stored_bytes, e.raw_bytes, e.kind)
        for e in sorted(entries)
    )
    return seal(INDEX_MAGIC, body)


def seal(magic: bytes, body: bytes) -> bytes:
    """``body`` compressed, after ``magic`` and the BLAKE3 of the compressed bytes (index objects, gc plans)."""
    frame = zstandard.ZstdCompressor(level=3).compress(body)
    return magic + blake3.blake3(frame).digest() + frame


def unseal(magic: bytes, data: bytes, what: str) -> bytes:
    """The body ``seal`` made.

    Raises:
        CorruptionError: another magic, a checksum that fails, or a frame that does not decompress.
    """
    start = len(magic) + 32
    frame = data[start:]
    if not data.startswith(magic) or blake3.blake3(frame).digest() != data[len(magic) : start]:
        raise CorruptionError(f"{what} is damaged (it fails its checksum)")
    try:
        return zstandard.ZstdDecompressor().decompress(frame)
    except zstandard.ZstdError as exc:
        raise CorruptionError(f"{what} is damaged ({exc})") from exc


def decode_index(data: bytes, where: str) -> list[IndexEntry]:
    """The entries of an index object.

    Raises:
        CorruptionError: it fails its checksum or does not decode.
    """
    body = unseal(INDEX_MAGIC, data, f"index object {where}")
    try:
        rows = INDEX_ENTRY.iter_unpack(body)
        entries = [IndexEntry(bytes(i), bytes(p), o, s, r, Kind(k)) for i, p, o, s, r, k in rows]
    except (struct.error, ValueError) as exc:
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
        with self.index.writing() as txn:
            self._add(txn, key, entries)

    def _add(self, txn: lmdb.Transaction[bytes], key: str | None, entries: Iterable[IndexEntry]) -> None:
        index = self.index
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

    def replace_index(self, objects: dict[str, list[IndexEntry]], finished_gcs: Iterable[str]) -> None:
        """Forget every placed blob and loaded index object, then load ``objects`` (key -> entries), at once.

        After a gc deleted packs: entries the cache kept from index objects the
        gc superseded would place blobs in packs that are gone. Records stay
        (they are checked against their ids, and read only while placed).
        ``finished_gcs``: the done markers of the gcs this index reflects (``finished_gcs``).
        Pack numbers are never reused, so a number another process looked up
        before the swap names no pack after it, never another pack.
        """
        index = self.index
        with index.writing() as txn:
            for database in (index.blobs, index.packs, self.pack_names, self.loaded):
                txn.drop(database, delete=False)
            for key, entries in objects.items():
                self._add(txn, key, entries)
            for key in finished_gcs:
                txn.put(key.encode(), b"1", db=self.loaded)

    def finished_gcs(self) -> set[str]:
        """The done markers (``gc/plans/*.done``) of the gcs whose result this cache has loaded."""
        return {key for key in self.loaded_keys() if key.endswith(DONE_SUFFIX)}

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
