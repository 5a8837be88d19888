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

An encrypted repository's log (a ``RefLog`` given a ``Sealer``) has its own
file header and fixed-size records of version 2 (``SEALED_RECORD``): the
framing (magic, version, sequence, ref name, reserved bytes, checksum) stays
plain, so a torn end is found and cut as before; the move's time, old and
new value are sealed with the metadata key and ``ref_ad(name, sequence)``.
A record that does not open, or whose sequence is not above the one before
it (a record replayed or moved), is damage like a torn one. What the log
still shows without the key: how many moves there were, which ref each
moved (HEAD or GRAFTS) and, through the file's mtime, when the last was.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, NamedTuple

import blake3

from zerofs.errors import DamagedObjectError
from zerofs.store.packs import fsync_directory

if TYPE_CHECKING:  # the sealer only when encrypted (it imports the crypto)
    from zerofs.store.sealer import Sealer

MAGIC: Final = b"ZR"
VERSION: Final = 1
RECORD: Final = struct.Struct("<2sBBQq16s32s32s12x16s")
"""magic, version, flags, sequence, time ns, ref name (NUL-padded), old, new, reserved, checksum."""
_RECORD_WITH_NONCE: Final = struct.Struct("<2sBBQq16s32s32s12s16s")
"""The same record with its 12 reserved bytes filled: an S3 ref's writer nonce (see s3store.py)."""
NONCE_BYTES: Final = 12
_NONCE_AT: Final = RECORD.size - 16 - NONCE_BYTES
FILE_HEADER: Final = b"zerofs ref log 1\n".ljust(32, b"\0")
SEALED_VERSION: Final = 2
SEALED_FILE_HEADER: Final = b"zerofs sealed ref log 1\n".ljust(32, b"\0")
_MOVE_BODY: Final = struct.Struct("<q32s32s")
"""What a sealed record seals: time ns, old, new."""
SEALED_MOVE_BYTES: Final = _MOVE_BODY.size + 45
"""The sealed body: its plaintext and ``crypto.sealing.OVERHEAD_BYTES`` (a plain log never imports the crypto)."""
SEALED_RECORD: Final = struct.Struct(f"<2sBBQ16s{SEALED_MOVE_BYTES}s12s16s")
"""magic, version 2, flags, sequence, ref name (NUL-padded), sealed time/old/new, reserved, checksum."""
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


def encode_record(move: RefMove, nonce: bytes = b"", sealer: Sealer | None = None) -> bytes:
    """Return the fixed-size, checksummed form of a move (sealed, with a ``sealer``).

    ``nonce`` (up to ``NONCE_BYTES``) goes in the reserved bytes: racing
    writers of one S3 ref make their values unique with it, so that "the
    object holds my bytes" means "my write took effect".
    """
    if sealer is not None:
        return _encode_sealed(move, nonce, sealer)
    fields = (MAGIC, VERSION, 0, move.sequence, move.time_ns, move.name, move.old or _UNSET, move.new)
    body = _RECORD_WITH_NONCE.pack(*fields, nonce, b"")[:-16]
    return body + blake3.blake3(body).digest(16)


def _encode_sealed(move: RefMove, nonce: bytes, sealer: Sealer) -> bytes:
    sealed = sealer.seal_move(move.name, move.sequence, _MOVE_BODY.pack(move.time_ns, move.old or _UNSET, move.new))
    body = SEALED_RECORD.pack(MAGIC, SEALED_VERSION, 0, move.sequence, move.name, sealed, nonce, b"")[:-16]
    return body + blake3.blake3(body).digest(16)


def record_nonce(data: bytes) -> bytes:
    """The reserved bytes of a record (``encode_record``'s ``nonce``, zero-padded)."""
    return data[_NONCE_AT : _NONCE_AT + NONCE_BYTES]


def decode_record(data: bytes, sealer: Sealer | None = None) -> RefMove | None:
    """Return the move a record holds, or None if it is torn or damaged (or, with a ``sealer``, does not open)."""
    if sealer is not None:
        return _decode_sealed(data, sealer)
    if len(data) != RECORD.size:
        return None
    magic, version, _, sequence, time_ns, name, old, new, checksum = RECORD.unpack(data)
    if magic != MAGIC or version != VERSION or blake3.blake3(data[:-16]).digest(16) != checksum:
        return None
    return RefMove(sequence, time_ns, name.rstrip(b"\0"), None if old == _UNSET else old, new)


