"""The embedded default backend: one LMDB environment per repository.

Layout: named databases ``objects`` (id -> record), ``refs``, ``meta`` and
``files`` (the importer's host-file cache). LMDB gives us atomic,
serialised write transactions across processes, so a ref's
compare-and-swap is a read and a write inside one write transaction.

We open with ``writemap`` (about twice the import throughput of the copy
path here, see MEASUREMENTS.md). With a writable map, a write into a hole of
a sparse file on a full disk is a SIGBUS, not an error; so the map is grown
by this module only, and every byte of it is reserved with
``posix_fallocate`` *before* LMDB may touch it: a full disk surfaces as
ENOSPC from fallocate, between transactions, and the repository stays as it
was. The map grows in steps as data arrives, so there is no fixed limit.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Final

import lmdb

from zerofs.errors import ConflictError, DiskFullError, RepositoryError
from zerofs.objects import ObjectId

DATA_FILE: Final = "data.mdb"
OPEN_LOCK: Final = "open.lock"
WRITERS_LOCK: Final = "writers.lock"
GROW_LOCK: Final = "grow.lock"
MIN_MAP_BYTES: Final = 16 << 20
MIN_ROOM_BYTES: Final = 64 << 20
"""A write transaction starts with this much room in the map, once the data is that big."""
SMALL_ROOM_BYTES: Final = 8 << 20
_PAGE_BYTES: Final = 4096
MAP_MARGIN_BYTES: Final = 8 << 20
"""Room kept free in the map for LMDB's own copied-on-write branch pages."""
FLUSH_BYTES: Final = 256 << 20
"""A batch commits (durably) after about this many bytes, bounding each transaction."""
FLUSH_SECONDS: Final = 2.0
"""...or after this long, so concurrent writers never wait long for LMDB's lock."""


