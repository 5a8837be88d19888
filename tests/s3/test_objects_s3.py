"""The object-store layer against a real SeaweedFS: conditional writes, ranged reads, pagination, deletes."""

from __future__ import annotations

import os
import threading

import obstore
import pytest
from obstore.exceptions import AlreadyExistsError, PreconditionError

from tests.s3.conftest import fast_settings
from tests.s3.faultproxy import FaultProxy
from zerofs.errors import DamagedObjectError, MissingObjectError
from zerofs.store.objects_s3 import ObjectData, ObjectInfo, RangeRequest, S3Objects
from zerofs.store.s3config import S3Location, S3Settings

MIB = 1 << 20


def test_seaweedfs_itself_answers_412_to_both_conditionals(objects: S3Objects) -> None:
    # The engine, not our layer: a second If-None-Match: * and a stale If-Match are both refused.
    store = objects._store
    first = obstore.put(store, "raw", b"one", mode="create")
    with pytest.raises(AlreadyExistsError, match="412"):
        obstore.put(store, "raw", b"two", mode="create")
    with pytest.raises(PreconditionError, match="412"):
        obstore.put(store, "raw", b"two", mode={"e_tag": '"0123456789abcdef0123456789abcdef"'})
    obstore.put(store, "raw", b"two", mode={"e_tag": first["e_tag"]})
    assert bytes(obstore.get(store, "raw").bytes()) == b"two"


def test_create_writes_once_and_never_overwrites(objects: S3Objects) -> None:
    etag = objects.create("refs/HEAD", b"commit-1")
    assert etag
    assert objects.create("refs/HEAD", b"commit-2") is None
    stored = objects.get("refs/HEAD")
    assert stored == ObjectData(b"commit-1", etag)


def test_create_of_the_same_bytes_again_succeeds_as_a_retry_would(objects: S3Objects) -> None:
    etag = objects.create("packs/p1", b"pack bytes")
    assert objects.create("packs/p1", b"pack bytes") == etag
    assert objects.create("packs/p1", b"pack bytes but longer") is None


def test_replace_moves_only_from_the_current_etag(objects: S3Objects) -> None:
    first = objects.create("refs/HEAD", b"A")
    assert first is not None
    second = objects.replace("refs/HEAD", b"B", first)
    assert second is not None
    assert second != first
    assert objects.replace("refs/HEAD", b"C", first) is None  # stale ETag: 412
    assert objects.get("refs/HEAD") == ObjectData(b"B", second)
    info = objects.head("refs/HEAD")
    assert info == ObjectInfo("refs/HEAD", 1, second)


def test_replace_of_a_deleted_object_fails(objects: S3Objects) -> None:
    etag = objects.create("refs/HEAD", b"A")
    assert etag is not None
    objects.delete("refs/HEAD")
    assert objects.replace("refs/HEAD", b"B", etag) is None
    assert objects.get("refs/HEAD") is None


