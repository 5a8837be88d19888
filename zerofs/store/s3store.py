"""The S3 backend: the pack repository in a bucket, shared by many hosts, with a cache on each.

Layout under ``s3://BUCKET/PREFIX/``::

    config                       the repository's config (created once, with its checksum)
    packs/H/NAME.pack            immutable packs, the local pack format byte for byte (H: first hex digit)
    index/MS-RAND.meta.idx       what one pack holds: id -> (pack, offset, lengths, kind) (s3cache.py),
    index/MS-RAND.data.idx         for its nodes (meta) and its chunks (data) apart
    refs/NAME                    a ref: one 128-byte checksummed record (reflog.py), moved by If-Match
    reflog/NAME/GENERATION       the same record, one object per move, created before the ref moves

Writing a batch: blobs are appended to a pack built in memory (the pack
format of ``packfile.py``, byte for byte); a full pack (``PACK_TARGET_BYTES``) is uploaded with
``If-None-Match: *`` in the background while the next fills, at most
``UPLOADS_IN_FLIGHT`` at once. Each uploaded pack is followed by one index
object naming its blobs (so an interrupted import run again uploads only
the packs that were in flight); the batch's end waits for its uploads and
their index objects, and only then moves refs: objects always before the
refs that name them.

Moving ref NAME from generation G (ETag E) to G+1: create
``reflog/NAME/G+1`` (only one writer can), then replace ``refs/NAME`` if its
ETag is still E. A create that fails means another writer moved first:
``RefMovedError``, which the history layer answers by rebasing or merging
its change. A writer that died between the two requests leaves the log one
generation ahead of the ref; the next writer completes that move with the
log's own bytes (the same bytes the dead writer would have written, so two
writers completing it agree) before it tries again. Each record carries a
nonce: the first ``TAG_BYTES`` of the repository's id, then random bytes, so
racing writers never write identical bytes, and a host that kept the config
of ``s3://BUCKET/PREFIX`` finds out from the ref it reads anyway that a new
repository replaced the one it knew.

An encrypted repository's store is given a ``Sealer`` (``store/sealer.py``):
its packs are encrypted packs (sealed blobs, the key check in the header, a
trailer sealed to the pack's name: ``packfile.py``), read blobs are opened
as the kind the index gives, index objects and gc plans are sealed to their
object key, and ref records to the ref's name and move number (the number
in the clear before them): a pack, index object or log record copied or
replayed under another name fails to open, and reads as damaged. The host
cache stays plain: it is this host's own disk, holding what this host
opened to serve its reads; the bucket is what the threat model is about.

Reads: a blob is located in the host cache (``s3cache.py``); one missing
there makes the store list ``index/`` and load the index objects it has not
loaded yet. Small records are kept in the cache after their first read, so
browsing cached metadata makes no request beyond reading the ref. Every
read is checked as local reads are: the blob header against the index, the
payload against its id (in the repository).
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import blake3

from zerofs.errors import CorruptionError, DamagedObjectError, MissingObjectError, ObjectStoreError, RepositoryError
from zerofs.objects import ID_BYTES, Commit, Kind, ObjectId, decode, iter_child_ids
from zerofs.objects import object_id as plain_object_id
from zerofs.store.base import BlobInfo, RefMovedError, RefMoves, add_move, moved_to
from zerofs.store.codec import Record
from zerofs.store.codec import decode_record as decode_body
from zerofs.store.index import Location
from zerofs.store.local import PACK_TARGET_BYTES, blob_record, decode_config_file, encode_config_file
from zerofs.store.objects_s3 import ObjectStore
from zerofs.store.packfile import (
    BLOB_HEADER,
    blob_header,
    pack_header,
    pack_trailer,
    scan_blobs,
    shuffled,
    stored_blob,
)
from zerofs.store.packs import NAME_BYTES, pack_hex
from zerofs.store.reflog import NONCE_BYTES, RefMove, decode_record, encode_record, record_nonce
from zerofs.store.results import (
    ReclaimResult,
    ScannedRecord,
    StorageProblem,
    StorageProblemKind,
    StorageUsage,
)
from zerofs.store.s3cache import (
    INDEX_PREFIX,
    SMALL_RECORD_BYTES,
    CacheSnapshot,
    HostCache,
    IndexEntry,
    decode_index,
    encode_index,
    index_objects,
    is_data_key,
)
from zerofs.store.s3gc import DEFAULT_GRACE_S, GcDeletedError, GcWatch, clock

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from zerofs.store.base import WriteBatch
    from zerofs.store.sealer import IdFunction, Sealer

CONFIG_KEY: Final = "config"
PACKS_PREFIX: Final = "packs"
REFS_PREFIX: Final = "refs"
REFLOG_PREFIX: Final = "reflog"
LOCATIONS_DIR: Final = "s3-locations"
"""In the user's cache directory: the config of each repository URL this host opened."""
UPLOADS_IN_FLIGHT: Final = 2
"""Packs uploading at once while the next fills: a batch holds at most 3 packs in memory."""
INDEX_LOADS_IN_FLIGHT: Final = 8
RELISTS: Final = 5
"""Listings of ``index/`` in one refresh while index objects vanish between listing and fetching (a gc)."""
SLOW_REF_SECONDS: Final = 5.0
"""How long a read of a ref other than HEAD is kept (``get_ref``)."""
TAG_BYTES: Final = 6
"""Bytes of the repository id at the start of every ref record's nonce."""
KEEP_RECORDS: Final = 512
"""Small records read are written to the cache in groups of this many (and at close)."""
SEALED_REF_SEQUENCE: Final = struct.Struct(">Q")
"""The move number before a sealed ref record: the associated data it is opened with."""


class UnsupportedOnS3Error(RepositoryError):
    """An operation this version does not do on an S3 repository yet."""


class UnknownPackError(CorruptionError):
    """The host cache placed a blob in a pack number it no longer knows (it was rebuilt meanwhile)."""


class ReplacedRepositoryError(RepositoryError):
    """A ref names another repository than the config this host kept for the URL."""


def pack_key(name: bytes) -> str:
    """Where pack ``name`` lives in the bucket."""
    text = pack_hex(name)
    return f"{PACKS_PREFIX}/{text[0]}/{text}.pack"