def _estimated_bytes(record_bytes: int) -> int:
    """Upper bound of the new map bytes one record needs (overflow pages, half-full leaves).

    The copy-on-write of existing tree pages a put dirties is counted
    separately, in ``LmdbBatch``: at most one page per put, and never more
    than the whole tree as it was when the transaction began.
    """
    return record_bytes + _PAGE_BYTES if record_bytes > 2000 else 2 * record_bytes + 64


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class LmdbStore:
    """An ObjectStore over one LMDB environment directory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        readonly: bool = False,
        writer_lease: bool = True,
        readahead: bool = False,
    ) -> None:
        """Open (or with ``create``, make) the environment at ``path``.

        Every handle holds a shared lock on ``open.lock`` (so ``compact`` can
        know nobody else has the repository open), and a writable one also on
        ``writers.lock`` for as long as it is open, unless ``writer_lease`` is
        false (gc, which takes it exclusively instead; see services/gc.py).
        ``readahead`` lets the kernel read ahead in the file: off for the
        short random reads of commands, on for a mount's long sequential ones.

        Raises:
            RepositoryError: there is no environment at ``path`` (and not
                ``create``), or it cannot be opened.
            DiskFullError: no room to create it.
        """
        self.path = path = os.fspath(path)
        data_file = os.path.join(path, DATA_FILE)
        if not create and not os.path.exists(data_file):
            raise RepositoryError(f"no zerofs repository at {path}")
        initial = max(MIN_MAP_BYTES, os.stat(data_file).st_size if os.path.exists(data_file) else 0)
        try:
            self._env = lmdb.open(
                path,
                map_size=initial,
                max_dbs=8,
                writemap=not readonly,
                readonly=readonly,
                create=create,
                max_readers=1024,
                readahead=readahead,
                lock=True,
                meminit=False,
            )
        except lmdb.Error as exc:
            raise _store_error(f"cannot open repository at {path}", exc, path) from exc
        self._readonly = readonly
        self._closed = False
        self._open_lock = _lock_file(os.path.join(path, OPEN_LOCK), fcntl.LOCK_SH)
        self._writers_lock = (
            _lock_file(os.path.join(path, WRITERS_LOCK), fcntl.LOCK_SH) if writer_lease and not readonly else -1
        )
        self._data_fd = os.open(data_file, os.O_RDONLY if readonly else os.O_RDWR)
        self._map_bytes = initial
        if create:
            self._reserve(initial)
        create_dbs = not readonly
        try:
            self._objects = self._env.open_db(b"objects", create=create_dbs)
            self._refs = self._env.open_db(b"refs", create=create_dbs)
            self._meta = self._env.open_db(b"meta", create=create_dbs)
            self._files = self._env.open_db(b"files", create=create_dbs)
        except lmdb.Error as exc:
            raise _store_error(f"repository at {path} is damaged or incomplete", exc, path) from exc

    # -- map management ---------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the data file in LMDB pages in use (the rest is free room in the map)."""
        return self._used_bytes()

    def _used_bytes(self) -> int:
        info = self._env.info()
        return int((info["last_pgno"] + 1) * self._env.stat()["psize"])

    def _reserve(self, size_bytes: int) -> None:
        """Allocate the data file up to ``size_bytes`` so no page of the map is a hole.

        Checks the free space first, and undoes a failed fallocate's growth of
        the file: a file longer than what is allocated would let LMDB map
        holes (a SIGBUS on write) and other processes adopt a bad size.
        """
        # Growers take turns, so undoing a failed growth can never cut another's.
        grow_lock = _lock_file(os.path.join(self.path, GROW_LOCK), fcntl.LOCK_EX)
        try:
            self._reserve_locked(size_bytes)
        finally:
            if grow_lock >= 0:
                os.close(grow_lock)

    def _reserve_locked(self, size_bytes: int) -> None:
        before = os.fstat(self._data_fd)
        if size_bytes > before.st_size:
            vfs = os.fstatvfs(self._data_fd)
            needed = size_bytes - before.st_blocks * 512
            if needed > vfs.f_bavail * vfs.f_frsize:
                raise self._disk_full(size_bytes)
        try:
            os.posix_fallocate(self._data_fd, 0, size_bytes)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                if os.fstat(self._data_fd).st_size > before.st_size:
                    os.ftruncate(self._data_fd, before.st_size)
                raise self._disk_full(size_bytes) from exc
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
        if size_bytes > self._map_bytes:
            self._env.set_mapsize(size_bytes)
            self._map_bytes = size_bytes

    def _disk_full(self, size_bytes: int) -> DiskFullError:
        return DiskFullError(
            f"disk full: no room to grow the repository at {self.path} "
            f"to {size_bytes >> 20} MiB; free some space and retry"
        )

    def _adopt_file_size(self) -> None:
        """Follow a map that another process grew."""
        size = os.fstat(self._data_fd).st_size
        if size > self._map_bytes:
            self._env.set_mapsize(size)
            self._map_bytes = size

    def _begin_write(self, incoming_bytes: int) -> tuple[lmdb.Transaction[bytes], int, int]:
        """Begin a write transaction with room for at least ``incoming_bytes``.

        Returns the transaction, the bytes it may write before the map must
        grow (which happens only between transactions), and the size of the
        trees it may copy on write.
        """
        if self._readonly:
            raise RepositoryError(f"repository at {self.path} is open read-only")
        while True:
            self._adopt_file_size()
            used = self._used_bytes()
            # Room in proportion to the data, up to MIN_ROOM_BYTES: an empty repository
            # stays a few MiB on disk, a big import still commits in large steps.
            wanted = max(incoming_bytes, min(MIN_ROOM_BYTES, max(SMALL_ROOM_BYTES, used)))
            if used + wanted + MAP_MARGIN_BYTES > self._map_bytes:
                step = max(SMALL_ROOM_BYTES, used // 4, 2 * wanted)
                try:
                    self._reserve(_round_up(used + step + MAP_MARGIN_BYTES, 1 << 20))
                except DiskFullError:
                    # Generous steps are for speed only: on a nearly full disk, take
                    # the least that lets this transaction start (or fail cleanly).
                    self._reserve(_round_up(used + incoming_bytes + MAP_MARGIN_BYTES, 1 << 20))
            try:
                txn = self._env.begin(write=True)
            except lmdb.MapResizedError:
                continue
            # Measure again inside the transaction, where no other writer can add data.
            room = self._map_bytes - self._used_bytes() - MAP_MARGIN_BYTES
            if room >= incoming_bytes:
                return txn, room, self._tree_bytes(txn)
            txn.abort()

    def _tree_bytes(self, txn: lmdb.Transaction[bytes]) -> int:
        """Bytes of every page a transaction could copy on write."""
        total = 0
        for db in (self._objects, self._refs, self._meta, self._files):
            stat = txn.stat(db)
            total += (stat["branch_pages"] + stat["leaf_pages"] + 2) * stat["psize"]
        return total

    # -- reads ------------------------------------------------------------

    def _read(self, db: lmdb._Database, key: bytes) -> bytes | None:
        try:
            with self._env.begin(db=db) as txn:
                return txn.get(key)
        except lmdb.MapResizedError:
            self._adopt_file_size()
            return self._read(db, key)

    def get(self, object_id: ObjectId) -> bytes | None:
        """Return the stored record, or None."""
        return self._read(self._objects, object_id)

    def has(self, object_id: ObjectId) -> bool:
        """True if a record is stored under ``object_id``."""
        return self._read(self._objects, object_id) is not None

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the value of a ref, or None."""
        return self._read(self._refs, name)

    @contextmanager
    def has_checker(self) -> Iterator[Callable[[ObjectId], bool]]:
        """Yield ``has`` over one read transaction (a few µs cheaper per id)."""
        with self._env.begin(db=self._objects) as txn:
            get = txn.get
            yield lambda object_id: get(object_id) is not None

    def get_meta(self, key: bytes) -> bytes | None:
        """Return a metadata value, or None."""
        return self._read(self._meta, key)

    def get_cache(self, key: bytes) -> bytes | None:
        """Return a host-file cache entry, or None."""
        if len(key) > self._env.max_key_size():  # never stored: see LmdbBatch.put_cache
            return None
        return self._read(self._files, key)

    def iter_ids(self, prefix: bytes = b"") -> Iterator[ObjectId]:
        """Yield every stored object id starting with ``prefix`` (one read snapshot)."""
        with self._env.begin(db=self._objects) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key in cursor.iternext(keys=True, values=False):
                if not key.startswith(prefix):
                    return
                yield key

    def iter_records(self) -> Iterator[tuple[ObjectId, bytes]]:
        """Yield (id, record) of every object (one read snapshot)."""
        with self._env.begin(db=self._objects) as txn:
            yield from txn.cursor().iternext(keys=True, values=True)

    # -- writes -----------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[LmdbBatch]:
        """Yield a write batch; commit it on clean exit, abort on error."""
        batch = LmdbBatch(self)
        try:
            yield batch
        except BaseException:
            batch.abort()
            raise
        batch.commit()

    def close(self) -> None:
        """Close the environment (and so release its locks); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._env.close()
        os.close(self._data_fd)
        for fd in (self._open_lock, self._writers_lock):
            if fd >= 0:
                os.close(fd)

    @contextmanager
    def writer_lease(self) -> Iterator[None]:
        """Hold a shared lock on ``writers.lock`` for the ``with`` block.

        For a long-lived writer opened without a lease (a mount): it takes
        the lease around each commit, so gc finds gaps between them. Waits
        at most one of gc's deletion steps. A handle that already holds its
        lease for its lifetime has nothing to do.
        """
        if self._writers_lock >= 0 or self._readonly:
            yield
            return
        fd = _lock_file(os.path.join(self.path, WRITERS_LOCK), fcntl.LOCK_SH)
        try:
            yield
        finally:
            if fd >= 0:
                os.close(fd)

    @contextmanager
    def writers_excluded(self) -> Iterator[bool]:
        """Try to hold ``writers.lock`` exclusively; yield whether it is held.

        Held, no writable handle is open in any process: no writer is in
        flight. Never blocks, so gc polls for a gap between writers and
        writers never wait for more than one of gc's short deletion steps.
        """
        if self._writers_lock >= 0:
            # This handle is a writer itself (a library caller running gc): convert
            # its own shared lock, which an exclusive lock on another descriptor
            # would wait for forever.
            try:
                fcntl.flock(self._writers_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(self._writers_lock, fcntl.LOCK_SH)
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(self._writers_lock, fcntl.LOCK_SH)
            return
        fd = _lock_file(os.path.join(self.path, WRITERS_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield fd >= 0
        finally:
            if fd >= 0:
                os.close(fd)

    def compact(self) -> tuple[int, int]:
        """Rewrite the environment compactly and swap it in atomically; close the store.

        The copy is written and fsynced beside the old file, then renamed over
        it: a crash leaves the old or the new environment, never neither.
        Holds ``open.lock`` exclusively throughout, so nobody opens the
        repository meanwhile.

        Raises:
            ConflictError: another process has the repository open.
        """
        data_file = os.path.join(self.path, DATA_FILE)
        before = os.stat(data_file).st_blocks * 512
        if self._open_lock >= 0:
            fcntl.flock(self._open_lock, fcntl.LOCK_UN)
        exclusive = _lock_file(os.path.join(self.path, OPEN_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if exclusive < 0:
            if self._open_lock >= 0:
                fcntl.flock(self._open_lock, fcntl.LOCK_SH)
            raise ConflictError(
                f"the repository at {self.path} is open in another process; "
                "close it (or unmount it) and run gc --compact again"
            )
        import shutil  # here, not at the top: it costs ``cat`` and ``ls`` 3 ms of start-up

        try:
            staging = os.path.join(self.path, "compact.tmp")
            shutil.rmtree(staging, ignore_errors=True)
            os.mkdir(staging)
            self._env.copy(staging, compact=True)
            _fsync_path(os.path.join(staging, DATA_FILE))
            self.close()
            os.replace(os.path.join(staging, DATA_FILE), data_file)
            _fsync_path(self.path)
            shutil.rmtree(staging, ignore_errors=True)
            # The lock file describes the old environment; nobody else has it open.
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, "lock.mdb"))
        finally:
            os.close(exclusive)
        return before, os.stat(data_file).st_blocks * 512

    def is_open_elsewhere(self) -> bool:
        """True if another handle (in any process) has this repository open."""
        # flock locks belong to open file descriptions: our own shared lock would
        # block an exclusive one from another descriptor, so drop it while probing.
        if self._open_lock >= 0:
            fcntl.flock(self._open_lock, fcntl.LOCK_UN)
        probe = _lock_file(os.path.join(self.path, OPEN_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if probe >= 0:
            os.close(probe)
        if self._open_lock >= 0:
            fcntl.flock(self._open_lock, fcntl.LOCK_SH)
        return probe < 0


class LmdbBatch:
    """A sequence of LMDB write transactions that ends with the caller's last step."""

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._txn: lmdb.Transaction[bytes] | None = None
        self._pending_bytes = 0
        self._room_bytes = 0
        self._tree_bytes = 0
        self._copied_bytes = 0
        self._started = 0.0

    def _txn_for(self, record_bytes: int) -> lmdb.Transaction[bytes]:
        incoming = _estimated_bytes(record_bytes)
        if self._txn is not None and (
            self._pending_bytes + min(self._copied_bytes + _PAGE_BYTES, self._tree_bytes) + incoming
            > min(self._room_bytes, FLUSH_BYTES)
            or time.monotonic() - self._started > FLUSH_SECONDS
        ):
            self.flush()
        if self._txn is None:
            self._txn, self._room_bytes, self._tree_bytes = self._store._begin_write(incoming + _PAGE_BYTES)
            self._started = time.monotonic()
            self._copied_bytes = 0
        self._pending_bytes += incoming
        self._copied_bytes = min(self._copied_bytes + _PAGE_BYTES, self._tree_bytes)
        return self._txn

    def has(self, object_id: ObjectId) -> bool:
        """True if stored, here or before."""
        if self._txn is not None:
            return self._txn.get(object_id, db=self._store._objects) is not None
        return self._store.has(object_id)

    def put(self, object_id: ObjectId, record: bytes | bytearray) -> bool:
        """Store a record unless present; True if new."""
        txn = self._txn_for(len(record))
        try:
            return bool(txn.put(object_id, record, db=self._store._objects, overwrite=False))
        except lmdb.MapFullError as exc:  # the estimates above leave room: a bug if reached
            raise RepositoryError(
                f"internal error: the repository map of {self._store.path} filled up "
                "inside a transaction; nothing was committed"
            ) from exc

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the ref as this batch sees it."""
        return self._txn_for(0).get(name, db=self._store._refs)

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Compare-and-swap a ref inside the current transaction."""
        txn = self._txn_for(len(new))
        if txn.get(name, db=self._store._refs) != expected:
            return False
        txn.put(name, new, db=self._store._refs)
        return True

    def delete(self, object_id: ObjectId) -> bool:
        """Delete a record; True if there was one."""
        return bool(self._txn_for(0).delete(object_id, db=self._store._objects))

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a metadata value."""
        self._txn_for(len(value)).put(key, value, db=self._store._meta)

    def put_cache(self, key: bytes, value: bytes) -> None:
        """Set a host-file cache entry, unless its key (a host path) is longer than LMDB keys may be.

        The cache is a hint: a file whose path is too long is just read again next time.
        """
        if len(key) > self._store._env.max_key_size():
            return
        self._txn_for(len(key) + len(value)).put(key, value, db=self._store._files)

    def flush(self) -> None:
        """Commit what is pending (durably) and continue in a new transaction."""
        if self._txn is not None:
            txn, self._txn = self._txn, None
            self._pending_bytes = 0
            try:
                txn.commit()
            except lmdb.Error as exc:
                raise _store_error(f"cannot commit to the repository at {self._store.path}", exc) from exc

    def commit(self) -> None:
        """Commit the final transaction."""
        self.flush()

    def abort(self) -> None:
        """Abandon the open transaction (earlier flushed steps stay)."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None


def _lock_file(path: str, operation: int) -> int:
    """Open ``path`` and flock it; return the descriptor, or -1 if not possible now.

    A blocking shared lock waits only while gc deletes one step's worth of
    garbage. A read-only repository (or file system) gets no lock: -1.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        os.close(fd)
        return -1
    return fd


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_error(what: str, exc: lmdb.Error, path: str | None = None) -> RepositoryError:
    # lmdb starts errors about the environment with its path, which ``what`` already names.
    text = str(exc).removeprefix(f"{path}: ") if path is not None else str(exc)
    if "No space left" in text or "ENOSPC" in text or isinstance(exc, lmdb.MapFullError):
        return DiskFullError(f"disk full: {what}; free some space and retry")
    return RepositoryError(f"{what}: {text}")
