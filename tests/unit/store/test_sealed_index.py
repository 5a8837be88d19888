"""An encrypted PackStore's ref log and LMDB index values: sealed, and tampering with them detected.

The tamper cases change ``refs.log`` and ``index.mdb`` as an attacker with
write access would: bits flipped with the log's (unkeyed) checksum made
good again, records swapped or replayed, index values moved between ids or
refs. Each must be damage, never a value served.
"""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.store.test_sealed_packs import BODIES, KEYS, keyed_id, problems_of, rebuilt, sealer
from zerofs.crypto.sealing import OVERHEAD_BYTES
from zerofs.errors import CorruptionError
from zerofs.objects import Kind
from zerofs.store.codec import encode_record as encode_blob
from zerofs.store.index import INDEX_FILE, encode_location
from zerofs.store.local import REFLOG_FILE, PackStore
from zerofs.store.reflog import (
    RECORD,
    SEALED_FILE_HEADER,
    SEALED_MOVE_BYTES,
    SEALED_RECORD,
    LogDamage,
    RefLog,
    RefMove,
    decode_record,
    encode_record,
)
from zerofs.store.results import StorageProblemKind
from zerofs.store.sealer import Sealer

SEALER = Sealer(KEYS)
HEAD = b"HEAD"
GRAFTS = b"GRAFTS"
_SEQUENCE_AT = 4
_NAME_AT = 12
_SEALED_AT = 28


def store_with_moves(
    root: Path, sealed: bool = True, moves: int = 3, values: list[bytes] | None = None
) -> tuple[PackStore, list[bytes]]:
    """A store holding ``BODIES`` whose HEAD moved ``moves`` times (to ``values``, else to
    stored ids) and GRAFTS once; (store, HEAD's values)."""
    root.mkdir(exist_ok=True)
    store = PackStore.create(root, b"{}", sealer=sealer() if sealed else None)
    ids = []
    with store.batch() as batch:
        for kind, bodies in BODIES.items():
            for body in bodies:
                ids.append(keyed_id(kind, body))
                batch.put(ids[-1], encode_blob(kind, body, 3))
    heads: list[bytes] = []
    for value in (values or ids)[:moves]:
        with store.batch() as batch:
            batch.cas_ref(HEAD, heads[-1] if heads else None, value)
        heads.append(value)
    with store.batch() as batch:
        batch.cas_ref(GRAFTS, None, ids[-1])
    return store, heads


def log_path(store: PackStore) -> str:
    return os.path.join(store.root, REFLOG_FILE)


def records(store: PackStore) -> list[bytearray]:
    data = Path(log_path(store)).read_bytes()[len(SEALED_FILE_HEADER) :]
    return [bytearray(data[i : i + SEALED_RECORD.size]) for i in range(0, len(data), SEALED_RECORD.size)]


def write_records(store: PackStore, kept: list[bytearray]) -> None:
    Path(log_path(store)).write_bytes(SEALED_FILE_HEADER + b"".join(kept))


def with_good_checksum(record: bytearray) -> bytearray:
    """The record with its (unkeyed) checksum made good again, as an attacker can."""
    record[-16:] = blake3.blake3(bytes(record[:-16])).digest(16)
    return record


def damage_of(store: PackStore) -> list[LogDamage]:
    return [item for item in store.reflog.iter_moves() if isinstance(item, LogDamage)]


# -- the format ---------------------------------------------------------------------


def test_the_sealed_body_is_its_plaintext_and_the_aead_overhead() -> None:
    assert SEALED_MOVE_BYTES == 8 + 32 + 32 + OVERHEAD_BYTES
    assert SEALED_RECORD.size == RECORD.size - 8 - 64 + SEALED_MOVE_BYTES


