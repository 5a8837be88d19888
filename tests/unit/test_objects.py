"""objects.py: canonical encodings round-trip, decode rejects the non-canonical, names are validated."""

from __future__ import annotations

import os
import stat
import struct

import pytest

from zerofs.errors import CorruptionError, InvalidNameError
from zerofs.objects import (
    DIR_FLAT_MAX,
    DIR_FORMAT_VERSION,
    MAX_FANOUT,
    NODE_FORMAT_VERSION,
    Child,
    ChunkListNode,
    ChunkRef,
    Commit,
    DirEntry,
    DirNode,
    FileNode,
    Kind,
    SpecialNode,
    SymlinkNode,
    chunk_id,
    decode,
    encode,
    iter_child_ids,
    iter_children,
    object_id,
    scan_dir,
    special_node,
    validate_name,
)

ID_A = bytes(range(32))
ID_B = bytes(range(1, 33))


def file_entry(name: bytes, node_id: bytes = ID_A, size: int = 3) -> DirEntry:
    return DirEntry(name, Kind.FILE, stat.S_IFREG | 0o644, 1000, 1000, 1_700_000_000_123_456_789, size, node_id)


def format_version(node: object) -> int:
    return DIR_FORMAT_VERSION if isinstance(node, DirNode) else NODE_FORMAT_VERSION


NODES = {
    "file-empty": FileNode(0, 0, ()),
    "file": FileNode(30, 0, (ChunkRef(ID_A, 10), ChunkRef(ID_B, 20))),
    "file-level1": FileNode(300, 1, (ChunkRef(ID_A, 300),)),
    "file-max-fanout": FileNode(MAX_FANOUT, 0, tuple(ChunkRef(ID_A, 1) for _ in range(MAX_FANOUT))),
    "chunklist": ChunkListNode(0, (ChunkRef(ID_A, 5), ChunkRef(ID_B, 7))),
    "symlink": SymlinkNode(b"../target/x"),
    "symlink-empty": SymlinkNode(b""),
    "special-fifo": SpecialNode(stat.S_IFIFO),
    "special-socket": SpecialNode(stat.S_IFSOCK),
    "special-chardev": SpecialNode(stat.S_IFCHR, os.makedev(1, 3)),
    "special-blockdev": SpecialNode(stat.S_IFBLK, os.makedev(259, 1 << 19)),
    "dir-empty": DirNode(),
    "dir": DirNode(
        (
            file_entry(b"a"),
            DirEntry(b"b", Kind.DIR, stat.S_IFDIR | 0o755, 0, 0, 5, 0, ID_B),
            DirEntry(b"c", Kind.SYMLINK, stat.S_IFLNK | 0o777, 0, 0, -5, 4, ID_A),
            DirEntry(
                b"d\xff\xfe", Kind.FILE, stat.S_IFREG | 0o751, 2, 3, 0, 0, ID_B, ((b"user.a", b"1"), (b"user.b", b""))
            ),
            DirEntry(b"e", Kind.SPECIAL, stat.S_IFIFO | 0o640, 4, 5, 6, 0, ID_A),
        ),
        0,
        5,
    ),
    "dir-sharded": DirNode((), 0, DIR_FLAT_MAX + 1, ((0, ID_A), (17, ID_B), (63, ID_A))),
    "dir-times": DirNode((file_entry(b"a")._replace(atime_ns=-1, ctime_ns=2**63 - 1),), 0, 1),
    "commit-root": Commit(ID_A, (), 123, "me@host", "init", {"op": "init"}),
    "commit": Commit(
        ID_A,
        (ID_B,),
        1_700_000_000_000_000_000,
        "me@host",
        "clone /a -> /b ✓",
        {"op": "clone", "source": "/a", "target": "/b", "n": [1, 2]},
    ),
    "commit-merge": Commit(ID_A, (ID_B, ID_A), 0, "", "", {}),
}


@pytest.mark.parametrize("name", sorted(NODES))
def test_encode_decode_round_trip(name: str) -> None:
    node = NODES[name]
    body = encode(node)
    assert body[0] == format_version(node)
    decoded = decode(node.kind, body)
    assert decoded == node
    assert encode(decoded) == body


