"""The contract every Store backend honours; each backend's test module subclasses this.

A subclass provides ``make_store(tmp_path)`` (and ``reopen(store, tmp_path)`` if the backend
is persistent), and ``move_ref_elsewhere`` to play another writer. Nothing here knows which
backend it is talking to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import pytest

from zerofs.objects import Kind, chunk_id
from zerofs.store.base import RefMovedError
from zerofs.store.codec import CODEC_RAW, Record, decode_record, encode_record


def some_id(n: int) -> bytes:
    return chunk_id(b"object %d" % n)


def rec(data: bytes, kind: Kind = Kind.CHUNK) -> Record:
    return Record(kind, CODEC_RAW, len(data), data)


def payload(store: Any, object_id: bytes) -> bytes | None:
    record = store.get(object_id)
    return None if record is None else bytes(record.payload)


def ref(label: bytes) -> bytes:
    """A ref value: an object id's length (32 bytes), recognisable by its label."""
    return label.ljust(32, b"-")


class Boom(Exception):
    """Raised inside a batch to abort it."""


class StoreConformance:
    """Backend-independent behaviour of ``zerofs.store.base.Store``."""

    DELETES_AND_META: ClassVar[bool] = True
    """The backend takes deletions and metadata in a batch (S3 refuses both: see its own tests)."""

    def stored_bytes(self, payload_bytes: int) -> int:
        """Bytes the backend stores for a payload (an encrypted one pads and seals it)."""
        return payload_bytes

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        return store

    def move_ref_elsewhere(self, store: Any, name: bytes, value: bytes) -> None:
        """Move a ref as another process would, outside any batch of ``store``."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    # -- objects ----------------------------------------------------------

    def test_get_missing_is_none(self, store: Any) -> None:
        assert store.get(some_id(1)) is None
        assert store.info(some_id(1)) is None
        assert not store.has(some_id(1))

    def test_put_then_get_and_has(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.put(some_id(1), rec(b"record one")) is True
            assert batch.has(some_id(1))
        assert store.has(some_id(1))
        assert payload(store, some_id(1)) == b"record one"
        assert not store.has(some_id(2))

    def test_record_fields_and_info(self, store: Any) -> None:
        body = b"zerofs " * 1000
        record = encode_record(Kind.SYMLINK, body, 3)
        object_id = chunk_id(b"any id")
        with store.batch() as batch:
            batch.put(object_id, record)
        got = store.get(object_id)
        assert (got.kind, got.codec, got.raw_bytes, bytes(got.payload)) == (
            Kind.SYMLINK,
            record.codec,
            len(body),
            bytes(record.payload),
        )
        info = store.info(object_id)
        stored = self.stored_bytes(len(record.payload))
        assert (info.kind, info.stored_bytes, info.raw_bytes) == (Kind.SYMLINK, stored, len(body))

    def test_put_existing_id_returns_false_and_keeps_first(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.put(some_id(1), rec(b"first")) is True
            assert batch.put(some_id(1), rec(b"second")) is False
        with store.batch() as batch:
            assert batch.put(some_id(1), rec(b"third")) is False
        assert payload(store, some_id(1)) == b"first"

    def test_empty_and_large_records(self, store: Any) -> None:
        big = os.urandom(3 << 20)
        with store.batch() as batch:
            batch.put(some_id(1), rec(b""))
            batch.put(some_id(2), rec(big))
        assert payload(store, some_id(1)) == b""
        assert store.has(some_id(1))
        assert payload(store, some_id(2)) == big

    def test_verified_round_trip_survives_reopen(self, tmp_path: Path) -> None:
        bodies = [os.urandom(100_000), b"text " * 20_000, b"", b"x"]
        ids = [chunk_id(body) for body in bodies]
        store = self.make_store(tmp_path)
        with store.batch() as batch:
            for object_id, body in zip(ids, bodies, strict=True):
                batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
        store = self.reopen(store, tmp_path)
        try:
            for object_id, body in zip(ids, bodies, strict=True):
                assert decode_record(object_id, store.get(object_id)) == body
        finally:
            store.close()

    def test_has_checker_sees_committed_records(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(1), rec(b"one"))
        with store.has_checker() as has:
            assert has(some_id(1))
            assert not has(some_id(2))

    def test_iter_blobs_with_prefix(self, store: Any) -> None:
        ids = sorted(some_id(n) for n in range(20))
        with store.batch() as batch:
            for object_id in ids:
                batch.put(object_id, rec(object_id[:4]))
        prefix = ids[7][:1]
        assert [i for i, _ in store.iter_blobs(prefix)] == [i for i in ids if i.startswith(prefix)]
        assert list(store.iter_blobs(b"\xff" * 33)) == []
        listed = list(store.iter_blobs())
        assert [i for i, _ in listed] == ids
        assert all(info.kind is Kind.CHUNK and info.raw_bytes == 4 for _, info in listed)

    def test_scan_reads_every_blob_once(self, store: Any) -> None:
        ids = {some_id(n) for n in range(30)}
        with store.batch() as batch:
            for object_id in sorted(ids):
                batch.put(object_id, rec(object_id[:8]))
        scanned = list(store.scan())
        assert sorted(s.object_id for s in scanned) == sorted(ids)
        assert all(s.record is not None and bytes(s.record.payload) == s.object_id[:8] for s in scanned)

    def test_delete(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(1), rec(b"one"))
            batch.put(some_id(2), rec(b"two"))
        with store.batch() as batch:
            assert batch.delete(some_id(1))
            assert not batch.delete(some_id(3))
        assert not store.has(some_id(1))
        assert payload(store, some_id(2)) == b"two"
        assert [i for i, _ in store.iter_blobs()] == [some_id(2)]

    def test_many_batches_accumulate(self, store: Any) -> None:
        for n in range(20):
            with store.batch() as batch:
                batch.put(some_id(n), rec(b"%d" % n))
        assert all(payload(store, some_id(n)) == b"%d" % n for n in range(20))

    def test_batch_aborted_on_exception_writes_nothing(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(0), rec(b"kept"))
            assert batch.cas_ref(b"HEAD", None, ref(b"h0"))
        with pytest.raises(Boom), store.batch() as batch:  # noqa: PT012 - the batch body is the point
            batch.put(some_id(1), rec(b"lost"))
            if self.DELETES_AND_META:
                batch.put_meta(b"k", b"lost")
                assert batch.delete(some_id(0))
            assert batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"h1"))
            raise Boom
        assert store.get(some_id(1)) is None
        assert not store.has(some_id(1))
        if self.DELETES_AND_META:
            assert store.get_meta(b"k") is None
        assert store.get_ref(b"HEAD") == ref(b"h0")
        assert payload(store, some_id(0)) == b"kept"
        assert [i for i, _ in store.iter_blobs()] == [some_id(0)]

    def test_failed_cas_at_commit_keeps_only_the_blobs(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(0), rec(b"zero"))
            batch.cas_ref(b"HEAD", None, ref(b"h0"))
        with pytest.raises(RefMovedError), store.batch() as batch:  # noqa: PT012 - the batch body is the point
            batch.put(some_id(1), rec(b"blob of the losing writer"))
            if self.DELETES_AND_META:
                batch.put_meta(b"k", b"v")
                assert batch.delete(some_id(0))
            assert batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"mine"))
            self.move_ref_elsewhere(store, b"HEAD", ref(b"theirs"))
        assert store.get_ref(b"HEAD") == ref(b"theirs")
        assert payload(store, some_id(1)) == b"blob of the losing writer"
        assert payload(store, some_id(0)) == b"zero", "a deletion landed with a failed compare-and-swap"
        if self.DELETES_AND_META:
            assert store.get_meta(b"k") is None

    # -- refs -------------------------------------------------------------

    def test_ref_missing_is_none(self, store: Any) -> None:
        assert store.get_ref(b"HEAD") is None

    def test_cas_ref_create_expects_none(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", ref(b"something"), ref(b"h1")) is False
            assert batch.get_ref(b"HEAD") is None
            assert batch.cas_ref(b"HEAD", None, ref(b"h1")) is True
            assert batch.get_ref(b"HEAD") == ref(b"h1")
        assert store.get_ref(b"HEAD") == ref(b"h1")

    def test_cas_ref_wrong_expected_fails_right_one_succeeds(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, ref(b"h1"))
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, ref(b"h2")) is False
            assert batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"h2")) is False
            assert batch.get_ref(b"HEAD") == ref(b"h1")
        assert store.get_ref(b"HEAD") == ref(b"h1")
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", ref(b"h1"), ref(b"h2")) is True
        assert store.get_ref(b"HEAD") == ref(b"h2")

    def test_refs_are_independent(self, store: Any) -> None:
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", None, ref(b"a"))
            assert batch.cas_ref(b"other", None, ref(b"b"))
        assert store.get_ref(b"HEAD") == ref(b"a")
        assert store.get_ref(b"other") == ref(b"b")

    def test_batch_sees_refs_committed_before_it(self, store: Any) -> None:
        with store.batch() as batch:
            batch.cas_ref(b"HEAD", None, ref(b"a"))
        with store.batch() as batch:
            assert batch.get_ref(b"HEAD") == ref(b"a")

    # -- meta and cache ---------------------------------------------------

    def test_meta_round_trip(self, store: Any) -> None:
        assert store.get_meta(b"settings") is None
        with store.batch() as batch:
            batch.put_meta(b"settings", b'{"v": 1}')
        assert store.get_meta(b"settings") == b'{"v": 1}'
        with store.batch() as batch:
            batch.put_meta(b"settings", b'{"v": 2}')
        assert store.get_meta(b"settings") == b'{"v": 2}'

    def test_namespaces_do_not_mix(self, store: Any) -> None:
        key = some_id(7)
        with store.batch() as batch:
            batch.put_meta(key, b"meta")
            batch.cas_ref(key, None, ref(b"ref"))
        assert store.get(key) is None
        assert store.get_meta(key) == b"meta"
        assert store.get_ref(key) == ref(b"ref")
        assert list(store.iter_blobs()) == []
