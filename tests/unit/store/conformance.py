"""The contract every ObjectStore backend honours; each backend's test module subclasses this.

A subclass provides ``make_store(tmp_path)`` (and ``reopen(store, tmp_path)`` if the backend
is persistent). Nothing here knows which backend it is talking to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from zerofs.objects import chunk_id


def some_id(n: int) -> bytes:
    return chunk_id(b"object %d" % n)


class Boom(Exception):
    """Raised inside a batch to abort it."""


class StoreConformance:
    """Backend-independent behaviour of ``zerofs.store.base.ObjectStore``."""

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        return store

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    # -- objects ----------------------------------------------------------

    def test_get_missing_is_none(self, store: Any) -> None:
        assert store.get(some_id(1)) is None
        assert not store.has(some_id(1))

    def test_put_then_get_and_has(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.put(some_id(1), b"record one") is True
            assert batch.has(some_id(1))
        assert store.has(some_id(1))
        assert store.get(some_id(1)) == b"record one"
        assert not store.has(some_id(2))

    def test_put_existing_id_returns_false_and_keeps_first(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.put(some_id(1), b"first") is True
            assert batch.put(some_id(1), b"second") is False
        with store.batch() as batch:
            assert batch.put(some_id(1), b"third") is False
        assert store.get(some_id(1)) == b"first"

    def test_empty_and_large_records(self, store: Any) -> None:
        big = os.urandom(3 << 20)
        with store.batch() as batch:
            batch.put(some_id(1), b"")
            batch.put(some_id(2), big)
        assert store.get(some_id(1)) == b""
        assert store.has(some_id(1))
        assert store.get(some_id(2)) == big

    def test_has_checker_sees_committed_records(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(1), b"one")
        with store.has_checker() as has:
            assert has(some_id(1))
            assert not has(some_id(2))

    def test_iter_ids_with_prefix_and_records(self, store: Any) -> None:
        ids = sorted(some_id(n) for n in range(20))
        with store.batch() as batch:
            for object_id in ids:
                batch.put(object_id, object_id[:4])
        prefix = ids[7][:1]
        assert list(store.iter_ids(prefix)) == [i for i in ids if i.startswith(prefix)]
        assert list(store.iter_ids(b"\xff" * 33)) == []
        assert list(store.iter_records()) == [(i, i[:4]) for i in ids]

    def test_delete(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(1), b"one")
            batch.put(some_id(2), b"two")
        with store.batch() as batch:
            assert batch.delete(some_id(1))
            assert not batch.delete(some_id(3))
            assert not batch.has(some_id(1))
        assert not store.has(some_id(1))
        assert store.get(some_id(2)) == b"two"

    def test_iter_ids(self, store: Any) -> None:
        assert list(store.iter_ids()) == []
        ids = {some_id(n) for n in range(50)}
        with store.batch() as batch:
            for n, object_id in enumerate(sorted(ids)):
                batch.put(object_id, b"r%d" % n)
        listed = list(store.iter_ids())
        assert len(listed) == len(ids)
        assert set(listed) == ids

    def test_many_batches_accumulate(self, store: Any) -> None:
        for n in range(20):
            with store.batch() as batch:
                batch.put(some_id(n), b"%d" % n)
        assert all(store.get(some_id(n)) == b"%d" % n for n in range(20))

    def test_batch_aborted_on_exception_writes_nothing(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(0), b"kept")
            assert batch.cas_ref(b"HEAD", None, b"h0")
        with pytest.raises(Boom), store.batch() as batch:  # noqa: PT012 - the batch body is the point
            batch.put(some_id(1), b"lost")
            batch.put_meta(b"k", b"lost")
            batch.put_cache(b"/host/file", b"lost")
            assert batch.cas_ref(b"HEAD", b"h0", b"h1")
            raise Boom
        assert store.get(some_id(1)) is None
        assert not store.has(some_id(1))
        assert store.get_meta(b"k") is None
        assert store.get_cache(b"/host/file") is None
        assert store.get_ref(b"HEAD") == b"h0"
        assert store.get(some_id(0)) == b"kept"
        assert set(store.iter_ids()) == {some_id(0)}

    # -- refs -------------------------------------------------------------

    def test_ref_missing_is_none(self, store: Any) -> None:
        assert store.get_ref(b"HEAD") is None

    def test_cas_ref_create_expects_none(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", b"something", b"h1") is False
            assert batch.get_ref(b"HEAD") is None
            assert batch.cas_ref(b"HEAD", None, b"h1") is True
            assert batch.get_ref(b"HEAD") == b"h1"
        assert store.get_ref(b"HEAD") == b"h1"

    def test_cas_ref_wrong_expected_fails_right_one_succeeds(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, b"h1")
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, b"h2") is False
            assert batch.cas_ref(b"HEAD", b"h0", b"h2") is False
            assert batch.get_ref(b"HEAD") == b"h1"
        assert store.get_ref(b"HEAD") == b"h1"
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", b"h1", b"h2") is True
        assert store.get_ref(b"HEAD") == b"h2"

    def test_refs_are_independent(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, b"a")
            assert batch.cas_ref(b"other", None, b"b")
        assert store.get_ref(b"HEAD") == b"a"
        assert store.get_ref(b"other") == b"b"

    def test_batch_sees_refs_committed_before_it(self, store: Any) -> None:
        with store.batch() as batch:
            batch.cas_ref(b"HEAD", None, b"a")
        with store.batch() as batch:
            assert batch.get_ref(b"HEAD") == b"a"

    # -- meta and cache ---------------------------------------------------

    def test_meta_round_trip(self, store: Any) -> None:
        assert store.get_meta(b"config") is None
        with store.batch() as batch:
            batch.put_meta(b"config", b'{"v": 1}')
        assert store.get_meta(b"config") == b'{"v": 1}'
        with store.batch() as batch:
            batch.put_meta(b"config", b'{"v": 2}')
        assert store.get_meta(b"config") == b'{"v": 2}'

    def test_cache_round_trip(self, store: Any) -> None:
        key = b"/host/\xffpath"
        assert store.get_cache(key) is None
        with store.batch() as batch:
            batch.put_cache(key, b"v1")
        assert store.get_cache(key) == b"v1"
        with store.batch() as batch:
            batch.put_cache(key, b"v2")
        assert store.get_cache(key) == b"v2"

    def test_namespaces_do_not_mix(self, store: Any) -> None:
        key = some_id(7)
        with store.batch() as batch:
            batch.put_meta(key, b"meta")
            batch.put_cache(key, b"cache")
            batch.cas_ref(key, None, b"ref")
        assert store.get(key) is None
        assert store.get_meta(key) == b"meta"
        assert store.get_cache(key) == b"cache"
        assert store.get_ref(key) == b"ref"
        assert list(store.iter_ids()) == []

    # -- durability -------------------------------------------------------