@given(
    sequence=st.integers(0, 2**63 - 1),
    time_ns=st.integers(-(2**63), 2**63 - 1),
    name=st.sampled_from([HEAD, GRAFTS]),
    old=st.none() | st.binary(min_size=32, max_size=32).filter(any),
    new=st.binary(min_size=32, max_size=32),
    data=st.data(),
)
def test_sealed_records_round_trip_and_any_changed_bit_fails(
    sequence: int, time_ns: int, name: bytes, old: bytes | None, new: bytes, data: st.DataObject
) -> None:
    move = RefMove(sequence, time_ns, name, old, new)
    record = bytearray(encode_record(move, sealer=SEALER))
    assert len(record) == SEALED_RECORD.size
    assert decode_record(bytes(record), SEALER) == move
    assert decode_record(bytes(record)) is None  # a plain reader takes it for damage, never for a move
    position = data.draw(st.sampled_from([0, 2, 3]) | st.integers(0, SEALED_RECORD.size - 17))
    if SEALED_RECORD.size - 16 - 12 <= position < SEALED_RECORD.size - 16:
        return  # the reserved bytes (an S3 writer's nonce) carry nothing the record says
    record[position] ^= 1 << data.draw(st.integers(0, 7))
    assert decode_record(bytes(with_good_checksum(record)), SEALER) is None


def test_sealed_moves_read_back_with_their_times(tmp_path: Path) -> None:
    store, heads = store_with_moves(tmp_path / "repo")
    try:
        moves = [item for item in store.reflog.iter_moves() if isinstance(item, RefMove)]
        assert [m.new for m in moves[:-1]] == heads
        assert [m.name for m in moves] == [HEAD] * len(heads) + [GRAFTS]
        assert [m.sequence for m in moves] == list(range(len(heads) + 1))
        assert all(m.time_ns > 0 for m in moves)
        assert moves[1].old == heads[0]
        assert store.reflog.last_moves()[HEAD].new == heads[-1]
        assert damage_of(store) == []
        assert problems_of(store) == []
    finally:
        store.close()


def test_no_kind_length_or_ref_value_is_in_the_index_or_the_log(tmp_path: Path) -> None:
    """What a plain repository's files show (checked, so the test can fail) the encrypted one's do not."""
    for sealed in (False, True):
        values = [os.urandom(32) for _ in range(3)]  # not blob ids, which are the index's (plain) keys
        store, heads = store_with_moves(tmp_path / f"repo-{sealed}", sealed=sealed, values=values)
        plain_values = [encode_location(location) for _, location in store.index.iter_locations()]
        store.close()
        index = Path(store.root, INDEX_FILE).read_bytes()
        log = Path(store.root, REFLOG_FILE).read_bytes()
        assert len(plain_values) == sum(len(bodies) for bodies in BODIES.values())
        for value in plain_values:  # whole: 9 bytes of lengths and kind alone can match an LMDB page by chance
            assert (value in index) is not sealed
        assert (heads[-1] in index) is not sealed  # the refs table (earlier values may be on reused pages)
        for head in heads:
            assert (head in log) is not sealed


def test_a_plain_log_keeps_its_format(tmp_path: Path) -> None:
    store, heads = store_with_moves(tmp_path / "repo", sealed=False)
    try:
        data = Path(log_path(store)).read_bytes()
        assert data.startswith(b"zerofs ref log 1\n")
        assert (len(data) - 32) % RECORD.size == 0
        assert decode_record(data[32 : 32 + RECORD.size]) == next(iter(store.reflog.iter_moves()))
        assert store.get_ref(HEAD) == heads[-1]
    finally:
        store.close()


# -- the ref log, tampered with ----------------------------------------------------


@pytest.mark.parametrize("offset", [_SEQUENCE_AT, _NAME_AT, _SEALED_AT, _SEALED_AT + 40, SEALED_RECORD.size - 30])
def test_a_flipped_bit_in_a_sealed_record_does_not_open(tmp_path: Path, offset: int) -> None:
    store, _ = store_with_moves(tmp_path / "repo")
    try:
        kept = records(store)
        kept[1][offset] ^= 0x04
        write_records(store, [kept[0], with_good_checksum(kept[1]), *kept[2:]])
        (damage,) = damage_of(store)
        assert damage.position == len(SEALED_FILE_HEADER) + SEALED_RECORD.size
        assert "does not open" in damage.detail
    finally:
        store.close()


def test_two_swapped_records_are_damage(tmp_path: Path) -> None:
    store, _ = store_with_moves(tmp_path / "repo")
    try:
        kept = records(store)
        write_records(store, [kept[0], kept[2], kept[1], kept[3]])
        (damage,) = damage_of(store)
        assert "replayed or moved" in damage.detail
        assert any(p[0] is StorageProblemKind.REF_LOG for p in problems_of(store))
    finally:
        store.close()