def test_concurrent_compare_and_swap_loses_no_update(bucket: str, s3_settings: S3Settings) -> None:
    location = S3Location(bucket, "cas")
    with S3Objects(location, s3_settings) as setup:
        assert setup.create("counter", b"0") is not None
    n_threads, n_increments = 4, 15

    def writer(name: bytes) -> None:
        # Each value carries its writer's name, as a ref carries its writer's nonce (see ObjectStore).
        with S3Objects(location, s3_settings) as store:
            done = 0
            while done < n_increments:
                stored = store.get("counter")
                assert stored is not None
                value = int(stored.data.split()[0]) + 1
                if store.replace("counter", b"%d %s" % (value, name), stored.etag) is not None:
                    done += 1

    threads = [threading.Thread(target=writer, args=(b"writer-%d" % n,)) for n in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with S3Objects(location, s3_settings) as check:
        stored = check.get("counter")
        assert stored is not None
        assert int(stored.data.split()[0]) == n_threads * n_increments


def test_ranged_reads_return_exactly_the_bytes_asked(objects: S3Objects) -> None:
    data = {key: os.urandom(2 * MIB + 123) for key in ("packs/a", "packs/b")}
    for key, value in data.items():
        assert objects.create(key, value) is not None
    assert objects.get_range("packs/a", 1000, 65536) == data["packs/a"][1000 : 1000 + 65536]
    assert objects.get_range("packs/b", 2 * MIB, 1000) == data["packs/b"][2 * MIB : 2 * MIB + 123]  # short at the end
    requests = [RangeRequest(key, start, 65536) for key in data for start in range(0, 2 * MIB, 300_000)]
    pieces = objects.get_ranges(requests)
    assert pieces == [data[key][start : start + length] for key, start, length in requests]


def test_ranged_reads_at_the_edges(objects: S3Objects) -> None:
    assert objects.create("packs/short", b"0123456789") is not None
    assert objects.get_range("packs/short", 4, 0) == b""
    assert objects.get_range("packs/short", 8, 5) == b"89"
    with pytest.raises(DamagedObjectError, match=r"s3://.*/repo/packs/short ends before byte 10"):
        objects.get_range("packs/short", 10, 5)


def test_ranged_read_of_a_missing_object_names_it(objects: S3Objects) -> None:
    with pytest.raises(MissingObjectError, match=r"s3://zerofs-.*/repo/packs/nope is missing"):
        objects.get_range("packs/nope", 0, 10)
    with pytest.raises(MissingObjectError):
        objects.get_ranges([RangeRequest("packs/nope", 0, 10), RangeRequest("packs/nope", 10, 10)])


def test_head_and_get_of_missing_objects_are_none(objects: S3Objects) -> None:
    assert objects.head("nothing") is None
    assert objects.get("nothing") is None


def test_list_pages_through_more_than_a_thousand_keys(bucket: str, proxy: FaultProxy) -> None:
    keys = [f"index/{n:05d}" for n in range(1234)]
    with S3Objects(S3Location(bucket, "big"), fast_settings(proxy.endpoint)) as store:
        for key in keys:
            assert store.create(key, b"x") is not None
        assert store.create("indexes/other", b"y") is not None  # a sibling whose name starts the same
        assert store.create("packs/p", b"z") is not None
        proxy.seen.clear()
        listed = list(store.list("index"))
        assert [info.key for info in listed] == keys
        assert all(info.size_bytes == 1 and info.etag for info in listed)
        list_requests = [r for r in proxy.seen if r.method == "GET" and "list-type=2" in r.target]
        assert len(list_requests) == 2  # 1,000 keys a page
        assert [info.key for info in store.list("index", start_after="index/01200")] == keys[1201:]
        assert len(list(store.list(""))) == len(keys) + 2


def test_delete_removes_and_is_idempotent(objects: S3Objects) -> None:
    assert objects.create("packs/gone", b"bytes") is not None
    objects.delete("packs/gone")
    objects.delete("packs/gone")
    assert objects.head("packs/gone") is None
    assert objects.create("packs/gone", b"new") is not None


def test_a_32_mib_pack_is_created_in_one_conditional_put(bucket: str, proxy: FaultProxy) -> None:
    data = os.urandom(32 * MIB)
    with S3Objects(S3Location(bucket, "big"), fast_settings(proxy.endpoint)) as store:
        etag = store.create("packs/big", memoryview(data))
        puts = [r for r in proxy.seen if r.method in ("PUT", "POST")]
        assert len(puts) == 1, [(r.method, r.target) for r in puts]  # no multipart upload
        assert puts[0].headers.get("if-none-match") == "*"
        assert puts[0].body_bytes == 32 * MIB
        assert store.create("packs/big", os.urandom(32 * MIB)) is None
        info = store.head("packs/big")
        assert info == ObjectInfo("packs/big", 32 * MIB, etag)
        assert store.get_range("packs/big", 31 * MIB, 65536) == data[31 * MIB : 31 * MIB + 65536]


def test_verify_conditional_writes_passes_on_seaweedfs_and_cleans_up(objects: S3Objects) -> None:
    objects.verify_conditional_writes()
    assert list(objects.list(".zerofs-probe")) == []
