"""An encrypted S3Store on the real SeaweedFS: the conformance suite, tampering with the bucket, nothing in the clear.

Every tamper case changes objects of the bucket as an attacker with write
access to it would (a bit flipped in a pack or an index object, a pack or
an index object copied under another key, an old log record replayed), then
asks a host with a fresh cache (``get``), the data scan (``scan``, what
``fsck --read-data`` reads), the storage check (``check_storage``, plain
``fsck``) or an index rebuild what they make of it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from tests.s3 import test_s3_conformance as plain
from zerofs.crypto.keys import Keys
from zerofs.errors import CorruptionError, DamagedObjectError
from zerofs.objects import Kind
from zerofs.store.codec import decode_record, encode_record
from zerofs.store.maintenance import parse_pack
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.packfile import BLOB_HEADER, PACK_HEADER
from zerofs.store.results import StorageProblemKind
from zerofs.store.s3cache import META_SUFFIX, index_key
from zerofs.store.s3collect import SharedCollection, rebuild_index
from zerofs.store.s3config import S3Location, S3Settings
from zerofs.store.s3store import HELD, S3Store, _NewPack, create_config
from zerofs.store.sealer import Sealer, sealed_record_bytes

KEYS = Keys.derive(bytes(range(32)))
TAG = plain.TAG
MARKER = b"zerofs-plaintext-marker-" + os.urandom(8).hex().encode()


class TestSealedS3Store(plain.TestS3Store):
    """The plain S3 store's suite, every pack, index object and ref sealed."""

    def stored_bytes(self, payload_bytes: int) -> int:
        return sealed_record_bytes(payload_bytes)

    def sealer(self) -> Any:
        return Sealer(KEYS)


# -- helpers ------------------------------------------------------------------------


