"""The narrow storage interface every backend implements.

A backend stores records (``codec.Record``: kind, codec, lengths, payload)
by object id, a few named refs that move only by compare-and-swap, and
small metadata values. It knows nothing about
trees or node encodings: that lives above, in the ``Repository``.

The shape is the one object storage can offer too: blobs are appended to
immutable packs that are written once and read by range, an index says
where each blob is, and refs move by compare-and-swap. Writes happen in
batches: blobs first, made durable, then one index transaction that names
them and moves refs, so a crash at any instant leaves every ref naming
objects that are there. Locks and writer leases are not part of it
(``locks.py`` holds those of a local repository); behaviour such as
read-only access or fault injection is added by wrapping a store
(``wrappers.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from zerofs.errors import ConflictError
from zerofs.objects import Kind, ObjectId
from zerofs.store.codec import Record

if TYPE_CHECKING:  # what maintenance returns: not needed to read a file, so not imported to read one
    from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageUsage


class RefMovedError(ConflictError):
    """A compare-and-swap of a ref found another value when its batch committed."""


class CachedFile(NamedTuple):
    """What an import saw of a host file (device, inode, size, times), and the file and link id it stored for it."""

    device: int
    inode: int
    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    file_id: ObjectId
    link_id: bytes = b""
    """The hard-link group id the import gave the file's entry (issue #12); empty for none."""


class BlobInfo(NamedTuple):
    """What the index knows of a blob without reading it."""

    kind: Kind
    stored_bytes: int
    """Payload bytes as stored (compressed or raw)."""
    raw_bytes: int
    """Bytes of the body it decodes to."""


class WriteBatch(Protocol):
    """Writes that become durable together when the batch ends without error.

    A backend may make a long batch durable in several steps (to bound its
    size); blobs made durable early are harmless because nothing refers to
    them until a ref moves, and a ref move happens only in the last step.
    """

    def has(self, object_id: ObjectId) -> bool:
        """True if the blob is stored or already written in this batch."""
        ...

    def put(self, object_id: ObjectId, record: Record) -> bool:
        """Store a record unless one exists; True if it was new."""
        ...

    def get_ref(self, name: bytes) -> bytes | None:
        """A ref's value as this batch will leave it."""
        ...

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Set ref ``name`` to ``new`` if it is ``expected``; False if it is already not.

        The comparison is made again when the batch commits; if the ref
        moved meanwhile, the batch's blobs are kept and ``RefMovedError``
        is raised from the end of the batch.
        """
        ...

    def delete(self, object_id: ObjectId) -> bool:
        """Forget a blob; True if there was one. Only gc deletes."""
        ...

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a repository metadata value."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable and continue the batch."""
        ...


RefMoves = list[tuple[bytes, bytes | None, bytes]]
"""A batch's ref moves, in order: (name, expected value, new value), applied when it commits."""


def moved_to(moves: RefMoves, name: bytes) -> bytes | None:
    """Where a batch's moves leave ref ``name``; None if they do not move it."""
    for ref, _, new in reversed(moves):
        if ref == name:
            return new
    return None


def add_move(moves: RefMoves, name: bytes, expected: bytes | None, new: bytes, current: bytes | None) -> bool:
    """A batch's ``cas_ref``: record the move if the ref is ``expected`` as the batch sees it (``current``)."""
    if current != expected:
        return False
    moves.append((name, expected, new))
    return True


class Store(Protocol):
    """A repository's storage backend."""

    def get(self, object_id: ObjectId) -> Record | None:
        """Return the stored record, or None if there is none.

        Raises:
            DamagedObjectError: the bytes where the index places it are not it.
        """
        ...

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        """What the index says of a blob (kind and lengths), without reading it."""
        ...

    def has(self, object_id: ObjectId) -> bool:
        """True if a record is stored under ``object_id``."""
        ...

    def has_checker(self) -> AbstractContextManager[Callable[[ObjectId], bool]]:
        """Return a context giving a fast ``has`` over one consistent read snapshot."""
        ...

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        """Yield every stored id starting with ``prefix``, with its info, in byte order."""
        ...

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the value of a ref, or None if it is not set."""
        ...

    def get_meta(self, key: bytes) -> bytes | None:
        """Return a repository metadata value."""
        ...

    def batch(self, *, index_later: bool = False) -> AbstractContextManager[WriteBatch]:
        """Return a write batch; it is committed when the context exits cleanly.

        ``index_later``: a batch of new blobs only may leave them for the next
        batch to index, together with what references them.
        """
        ...

    def scan(self) -> Iterator[ScannedRecord]:
        """Every stored blob, read once, in storage order (pack by pack, front to back)."""
        ...

    def check_storage(self) -> Iterator[StorageProblem]:
        """Check what holds the blobs (index against packs, refs against their log)."""
        ...

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """Give back the space of forgotten blobs: delete and rewrite the packs that hold them."""
        ...

    def usage(self) -> StorageUsage:
        """How much the backend occupies."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...
