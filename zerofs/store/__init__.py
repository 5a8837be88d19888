"""Storage backends behind one interface; ``open_store`` picks one."""

from __future__ import annotations

import os

from zerofs.store.base import ObjectStore, WriteBatch
from zerofs.store.lmdb import LmdbStore

__all__ = ["LmdbStore", "ObjectStore", "WriteBatch", "open_store"]


def open_store(
    path: str | os.PathLike[str],
    *,
    create: bool = False,
    readonly: bool = False,
    writer_lease: bool = True,
    readahead: bool = False,
) -> LmdbStore:
    """Open the LMDB backend at ``path`` (the only persistent backend so far)."""
    return LmdbStore(path, create=create, readonly=readonly, writer_lease=writer_lease, readahead=readahead)
