"""Pack files in a directory: written by appending, read by range, deleted whole.

Names are 16 random bytes, spread over subdirectories by their first hex
digit (``packs/a/ab....pack``). A writer holds an exclusive ``flock`` on its
open pack for as long as it appends to it; a pack nobody holds and that has
no trailer was left by a writer that died (gc rewrites it). A pack is made
as an unnamed file (``O_TMPFILE``), locked and given its header, and only
then linked under its name: nobody (fsck, gc) ever sees a named pack that
is unlocked and headerless while its writer lives, and gc, which deletes
only unlocked packs, can never delete one a writer has just created.

Writes are plain ``write(2)`` calls from a buffer of ``WRITE_BUFFER_BYTES``
(large payloads go straight through with ``writev``); ``sync`` makes
everything appended so far durable (``fdatasync``, and the directories on
first use) before the index may name it. Reads are ``pread`` through a small
cache of descriptors, which drops the descriptors of packs deleted since.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from zerofs.errors import DiskFullError, RepositoryError
from zerofs.store.packfile import (
    BLOB_HEADER,
    MAX_PACK_BYTES,
    PACK_HEADER,
    TAIL,
    pack_header,
    pack_trailer,
)

if TYPE_CHECKING:  # a plain repository never imports the crypto behind it
    from zerofs.store.sealer import Sealer

PACK_SUFFIX: Final = ".pack"
SUBDIRECTORY_DIGITS: Final = 1
"""Packs spread over 16 subdirectories by the first hex digit of their names: few directories to
create and sync on a repository's first import, and tens of thousands of packs per directory at most
in a repository of tens of TB."""
NAME_BYTES: Final = 16
WRITE_BUFFER_BYTES: Final = 1 << 20
DIRECT_WRITE_BYTES: Final = 64 << 10
"""Payloads at least this long skip the buffer: one ``writev`` instead of a copy."""
OPEN_READERS: Final = 64
STALE_CHECK_SECONDS: Final = 1.0
SYNC_BYTES: Final = 16 << 20
"""A writer makes its pack durable every this many bytes, and then drops large files' pages from the page cache.

Writing a large file fills the page cache with pages nobody will read
soon; on these VMs, filling memory that was never touched costs more than
the disk write itself. Handing the written pages back as it goes (as borg
does with its segments) keeps the writer in memory it has already used.
Small files' pages stay: a tree of them is often read back soon (an export,
a mount), and they cost little to keep."""


def pack_hex(name: bytes) -> str:
    """The text form of a pack name."""
    return name.hex()


def disk_error(what: str, exc: OSError) -> RepositoryError:
    """The error to raise for a failed write: disk full (exit 5, one line) or another I/O error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DiskFullError(f"disk full: {what}; free some space and retry")
    return RepositoryError(f"{what}: {exc.strerror or exc}")


def make_names_durable(writers: list[PackWriter]) -> None:
    """Make the directory entries of new packs (and of new pack directories) durable, each directory once.

    Called before the index transaction that first names a pack: the
    pack's bytes are durable by ``sync``, its name by this.

    Raises:
        DiskFullError, RepositoryError: a sync failed.
    """
    directories: list[str] = []
    for writer in writers:
        directories.extend(d for d in reversed(writer.dirs_to_sync) if d not in directories)
        writer.dirs_to_sync = []
    try:
        for directory in directories:  # deepest first: a new directory's own entry is in its parent
            fsync_directory(directory)
    except OSError as exc:
        raise disk_error("cannot make a new pack's name durable", exc) from exc