def read_config(objects: ObjectStore, url: str) -> bytes | None:
    """The repository's config from the bucket; None if there is none.

    Raises:
        CorruptionError: it fails its checksum.
    """
    found = objects.get(CONFIG_KEY)
    if found is None:
        return None
    config = decode_config_file(found.data)
    if config is None:
        raise CorruptionError(f"the config object of the repository at {url} is damaged")
    return config


def create_config(objects: ObjectStore, config: bytes) -> bool:
    """Create the config object; False if the bucket prefix has one already."""
    return objects.create(CONFIG_KEY, encode_config_file(config)) is not None


class S3Store:
    """A Store over a bucket prefix, with this host's cache in ``cache_dir``."""

    def __init__(
        self,
        objects: ObjectStore,
        url: str,
        cache_dir: str,
        repo_tag: bytes,
        *,
        readonly: bool = False,
        read_ahead: dict[bytes, RefRecord | None] | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        sealer: Sealer | None = None,
    ) -> None:
        """Use the repository at ``url`` through ``objects``; the cache lives in ``cache_dir`` (made if missing).

        ``repo_tag``: the first ``TAG_BYTES`` of the repository's id, which its refs carry.
        ``read_ahead``: refs just read (``read_ref``); the first ``get_ref`` of each takes that value.
        ``grace_s``: the repository's gc grace period (``s3gc.py``). A handle
        that may write looks at the gc plans at once (one request): what it
        reads from then on is what the repository holds after every gc that
        finished (the cache is rebuilt if one it does not reflect finished).
        ``sealer``: an encrypted repository's keys (None: a plain one).
        """
        self.objects = objects
        self.sealer = sealer
        self.id_function: IdFunction = plain_object_id if sealer is None else sealer.id_function
        """How a body read is hashed to be checked against its id (keyed in an encrypted repository)."""
        self.repo_tag = repo_tag
        self._read_ahead = dict(read_ahead or {})
        self._read_ahead_at = clock()
        self._slow_refs: dict[bytes, tuple[float, RefRecord | None]] = {}
        self.url = url
        self.root = url
        self.readonly = readonly
        self.cache = HostCache(cache_dir)
        self._has_refreshed = False
        self.damaged_index: dict[str, str] = {}
        """Index objects that failed their checksum in a refresh, and why (``check_storage`` reports them)."""
        self._refresh_lock = threading.Lock()
        self._to_keep: dict[ObjectId, Record] = {}
        self._keep_lock = threading.Lock()
        self._pending: dict[ObjectId, tuple[_NewPack, int, BlobInfo]] = {}
        self._closed = False
        self.gc = GcWatch(objects, self.cache, url, grace_s, sealer)
        self.copied: set[ObjectId] = set()
        """Doomed blobs (``gc.doomed``) this process stored a copy of: present again for it."""
        if not readonly:
            self.look_for_gc()

    # -- reads --------------------------------------------------------------------

    def get(self, object_id: ObjectId) -> Record | None:
        """The record stored under ``object_id``, from the cache or a ranged read of its pack, or None."""
        pending = self._pending.get(object_id)
        if pending is not None:
            pack, offset, info = pending
            data = pack.read(self, object_id, offset, info.stored_bytes)
            return blob_record(object_id, data, info, pack_hex(pack.name), self.sealer)
        with self._keep_lock:
            record = self._to_keep.get(object_id)
        if record is None:
            record = self._cached_record(object_id)
        if record is not None:
            return record
        location = self._locate(object_id)
        if location is None:
            return None
        try:
            record = self._read_placed(object_id, location)
        except (MissingObjectError, UnknownPackError):  # a gc moved it (this cache does not know yet) or deleted it
            self.look_for_gc()
            self.refresh()
            location = self.cache.locate(object_id)
            if location is None:
                return None
            record = self._read_placed(object_id, location)
        if location.stored_bytes <= SMALL_RECORD_BYTES:
            self._keep(object_id, record)
        return record

    def _read_placed(self, object_id: ObjectId, location: Location) -> Record:
        """Read a blob where the cache places it (one ranged GET), its header checked.

        Raises:
            MissingObjectError: its pack is not in the bucket.
            UnknownPackError: the cache was rebuilt since it was placed.
        """
        name = self._pack_name(location.pack_no)
        data = self.objects.get_range(pack_key(name), location.offset, BLOB_HEADER.size + location.stored_bytes)
        info = BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)
        return blob_record(object_id, data, info, pack_hex(name), self.sealer)

    def _cached_record(self, object_id: ObjectId) -> Record | None:
        """A record from the host cache, if it verifies and the blob is still placed.

        A damaged cache entry is read again from the bucket; a record of a
        blob a gc deleted is not read at all (nothing may build on it).
        """
        record = self.cache.record(object_id)
        if record is None or self.cache.locate(object_id) is None:
            return None
        try:
            decode_body(object_id, record, self.id_function)
        except DamagedObjectError:
            return None
        return record

    def _keep(self, object_id: ObjectId, record: Record) -> None:
        """Keep a small record read (export reads from several threads)."""
        with self._keep_lock:
            self._to_keep[object_id] = Record(record.kind, record.codec, record.raw_bytes, bytes(record.payload))
            if len(self._to_keep) < KEEP_RECORDS:
                return
            kept, self._to_keep = self._to_keep, {}
        self.cache.keep_records(kept)

    def _write_kept(self) -> None:
        with self._keep_lock:
            kept, self._to_keep = self._to_keep, {}
        if kept:
            self.cache.keep_records(kept)

    def _pack_name(self, pack_no: int) -> bytes:
        name = self.cache.pack_name(pack_no)
        if name is None:
            raise UnknownPackError(f"the host cache of {self.url} names pack number {pack_no}, which it does not know")
        return name

    def _locate(self, object_id: ObjectId, *, refresh: bool = True) -> Location | None:
        """Where the cache places a blob; on a miss, load the new index objects of metadata, then of chunks.

        Metadata first: browsing with an empty cache then loads the index of
        the files and directories only, whatever the bytes in them.
        """
        location = self.cache.locate(object_id)
        if location is None and refresh:
            self.refresh(meta_only=True)
            location = self.cache.locate(object_id)
            if location is None:
                self.refresh()
                location = self.cache.locate(object_id)
        return location

    def refresh(self, *, meta_only: bool = False) -> int:
        """List ``index/`` and load the index objects this cache has not loaded (``meta_only``: not those of chunks).

        Returns how many were loaded.
        """
        with self._refresh_lock:
            self._has_refreshed = self._has_refreshed or not meta_only
            fetched = self._fetch_listed(self.cache.loaded_keys(), meta_only=meta_only)
            for key, entries in fetched.items():
                self.cache.add(key, entries)
            return len(fetched)

    def _fetch_listed(self, loaded: set[str], *, meta_only: bool = False) -> dict[str, list[IndexEntry]]:
        """List ``index/`` and fetch what is not in ``loaded``; list again while some vanished in between.

        Only a gc deletes index objects, and it creates the objects that
        supersede them first: a second listing finds those.
        """
        fetched: dict[str, list[IndexEntry]] = {}
        for _ in range(RELISTS):
            keys = [info.key for info in self.objects.list(INDEX_PREFIX)]
            wanted = [
                key for key in keys if key not in loaded and key not in fetched and not (meta_only and is_data_key(key))
            ]
            fetched.update(self.fetch_index(wanted))
            if all(key in fetched or key in self.damaged_index for key in wanted):
                break
        return fetched

    def fetch_index(self, keys: list[str]) -> dict[str, list[IndexEntry]]:
        """The entries of the index objects at ``keys``, several in flight.

        One deleted since it was listed is left out (a gc superseded it: what
        it named is elsewhere). A damaged one is left out and remembered in
        ``damaged_index``: what only it names reads as missing, never wrong.
        """
        fetched: dict[str, list[IndexEntry]] = {}
        if not keys:
            return fetched
        from concurrent.futures import ThreadPoolExecutor  # imported here: a read of cached data needs no pool

        with ThreadPoolExecutor(INDEX_LOADS_IN_FLIGHT, thread_name_prefix="zerofs-index") as pool:
            for key, found in zip(keys, pool.map(self.objects.get, keys), strict=True):
                if found is None:
                    continue
                try:
                    fetched[key] = decode_index(self.open_object(key, found.data), f"{self.url}/{key}")
                except CorruptionError as exc:
                    self.damaged_index[key] = str(exc)
        return fetched

    def seal_object(self, key: str, data: bytes) -> bytes:
        """The bytes to store at ``key`` for an index object or gc plan: ``data``, sealed to the key if encrypted."""
        return data if self.sealer is None else self.sealer.seal_object(key, data)

    def open_object(self, key: str, data: bytes) -> bytes:
        """What ``seal_object`` stored at ``key``.

        Raises:
            CorruptionError: it does not open (damaged, another key's, or copied from another object).
        """
        return _open_object(self.sealer, self.url, key, data)

    def index_object(self, key: str, entries: Iterable[IndexEntry]) -> bytes:
        """The bytes of the index object at ``key``."""
        return self.seal_object(key, encode_index(entries))

    def rebuild_cache(self, finished_gcs: set[str]) -> None:
        """Load the cache's index anew from the index objects in the bucket (after a gc it did not see finish)."""
        with self._refresh_lock:
            self.cache.replace_index(self._fetch_listed(set()), finished_gcs)
            self._has_refreshed = True

    def _catch_up(self) -> None:
        """Before a walk of the whole index: take in finished gcs and new index objects (once per process)."""
        if not self._has_refreshed:
            if self.gc.age == float("inf"):
                self.look_for_gc()
            self.refresh()

    def look_for_gc(self) -> set[ObjectId]:
        """Look at the gc plans now (``GcWatch.look``); the blobs that became doomed for this process."""
        return self.gc.look(self.rebuild_cache)

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        """Kind and lengths of a stored blob, from the cache (refreshed once on a miss)."""
        pending = self._pending.get(object_id)
        if pending is not None:
            return pending[2]
        location = self._locate(object_id)
        return None if location is None else BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)

    def has(self, object_id: ObjectId) -> bool:
        """True if stored: the cache, refreshed on the first miss of this process only (a miss is the common case).

        A blob a gc plan dooms is absent unless this process stored it again.
        """
        if object_id in self._pending:
            return True
        if object_id in self.gc.doomed and object_id not in self.copied:
            return False
        return self._locate(object_id, refresh=not self._has_refreshed) is not None

    @contextmanager
    def has_checker(self) -> Iterator[Callable[[ObjectId], bool]]:
        """Yield ``has`` over one snapshot of the cache (``CacheSnapshot``), for one thread."""
        snapshot = self.cache.snapshot()
        try:
            yield functools.partial(self.has_over, snapshot)
        finally:
            snapshot.renew()

    def has_over(self, snapshot: CacheSnapshot, object_id: ObjectId) -> bool:
        """``has``, answered from ``snapshot`` (a read transaction kept open, renewed after it misses the first time).

        A blob a gc plan this process knows dooms is not stored unless this
        process copied it: a snapshot taken before that gc finished may
        still place it.
        """
        if object_id in self._pending:
            return True
        if object_id in self.gc.doomed and object_id not in self.copied:
            return False
        if snapshot.places(object_id):
            return True
        if self._has_refreshed:
            return False
        found = self.has(object_id)  # the first miss of this process loads new index objects
        snapshot.renew()
        return found

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        """Every stored id starting with ``prefix`` (after loading new index objects), with its info."""
        self._catch_up()
        for object_id, location in self.cache.iter_locations(prefix):
            yield object_id, BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)

    def get_ref(self, name: bytes) -> bytes | None:
        """Read a ref from the bucket (one request; none for the first read of a ref ``read_ahead`` read).

        A value read ahead serves only within G/4 of its read: a commit that
        stopped being HEAD at least G ago may have been deleted by a gc (one
        that began after it stopped being HEAD, and waited G), so a process
        slow to start (a rebuild of its cache on a slow link) reads HEAD again.
        Refs other than HEAD (GRAFTS: gc moves it, and history walks read it
        once per commit) are kept for ``SLOW_REF_SECONDS`` after a read.
        """
        if name in self._read_ahead and clock() - self._read_ahead_at <= self.gc.grace_s / 4:
            current = self._read_ahead.pop(name)
        elif name != b"HEAD":
            kept = self._slow_refs.get(name)
            if kept is None or time.monotonic() - kept[0] > SLOW_REF_SECONDS:
                kept = self._slow_refs[name] = (time.monotonic(), self._read_ref(name))
            current = kept[1]
        else:
            current = self._read_ref(name)
        return None if current is None else current[0].new

    def _read_ref(self, name: bytes) -> RefRecord | None:
        return read_ref(self.objects, self.url, name, self.repo_tag, self.sealer)

    def get_meta(self, key: bytes) -> bytes | None:
        """No metadata values are kept in the bucket (nothing reads them on S3)."""
        return None

    # -- writes -------------------------------------------------------------------

    @contextmanager
    def batch(self, *, index_later: bool = False) -> Iterator[WriteBatch]:
        """Yield a batch: published (packs, index object, then refs) when it ends without error.

        ``index_later`` is not needed here: a batch's index object is cheap, and
        blobs published early are harmless until a ref names them.
        """
        if self.readonly:
            raise RepositoryError(f"the repository at {self.url} is open read-only")
        batch = S3Batch(self)
        try:
            yield batch
        except BaseException:
            batch.abandon()
            raise
        batch.commit()

    def move_ref(
        self, name: bytes, old: bytes | None, new: bytes, *, before_log: Callable[[], None] | None = None
    ) -> None:
        """Move a ref from ``old`` to ``new`` (log object first, then the ref by If-Match).

        ``before_log`` runs just before the log object is created: from then
        on the move is made (by this writer, or by the next one if it dies).

        Raises:
            RefMovedError: the ref is not ``old`` any more, or another writer is moving it.
        """
        if len(new) != ID_BYTES:  # a ref record holds an object id; anything else would be cut or padded
            raise RepositoryError(f"internal error: ref {name.decode()} set to {len(new)} bytes, not an object id")
        self._slow_refs.pop(name, None)
        current = self._read_ref(name)
        if (current[0].new if current is not None else None) != old:
            raise RefMovedError(f"ref {name.decode()} of the repository at {self.url} moved during the change")
        generation = current[0].sequence + 1 if current is not None else 0
        if before_log is not None:
            before_log()
        move = RefMove(generation, time.time_ns(), name, old, new)
        record = seal_ref(encode_record(move, self.repo_tag + os.urandom(NONCE_BYTES - TAG_BYTES)), move, self.sealer)
        if self.objects.create(_log_key(name, generation), record) is None:
            self._complete_move(name, generation, current)
            raise RefMovedError(f"ref {name.decode()} of the repository at {self.url} moved during the change")
        key = _ref_key(REFS_PREFIX, name)
        done = self.objects.create(key, record) if current is None else self.objects.replace(key, record, current[1])
        if done is None and self._move_was_made(name, key, generation, record):
            return
        if done is None:
            raise ObjectStoreError(
                f"ref {name.decode()} of the repository at {self.url} was changed outside its log "
                f"(generation {generation} is logged as this writer's)"
            )

    def _move_was_made(self, name: bytes, key: str, generation: int, record: bytes) -> bool:
        """True if the move this writer logged as ``generation`` is in the ref, or moves on top of it are.

        Another writer that found the log ahead of the ref completes the move
        (``_complete_move``), and may then make moves of its own before this
        writer looks: a ref past ``generation`` went through it, because a
        move is logged only by a writer that read the ref at the generation
        before (or completed it).
        """
        found = self.objects.get(key)
        if found is not None and found.data == record:
            return True
        now = self._read_ref(name)
        return now is not None and now[0].sequence > generation

    def _complete_move(self, name: bytes, generation: int, current: tuple[RefMove, str] | None) -> None:
        """Move the ref to its log's last record when the log is ahead of it.

        One ahead: a writer logged a move and died before making it; the log
        record holds the bytes it would have written, so any two writers that
        complete it agree. Further ahead: the ref object was rolled back (an
        older copy restored over it); it is moved forward, never left behind
        its log, and the rollback is reported.
        """
        newest = _last_logged(self.objects, name, self.sealer)
        if newest is None:
            return
        move, data, _ = newest
        if current is not None and move.sequence <= current[0].sequence:
            return
        if move.sequence > generation:
            _warn(
                "zerofs: ref %s of %s was at generation %s, behind its log (generation %d): the ref object was "
                "rolled back; moved it forward to the log's last record",
                name.decode(),
                self.url,
                "none" if current is None else current[0].sequence,
                move.sequence,
            )
        key = _ref_key(REFS_PREFIX, name)
        with contextlib.suppress(ObjectStoreError):  # another writer completed it first
            if current is None:
                self.objects.create(key, data)
            else:
                self.objects.replace(key, data, current[1])

    # -- maintenance ----------------------------------------------------------------

    def scan(self) -> Iterator[ScannedRecord]:
        """Every blob the index places, read pack by pack (one whole-pack read each)."""
        self._catch_up()
        by_pack: dict[int, dict[int, ObjectId]] = {}
        for object_id, location in self.cache.iter_locations():
            by_pack.setdefault(location.pack_no, {})[location.offset] = object_id
        for pack_no, placed in sorted(by_pack.items()):
            name = self._pack_name(pack_no)
            found = self.objects.get(pack_key(name))
            if found is None:
                for object_id in placed.values():
                    yield ScannedRecord(object_id, None, f"its pack {pack_hex(name)} is missing")
                continue
            if self.sealer is not None:
                yield from self._scan_sealed(pack_no, name, found.data, placed)
                continue
            seen: set[int] = set()
            for blob in scan_blobs(found.data):
                expected = placed.get(blob.offset)
                if expected is None:
                    continue
                seen.add(blob.offset)
                if blob.header.object_id != expected:
                    yield ScannedRecord(expected, None, f"its header in pack {pack_hex(name)} names another object")
                else:
                    yield ScannedRecord(expected, blob.record, None)
            for offset, object_id in placed.items():
                if offset not in seen:
                    yield ScannedRecord(object_id, None, f"pack {pack_hex(name)} is damaged where it should be")

    def _scan_sealed(
        self, pack_no: int, name: bytes, data: bytes, placed: dict[int, ObjectId]
    ) -> Iterator[ScannedRecord]:
        """The blobs of an encrypted pack the index places, each opened as the kind the index gives.

        One by one, not by walking the pack: a blob that does not open is
        reported alone, and the blobs after it are still read.
        """
        for offset, object_id in sorted(placed.items()):
            location = self.cache.locate(object_id)
            if location is None or (location.pack_no, location.offset) != (pack_no, offset):
                continue  # placed elsewhere meanwhile (a gc): its new place is scanned there
            info = BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)
            blob = data[offset : offset + BLOB_HEADER.size + location.stored_bytes]
            try:
                yield ScannedRecord(object_id, blob_record(object_id, blob, info, pack_hex(name), self.sealer), None)
            except DamagedObjectError as exc:
                yield ScannedRecord(object_id, None, exc.message)

    def check_storage(self) -> Iterator[StorageProblem]:
        """Packs the index names that the bucket lacks, and damaged refs."""
        self._catch_up()
        listed = {info.key for info in self.objects.list(PACKS_PREFIX)}
        placed = {location.pack_no for _, location in self.cache.iter_locations()}
        for pack_no in sorted(placed):
            name = self._pack_name(pack_no)
            if pack_key(name) not in listed:
                yield StorageProblem(
                    StorageProblemKind.PACK_MISSING, f"pack {pack_hex(name)} is missing from {self.url}"
                )
        for detail in self.damaged_index.values():
            yield StorageProblem(StorageProblemKind.INDEX_ENTRY, detail)
        for name in (b"HEAD", b"GRAFTS"):
            yield from self._check_ref(name)

    def _check_ref(self, name: bytes) -> Iterator[StorageProblem]:
        """A damaged ref object, or one behind its log (an interrupted move, or a rollback)."""
        if self.sealer is not None:  # a plain log record is checked by its checksum alone (unchanged)
            yield from self._check_newest_log(name)
        key = _ref_key(REFS_PREFIX, name)
        found = self.objects.get(key)
        opened = None if found is None else open_ref(found.data, name, self.sealer)
        move = None if opened is None else opened[0]
        if found is not None and move is None:
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"ref object {self.url}/{key} is damaged (it is read from its log, reflog/{name.decode()}/, "
                "until the next commit rewrites it)",
            )
            return
        newest = _last_logged(self.objects, name, self.sealer)
        at = -1 if move is None else move.sequence
        if newest is None or newest[0].sequence <= at:
            return
        if newest[0].sequence == at + 1:
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"ref {name.decode()} of {self.url} is one move behind its log (a writer died between the two); "
                "the next commit completes the move",
                is_error=False,
            )
            return
        yield StorageProblem(
            StorageProblemKind.REF_LOG,
            f"ref object {self.url}/{key} is at generation {at}, behind its log (generation {newest[0].sequence}): "
            "it was rolled back or restored from an older copy; the next commit moves it forward to the log",
        )

    def _check_newest_log(self, name: bytes) -> Iterator[StorageProblem]:
        """The newest object of a ref's log, if it does not hold that move (damaged, or replayed there)."""
        keys = [info.key for info in self.objects.list(f"{REFLOG_PREFIX}/{name.decode()}")]
        found = self.objects.get(keys[-1]) if keys else None
        if found is not None and _logged_move(keys[-1], found.data, name, self.sealer) is None:
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"ref log object {self.url}/{keys[-1]} is damaged, or another record copied there "
                "(it fails its checksum or authentication, or holds another move)",
            )

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """Not on S3 yet.

        Raises:
            UnsupportedOnS3Error: always.
        """
        raise UnsupportedOnS3Error(f"gc is not supported on an S3 repository yet ({self.url})")

    def usage(self) -> StorageUsage:
        """Packs in the bucket and the bytes the index places in them."""
        packs = list(self.objects.list(PACKS_PREFIX))
        live = sum(BLOB_HEADER.size + location.stored_bytes for _, location in self.cache.iter_locations())
        return StorageUsage(len(packs), sum(p.size_bytes for p in packs), live, self.cache.used_bytes(), None)

    def close(self) -> None:
        """Write the records read into the cache, close it and the client."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(CorruptionError, RepositoryError):
            self._write_kept()
        self.cache.close()
        close = getattr(self.objects, "close", None)
        if close is not None:
            close()


RefRecord = tuple[RefMove, str]
"""A ref's record and the ETag of the object holding it."""


