"""Pure tree operations on paths by path copying: (root, operation) -> new root.

Nothing here mutates a node or moves a ref: an operation reads nodes through
a ``NodeSink`` and stages the new ones it builds, returning the new root id.
Only the directories on the path from the root to the change are rebuilt
(each through ``dirnodes``), so a clone (one new entry pointing at an
existing node) costs the same for ten files or ten million.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from typing import Final

from zerofs.dirnodes import NodeSink, NodeSource, count_dir, dir_get, dir_put, dir_remove, iter_dir, list_dir
from zerofs.errors import ConflictError, Hint, NotFoundError, UsageError
from zerofs.objects import (
    DirEntry,
    DirNode,
    Kind,
    ObjectId,
)
from zerofs.paths import StorePath

DIR_MODE: Final = stat.S_IFDIR | 0o755


def root_entry(root_id: ObjectId, mtime_ns: int = 0) -> DirEntry:
    """Return a synthetic entry for the root directory."""
    return DirEntry(b"", Kind.DIR, DIR_MODE, 0, 0, mtime_ns, 0, root_id, atime_ns=mtime_ns, ctime_ns=mtime_ns)


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