def fsync_directory(path: str) -> None:
    """Make a directory's entries durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackFiles:
    """The ``packs/`` directory of a repository."""

    def __init__(self, root: str, sealer: Sealer | None = None) -> None:
        """Use ``root/packs`` (created on the first write); with a ``sealer``, new packs are encrypted ones."""
        self.root = root
        self.sealer = sealer
        self.directory = os.path.join(root, "packs")
        self._readers: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()
        self._checked = time.monotonic()

    def path(self, name: bytes) -> str:
        """Where the pack ``name`` lives."""
        text = pack_hex(name)
        return os.path.join(self.directory, text[:SUBDIRECTORY_DIGITS], text + PACK_SUFFIX)

    # -- reads --------------------------------------------------------------------

    def read(self, name: bytes, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` of a pack (fewer at its end).

        Raises:
            FileNotFoundError: there is no such pack (gc may have just moved its blobs).
        """
        fd = self._reader(name)
        try:
            return os.pread(fd, length, offset)
        except OSError:
            self._forget(name)
            raise

    def _reader(self, name: bytes) -> int:
        with self._lock:
            now = time.monotonic()
            if now - self._checked > STALE_CHECK_SECONDS:
                self._checked = now
                self._drop_deleted()
            fd = self._readers.get(name)
            if fd is not None:
                self._readers.move_to_end(name)
                return fd
        fd = os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        with self._lock:
            other = self._readers.get(name)
            if other is not None:
                os.close(fd)
                return other
            self._readers[name] = fd
            while len(self._readers) > OPEN_READERS:
                _, old = self._readers.popitem(last=False)
                os.close(old)
        return fd

    def drop_deleted(self) -> None:
        """Close descriptors of packs gc deleted, so their space comes back while we run."""
        with self._lock:
            self._drop_deleted()

    def _drop_deleted(self) -> None:
        for name, fd in list(self._readers.items()):
            if os.fstat(fd).st_nlink == 0:
                del self._readers[name]
                os.close(fd)

    def _forget(self, name: bytes) -> None:
        with self._lock:
            fd = self._readers.pop(name, None)
        if fd is not None:
            os.close(fd)

    def size(self, name: bytes) -> int | None:
        """The length of a pack, or None if it does not exist."""
        try:
            return os.stat(self.path(name)).st_size
        except FileNotFoundError:
            return None

    def allocated_bytes(self, name: bytes) -> int:
        """Disk blocks a pack occupies (0 if it does not exist)."""
        try:
            return os.stat(self.path(name)).st_blocks * 512
        except FileNotFoundError:
            return 0

    def list(self) -> Iterator[bytes]:
        """Every pack file's name (in no particular order)."""
        try:
            groups = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for group in groups:
            if len(group) != SUBDIRECTORY_DIGITS:
                continue
            try:
                files = os.listdir(os.path.join(self.directory, group))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for file_name in files:
                if not (file_name.startswith(group) and file_name.endswith(PACK_SUFFIX)):
                    continue
                if len(file_name) == 2 * NAME_BYTES + len(PACK_SUFFIX):
                    with contextlib.suppress(ValueError):
                        yield bytes.fromhex(file_name[: 2 * NAME_BYTES])

    # -- writers and deletion -------------------------------------------------------

    def create(self) -> PackWriter:
        """Start a new pack (locked by this process until it is closed).

        Raises:
            DiskFullError: no room for it.
            RepositoryError: it cannot be created.
        """
        while True:
            name = os.urandom(NAME_BYTES)
            path = self.path(name)
            parent = os.path.dirname(path)
            new_dirs = [d for d in (self.directory, parent) if not os.path.isdir(d)]
            try:
                for directory in new_dirs:
                    os.makedirs(directory, exist_ok=True)
                fd = os.open(parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise disk_error(f"cannot create a pack file in {self.directory}", exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # nobody else can know of it yet: this never waits
                header = pack_header(None if self.sealer is None else self.sealer.key_check)
                if os.pwrite(fd, header, 0) != len(header):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                link_unnamed(fd, path)
            except FileExistsError:  # 16 random bytes met an existing name: take another
                os.close(fd)
                continue
            except OSError as exc:
                os.close(fd)
                raise disk_error(f"cannot create a pack file in {self.directory}", exc) from exc
            return PackWriter(self, name, fd, [self.root, *new_dirs] if new_dirs else [parent])

    def is_active(self, name: bytes) -> bool:
        """True if a live writer holds the pack open."""
        try:
            fd = os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def delete(self, name: bytes) -> bool:
        """Delete a pack unless a writer holds it; True if it was deleted (or already gone)."""
        path = self.path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            os.unlink(path)
        finally:
            os.close(fd)
        self._forget(name)
        return True

    def close(self) -> None:
        """Close every cached descriptor."""
        with self._lock:
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()


def link_unnamed(fd: int, path: str) -> None:
    """Give an ``O_TMPFILE`` file a name (``linkat`` through /proc, which ``os.link`` cannot do).

    Raises:
        FileExistsError: ``path`` exists.
        OSError: the link failed.
    """
    import ctypes  # here: only a writer needs it

    at_fdcwd, at_symlink_follow = -100, 0x400
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.linkat(at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd, os.fsencode(path), at_symlink_follow) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), path)