def read_ref(
    objects: ObjectStore, url: str, name: bytes, repo_tag: bytes, sealer: Sealer | None = None
) -> RefRecord | None:
    """Read ref ``name`` of the repository at ``url`` (one request); None if it is not set.

    ``sealer``: the repository is encrypted, and its ref records are sealed (``seal_ref``).

    Raises:
        CorruptionError: its record is damaged.
        ReplacedRepositoryError: it belongs to another repository than ``repo_tag`` names.
    """
    key = _ref_key(REFS_PREFIX, name)
    found = objects.get(key)
    if found is None:
        return None
    opened = open_ref(found.data, name, sealer)
    if opened is None:  # damaged: its log holds every value it had
        logged = _last_logged(objects, name, sealer)
        if logged is None:
            raise CorruptionError(
                f"ref {name.decode()} of the repository at {url} is damaged ({key}), and so is its log"
            )
        opened = logged[0], logged[2]
    move, record = opened
    if record_nonce(record)[:TAG_BYTES] != repo_tag:
        raise ReplacedRepositoryError(
            f"ref {name.decode()} at {url} belongs to another repository than the one this host knew there"
        )
    return move, found.etag


def _last_logged(objects: ObjectStore, name: bytes, sealer: Sealer | None) -> tuple[RefMove, bytes, bytes] | None:
    """The last intact record of ref ``name``'s log (generations sort as keys: 16 hex digits).

    Returns its move, the object's bytes and the record in them (the same
    bytes in a plain repository).
    """
    keys = [info.key for info in objects.list(f"{REFLOG_PREFIX}/{name.decode()}")]
    for key in reversed(keys):
        found = objects.get(key)
        opened = None if found is None else _logged_move(key, found.data, name, sealer)
        if found is not None and opened is not None:
            return opened[0], found.data, opened[1]
    return None


