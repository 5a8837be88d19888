"""The embedded default backend: pack files beside an LMDB index, in one directory.

Layout of a repository directory::

    config            the repository's config (written once), with a checksum
    index.mdb         LMDB: blob locations, packs, refs, metadata, host-file cache
    refs.log          every move of a ref, checksummed, sealed if encrypted (see reflog.py)
    packs/ab/ab...pack  immutable pack files (see packfile.py)

Writing a batch: each blob is appended to this process's open pack; a
flush makes the pack durable (``fdatasync``) and then, in one LMDB
transaction, indexes the blobs and (last step only) moves the refs by
compare-and-swap; the ref log records the move after that transaction. So
the index never names bytes that are not durable, and a crash leaves at
most an unindexed pack tail or a pack nobody names, which gc reclaims. A
pack is closed with its trailer at ``PACK_TARGET_BYTES`` or when the store
closes; closed packs are never written again.

Reading a blob is one index lookup and one ``pread``. Its header in the
pack must repeat the id, kind and lengths the index has, and its payload
must decode and hash to the id (``codec.decode_record``, in the
repository): a flipped byte anywhere, in a pack or in the index, is
reported, never returned.

An encrypted repository's store is given a ``Sealer`` (``store/sealer.py``):
it writes encrypted packs of sealed blobs, in runs of a random order
(``PackStore.hold``: issue #15), and a read opens the blob with
the key and associated data of the kind the index gives, then checks the
kind and raw length inside against the index. The same sealer seals the
index's values (``index.py``) and the ref log's moves (``reflog.py``), so
neither file shows a blob's kind or lengths or a ref's value. A plain store
(no sealer) never imports the crypto, and its files keep their format.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import blake3
import lmdb

from zerofs.errors import CorruptionError, DamagedObjectError, Hint, MissingObjectError, RepositoryError, ZerofsError
from zerofs.objects import ObjectId
from zerofs.store.base import BlobInfo, RefMovedError, RefMoves, add_move, moved_to
from zerofs.store.codec import Record
from zerofs.store.index import LmdbIndex, Location, index_damaged
from zerofs.store.packfile import (
    BLOB_HEADER,
    PACK_HEADER,
    parse_blob_header,
    parse_sealed_blob_header,
    shuffled,
    stored_blob,
)
from zerofs.store.packs import PackFiles, PackWriter, disk_error, fsync_directory, make_names_durable, pack_hex
from zerofs.store.reflog import RefLog

if TYPE_CHECKING:  # maintenance's results: imported only when maintenance runs; the sealer only when encrypted
    from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageUsage
    from zerofs.store.sealer import Sealer

CONFIG_FILE: Final = "config"
REFLOG_FILE: Final = "refs.log"
CONFIG_META_KEY: Final = b"config"
MAX_LAG_COMMITS: Final = 1000
"""How far back from the index's HEAD opening looks for the ref log's last HEAD."""
PACK_TARGET_BYTES: Final = 32 << 20
"""A pack is closed once it holds this much (chosen by benchmarks/pack_size.py; see ARCHITECTURE.md)."""
SHUFFLE_BYTES: Final = 2 << 20
"""An encrypted store writes the sealed blobs it holds back, in a random order, once this many have gathered.

About 25 default chunks or a few hundred small files per shuffled run. Not
a whole pack: held data leaves the CPU's caches before it is written, and
that costs. ``benchmarks/shuffle_window.py`` (CPU seconds to seal and store
1 GiB of 80 KB chunks, medians of 5 on 2 shared cores): each blob written as
it comes 1.07, windows of 1 MiB 1.07, 2 MiB 1.06, 4 MiB 1.07 (1.13 in an
earlier run), a whole pack (32 MiB) 1.27."""
FLUSH_BYTES: Final = 1 << 30
FLUSH_BLOBS: Final = 250_000
FLUSH_SECONDS: Final = 30.0
"""A long batch indexes what it wrote after this many bytes, objects or seconds.

