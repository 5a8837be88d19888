"""A reference backend in memory: the simplest thing that obeys the contract.

Used by tests (it runs the same conformance suite as LMDB) and as the model
other backends are compared with. Not durable, not shared between processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from zerofs.objects import ObjectId


class MemoryStore:
    """An ObjectStore held in dicts."""

    def __init__(self) -> None:
        """Start empty."""
        self.objects: dict[bytes, bytes] = {}
        self.refs: dict[bytes, bytes] = {}
        self.meta: dict[bytes, bytes] = {}
        self.files: dict[bytes, bytes] = {}

    def get(self, object_id: ObjectId) -> bytes | None:
        """Return the stored record, or None."""
        return self.objects.get(object_id)

    def has(self, object_id: ObjectId) -> bool:
        """True if stored."""
        return object_id in self.objects

    def get_ref(self, name: bytes) -> bytes | None:
        """Return a ref, or None."""
        return self.refs.get(name)

    @contextmanager
    def has_checker(self) -> Iterator[Callable[[ObjectId], bool]]:
        """Yield ``has`` (a dict needs no snapshot)."""
        yield self.has

    def get_meta(self, key: bytes) -> bytes | None:
        """Return a metadata value, or None."""
        return self.meta.get(key)

    def get_cache(self, key: bytes) -> bytes | None:
        """Return a host-file cache entry, or None."""
        return self.files.get(key)

    def iter_ids(self, prefix: bytes = b"") -> Iterator[ObjectId]:
        """Yield every stored id starting with ``prefix``, in byte order."""
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def iter_records(self) -> Iterator[tuple[ObjectId, bytes]]:
        """Yield (id, record) of every object, in id order."""
        yield from sorted(self.objects.items())

    @contextmanager
    def writer_lease(self) -> Iterator[None]:
        """One process, one store: no lease to take."""
        yield

    @contextmanager
    def writers_excluded(self) -> Iterator[bool]:
        """One process, one store: nothing to exclude."""
        yield True

    def is_open_elsewhere(self) -> bool:
        """A memory store has one handle."""
        return False

    def compact(self) -> tuple[int, int]:
        """Nothing to compact in memory."""
        size = sum(len(r) for r in self.objects.values())
        return size, size

    @contextmanager
    def batch(self) -> Iterator[MemoryBatch]:
        """Yield a batch applied to the store only on clean exit."""
        batch = MemoryBatch(self)
        yield batch
        batch.flush()

    def close(self) -> None:
        """Nothing to release."""


class MemoryBatch:
    """Buffered writes over a MemoryStore."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._objects: dict[bytes, bytes] = {}
        self._refs: dict[bytes, bytes] = {}
        self._meta: dict[bytes, bytes] = {}
        self._files: dict[bytes, bytes] = {}
        self._deleted: set[bytes] = set()

    def has(self, object_id: ObjectId) -> bool:
        """True if stored here or before (and not deleted in this batch)."""
        if object_id in self._objects:
            return True
        return object_id not in self._deleted and object_id in self._store.objects

    def put(self, object_id: ObjectId, record: bytes | bytearray) -> bool:
        """Store unless present; True if new."""
        if self.has(object_id):
            return False
        self._deleted.discard(object_id)
        self._objects[object_id] = bytes(record)  # a caller may reuse its buffer
        return True

    def get_ref(self, name: bytes) -> bytes | None:
        """Return the ref as this batch sees it."""
        return self._refs.get(name, self._store.refs.get(name))

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Compare-and-swap a ref."""
        if self.get_ref(name) != expected:
            return False
        self._refs[name] = new
        return True

    def delete(self, object_id: ObjectId) -> bool:
        """Delete a record (applied at flush); True if there was one."""
        existed = self.has(object_id)
        self._objects.pop(object_id, None)
        self._deleted.add(object_id)
        return existed

    def put_meta(self, key: bytes, value: bytes) -> None:
        """Set a metadata value."""
        self._meta[key] = value

    def put_cache(self, key: bytes, value: bytes) -> None:
        """Set a cache entry."""
        self._files[key] = value

    def flush(self) -> None:
        """Apply everything to the store, objects before refs."""
        for object_id in self._deleted:
            self._store.objects.pop(object_id, None)
        self._store.objects.update(self._objects)
        self._store.meta.update(self._meta)
        self._store.files.update(self._files)
        self._store.refs.update(self._refs)
        self._objects, self._meta, self._files, self._refs = {}, {}, {}, {}
        self._deleted = set()