def _logged_move(key: str, data: bytes, name: bytes, sealer: Sealer | None) -> tuple[RefMove, bytes] | None:
    """The move and record of the log object at ``key``, or None if it is not an intact record of ``name``.

    An encrypted repository's record must also be the move its key numbers:
    one replayed under a later key opens (it is authentic) but is refused.
    """
    opened = open_ref(data, name, sealer)
    if opened is None or (sealer is not None and f"{opened[0].sequence:016x}" != key.rsplit("/", 1)[-1]):
        return None
    return opened


def seal_ref(record: bytes, move: RefMove, sealer: Sealer | None) -> bytes:
    """The bytes of a ref or log object holding ``record`` (``move`` encoded): sealed to its name and number."""
    if sealer is None:
        return record
    return SEALED_REF_SEQUENCE.pack(move.sequence) + sealer.seal_move(move.name, move.sequence, record)


def open_ref(data: bytes, name: bytes, sealer: Sealer | None) -> tuple[RefMove, bytes] | None:
    """The move of ref ``name`` in a ref or log object, and the record holding it; None if damaged or not ``name``'s."""
    record = data
    if sealer is not None:
        if len(data) < SEALED_REF_SEQUENCE.size:
            return None
        (sequence,) = SEALED_REF_SEQUENCE.unpack_from(data)
        try:
            record = sealer.open_move(name, sequence, memoryview(data)[SEALED_REF_SEQUENCE.size :])
        except DamagedObjectError:  # AuthenticationError: damaged, or another ref's or move's record
            return None
    move = decode_record(record)
    if move is None or move.name != name or (sealer is not None and move.sequence != sequence):
        return None
    return move, record


