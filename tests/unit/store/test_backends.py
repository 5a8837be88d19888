"""Every backend runs the conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.store.conformance import StoreConformance, some_id
from zerofs.errors import RepositoryError
from zerofs.store.lmdb import LmdbStore
from zerofs.store.memory import MemoryStore


class TestMemoryStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Any:
        return MemoryStore()


class TestLmdbStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Any:
        return LmdbStore(tmp_path / "lmdb", create=True)

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        store.close()
        return LmdbStore(tmp_path / "lmdb")

    def test_open_missing_is_repository_error(self, tmp_path: Path) -> None:
        with pytest.raises(RepositoryError):
            LmdbStore(tmp_path / "nothing")

    def test_readonly_store_refuses_writes(self, tmp_path: Path) -> None:
        LmdbStore(tmp_path / "lmdb", create=True).close()
        store = LmdbStore(tmp_path / "lmdb", readonly=True)
        try:
            with pytest.raises(RepositoryError), store.batch() as batch:
                batch.put(some_id(1), b"x")
        finally:
            store.close()

    # A second handle on the same environment in one process is refused by py-lmdb itself;
    # two writers in separate processes are covered by tests/e2e/test_concurrency.py.

    def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        with store.batch() as batch:
            batch.put(some_id(1), b"one")
            batch.put_meta(b"m", b"meta")
            batch.put_cache(b"c", b"cache")
            batch.cas_ref(b"HEAD", None, b"h")
        store = self.reopen(store, tmp_path)
        try:
            assert store.get(some_id(1)) == b"one"
            assert store.get_meta(b"m") == b"meta"
            assert store.get_cache(b"c") == b"cache"
            assert store.get_ref(b"HEAD") == b"h"
        finally:
            store.close()