def test_two_records_with_swapped_sealed_values_do_not_open(tmp_path: Path) -> None:
    store, _ = store_with_moves(tmp_path / "repo")
    try:
        kept = records(store)
        end = _SEALED_AT + SEALED_MOVE_BYTES
        kept[1][_SEALED_AT:end], kept[2][_SEALED_AT:end] = kept[2][_SEALED_AT:end], kept[1][_SEALED_AT:end]
        write_records(store, [kept[0], with_good_checksum(kept[1]), with_good_checksum(kept[2]), kept[3]])
        assert len(damage_of(store)) == 2
    finally:
        store.close()


def test_an_old_record_replayed_at_the_end_is_damage_and_loses_nothing(tmp_path: Path) -> None:
    store, heads = store_with_moves(tmp_path / "repo")
    try:
        kept = records(store)
        write_records(store, [*kept, kept[0]])  # HEAD's first value, sealed and opening at its own sequence
        assert store.reflog.has_damaged_end()
        assert store.reflog.last_moves()[HEAD].new == heads[-1]
        (damage,) = damage_of(store)
        assert damage.position == len(SEALED_FILE_HEADER) + len(kept) * SEALED_RECORD.size
        store, problems = rebuilt(store)
        assert store.get_ref(HEAD) == heads[-1]
        assert any("ref log at byte" in p for p in problems)
        with store.batch() as batch:  # the next append cuts the replayed record off
            batch.cas_ref(HEAD, heads[-1], heads[0])
        assert damage_of(store) == []
        assert [r for r in store.reflog.iter_moves() if isinstance(r, RefMove)][-1].new == heads[0]
    finally:
        store.close()


def test_a_log_sealed_with_another_key_is_all_damage(tmp_path: Path) -> None:
    from zerofs.crypto.keys import Keys

    store, _ = store_with_moves(tmp_path / "repo")
    store.close()
    other = RefLog(log_path(store), Sealer(Keys.derive(bytes(32))))
    assert [item for item in other.iter_moves() if isinstance(item, RefMove)] == []
    assert other.last_moves() == {}
    assert other.has_damaged_end()


# -- the index's values, tampered with ---------------------------------------------


def test_index_values_swapped_between_two_ids_are_detected(tmp_path: Path) -> None:
    store, _ = store_with_moves(tmp_path / "repo")
    try:
        first, second = keyed_id(Kind.FILE, BODIES[Kind.FILE][0]), keyed_id(Kind.DIR, BODIES[Kind.DIR][0])
        with store.index.writing() as txn:
            one, two = txn.get(first, db=store.index.blobs), txn.get(second, db=store.index.blobs)
            txn.put(first, two, db=store.index.blobs)
            txn.put(second, one, db=store.index.blobs)
        for object_id in (first, second):
            with pytest.raises(CorruptionError, match="does not open"):
                store.get(object_id)
            with pytest.raises(CorruptionError, match="does not open"):
                store.info(object_id)
        store, problems = rebuilt(store)
        assert problems == ()
        assert store.info(first).kind is Kind.FILE
    finally:
        store.close()


def test_a_ref_value_moved_to_another_ref_is_detected(tmp_path: Path) -> None:
    store, heads = store_with_moves(tmp_path / "repo")
    try:
        with store.index.writing() as txn:
            txn.put(HEAD, txn.get(GRAFTS, db=store.index.refs), db=store.index.refs)
        with pytest.raises(CorruptionError, match="HEAD does not open"):
            store.get_ref(HEAD)
        store, _ = rebuilt(store)
        assert store.get_ref(HEAD) == heads[-1]
    finally:
        store.close()


def test_an_encrypted_index_serves_every_location_and_ref(tmp_path: Path) -> None:
    store, heads = store_with_moves(tmp_path / "repo")
    try:
        ids = {keyed_id(kind, body): kind for kind, bodies in BODIES.items() for body in bodies}
        assert {object_id: info.kind for object_id, info in store.iter_blobs()} == ids
        assert store.get_ref(HEAD) == heads[-1]
        store.close()
        store = PackStore(store.root, sealer=Sealer(KEYS))
        assert all(store.info(object_id).kind is kind for object_id, kind in ids.items())
    finally:
        store.close()