def _open_object(sealer: Sealer | None, url: str, key: str, data: bytes) -> bytes:
    """What ``S3Store.seal_object`` stored at ``key``.

    Raises:
        CorruptionError: it does not open.
    """
    if sealer is None:
        return data
    try:
        return sealer.open_object(key, data)
    except DamagedObjectError as exc:
        raise CorruptionError(
            f"object {url}/{key} fails authentication: changed, copied from another key, or sealed with another key"
        ) from exc


def repo_tag(repo_id: str) -> bytes:
    """What a repository's refs carry of its id."""
    return bytes.fromhex(repo_id)[:TAG_BYTES]


def known_config_path(cache_root: str, endpoint: str, url: str) -> str:
    """Where this host keeps the config of the repository at ``url`` on ``endpoint`` (saves a request per command)."""
    digest = blake3.blake3(f"{endpoint}\n{url}".encode()).hexdigest()[:32]
    return os.path.join(cache_root, LOCATIONS_DIR, digest)


def read_known_config(path: str) -> bytes | None:
    """The config kept at ``path``, or None (absent or damaged)."""
    try:
        with open(path, "rb") as handle:
            return decode_config_file(handle.read())
    except OSError:
        return None


def keep_config(path: str, config: bytes) -> None:
    """Keep a repository's config on this host (a cache: failures are ignored)."""
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(encode_config_file(config))
        os.replace(temporary, path)