class PackWriter:
    """One open pack: blobs appended in order, made durable by ``sync``, closed by ``finish`` or ``seal``.

    Offsets count from the start of the file. Small blobs gather in a
    buffer; large payloads go straight to the file. (A thread of its own for
    the writes made a 1 GiB import slower here, not faster: the GIL passed
    between four threads costs more than the copies it overlaps.) Bytes not
    yet written are read back from the buffer.
    """

    def __init__(self, files: PackFiles, name: bytes, fd: int, dirs_to_sync: list[str]) -> None:
        self.files = files
        self.name = name
        self.fd = fd
        self.pack_no: int | None = None
        """Its number in the index, given by the first index transaction that names it."""
        self.offsets: list[int] = []
        self._buffer = bytearray()
        self._buffer_start = PACK_HEADER.size
        """The header is on the file before the pack has a name (``PackFiles.create``)."""
        self.size = PACK_HEADER.size
        self.synced_size = 0
        self.dropped_size = 0
        self._direct_bytes = 0
        """Bytes of large payloads written since the last drop (see ``SYNC_BYTES``)."""
        self.indexed_size = 0
        """Where the blobs the index knows end: everything after it may be cut off."""
        self.dirs_to_sync = dirs_to_sync
        """Directories whose new entries (the pack, its directory) must be durable before the index names it."""
        self._lock = threading.Lock()
        self.closed = False

    def append(self, header: bytes, payload: bytes | bytearray | memoryview) -> int:
        """Append a blob, its header and payload as stored (``packfile.stored_blob``); return the header's offset.

        Raises:
            DiskFullError, RepositoryError: a write failed (this one or an earlier one in flight).
        """
        with self._lock:
            offset = self.size
            if offset + len(header) + len(payload) + TAIL.size > MAX_PACK_BYTES:
                raise RepositoryError("internal error: a pack grew past 4 GiB")
            if len(payload) >= DIRECT_WRITE_BYTES:
                self._write_buffer()
                self._submit([header, payload], offset)
                self._direct_bytes += len(payload)
                self._buffer_start = offset + len(header) + len(payload)
            else:
                self._buffer += header
                self._buffer += payload
                if len(self._buffer) >= WRITE_BUFFER_BYTES:
                    self._write_buffer()
            self.size = offset + len(header) + len(payload)
            self.offsets.append(offset)
        if self.size - self.synced_size >= SYNC_BYTES:
            self.sync()
        return offset

    def _write_buffer(self) -> None:
        if self._buffer:
            self._submit([self._buffer], self._buffer_start)
            self._buffer_start += len(self._buffer)
            self._buffer = bytearray()

    def _submit(self, parts: list[bytes | bytearray | memoryview], offset: int) -> None:
        """Write ``parts`` at ``offset``.

        Raises:
            DiskFullError, RepositoryError: the write failed.
        """
        try:
            _write_fully(self.fd, parts, offset)
        except OSError as exc:
            raise disk_error(f"cannot write to pack {pack_hex(self.name)}", exc) from exc

    def read(self, offset: int, length: int) -> bytes:
        """Read back appended bytes, from the buffer, a write in flight, or the file."""
        with self._lock:
            if offset >= self._buffer_start:
                start = offset - self._buffer_start
                return bytes(self._buffer[start : start + length])
        return os.pread(self.fd, length, offset)

    def sync(self) -> None:
        """Make every appended byte durable.

        Raises:
            DiskFullError, RepositoryError: writing or syncing failed.
        """
        with self._lock:
            self._write_buffer()
            try:
                if self.synced_size != self.size:
                    os.fdatasync(self.fd)
            except OSError as exc:
                raise disk_error(f"cannot write to pack {pack_hex(self.name)}", exc) from exc
            self.synced_size = self.size
            synced = self.synced_size - self.dropped_size
            if synced >= SYNC_BYTES:
                if self._direct_bytes * 2 >= synced:  # mostly large files
                    os.posix_fadvise(self.fd, self.dropped_size, synced, os.POSIX_FADV_DONTNEED)
                self.dropped_size = self.synced_size
                self._direct_bytes = 0

    @property
    def has_indexed_blobs(self) -> bool:
        """True once an index transaction has named a blob of this pack."""
        return self.indexed_size > PACK_HEADER.size

    def discard_unindexed(self) -> None:
        """Cut off what was appended after the last indexed blob (a batch that failed); the header stays."""
        keep = max(self.indexed_size, PACK_HEADER.size)
        with self._lock:
            self._buffer = bytearray()
            self._buffer_start = keep
            self.size = self.synced_size = keep
            self.offsets = [o for o in self.offsets if o < keep]
            with contextlib.suppress(OSError):  # unindexed bytes are dead whether or not they are cut
                os.ftruncate(self.fd, keep)

    def finish(self) -> None:
        """Close the pack for appends at its target size: the trailer lists every blob in it.

        The writer keeps the pack (and its lock) until ``release``: the index
        names its last blobs only at the batch's next flush, and until then no
        gc may take it for a pack a dead writer left.

        Raises:
            DiskFullError, RepositoryError: the trailer could not be written.
        """
        with self._lock:
            self._write_buffer()
            try:
                _write_fully(self.fd, [self._trailer(self.offsets, self.size)], self.size)
                os.fdatasync(self.fd)
            except OSError as exc:
                raise disk_error(f"cannot write to pack {pack_hex(self.name)}", exc) from exc
            self.synced_size = self.size
            self.closed = True

    def _trailer(self, offsets: list[int], data_end: int) -> bytes:
        return pack_trailer(offsets, data_end, self.name, self.files.sealer)

    def release(self) -> None:
        """Let go of a finished pack (its blobs are indexed): close it, which drops the lock."""
        os.close(self.fd)

    def seal(self) -> None:
        """Close the pack: cut what the index does not name, append the trailer, make it durable, release it.

        A pack whose blobs the index never named is deleted instead. A
        failure leaves a pack without a trailer, which gc treats as one a
        dead writer left.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if not self.has_indexed_blobs:
                os.unlink(self.files.path(self.name))
                return
            with self._lock:
                self._buffer = bytearray()
                self._buffer_start = self.indexed_size
                if self.size != self.indexed_size:
                    os.ftruncate(self.fd, self.indexed_size)
                offsets = [o for o in self.offsets if o < self.indexed_size]
                _write_fully(self.fd, [self._trailer(offsets, self.indexed_size)], self.indexed_size)
                os.fdatasync(self.fd)
        except OSError:
            pass  # left without a trailer: a pack of a dead writer, as far as anyone can tell
        finally:
            os.close(self.fd)


def _write_fully(fd: int, parts: list[bytes | bytearray | memoryview], offset: int) -> None:
    """Write every part at ``offset`` (``pwritev`` may write less than asked)."""
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        written = os.pwritev(fd, views, offset)
        if written == 0:
            raise OSError(errno.ENOSPC, "no progress writing a pack")
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


assert BLOB_HEADER.size == 42
