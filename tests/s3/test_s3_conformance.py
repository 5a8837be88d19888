"""The S3 backend runs the Store conformance suite on the real SeaweedFS; deletion and metadata it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.store.conformance import StoreConformance, payload, rec, ref, some_id
from zerofs.store.base import RefMovedError
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.reflog import RefMove, encode_record
from zerofs.store.s3config import S3Location, S3Settings
from zerofs.store.s3store import S3Store, UnsupportedOnS3Error, create_config, seal_ref

TAG = bytes(6)


class TestS3Store(StoreConformance):
    DELETES_AND_META = False  # test_delete and test_meta_round_trip below show the refusal
    _location: S3Location
    _settings: S3Settings

    @pytest.fixture(autouse=True)
    def _server(self, bucket: str, s3_settings: S3Settings) -> None:
        self._location, self._settings = S3Location(bucket, "repo"), s3_settings

    def sealer(self) -> Any:
        """The store's keys: None for a plain repository (the sealed suite gives its own)."""
        return None

    def make_store(self, tmp_path: Path, cache: str = "cache") -> Any:
        objects = S3Objects(self._location, self._settings)
        if objects.head("config") is None:
            create_config(objects, b"{}")
        return S3Store(objects, self._location.url, str(tmp_path / cache), TAG, sealer=self.sealer())

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        """Another host: everything is read back from the bucket alone, through a new cache."""
        store.close()
        return self.make_store(tmp_path, cache="another-cache")

    def move_ref_elsewhere(self, store: Any, name: bytes, value: bytes) -> None:
        objects = S3Objects(self._location, self._settings)
        other = S3Store(objects, self._location.url, "/nonexistent/x", TAG, sealer=self.sealer())
        try:
            other.move_ref(name, other.get_ref(name), value)
        finally:
            other.close()

    # -- what S3 refuses (gc and metadata are not built there), in place of the suite's cases that need them --

    def test_delete(self, store: Any) -> None:
        with store.batch() as batch:
            batch.put(some_id(1), rec(b"one"))
        with pytest.raises(UnsupportedOnS3Error), store.batch() as batch:
            batch.delete(some_id(1))
        assert payload(store, some_id(1)) == b"one"

    def test_meta_round_trip(self, store: Any) -> None:
        assert store.get_meta(b"settings") is None
        with pytest.raises(UnsupportedOnS3Error), store.batch() as batch:
            batch.put_meta(b"settings", b'{"v": 1}')
        assert store.get_meta(b"settings") is None

    def test_namespaces_do_not_mix(self, store: Any) -> None:
        with store.batch() as batch:
            batch.cas_ref(b"GRAFTS", None, some_id(7))
        assert store.get(some_id(7)) is None
        assert store.get_ref(b"GRAFTS") == some_id(7)
        assert list(store.iter_blobs()) == []

    def test_a_move_completed_and_moved_past_by_another_writer_succeeds(self, store: Any, tmp_path: Path) -> None:
        """Between this writer's log and its ref write, another completes the move and makes its own on top.

        The move was made (the ref went through it), so it must not fail as
        "changed outside its log" (it did under load in test_s3_gc_stress).
        """
        with store.batch() as batch:
            batch.cas_ref(b"HEAD", None, ref(b"h0"))
        other = self.make_store(tmp_path, cache="other-cache")
        create = store.objects.create

        def create_then_let_the_other_writer_in(key: str, data: bytes) -> Any:
            created = create(key, data)
            if created is not None and key.startswith("reflog/HEAD/"):
                with pytest.raises(RefMovedError), other.batch() as batch:  # completes ours, then refuses its own
                    batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"theirs"))
                with other.batch() as batch:
                    assert batch.cas_ref(b"HEAD", ref(b"mine"), ref(b"theirs"))
            return created

        store.objects.create = create_then_let_the_other_writer_in
        try:
            with store.batch() as batch:
                assert batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"mine"))
        finally:
            del store.objects.create
            other.close()
        assert store.get_ref(b"HEAD") == ref(b"theirs")

    def test_a_writer_that_died_between_its_log_and_its_ref_is_completed_by_the_next(self, store: Any) -> None:
        with store.batch() as batch:
            batch.cas_ref(b"HEAD", None, ref(b"h0"))
        logged = RefMove(1, 0, b"HEAD", ref(b"h0"), ref(b"dead"))
        record = seal_ref(encode_record(logged, TAG + bytes(6)), logged, store.sealer)  # as the dead writer did
        assert store.objects.create("reflog/HEAD/0000000000000001", record)
        with pytest.raises(RefMovedError), store.batch() as batch:
            batch.cas_ref(b"HEAD", ref(b"h0"), ref(b"mine"))
        assert store.get_ref(b"HEAD") == ref(b"dead")  # the logged move, completed
        with store.batch() as batch:
            assert batch.cas_ref(b"HEAD", ref(b"dead"), ref(b"mine"))
        assert store.get_ref(b"HEAD") == ref(b"mine")
