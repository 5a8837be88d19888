"""Changes made by name: mkdir, write, rm, mv and clone, each one commit.

Each function builds a ``history.Change`` from ``tree`` operations and
hands it to ``history.apply_change``, which commits it or re-applies it if
another process moved HEAD first. ``clone`` adds one directory entry that
points at the source's existing node: its cost does not depend on the size
of what is cloned.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from zerofs.content import ContentWriter
from zerofs.dirnodes import dir_get, list_dir
from zerofs.errors import ConflictError, Hint, NotFoundError
from zerofs.history import Change, apply_change
from zerofs.objects import DirEntry, DirNode, Kind, ObjectId
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.tree import ensure_dirs, lookup, move, place, remove, root_entry, try_lookup


@dataclass(frozen=True, slots=True)
class EditResult:
    """The outcome of one change."""

    commit_id: ObjectId | None
    message: str
    path: StorePath
    removed: tuple[StorePath, ...] = ()


def mkdir(
    repo: Repository, path: StorePath, *, parents: bool = False, mode: int = 0o755, uid: int = 0, gid: int = 0
) -> EditResult:
    """Create a directory (with ``parents``, also missing parents; an existing one is fine).

    Raises:
        ConflictError: it exists (without ``parents``) or a parent is a file.
        NotFoundError: the parent is missing (without ``parents``).
    """
    dir_mode = stat.S_IFDIR | (mode & 0o7777)

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        if parents:
            return ensure_dirs(staging, root_id, path, now_ns, dir_mode, uid, gid)
        entry = DirEntry(path.name, Kind.DIR, dir_mode, uid, gid, now_ns, 0, staging.put(DirNode()), (), now_ns, now_ns)
        try:
            return place(staging, root_id, path, entry, now_ns)
        except ConflictError as exc:
            if exc.hint is not Hint.REPLACE:
                raise
            raise ConflictError(exc.message, hint=_mkdir_hint(staging, root_id, path)) from None

    message = f"mkdir {'-p ' if parents else ''}{path.shown()}"
    return _commit(repo, change, message, {"op": "mkdir", "path": str(path), "parents": parents}, path)


def _mkdir_hint(source: Staging, root_id: ObjectId, path: StorePath) -> Hint | None:
    """What mkdir offers for an existing ``path``: to accept a directory; nothing replaces a file."""
    existing = try_lookup(source, root_id, path)
    return Hint.ACCEPT_EXISTING if existing is not None and existing.kind is Kind.DIR else None


def write_file(
    repo: Repository,
    path: StorePath,
    reader: BinaryIO,
    *,
    parents: bool = False,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
) -> EditResult:
    """Store a stream as the file at ``path``, replacing a file or a symlink that is there.

    A symlink is replaced, never followed: its target may be a host path.

    Writes the contents in batched transactions first, then one commit.

    Raises:
        ConflictError: ``path`` is a directory, a FIFO, a socket or a device.
    """
    with repo.batch(index_later=True) as batch:
        sink = Staging(repo, batch)
        file_id, node = ContentWriter(repo, sink).write_stream(reader)
    size_bytes = node.size_bytes

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        existing = try_lookup(staging, root_id, path)
        if existing is not None and existing.kind is Kind.DIR:
            raise ConflictError(f"is a directory: {path.shown()}")
        if existing is not None and existing.kind is Kind.SPECIAL:  # a FIFO or device is not a file to overwrite
            raise ConflictError(f"is a special file: {path.shown()} (remove it first: zerofs rm {path.shown()})")
        # The permission bits of a file written over are kept; its type is always a regular file's.
        kept = existing.mode if existing is not None and existing.kind is Kind.FILE else mode
        file_mode = stat.S_IFREG | (kept & 0o7777)
        entry = DirEntry(path.name, Kind.FILE, file_mode, uid, gid, now_ns, size_bytes, file_id, (), now_ns, now_ns)
        return place(staging, root_id, path, entry, now_ns, parents=parents, replace=True)

    message = f"write {path.shown()} ({size_bytes} bytes)"
    return _commit(repo, change, message, {"op": "write", "path": str(path), "bytes": size_bytes}, path)


GLOB_CHARS = frozenset(b"*?[")


def has_glob(path: StorePath) -> bool:
    """True if a component of ``path`` holds a wildcard (``*``, ``?`` or ``[``)."""
    return any(GLOB_CHARS.intersection(part) for part in path.parts)


def expand_glob(source: Staging, root_id: ObjectId, pattern: StorePath) -> list[StorePath]:
    """Return the store paths matching ``pattern``, sorted; wildcards match within one name.

    As in the shell, a wildcard does not match a leading ``.`` (write it out), and
    ``[*]`` matches a literal ``*``. Expansion reads the store, never the host.
    """
    matches = [StorePath()]
    for part in pattern.parts:
        found: list[StorePath] = []
        for base in matches:
            entry = try_lookup(source, root_id, base)
            if entry is None or entry.kind is not Kind.DIR:
                continue
            if not GLOB_CHARS.intersection(part):
                if dir_get(source, entry.id, part) is not None:
                    found.append(base.child(part))
                continue
            text = os.fsdecode(part)
            for child in list_dir(source, entry.id):
                name = os.fsdecode(child.name)
                if name.startswith(".") and not text.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, text):
                    found.append(base.child(child.name))
        matches = found
    return sorted(matches, key=lambda p: p.parts)


def remove_paths(
    repo: Repository, paths: list[StorePath], *, recursive: bool = False, missing_ok: bool = False
) -> EditResult:
    """Remove every path (wildcards expanded against the store) in one commit.

    Raises:
        NotFoundError: a path or pattern matches nothing (unless ``missing_ok``).
        ConflictError: a non-empty directory without ``recursive``.
        UsageError: the root.
    """
    removed: list[StorePath] = []

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        removed.clear()
        targets: list[StorePath] = []
        for path in paths:
            if has_glob(path):
                matched = expand_glob(staging, root_id, path)
                if not matched and not missing_ok:
                    raise NotFoundError(f"no match in the store for {path.shown()}")
                targets.extend(matched)
            elif missing_ok and try_lookup(staging, root_id, path) is None:
                continue
            else:
                targets.append(path)
        for target in dict.fromkeys(targets):
            # A match inside a directory removed earlier in this command is already gone.
            if try_lookup(staging, root_id, target) is None and any(target.is_within(r) for r in removed):
                continue
            root_id = remove(staging, root_id, target, now_ns, recursive=recursive)
            removed.append(target)
        return root_id

    shown = " ".join(p.shown() for p in paths)
    message = f"rm {'-r ' if recursive else ''}{shown}"
    operation: dict[str, object] = {"op": "rm", "paths": [str(p) for p in paths], "recursive": recursive}
    result = _commit(repo, change, message, operation, paths[0])
    return EditResult(result.commit_id, result.message, result.path, tuple(removed))


def remove_path(repo: Repository, path: StorePath, *, recursive: bool = False, missing_ok: bool = False) -> EditResult:
    """Remove one path (see ``remove_paths``)."""
    return remove_paths(repo, [path], recursive=recursive, missing_ok=missing_ok)


def move_path(repo: Repository, source: StorePath, target: StorePath, *, force: bool = False) -> EditResult:
    """Move or rename ``source`` to ``target`` (into it, if it is a directory).

    Raises:
        NotFoundError: ``source`` or the target's parent is missing.
        ConflictError: the target exists and cannot be replaced.
    """
    final: list[StorePath] = [target]

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        new_root, final[0] = move(staging, root_id, source, target, now_ns, force=force)
        return new_root

    outcome_message = f"mv {source.shown()} -> {target.shown()}"
    result = _commit(repo, change, outcome_message, {"op": "mv", "source": str(source), "target": str(target)}, target)
    return EditResult(result.commit_id, result.message, final[0])


def clone(
    repo: Repository,
    source: StorePath,
    target: StorePath,
    *,
    parents: bool = False,
    force: bool = False,
    source_commit_id: ObjectId | None = None,
    source_rev: str | None = None,
) -> EditResult:
    """Make ``target`` a new entry pointing at ``source``'s node: an O(1) snapshot.

    Cloning a directory into itself (``/`` into ``/snapshots/x``) is allowed:
    the clone is the tree as it was before the clone, so nothing recurses.
    With ``source_commit_id``, ``source`` is read in that commit (a restore
    from history, still one commit); ``source_rev`` is how the user named it,
    recorded in the message and the operation.

    Raises:
        NotFoundError: ``source`` is missing, or the target's parent (without ``parents``).
        ConflictError: ``target`` exists (without ``force``).
    """
    operation: dict[str, object] = {"op": "clone", "source": str(source), "target": str(target)}
    fixed: DirEntry | None = None
    if source_commit_id is not None:
        old_commit = repo.resolve_commit(source_commit_id)
        old_root = old_commit.root_id
        fixed = (
            root_entry(old_root, old_commit.time_ns)
            if source.is_root
            else lookup(repo, old_root, source, rev=source_rev or source_commit_id.hex()[:12])
        )
        operation.update(source_rev=source_rev or source_commit_id.hex(), source_commit=source_commit_id.hex())

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        if fixed is not None:
            entry = fixed
        else:
            entry = root_entry(root_id, now_ns) if source.is_root else lookup(staging, root_id, source)
        return place(staging, root_id, target, entry, now_ns, parents=parents, replace=force)

    shown = source.shown()
    if source_commit_id is not None:
        shown = f"{source_rev or source_commit_id.hex()[:12]}:{shown}"
    message = f"clone {shown} -> {target.shown()}"
    return _commit(repo, change, message, operation, target)


def _commit(
    repo: Repository, change: Change, message: str, operation: dict[str, object], path: StorePath
) -> EditResult:
    outcome = apply_change(repo, change, message=message, operation=operation)
    return EditResult(outcome.commit_id, message, path)