Few, large index transactions: each one copies the index pages it touches
(LMDB is copy-on-write), and new ids land all over the index, so many small
transactions would leave several stale copies of it in the file. The pack
bytes themselves are made durable every ``packs.SYNC_BYTES`` regardless."""
_CONFIG_SEPARATOR: Final = b"\nblake3 "


def is_local_repository(root: str) -> bool:
    """True if ``root`` holds a repository of this format (its config file is there)."""
    return os.path.exists(os.path.join(root, CONFIG_FILE))


def encode_config_file(config: bytes) -> bytes:
    """The config file: the config's bytes and their checksum."""
    return config + _CONFIG_SEPARATOR + blake3.blake3(config).hexdigest().encode() + b"\n"


def decode_config_file(data: bytes) -> bytes | None:
    """The config the file holds, or None if it fails its checksum."""
    config, separator, digest = data.rpartition(_CONFIG_SEPARATOR)
    if not separator or blake3.blake3(config).hexdigest().encode() + b"\n" != digest:
        return None
    return config


def write_file_durably(path: str, data: bytes) -> None:
    """Write ``path`` whole, by a rename, and make it and its directory entry durable."""
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(os.path.dirname(path) or ".")


class PackStore:
    """A Store over a repository directory: packs, an LMDB index, a ref log."""

    def __init__(self, root: str | os.PathLike[str], *, readonly: bool = False, sealer: Sealer | None = None) -> None:
        """Open the store of an existing repository (``sealer``: an encrypted one's keys).

        Raises:
            CorruptionError: the index is missing or damaged.
            RepositoryError: it cannot be opened.
        """
        self.root = os.fspath(root)
        self.index = LmdbIndex(self.root, readonly=readonly, sealer=sealer)
        self.sealer = sealer
        self.files = PackFiles(self.root, sealer)
        self.reflog = RefLog(os.path.join(self.root, REFLOG_FILE), sealer)
        self.readonly = readonly
        self._writer: PackWriter | None = None
        self._finished: list[PackWriter] = []
        """Packs closed at their target size whose last blobs the index does not name yet."""
        self._carried: list[ObjectId] = []
        """New blobs a batch left to the next one to index (``batch(index_later=True)``)."""
        self._pending: dict[ObjectId, tuple[PackWriter, int, BlobInfo]] = {}
        self._held: dict[ObjectId, tuple[bytes, bytes | bytearray | memoryview, BlobInfo]] = {}
        """Sealed blobs not in a pack yet (header, payload, info): see ``hold``."""
        self._held_bytes = 0
        self._batch_lock = threading.Lock()
        self._batch_owner: int | None = None
        self._names: dict[int, bytes] = {}
        self._closed = False

    @classmethod
    def create(
        cls, root: str | os.PathLike[str], config: bytes, *, write_config: bool = True, sealer: Sealer | None = None
    ) -> PackStore:
        """Make the store of a new repository in ``root``: index, ref log, then the config file.

        The config file is written last: until it is there, the directory
        is not a repository. ``write_config`` false leaves that to the
        caller (an upgrade writes it once everything else is durable).
        """
        root = os.fspath(root)
        try:
            LmdbIndex(root, create=True).close()
            RefLog(os.path.join(root, REFLOG_FILE), sealer).create()
            store = cls(root, sealer=sealer)
            with store.index.writing() as txn:
                txn.put(CONFIG_META_KEY, config, db=store.index.meta)
            if write_config:
                write_file_durably(os.path.join(root, CONFIG_FILE), encode_config_file(config))
        except OSError as exc:
            raise disk_error(f"cannot create the repository at {root}", exc) from exc
        return store

    def read_config(self) -> bytes:
        """The repository's config: the file, or where that is damaged, the index's copy.

        Raises:
            CorruptionError: neither copy can be read.
        """
        path = os.path.join(self.root, CONFIG_FILE)
        try:
            with open(path, "rb") as handle:
                config = decode_config_file(handle.read())
        except OSError:
            config = None
        if config is None:
            config = self.index.get(self.index.meta, CONFIG_META_KEY)
        if config is None:
            raise CorruptionError(f"the repository's config file {path} is damaged")
        return config

    # -- reads --------------------------------------------------------------------

    def _pack_name(self, pack_no: int) -> bytes:
        name = self._names.get(pack_no)
        if name is None:
            entry = self.index.pack_entries().get(pack_no)
            if entry is None:
                raise index_damaged(f"an entry names pack number {pack_no}, which the index does not know", self.root)
            name = self._names[pack_no] = entry.name
        return name

    def get(self, object_id: ObjectId) -> Record | None:
        """The record stored under ``object_id``, read from its pack, or None."""
        held = self._held.get(object_id)  # before _pending: ``write_held`` fills that before it empties this
        if held is not None:
            header, stored, info = held
            return blob_record(object_id, header + bytes(stored), info, "(not written yet)", self.sealer)
        pending = self._pending.get(object_id)
        if pending is not None:
            writer, offset, info = pending
            data = writer.read(offset, BLOB_HEADER.size + info.stored_bytes)
            return blob_record(object_id, data, info, pack_hex(writer.name), self.sealer)
        location = self.index.locate(object_id)
        if location is None:
            return None
        return self._read_at(object_id, location)

    def _read_at(self, object_id: ObjectId, location: Location, *, retry: bool = True) -> Record:
        name = self._pack_name(location.pack_no)
        try:
            data = self.files.read(name, location.offset, BLOB_HEADER.size + location.stored_bytes)
        except FileNotFoundError:
            again = self.index.locate(object_id) if retry else None
            if again is not None and again != location:  # gc moved it between the lookup and the read
                return self._read_at(object_id, again, retry=False)
            raise MissingObjectError(
                f"object {object_id.hex()[:16]} is missing: its pack {pack_hex(name)} is not there"
            ) from None
        except OSError as exc:
            raise DamagedObjectError(
                f"object {object_id.hex()[:16]} cannot be read from pack {pack_hex(name)}: {exc.strerror or exc}"
            ) from exc
        info = BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)
        return blob_record(object_id, data, info, pack_hex(name), self.sealer)

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        """Kind and lengths of a blob, from the index."""
        held = self._held.get(object_id)
        if held is not None:
            return held[2]
        pending = self._pending.get(object_id)
        if pending is not None:
            return pending[2]
        location = self.index.locate(object_id)
        return None if location is None else BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)

    def locate(self, object_id: ObjectId) -> tuple[str, int, int] | None:
        """(pack file, offset of the blob's header, header and payload length), or None.

        For tools that inspect or damage packs on purpose (tests).
        """
        location = self.index.locate(object_id)
        if location is None:
            return None
        name = self._pack_name(location.pack_no)
        return self.files.path(name), location.offset, BLOB_HEADER.size + location.stored_bytes

    def has(self, object_id: ObjectId) -> bool:
        """True if stored (or pending in this process's open batch)."""
        return (
            object_id in self._held
            or object_id in self._pending
            or self.index.get(self.index.blobs, object_id) is not None
        )

    @contextmanager
    def has_checker(self) -> Iterator[Callable[[ObjectId], bool]]:
        """``has`` over one read transaction."""
        held, pending = self._held, self._pending
        root = self.root
        with self.index.reading() as txn:
            get = txn.get
            blobs = self.index.blobs

            def has(object_id: ObjectId) -> bool:
                try:
                    return object_id in held or object_id in pending or get(object_id, db=blobs) is not None
                except lmdb.Error as exc:
                    raise index_damaged(str(exc), root) from exc

            yield has

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        """Every indexed blob starting with ``prefix``, in id order."""
        for object_id, location in self.index.iter_locations(prefix):
            yield object_id, BlobInfo(location.kind, location.stored_bytes, location.raw_bytes)

    def get_ref(self, name: bytes) -> bytes | None:
        """A ref's value."""
        return self.index.get_ref(name)

    def get_meta(self, key: bytes) -> bytes | None:
        """A metadata value."""
        return self.index.get(self.index.meta, key)

    # -- writes -------------------------------------------------------------------

    @contextmanager
    def batch(self, *, index_later: bool = False) -> Iterator[PackBatch]:
        """A write batch: durable and indexed when the block ends cleanly, its unindexed tail cut if not.

        With ``index_later``, a batch that only wrote new blobs leaves them to
        the next batch's index transaction (the change that references them),
        one transaction instead of two: every transaction makes LMDB copy the
        pages it touches. Until then they are only readable here, and a crash
        leaves them an unindexed pack tail.
        """
        if self.readonly:
            raise RepositoryError(f"the repository at {self.root} is open read-only")
        if self._batch_owner == threading.get_ident():
            raise RuntimeError("a write batch inside a write batch of the same thread")
        self._batch_lock.acquire()  # another thread's batch: wait for it
        self._batch_owner = threading.get_ident()
        try:
            batch = PackBatch(self)
            try:
                yield batch
            except BaseException:
                batch.abandon()
                raise
            if index_later and batch.only_new_blobs():
                self._carried = batch.hand_over()
            else:
                batch.commit()
        finally:
            self._batch_owner = None
            self._batch_lock.release()

    def writer(self) -> PackWriter:
        """This process's open pack (a new one if there is none)."""
        if self._writer is None:
            self._writer = self.files.create()
        return self._writer

    def rotate(self) -> None:
        """Close the open pack with its trailer (the store closes, or a batch failed)."""
        if self._writer is not None:
            self._writer.seal()
            self._writer = None

    def close_writer(self) -> None:
        """Close the open pack with its trailer, unless a batch is writing (then it stays open)."""
        if self._batch_lock.acquire(blocking=False):
            try:
                self.rotate()
            finally:
                self._batch_lock.release()

    def hold(self, object_id: ObjectId, header: bytes, stored: bytes | bytearray | memoryview, info: BlobInfo) -> None:
        """Keep a sealed blob back; write the held blobs, in a random order, once ``SHUFFLE_BYTES`` have gathered.

        Why (issue #15): blobs appended as they come would lie in a pack in
        the order of the files and chunks they hold, so whoever reads the
        pack would see each file's chunk sizes in sequence. Held back until
        ``SHUFFLE_BYTES`` have gathered, the open pack is full (it is then
        closed) or the batch indexes what it wrote (``write_held``), each run
        of blobs is written in an order that says nothing of theirs.
        """
        self._held[object_id] = (header, stored, info)
        self._held_bytes += len(header) + len(stored)
        open_size = PACK_HEADER.size if self._writer is None else self._writer.size
        if open_size + self._held_bytes >= PACK_TARGET_BYTES:
            self.write_held()
            self.finish_writer()
        elif self._held_bytes >= SHUFFLE_BYTES:
            self.write_held()

    def write_held(self) -> None:
        """Append the held blobs to the open pack in a random order (before anything indexes them).

        Each is in ``_pending`` before it leaves ``_held``, so a reader (who
        looks in ``_held`` first) finds it throughout.
        """
        if not self._held:
            return
        writer = self.writer()
        for object_id, (header, stored, info) in shuffled(list(self._held.items())):
            self._pending[object_id] = (writer, writer.append(header, stored), info)
        self.drop_held()

    def drop_held(self) -> None:
        """Forget the held blobs (written now, or their batch failed)."""
        self._held.clear()
        self._held_bytes = 0

    def finish_writer(self) -> None:
        """The open pack reached its target size: close it for appends; the next blob starts a new one."""
        if self._writer is not None:
            self._writer.finish()
            self._finished.append(self._writer)
            self._writer = None

    # -- maintenance --------------------------------------------------------------

    def scan(self) -> Iterator[ScannedRecord]:
        """Every indexed blob, read pack by pack, front to back."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.scan(self)

    def check_storage(self) -> Iterator[StorageProblem]:
        """Packs against the index, the ref log against the refs, the config file against its copy."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.check_storage(self)

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """Delete packs no blob lives in; rewrite those with at least ``dead_share`` dead bytes."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.reclaim(self, dead_share, dry_run=dry_run)

    def usage(self) -> StorageUsage:
        """Packs, live bytes, index and disk usage."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.usage(self)

    def verify_refs(self, first_parent: Callable[[bytes], bytes | None]) -> None:
        """Compare HEAD with the ref log (see reflog.py), holding the log's lock shared.

        Writers hold it from before their index transaction to after their
        append, so a ref moved by another process between the two reads is
        never taken for a lost transaction. A writable open completes a log
        that lags behind the index (a writer died between its index
        transaction and its append), as the next ref move would.

        Raises:
            CorruptionError: the index lost a move the log records, or they disagree.
        """
        fd = self.reflog.lock(shared=True)
        try:
            lagging = _verify_refs(self, first_parent)
        finally:
            if fd >= 0:
                os.close(fd)
        if lagging and not self.readonly:
            self._complete_log(lagging)

    def _complete_log(self, lagging: list[tuple[bytes, bytes]]) -> None:
        """Append the moves a dead writer left out of the log: (ref, where the log has it), under the append lock."""
        fd = self.reflog.lock()
        if fd < 0:
            return
        try:
            last = self.reflog.last_moves()
            for name, logged in lagging:
                current = self.get_ref(name)
                move = last.get(name)
                if move is not None and move.new == logged and current is not None and current != logged:
                    self.reflog.append(name, logged, current, time.time_ns())
        except OSError:
            pass  # a full disk: the log still lags, which is harmless, and the next writer tries again
        finally:
            os.close(fd)

    def compact_index(self) -> tuple[int, int]:
        """Rewrite the index in full pages, without free ones (needs the repository to itself); (before, after)."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.compact_index(self)

    def index_bloat(self) -> float:
        """The index file's size over what its entries need in full pages."""
        from zerofs.store import maintenance  # not on the start-up path of cat and ls

        return maintenance.index_bloat(self)

    def close(self) -> None:
        """Close the open pack with its trailer, then the index (blobs no batch indexed are cut off)."""
        if self._closed:
            return
        self._closed = True
        if self._carried:  # contents no change came to reference
            PackBatch(self).abandon(keep_carried=False)
        self.rotate()
        self.files.close()
        self.index.close()


