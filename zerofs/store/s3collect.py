"""gc's side of gc across hosts on an S3 repository: plan, wait, copy what lives, delete (``s3gc.py``).

``services/gc.py`` marks; this module does what touches the bucket:
``SharedCollection.publish`` (steps 1-2 of the protocol in ``s3gc.py``),
``wait`` (3), ``nodes_stored_since`` (what step 4 marks from besides the new
commits) and ``finish`` (the rest of 4, and 5).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

from zerofs.errors import ConflictError, CorruptionError
from zerofs.objects import Kind, ObjectId
from zerofs.store.base import BlobInfo
from zerofs.store.codec import decode_record as decode_body
from zerofs.store.local import blob_record
from zerofs.store.maintenance import RebuildResult, whole_blobs
from zerofs.store.packfile import BLOB_HEADER, ScannedBlob
from zerofs.store.packs import pack_hex
from zerofs.store.results import ReclaimResult
from zerofs.store.s3cache import INDEX_PREFIX, IndexEntry, index_objects
from zerofs.store.s3gc import (
    LOCK_KEY,
    PLAN_SUFFIX,
    PLANS_PREFIX,
    Plan,
    clock,
    done_key,
    encode_plan,
    pack_names_of,
    plan_key,
)
from zerofs.store.s3store import NODE_KINDS, PACKS_PREFIX, S3Batch, S3Store, pack_key

ENTRIES_PER_INDEX: Final = 200_000
"""Entries per index object gc writes (about 5 MiB compressed): few objects to list and load."""


@contextmanager
def gc_lock(store: S3Store, *, break_lock: bool = False) -> Iterator[bool]:
    """Hold ``gc/lock`` for a block if nobody holds it; yields whether held.

    ``break_lock``: remove a lock a gc that died left behind first.
    A gc killed with SIGKILL leaves its lock: the next gc names it, and
    breaking the lock removes it. Only one gc may run: two would each copy
    out and delete, and the second could delete index objects the first wrote.
    """
    if break_lock:
        store.objects.delete(LOCK_KEY)
    about = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if store.objects.create(LOCK_KEY, json.dumps(about).encode()) is None:
        yield False
        return
    try:
        yield True
    finally:
        store.objects.delete(LOCK_KEY)


def lock_holder(store: S3Store) -> str:
    """Who holds ``gc/lock``, as its holder wrote it ("unknown" if it cannot be read)."""
    found = store.objects.get(LOCK_KEY)
    try:
        about = json.loads(found.data) if found is not None else {}
        return f"host {about['host']}, pid {about['pid']}, since {about['started']}"
    except (ValueError, KeyError, TypeError):
        return "unknown"


@dataclass
class SharedCollection:
    """One gc of an S3 repository, from the plan it published to its end."""

    store: S3Store
    key: str
    plan: Plan
    published_at: float
    listed: dict[str, list[IndexEntry]]
    """The index objects read at ``L0``, by key (they are immutable: read once)."""
    packs_listed: dict[bytes, int]
    """Every pack in the bucket at ``L0`` and its size."""
    current: set[str] = field(default_factory=set)
    """The index objects listed at ``L1``."""

    @classmethod
    def publish(cls, store: S3Store, marked: set[ObjectId], dead_share: float) -> SharedCollection:
        """Read the index (``L0``), choose the doomed packs and blobs, and publish the plan.

        Raises:
            CorruptionError: an index object is damaged (gc would not know what the packs hold).
        """
        _abandon_unfinished(store)
        packs_listed = _list_packs(store)
        keys = [info.key for info in store.objects.list(INDEX_PREFIX)]
        listed = _fetch_whole(store, keys)
        by_pack = _by_pack(listed)
        doomed_packs = set()
        for name, entries in by_pack.items():
            dead = sum(BLOB_HEADER.size + e.stored_bytes for e in entries if e.object_id not in marked)
            whole = sum(BLOB_HEADER.size + e.stored_bytes for e in entries)
            if dead and dead >= dead_share * whole:
                doomed_packs.add(name)
        kept_copies = {e.object_id for name, entries in by_pack.items() if name not in doomed_packs for e in entries}
        doomed = {
            e.object_id
            for entries in listed.values()
            for e in entries
            if e.object_id not in marked
            and ((e.pack_name in doomed_packs and e.object_id not in kept_copies) or e.kind in NODE_KINDS)
        }
        plan = Plan(frozenset(doomed_packs), frozenset(doomed))
        key = plan_key()
        if store.objects.create(key, store.seal_object(key, encode_plan(plan))) is None:
            raise ConflictError(f"gc plan {key} already exists in {store.url}")
        return cls(store, key, plan, clock(), listed, packs_listed)

    def wait(self) -> float:
        """Sleep until the grace period has passed since the plan was published; the seconds slept."""
        remaining = self.store.gc.grace_s - (clock() - self.published_at)
        if remaining > 0:
            time.sleep(remaining)
        return max(remaining, 0.0)

    def nodes_stored_since(self) -> list[tuple[ObjectId, Kind]]:
        """Nodes in the index objects published since ``L0`` (``L1`` is read now): gc keeps what they reach.

        A writer that died before its ref move may have published nodes that
        reference doomed blobs, and another writer may reuse them.
        """
        keys = [info.key for info in self.store.objects.list(INDEX_PREFIX)]
        fresh = _fetch_whole(self.store, [key for key in keys if key not in self.listed])
        self.listed.update(fresh)
        self.current = set(keys)
        return [(e.object_id, e.kind) for entries in fresh.values() for e in entries if e.kind in NODE_KINDS]

    def finish(self, marked: set[ObjectId]) -> tuple[ReclaimResult, int, int]:
        """Copy what is marked out of the doomed packs, rewrite the index, mark the plan done, delete.

        Call ``nodes_stored_since`` first. Returns what reclaiming did, and the
        number and stored bytes of the garbage blobs deleted.
        """
        store = self.store
        current = {key: self.listed[key] for key in self.current if key in self.listed}
        by_pack = _by_pack(current)
        doomed_packs = self.plan.packs
        safe = {e.object_id for name, entries in by_pack.items() if name not in doomed_packs for e in entries}
        copies = {
            e.object_id: e
            for name in doomed_packs
            for e in by_pack.get(name, [])
            if e.object_id in marked and e.object_id not in safe
        }
        written = self._copy(copies)
        kept = [e for entries in current.values() for e in entries if e.pack_name not in doomed_packs]
        for key, part in index_objects(kept, ENTRIES_PER_INDEX):
            if store.objects.create(key, store.index_object(key, part)) is None:
                raise ConflictError(f"index object {key} already exists in {store.url}")
        for key in current:
            store.objects.delete(key)
        store.objects.create(done_key(self.key), b"")
        named = {e.pack_name for entries in current.values() for e in entries}
        orphans = {name for name in self.packs_listed if name not in named and name not in doomed_packs}
        deleted = doomed_packs & set(self.packs_listed) | orphans
        for name in sorted(deleted):
            store.objects.delete(pack_key(name))
        garbage = {
            e.object_id: e.stored_bytes
            for name in doomed_packs
            for e in by_pack.get(name, [])
            if e.object_id not in marked and e.object_id not in safe
        }
        rewritten = sum(1 for name in doomed_packs if any(e.object_id in copies for e in by_pack.get(name, [])))
        before = sum(self.packs_listed[name] for name in deleted)
        result = ReclaimResult(len(deleted) - rewritten, rewritten, before, written)
        return result, len(garbage), sum(garbage.values())

    def _copy(self, copies: dict[ObjectId, IndexEntry]) -> int:
        """Copy live blobs out of doomed packs into new ones (read, checked, written as they were); bytes written."""
        if not copies:
            return 0
        store = self.store
        written = 0
        with store.batch() as batch:
            assert isinstance(batch, S3Batch)
            for object_id, entry in copies.items():
                data = store.objects.get_range(
                    pack_key(entry.pack_name), entry.offset, BLOB_HEADER.size + entry.stored_bytes
                )
                info = BlobInfo(entry.kind, entry.stored_bytes, entry.raw_bytes)
                record = blob_record(object_id, data, info, pack_hex(entry.pack_name), store.sealer)
                decode_body(object_id, record, store.id_function)
                batch.copy(object_id, record)
                written += BLOB_HEADER.size + entry.stored_bytes
        return written


def _abandon_unfinished(store: S3Store) -> None:
    """Mark done the plans of gcs that died: nothing of theirs is deleted any more (always safe)."""
    keys = {info.key for info in store.objects.list(PLANS_PREFIX)}
    for key in keys:
        if key.endswith(PLAN_SUFFIX) and done_key(key) not in keys:
            store.objects.create(done_key(key), b"abandoned")


def _list_packs(store: S3Store) -> dict[bytes, int]:
    """Every pack in the bucket, by name, and its size."""
    listed = {info.key: info.size_bytes for info in store.objects.list(PACKS_PREFIX)}
    return {name: listed[key] for key, name in pack_names_of(listed).items()}


def _fetch_whole(store: S3Store, keys: list[str]) -> dict[str, list[IndexEntry]]:
    """Index objects by key; one damaged stops gc (what it names would look unreferenced)."""
    fetched = store.fetch_index(keys)
    damaged = [key for key in keys if key not in fetched and key in store.damaged_index]
    if damaged:
        raise CorruptionError(
            f"{store.damaged_index[min(damaged)]}: gc cannot tell what its packs hold; run `zerofs fsck`"
        )
    return fetched


def _by_pack(objects: dict[str, list[IndexEntry]]) -> dict[bytes, list[IndexEntry]]:
    by_pack: dict[bytes, list[IndexEntry]] = {}
    for entries in objects.values():
        for entry in entries:
            by_pack.setdefault(entry.pack_name, []).append(entry)
    return by_pack


def rebuild_index(store: S3Store) -> RebuildResult:
    """Index again every blob of every pack that no intact index object names; remove damaged index objects.

    Only adds: each entry written was read from its pack (through a valid
    trailer, or verified blob by blob from the start). Holds ``gc/lock`` so
    that no gc deletes a pack while an index object naming it is written;
    the plan of a gc that died is marked abandoned first.

    Raises:
        ConflictError: a gc is running.
    """
    with gc_lock(store) as held:
        if not held:
            raise ConflictError(f"a gc is running on the repository at {store.url} ({lock_holder(store)}); wait for it")
        _abandon_unfinished(store)
        keys = [info.key for info in store.objects.list(INDEX_PREFIX)]
        intact = store.fetch_index(keys)
        named: dict[bytes, set[int]] = {}
        for entries in intact.values():
            for entry in entries:
                named.setdefault(entry.pack_name, set()).add(entry.offset)
        problems: list[str] = []
        n_packs = n_blobs = n_added = 0
        for name in sorted(_list_packs(store)):
            found = store.objects.get(pack_key(name))
            if found is None:
                continue
            blobs = whole_blobs(found.data, name, problems, store.sealer)
            n_packs += 1 if blobs else 0
            n_blobs += len(blobs)
            entries = [_entry(name, blob) for blob in blobs if blob.offset not in named.get(name, set())]
            for key, part in index_objects(entries):
                if store.objects.create(key, store.index_object(key, part)) is None:
                    raise ConflictError(f"index object {key} already exists in {store.url}")
            n_added += len(entries)
        if n_added:
            problems.append(f"indexed again {n_added} objects that no intact index object named")
        for key in keys:
            if key not in intact and key in store.damaged_index:
                problems.append(f"removed the damaged index object {store.url}/{key}")
                store.objects.delete(key)
    return RebuildResult(n_packs, n_blobs, 0, store.get_ref(b"HEAD"), tuple(problems))


def _entry(name: bytes, blob: ScannedBlob) -> IndexEntry:
    header = blob.header
    return IndexEntry(header.object_id, name, blob.offset, header.stored_bytes, header.raw_bytes, header.kind)
