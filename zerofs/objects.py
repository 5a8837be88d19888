"""Object model: ids, node kinds, and their canonical, versioned encodings.

Every object is stored as a kind byte followed by a body; its id is the
BLAKE3-256 of exactly those bytes, so a chunk can never share an id with a
node of another kind. ``encode`` is canonical (fixed field order, sorted
entries, one version byte) and ``decode`` rejects anything ``encode`` would
not have produced. This module knows nothing about storage or compression.
"""

from __future__ import annotations

import enum
import itertools
import json
import stat
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Final, NamedTuple, TypeAlias

import blake3

from zerofs.errors import CorruptionError, InvalidNameError

ObjectId: TypeAlias = bytes
"""32 raw bytes: the BLAKE3-256 of an object's kind byte and body."""

ID_BYTES: Final = 32
NODE_FORMAT_VERSION: Final = 1
"""Version byte at the start of every node body (chunks carry raw bytes), except directories."""
DIR_FORMAT_VERSION: Final = 2
"""Version byte of the directory bodies written now: entries carry atime and ctime (issue #12).

Version-1 directory bodies (entries without them) still decode, with atime
and ctime equal to mtime, and keep their version, so they re-encode to the
same bytes; every directory node built by the tree code is written at this
version."""
DIR_VERSIONS: Final = frozenset({1, DIR_FORMAT_VERSION})

MAX_NAME_BYTES: Final = 255
MAX_FANOUT: Final = 256
"""Most references a file or chunk-list node holds; bounds every node's size."""

DIR_FLAT_MAX: Final = 256
"""A directory (or shard) with more entries than this is split into shards."""

CREATED_XATTR: Final = b"zerofs.created"
"""Entry attribute holding when the name was created in the store (8 bytes, ns, little-endian).

Outside the ``user.`` namespace, so a mount (issue #5) can keep it from programs."""

LINK_XATTR: Final = b"zerofs.link"
"""Entry attribute naming a hard-link group (16 random bytes), the same in every name of the group (issue #12).

Only regular files that had more than one name in one imported host tree
carry it. A group is one link id within one *scope*: the nearest
ancestor-or-self entry that carries ``CREATED_XATTR`` (an import, clone,
mkdir or write target), else the root. Clones copy ids verbatim, so names
linked inside a cloned tree stay linked to each other there and never to
the originals. Outside ``user.``, so it never reaches a host or a program."""
LINK_ID_BYTES: Final = 16

ACL_XATTRS: Final = (b"system.posix_acl_access", b"system.posix_acl_default")
"""POSIX ACLs as Linux shows them: extended attributes in the kernel's binary format, kept as is."""


def is_kept_xattr(key: bytes) -> bool:
    """True for an extended attribute that import, export and the mount keep: ``user.*`` and POSIX ACLs."""
    return key.startswith(b"user.") or key in ACL_XATTRS


DIR_SHARD_BITS: Final = 6
DIR_SHARDS: Final = 1 << DIR_SHARD_BITS


class Kind(enum.IntEnum):
    """The kind byte that prefixes every stored object."""

    CHUNK = 1
    FILE = 2
    CHUNKLIST = 3
    DIR = 4
    SYMLINK = 5
    COMMIT = 6
    GRAFTS = 7
    """Not a node: gc's graft table (canonical JSON), named by the GRAFTS ref."""
    SPECIAL = 8
    """A FIFO, socket, character or block device: its file type and device number (issue #12)."""


ENTRY_KINDS: Final = frozenset({Kind.FILE, Kind.DIR, Kind.SYMLINK, Kind.SPECIAL})

SPECIAL_TYPES: Final = {
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}
"""The file types (``stat.S_IFMT`` of a mode) a SPECIAL node can hold, and how messages name them."""


def object_id(kind: Kind, body: bytes | bytearray | memoryview) -> ObjectId:
    """Return the id of an object: BLAKE3 over its kind byte and body."""
    hasher = blake3.blake3(bytes((kind,)))
    hasher.update(body)
    return hasher.digest()