def _verify_refs(store: PackStore, first_parent: Callable[[bytes], bytes | None]) -> list[tuple[bytes, bytes]]:
    """Refuse an index that lost a ref move the log records (see reflog.py); return the refs the log lags on.

    Each lagging ref comes with the value the log has for it.

    A damaged last record is a move the log cannot tell: if the index is
    exactly where the log was before it, the index may have lost that move,
    and that is refused too. (Where the index is ahead, the damaged record
    is the move it made: a flipped bit, or an append a crash cut.)

    Raises:
        CorruptionError: with the hint to rebuild the index.
    """
    last = store.reflog.last_moves()
    lagging: list[tuple[bytes, bytes]] = []
    if store.reflog.has_damaged_end() and all(store.get_ref(name) == move.new for name, move in last.items()):
        raise CorruptionError(
            f"the last record of the ref log of the repository at {store.root} is damaged, and the index is where "
            "the log was before it: the index may have lost that move",
            hint=Hint.REBUILD_INDEX,
        )
    for name, move in last.items():
        current = store.get_ref(name)
        if current == move.new:
            continue
        if current is not None and current != move.old and _descends(current, move.new, name, first_parent):
            lagging.append((name, move.new))  # the log lags behind the index: harmless, completed by a writer
            continue
        raise CorruptionError(
            f"the index of the repository at {store.root} has {name.decode()} at "
            f"{current.hex()[:12] if current else 'nothing'} but its ref log says {move.new.hex()[:12]}: "
            "the index lost a transaction",
            hint=Hint.REBUILD_INDEX,
        )
    return lagging