# A symlink's target runs to the end of its body, so extra bytes are target bytes, not trailing.
@pytest.mark.parametrize("name", sorted(n for n, node in NODES.items() if not isinstance(node, SymlinkNode)))
def test_decode_rejects_trailing_bytes(name: str) -> None:
    node = NODES[name]
    with pytest.raises(CorruptionError):
        decode(node.kind, encode(node) + b"\0")


@pytest.mark.parametrize("name", sorted(NODES))
def test_decode_rejects_wrong_version_byte(name: str) -> None:
    node = NODES[name]
    body = encode(node)
    for version in (0, max(NODE_FORMAT_VERSION, DIR_FORMAT_VERSION) + 1, 255):
        with pytest.raises(CorruptionError):
            decode(node.kind, bytes((version,)) + body[1:])


@pytest.mark.parametrize("name", sorted(NODES))
def test_decode_rejects_truncated_body(name: str) -> None:
    node = NODES[name]
    body = encode(node)
    with pytest.raises(CorruptionError):
        decode(node.kind, b"")
    if isinstance(node, SymlinkNode):
        return
    with pytest.raises(CorruptionError):
        decode(node.kind, body[:-1])


def test_decode_rejects_unsorted_dir_entries() -> None:
    unsorted = DirNode((file_entry(b"b"), file_entry(b"a")), 0, 2)
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, encode(unsorted))


def test_decode_rejects_duplicate_dir_entries() -> None:
    duplicated = DirNode((file_entry(b"a"), file_entry(b"a")), 0, 2)
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, encode(duplicated))


@pytest.mark.parametrize("bad_name", [b"", b".", b"..", b"a/b", b"a\0b", b"x" * 256])
def test_decode_rejects_invalid_entry_names(bad_name: bytes) -> None:
    body = encode(DirNode((file_entry(bad_name),), 0, 1))
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, body)


def test_decode_rejects_flat_dir_over_limit() -> None:
    entries = tuple(file_entry(b"%04d" % i) for i in range(DIR_FLAT_MAX + 1))
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, encode(DirNode(entries, 0, len(entries))))


def test_decode_rejects_sharded_dir_that_would_fit_flat() -> None:
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, encode(DirNode((), 0, DIR_FLAT_MAX, ((0, ID_A), (1, ID_B)))))


def test_decode_rejects_file_size_not_matching_chunks() -> None:
    with pytest.raises(CorruptionError):
        decode(Kind.FILE, encode(FileNode(31, 0, (ChunkRef(ID_A, 10), ChunkRef(ID_B, 20)))))


def test_decode_rejects_unknown_entry_kind() -> None:
    body = bytearray(encode(DirNode((file_entry(b"a"),), 0, 1)))
    # Flat header is <BBI> (6 bytes); the entry's kind byte follows.
    assert body[6] == Kind.FILE
    body[6] = Kind.CHUNK
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, bytes(body))


def test_decode_rejects_ref_count_larger_than_body() -> None:
    body = bytearray(encode(NODES["file"]))
    # <BBQI>: version, level, size, count
    struct.pack_into("<I", body, 10, 3)
    with pytest.raises(CorruptionError):
        decode(Kind.FILE, bytes(body))


def test_decode_rejects_commit_with_bad_utf8() -> None:
    body = encode(Commit(ID_A, (), 1, "a", "m", {}))
    bad = body.replace(b"\x01\x00\x00\x00m", b"\x01\x00\x00\x00\xff")
    assert bad != body
    with pytest.raises(CorruptionError):
        decode(Kind.COMMIT, bad)


def test_ids_are_kind_tagged() -> None:
    body = encode(SymlinkNode(b"x"))
    assert object_id(Kind.SYMLINK, body) != object_id(Kind.CHUNK, body)
    assert chunk_id(body) == object_id(Kind.CHUNK, body)
    assert len(chunk_id(b"")) == 32


def test_equal_nodes_have_equal_encodings() -> None:
    a = DirNode((file_entry(b"a"), file_entry(b"b")), 0, 2)
    b = DirNode((file_entry(b"a"), file_entry(b"b")), 0, 2)
    assert encode(a) == encode(b)


