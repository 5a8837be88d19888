"""The LMDB index of a local repository: where every blob is, and the small mutable state.

One environment, ``index.mdb`` (and ``index.mdb-lock``), with named databases:

- ``blobs``: object id -> location (pack number, offset of the blob header,
  stored and raw length, kind): 17 bytes;
- ``packs``: pack number (big-endian u32) -> pack name and the bytes and
  count of the blobs the index places in it (what gc weighs packs by);
- ``refs``: HEAD and GRAFTS; ``meta``: the config copy and counters.

An encrypted repository's index (``LmdbIndex(..., sealer=)``) seals each
``blobs`` value whole with the metadata key and ``location_ad(id)`` (62
bytes), and each ``refs`` value with ``index_ref_ad(name)``, so the file
shows neither a blob's kind nor its lengths nor HEAD, and a value moved to
another id or ref does not open (reported as damage to the index). The keys
(object ids, keyed in such a repository; ref names), the ``packs`` table
(random pack names and live byte counts, which the pack files show anyway)
and ``meta`` (the config copy and the pack counter) stay plain.

The importer's host-file cache is not here: it describes this host's files,
so it lives with the user's caches (``filecache.py``).

LMDB serialises write transactions across processes, so a ref's
compare-and-swap is a read and a write inside one of them. The map is
reserved in address space only (no ``writemap``): the file grows with the
pages in use, and a full disk is an error from the commit, with the
transaction rolled back.

LMDB checks nothing on its own pages, so opening compares the file's length
with the last page its meta page names (a truncated index would be a SIGBUS
on first touch), and every LMDB error is reported as damage to the index,
which fsck can rebuild from the packs.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, NamedTuple

import lmdb

from zerofs.errors import CorruptionError, DamagedObjectError, DiskFullError, Hint, RepositoryError
from zerofs.objects import Kind, ObjectId

if TYPE_CHECKING:  # the sealer only when encrypted (it imports the crypto)
    from zerofs.store.sealer import Sealer

INDEX_FILE: Final = "index.mdb"
MAP_BYTES: Final = 1 << 40
PAGE_BYTES: Final = 4096
"""LMDB's page: two meta pages start every environment."""
"""Address space only: without writemap the file holds just the pages in use."""
LOCATION: Final = struct.Struct("<IIIIB")
PACK_ENTRY: Final = struct.Struct("<16sQI")
PACK_KEY: Final = struct.Struct(">I")
NEXT_PACK_KEY: Final = b"next-pack"
DATABASES: Final = (b"blobs", b"packs", b"refs", b"meta")


class Location(NamedTuple):
    """Where a blob is: its pack, the offset of its header, its lengths and kind."""

    pack_no: int
    offset: int
    stored_bytes: int
    raw_bytes: int
    kind: Kind


class PackEntry(NamedTuple):
    """A pack the index knows: its name, and what of it the index still places there."""

    pack_no: int
    name: bytes
    live_bytes: int
    """Header and payload bytes of the blobs the index places in this pack."""
    live_count: int


def encode_location(location: Location) -> bytes:
    """The stored form of a location."""
    return LOCATION.pack(location.pack_no, location.offset, location.stored_bytes, location.raw_bytes, location.kind)


def decode_location(raw: bytes, root: str = "") -> Location:
    """Decode a location.

    Raises:
        CorruptionError: it is not one (a damaged index).
    """
    try:
        pack_no, offset, stored, raw_bytes, kind = LOCATION.unpack(raw)
        return Location(pack_no, offset, stored, raw_bytes, Kind(kind))
    except (struct.error, ValueError) as exc:
        raise index_damaged(f"an index entry is not a location ({exc})", root) from exc


def index_damaged(detail: str, root: str = "") -> CorruptionError:
    """The error for an index that cannot be trusted (``root``: the repository, to name it)."""
    where = f" of the repository at {root}" if root else ""
    return CorruptionError(f"the index{where} is damaged: {detail}", hint=Hint.REBUILD_INDEX)


