"""Builders of broken repositories: flip a byte, cut a record, drop an object.

They write through the LMDB environment directly (``put`` never overwrites an existing
id, by design), so they stand for damage on disk, not for anything zerofs would do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zerofs.content import iter_chunk_ids
from zerofs.history import head
from zerofs.objects import FileNode, ObjectId
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.store.lmdb import LmdbStore
from zerofs.tree import lookup


def chunk_ids_of(repo_path: Path, store_path: str) -> list[ObjectId]:
    """The chunk ids of the file at ``store_path`` in HEAD, in order."""
    with Repository.open(repo_path, readonly=True) as repo:
        entry = lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path))
        return [chunk for chunk, _ in iter_chunk_ids(repo, repo.get_typed(entry.id, FileNode))]


def node_id_of(repo_path: Path, store_path: str) -> ObjectId:
    """The id of the node at ``store_path`` in HEAD."""
    with Repository.open(repo_path, readonly=True) as repo:
        return lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path)).id


def _rewrite(repo_path: Path, object_id: ObjectId, change: Callable[[bytes], bytes | None]) -> None:
    store = LmdbStore(repo_path)
    try:
        with store._env.begin(write=True) as txn:
            record = txn.get(object_id, db=store._objects)
            assert record is not None, f"no object {object_id.hex()} to damage"
            new = change(record)
            if new is None:
                txn.delete(object_id, db=store._objects)
            else:
                txn.put(object_id, new, db=store._objects)
    finally:
        store.close()


def flip_byte(repo_path: Path, object_id: ObjectId, offset: int = -1) -> None:
    """Flip the low bit of one byte of a stored record (default: its last byte)."""

    def flip(record: bytes) -> bytes:
        damaged = bytearray(record)
        damaged[offset] ^= 0x01
        return bytes(damaged)

    _rewrite(repo_path, object_id, flip)


def truncate(repo_path: Path, object_id: ObjectId, keep: int | None = None) -> None:
    """Cut a stored record to ``keep`` bytes (default: half of it), as a torn write would."""
    _rewrite(repo_path, object_id, lambda record: record[: len(record) // 2 if keep is None else keep])


def drop(repo_path: Path, object_id: ObjectId) -> None:
    """Delete a stored object that something still references."""
    _rewrite(repo_path, object_id, lambda record: None)
