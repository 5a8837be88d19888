"""Pure tree operations by path copying: (root, operation) -> new root.

Nothing here mutates a node or moves a ref: an operation reads nodes through
a ``NodeSink`` and stages the new ones it builds, returning the new root id.
Only the directories on the path from the root to the change are rebuilt,
so a clone (one new entry pointing at an existing node) costs the same for
ten files or ten million.

Directories with more than ``DIR_FLAT_MAX`` entries are split into shards by
the hash of each name (see ``objects.DirNode``): inserting into a directory
of 100,000 entries rebuilds one small shard per level, not the directory.
"""

from __future__ import annotations

import bisect
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import Final, NamedTuple, Protocol, TypeVar

from zerofs.errors import ConflictError, Hint, NotFoundError, UsageError
from zerofs.objects import (
    DIR_FLAT_MAX,
    DIR_SHARDS,
    Child,
    ChunkListNode,
    Commit,
    DirEntry,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    SpecialNode,
    SymlinkNode,
    is_single_chunk,
    iter_children,
    name_hash,
)
from zerofs.paths import StorePath

DIR_MODE: Final = stat.S_IFDIR | 0o755
N = TypeVar("N", FileNode, ChunkListNode, DirNode, SymlinkNode, SpecialNode, Commit)


class NodeSource(Protocol):
    """Where tree operations read nodes."""

    def get_typed(self, node_id: ObjectId, node_type: type[N]) -> N:
        """Return the node with this id, which must be of ``node_type``."""
        ...


class NodeSink(NodeSource, Protocol):
    """Where tree operations read nodes and stage the ones they build."""

    def put(self, node: Node) -> ObjectId:
        """Stage a node; return its id."""
        ...


def root_entry(root_id: ObjectId, mtime_ns: int = 0) -> DirEntry:
    """Return a synthetic entry for the root directory."""
    return DirEntry(b"", Kind.DIR, DIR_MODE, 0, 0, mtime_ns, 0, root_id, atime_ns=mtime_ns, ctime_ns=mtime_ns)


# --------------------------------------------------------------------------
# Directory nodes (flat or sharded)


def _shard_of(name: bytes, depth: int) -> int:
    return name_hash(name)[depth] & (DIR_SHARDS - 1)


def build_dir(sink: NodeSink, entries: Sequence[DirEntry]) -> ObjectId:
    """Stage a directory holding ``entries`` (any order, unique names); return its id."""
    return _build(sink, sorted(entries, key=lambda e: e.name), 0)


def _build(sink: NodeSink, entries: Sequence[DirEntry], depth: int) -> ObjectId:
    if len(entries) <= DIR_FLAT_MAX:
        return sink.put(DirNode(tuple(entries), 0, len(entries)))
    groups: dict[int, list[DirEntry]] = {}
    for entry in entries:
        groups.setdefault(_shard_of(entry.name, depth), []).append(entry)
    shards = tuple((index, _build(sink, groups[index], depth + 1)) for index in sorted(groups))
    return sink.put(DirNode((), depth, len(entries), shards))


def iter_dir(source: NodeSource, dir_id: ObjectId) -> Iterator[DirEntry]:
    """Yield a directory's entries in storage order (sorted within each shard)."""
    node = source.get_typed(dir_id, DirNode)
    if not node.shards:
        yield from node.entries
        return
    for _, shard_id in node.shards:
        yield from iter_dir(source, shard_id)


def list_dir(source: NodeSource, dir_id: ObjectId) -> list[DirEntry]:
    """Return a directory's entries sorted by name."""
    node = source.get_typed(dir_id, DirNode)
    if not node.shards:
        return list(node.entries)
    return sorted(iter_dir(source, dir_id), key=lambda e: e.name)


def count_dir(source: NodeSource, dir_id: ObjectId) -> int:
    """Return the number of entries in a directory without reading its shards."""
    return source.get_typed(dir_id, DirNode).n_entries