def _decode_sealed(data: bytes, sealer: Sealer) -> RefMove | None:
    if len(data) != SEALED_RECORD.size:
        return None
    magic, version, flags, sequence, name, sealed, _, checksum = SEALED_RECORD.unpack(data)
    if magic != MAGIC or version != SEALED_VERSION or flags or blake3.blake3(data[:-16]).digest(16) != checksum:
        return None
    name = name.rstrip(b"\0")
    try:
        time_ns, old, new = _MOVE_BODY.unpack(sealer.open_move(name, sequence, sealed))
    except (DamagedObjectError, struct.error):
        return None
    return RefMove(sequence, time_ns, name, None if old == _UNSET else old, new)


_SEALED_DAMAGE: Final = "a record fails its checksum or does not open"


def _damaged_at_end(tail: list[RefMove | None], end: int, header: bytes, record_size: int) -> int:
    """Bytes of damaged records that end ``tail``, the log's last records up to ``end``."""
    count = 0
    for move in reversed(tail):
        if move is not None:
            break
        count += 1
    return min(count * record_size, end - len(header))


def _drop_replayed(moves: list[RefMove | None]) -> list[RefMove | None]:
    """A sealed log's records with each one whose sequence is not above the last intact one's as damage (None).

    A sealed record opens only at its own (name, sequence), but a whole
    record copied to a later place still opens: its sequence gives it away.
    """
    kept: list[RefMove | None] = []
    highest = -1
    for move in moves:
        if move is not None and move.sequence <= highest:
            move = None
        if move is not None:
            highest = move.sequence
        kept.append(move)
    return kept


class RefLog:
    """The log file of one repository."""

    def __init__(self, path: str, sealer: Sealer | None = None) -> None:
        """Use the log at ``path`` (it may not exist yet); ``sealer``: an encrypted repository's, its records sealed."""
        self.path = path
        self.sealer = sealer
        self.header = FILE_HEADER if sealer is None else SEALED_FILE_HEADER
        self.record_size = RECORD.size if sealer is None else SEALED_RECORD.size

    def _decode(self, data: bytes) -> RefMove | None:
        return decode_record(data, self.sealer)

    def create(self) -> None:
        """Write an empty log (at init, upgrade and index rebuild) and make it durable."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, self.header)
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
            whole = max(0, (size - len(self.header)) // self.record_size)
            count = min(whole, _TAIL_RECORDS)
            start = len(self.header) + (whole - count) * self.record_size
            data = os.pread(fd, count * self.record_size, start)
        finally:
            os.close(fd)
        moves = [self._decode(data[i * self.record_size : (i + 1) * self.record_size]) for i in range(count)]
        return moves if self.sealer is None else _drop_replayed(moves)

    def iter_moves(self) -> Iterator[RefMove | LogDamage]:
        """Every record from the first, or where it is damaged, a ``LogDamage``."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            yield LogDamage(0, "the ref log is missing")
            return
        if not data.startswith(self.header):
            yield LogDamage(0, "the ref log's header is damaged")
        position = len(self.header)
        highest = -1
        while position + self.record_size <= len(data):
            move = self._decode(data[position : position + self.record_size])
            if move is None:
                yield LogDamage(position, "a record fails its checksum" if self.sealer is None else _SEALED_DAMAGE)
            elif self.sealer is not None and move.sequence <= highest:
                yield LogDamage(position, f"record {move.sequence} comes after record {highest}: replayed or moved")
            else:
                highest = move.sequence
                yield move
            position += self.record_size
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
            records.append(encode_record(RefMove(sequence, time_ns, name, last.new, old), sealer=self.sealer))
            sequence += 1
        records.append(encode_record(RefMove(sequence, time_ns, name, old, new), sealer=self.sealer))
        data = b"".join(records)
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            end = len(self.header) + max(0, (size - len(self.header)) // self.record_size) * self.record_size
            if self.sealer is not None:  # a replayed record at the end is damage that only the tail shows
                end -= _damaged_at_end(tail, end, self.header, self.record_size)
            while (
                end > len(self.header) and self._decode(os.pread(fd, self.record_size, end - self.record_size)) is None
            ):
                end -= self.record_size
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
            os.write(fd, self.header + b"".join(encode_record(m, sealer=self.sealer) for m in keep))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        fsync_directory(os.path.dirname(self.path) or ".")

    def size_bytes(self) -> int:
        """The log's length (0 if missing)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