def test_nodes_are_immutable() -> None:
    node = NODES["symlink"]
    with pytest.raises(AttributeError):
        node.target = b"other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad_name", [b"", b".", b"..", b"/", b"a/b", b"ab/", b"\0", b"a\0", b"x" * 256, "é".encode() * 128]
)
def test_validate_name_rejects(bad_name: bytes) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(bad_name)


@pytest.mark.parametrize(
    "good_name", [b"a", b"...", b".hidden", b"..x", b"x" * 255, b"\xff\xfe", b"with space", "é".encode() * 127]
)
def test_validate_name_accepts(good_name: bytes) -> None:
    assert validate_name(good_name) == good_name


def test_invalid_name_is_a_usage_error() -> None:
    from zerofs.errors import UsageError

    assert issubclass(InvalidNameError, UsageError)
    assert InvalidNameError.exit_code == 2


# --------------------------------------------------------------------------
# Directory format versions (issue #12): version 2 entries carry atime and ctime


def v1_flat_body(entries: list[tuple[bytes, int]]) -> bytes:
    """A version-1 flat directory body, packed by hand as repositories before issue #12 hold them."""
    parts = [struct.pack("<BBI", 1, 0, len(entries))]
    for name, mtime_ns in entries:
        parts.append(struct.pack("<BHIIIqQ32sH", Kind.FILE, len(name), 0o100644, 7, 8, mtime_ns, 3, ID_A, 0) + name)
    return b"".join(parts)


def test_version_1_directory_decodes_with_atime_and_ctime_equal_to_mtime() -> None:
    body = v1_flat_body([(b"a", 11), (b"b", -3)])
    node = decode(Kind.DIR, body)
    assert isinstance(node, DirNode)
    assert node.version == 1
    assert [(e.mtime_ns, e.atime_ns, e.ctime_ns) for e in node.entries] == [(11, 11, 11), (-3, -3, -3)]
    assert encode(node) == body


def test_version_1_sharded_directory_keeps_its_version() -> None:
    body = bytearray(encode(NODES["dir-sharded"]))
    body[0] = 1
    node = decode(Kind.DIR, bytes(body))
    assert isinstance(node, DirNode)
    assert node.version == 1
    assert encode(node) == bytes(body)


def test_new_directories_are_written_at_version_2_with_their_times() -> None:
    entry = file_entry(b"a")._replace(atime_ns=5, ctime_ns=6)
    body = encode(DirNode((entry,), 0, 1))
    assert body[0] == DIR_FORMAT_VERSION
    # 16 bytes per entry more than version 1: the two times.
    assert len(body) == len(v1_flat_body([(b"a", 0)])) + 16
    node = decode(Kind.DIR, body)
    assert isinstance(node, DirNode)
    assert node.entries == (entry,)


def test_version_1_directory_cannot_hold_other_times() -> None:
    node = decode(Kind.DIR, v1_flat_body([(b"a", 11)]))
    assert isinstance(node, DirNode)
    changed = node._replace(entries=(node.entries[0]._replace(atime_ns=12),))
    with pytest.raises(ValueError, match="version-1"):
        encode(changed)


def test_version_2_body_read_as_version_1_is_rejected() -> None:
    body = bytearray(encode(DirNode((file_entry(b"a"), file_entry(b"b")), 0, 2)))
    body[0] = 1
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, bytes(body))
    with pytest.raises(CorruptionError):
        decode(Kind.DIR, v1_flat_body([(b"a", 1)]).replace(b"\x01", b"\x02", 1))


def test_names_only_scan_reads_both_versions() -> None:
    v2 = encode(DirNode((file_entry(b"a")._replace(xattrs=((b"user.x", b"yz"),)), file_entry(b"b")), 0, 2))
    assert scan_dir(v2) == ([(b"a", Kind.FILE), (b"b", Kind.FILE)], ())
    assert scan_dir(v1_flat_body([(b"a", 1), (b"cd", 2)])) == ([(b"a", Kind.FILE), (b"cd", Kind.FILE)], ())


# -- special files (issue #12) ---------------------------------------------------