def chunk_id(data: bytes | bytearray | memoryview) -> ObjectId:
    """Return the id of a chunk of file content."""
    return object_id(Kind.CHUNK, data)


def name_hash(name: bytes) -> bytes:
    """Return the hash that places a name in a directory shard."""
    return blake3.blake3(name).digest()


def validate_name(name: bytes) -> bytes:
    """Check that ``name`` can be a directory entry and return it.

    Raises:
        InvalidNameError: empty, ``.``/``..``, containing ``/`` or NUL, or
            longer than 255 bytes.
    """
    if not name:
        raise InvalidNameError("invalid name: empty")
    if name in (b".", b".."):
        raise InvalidNameError(f"invalid name: {name.decode()!r} is reserved")
    if b"/" in name:
        raise InvalidNameError(f"invalid name {_show(name)}: contains '/'")
    if b"\0" in name:
        raise InvalidNameError(f"invalid name {_show(name)}: contains NUL")
    if len(name) > MAX_NAME_BYTES:
        raise InvalidNameError(f"invalid name {_show(name[:40])}...: {len(name)} bytes, the limit is {MAX_NAME_BYTES}")
    return name


def _show(name: bytes) -> str:
    return repr(name.decode("utf-8", "backslashreplace"))


# --------------------------------------------------------------------------
# Nodes


class ChunkRef(NamedTuple):
    """A reference to a chunk (level 0) or chunk-list node, with its byte length."""

    id: ObjectId
    size_bytes: int


class FileNode(NamedTuple):
    """The content of a regular file: its size and the top of its chunk index.

    ``level`` 0 means ``refs`` name chunks directly; level N means they name
    CHUNKLIST nodes of level N-1. Metadata (mode, mtime) lives in the
    directory entry, so identical contents share one node.
    """

    size_bytes: int
    level: int
    refs: tuple[ChunkRef, ...]

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.FILE


class ChunkListNode(NamedTuple):
    """An interior node of a large file's chunk index."""

    level: int
    refs: tuple[ChunkRef, ...]

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.CHUNKLIST


class SymlinkNode(NamedTuple):
    """A symbolic link: its target, never followed by zerofs."""

    target: bytes

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.SYMLINK


class SpecialNode(NamedTuple):
    """A FIFO, socket or device node: its file type and, for a device, its number.

    ``file_type`` is the ``stat.S_IFMT`` part of a mode (the entry's mode
    repeats it); ``rdev`` is the host's ``st_rdev`` (``os.makedev``) for a
    character or block device and 0 otherwise. Owner, permissions and times
    live in the entry, so every FIFO in the store shares one node.
    """

    file_type: int
    rdev: int = 0

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.SPECIAL

    @property
    def is_device(self) -> bool:
        """True for a character or block device (the only types with a device number)."""
        return self.file_type in (stat.S_IFCHR, stat.S_IFBLK)


def special_node(mode: int, rdev: int) -> SpecialNode:
    """Return the node of a special file of ``mode`` (its S_IFMT bits) and ``rdev``.

    The device number is kept for devices only: Linux ignores it for FIFOs
    and sockets, and dropping it there keeps one node per type.

    Raises:
        ValueError: ``mode`` is not a FIFO, socket or device.
    """
    file_type = stat.S_IFMT(mode)
    if file_type not in SPECIAL_TYPES:
        raise ValueError(f"not a special file type: {oct(file_type)}")
    node = SpecialNode(file_type)
    return node._replace(rdev=rdev) if node.is_device else node


