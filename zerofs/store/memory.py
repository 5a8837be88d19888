"""A reference backend in memory: the simplest thing that obeys the contract.

Used by tests (it runs the same conformance suite as the pack store) and as
the model other backends are compared with. Not durable, not shared
between processes; it has no packs, so it has nothing to reclaim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from zerofs.objects import ObjectId
from zerofs.store.base import BlobInfo, RefMovedError, RefMoves, add_move, moved_to
from zerofs.store.codec import Record
from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageUsage


class MemoryStore:
    """A Store held in dicts."""

    def __init__(self) -> None:
        """Start empty."""
        self.objects: dict[bytes, Record] = {}
        self.refs: dict[bytes, bytes] = {}
        self.meta: dict[bytes, bytes] = {}

    def get(self, object_id: ObjectId) -> Record | None:
        """Return the stored record, or None."""
        return self.objects.get(object_id)

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        """Kind and lengths of a stored record."""
        record = self.objects.get(object_id)
        return None if record is None else BlobInfo(record.kind, len(record.payload), record.raw_bytes)

    def has(self, object_id: ObjectId) -> bool:
        """True if stored."""
        return object_id in self.objects

    @contextmanager
    def has_checker(self) -> Iterator[Callable[[ObjectId], bool]]:
        """Yield ``has`` (a dict needs no snapshot)."""
        yield self.has

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        """Every stored id starting with ``prefix``, in byte order, with its info."""
        for object_id in sorted(k for k in self.objects if k.startswith(prefix)):
            record = self.objects[object_id]
            yield object_id, BlobInfo(record.kind, len(record.payload), record.raw_bytes)

    def get_ref(self, name: bytes) -> bytes | None:
        """Return a ref, or None."""
        return self.refs.get(name)

    def get_meta(self, key: bytes) -> bytes | None:
        """Return a metadata value, or None."""
        return self.meta.get(key)

    @contextmanager
    def batch(self, *, index_later: bool = False) -> Iterator[MemoryBatch]:
        """Yield a batch, applied only when it ends without error."""
        batch = MemoryBatch(self)
        yield batch
        batch.commit()

    def scan(self) -> Iterator[ScannedRecord]:
        """Every record, in id order."""
        for object_id, record in sorted(self.objects.items()):
            yield ScannedRecord(object_id, record, None)

    def check_storage(self) -> Iterator[StorageProblem]:
        """Dicts hold nothing that can be damaged below the records."""
        return iter(())

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """A forgotten record is gone at once: nothing to reclaim."""
        return ReclaimResult()

    def usage(self) -> StorageUsage:
        """What the records take."""
        size = sum(len(r.payload) for r in self.objects.values())
        return StorageUsage(n_packs=0, pack_bytes=size, live_bytes=size, index_bytes=0, disk_bytes=None)

    def close(self) -> None:
        """Nothing to release."""


class MemoryBatch:
    """Writes over a MemoryStore, applied at the end: blobs always, the rest if every compare-and-swap holds."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._objects: dict[bytes, Record] = {}
        self._refs: RefMoves = []
        self._meta: dict[bytes, bytes] = {}
        self._deleted: list[bytes] = []

    def has(self, object_id: ObjectId) -> bool:
        """True if stored, or written in this batch."""
        return object_id in self._objects or object_id in self._store.objects

    def put(self, object_id: ObjectId, record: Record) -> bool:
        """Store unless present; True if new."""
        if self.has(object_id):
            return False
        self._objects[object_id] = Record(record.kind, record.codec, record.raw_bytes, bytes(record.payload))
        return True

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the ref as this batch will leave it."""
        moved = moved_to(self._refs, name)
        if moved is not None:
            return moved
        return self._store.refs.get(name)

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Move a ref at the end if it is still ``expected``."""
        return add_move(self._refs, name, expected, new, self.get_ref(name))

    def delete(self, object_id: ObjectId) -> bool:
        """Forget a record at the end; True if there is one."""
        if object_id not in self._store.objects:
            return False
        self._deleted.append(object_id)
        return True

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a metadata value at the end."""
        self._meta[key] = value

    def flush(self) -> None:
        """Apply the blobs written so far."""
        for object_id, record in self._objects.items():
            self._store.objects.setdefault(object_id, record)
        self._objects = {}

    def commit(self) -> None:
        """Apply the blobs, then the rest if every compare-and-swap holds.

        Raises:
            RefMovedError: a ref moved since ``cas_ref``; only the blobs were kept.
        """
        store = self._store
        self.flush()
        if any(store.refs.get(name) != old for name, old, _ in self._refs):
            raise RefMovedError("a ref moved during the change")
        for object_id in self._deleted:
            store.objects.pop(object_id, None)
        store.meta.update(self._meta)
        for name, _, new in self._refs:
            store.refs[name] = new
