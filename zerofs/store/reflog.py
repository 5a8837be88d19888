"""The ref log: an append-only, checksummed record of every move of a ref.

LMDB keeps no checksums of its own pages. A flipped bit in one of its two
meta pages makes it fall back to the transaction before, which would move
HEAD back by one commit without a word. So every ref move is also recorded
here, after the index transaction that made it commits, and opening a
repository compares HEAD with the last record:

- equal: nothing to say;
- the index's HEAD descends from the last record's (a writer died between
  its index commit and its log append, or the disk was full for the
  append): harmless, the next writer appends the missing move;
- the index's HEAD is older than the log's last record, or unrelated to
  it: the index lost a transaction. That is reported, never served.

Records are fixed-size (``RECORD.size`` bytes) so the last one is found
with one read at the end of the file; each carries a sequence number, the
old and new value and a BLAKE3-128 checksum. A torn record at the end (a
crash in the middle of an append) fails its checksum and is ignored;
writers cut it off before appending. Appends are serialised with an
exclusive ``flock`` on the file, held from before the index transaction to
after the append, so the log's order is the index's order.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from typing import Final, NamedTuple

import blake3

MAGIC: Final = b"ZR"
VERSION: Final = 1
RECORD: Final = struct.Struct("<2sBBQq16s32s32s12x16s")
"""magic, version, flags, sequence, time ns, ref name (NUL-padded), old, new, reserved, checksum."""
_RECORD_WITH_NONCE: Final = struct.Struct("<2sBBQq16s32s32s12s16s")
"""The same record with its 12 reserved bytes filled: an S3 ref's writer nonce (see s3store.py)."""
NONCE_BYTES: Final = 12
_NONCE_AT: Final = RECORD.size - 16 - NONCE_BYTES
FILE_HEADER: Final = b"zerofs ref log 1\n".ljust(32, b"\0")
_UNSET: Final = b"\0" * 32
_TAIL_RECORDS: Final = 16
"""Records read from the end to find the last move of each ref (moves of GRAFTS are rare)."""


class RefMove(NamedTuple):
    """One record: ``name`` moved from ``old`` to ``new`` (None: unset)."""

    sequence: int
    time_ns: int
    name: bytes
    old: bytes | None
    new: bytes


class LogDamage(NamedTuple):
    """A record that fails its checks, by position."""

    position: int
    detail: str


def encode_record(move: RefMove, nonce: bytes = b"") -> bytes:
    """Return the fixed-size, checksummed form of a move.

    ``nonce`` (up to ``NONCE_BYTES``) goes in the reserved bytes: racing
    writers of one S3 ref make their values unique with it, so that "the
    object holds my bytes" means "my write took effect".
    """
    fields = (MAGIC, VERSION, 0, move.sequence, move.time_ns, move.name, move.old or _UNSET, move.new)
    body = _RECORD_WITH_NONCE.pack(*fields, nonce, b"")[:-16]
    return body + blake3.blake3(body).digest(16)


def record_nonce(data: bytes) -> bytes:
    """The reserved bytes of a record (``encode_record``'s ``nonce``, zero-padded)."""
    return data[_NONCE_AT : _NONCE_AT + NONCE_BYTES]


def decode_record(data: bytes) -> RefMove | None:
    """Return the move a record holds, or None if it is torn or damaged."""
    if len(data) != RECORD.size:
        return None
    magic, version, _, sequence, time_ns, name, old, new, checksum = RECORD.unpack(data)
    if magic != MAGIC or version != VERSION or blake3.blake3(data[:-16]).digest(16) != checksum:
        return None
    return RefMove(sequence, time_ns, name.rstrip(b"\0"), None if old == _UNSET else old, new)