class DirEntry(NamedTuple):
    """One name in a directory and the metadata that belongs to the name.

    ``size_bytes`` is the file size for files, the target length for
    symlinks and 0 for directories. ``atime_ns`` and ``ctime_ns`` (last
    access, last change of contents or metadata) follow the other fields so
    that an entry can be built without them in tests; code that makes an
    entry for the store passes both.
    """

    name: bytes
    kind: Kind
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size_bytes: int
    id: ObjectId
    xattrs: tuple[tuple[bytes, bytes], ...] = ()
    atime_ns: int = 0
    ctime_ns: int = 0

    @property
    def is_dir(self) -> bool:
        """True for a directory entry."""
        return self.kind is Kind.DIR

    def renamed(self, name: bytes) -> DirEntry:
        """Return this entry under another name."""
        return self._replace(name=name)

    @property
    def created_ns(self) -> int | None:
        """When this name was created in the store (recorded by ``with_created``), or None."""
        for key, value in self.xattrs:
            if key == CREATED_XATTR and len(value) == 8:
                return int.from_bytes(value, "little", signed=True)
        return None

    def with_created(self, time_ns: int) -> DirEntry:
        """Return this entry recording ``time_ns`` as its creation time (kept by renames).

        A snapshot is dated by this record, not by its name or mtime (a clone
        keeps its source's mtime): ``prune`` relies on it.
        """
        xattrs = tuple(
            sorted(
                (
                    *(x for x in self.xattrs if x[0] != CREATED_XATTR),
                    (CREATED_XATTR, time_ns.to_bytes(8, "little", signed=True)),
                )
            )
        )
        return self._replace(xattrs=xattrs)

    def without_created(self) -> DirEntry:
        """Return this entry without its creation record (it no longer starts a scope of its own)."""
        return self._replace(xattrs=tuple(x for x in self.xattrs if x[0] != CREATED_XATTR))

    @property
    def is_link_scope(self) -> bool:
        """True if this name starts a hard-link scope (it carries ``CREATED_XATTR``; see ``LINK_XATTR``)."""
        return any(key == CREATED_XATTR for key, _ in self.xattrs)

    @property
    def link_id(self) -> bytes | None:
        """The hard-link group this name belongs to within its scope (see ``LINK_XATTR``), or None."""
        for key, value in self.xattrs:
            if key == LINK_XATTR:
                return value
        return None

    def with_link(self, link_id: bytes) -> DirEntry:
        """Return this entry as a name of the hard-link group ``link_id``."""
        if not self.xattrs:
            return self._replace(xattrs=((LINK_XATTR, link_id),))
        kept = (x for x in self.xattrs if x[0] != LINK_XATTR)
        return self._replace(xattrs=tuple(sorted((*kept, (LINK_XATTR, link_id)))))

    @property
    def is_linked(self) -> bool:
        """True for a non-directory name in a hard-link group (a name that starts a scope never is)."""
        return self.kind is not Kind.DIR and self.link_id is not None and not self.is_link_scope

    def link_key(self) -> tuple[object, ...]:
        """What the names of one hard-link group agree on within their scope: link id, contents and metadata.

        Names with one link id that differ in any of these (one was changed
        on its own) are separate files.
        """
        kept = tuple(x for x in self.xattrs if is_kept_xattr(x[0]))
        return (self.link_id, self.kind, self.id, self.mode, self.uid, self.gid, self.mtime_ns, kept)

    def unlinked(self) -> DirEntry:
        """Return this entry out of its hard-link group (its data or metadata changed on its own)."""
        if not any(key == LINK_XATTR for key, _ in self.xattrs):
            return self
        return self._replace(xattrs=tuple(x for x in self.xattrs if x[0] != LINK_XATTR))

    def pointing_at(self, node_id: ObjectId, size_bytes: int | None = None, mtime_ns: int | None = None) -> DirEntry:
        """Return this entry pointing at another node (after a change below it).

        A new ``mtime_ns`` (the contents changed) is the new ctime too, as POSIX has it.
        """
        if mtime_ns is None:
            return self._replace(id=node_id, size_bytes=self.size_bytes if size_bytes is None else size_bytes)
        return self._replace(
            id=node_id,
            size_bytes=self.size_bytes if size_bytes is None else size_bytes,
            mtime_ns=mtime_ns,
            ctime_ns=mtime_ns,
        )

    def changed_at(self, time_ns: int) -> DirEntry:
        """Return this entry with ``time_ns`` as its ctime (its metadata or contents changed)."""
        return self._replace(ctime_ns=time_ns)

    def differs_only_in_atime(self, other: DirEntry) -> bool:
        """True if ``other`` is this entry but for its atime (a read, not a change)."""
        return self != other and self._replace(atime_ns=other.atime_ns) == other


