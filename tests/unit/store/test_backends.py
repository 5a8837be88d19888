"""Every backend runs the conformance suite; the pack store also its own durability and damage cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.store.conformance import StoreConformance, rec, some_id
from zerofs.errors import RepositoryError
from zerofs.store.local import PackStore
from zerofs.store.maintenance import check_storage
from zerofs.store.memory import MemoryStore
from zerofs.store.packfile import PACK_HEADER, is_pack_header
from zerofs.store.wrappers import ReadOnlyStore


class TestMemoryStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Any:
        return MemoryStore()

    def move_ref_elsewhere(self, store: Any, name: bytes, value: bytes) -> None:
        store.refs[name] = value


class TestPackStore(StoreConformance):
    def make_store(self, tmp_path: Path) -> Any:
        (tmp_path / "repo").mkdir(exist_ok=True)
        return PackStore.create(tmp_path / "repo", b"{}")

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        store.close()
        return PackStore(tmp_path / "repo")

    def move_ref_elsewhere(self, store: Any, name: bytes, value: bytes) -> None:
        with store.index.writing() as txn:  # another process's transaction, as LMDB serialises it
            txn.put(name, value, db=store.index.refs)

    def test_readonly_store_refuses_writes(self, tmp_path: Path) -> None:
        self.make_store(tmp_path).close()
        store = PackStore(tmp_path / "repo", readonly=True)
        try:
            with pytest.raises(RepositoryError), store.batch() as batch:
                batch.put(some_id(1), rec(b"x"))
        finally:
            store.close()

    def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        with store.batch() as batch:
            batch.put(some_id(1), rec(b"one"))
            batch.put_meta(b"m", b"meta")
            batch.cas_ref(b"HEAD", None, b"h")
        store = self.reopen(store, tmp_path)
        try:
            assert bytes(store.get(some_id(1)).payload) == b"one"
            assert store.get_meta(b"m") == b"meta"
            assert store.get_ref(b"HEAD") == b"h"
        finally:
            store.close()


class TestReadOnlyWrapper:
    def test_reads_pass_writes_are_refused(self) -> None:
        inner = MemoryStore()
        with inner.batch() as batch:
            batch.put(some_id(1), rec(b"one"))
        store = ReadOnlyStore(inner, "/somewhere")
        assert bytes(store.get(some_id(1)).payload) == b"one"
        with pytest.raises(RepositoryError, match="read-only"):
            store.batch()


class TestIndexLater:
    """A batch of contents leaves them to the batch of the change that references them: one transaction."""

    def test_the_next_batch_indexes_them_with_its_change(self, tmp_path: Path) -> None:
        (tmp_path / "repo").mkdir()
        store = PackStore.create(tmp_path / "repo", b"{}")
        try:
            with store.batch(index_later=True) as batch:
                batch.put(some_id(1), rec(b"content"))
            assert bytes(store.get(some_id(1)).payload) == b"content"  # readable here at once
            assert store.index.locate(some_id(1)) is None  # not indexed yet
            with store.batch() as batch:
                batch.put(some_id(2), rec(b"node"))
                batch.cas_ref(b"HEAD", None, some_id(2))
            assert store.index.locate(some_id(1)) is not None
        finally:
            store.close()
        store = PackStore(tmp_path / "repo")
        try:
            assert bytes(store.get(some_id(1)).payload) == b"content"
        finally:
            store.close()

    def test_a_change_that_is_tried_again_finds_them_stored(self, tmp_path: Path) -> None:
        (tmp_path / "repo").mkdir()
        store = PackStore.create(tmp_path / "repo", b"{}")
        try:
            with store.batch(index_later=True) as batch:
                batch.put(some_id(1), rec(b"content"))
            with pytest.raises(RuntimeError), store.batch() as batch:  # noqa: PT012 - the attempt fails inside
                batch.put(some_id(2), rec(b"first attempt"))
                raise RuntimeError("HEAD moved: try again")
            assert store.has(some_id(1))
            assert bytes(store.get(some_id(1)).payload) == b"content"
        finally:
            store.close()
        store = PackStore(tmp_path / "repo")
        try:
            assert bytes(store.get(some_id(1)).payload) == b"content"
        finally:
            store.close()

    def test_a_failed_first_batch_keeps_the_pack_header(self, tmp_path: Path) -> None:
        # A change tried again (HEAD moved) cuts off what its first attempt appended. When nothing
        # of the pack was indexed yet, the cut once went to offset 0 and took the pack header with
        # it: the blobs of the next attempt were indexed in a pack fsck and a rebuild cannot read.
        (tmp_path / "repo").mkdir()
        store = PackStore.create(tmp_path / "repo", b"{}")
        try:
            with pytest.raises(RuntimeError), store.batch() as batch:  # noqa: PT012 - the attempt fails inside
                batch.put(some_id(1), rec(b"first attempt" * 100))
                raise RuntimeError("HEAD moved: try again")
            with store.batch() as batch:
                batch.put(some_id(2), rec(b"second attempt"))
                batch.cas_ref(b"HEAD", None, some_id(2))
            (name,) = store.files.list()
            with open(store.files.path(name), "rb") as pack:
                assert is_pack_header(pack.read(PACK_HEADER.size))
        finally:
            store.close()
        store = PackStore(tmp_path / "repo")
        try:
            assert bytes(store.get(some_id(2)).payload) == b"second attempt"
            assert list(check_storage(store)) == []
        finally:
            store.close()

    def test_contents_no_change_referenced_are_cut_off_at_close(self, tmp_path: Path) -> None:
        (tmp_path / "repo").mkdir()
        store = PackStore.create(tmp_path / "repo", b"{}")
        with store.batch(index_later=True) as batch:
            batch.put(some_id(1), rec(b"orphan" * 1000))
        store.close()
        store = PackStore(tmp_path / "repo")
        try:
            assert store.get(some_id(1)) is None
            assert list(store.files.list()) == []  # the pack held nothing indexed: it is gone
        finally:
            store.close()