class RefLog:
    """The log file of one repository."""

    def __init__(self, path: str) -> None:
        """Use the log at ``path`` (it may not exist yet)."""
        self.path = path

    def create(self) -> None:
        """Write an empty log (at init, upgrade and index rebuild) and make it durable."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, FILE_HEADER)
            os.fsync(fd)
        finally:
            os.close(fd)

    def last_moves(self) -> dict[bytes, RefMove]:
        """The last intact move of each ref found near the end of the log (one read)."""
        found: dict[bytes, RefMove] = {}
        for move in reversed(self._tail()):
            if move is not None and move.name not in found:
                found[move.name] = move
        return found

    def _tail(self) -> list[RefMove | None]:
        """The last few whole records, decoded (None where torn or damaged), oldest first."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            size = os.fstat(fd).st_size
            whole = max(0, (size - len(FILE_HEADER)) // RECORD.size)
            count = min(whole, _TAIL_RECORDS)
            start = len(FILE_HEADER) + (whole - count) * RECORD.size
            data = os.pread(fd, count * RECORD.size, start)
        finally:
            os.close(fd)
        return [decode_record(data[i * RECORD.size : (i + 1) * RECORD.size]) for i in range(count)]

    def iter_moves(self) -> Iterator[RefMove | LogDamage]:
        """Every record from the first, or where it is damaged, a ``LogDamage``."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            yield LogDamage(0, "the ref log is missing")
            return
        if not data.startswith(FILE_HEADER):
            yield LogDamage(0, "the ref log's header is damaged")
        position = len(FILE_HEADER)
        while position + RECORD.size <= len(data):
            move = decode_record(data[position : position + RECORD.size])
            yield move if move is not None else LogDamage(position, "a record fails its checksum")
            position += RECORD.size
        if position != len(data):
            yield LogDamage(position, f"{len(data) - position} bytes of a torn record at the end")

    def lock(self, *, shared: bool = False) -> int:
        """Take the append lock (exclusive, blocking; ``shared`` for a reader); return the descriptor holding it.

        A reader that compares the log with the index holds it shared, so no
        writer moves a ref between its two reads.

        The lock is a file of its own beside the log, so a log replaced by
        ``rewrite`` is never appended to through a stale descriptor. Returns
        -1 where it cannot be taken (a read-only file system): then nothing
        can be appended either.
        """
        try:
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return -1
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        return fd

    def append(self, name: bytes, old: bytes | None, new: bytes, time_ns: int) -> None:
        """Append a move (the caller holds ``lock``) and make it durable.

        A torn or damaged record at the end is cut off first (a crash in the
        middle of an append can leave a whole record's length of garbage; the
        index has the move it was writing). If the last record of ``name``
        does not end at ``old`` (an earlier append was lost), a catch-up move
        from there to ``old`` goes first, so the log stays a chain.

        Raises:
            OSError: the append failed (a full disk): the index already has
                the move, and the next writer appends it.
        """
        tail = self._tail()
        last_any = next((m for m in reversed(tail) if m is not None), None)
        last = next((m for m in reversed(tail) if m is not None and m.name == name), None)
        if last is None and len(tail) == _TAIL_RECORDS:  # a ref seldom moved (GRAFTS): look further back
            last = next((m for m in self._all_moves()[::-1] if m.name == name), None)
        sequence = last_any.sequence + 1 if last_any is not None else 0
        records = []
        if last is not None and last.new != old and old is not None:
            records.append(encode_record(RefMove(sequence, time_ns, name, last.new, old)))
            sequence += 1
        records.append(encode_record(RefMove(sequence, time_ns, name, old, new)))
        data = b"".join(records)
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            end = len(FILE_HEADER) + max(0, (size - len(FILE_HEADER)) // RECORD.size) * RECORD.size
            while end > len(FILE_HEADER) and decode_record(os.pread(fd, RECORD.size, end - RECORD.size)) is None:
                end -= RECORD.size
            if size != end:
                os.ftruncate(fd, end)
            try:
                written = os.pwrite(fd, data, end)
                if written != len(data):
                    raise OSError(errno.ENOSPC, "short write to the ref log")
                os.fdatasync(fd)
            except OSError:
                os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)

    def has_damaged_end(self) -> bool:
        """True if the log's last whole record fails its checksum: a move may be missing from what it says."""
        tail = self._tail()
        return bool(tail) and tail[-1] is None

    def _all_moves(self) -> list[RefMove]:
        """Every intact record, oldest first."""
        return [m for m in self.iter_moves() if isinstance(m, RefMove)]

    def rewrite(self, keep: list[RefMove]) -> None:
        """Replace the log by one holding ``keep`` (the caller holds ``lock``); atomic by rename."""
        temporary = self.path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, FILE_HEADER + b"".join(encode_record(m) for m in keep))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_directory(os.path.dirname(self.path) or ".")

    def size_bytes(self) -> int:
        """The log's length (0 if missing)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