class LmdbIndex:
    """The LMDB environment of one repository."""

    def __init__(
        self,
        root: str,
        *,
        create: bool = False,
        readonly: bool = False,
        file_name: str = INDEX_FILE,
        extra_databases: tuple[bytes, ...] = (),
        sync: bool = True,
        sealer: Sealer | None = None,
    ) -> None:
        """Open (or with ``create``, make) ``root/index.mdb``.

        ``extra_databases``: more named databases, in ``self.extra`` (an S3
        repository's host cache keeps records there). ``sync`` false: commits
        are not flushed to disk (a cache that can be rebuilt). ``sealer``: an
        encrypted repository's, its blob locations and refs sealed.

        Raises:
            CorruptionError: the index is missing, truncated or not an LMDB file.
            RepositoryError: it cannot be opened for another reason.
        """
        self.root = root
        self.sealer = sealer
        self.path = os.path.join(root, file_name)
        if not create:
            try:
                size = os.stat(self.path).st_size
            except FileNotFoundError:
                raise CorruptionError(
                    f"the index of the repository at {root} is missing", hint=Hint.REBUILD_INDEX
                ) from None
            if size < 2 * PAGE_BYTES:  # LMDB would make a new, empty environment of it
                raise index_damaged(f"{file_name} is truncated ({size} bytes)", root)
        try:
            self.env = lmdb.open(
                self.path,
                subdir=False,
                map_size=MAP_BYTES,
                max_dbs=len(DATABASES) + len(extra_databases),
                readonly=readonly,
                create=create,
                max_readers=1024,
                readahead=False,
                # Fresh pages are written from malloc'd memory; unzeroed, they carry whatever the process
                # freed (file contents, names) into index.mdb. Harmless in a plain repository, a leak in an
                # encrypted one (found by test_no_content_or_name_reaches_the_disk_in_the_clear).
                meminit=sealer is not None,
                lock=True,
                sync=sync,
            )
        except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError, lmdb.PageNotFoundError) as exc:
            raise index_damaged(str(exc).removeprefix(f"{self.path}: "), root) from exc
        except lmdb.Error as exc:
            raise store_error(f"cannot open the index {self.path}", exc) from exc
        self.readonly = readonly
        try:
            self._check_length()
            self.blobs, self.packs, self.refs, self.meta = (
                self.env.open_db(name, create=create and not readonly) for name in DATABASES
            )
            self.extra = {name: self.env.open_db(name, create=create and not readonly) for name in extra_databases}
        except lmdb.Error as exc:
            self.env.close()
            raise index_damaged(str(exc), root) from exc
        except CorruptionError:
            self.env.close()
            raise

    def _check_length(self) -> None:
        """Refuse an index file shorter than its last page: LMDB would touch pages past its end (SIGBUS)."""
        info = self.env.info()
        needed = (info["last_pgno"] + 1) * self.env.stat()["psize"]
        size = os.stat(self.path).st_size
        if size < needed:
            raise index_damaged(f"{INDEX_FILE} is truncated ({size} bytes, its pages need {needed})", self.root)

    def close(self) -> None:
        """Close the environment."""
        self.env.close()

    # -- reads ----------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[lmdb.Transaction[bytes]]:
        """A read transaction; LMDB errors in it are reported as damage to the index."""
        try:
            with self.env.begin() as txn:
                yield txn
        except lmdb.Error as exc:
            raise index_damaged(str(exc), self.root) from exc

    def get(self, db: lmdb._Database, key: bytes) -> bytes | None:
        """One value, in a read transaction of its own."""
        try:
            with self.env.begin(db=db) as txn:
                return txn.get(key)
        except lmdb.Error as exc:
            raise index_damaged(str(exc), self.root) from exc

    def locate(self, object_id: ObjectId) -> Location | None:
        """Where a blob is, or None."""
        raw = self.get(self.blobs, object_id)
        if raw is None:
            return None
        return decode_location(raw, self.root) if self.sealer is None else self.read_location(object_id, raw)

    def read_location(self, object_id: ObjectId, raw: bytes) -> Location:
        """The location a ``blobs`` value of ``object_id`` holds (opened, in an encrypted index).

        Raises:
            CorruptionError: it is not one, or does not open for this id (a damaged index).
        """
        if self.sealer is None:
            return decode_location(raw, self.root)
        try:
            plain = self.sealer.open_location(object_id, raw)
        except DamagedObjectError as exc:
            raise index_damaged(f"the entry of {object_id.hex()[:16]} does not open ({exc})", self.root) from exc
        return decode_location(plain, self.root)

    def location_value(self, object_id: ObjectId, location: Location) -> bytes:
        """The ``blobs`` value that stores ``location`` for ``object_id`` (sealed, in an encrypted index)."""
        plain = encode_location(location)
        return plain if self.sealer is None else self.sealer.seal_location(object_id, plain)

    def read_ref(self, name: bytes, raw: bytes | None) -> bytes | None:
        """The value a ``refs`` value of ``name`` holds (opened, in an encrypted index).

        Raises:
            CorruptionError: it does not open for this ref (a damaged index).
        """
        if raw is None or self.sealer is None:
            return raw
        try:
            return self.sealer.open_ref(name, raw)
        except DamagedObjectError as exc:
            raise index_damaged(f"the value of {name.decode()} does not open ({exc})", self.root) from exc

    def ref_value(self, name: bytes, value: bytes) -> bytes:
        """The ``refs`` value that stores ``value`` for ``name`` (sealed, in an encrypted index)."""
        return value if self.sealer is None else self.sealer.seal_ref(name, value)

    def get_ref(self, name: bytes) -> bytes | None:
        """A ref's value, or None."""
        return self.read_ref(name, self.get(self.refs, name))

    def pack_entries(self, txn: lmdb.Transaction[bytes] | None = None) -> dict[int, PackEntry]:
        """Every pack the index knows, by number."""
        if txn is None:
            with self.reading() as own:
                return self.pack_entries(own)
        found = {}
        for key, value in txn.cursor(db=self.packs):
            (pack_no,) = PACK_KEY.unpack(key)
            name, live_bytes, live_count = PACK_ENTRY.unpack(value)
            found[pack_no] = PackEntry(pack_no, name, live_bytes, live_count)
        return found

    def iter_locations(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, Location]]:
        """Every (id, location) whose id starts with ``prefix``, in id order, over one snapshot."""
        with self.reading() as txn:
            cursor = txn.cursor(db=self.blobs)
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    return
                yield key, self.read_location(key, value)

    def file_bytes(self) -> int:
        """The length of the index file."""
        return os.stat(self.path).st_size

    def used_bytes(self) -> int:
        """Bytes of the index file in pages LMDB uses (the rest is free pages it will reuse)."""
        return int((self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"])

    # -- writes ---------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[lmdb.Transaction[bytes]]:
        """A write transaction, committed if the block ends without error.

        Raises:
            DiskFullError: no room to commit it (nothing of it is kept).
            RepositoryError: the index is read-only or the commit failed.
        """
        if self.readonly:
            raise RepositoryError(f"the repository at {os.path.dirname(self.path)} is open read-only")
        try:
            txn = self.env.begin(write=True)
        except lmdb.Error as exc:
            raise store_error("cannot write to the repository's index", exc) from exc
        try:
            yield txn
        except lmdb.MapFullError as exc:
            txn.abort()
            raise store_error("cannot write to the repository's index", exc) from exc
        except lmdb.Error as exc:  # a put or get met a page LMDB cannot use: the index is damaged
            txn.abort()
            raise index_damaged(str(exc), self.root) from exc
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except lmdb.Error as exc:
            raise store_error(f"cannot commit to the repository's index {self.path}", exc) from exc
        self._cover_last_page()

    def _cover_last_page(self) -> None:
        """Extend the file with zeros to the end of its last page, if a commit left it shorter.

        LMDB counts in its last page number pages a transaction allocated and
        freed again without writing them ("loose" pages), so a commit can
        leave the file shorter than ``_check_length`` accepts: the next open
        would report a truncated index. The pages past the end are free (LMDB
        writes them when it uses them), so zeros are what they hold.
        """
        needed = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        with contextlib.suppress(OSError):  # a full disk: the next open reports it, and nothing is lost
            if os.stat(self.path).st_size < needed:
                os.truncate(self.path, needed)

    def new_pack_no(self, txn: lmdb.Transaction[bytes], name: bytes) -> int:
        """Give a new pack its number (in ``txn``) and register it with nothing in it yet.

        The number is past both the counter and the highest number in use, so
        a damaged counter can never make two packs share one.
        """
        raw = txn.get(NEXT_PACK_KEY, db=self.meta)
        counted = int.from_bytes(raw, "big") if raw else 1
        cursor = txn.cursor(db=self.packs)
        highest = PACK_KEY.unpack(cursor.key())[0] if cursor.last() else 0
        pack_no = max(counted, highest + 1)
        txn.put(NEXT_PACK_KEY, (pack_no + 1).to_bytes(4, "big"), db=self.meta)
        txn.put(PACK_KEY.pack(pack_no), PACK_ENTRY.pack(name, 0, 0), db=self.packs, overwrite=False)
        return pack_no

    def adjust_pack(self, txn: lmdb.Transaction[bytes], pack_no: int, delta_bytes: int, delta_count: int) -> None:
        """Add to (or take from) what the index places in a pack."""
        key = PACK_KEY.pack(pack_no)
        raw = txn.get(key, db=self.packs)
        if raw is None:
            raise index_damaged(f"an entry names pack number {pack_no}, which the index does not know", self.root)
        name, live_bytes, live_count = PACK_ENTRY.unpack(raw)
        txn.put(
            key,
            PACK_ENTRY.pack(name, max(0, live_bytes + delta_bytes), max(0, live_count + delta_count)),
            db=self.packs,
        )

    def drop_pack(self, txn: lmdb.Transaction[bytes], pack_no: int) -> None:
        """Forget a pack (gc deleted it)."""
        txn.delete(PACK_KEY.pack(pack_no), db=self.packs)


def store_error(what: str, exc: lmdb.Error) -> RepositoryError:
    """A repository error for an LMDB failure: disk full (exit 5, one line) or another."""
    text = str(exc)
    if "No space left" in text or "ENOSPC" in text or "Disk quota" in text or isinstance(exc, lmdb.MapFullError):
        return DiskFullError(f"disk full: {what}; free some space and retry")
    return RepositoryError(f"{what}: {text}")
