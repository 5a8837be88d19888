"""Behaviour added to any store by wrapping it: read-only access, injected faults.

A wrapper forwards every call to the store it wraps and changes one thing,
so no backend grows flags for them (STYLE.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple

from zerofs.errors import DamagedObjectError, RepositoryError
from zerofs.objects import ObjectId
from zerofs.store.base import BlobInfo, Store, WriteBatch
from zerofs.store.codec import Record
from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageUsage


class _Forwarding:
    """Every Store method, forwarded to ``inner``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def get(self, object_id: ObjectId) -> Record | None:
        return self.inner.get(object_id)

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        return self.inner.info(object_id)

    def has(self, object_id: ObjectId) -> bool:
        return self.inner.has(object_id)

    def has_checker(self) -> AbstractContextManager[Callable[[ObjectId], bool]]:
        return self.inner.has_checker()

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        return self.inner.iter_blobs(prefix)

    def get_ref(self, name: bytes) -> bytes | None:
        return self.inner.get_ref(name)

    def get_meta(self, key: bytes) -> bytes | None:
        return self.inner.get_meta(key)

    def batch(self, *, index_later: bool = False) -> AbstractContextManager[WriteBatch]:
        return self.inner.batch(index_later=index_later)

    def scan(self) -> Iterator[ScannedRecord]:
        return self.inner.scan()

    def check_storage(self) -> Iterator[StorageProblem]:
        return self.inner.check_storage()

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        return self.inner.reclaim(dead_share, dry_run=dry_run)

    def usage(self) -> StorageUsage:
        return self.inner.usage()

    def close(self) -> None:
        self.inner.close()


class ReadOnlyStore(_Forwarding):
    """A store that refuses every write (and so every batch, and reclaiming space)."""

    def __init__(self, inner: Store, where: str) -> None:
        """Wrap ``inner``; ``where`` names the repository in errors."""
        super().__init__(inner)
        self.where = where

    def batch(self, *, index_later: bool = False) -> AbstractContextManager[WriteBatch]:
        """Refuse.

        Raises:
            RepositoryError: always.
        """
        raise RepositoryError(f"the repository at {self.where} is open read-only")

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """Refuse unless dry."""
        if not dry_run:
            raise RepositoryError(f"the repository at {self.where} is open read-only")
        return self.inner.reclaim(dead_share, dry_run=True)


class Fault(enum.Enum):
    """What a faulty store does to the reads of one object."""

    FLIP = "flip"
    """One bit of the payload flipped (``offset`` into the payload, default the last byte)."""
    TRUNCATE = "truncate"
    """The payload cut to ``keep`` bytes (default half)."""
    DROP = "drop"
    """The object is not there at all."""
    UNREADABLE = "unreadable"
    """Reading it fails as a disk read error would."""


class _Injected(NamedTuple):
    fault: Fault
    offset: int = -1
    keep: int | None = None


class FaultyStore(_Forwarding):
    """A store whose reads of chosen objects fail in chosen ways, as damage on disk would.

    Tests wrap a real store in it to exercise every reader's handling of
    damage without writing into a backend's files.
    """

    def __init__(self, inner: Store) -> None:
        """Wrap ``inner``, with no faults yet."""
        super().__init__(inner)
        self.faults: dict[ObjectId, _Injected] = {}

    def inject(self, object_id: ObjectId, fault: Fault, *, offset: int = -1, keep: int | None = None) -> None:
        """Make reads of ``object_id`` fail with ``fault`` from now on."""
        self.faults[object_id] = _Injected(fault, offset, keep)

    def heal(self, object_id: ObjectId) -> None:
        """Stop injecting faults into ``object_id``."""
        self.faults.pop(object_id, None)

    def get(self, object_id: ObjectId) -> Record | None:
        """The record, damaged as injected."""
        injected = self.faults.get(object_id)
        record = self.inner.get(object_id)
        if injected is None or record is None:
            return record
        return self._damaged(object_id, record, injected)

    @staticmethod
    def _damaged(object_id: ObjectId, record: Record, injected: _Injected) -> Record | None:
        payload = bytearray(record.payload)
        if injected.fault is Fault.DROP:
            return None
        if injected.fault is Fault.UNREADABLE:
            raise DamagedObjectError(f"object {object_id.hex()[:16]} cannot be read: Input/output error")
        if injected.fault is Fault.FLIP:
            payload[injected.offset] ^= 0x01
        else:
            del payload[len(payload) // 2 if injected.keep is None else injected.keep :]
        return Record(record.kind, record.codec, record.raw_bytes, bytes(payload))

    def info(self, object_id: ObjectId) -> BlobInfo | None:
        """The index's info, unless the object is dropped."""
        injected = self.faults.get(object_id)
        if injected is not None and injected.fault is Fault.DROP:
            return None
        return self.inner.info(object_id)

    def has(self, object_id: ObjectId) -> bool:
        """False for a dropped object."""
        injected = self.faults.get(object_id)
        return (injected is None or injected.fault is not Fault.DROP) and self.inner.has(object_id)

    def scan(self) -> Iterator[ScannedRecord]:
        """The inner scan, with the injected damage."""
        for scanned in self.inner.scan():
            injected = self.faults.get(scanned.object_id)
            if injected is None or scanned.record is None:
                yield scanned
                continue
            try:
                record = self._damaged(scanned.object_id, scanned.record, injected)
            except DamagedObjectError as exc:
                yield ScannedRecord(scanned.object_id, None, exc.message)
                continue
            if record is not None:
                yield ScannedRecord(scanned.object_id, record, None)
