"""The on-disk formats below the store: pack files, the ref log, the host-file cache."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import zstandard
from hypothesis import given
from hypothesis import strategies as st

from zerofs.objects import Kind, chunk_id
from zerofs.store.base import CachedFile
from zerofs.store.codec import decode_record, encode_record
from zerofs.store.filecache import FileCache, decode_directory, encode_directory
from zerofs.store.local import PackStore
from zerofs.store.maintenance import check_ref_log
from zerofs.store.packfile import (
    BLOB_HEADER,
    PACK_HEADER,
    TAIL,
    blob_header,
    pack_header,
    parse_blob_header,
    parse_trailer,
    scan_blobs,
    trailer,
)
from zerofs.store.reflog import RECORD, LogDamage, RefLog, RefMove

# -- packs --------------------------------------------------------------------------


def build_pack(bodies: list[bytes], *, with_trailer: bool = True) -> tuple[bytes, list[int]]:
    data = bytearray(pack_header())
    offsets = []
    for body in bodies:
        record = encode_record(Kind.CHUNK, body, 3)
        offsets.append(len(data))
        data += blob_header(chunk_id(body), record) + bytes(record.payload)
    end = len(data)
    if with_trailer:
        data += trailer(offsets, end)
    return bytes(data), offsets


@given(st.lists(st.binary(max_size=3000), max_size=20))
def test_a_pack_lists_its_blobs_and_every_blob_verifies(bodies: list[bytes]) -> None:
    data, offsets = build_pack(bodies)
    parsed = parse_trailer(data[len(data) - TAIL.size - 4 * len(offsets) :], len(data))
    assert parsed is not None
    assert list(parsed.offsets) == offsets
    scanned = list(scan_blobs(data, end=parsed.data_end))
    assert [s.offset for s in scanned] == offsets
    for blob, body in zip(scanned, bodies, strict=True):
        assert decode_record(blob.header.object_id, blob.record) == body


def test_any_flipped_bit_of_a_trailer_is_refused() -> None:
    data, offsets = build_pack([os.urandom(100), b"text " * 50, b""])
    start = len(data) - TAIL.size - 4 * len(offsets)
    for position in range(start, len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            assert parse_trailer(bytes(damaged[start:]), len(data)) is None, (position, bit)


def test_a_pack_without_trailer_is_read_up_to_its_torn_tail() -> None:
    data, offsets = build_pack([b"a" * 500, b"b" * 500, b"c" * 500], with_trailer=False)
    torn = data[: offsets[2] + BLOB_HEADER.size + 10]  # the last blob cut inside its payload
    assert [s.offset for s in scan_blobs(torn)] == offsets[:2]
    garbage = data[: offsets[1]] + b"\xff" * BLOB_HEADER.size + data[offsets[1] + BLOB_HEADER.size :]
    assert [s.offset for s in scan_blobs(garbage)][:1] == offsets[:1]


def test_blob_headers_with_unknown_kinds_or_codecs_are_not_headers() -> None:
    record = encode_record(Kind.CHUNK, b"x" * 100, 3)
    header = bytearray(blob_header(chunk_id(b"x" * 100), record))
    assert parse_blob_header(bytes(header)) is not None
    header[32] = 99  # kind
    assert parse_blob_header(bytes(header)) is None
    header[32] = Kind.CHUNK
    header[33] = 0x05  # codec
    assert parse_blob_header(bytes(header)) is None
    assert PACK_HEADER.size == 16


# -- the ref log ----------------------------------------------------------------------


def test_ref_log_records_moves_and_finds_the_last_of_each(tmp_path: Path) -> None:
    log = RefLog(str(tmp_path / "refs.log"))
    log.create()
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    log.append(b"HEAD", None, a, 1)
    log.append(b"HEAD", a, b, 2)
    log.append(b"GRAFTS", None, c, 3)
    last = log.last_moves()
    assert last[b"HEAD"] == RefMove(1, 2, b"HEAD", a, b)
    assert last[b"GRAFTS"].new == c
    assert [m.sequence for m in log.iter_moves() if isinstance(m, RefMove)] == [0, 1, 2]


def test_a_lost_append_is_caught_up_by_the_next(tmp_path: Path) -> None:
    log = RefLog(str(tmp_path / "refs.log"))
    log.create()
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    log.append(b"HEAD", None, a, 1)
    log.append(b"HEAD", b, c, 3)  # the move a -> b never reached the log
    moves = [m for m in log.iter_moves() if isinstance(m, RefMove)]
    assert [(m.old, m.new) for m in moves] == [(None, a), (a, b), (b, c)]


def test_a_torn_record_is_ignored_then_cut(tmp_path: Path) -> None:
    path = tmp_path / "refs.log"
    log = RefLog(str(path))
    log.create()
    a, b = bytes([1]) * 32, bytes([2]) * 32
    log.append(b"HEAD", None, a, 1)
    with path.open("ab") as handle:
        handle.write(os.urandom(RECORD.size // 2))  # a crash in the middle of an append
    assert log.last_moves()[b"HEAD"].new == a
    assert isinstance(list(log.iter_moves())[-1], LogDamage)
    log.append(b"HEAD", a, b, 2)
    assert all(isinstance(m, RefMove) for m in log.iter_moves())
    assert log.last_moves()[b"HEAD"].new == b


def test_every_flipped_bit_of_a_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "refs.log"
    log = RefLog(str(path))
    log.create()
    log.append(b"HEAD", None, bytes([7]) * 32, 1)
    original = path.read_bytes()
    start = len(original) - RECORD.size
    for position in range(start, len(original), 3):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        path.write_bytes(bytes(damaged))
        assert log.last_moves() == {}, position
        assert isinstance(list(log.iter_moves())[-1], LogDamage)


# -- the host-file cache ----------------------------------------------------------------


def test_cache_records_round_trip(tmp_path: Path) -> None:
    files = {b"a": CachedFile(1, 2, 3, 4, 5, b"\x01" * 32), b"\xffname\n": CachedFile(9, 8, 7, -6, 5, b"\x02" * 32)}
    assert decode_directory(encode_directory(files)) == files
    cache = FileCache(str(tmp_path / "cache"))
    cache.remember({b"/host/dir": files})
    cache.close()
    again = FileCache(str(tmp_path / "cache"))
    assert again.directory_files(b"/host/dir") == files
    assert again.directory_files(b"/host/other") == {}
    again.close()


def test_cache_records_keep_link_ids_and_old_records_still_read() -> None:
    files = {b"a": CachedFile(1, 2, 3, 4, 5, b"\x01" * 32, b"\x07" * 16), b"b": CachedFile(1, 3, 3, 4, 5, b"\x01" * 32)}
    assert decode_directory(encode_directory(files)) == files
    old = b"\x01" + struct.pack("<HQQQqq32s", 1, 1, 2, 3, 4, 5, b"\x01" * 32) + b"a"
    assert decode_directory(zstandard.ZstdCompressor().compress(old)) == {b"a": CachedFile(1, 2, 3, 4, 5, b"\x01" * 32)}
    cut = b"\x02" + struct.pack("<HQQQqq32sB", 1, 1, 2, 3, 4, 5, b"\x01" * 32, 16) + b"a" + b"\x07" * 8
    assert decode_directory(zstandard.ZstdCompressor().compress(cut)) == {}


def test_a_damaged_or_unusable_cache_is_only_a_miss(tmp_path: Path) -> None:
    assert decode_directory(b"not zstd at all") == {}
    assert decode_directory(encode_directory({b"a": CachedFile(1, 2, 3, 4, 5, b"\x01" * 32)})[:-3]) == {}
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    cache = FileCache(str(blocked / "cache"))  # a directory cannot be made under a file
    assert cache.directory_files(b"/x") == {}
    cache.remember({b"/x": {}})


def test_a_ref_seldom_moved_keeps_its_chain_past_the_tail(tmp_path: Path) -> None:
    """GRAFTS moves once per gc, HEAD at every commit: the log stays one chain per ref, as fsck checks it."""
    (tmp_path / "repo").mkdir()
    store = PackStore.create(tmp_path / "repo", b"{}")
    try:
        with store.batch() as batch:
            batch.cas_ref(b"GRAFTS", None, bytes([101]) * 32)
        head = None
        for n in range(40):
            new = (n + 1).to_bytes(32, "big")
            with store.batch() as batch:
                batch.cas_ref(b"HEAD", head, new)
            head = new
        with store.batch() as batch:
            batch.cas_ref(b"GRAFTS", bytes([101]) * 32, bytes([102]) * 32)
        problems = [p for p in check_ref_log(store)]
        assert problems == []
        grafts = [m for m in store.reflog.iter_moves() if isinstance(m, RefMove) and m.name == b"GRAFTS"]
        assert [m.new for m in grafts] == [bytes([101]) * 32, bytes([102]) * 32]
    finally:
        store.close()