def _warn(text: str, *args: object) -> None:
    """A warning on stderr through ``logging`` (imported here: it costs a read-only command 6 ms to import)."""
    import logging

    logging.getLogger("zerofs.store").warning(text, *args)


def _is_done(pack: _NewPack) -> bool:
    return pack.upload is not None and pack.upload.done()


def _child_ids(object_id: ObjectId, record: Record, id_function: IdFunction) -> list[ObjectId]:
    """The blobs a node references (a commit: its tree only; parents are history, which gc cuts by grafts)."""
    node = decode(record.kind, decode_body(object_id, record, id_function), object_id.hex())
    if isinstance(node, Commit):
        return [node.root_id]
    return [child_id for _, child_id in iter_child_ids(node)]


def _ref_key(prefix: str, name: bytes) -> str:
    return f"{prefix}/{name.decode()}"


def _log_key(name: bytes, generation: int) -> str:
    return f"{REFLOG_PREFIX}/{name.decode()}/{generation:016x}"


HELD: Final = -1
"""The offset of a sealed blob in a ``_NewPack`` until ``finish`` places it."""


class _NewPack:
    """A pack of this process: built in memory (the pack format of ``packfile.py``), then uploaded.

    Read from memory until it is uploaded, from the bucket after. Memory,
    not a file: the bytes go to the network once, nothing needs them
    durable here (a crash loses only what no index object names yet), and
    ``UPLOADS_IN_FLIGHT`` bounds how many are held.

    An encrypted pack's sealed blobs are held apart until ``finish`` and
    laid out then in a random order (issue #15, as ``PackStore.hold``
    does locally), so neighbours in the pack are not neighbours in a file.
    """

    def __init__(self, sealer: Sealer | None) -> None:
        self.sealer = sealer
        self.name = os.urandom(NAME_BYTES)
        self.data = bytearray(pack_header(None if sealer is None else sealer.key_check))
        self.offsets: list[int] = []
        self.data_end = 0
        """Where its blobs end (its trailer starts), once finished."""
        self.upload: Future[None] | None = None
        self.upload_started = 0.0
        """When its upload began (``s3gc.clock``): its index object must follow within G/4."""
        self.is_uploaded = False
        self.entries: list[IndexEntry] = []
        """The blobs appended to it, for its index object (a sealed one's offset is ``HELD`` until ``finish``)."""
        self.held: dict[ObjectId, tuple[bytes, bytes | bytearray | memoryview]] = {}
        """Sealed blobs not laid out yet: header and payload."""
        self.held_bytes = 0
        self.placed: dict[ObjectId, int] = {}
        """Where ``finish`` laid each held blob out."""

    @property
    def size(self) -> int:
        return len(self.data) + self.held_bytes

    def append(self, object_id: ObjectId, record: Record) -> tuple[int, int]:
        """Append a blob (hold it, sealed, in an encrypted repository); its offset (or ``HELD``) and stored length."""
        if self.sealer is None:  # the plain path as it always was: no tuple, no call more per blob
            offset = len(self.data)
            self.offsets.append(offset)
            self.data += blob_header(object_id, record)
            self.data += record.payload
            return offset, len(record.payload)
        header, stored = stored_blob(object_id, record, self.sealer)
        self.held[object_id] = (header, stored)
        self.held_bytes += len(header) + len(stored)
        return HELD, len(stored)

    def finish(self) -> None:
        self._place_held()
        self.data_end = len(self.data)
        self.data += pack_trailer(self.offsets, self.data_end, self.name, self.sealer)

    def _place_held(self) -> None:
        """Lay the held blobs out in a random order and give their index entries the offsets.

        A reader finds each blob in ``held`` or, once that is emptied, in ``placed``.
        """
        if not self.held:
            return
        for object_id, (header, stored) in shuffled(list(self.held.items())):
            offset = len(self.data)
            self.offsets.append(offset)
            self.data += header
            self.data += stored
            self.placed[object_id] = offset
        self.entries = [e._replace(offset=self.placed[e.object_id]) if e.offset == HELD else e for e in self.entries]
        self.held = {}
        self.held_bytes = 0

    def rename(self) -> None:
        """Give the pack a new name (to upload it again: a gc may take the first upload for a dead writer's).

        An encrypted pack's trailer is sealed to its name: it is sealed again.
        """
        self.name = os.urandom(NAME_BYTES)
        self.entries = [entry._replace(pack_name=self.name) for entry in self.entries]
        if self.sealer is not None and self.data_end:
            del self.data[self.data_end :]
            self.finish()

    def read(self, store: S3Store, object_id: ObjectId, offset: int, stored_bytes: int) -> bytes:
        if offset == HELD:
            held = self.held.get(object_id)
            if held is not None:
                return held[0] + bytes(held[1])
            offset = self.placed[object_id]
        length = BLOB_HEADER.size + stored_bytes
        if not self.is_uploaded:
            return bytes(self.data[offset : offset + length])
        return store.objects.get_range(pack_key(self.name), offset, length)


