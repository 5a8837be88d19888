"""Builders of broken repositories: damage on disk, and damage injected into reads.

On disk (for tests that run the CLI): bytes of a pack are flipped or cut where
``Repository.locate`` says an object lives, or the index, ref log and config
files are hit directly. Nothing writes through LMDB or any backend's
internals: each builder stands for damage the disk did, not anything zerofs
would do. ``drop`` is the exception that proves the rule: it makes an object
missing as a lost index entry would, through the public batch API.

In process (for unit tests): ``faulty`` opens a repository whose store is
wrapped in ``FaultyStore``, which damages chosen objects as they are read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zerofs.content import iter_chunk_ids
from zerofs.history import head
from zerofs.objects import FileNode, ObjectId
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.store.local import PackStore
from zerofs.store.locks import RepoLocks
from zerofs.store.packfile import BLOB_HEADER
from zerofs.store.wrappers import Fault, FaultyStore
from zerofs.tree import lookup

HEADER_FIELDS = {"id": 0, "kind": 32, "codec": 33, "stored_length": 34, "raw_length": 38}
"""Offsets of a blob header's fields (packfile.BLOB_HEADER)."""


def chunk_ids_of(repo_path: Path, store_path: str) -> list[ObjectId]:
    """The chunk ids of the file at ``store_path`` in HEAD, in order."""
    with Repository.open(repo_path, readonly=True) as repo:
        entry = lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path))
        return [chunk for chunk, _ in iter_chunk_ids(repo, repo.get_typed(entry.id, FileNode))]


def node_id_of(repo_path: Path, store_path: str) -> ObjectId:
    """The id of the node at ``store_path`` in HEAD."""
    with Repository.open(repo_path, readonly=True) as repo:
        return lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path)).id


def place_of(repo_path: Path, object_id: ObjectId) -> tuple[str, int, int]:
    """(pack file, offset of the blob's header, header and payload length) of a stored object."""
    with Repository.open(repo_path, readonly=True) as repo:
        place = repo.locate(object_id)
    assert place is not None, f"no object {object_id.hex()} to damage"
    return place


def flip_bit(path: Path | str, offset: int, bit: int = 0) -> None:
    """Flip one bit of a file in place (negative offsets count from its end)."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        position = offset if offset >= 0 else size + offset
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ (1 << bit)]))


def flip_byte(repo_path: Path, object_id: ObjectId, offset: int = -1) -> None:
    """Flip the low bit of one byte of an object's stored payload (default: its last byte)."""
    pack, start, length = place_of(repo_path, object_id)
    payload_bytes = length - BLOB_HEADER.size
    position = offset if offset >= 0 else payload_bytes + offset
    assert 0 <= position < payload_bytes, "no such payload byte"
    flip_bit(pack, start + BLOB_HEADER.size + position)


def flip_header(repo_path: Path, object_id: ObjectId, field: str) -> None:
    """Flip the low bit of one field of an object's blob header in its pack."""
    pack, start, _ = place_of(repo_path, object_id)
    flip_bit(pack, start + HEADER_FIELDS[field])


def truncate(repo_path: Path, object_id: ObjectId, keep: int | None = None) -> None:
    """Cut the object's pack inside its payload (default: half of it), as a lost tail of the file would.

    Everything the pack held after that point is gone too.
    """
    pack, start, length = place_of(repo_path, object_id)
    payload_bytes = length - BLOB_HEADER.size
    os.truncate(pack, start + BLOB_HEADER.size + (payload_bytes // 2 if keep is None else keep))


def drop(repo_path: Path, object_id: ObjectId) -> None:
    """Make a stored object missing, as a lost index entry would, while things still reference it."""
    with Repository.open(repo_path, writer_lease=False) as repo, repo.batch() as batch:
        assert batch.delete(object_id), f"no object {object_id.hex()} to drop"


def index_file(repo_path: Path) -> Path:
    """The repository's LMDB index file."""
    return Path(repo_path) / "index.mdb"


@contextmanager
def faulty(repo_path: Path) -> Iterator[tuple[Repository, FaultyStore]]:
    """A repository whose reads go through a FaultyStore; inject faults with ``store.inject``."""
    path = os.fspath(repo_path)
    with Repository.open(path, readonly=True) as plain:
        config = plain.config
    store = FaultyStore(PackStore(path, readonly=True))
    repo = Repository(store, config, path, RepoLocks(path, readonly=True, writer_lease=False))
    try:
        yield repo, store
    finally:
        repo.close()


__all__ = [
    "Fault",
    "chunk_ids_of",
    "drop",
    "faulty",
    "flip_bit",
    "flip_byte",
    "flip_header",
    "index_file",
    "node_id_of",
    "place_of",
    "truncate",
]