def dir_get(source: NodeSource, dir_id: ObjectId, name: bytes) -> DirEntry | None:
    """Return the entry called ``name``, or None."""
    node = source.get_typed(dir_id, DirNode)
    while node.shards:
        index = _shard_of(name, node.depth)
        shard_id = dict(node.shards).get(index)
        if shard_id is None:
            return None
        node = source.get_typed(shard_id, DirNode)
    entries = node.entries
    at = bisect.bisect_left(entries, name, key=lambda e: e.name)
    if at < len(entries) and entries[at].name == name:
        return entries[at]
    return None


def dir_put(sink: NodeSink, dir_id: ObjectId, entry: DirEntry) -> ObjectId:
    """Stage a copy of the directory with ``entry`` inserted or replaced."""
    return _put(sink, sink.get_typed(dir_id, DirNode), entry, 0)[0]


def _put(sink: NodeSink, node: DirNode, entry: DirEntry, depth: int) -> tuple[ObjectId, bool]:
    # ``depth`` is passed down: a flat node does not record the depth it sits at.
    if not node.shards:
        entries = list(node.entries)
        at = bisect.bisect_left(entries, entry.name, key=lambda e: e.name)
        is_new = not (at < len(entries) and entries[at].name == entry.name)
        if is_new:
            entries.insert(at, entry)
        else:
            entries[at] = entry
        return _build(sink, entries, depth), is_new
    index = _shard_of(entry.name, depth)
    shards = dict(node.shards)
    if index in shards:
        shards[index], is_new = _put(sink, sink.get_typed(shards[index], DirNode), entry, depth + 1)
    else:
        shards[index], is_new = _build(sink, [entry], depth + 1), True
    return sink.put(DirNode((), depth, node.n_entries + is_new, tuple(sorted(shards.items())))), is_new


def dir_remove(sink: NodeSink, dir_id: ObjectId, name: bytes) -> ObjectId:
    """Stage a copy of the directory without ``name`` (which must be present)."""
    new_id, removed = _remove(sink, sink.get_typed(dir_id, DirNode), name, 0)
    if not removed:
        raise NotFoundError(f"no entry {name!r} to remove")
    return new_id


def _remove(sink: NodeSink, node: DirNode, name: bytes, depth: int) -> tuple[ObjectId, bool]:
    if not node.shards:
        kept = [e for e in node.entries if e.name != name]
        if len(kept) == len(node.entries):
            return sink.put(node), False
        return _build(sink, kept, depth), True
    index = _shard_of(name, depth)
    shards = dict(node.shards)
    if index not in shards:
        return sink.put(node), False
    child = sink.get_typed(shards[index], DirNode)
    new_child_id, removed = _remove(sink, child, name, depth + 1)
    if not removed:
        return sink.put(node), False
    if node.n_entries - 1 <= DIR_FLAT_MAX:
        # Back under the limit: the canonical form is flat again.
        shards[index] = new_child_id
        entries = [e for _, shard_id in sorted(shards.items()) for e in iter_dir(sink, shard_id)]
        return _build(sink, sorted(entries, key=lambda e: e.name), depth), True
    if sink.get_typed(new_child_id, DirNode).n_entries == 0:
        del shards[index]
    else:
        shards[index] = new_child_id
    return sink.put(DirNode((), depth, node.n_entries - 1, tuple(sorted(shards.items())))), True


# --------------------------------------------------------------------------
# Paths


def lookup(source: NodeSource, root_id: ObjectId, path: StorePath, *, rev: str | None = None) -> DirEntry:
    """Return the entry at ``path`` (a synthetic one for the root).

    ``rev`` is how the user named the revision ``root_id`` belongs to, for
    the error (None: the store as it is now).

    Raises:
        NotFoundError: a component does not exist.
        ConflictError: a component other than the last is not a directory.
    """
    entry, depth = _walk_to(source, root_id, path)
    if entry is None:
        raise not_found(source, root_id, path, depth, rev=rev)
    return entry