class DirNode(NamedTuple):
    """A directory, or one shard of a large directory.

    A flat node (``shards`` empty) lists its entries sorted by name. A node
    with more than ``DIR_FLAT_MAX`` entries is instead split by the bits of
    ``name_hash`` at ``depth`` into ``DIR_SHARDS`` shards, each itself a
    DirNode at ``depth + 1``; ``shards`` holds (index, id) for non-empty ones.
    The layout is a pure function of the set of entries, so equal
    directories always have equal ids. ``version`` is the body's format
    version (``DIR_FORMAT_VERSION`` for every node built now; 1 for a node
    read from an older repository, kept so that it re-encodes to its bytes).
    """

    entries: tuple[DirEntry, ...] = ()
    depth: int = 0
    n_entries: int = 0
    shards: tuple[tuple[int, ObjectId], ...] = ()
    version: int = DIR_FORMAT_VERSION

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.DIR

    @property
    def is_sharded(self) -> bool:
        """True when this node holds shards rather than entries."""
        return bool(self.shards)


class Commit(NamedTuple):
    """One change to the repository: the new root and how it came to be."""

    root_id: ObjectId
    parent_ids: tuple[ObjectId, ...]
    time_ns: int
    author: str
    message: str
    operation: dict[str, object]

    @property
    def kind(self) -> Kind:
        """The kind byte this node is stored under."""
        return Kind.COMMIT


Node: TypeAlias = FileNode | ChunkListNode | SymlinkNode | SpecialNode | DirNode | Commit


# --------------------------------------------------------------------------
# Encoding

_HEADER = struct.Struct("<B")
_REF = struct.Struct("<32sQ")
_LIST_HEAD = struct.Struct("<BBQI")  # version, level, size, count
_ENTRY_V1 = struct.Struct("<BHIIIqQ32sH")  # kind, name len, mode, uid, gid, mtime, size, id, n xattrs
_ENTRY = struct.Struct("<BHIIIqqqQ32sH")  # kind, name len, mode, uid, gid, mtime, atime, ctime, size, id, n xattrs
_ENTRY_FORMATS: Final = {1: _ENTRY_V1, DIR_FORMAT_VERSION: _ENTRY}
_XATTR = struct.Struct("<BI")
_DIR_FLAT = struct.Struct("<BBI")  # version, layout 0, count
_DIR_SHARDED = struct.Struct("<BBBQQ")  # version, layout 1, depth, count, bitmap
_COMMIT_HEAD = struct.Struct("<B32sBq")  # version, root, n parents, time
_SPECIAL = struct.Struct("<BIQ")  # version, file type (S_IFMT bits), device number


def encode(node: Node) -> bytes:
    """Return the canonical body of ``node`` (without the kind byte)."""
    if isinstance(node, FileNode):
        return _encode_refs(node.level, node.size_bytes, node.refs)
    if isinstance(node, ChunkListNode):
        return _encode_refs(node.level, sum(r.size_bytes for r in node.refs), node.refs)
    if isinstance(node, DirNode):
        return _encode_dir(node)
    if isinstance(node, SymlinkNode):
        return bytes((NODE_FORMAT_VERSION,)) + node.target
    if isinstance(node, SpecialNode):
        return _SPECIAL.pack(NODE_FORMAT_VERSION, node.file_type, node.rdev)
    return _encode_commit(node)


def _encode_refs(level: int, size_bytes: int, refs: Sequence[ChunkRef]) -> bytes:
    parts = [_LIST_HEAD.pack(NODE_FORMAT_VERSION, level, size_bytes, len(refs))]
    parts.extend(_REF.pack(r.id, r.size_bytes) for r in refs)
    return b"".join(parts)


