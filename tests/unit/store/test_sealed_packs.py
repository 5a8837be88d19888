"""An encrypted PackStore: the conformance suite, the sealed formats, and tampering that must be detected.

Every tamper case damages the files as an attacker with write access to the
repository directory would (bytes of packs flipped, swapped, copied or
replaced), then asks the store (``get``), the data scan (``scan``, what
``fsck --read-data`` reads), the storage check (``check_storage``, plain
``fsck``) and an index rebuild what they make of it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import blake3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.store.conformance import StoreConformance, rec, some_id
from zerofs.crypto.keys import Keys
from zerofs.crypto.sealing import AuthenticationError, chunk_ad, node_ad, session_key
from zerofs.errors import CorruptionError, DamagedObjectError
from zerofs.objects import Kind
from zerofs.store.codec import CODEC_SEALED, decode_record, encode_record
from zerofs.store.local import SHUFFLE_BYTES, PackStore
from zerofs.store.maintenance import check_storage, rebuild_index
from zerofs.store.packfile import BLOB_HEADER, FLAG_ENCRYPTED, PACK_HEADER, SEALED_KIND, SEALED_TAIL, pack_header
from zerofs.store.results import StorageProblemKind
from zerofs.store.sealer import Sealer, sealed_record_bytes

KEYS = Keys.derive(bytes(range(32)))
OTHER_KEYS = Keys.derive(bytes(range(1, 33)))


def sealer(keys: Keys = KEYS) -> Sealer:
    return Sealer(keys)


def new_store(root: Path, keys: Keys = KEYS) -> PackStore:
    root.mkdir(exist_ok=True)
    return PackStore.create(root, b"{}", sealer=sealer(keys))


def keyed_id(kind: Kind, body: bytes) -> bytes:
    return KEYS.object_id(kind, body)


class TestSealedPackStore(StoreConformance):
    def stored_bytes(self, payload_bytes: int) -> int:
        return sealed_record_bytes(payload_bytes)

    def make_store(self, tmp_path: Path) -> Any:
        return new_store(tmp_path / "repo")

    def reopen(self, store: Any, tmp_path: Path) -> Any:
        store.close()
        return PackStore(tmp_path / "repo", sealer=sealer())

    def move_ref_elsewhere(self, store: Any, name: bytes, value: bytes) -> None:
        with store.index.writing() as txn:
            txn.put(name, store.index.ref_value(name, value), db=store.index.refs)


# -- helpers ------------------------------------------------------------------------


def stored_objects(
    root: Path, bodies: dict[Kind, list[bytes]], keys: Keys = KEYS
) -> tuple[PackStore, dict[bytes, bytes]]:
    """A closed-and-reopened encrypted store holding ``bodies`` under keyed ids; (store, id -> body)."""
    store = new_store(root, keys)
    ids: dict[bytes, bytes] = {}
    with store.batch() as batch:
        for kind, kind_bodies in bodies.items():
            for body in kind_bodies:
                object_id = keyed_id(kind, body)
                batch.put(object_id, encode_record(kind, body, 3))
                ids[object_id] = body
        batch.cas_ref(b"HEAD", None, head_of(ids))
    store.close()  # seals the pack: header, sealed blobs, sealed trailer
    return PackStore(root, sealer=sealer(keys)), ids


def head_of(ids: dict[bytes, bytes]) -> bytes:
    """What HEAD names in these tests: the commit, when there is one."""
    commits = [i for i, body in ids.items() if i == keyed_id(Kind.COMMIT, body)]
    return commits[0] if commits else next(iter(ids))


def read_body(store: PackStore, object_id: bytes) -> bytes:
    record = store.get(object_id)
    assert record is not None
    return decode_record(object_id, record, KEYS.object_id)


def pack_files(store: PackStore) -> list[Path]:
    return sorted(Path(store.files.path(name)) for name in store.files.list())


def flip(path: Path | str, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes((byte ^ (1 << bit),)))


def problems_of(store: PackStore) -> list[tuple[StorageProblemKind, str, bool]]:
    return [(p.kind, p.detail, p.is_error) for p in check_storage(store)]


def rebuilt(store: PackStore, keys: Keys = KEYS) -> tuple[PackStore, tuple[str, ...]]:
    """Rebuild the index of ``store``'s repository from its packs; (reopened store, problems)."""
    root = store.root
    store.close()
    result = rebuild_index(root, b"{}", sealer(keys))
    return PackStore(root, sealer=sealer(keys)), result.problems