def test_special_node_keeps_a_device_number_only_for_devices() -> None:
    assert special_node(stat.S_IFCHR | 0o620, os.makedev(4, 1)) == SpecialNode(stat.S_IFCHR, os.makedev(4, 1))
    assert special_node(stat.S_IFBLK | 0o660, os.makedev(8, 0)) == SpecialNode(stat.S_IFBLK, os.makedev(8, 0))
    assert special_node(stat.S_IFIFO | 0o644, 1234) == SpecialNode(stat.S_IFIFO, 0)
    assert special_node(stat.S_IFSOCK | 0o755, 99) == SpecialNode(stat.S_IFSOCK, 0)


@pytest.mark.parametrize("mode", [stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777, 0o644])
def test_special_node_refuses_other_file_types(mode: int) -> None:
    with pytest.raises(ValueError, match="not a special file type"):
        special_node(mode, 0)


def test_every_fifo_shares_one_node_and_types_never_share() -> None:
    def node_id(mode: int, rdev: int) -> bytes:
        return object_id(Kind.SPECIAL, encode(special_node(mode, rdev)))

    assert node_id(stat.S_IFIFO | 0o600, 0) == node_id(stat.S_IFIFO | 0o777, 0)
    ids = {
        node_id(stat.S_IFIFO, 0),
        node_id(stat.S_IFSOCK, 0),
        node_id(stat.S_IFCHR, os.makedev(1, 3)),
        node_id(stat.S_IFBLK, os.makedev(1, 3)),
        node_id(stat.S_IFCHR, os.makedev(1, 5)),
    }
    assert len(ids) == 5


def test_special_node_body_is_version_type_and_device() -> None:
    body = encode(SpecialNode(stat.S_IFCHR, os.makedev(1, 3)))
    assert body == struct.pack("<BIQ", NODE_FORMAT_VERSION, stat.S_IFCHR, os.makedev(1, 3))


@pytest.mark.parametrize("file_type", [stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, 0, 0o7777])
def test_decode_rejects_special_node_of_another_type(file_type: int) -> None:
    with pytest.raises(CorruptionError, match="not a valid special node"):
        decode(Kind.SPECIAL, struct.pack("<BIQ", NODE_FORMAT_VERSION, file_type, 0))


@pytest.mark.parametrize("file_type", [stat.S_IFIFO, stat.S_IFSOCK])
def test_decode_rejects_fifo_or_socket_with_a_device_number(file_type: int) -> None:
    with pytest.raises(CorruptionError, match="device number"):
        decode(Kind.SPECIAL, struct.pack("<BIQ", NODE_FORMAT_VERSION, file_type, 7))


def test_special_node_is_a_leaf_its_entry_a_reference() -> None:
    assert list(iter_child_ids(SpecialNode(stat.S_IFIFO))) == []
    fifo = DirEntry(b"p", Kind.SPECIAL, stat.S_IFIFO | 0o644, 0, 0, 0, 0, ID_B)
    assert list(iter_child_ids(DirNode((fifo,), 0, 1))) == [(Kind.SPECIAL, ID_B)]


def test_children_of_each_node_kind_carry_what_their_reference_declares() -> None:
    entry = DirEntry(b"f", Kind.FILE, stat.S_IFREG | 0o644, 0, 0, 0, 5, ID_B)
    assert list(iter_children(DirNode((entry,), 0, 1))) == [Child(Kind.FILE, ID_B, 5, entry)]
    assert list(iter_children(DirNode((), 0, 300, ((3, ID_A),)))) == [Child(Kind.DIR, ID_A, 0)]
    assert list(iter_children(FileNode(9, 0, (ChunkRef(ID_A, 4), ChunkRef(ID_B, 5))))) == [
        Child(Kind.CHUNK, ID_A, 4),
        Child(Kind.CHUNK, ID_B, 5),
    ]
    assert list(iter_children(ChunkListNode(1, (ChunkRef(ID_A, 7),)))) == [Child(Kind.CHUNKLIST, ID_A, 7)]
    commit = Commit(ID_A, (ID_B,), 0, "a", "m", {})
    assert list(iter_child_ids(commit)) == [(Kind.DIR, ID_A), (Kind.COMMIT, ID_B)]
    assert list(iter_children(SymlinkNode(b"target"))) == []