def encode_entry(entry: DirEntry, version: int = DIR_FORMAT_VERSION) -> bytes:
    """Return the canonical encoding of one directory entry in a directory body of ``version``.

    Raises:
        ValueError: a version-1 body cannot hold this entry's atime or ctime
            (only nodes read from an old repository are version 1).
    """
    head = (entry.kind, len(entry.name), entry.mode, entry.uid, entry.gid, entry.mtime_ns)
    tail = (entry.size_bytes, entry.id, len(entry.xattrs))
    if version == DIR_FORMAT_VERSION:
        packed = _ENTRY.pack(*head, entry.atime_ns, entry.ctime_ns, *tail)
    elif entry.atime_ns == entry.ctime_ns == entry.mtime_ns:
        packed = _ENTRY_V1.pack(*head, *tail)
    else:
        raise ValueError("a version-1 directory entry has no atime or ctime of its own")
    parts = [packed, entry.name]
    for key, value in entry.xattrs:
        parts.append(_XATTR.pack(len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


def _encode_dir(node: DirNode) -> bytes:
    if not node.shards:
        head = _DIR_FLAT.pack(node.version, 0, len(node.entries))
        return head + b"".join(encode_entry(e, node.version) for e in node.entries)
    bitmap = 0
    for index, _ in node.shards:
        bitmap |= 1 << index
    head = _DIR_SHARDED.pack(node.version, 1, node.depth, node.n_entries, bitmap)
    return head + b"".join(shard_id for _, shard_id in node.shards)


def _encode_commit(commit: Commit) -> bytes:
    message = commit.message.encode()
    author = commit.author.encode()
    operation = json.dumps(commit.operation, sort_keys=True, separators=(",", ":")).encode()
    parts = [_COMMIT_HEAD.pack(NODE_FORMAT_VERSION, commit.root_id, len(commit.parent_ids), commit.time_ns)]
    parts.extend(commit.parent_ids)
    for text in (author, message, operation):
        parts.append(struct.pack("<I", len(text)))
        parts.append(text)
    return b"".join(parts)


def decode(kind: Kind, body: bytes, object_hex: str = "") -> Node:
    """Decode a node body, rejecting anything ``encode`` would not produce.

    Raises:
        CorruptionError: the body is not a canonical encoding of ``kind``.
    """
    try:
        node = _DECODERS[kind](body)
    except (struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError, InvalidNameError) as exc:
        raise CorruptionError(f"object {object_hex[:16]} is not a valid {kind.name.lower()} node: {exc}") from exc
    if encode(node) != body:
        raise CorruptionError(f"object {object_hex[:16]} is not canonically encoded")
    return node


def _check_version(body: bytes) -> None:
    if not body or body[0] != NODE_FORMAT_VERSION:
        raise ValueError(f"unknown node format version {body[:1].hex() or 'none'}")


def _decode_refs(body: bytes) -> tuple[int, int, tuple[ChunkRef, ...]]:
    _check_version(body)
    _, level, size_bytes, count = _LIST_HEAD.unpack_from(body)
    offset = _LIST_HEAD.size
    refs = tuple(ChunkRef(i, n) for i, n in _REF.iter_unpack(body[offset : offset + count * _REF.size]))
    if len(refs) != count or count > MAX_FANOUT:
        raise ValueError("bad reference count")
    return level, size_bytes, refs


def _decode_file(body: bytes) -> FileNode:
    level, size_bytes, refs = _decode_refs(body)
    if sum(r.size_bytes for r in refs) != size_bytes:
        raise ValueError("file size does not match its chunks")
    return FileNode(size_bytes, level, refs)


def _decode_chunklist(body: bytes) -> ChunkListNode:
    level, _, refs = _decode_refs(body)
    return ChunkListNode(level, refs)


def decode_entries(
    body: bytes | memoryview, offset: int, count: int, version: int = DIR_FORMAT_VERSION
) -> tuple[tuple[DirEntry, ...], int]:
    """Decode ``count`` consecutive entries of a directory body of ``version``; return them and the end offset.

    Entries of a version-1 body get their mtime as atime and ctime.
    """
    entries = []
    entry_format = _ENTRY_FORMATS[version]
    unpack = entry_format.unpack_from
    entry_size = entry_format.size
    is_v1 = version == 1
    kinds = {int(k): k for k in ENTRY_KINDS}
    for _ in range(count):
        if is_v1:
            kind, name_len, mode, uid, gid, mtime_ns, size_bytes, node_id, n_xattrs = unpack(body, offset)
            atime_ns = ctime_ns = mtime_ns
        else:
            fields = unpack(body, offset)
            kind, name_len, mode, uid, gid, mtime_ns, atime_ns, ctime_ns, size_bytes, node_id, n_xattrs = fields
        offset += entry_size
        name = bytes(body[offset : offset + name_len])
        offset += name_len
        xattrs = []
        for _ in range(n_xattrs):
            key_len, value_len = _XATTR.unpack_from(body, offset)
            offset += _XATTR.size
            key = bytes(body[offset : offset + key_len])
            offset += key_len
            xattrs.append((key, bytes(body[offset : offset + value_len])))
            offset += value_len
        entry = DirEntry(validate_name(name), kinds[kind], mode, uid, gid, mtime_ns, size_bytes, node_id)
        entries.append(entry._replace(xattrs=tuple(xattrs), atime_ns=atime_ns, ctime_ns=ctime_ns))
    return tuple(entries), offset


def scan_dir(body: bytes) -> tuple[list[tuple[bytes, Kind]], tuple[tuple[int, ObjectId], ...]]:
    """Return the (name, kind) pairs of a flat directory body, or the shards of a sharded one.

    For callers that need names only (shell completion in a directory of
    100,000 entries): it builds no DirEntry and skips ``decode``'s checks of
    names and of canonical form, so ``body`` must come from a record already
    verified against its id (``Repository.get_record_body``).

    Raises:
        CorruptionError: ``body`` is not a directory body.
    """
    try:
        version = _check_dir_version(body)
        if body[1] != 0:
            return [], _decode_dir(body).shards
        _, _, count = _DIR_FLAT.unpack_from(body)
        names = []
        offset = _DIR_FLAT.size
        entry_format = _ENTRY_FORMATS[version]
        unpack, entry_size, xattr_head = entry_format.unpack_from, entry_format.size, _XATTR.unpack_from
        kinds = {int(k): k for k in ENTRY_KINDS}
        for _ in range(count):
            kind, name_len, *_unused, n_xattrs = unpack(body, offset)
            offset += entry_size
            names.append((body[offset : offset + name_len], kinds[kind]))
            offset += name_len
            for _ in range(n_xattrs):
                key_len, value_len = xattr_head(body, offset)
                offset += _XATTR.size + key_len + value_len
        return names, ()
    except (struct.error, ValueError, IndexError, KeyError) as exc:
        raise CorruptionError(f"not a valid directory node: {exc}") from exc


def _check_dir_version(body: bytes) -> int:
    if not body or body[0] not in DIR_VERSIONS:
        raise ValueError(f"unknown directory format version {body[:1].hex() or 'none'}")
    return body[0]


def _decode_dir(body: bytes) -> DirNode:
    version = _check_dir_version(body)
    if body[1] == 0:
        _, _, count = _DIR_FLAT.unpack_from(body)
        entries, end = decode_entries(body, _DIR_FLAT.size, count, version)
        if end != len(body) or count > DIR_FLAT_MAX:
            raise ValueError("bad directory length")
        if any(a.name >= b.name for a, b in itertools.pairwise(entries)):
            raise ValueError("entries not strictly sorted")
        return DirNode(entries, 0, count, (), version)
    _, _, depth, count, bitmap = _DIR_SHARDED.unpack_from(body)
    offset = _DIR_SHARDED.size
    indexes = [i for i in range(DIR_SHARDS) if bitmap >> i & 1]
    ids = [body[offset + n * ID_BYTES : offset + (n + 1) * ID_BYTES] for n in range(len(indexes))]
    if len(body) != offset + len(indexes) * ID_BYTES:
        raise ValueError("bad sharded directory length")
    if count <= DIR_FLAT_MAX or not indexes or depth >= ID_BYTES:
        raise ValueError("shards of a directory that would fit in one node")
    return DirNode((), depth, count, tuple(zip(indexes, ids, strict=True)), version)


def _decode_symlink(body: bytes) -> SymlinkNode:
    _check_version(body)
    return SymlinkNode(body[1:])


def _decode_special(body: bytes) -> SpecialNode:
    _check_version(body)
    _, file_type, rdev = _SPECIAL.unpack(body)
    node = special_node(file_type, rdev)
    if node.rdev != rdev:
        raise ValueError(f"a {SPECIAL_TYPES[file_type]} with a device number")
    return node


def _decode_commit(body: bytes) -> Commit:
    _check_version(body)
    _, root_id, n_parents, time_ns = _COMMIT_HEAD.unpack_from(body)
    offset = _COMMIT_HEAD.size
    parents = tuple(body[offset + n * ID_BYTES : offset + (n + 1) * ID_BYTES] for n in range(n_parents))
    offset += n_parents * ID_BYTES
    texts = []
    for _ in range(3):
        (length,) = struct.unpack_from("<I", body, offset)
        offset += 4
        texts.append(body[offset : offset + length].decode())
        offset += length
    author, message, operation = texts
    return Commit(root_id, parents, time_ns, author, message, json.loads(operation))


_DECODERS: dict[Kind, Callable[[bytes], Node]] = {
    Kind.FILE: _decode_file,
    Kind.CHUNKLIST: _decode_chunklist,
    Kind.DIR: _decode_dir,
    Kind.SYMLINK: _decode_symlink,
    Kind.COMMIT: _decode_commit,
    Kind.SPECIAL: _decode_special,
}


def is_single_chunk(file_id: ObjectId, node: FileNode) -> bool:
    """True if ``node`` is the index of a file stored as its one chunk, whose id is the chunk's.

    No FILE node can name itself (its id hashes its own refs), so this
    tells such a file from a FILE node of one chunk.
    """
    return node.level == 0 and len(node.refs) == 1 and node.refs[0].id == file_id


class Child(NamedTuple):
    """One reference a node holds: the only description of a node's children (see ``iter_children``)."""

    kind: Kind
    """The kind of object the reference expects."""
    object_id: ObjectId
    size_bytes: int
    """The length the reference declares: a chunk's or chunk list's, a directory entry's ``size_bytes``; else 0."""
    entry: DirEntry | None = None
    """The directory entry that holds the reference (None for shards, chunk refs and a commit's references)."""


def iter_children(node: Node) -> Iterator[Child]:
    """Yield every reference ``node`` holds, in stored order.

    A directory: its shards, then its entries; a file or chunk list: its
    chunks (level 0) or chunk lists; a commit: its root, then its parents
    (as stored: gc's grafts are applied by the history walk, not here);
    symlinks and special files hold none. Every walk over nodes (gc's mark,
    fsck, reachability, staging, sync) reads children here.
    """
    if isinstance(node, FileNode | ChunkListNode):
        child_kind = Kind.CHUNK if node.level == 0 else Kind.CHUNKLIST
        for ref in node.refs:
            yield Child(child_kind, ref.id, ref.size_bytes)
    elif isinstance(node, DirNode):
        for _, shard_id in node.shards:
            yield Child(Kind.DIR, shard_id, 0)
        for entry in node.entries:
            yield Child(entry.kind, entry.id, entry.size_bytes, entry)
    elif isinstance(node, Commit):
        yield Child(Kind.DIR, node.root_id, 0)
        for parent_id in node.parent_ids:
            yield Child(Kind.COMMIT, parent_id, 0)


def iter_child_ids(node: Node) -> Iterator[tuple[Kind, ObjectId]]:
    """Yield (kind, id) of every object ``node`` references directly (``iter_children``, ids only)."""
    for child in iter_children(node):
        yield child.kind, child.object_id