NODE_KINDS: Final = frozenset({Kind.FILE, Kind.CHUNKLIST, Kind.DIR, Kind.COMMIT})
"""Kinds that reference other blobs."""
BATCH_LOOK_S: Final = 1.0
"""A batch starts with a look at the gc plans unless the last one is younger than this (one LIST request)."""
SLOW_UPLOADS: Final = 3
"""Uploads of one pack, or looks at the gc plans, that may each outlast G/4 before the batch gives up."""


class S3Batch:
    """Writes of one batch: packs uploaded as they fill, each followed by its index object; then the refs.

    The writers' side of gc across hosts (``s3gc.py``): every index object
    and ref move is sent within G/4 of a look at the gc plans; a blob a plan
    dooms that a node of this batch references is copied into the batch.
    """

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self._writer: _NewPack | None = None
        self._uploading: list[_NewPack] = []
        self._refs: RefMoves = []
        self._pool: ThreadPoolExecutor | None = None
        self._nodes: list[ObjectId] = []
        """The nodes this batch stored: checked again when a gc plan turns up."""
        if store.gc.age > BATCH_LOOK_S:  # learn of a plan while what it dooms can still be copied
            store.look_for_gc()
        self._snapshot = store.cache.snapshot()
        """What the cache placed at this batch's last index object or look (renewed there), for ``has``."""

    def has(self, object_id: ObjectId) -> bool:
        """True if stored (as the cache knew at this batch's last index object or look) or written in this batch."""
        return self.store.has_over(self._snapshot, object_id)

    def put(self, object_id: ObjectId, record: Record) -> bool:
        """Append a record to the pack being built unless stored; True if new."""
        if self.has(object_id):
            return False
        if record.kind in NODE_KINDS:
            if self.store.gc.doomed:  # the copies first: in this pack or an earlier one, published no later
                self._copy_doomed(_child_ids(object_id, record, self.store.id_function))
            self._nodes.append(object_id)
        self._append(object_id, record)
        return True

    def copy(self, object_id: ObjectId, record: Record) -> None:
        """Append a record even though the repository has it (gc copying it out of a pack it deletes)."""
        self._append(object_id, record)

    def _append(self, object_id: ObjectId, record: Record, *, may_rotate: bool = True) -> None:
        store = self.store
        if self._writer is None:
            self._writer = _NewPack(store.sealer)
        writer = self._writer
        offset, stored_bytes = writer.append(object_id, record)
        info = BlobInfo(record.kind, stored_bytes, record.raw_bytes)
        store._pending[object_id] = (writer, offset, info)
        writer.entries.append(IndexEntry(object_id, writer.name, offset, info.stored_bytes, info.raw_bytes, info.kind))
        if object_id in store.gc.doomed:
            store.copied.add(object_id)
        if may_rotate and writer.size >= PACK_TARGET_BYTES:
            self._rotate()

    def _needs_copy(self, object_id: ObjectId) -> bool:
        store = self.store
        return object_id in store.gc.doomed and object_id not in store.copied and object_id not in store._pending

    def _copy_doomed(self, object_ids: Iterable[ObjectId], *, may_rotate: bool = True) -> None:
        """Copy into this batch each doomed blob of ``object_ids``, and every doomed blob below those.

        ``may_rotate``: False to keep them all in the pack being built (``_look_again`` publishes it at once).

        Raises:
            GcDeletedError: one of them is gone already (the change must be made again).
        """
        stack = [object_id for object_id in object_ids if self._needs_copy(object_id)]
        while stack:
            object_id = stack.pop()
            if not self._needs_copy(object_id):
                continue
            record = self.store.get(object_id)
            if record is None:
                raise GcDeletedError(
                    f"object {object_id.hex()[:16]}, which this change reuses, was deleted by a gc of "
                    f"{self.store.url} while the change was being made; make the change again"
                )
            decode_body(object_id, record, self.store.id_function)  # a copy is checked like any read
            self._append(object_id, record, may_rotate=may_rotate)
            if record.kind in NODE_KINDS:
                self._nodes.append(object_id)
                stack.extend(
                    child for child in _child_ids(object_id, record, self.store.id_function) if self._needs_copy(child)
                )

    def _look_until_fresh(self) -> None:
        """Make the last look at the gc plans at most G/4 old (just before a publication is sent).

        Raises:
            ObjectStoreError: looking keeps taking longer than G/4.
        """
        store = self.store
        for _ in range(SLOW_UPLOADS):
            if store.gc.is_fresh:
                return
            self._look_again()
        if not store.gc.is_fresh:
            raise ObjectStoreError(
                f"{store.url} answers too slowly for the repository's gc grace period ({store.gc.grace_s:g} s): "
                "a look at the gc plans takes longer than a quarter of it"
            )

    def _look_again(self) -> None:
        """Look at the gc plans; if one is new, copy what it dooms below this batch's nodes, and publish the copies.

        The copies go into a pack of their own, published at once, ahead of
        the packs in flight and of whatever index object is about to be
        sent: nothing this batch publishes may name a node whose doomed
        children are not safe yet. (What is doomed below a copy is copied
        with it, and what is not doomed is indexed already, so the pack
        needs nothing published after it.)
        """
        newly = self.store.look_for_gc()
        self._snapshot.renew()  # the look may have rebuilt the cache after a gc
        if not newly:
            return
        building, self._writer = self._writer, None
        try:
            for node_id in list(self._nodes):
                record = self.store.get(node_id)
                if record is None:
                    raise CorruptionError(f"node {node_id.hex()[:16]} this batch stored cannot be read back")
                self._copy_doomed(_child_ids(node_id, record, self.store.id_function), may_rotate=False)
            copies = self._writer
        finally:
            self._writer = building
        if copies is not None:
            copies.finish()
            self._upload(copies)
            self._publish(copies)

    def _rotate(self) -> None:
        """Close the pack being built and upload it in the background (waiting while too many are in flight)."""
        pack, self._writer = self._writer, None
        if pack is None:
            return
        pack.finish()
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="zerofs-upload")
        pack.upload_started = clock()
        pack.upload = self._pool.submit(self._upload_once, pack)
        self._uploading.append(pack)
        while self._uploading and (len(self._uploading) > UPLOADS_IN_FLIGHT or _is_done(self._uploading[0])):
            self._settle(self._uploading[0])  # in upload order: a node's chunks are in its pack or an earlier one

    def _upload_once(self, pack: _NewPack) -> None:
        if self.store.objects.create(pack_key(pack.name), pack.data) is None:
            raise ObjectStoreError(f"pack {pack_hex(pack.name)} already exists in {self.store.url}")

    def _upload(self, pack: _NewPack) -> None:
        """Upload a finished pack here and now."""
        pack.upload_started = clock()
        self._upload_once(pack)

    def _settle(self, pack: _NewPack) -> None:
        """Wait for one upload, then publish its pack."""
        assert pack.upload is not None
        try:
            pack.upload.result()
        finally:
            self._uploading.remove(pack)
        self._publish(pack)

    def _publish(self, pack: _NewPack) -> None:
        """Publish the index object of an uploaded pack, then let go of its bytes.

        One index object per pack: an import killed at any point leaves
        every pack it finished uploading findable, so running it again
        uploads only the packs that were in flight. The index object is sent
        within G/4 of the pack's upload starting (or the pack is uploaded
        again under a new name: a gc that listed the first upload without an
        index object naming it deletes it), and of a look at the gc plans.
        """
        store = self.store
        grace_s = store.gc.grace_s
        for _ in range(SLOW_UPLOADS):
            if clock() - pack.upload_started <= grace_s / 4:
                break
            pack.rename()
            self._upload(pack)
        else:
            raise ObjectStoreError(
                f"uploading a pack to {store.url} takes longer than a quarter of the repository's gc grace "
                f"period ({grace_s:g} s), so a gc could take it for a dead writer's"
            )
        self._look_until_fresh()
        pack.is_uploaded = True  # reads go to the bucket from now on
        for key, entries in index_objects(pack.entries):
            if store.objects.create(key, store.index_object(key, entries)) is None:
                raise ObjectStoreError(f"index object {key} already exists in {store.url}")
            store.cache.add(key, entries)
        self._snapshot.renew()
        for entry in pack.entries:
            store._pending.pop(entry.object_id, None)
        self._drop(pack)

    @staticmethod
    def _drop(pack: _NewPack) -> None:
        pack.data = bytearray()
        pack.held = {}

    def get_ref(self, name: bytes) -> bytes | None:
        """The ref as this batch will leave it."""
        moved = moved_to(self._refs, name)
        if moved is not None:
            return moved
        current = self.store._read_ref(name)  # fresh: the compare-and-swap decides on it
        return None if current is None else current[0].new

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Move a ref at the end of the batch if it is still ``expected``; False if it is already not."""
        return add_move(self._refs, name, expected, new, self.get_ref(name))

    def delete(self, object_id: ObjectId) -> bool:
        """Not on S3 yet (only gc deletes).

        Raises:
            UnsupportedOnS3Error: always.
        """
        raise UnsupportedOnS3Error(f"deleting objects (gc) is not supported on an S3 repository yet ({self.store.url})")

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Not on S3 yet.

        Raises:
            UnsupportedOnS3Error: always.
        """
        raise UnsupportedOnS3Error(f"repository metadata cannot be set on an S3 repository yet ({self.store.url})")

    def flush(self) -> None:
        """Upload every pack so far and publish the index objects naming their blobs."""
        self._rotate()
        while self._uploading:
            self._settle(self._uploading[0])

    def commit(self) -> None:
        """Publish the blobs, then move the refs (within G/4 of a look at the gc plans).

        Raises:
            RefMovedError: a ref moved since ``cas_ref``; the blobs are published all the same.
            GcDeletedError: a blob this batch reuses was deleted by a gc meanwhile.
        """
        store = self.store
        try:
            self._copy_doomed(new for _, _, new in self._refs)
            self.flush()
            for name, old, new in self._refs:
                store.move_ref(name, old, new, before_log=self._look_until_fresh)
            if store.gc.age > store.gc.grace_s / 2:
                _warn(
                    "zerofs: moving a ref of %s took longer than half its gc grace period (%g s); "
                    "run `zerofs fsck` after the next gc",
                    store.url,
                    store.gc.grace_s,
                )
        finally:
            self._snapshot.renew()
            self._close_pool()

    def abandon(self) -> None:
        """The batch failed: publish the uploads in flight that succeed, forget the open pack.

        Packs nobody names are gc's to remove after its grace period.
        """
        for pack in list(self._uploading):
            with contextlib.suppress(Exception):
                self._settle(pack)
        if self._writer is not None:
            for entry in self._writer.entries:
                self.store._pending.pop(entry.object_id, None)
                self.store.copied.discard(entry.object_id)
            self._drop(self._writer)
            self._writer = None
        for object_id, (pack, _, _) in list(self.store._pending.items()):
            if not pack.is_uploaded:  # an upload that failed: its blobs are not stored
                del self.store._pending[object_id]
                self.store.copied.discard(object_id)
        self._snapshot.renew()
        self._close_pool()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