class Bucket:
    """One repository prefix of the test server, and hosts on it (each its own cache)."""

    def __init__(self, bucket: str, settings: S3Settings, tmp_path: Path) -> None:
        self.location = S3Location(bucket, "repo")
        self.settings = settings
        self.tmp_path = tmp_path
        self.objects = S3Objects(self.location, settings)
        self._hosts = 0
        create_config(self.objects, b"{}")

    def host(self, keys: Keys = KEYS, grace_s: float = 1800) -> S3Store:
        """A new host (a fresh cache): all it reads comes from the bucket."""
        self._hosts += 1
        objects = S3Objects(self.location, self.settings)
        cache = str(self.tmp_path / f"cache-{self._hosts}")
        return S3Store(objects, self.location.url, cache, TAG, sealer=Sealer(keys), grace_s=grace_s)

    def keys_under(self, prefix: str) -> list[str]:
        return [info.key for info in self.objects.list(prefix)]

    def get(self, key: str) -> bytes:
        found = self.objects.get(key)
        assert found is not None, key
        return bytes(found.data)

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key``, over what is there (as an attacker with write access would)."""
        self.objects.delete(key)
        assert self.objects.create(key, data) is not None

    def flip(self, key: str, offset: int) -> None:
        data = bytearray(self.get(key))
        data[offset] ^= 1
        self.put(key, bytes(data))


@pytest.fixture
def repo(bucket: str, s3_settings: S3Settings, tmp_path: Path) -> Bucket:
    return Bucket(bucket, s3_settings, tmp_path)


def keyed(kind: Kind, body: bytes) -> bytes:
    return KEYS.object_id(kind, body)


BODIES = {
    Kind.CHUNK: [MARKER, MARKER * 50 + b" compressible", os.urandom(3000)],
    Kind.FILE: [b"a file node naming " + MARKER],
    Kind.DIR: [b"a directory entry " + MARKER],
    Kind.COMMIT: [b"a commit " + MARKER],
}


def store_bodies(store: S3Store, bodies: dict[Kind, list[bytes]] = BODIES) -> dict[bytes, bytes]:
    """Store ``bodies`` under keyed ids and point HEAD at the commit; id -> body."""
    ids: dict[bytes, bytes] = {}
    with store.batch() as batch:
        for kind, kind_bodies in bodies.items():
            for body in kind_bodies:
                object_id = keyed(kind, body)
                batch.put(object_id, encode_record(kind, body, 3))
                ids[object_id] = body
        batch.cas_ref(b"HEAD", store.get_ref(b"HEAD"), keyed(Kind.COMMIT, bodies[Kind.COMMIT][0]))
    return ids


def read_body(store: S3Store, object_id: bytes) -> bytes | None:
    record = store.get(object_id)
    return None if record is None else decode_record(object_id, record, KEYS.object_id)


def one_pack(repo: Bucket) -> str:
    (key,) = repo.keys_under("packs")
    return key


# -- what the bucket holds ----------------------------------------------------------


def test_no_plaintext_in_any_object_of_the_bucket(repo: Bucket) -> None:
    store = repo.host()
    ids = store_bodies(store)
    moved = store_bodies(store, {Kind.COMMIT: [b"a second commit " + MARKER]})  # a second ref move
    store.close()
    keys = repo.keys_under("")
    assert {key.split("/", 1)[0] for key in keys} == {"config", "packs", "index", "refs", "reflog"}
    for key in keys:
        data = repo.get(key)
        assert MARKER not in data, key
        assert MARKER[:16] not in data, key
        if key.startswith(("refs/", "reflog/")):
            assert not any(object_id in data for object_id in ids | moved), key  # the ref's value is sealed too
    reader = repo.host()
    assert {i: read_body(reader, i) for i in ids} == ids
    reader.close()


def test_two_hosts_read_each_others_sealed_packs(repo: Bucket) -> None:
    first, second = repo.host(), repo.host()
    from_first = store_bodies(first)
    assert {i: read_body(second, i) for i in from_first} == from_first
    from_second = store_bodies(second, {Kind.CHUNK: [b"from the second host"], Kind.COMMIT: [b"second commit"]})
    assert {i: read_body(first, i) for i in from_second} == from_second
    assert first.get_ref(b"HEAD") == keyed(Kind.COMMIT, b"second commit")
    first.close()
    second.close()


def test_a_host_with_another_key_reads_nothing(repo: Bucket) -> None:
    ids = store_bodies(repo.host())
    stranger = repo.host(Keys.derive(bytes(range(1, 33))))
    with pytest.raises(CorruptionError):
        stranger.get_ref(b"HEAD")
    assert all(stranger.get(i) is None for i in ids)  # no index object opens: nothing is found
    assert len(stranger.damaged_index) == len(repo.keys_under("index"))
    stranger.close()


def test_rebuild_index_reads_sealed_packs(repo: Bucket) -> None:
    store = repo.host()
    ids = store_bodies(store)
    store.close()
    for key in repo.keys_under("index"):
        repo.objects.delete(key)
    rebuilder = repo.host()
    result = rebuild_index(rebuilder)
    rebuilder.close()
    assert result.n_blobs == len(ids)
    assert result.problems == (f"indexed again {len(ids)} objects that no intact index object named",)
    reader = repo.host()
    assert {i: read_body(reader, i) for i in ids} == ids
    assert list(reader.check_storage()) == []
    reader.close()


def test_gc_plans_are_sealed_and_gc_copies_sealed_blobs(repo: Bucket) -> None:
    store = repo.host(grace_s=0.2)
    ids = store_bodies(store)
    garbage = keyed(Kind.CHUNK, BODIES[Kind.CHUNK][2])
    marked = set(ids) - {garbage}
    collection = SharedCollection.publish(store, marked, dead_share=0.0)
    plan = repo.get(collection.key)
    assert not any(object_id in plan for object_id in ids)  # doomed ids and pack names are sealed
    watcher = repo.host(grace_s=0.2)  # reads the sealed plan: the blob it dooms is absent for it
    assert not watcher.has(garbage)
    watcher.close()
    collection.wait()
    collection.nodes_stored_since()
    collection.finish(marked)
    store.close()
    reader = repo.host()
    assert reader.get(garbage) is None
    assert {i: read_body(reader, i) for i in marked} == {i: ids[i] for i in marked}
    assert list(reader.check_storage()) == []
    reader.close()


# -- tampering ----------------------------------------------------------------------


def test_a_flipped_bit_in_a_pack_is_detected_on_read_and_by_the_data_scan(repo: Bucket) -> None:
    store = repo.host()
    ids = store_bodies(store)
    store.close()
    marker_id = keyed(Kind.CHUNK, MARKER)
    located = repo.host()
    location = located.cache.locate(marker_id) if located.has(marker_id) else None
    located.close()
    assert location is not None
    repo.flip(one_pack(repo), location.offset + BLOB_HEADER.size + 40)  # inside its sealed payload
    reader = repo.host()
    with pytest.raises(DamagedObjectError, match="fails authentication"):
        reader.get(marker_id)
    others = {i for i in ids if i != marker_id}
    assert {i: read_body(reader, i) for i in others} == {i: ids[i] for i in others}
    scanned = {record.object_id: record.problem for record in reader.scan()}
    assert set(scanned) == set(ids)
    assert [i for i, problem in scanned.items() if problem is not None] == [marker_id]  # the others still read
    assert "fails authentication as a chunk" in str(scanned[marker_id])
    reader.close()


def test_a_flipped_bit_in_an_index_object_is_reported_and_nothing_reads_wrong(repo: Bucket) -> None:
    store = repo.host()
    ids = store_bodies(store)
    store.close()
    (meta_key,) = [key for key in repo.keys_under("index") if key.endswith(META_SUFFIX)]
    repo.flip(meta_key, len(repo.get(meta_key)) - 20)
    reader = repo.host()
    nodes = [i for i in ids if i != keyed(Kind.CHUNK, ids[i])]
    assert all(reader.get(i) is None for i in nodes)  # missing, never wrong
    problems = [(p.kind, p.detail) for p in reader.check_storage()]
    assert problems == [
        (
            StorageProblemKind.INDEX_ENTRY,
            f"object {reader.url}/{meta_key} fails authentication: "
            "changed, copied from another key, or sealed with another key",
        )
    ]
    reader.close()


def test_an_index_object_copied_under_another_key_does_not_open(repo: Bucket) -> None:
    store = repo.host()
    store_bodies(store)
    store.close()
    (meta_key,) = [key for key in repo.keys_under("index") if key.endswith(META_SUFFIX)]
    copy_key = index_key(META_SUFFIX)
    repo.put(copy_key, repo.get(meta_key))
    reader = repo.host()
    reader.refresh()
    assert set(reader.damaged_index) == {copy_key}
    assert [p.kind for p in reader.check_storage()] == [StorageProblemKind.INDEX_ENTRY]
    reader.close()


def test_a_pack_copied_under_another_name_is_refused(repo: Bucket) -> None:
    store = repo.host()
    store_bodies(store)
    second = store_bodies(store, {Kind.CHUNK: [b"in the second pack"], Kind.COMMIT: [b"second commit"]})
    store.close()
    packs = {key: repo.get(key) for key in repo.keys_under("packs")}
    assert len(packs) == 2
    holds_second = next(key for key, data in packs.items() if any(i in data for i in second))
    other = next(key for key in packs if key != holds_second)
    repo.put(holds_second, packs[other])  # the other pack's bytes under this pack's name
    reader = repo.host()
    chunk = keyed(Kind.CHUNK, b"in the second pack")
    with pytest.raises(DamagedObjectError):
        reader.get(chunk)
    reader.close()
    for key in repo.keys_under("index"):
        repo.objects.delete(key)
    rebuilder = repo.host()
    result = rebuild_index(rebuilder)
    rebuilder.close()
    name = holds_second.rsplit("/", 1)[-1].removesuffix(".pack")
    assert any(p.startswith(f"pack {name}: its sealed trailer does not open") for p in result.problems)


def test_a_replayed_log_record_is_refused_and_reported(repo: Bucket) -> None:
    store = repo.host()
    store_bodies(store, {Kind.COMMIT: [b"commit 0"]})
    store_bodies(store, {Kind.COMMIT: [b"commit 1"]})
    store.close()
    log = repo.keys_under("reflog/HEAD")
    assert [key.rsplit("/", 1)[-1] for key in log] == ["0000000000000000", "0000000000000001"]
    replayed = "reflog/HEAD/0000000000000002"
    repo.put(replayed, repo.get(log[0]))  # an older, authentic record under the next generation
    repo.flip("refs/HEAD", 20)  # the ref is then read from its log
    reader = repo.host()
    assert reader.get_ref(b"HEAD") == keyed(Kind.COMMIT, b"commit 1")  # not the replayed commit 0
    details = [p.detail for p in reader.check_storage() if p.kind is StorageProblemKind.REF_LOG]
    assert any(replayed in detail for detail in details)
    reader.close()


def test_a_ref_record_of_another_ref_does_not_open(repo: Bucket) -> None:
    store = repo.host()
    store_bodies(store)
    store.close()
    repo.put("refs/GRAFTS", repo.get("refs/HEAD"))
    reader = repo.host()
    with pytest.raises(CorruptionError, match="GRAFTS"):
        reader.get_ref(b"GRAFTS")
    reader.close()


def test_a_sealed_pack_header_carries_the_key_check(repo: Bucket) -> None:
    store = repo.host()
    store_bodies(store)
    store.close()
    header = repo.get(one_pack(repo))[: PACK_HEADER.size]
    assert header[5] == 1  # the encrypted flag
    assert header[6:14] == Sealer(KEYS).key_check


def test_a_pack_uploaded_again_under_a_new_name_has_its_trailer_sealed_again() -> None:
    sealer = Sealer(KEYS)
    pack = _NewPack(sealer)
    pack.append(keyed(Kind.CHUNK, MARKER), encode_record(Kind.CHUNK, MARKER, 3))
    pack.finish()
    first = pack.name
    pack.rename()
    parsed = parse_pack(bytes(pack.data), pack.name, sealer)
    assert (parsed.has_trailer, parsed.problems, len(parsed.blobs)) == (True, [], 1)
    assert parse_pack(bytes(pack.data), first, sealer).has_trailer is False  # bound to the new name only


# -- the order of blobs in a pack (issue #15) ----------------------------------------


def ascending_steps(positions: list[int]) -> int:
    """How many neighbours in the write order also lie in that order in the pack."""
    return sum(b > a for a, b in itertools.pairwise(positions))


def test_a_packs_blobs_are_not_in_the_order_they_were_stored(repo: Bucket) -> None:
    bodies = [os.urandom(100 + 13 * i) for i in range(300)]
    ids = [keyed(Kind.CHUNK, body) for body in bodies]
    store = repo.host()
    with store.batch() as batch:
        for object_id, body in zip(ids, bodies, strict=True):
            batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
        assert read_body(store, ids[7]) == bodies[7]  # held back, not in a pack yet: read all the same
    store.close()
    key = one_pack(repo)
    parsed = parse_pack(repo.get(key), bytes.fromhex(key.rsplit("/", 1)[1].removesuffix(".pack")), Sealer(KEYS))
    assert (parsed.has_trailer, parsed.problems) == (True, [])
    in_pack = [blob.header.object_id for blob in parsed.blobs]
    assert sorted(in_pack) == sorted(ids)
    position = {object_id: index for index, object_id in enumerate(in_pack)}
    # A random order has about 150 of 299 steps ascending (sd 5); the write order has all 299.
    assert 100 < ascending_steps([position[object_id] for object_id in ids]) < 200
    reader = repo.host()
    for object_id, body in zip(ids, bodies, strict=True):
        assert read_body(reader, object_id) == body
    assert list(reader.check_storage()) == []
    reader.close()


def read_new(pack: _NewPack, object_id: bytes, stored_bytes: int) -> bytes:
    """A blob of a pack not uploaded yet, as the store reads it (no request: the store is not needed)."""
    return pack.read(None, object_id, HELD, stored_bytes)  # type: ignore[arg-type]


def test_a_new_pack_lays_its_held_blobs_out_at_finish_and_reads_them_throughout() -> None:
    sealer = Sealer(KEYS)
    pack = _NewPack(sealer)
    bodies = [os.urandom(200 + i) for i in range(64)]
    ids = [keyed(Kind.CHUNK, body) for body in bodies]
    stored = [pack.append(i, encode_record(Kind.CHUNK, b, 3)) for i, b in zip(ids, bodies, strict=True)]
    assert {offset for offset, _ in stored} == {HELD}
    assert pack.size == PACK_HEADER.size + sum(BLOB_HEADER.size + length for _, length in stored)
    lengths = [length for _, length in stored]
    before = [read_new(pack, object_id, length) for object_id, length in zip(ids, lengths, strict=True)]
    pack.finish()
    after = [read_new(pack, object_id, length) for object_id, length in zip(ids, lengths, strict=True)]
    assert before == after
    parsed = parse_pack(bytes(pack.data), pack.name, sealer)
    assert [blob.offset for blob in parsed.blobs] == [pack.placed[blob.header.object_id] for blob in parsed.blobs]
    assert [blob.header.object_id for blob in parsed.blobs] != ids