def try_lookup(source: NodeSource, root_id: ObjectId, path: StorePath) -> DirEntry | None:
    """Return the entry at ``path``, or None if it (or a parent) is missing."""
    return _walk_to(source, root_id, path)[0]


def _walk_to(source: NodeSource, root_id: ObjectId, path: StorePath) -> tuple[DirEntry | None, int]:
    """Return (the entry at ``path``, or None and the depth of the first missing name)."""
    entry = root_entry(root_id)
    for depth, name in enumerate(path.parts):
        if entry.kind is not Kind.DIR:
            raise ConflictError(f"not a directory: {StorePath(path.parts[:depth]).shown()}")
        found = dir_get(source, entry.id, name)
        if found is None:
            return None, depth
        entry = found
    return entry, len(path.parts)


SUGGEST_MAX_ENTRIES: Final = 20_000
"""Directories larger than this are not searched for a close name (an error must stay fast)."""


def not_found(
    source: NodeSource, root_id: ObjectId, path: StorePath, depth: int, *, rev: str | None = None
) -> NotFoundError:
    """Return the error for ``path``, whose name at ``depth`` is missing, naming close names if any."""
    parent = StorePath(path.parts[:depth])
    hint = _suggest(source, lookup(source, root_id, parent).id, parent, path.parts[depth])
    where = "the store" if rev is None else rev
    return NotFoundError(f"no such path in {where}: {StorePath(path.parts[: depth + 1]).shown()}{hint}")


