"""The narrow storage interface every backend implements.

A backend stores opaque records by id, a few named refs that move only by
compare-and-swap, small metadata values and the importer's host-file cache.
It knows nothing about node kinds, compression or trees: that lives above,
so another backend (object storage, say) plugs in here unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from zerofs.objects import ObjectId


class WriteBatch(Protocol):
    """Writes that become durable together when the batch ends without error.

    A backend may commit a long batch in several durable steps (to bound its
    size); records committed early are harmless because nothing refers to
    them until a ref moves, and a ref move is always a single atomic step.
    """

    def has(self, object_id: ObjectId) -> bool:
        """True if the record is stored or already written in this batch."""
        ...

    def put(self, object_id: ObjectId, record: bytes | bytearray) -> bool:
        """Store a record unless one exists; True if it was new."""
        ...

    def get_ref(self, name: bytes) -> bytes | None:
        """Return a ref's value as this batch sees it."""
        ...

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Set ref ``name`` to ``new`` if it is still ``expected``; True if set."""
        ...

    def delete(self, object_id: ObjectId) -> bool:
        """Delete a record; True if there was one. Only gc deletes."""
        ...

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a repository metadata value."""
        ...

    def put_cache(self, key: bytes, value: bytes) -> None:
        """Remember a host-file cache entry (a hint; losing it is harmless)."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable and continue the batch."""
        ...


class ObjectStore(Protocol):
    """A repository's storage backend."""

    def get(self, object_id: ObjectId) -> bytes | None:
        """Return the stored record, or None if there is none."""
        ...

    def has(self, object_id: ObjectId) -> bool:
        """True if a record is stored under ``object_id``."""
        ...

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the value of a ref, or None if it is not set."""
        ...

    def has_checker(self) -> AbstractContextManager[Callable[[ObjectId], bool]]:
        """Return a context giving a fast ``has`` over one consistent read snapshot.

        For checking many ids in a row (an import checking each chunk), where
        a separate read for each would cost more than the check.
        """
        ...

    def get_meta(self, key: bytes) -> bytes | None:
        """Return a repository metadata value."""
        ...

    def get_cache(self, key: bytes) -> bytes | None:
        """Return a host-file cache entry."""
        ...

    def iter_ids(self, prefix: bytes = b"") -> Iterator[ObjectId]:
        """Yield every stored object id starting with ``prefix``, in byte order."""
        ...

    def iter_records(self) -> Iterator[tuple[ObjectId, bytes]]:
        """Yield (id, record) of every stored object, in id order (one snapshot)."""
        ...

    def writer_lease(self) -> AbstractContextManager[None]:
        """Hold the writer lease (see ``writers_excluded``) for a ``with`` block."""
        ...

    def writers_excluded(self) -> AbstractContextManager[bool]:
        """Try to exclude every writer (never blocks); the context yields whether it did."""
        ...

    def is_open_elsewhere(self) -> bool:
        """True if another handle, in any process, has this repository open."""
        ...

    def compact(self) -> tuple[int, int]:
        """Rewrite the storage compactly and atomically; return (bytes before, after).

        Needs the repository to itself. Closes the store.
        """
        ...

    def batch(self) -> AbstractContextManager[WriteBatch]:
        """Return a write batch; it is committed when the context exits cleanly."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...