BODIES = {
    Kind.CHUNK: [os.urandom(5000), b"compressible text " * 400, b""],
    Kind.FILE: [b"a file node"],
    Kind.DIR: [b"a directory node" * 10],
    Kind.COMMIT: [b"a commit"],
}


# -- the format ---------------------------------------------------------------------


def test_a_sealed_blob_shows_only_its_id_and_sealed_length(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        (path,) = pack_files(store)
        data = path.read_bytes()
        assert data[: PACK_HEADER.size] == pack_header(sealer().key_check)
        assert data[5] == FLAG_ENCRYPTED
        for object_id, body in ids.items():
            _, offset, _length = store.locate(object_id)
            header = data[offset : offset + BLOB_HEADER.size]
            assert header[:32] == object_id
            assert header[32] == SEALED_KIND
            assert header[33] == CODEC_SEALED
            assert header[38:42] == bytes(4)  # no raw length
            assert read_body(store, object_id) == body
            if len(body) >= 16:
                assert body[:16] not in data, "plaintext in an encrypted pack"
        assert data.endswith(SEALED_TAIL.pack(int.from_bytes(data[-8:-4], "little"), b"ZFPE"))
        assert list(check_storage(store)) == []
    finally:
        store.close()


def test_two_repositories_have_different_key_checks() -> None:
    assert sealer(KEYS).key_check != sealer(OTHER_KEYS).key_check
    assert len(sealer().key_check) == 8
    assert "secret" in repr(sealer())
    assert KEYS.id_key.hex() not in repr(sealer())


def test_a_reader_that_does_not_know_the_kind_finds_it(tmp_path: Path) -> None:
    one = sealer()
    for kind in Kind:
        body = b"body of a %d" % kind
        object_id = keyed_id(kind, body)
        sealed = one.seal_record(object_id, encode_record(kind, body, 3))
        opened = one.open_record(object_id, sealed)
        assert opened.kind is kind
        assert decode_record(object_id, opened, KEYS.object_id) == body
        other = Kind.CHUNK if kind is not Kind.CHUNK else Kind.FILE
        with pytest.raises(AuthenticationError):
            one.open_record(object_id, sealed, other)  # the index giving another kind


def test_the_keyed_id_is_what_reads_verify(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", {Kind.CHUNK: [b"some content" * 10]})
    try:
        (object_id,) = ids
        record = store.get(object_id)
        with pytest.raises(DamagedObjectError, match="does not match its hash"):
            decode_record(object_id, record)  # unkeyed BLAKE3 is not this repository's id
    finally:
        store.close()


def test_rebuild_and_gc_rewrite_keep_everything_readable(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        dead = keyed_id(Kind.CHUNK, BODIES[Kind.CHUNK][0])
        with store.batch() as batch:
            batch.delete(dead)
        (old,) = pack_files(store)
        result = store.reclaim(0.01)
        assert result.packs_rewritten == 1
        assert old not in pack_files(store)
        (new,) = pack_files(store)
        assert new.read_bytes()[: PACK_HEADER.size] == pack_header(sealer().key_check)
        for object_id, body in ids.items():
            if object_id != dead:
                assert read_body(store, object_id) == body
        assert list(check_storage(store)) == []
        store, problems = rebuilt(store)
        assert problems == ()
        assert {i for i, _ in store.iter_blobs()} == set(ids) - {dead}
        for object_id, body in ids.items():
            if object_id != dead:
                assert read_body(store, object_id) == body
                info = store.info(object_id)
                assert info.kind is next(k for k, bs in BODIES.items() if body in bs)
        assert store.get_ref(b"HEAD") == head_of(ids)  # the ref log's HEAD, found in the packs
    finally:
        store.close()


def test_a_pack_without_its_trailer_is_read_from_the_start(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        (path,) = pack_files(store)
        data = path.read_bytes()
        data_end = int.from_bytes(data[-8:-4], "little")
        path.write_bytes(data[:data_end])  # a writer that died before its trailer
        assert [p[0] for p in problems_of(store)] == [StorageProblemKind.PACK_TRAILER]
        assert not problems_of(store)[0][2], "a missing trailer is a warning"
        store, problems = rebuilt(store)
        assert problems == ()
        assert {i for i, _ in store.iter_blobs()} == set(ids)
    finally:
        store.close()


def test_the_data_scan_yields_opened_records(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        scanned = list(store.scan())
        assert {s.object_id for s in scanned} == set(ids)
        for item in scanned:
            assert decode_record(item.object_id, item.record, KEYS.object_id) == ids[item.object_id]
    finally:
        store.close()


# -- tampering ----------------------------------------------------------------------


def test_a_flipped_bit_in_a_sealed_blob_is_detected(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        victim = keyed_id(Kind.FILE, BODIES[Kind.FILE][0])
        path, offset, length = store.locate(victim)
        flip(path, offset + length - 20)  # inside the ciphertext
        with pytest.raises(AuthenticationError, match="fails authentication"):
            store.get(victim)
        assert victim not in {s.object_id for s in store.scan() if s.record is not None}
        for object_id, body in ids.items():
            if object_id != victim:
                assert read_body(store, object_id) == body
        store, problems = rebuilt(store)
        assert any("does not open" in p for p in problems)
        assert store.get(victim) is None  # never indexed as something it is not
    finally:
        store.close()


@pytest.mark.parametrize("field", [0, 32, 33, 34, 38])
def test_a_flipped_bit_in_a_sealed_blob_header_is_detected(tmp_path: Path, field: int) -> None:
    store, _ = stored_objects(tmp_path / "repo", BODIES)
    try:
        victim = keyed_id(Kind.CHUNK, BODIES[Kind.CHUNK][1])
        path, offset, _ = store.locate(victim)
        flip(path, offset + field)
        with pytest.raises(DamagedObjectError):
            store.get(victim)
        assert any(p[2] for p in problems_of(store)), "the storage check saw nothing"
    finally:
        store.close()


def test_a_flipped_bit_in_a_sealed_trailer_is_detected_and_harmless(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    try:
        (path,) = pack_files(store)
        flip(path, path.stat().st_size - SEALED_TAIL.size - 30)
        for object_id, body in ids.items():  # reads go through the index, not the trailer
            assert read_body(store, object_id) == body
        (problem,) = problems_of(store)
        assert problem[0] is StorageProblemKind.PACK_TRAILER
        assert problem[2]
        assert "does not open" in problem[1]
        store, problems = rebuilt(store)
        assert any("sealed trailer does not open" in p for p in problems)
        assert {i for i, _ in store.iter_blobs()} == set(ids)  # read from the start instead
        store.reclaim(0.5)  # gc rewrites a pack whose trailer does not open
        assert list(check_storage(store)) == []
    finally:
        store.close()


def test_two_blobs_with_swapped_payloads_are_detected(tmp_path: Path) -> None:
    first, second = os.urandom(3000), os.urandom(3000)
    store, _ = stored_objects(tmp_path / "repo", {Kind.CHUNK: [first, second]})
    try:
        a, b = keyed_id(Kind.CHUNK, first), keyed_id(Kind.CHUNK, second)
        path, offset_a, length = store.locate(a)
        _, offset_b, _ = store.locate(b)
        data = bytearray(Path(path).read_bytes())
        start_a, start_b = offset_a + BLOB_HEADER.size, offset_b + BLOB_HEADER.size
        payload_a = data[start_a : offset_a + length]
        data[start_a : offset_a + length] = data[start_b : offset_b + length]
        data[start_b : offset_b + length] = payload_a
        Path(path).write_bytes(bytes(data))
        for object_id in (a, b):
            with pytest.raises(AuthenticationError):
                store.get(object_id)
        assert not [s for s in store.scan() if s.record is not None]
        store, problems = rebuilt(store)
        assert sum("does not open" in p for p in problems) == 2
        assert list(store.iter_blobs()) == []
    finally:
        store.close()


def two_packs(root: Path) -> tuple[PackStore, dict[bytes, bytes], dict[bytes, bytes]]:
    """A store with two packs: (store, first pack's id -> body, second's)."""
    store, first = stored_objects(root, {Kind.CHUNK: [b"first pack " * 50, os.urandom(700)]})
    second = {}
    with store.batch() as batch:
        for body in (b"second pack " * 50, os.urandom(900)):
            batch.put(keyed_id(Kind.CHUNK, body), encode_record(Kind.CHUNK, body, 3))
            second[keyed_id(Kind.CHUNK, body)] = body
    store.close()
    return PackStore(root, sealer=sealer()), first, second


def test_a_pack_copied_over_another_is_detected(tmp_path: Path) -> None:
    store, first, second = two_packs(tmp_path / "repo")
    try:
        path_a = Path(store.locate(next(iter(first)))[0])
        path_b = Path(store.locate(next(iter(second)))[0])
        shutil.copyfile(path_a, path_b)  # pack B replaced by pack A's bytes under B's name
        for object_id in second:
            with pytest.raises(DamagedObjectError):
                store.get(object_id)
        for object_id, body in first.items():
            assert read_body(store, object_id) == body
        trailer_problems = [p for p in problems_of(store) if p[0] is StorageProblemKind.PACK_TRAILER]
        assert [p[2] for p in trailer_problems] == [True]
        assert path_b.name[:-5] in trailer_problems[0][1]
        store, problems = rebuilt(store)
        assert any(path_b.name[:-5] in p and "does not open" in p for p in problems)
        assert {i for i, _ in store.iter_blobs()} == set(first)  # A's blobs, genuine; B's are gone
        for object_id, body in first.items():
            assert read_body(store, object_id) == body
    finally:
        store.close()


def test_a_pack_copied_under_a_new_name_is_reported(tmp_path: Path) -> None:
    store, first, _ = two_packs(tmp_path / "repo")
    try:
        path_a = Path(store.locate(next(iter(first)))[0])
        copy = path_a.with_name(path_a.name[0] + "0" * 31 + ".pack")
        shutil.copyfile(path_a, copy)
        leftovers = [p for p in problems_of(store) if p[0] is StorageProblemKind.LEFTOVER]
        assert len(leftovers) == 1
        assert not leftovers[0][2]
        store, problems = rebuilt(store)
        assert any(copy.name[:-5] in p and "does not open" in p for p in problems)
    finally:
        store.close()


def test_a_pack_sealed_with_another_key_is_refused(tmp_path: Path) -> None:
    store, ids = stored_objects(tmp_path / "repo", BODIES)
    foreign, _ = stored_objects(tmp_path / "foreign", {Kind.CHUNK: [b"another repository"]}, OTHER_KEYS)
    foreign.close()
    foreign_store = PackStore(tmp_path / "foreign", sealer=sealer(OTHER_KEYS))
    try:
        (ours,) = pack_files(store)
        (theirs,) = pack_files(foreign_store)
        shutil.copyfile(theirs, ours)
        victim = next(iter(ids))
        with pytest.raises(DamagedObjectError):
            store.get(victim)
        header_problems = [p for p in problems_of(store) if p[0] is StorageProblemKind.PACK_HEADER]
        assert len(header_problems) == 1
        assert "another key" in header_problems[0][1]
        store, problems = rebuilt(store)
        assert any("another key" in p for p in problems)
        assert list(store.iter_blobs()) == []
    finally:
        store.close()
        foreign_store.close()


def test_a_pack_of_another_key_fails_get_even_at_the_same_offsets(tmp_path: Path) -> None:
    # The same bodies under the same ids, sealed with another key: only authentication tells them apart.
    store, ids = stored_objects(tmp_path / "repo", {Kind.CHUNK: [b"same body " * 30]})
    (object_id,) = ids
    other = new_store(tmp_path / "other", OTHER_KEYS)
    with other.batch() as batch:
        batch.put(object_id, encode_record(Kind.CHUNK, ids[object_id], 3))
    other.close()
    try:
        (ours,) = pack_files(store)
        other = PackStore(tmp_path / "other", sealer=sealer(OTHER_KEYS))
        (theirs,) = pack_files(other)
        other.close()
        assert ours.stat().st_size == theirs.stat().st_size
        shutil.copyfile(theirs, ours)
        with pytest.raises(AuthenticationError):
            store.get(object_id)
    finally:
        store.close()


def test_plain_and_encrypted_stores_refuse_each_others_packs(tmp_path: Path) -> None:
    store, _ = stored_objects(tmp_path / "repo", BODIES)
    store.close()
    plain = PackStore(tmp_path / "repo")
    try:
        header_problems = [p[1] for p in problems_of(plain) if p[0] is StorageProblemKind.PACK_HEADER]
        assert header_problems
        assert "encrypted" in header_problems[0]
    finally:
        plain.close()
    (tmp_path / "plain").mkdir()
    plain = PackStore.create(tmp_path / "plain", b"{}")
    with plain.batch() as batch:
        batch.put(some_id(1), rec(b"plain"))
    plain.close()
    encrypted = PackStore(tmp_path / "plain", sealer=sealer())
    try:
        header_problems = [p[1] for p in problems_of(encrypted) if p[0] is StorageProblemKind.PACK_HEADER]
        assert header_problems
        assert "plain pack" in header_problems[0]
        with pytest.raises(CorruptionError):  # its plain index entry does not open: the index is damaged
            encrypted.get(some_id(1))
    finally:
        encrypted.close()


def test_an_index_entry_of_another_kind_is_detected(tmp_path: Path) -> None:
    store, _ = stored_objects(tmp_path / "repo", BODIES)
    try:
        victim = keyed_id(Kind.DIR, BODIES[Kind.DIR][0])
        location = store.index.locate(victim)
        with store.index.writing() as txn:
            txn.put(victim, store.index.location_value(victim, location._replace(kind=Kind.FILE)), db=store.index.blobs)
        with pytest.raises(AuthenticationError):
            store.get(victim)
    finally:
        store.close()


# -- the sealed record against the library primitives, and round trips ----------------


def test_a_sealed_record_is_the_documented_layout_under_the_library_primitives() -> None:
    body = b"known body " * 20
    object_id = keyed_id(Kind.DIR, body)
    record = encode_record(Kind.DIR, body, 3)
    sealed = sealer().seal_record(object_id, record)
    payload_bytes = len(record.payload)
    assert payload_bytes == 31  # zstd of the repeated text: 10 + 31 = 41 bytes, padded to a multiple of 4
    assert len(sealed) == 44 + 45 == sealed_record_bytes(payload_bytes)
    version, salt, nonce = sealed[0], sealed[1:17], sealed[17:29]
    assert version == 1
    cipher = AESGCM(session_key(KEYS.meta.key_bytes, salt))  # nodes: the metadata key
    plain = cipher.decrypt(nonce, sealed[29:], sealed[:29] + node_ad(Kind.DIR, object_id))
    head = struct.pack("<BBII", Kind.DIR, record.codec, len(body), payload_bytes)
    assert plain == head + bytes(record.payload) + bytes(3)
    chunk = blake3.blake3(b"chunk body").digest(length=1000)  # does not compress: stored raw
    chunk_sealed = sealer().seal_record(keyed_id(Kind.CHUNK, chunk), encode_record(Kind.CHUNK, chunk, 3))
    cipher = AESGCM(session_key(KEYS.data.key_bytes, chunk_sealed[1:17]))  # chunks: the data key
    plain = cipher.decrypt(
        chunk_sealed[17:29], chunk_sealed[29:], chunk_sealed[:29] + chunk_ad(keyed_id(Kind.CHUNK, chunk))
    )
    assert len(plain) == 1024  # 10 + 1000 bytes: bit 9 is the highest, so a multiple of 2 ** (9 - 4)
    assert plain == struct.pack("<BBII", Kind.CHUNK, 0, len(chunk), len(chunk)) + chunk + bytes(14)


@given(st.sampled_from(list(Kind)), st.binary(max_size=3000), st.data())
def test_sealed_records_round_trip_and_any_flipped_bit_fails(kind: Kind, body: bytes, data: st.DataObject) -> None:
    one = sealer()
    object_id = keyed_id(kind, body)
    sealed = one.seal_record(object_id, encode_record(kind, body, 3))
    assert decode_record(object_id, one.open_record(object_id, sealed), KEYS.object_id) == body
    assert decode_record(object_id, one.open_record(object_id, sealed, kind), KEYS.object_id) == body
    position = data.draw(st.integers(0, len(sealed) * 8 - 1))
    damaged = bytearray(sealed)
    damaged[position // 8] ^= 1 << (position % 8)
    with pytest.raises(AuthenticationError):
        one.open_record(object_id, bytes(damaged))


def test_blobs_not_indexed_yet_are_read_back_opened(tmp_path: Path) -> None:
    store = new_store(tmp_path / "repo")
    try:
        body = b"pending " * 100
        object_id = keyed_id(Kind.CHUNK, body)
        with store.batch(index_later=True) as batch:
            batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
        assert store.index.locate(object_id) is None
        assert read_body(store, object_id) == body
    finally:
        store.close()


# -- the order of blobs in a pack (issue #15) ----------------------------------------


def ascending_steps(offsets: list[int]) -> int:
    """How many neighbours in the write order also lie in that order in the pack."""
    return sum(b > a for a, b in itertools.pairwise(offsets))


def put_chunks(store: PackStore, bodies: list[bytes]) -> list[bytes]:
    ids = [keyed_id(Kind.CHUNK, body) for body in bodies]
    with store.batch() as batch:
        for object_id, body in zip(ids, bodies, strict=True):
            batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
    return ids


def test_a_packs_blobs_are_not_in_the_order_they_were_stored(tmp_path: Path) -> None:
    bodies = [os.urandom(100 + 13 * i) for i in range(300)]
    store = new_store(tmp_path / "repo")
    ids = put_chunks(store, bodies)
    store.close()
    store = PackStore(tmp_path / "repo", sealer=sealer())
    try:
        assert len(pack_files(store)) == 1
        offsets = [store.locate(object_id)[1] for object_id in ids]
        assert len(set(offsets)) == len(ids)
        # A random order has about 150 of 299 steps ascending (sd 5); the write order has all 299.
        assert 100 < ascending_steps(offsets) < 200
        for object_id, body in zip(ids, bodies, strict=True):
            assert read_body(store, object_id) == body
        assert list(check_storage(store)) == []
        store, problems = rebuilt(store)  # the trailer lists the blobs in pack order
        assert problems == ("no HEAD the ref log records is in the packs: HEAD is not set",)
        assert [store.locate(object_id)[1] for object_id in ids] == offsets
    finally:
        store.close()
    (tmp_path / "plain").mkdir()
    plain = PackStore.create(tmp_path / "plain", b"{}")
    try:
        with plain.batch() as batch:
            for index, body in enumerate(bodies):
                batch.put(some_id(index), rec(body))
        offsets = [plain.locate(some_id(index))[1] for index in range(len(bodies))]
        assert offsets == sorted(offsets)  # a plain pack keeps the order it was written in
    finally:
        plain.close()


def test_blobs_held_back_are_read_before_they_reach_the_pack(tmp_path: Path) -> None:
    store = new_store(tmp_path / "repo")
    try:
        body = os.urandom(5000)
        object_id = keyed_id(Kind.CHUNK, body)
        with store.batch() as batch:
            batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
            assert batch.has(object_id)
            assert store.has(object_id)
            with store.has_checker() as has:
                assert has(object_id)
            assert store.info(object_id).stored_bytes == sealed_record_bytes(5000)
            assert read_body(store, object_id) == body
            assert not pack_files(store), "written before the batch indexes it"
        assert len(pack_files(store)) == 1
        assert read_body(store, object_id) == body
    finally:
        store.close()


def failing_batch(store: PackStore, object_id: bytes, body: bytes) -> None:
    with store.batch() as batch:
        batch.put(object_id, encode_record(Kind.CHUNK, body, 3))
        raise RuntimeError("the change failed")


def test_a_failed_batch_leaves_nothing_held(tmp_path: Path) -> None:
    store = new_store(tmp_path / "repo")
    try:
        kept = put_chunks(store, [b"kept " * 100])
        body = os.urandom(5000)
        object_id = keyed_id(Kind.CHUNK, body)
        with pytest.raises(RuntimeError, match="the change failed"):
            failing_batch(store, object_id, body)
        assert not store.has(object_id)
        assert store.get(object_id) is None
        put_chunks(store, [b"after " * 100])
        assert read_body(store, kept[0]) == b"kept " * 100
    finally:
        store.close()
    store = PackStore(tmp_path / "repo", sealer=sealer())
    try:
        assert store.get(object_id) is None
        assert list(check_storage(store)) == []
    finally:
        store.close()


def shuffled_runs(raw_lengths: list[int]) -> list[list[int]]:
    """The runs ``PackStore.hold`` writes blobs of these (incompressible) lengths in: lists of their indexes."""
    runs: list[list[int]] = [[]]
    held = 0
    for index, length in enumerate(raw_lengths):
        runs[-1].append(index)
        held += BLOB_HEADER.size + sealed_record_bytes(length)
        if held >= SHUFFLE_BYTES:
            runs.append([])
            held = 0
    return [run for run in runs if run]


def test_runs_of_blobs_are_shuffled_up_to_a_full_pack(tmp_path: Path) -> None:
    bodies = [os.urandom(100_000 + i) for i in range(400)]  # 40 MB: a full pack (32 MiB) and the rest
    store = new_store(tmp_path / "repo")
    ids = put_chunks(store, bodies)
    store.close()
    store = PackStore(tmp_path / "repo", sealer=sealer())
    try:
        assert len(pack_files(store)) == 2
        places = [store.locate(object_id)[:2] for object_id in ids]
        first_pack = [offset for path, offset in places if path == places[0][0]]
        assert 300 < len(first_pack) < 400
        assert places[len(first_pack)][0] != places[0][0], "a pack holds a run of the stream, not a mix of two"
        runs = shuffled_runs([len(body) for body in bodies[: len(first_pack)]])
        assert len(runs) > 10
        for run, after in itertools.pairwise(runs):
            offsets = [first_pack[index] for index in run]
            assert offsets != sorted(offsets), "a run is not shuffled"
            assert max(offsets) < min(first_pack[index] for index in after), "runs follow each other"
        for object_id, body in zip(ids, bodies, strict=True):
            assert read_body(store, object_id) == body
        assert list(check_storage(store)) == []
    finally:
        store.close()