def _descends(current: bytes, ancestor: bytes, name: bytes, first_parent: Callable[[bytes], bytes | None]) -> bool:
    if name != LOGGED_REFS[0]:
        return True  # a graft table has no history to walk; only a rollback (back to ``old``) is refused
    commit_id: bytes | None = current
    for _ in range(MAX_LAG_COMMITS):
        try:
            commit_id = first_parent(commit_id)  # type: ignore[arg-type]
        except CorruptionError:
            return False
        if commit_id is None:
            return False
        if commit_id == ancestor:
            return True
    return False


LOGGED_REFS: Final = (b"HEAD", b"GRAFTS")


def _log_moves(store: PackStore, moves: list[tuple[bytes, bytes | None, bytes]]) -> None:
    """Append the moves just committed to the ref log (the caller holds its lock).

    A failed append (a full disk) is left: the index already has the moves,
    a log that lags behind the index is harmless (reflog.py), and the next
    append of the same ref first records the moves the log missed.
    """
    now_ns = time.time_ns()
    with contextlib.suppress(OSError):
        for name, old, new in moves:
            store.reflog.append(name, old, new, now_ns)


def blob_record(object_id: ObjectId, data: bytes, info: BlobInfo, pack: str, sealer: Sealer | None = None) -> Record:
    """The record in a blob's bytes, if its header is what the index says (opened, with a ``sealer``).

    Raises:
        DamagedObjectError: a short read or a header that disagrees (a damaged pack or index).
        AuthenticationError: a sealed blob that does not open (a ``DamagedObjectError`` too).
    """
    if sealer is not None:
        return _sealed_record(object_id, data, info, pack, sealer)
    header = parse_blob_header(data)
    if (
        header is None
        or len(data) != BLOB_HEADER.size + info.stored_bytes
        or header.object_id != object_id
        or header.kind is not info.kind
        or header.stored_bytes != info.stored_bytes
        or header.raw_bytes != info.raw_bytes
    ):
        raise DamagedObjectError(
            f"object {object_id.hex()[:16]} does not match its hash: damaged on disk "
            f"(its header in pack {pack} is not what the index says)"
        )
    return Record(header.kind, header.codec, header.raw_bytes, memoryview(data)[BLOB_HEADER.size :])