def _suggest(source: NodeSource, dir_id: ObjectId, here: StorePath, name: bytes) -> str:
    """Return " (did you mean /data?)" for names in the directory close to ``name``, or ""."""
    if count_dir(source, dir_id) > SUGGEST_MAX_ENTRIES:
        return ""
    import difflib  # only on this error path

    names = {e.name.decode("utf-8", "surrogateescape"): e.name for e in iter_dir(source, dir_id)}
    close = difflib.get_close_matches(name.decode("utf-8", "surrogateescape"), list(names), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(StorePath((*here.parts, names[c])).shown() for c in close) + "?)"


def require_dir(source: NodeSource, root_id: ObjectId, path: StorePath) -> DirEntry:
    """Return the entry at ``path``, which must be a directory."""
    entry = lookup(source, root_id, path)
    if entry.kind is not Kind.DIR:
        raise ConflictError(f"not a directory: {path.shown()}")
    return entry


DirChange = Callable[[ObjectId], ObjectId]


def change_dir(sink: NodeSink, root_id: ObjectId, dir_path: StorePath, change: DirChange, now_ns: int) -> ObjectId:
    """Apply ``change`` to the directory at ``dir_path``; path-copy up to a new root.

    The changed directory's own entry gets ``now_ns`` as its mtime, as a
    POSIX directory does when an entry is added or removed in it.

    Raises:
        NotFoundError / ConflictError: ``dir_path`` is missing or not a directory.
    """
    return _change_below(sink, root_id, dir_path.parts, change, now_ns, StorePath())


def _change_below(
    sink: NodeSink, dir_id: ObjectId, parts: tuple[bytes, ...], change: DirChange, now_ns: int, here: StorePath
) -> ObjectId:
    if not parts:
        return change(dir_id)
    name = parts[0]
    entry = dir_get(sink, dir_id, name)
    child_path = StorePath((*here.parts, name))
    if entry is None:
        raise NotFoundError(f"no such directory in the store: {child_path.shown()}{_suggest(sink, dir_id, here, name)}")
    if entry.kind is not Kind.DIR:
        raise ConflictError(f"not a directory: {child_path.shown()}")
    new_child = _change_below(sink, entry.id, parts[1:], change, now_ns, child_path)
    mtime = now_ns if len(parts) == 1 else None
    return dir_put(sink, dir_id, entry.pointing_at(new_child, mtime_ns=mtime))


def ensure_dirs(
    sink: NodeSink, root_id: ObjectId, path: StorePath, now_ns: int, mode: int = DIR_MODE, uid: int = 0, gid: int = 0
) -> ObjectId:
    """Create ``path`` and any missing parents as directories (like ``mkdir -p``).

    Raises:
        ConflictError: a component exists and is not a directory.
    """
    empty_dir = sink.put(DirNode())
    for depth in range(1, len(path.parts) + 1):
        prefix = StorePath(path.parts[:depth])
        existing = try_lookup(sink, root_id, prefix)
        if existing is None:
            new_entry = DirEntry(
                prefix.name, Kind.DIR, mode, uid, gid, now_ns, 0, empty_dir, atime_ns=now_ns, ctime_ns=now_ns
            ).with_created(now_ns)
            root_id = change_dir(sink, root_id, prefix.parent, _putter(sink, new_entry), now_ns)
        elif existing.kind is not Kind.DIR:
            raise ConflictError(f"not a directory: {prefix.shown()}")
    return root_id


def _putter(sink: NodeSink, entry: DirEntry) -> DirChange:
    """Return a change that puts ``entry`` into a directory."""
    return lambda dir_id: dir_put(sink, dir_id, entry)


def place(
    sink: NodeSink,
    root_id: ObjectId,
    path: StorePath,
    entry: DirEntry,
    now_ns: int,
    *,
    parents: bool = False,
    replace: bool = False,
) -> ObjectId:
    """Put ``entry`` (renamed to the last component) at ``path``.

    Args:
        sink: where to read and stage nodes.
        root_id: the tree to change.
        path: where the entry goes; its parent must be a directory.
        entry: the entry to place (its name is replaced by ``path.name``).
        now_ns: mtime for the changed parent directory.
        parents: create missing parent directories.
        replace: allow replacing an existing entry (a directory only by a directory
            or when ``replace`` is explicitly for any kind).

    Raises:
        UsageError: ``path`` is the root.
        ConflictError: ``path`` exists and ``replace`` is false.
        NotFoundError: the parent is missing and ``parents`` is false.
    """
    if path.is_root:
        raise UsageError("cannot replace the root directory /")
    if parents:
        root_id = ensure_dirs(sink, root_id, path.parent, now_ns)
    else:
        _require_parent(sink, root_id, path)
    existing = try_lookup(sink, root_id, path)
    if existing is not None and not replace:
        raise ConflictError(f"already exists: {path.shown()}", hint=Hint.REPLACE)
    placed = entry.renamed(path.name).with_created(now_ns).changed_at(now_ns)
    return change_dir(sink, root_id, path.parent, _putter(sink, placed), now_ns)


def _require_parent(source: NodeSource, root_id: ObjectId, path: StorePath) -> None:
    parent = try_lookup(source, root_id, path.parent)
    if parent is None:
        raise NotFoundError(f"parent directory does not exist: {path.parent.shown()}", hint=Hint.CREATE_PARENTS)
    if parent.kind is not Kind.DIR:
        raise ConflictError(f"not a directory: {path.parent.shown()}")


def remove(sink: NodeSink, root_id: ObjectId, path: StorePath, now_ns: int, *, recursive: bool = False) -> ObjectId:
    """Remove the entry at ``path``; a non-empty directory needs ``recursive``.

    Raises:
        UsageError: ``path`` is the root.
        NotFoundError: nothing there.
        ConflictError: a non-empty directory without ``recursive``.
    """
    if path.is_root:
        raise UsageError("refusing to remove the root directory /")
    entry = lookup(sink, root_id, path)
    if entry.kind is Kind.DIR and not recursive and count_dir(sink, entry.id) > 0:
        raise ConflictError(f"directory not empty: {path.shown()}", hint=Hint.RECURSIVE)
    return change_dir(sink, root_id, path.parent, lambda d: dir_remove(sink, d, path.name), now_ns)


def move(
    sink: NodeSink, root_id: ObjectId, source: StorePath, target: StorePath, now_ns: int, *, force: bool = False
) -> tuple[ObjectId, StorePath]:
    """Move ``source`` to ``target`` (into it, if ``target`` is a directory), like mv(1).

    Returns the new root and the path the entry ended at.

    Raises:
        UsageError: moving the root, or a directory into itself.
        ConflictError: the destination exists and cannot be replaced.
    """
    if source.is_root:
        raise UsageError("cannot move the root directory /")
    entry = lookup(sink, root_id, source)
    existing = try_lookup(sink, root_id, target)
    if existing is not None and existing.kind is Kind.DIR and target != source:
        target = target.child(source.name)
        existing = try_lookup(sink, root_id, target)
    if target == source:
        return root_id, target
    if target.is_within(source):
        raise UsageError(f"cannot move {source.shown()} into itself ({target.shown()})")
    if existing is not None:
        if existing.kind is Kind.DIR:
            raise ConflictError(f"already exists: {target.shown()} is a directory")
        if entry.kind is Kind.DIR and not force:
            raise ConflictError(
                f"cannot replace file {target.shown()} with directory {source.shown()}", hint=Hint.REPLACE
            )
    _require_parent(sink, root_id, target)
    without = change_dir(sink, root_id, source.parent, lambda d: dir_remove(sink, d, source.name), now_ns)
    moved = entry.renamed(target.name).changed_at(now_ns)  # a rename changes the ctime, as on Linux
    return change_dir(sink, without, target.parent, _putter(sink, moved), now_ns), target


def walk(source: NodeSource, dir_id: ObjectId, path: StorePath) -> Iterator[tuple[StorePath, DirEntry]]:
    """Yield (path, entry) for everything below a directory, parents first, sorted."""
    for entry in list_dir(source, dir_id):
        child = StorePath((*path.parts, entry.name))
        yield child, entry
        if entry.kind is Kind.DIR:
            yield from walk(source, entry.id, child)


class Reached(NamedTuple):
    """One object met by ``iter_reachable``: what it is and where it was first met."""

    object_id: ObjectId
    kind: Kind
    path: StorePath
    """The store path it is reached by (a file's chunks and a directory's shards: the file's, the directory's)."""
    size_bytes: int
    """Uncompressed bytes its reference declares: a chunk's or chunk list's length, a file's size; else 0."""


def iter_reachable(
    source: NodeSource,
    root_id: ObjectId,
    *,
    kind: Kind = Kind.DIR,
    path: StorePath = StorePath(),  # noqa: B008 (an immutable tuple)
    size_bytes: int = 0,
    seen: set[ObjectId] | None = None,
) -> Iterator[Reached]:
    """Yield every object reachable from ``root_id`` once, parents before children.

    Ids already in ``seen`` are skipped with everything below them, and every
    id yielded is added to it: pass the same set to walk many roots (all of
    history) reading each shared subtree once. Chunks are yielded, not read.
    Only directory, file and chunk-list nodes are read, through ``source``.
    A file stored as its one chunk is yielded as that chunk (kind CHUNK).
    """
    if seen is None:
        seen = set()
    stack = [Reached(root_id, kind, path, size_bytes)]
    while stack:
        item = stack.pop()
        if item.object_id in seen:
            continue
        seen.add(item.object_id)
        if item.kind is Kind.FILE:
            file_node = source.get_typed(item.object_id, FileNode)
            if is_single_chunk(item.object_id, file_node):  # stored as its one chunk
                yield item._replace(kind=Kind.CHUNK)
                continue
            yield item
            node: Node = file_node
        elif item.kind is Kind.DIR:
            yield item
            node = source.get_typed(item.object_id, DirNode)
        elif item.kind is Kind.CHUNKLIST:
            yield item
            node = source.get_typed(item.object_id, ChunkListNode)
        else:  # a leaf: yielded, never read
            yield item
            continue
        stack.extend(_reached(child, item.path) for child in reversed(tuple(iter_children(node))))


def _reached(child: Child, path: StorePath) -> Reached:
    """A child met below ``path``: an entry is reached by its own name, a shard or chunk by its parent's path."""
    if child.entry is not None:
        path = StorePath((*path.parts, child.entry.name))
    return Reached(child.object_id, child.kind, path, child.size_bytes)


def apparent_bytes(source: NodeSource, entry: DirEntry, memo: dict[bytes, int] | None = None) -> int:
    """Return the sum of the sizes of the regular files at or below ``entry``, counting every path.

    The names of one hard-link group (``objects.LINK_XATTR``) in one scope
    count once, as du(1) counts a file with several names; ``entry`` itself
    closes a scope. A directory's total is remembered by id in ``memo``, so
    twenty clones of one tree cost one walk of it.
    """
    plain, links = _apparent(source, entry, {} if memo is None else memo)
    return plain + sum(links.values())


def _apparent(source: NodeSource, entry: DirEntry, memo: dict[bytes, int]) -> tuple[int, dict[bytes, int]]:
    """The bytes of ``entry``'s files that are in no open link group, and each open group's size.

    ``memo`` holds a directory's total under its id when no link group is
    open below it, and under its id and ``b"+"`` as a closed scope.
    """
    if entry.kind is Kind.FILE:
        link_id = entry.link_id
        if link_id is None or entry.is_link_scope:
            return entry.size_bytes, {}
        return 0, {link_id + entry.id: entry.size_bytes}  # names that differ in contents are separate files
    if entry.kind is not Kind.DIR:
        return 0, {}
    is_scope = entry.is_link_scope
    total = memo.get(entry.id)
    if total is None and is_scope:
        total = memo.get(entry.id + b"+")
    if total is not None:
        return total, {}
    plain = 0
    links: dict[bytes, int] = {}
    for child in iter_dir(source, entry.id):
        child_plain, child_links = _apparent(source, child, memo)
        plain += child_plain
        if len(child_links) > len(links):
            links, child_links = child_links, links
        links.update(child_links)
    if not links:
        memo[entry.id] = plain
    elif is_scope:
        plain += sum(links.values())
        memo[entry.id + b"+"] = plain
        links = {}
    return plain, links


# --------------------------------------------------------------------------
# Merging


def merge3(sink: NodeSink, base_id: ObjectId | None, ours_id: ObjectId, theirs_id: ObjectId) -> ObjectId:
    """Merge two directory trees that both started from ``base_id``; return the merged tree.

    A subtree equal on two sides is never opened (ids are Merkle hashes), so
    the cost follows what changed, not the size of the tree. Name by name:
    a side that left an entry as it was in the base takes the other side's
    version; where both changed the same directory, its contents are merged;
    otherwise ours wins, except that a deletion never beats a change (the
    change is kept) and a new atime alone (a read) never beats a change of
    the other side. ``None`` as base means an empty directory. This is how
    a mount's changes land on top of commits other processes made meanwhile.
    """
    if ours_id == theirs_id or theirs_id == base_id:
        return ours_id
    if ours_id == base_id:
        return theirs_id
    base = {e.name: e for e in iter_dir(sink, base_id)} if base_id is not None else {}
    ours = {e.name: e for e in iter_dir(sink, ours_id)}
    theirs = {e.name: e for e in iter_dir(sink, theirs_id)}
    merged: list[DirEntry] = []
    for name in ours.keys() | theirs.keys() | base.keys():
        was, mine, other = base.get(name), ours.get(name), theirs.get(name)
        if mine == other or _is_unchanged(other, was):
            picked = mine
        elif _is_unchanged(mine, was) or mine is None:
            picked = other
        elif other is not None and mine.is_dir and other.is_dir:
            common = was.id if was is not None and was.is_dir else None
            picked = mine.pointing_at(merge3(sink, common, mine.id, other.id))
        else:
            picked = mine
        if picked is not None:
            merged.append(picked)
    return build_dir(sink, merged)


def _is_unchanged(entry: DirEntry | None, was: DirEntry | None) -> bool:
    """True if ``entry`` is ``was`` or differs from it only in atime: a read must not win a merge."""
    return entry == was or (entry is not None and was is not None and entry.differs_only_in_atime(was))