def _sealed_record(object_id: ObjectId, data: bytes, info: BlobInfo, pack: str, sealer: Sealer) -> Record:
    """A sealed blob's record, opened as the kind the index gives, if it is what the index says."""
    parsed = parse_sealed_blob_header(data)
    if parsed is None or len(data) != BLOB_HEADER.size + info.stored_bytes or parsed != (object_id, info.stored_bytes):
        raise DamagedObjectError(
            f"object {object_id.hex()[:16]} does not match its hash: damaged on disk "
            f"(its header in pack {pack} is not what the index says)"
        )
    record = sealer.open_record(object_id, memoryview(data)[BLOB_HEADER.size :], info.kind)
    if record.raw_bytes != info.raw_bytes:
        raise DamagedObjectError(
            f"object {object_id.hex()[:16]} does not match its hash: its length in pack {pack} is not the index's"
        )
    return record


class PackBatch:
    """Writes through the open pack, indexed in one transaction per flush.

    New blobs are appended at once; refs, metadata and deletions wait for
    the last transaction. A batch whose compare-and-swap
    fails there keeps only its new blobs (harmless: nothing names them),
    never its deletions, metadata or refs.
    """

    def __init__(self, store: PackStore) -> None:
        self.store = store
        self._new: list[ObjectId] = store._carried
        self._has_carried = bool(store._carried)
        """This batch indexes blobs an earlier batch wrote (``index_later``)."""
        store._carried = []
        self._new_bytes = 0
        self._started = time.monotonic()
        self._refs: RefMoves = []
        self._meta: dict[bytes, bytes] = {}
        self._deleted: list[ObjectId] = []
        self._reader: lmdb.Transaction[bytes] | None = None
        """One read snapshot for the batch's checks, renewed at each flush: a transaction per check
        cost more than the check. A blob another process stores meanwhile is missed at worst, and
        then written again as a dead copy (``_index_new``)."""

    def has(self, object_id: ObjectId) -> bool:
        """True if stored (as of this batch's snapshot), or written in a batch of this process."""
        if object_id in self.store._held or object_id in self.store._pending:
            return True
        if self._reader is None:
            self._reader = self.store.index.env.begin()
        try:
            return self._reader.get(object_id, db=self.store.index.blobs) is not None
        except lmdb.Error as exc:
            raise index_damaged(str(exc), self.store.root) from exc

    def _renew_reader(self) -> None:
        if self._reader is not None:
            self._reader.abort()
            self._reader = None

    def put(self, object_id: ObjectId, record: Record) -> bool:
        """Append a record unless the id is stored; True if new."""
        store = self.store
        if self.has(object_id):
            return False
        header, stored = stored_blob(object_id, record, store.sealer)
        info = BlobInfo(record.kind, len(stored), record.raw_bytes)
        if store.sealer is not None:
            store.hold(object_id, header, stored, info)
        else:
            writer = store.writer()
            store._pending[object_id] = (writer, writer.append(header, stored), info)
            if writer.size >= PACK_TARGET_BYTES:
                store.finish_writer()
        self._new.append(object_id)
        self._new_bytes += BLOB_HEADER.size + len(stored)
        if (
            self._new_bytes >= FLUSH_BYTES
            or len(self._new) >= FLUSH_BLOBS
            or time.monotonic() - self._started >= FLUSH_SECONDS
        ):
            self.flush()
        return True

    def get_ref(self, name: bytes) -> bytes | None:
        """The ref as this batch will leave it."""
        moved = moved_to(self._refs, name)
        if moved is not None:
            return moved
        return self.store.get_ref(name)

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Move a ref at the end of the batch if it is still ``expected``; False if it is already not."""
        return add_move(self._refs, name, expected, new, self.get_ref(name))

    def delete(self, object_id: ObjectId) -> bool:
        """Forget a blob at the end of the batch; True if it is indexed."""
        if self.store.index.locate(object_id) is None:
            return False
        self._deleted.append(object_id)
        return True

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a metadata value at the end of the batch."""
        self._meta[key] = value

    def flush(self) -> None:
        """Make the blobs written so far durable and indexed; continue the batch."""
        self._index(final=False)
        self._new_bytes = 0
        self._started = time.monotonic()

    def only_new_blobs(self) -> bool:
        """True if the batch wrote blobs and nothing else (no ref, metadata or deletion to commit)."""
        return not (self._refs or self._meta or self._deleted)

    def hand_over(self) -> list[ObjectId]:
        """Give up this batch's unindexed blobs, for the next batch to index."""
        self._renew_reader()
        new, self._new = self._new, []
        return new

    def commit(self) -> None:
        """The last transaction: blobs, then (if every compare-and-swap holds) the rest.

        Raises:
            RefMovedError: a ref moved since ``cas_ref``; only the blobs were kept.
        """
        if not (self._new or self._refs or self._meta or self._deleted):
            self._renew_reader()
            return
        self._index(final=True)

    def abandon(self, *, keep_carried: bool = True) -> None:
        """The batch failed: forget and cut off what it appended and did not index.

        A batch that took over an earlier batch's blobs indexes them instead
        (unless not ``keep_carried``): the change that failed (a ref that
        moved) is tried again, and its next attempt references them as stored.
        """
        self._renew_reader()
        if keep_carried and self._has_carried and self._new:
            with contextlib.suppress(ZerofsError):  # a full disk, say: then they are cut off with the rest
                self._index(final=False)
                return
        store = self.store
        for object_id in self._new:
            store._pending.pop(object_id, None)
        store.drop_held()  # every held blob is one of self._new (carried ones included)
        self._new = []
        for writer in store._finished:
            if not writer.has_indexed_blobs:  # nothing of it is named: it goes (we still hold its lock)
                with contextlib.suppress(OSError):
                    os.unlink(store.files.path(writer.name))
            writer.release()
        store._finished = []
        if store._writer is not None:
            store._writer.discard_unindexed()

    def _index(self, *, final: bool) -> None:
        self._renew_reader()
        store = self.store
        if self._new:
            store.write_held()  # the index names only bytes on disk
        index = store.index
        writer = store._writer
        if self._new and writer is not None:
            writer.sync()  # finished packs were made durable when they were finished
        if self._new:
            make_names_durable([*store._finished, *([writer] if writer is not None else [])])
        moves: list[tuple[bytes, bytes | None, bytes]] = []
        ref_lock = store.reflog.lock() if final and self._refs else -1
        try:
            with index.writing() as txn:
                if self._new:
                    self._index_new(txn)
                is_clean = all(index.read_ref(name, txn.get(name, db=index.refs)) == old for name, old, _ in self._refs)
                if final and is_clean:
                    self._apply_rest(txn)
                    for name, old, new in self._refs:
                        txn.put(name, index.ref_value(name, new), db=index.refs)
                        moves.append((name, old, new))
            for object_id in self._new:  # readers now find them through the index
                store._pending.pop(object_id, None)
            self._new = []
            for finished in store._finished:
                finished.indexed_size = finished.size
                finished.release()
            store._finished = []
            if writer is not None:
                writer.indexed_size = writer.synced_size
            if final and not is_clean:
                raise RefMovedError(f"a ref of the repository at {store.root} moved during the change")
            if moves:
                _log_moves(store, moves)
        finally:
            if ref_lock >= 0:
                os.close(ref_lock)

    def _index_new(self, txn: lmdb.Transaction[bytes]) -> None:
        """Index this batch's new blobs, in id order (it fills LMDB's pages better), and count them per pack."""
        index = self.store.index
        pending = self.store._pending
        added: dict[int, tuple[int, int]] = {}
        for object_id in sorted(self._new):
            writer, offset, info = pending[object_id]
            if writer.pack_no is None:
                writer.pack_no = index.new_pack_no(txn, writer.name)
            if txn.get(object_id, db=index.blobs) is not None:
                continue  # another process stored it meanwhile: ours is a dead copy
            location = Location(writer.pack_no, offset, info.stored_bytes, info.raw_bytes, info.kind)
            txn.put(object_id, index.location_value(object_id, location), db=index.blobs)
            size, count = added.get(writer.pack_no, (0, 0))
            added[writer.pack_no] = (size + BLOB_HEADER.size + info.stored_bytes, count + 1)
        for pack_no, (size, count) in added.items():
            index.adjust_pack(txn, pack_no, size, count)

    def _apply_rest(self, txn: lmdb.Transaction[bytes]) -> None:
        index = self.store.index
        for key, value in self._meta.items():
            txn.put(key, value, db=index.meta)
        freed: dict[int, tuple[int, int]] = {}
        for object_id in self._deleted:
            raw = txn.get(object_id, db=index.blobs)
            if raw is None:
                continue
            location = self.store.index.read_location(object_id, raw)
            txn.delete(object_id, db=index.blobs)
            size, count = freed.get(location.pack_no, (0, 0))
            freed[location.pack_no] = (size + BLOB_HEADER.size + location.stored_bytes, count + 1)
        for pack_no, (size, count) in freed.items():
            index.adjust_pack(txn, pack_no, -size, -count)
