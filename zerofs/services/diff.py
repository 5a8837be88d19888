"""diff: what changed between two trees, reading only the subtrees that differ.

Each side is a revision (its whole tree), a store path in HEAD (``/x``) or a
path in a revision (``REV:/x``). Two nodes with the same id are equal all the
way down, so the walk never opens a directory (or a shard of a large
directory) whose id is the same on both sides: its cost grows with the size
of the change, not of the tree. Reading only; nothing is written.

What is reported, as git diff's name-status output does:

- ``A``/``D`` for an entry only on one side. An added or deleted directory
  is reported with everything below it.
- ``M`` for a file or symlink whose contents, mode, owner, mtime or extended
  attributes differ (a mode- or mtime-only change is an ``M``), for a
  device whose number changed (its node's id changes) and for a
  directory whose mode, owner or extended attributes differ. Attributes in
  the ``zerofs.`` namespace (bookkeeping such as a name's creation time)
  are not compared. A directory
  whose contents changed is not itself reported (its mtime follows its
  contents); its changed entries are.
- A change of type (a file that became a directory, a FIFO that became a
  socket or a device) is a ``D`` of the old entry followed by an ``A`` of
  the new one.

Paths are given in the second side's namespace (``diff /snapshots/monday
/data`` reports ``/data/...``). Comparing a file with a directory is an
error; two files (or symlinks) compare as one entry.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

from zerofs.dirnodes import iter_dir
from zerofs.errors import ConflictError, UsageError
from zerofs.history import is_revision, resolve_revision
from zerofs.objects import DirEntry, DirNode, Kind, ObjectId
from zerofs.paths import RevPath, StorePath, escaped
from zerofs.repo import Repository
from zerofs.tree import lookup, root_entry, walk

INTERNAL_XATTR_PREFIX: Final = b"zerofs."
ADDED: Final = "A"
MODIFIED: Final = "M"
DELETED: Final = "D"


class Side(NamedTuple):
    """One side of a diff as resolved: what the user wrote, the commit and the entry."""

    spec: str
    commit_id: ObjectId
    path: StorePath
    entry: DirEntry


class Change(NamedTuple):
    """One changed path: its status and the entry on each side (None where absent)."""

    status: str
    path: StorePath
    old: DirEntry | None
    new: DirEntry | None

    @property
    def kind(self) -> Kind:
        """The new entry's kind, or the old one's for a deletion."""
        entry = self.new if self.new is not None else self.old
        assert entry is not None  # a change has at least one side
        return entry.kind

    @property
    def old_size(self) -> int | None:
        """Bytes on the old side (file size, symlink target length, 0 for a directory)."""
        return None if self.old is None else self.old.size_bytes

    @property
    def new_size(self) -> int | None:
        """Bytes on the new side."""
        return None if self.new is None else self.new.size_bytes


class DiffResult(NamedTuple):
    """The two sides and the changes from the first to the second, sorted by path."""

    a: Side
    b: Side
    changes: tuple[Change, ...]


def parse_operand(text: str) -> RevPath:
    """Parse one side: ``/path`` (HEAD), ``REV:/path``, or a bare revision (its root).

    Raises:
        UsageError / InvalidNameError: a malformed path, or a word that is neither a revision nor a path.
    """
    if text.startswith("/") or ":" in text:
        return RevPath.parse(text)
    if not is_revision(text) and text[:4].upper() != "HEAD":
        raise UsageError(
            f"{text!r} is neither a revision (HEAD~1, a commit id) nor a store path (did you mean /{text}?)"
        )
    return RevPath(text, StorePath())


def _shown(spec: str) -> str:
    """A side as the user named it, for a message: on one line (``StorePath.shown``)."""
    return escaped(os.fsencode(spec))


def resolve_side(repo: Repository, operand: RevPath) -> Side:
    """Find the commit and the entry one side names.

    Raises:
        UsageError / NotFoundError: a bad or unknown revision, or a missing path.
    """
    commit_id = resolve_revision(repo, operand.rev)
    commit = repo.resolve_commit(commit_id)
    path = operand.path
    entry = (
        root_entry(commit.root_id, commit.time_ns)
        if path.is_root
        else lookup(repo, commit.root_id, path, rev=operand.rev)
    )
    label = operand.rev if operand.path.is_root and operand.rev is not None else str(operand)
    return Side(label, commit_id, path, entry)


def diff(repo: Repository, a: RevPath, b: RevPath) -> DiffResult:
    """Compare ``a`` with ``b``: what would turn the first into the second.

    Raises:
        ConflictError: one side is a directory and the other is not.
        UsageError / NotFoundError: a bad or unknown revision, or a missing path.
    """
    old, new = resolve_side(repo, a), resolve_side(repo, b)
    if old.entry.is_dir != new.entry.is_dir:
        which = (old, new) if old.entry.is_dir else (new, old)
        raise ConflictError(
            f"cannot diff a directory with a non-directory: {_shown(which[0].spec)} is a directory, "
            f"{_shown(which[1].spec)} is not"
        )
    changes: list[Change] = []
    if old.entry.is_dir:
        changes.extend(_diff_dirs(repo, old.entry.id, new.entry.id, new.path))
    else:
        changes.extend(_diff_entries(repo, old.entry.renamed(new.entry.name), new.entry, new.path))
    changes.sort(key=lambda c: (c.path.parts, c.status != DELETED))
    return DiffResult(old, new, tuple(changes))


def _diff_entries(repo: Repository, old: DirEntry | None, new: DirEntry | None, path: StorePath) -> Iterator[Change]:
    """Yield the changes between two entries at ``path`` (either may be absent)."""
    if old is None and new is None:
        return
    if old is None or new is None or _is_retyped(old, new):
        if old is not None:
            yield from _all_below(repo, DELETED, old, path)
        if new is not None:
            yield from _all_below(repo, ADDED, new, path)
        return
    if old.kind is not Kind.DIR:
        if _metadata(old) != _metadata(new) or old.id != new.id:
            yield Change(MODIFIED, path, old, new)
        return
    if _metadata(old)[:-1] != _metadata(new)[:-1]:
        yield Change(MODIFIED, path, old, new)
    yield from _diff_dirs(repo, old.id, new.id, path)


def _is_retyped(old: DirEntry, new: DirEntry) -> bool:
    """True when the two entries are of different types: another kind, or another kind of special file."""
    if old.kind is not new.kind:
        return True
    return old.kind is Kind.SPECIAL and stat.S_IFMT(old.mode) != stat.S_IFMT(new.mode)


def _metadata(entry: DirEntry) -> tuple[object, ...]:
    """What a user sees of an entry besides its contents; mtime last (ignored for directories).

    Attributes zerofs keeps for itself (``zerofs.*``, such as when a name was
    created) are not the user's and never make a change.
    """
    xattrs = tuple(x for x in entry.xattrs if not x[0].startswith(INTERNAL_XATTR_PREFIX))
    return entry.mode, entry.uid, entry.gid, xattrs, entry.mtime_ns


def _all_below(repo: Repository, status: str, entry: DirEntry, path: StorePath) -> Iterator[Change]:
    """Yield ``entry`` and, for a directory, everything below it, all with ``status``."""
    yield _one_sided(status, path, entry)
    if entry.kind is Kind.DIR:
        for child_path, child in walk(repo, entry.id, path):
            yield _one_sided(status, child_path, child)


def _one_sided(status: str, path: StorePath, entry: DirEntry) -> Change:
    return Change(status, path, None, entry) if status == ADDED else Change(status, path, entry, None)


def _diff_dirs(repo: Repository, old_id: ObjectId, new_id: ObjectId, path: StorePath) -> Iterator[Change]:
    """Yield the changes between two directories, skipping everything equal by id."""
    for name, old, new in _entry_pairs(repo, old_id, new_id):
        yield from _diff_entries(repo, old, new, StorePath((*path.parts, name)))


def _entry_pairs(
    repo: Repository, old_id: ObjectId, new_id: ObjectId
) -> Iterator[tuple[bytes, DirEntry | None, DirEntry | None]]:
    """Yield (name, old, new) for every name whose entry differs between two directory nodes.

    Sharded on both sides at the same depth: compare shard by shard and open
    only the shards whose ids differ (a shard holds the same hash range of
    names on both sides). Otherwise merge the two sorted entry lists.
    """
    if old_id == new_id:
        return
    old = repo.get_typed(old_id, DirNode)
    new = repo.get_typed(new_id, DirNode)
    if old.shards and new.shards and old.depth == new.depth:
        old_shards, new_shards = dict(old.shards), dict(new.shards)
        for index in sorted(old_shards.keys() | new_shards.keys()):
            old_shard, new_shard = old_shards.get(index), new_shards.get(index)
            if old_shard is not None and new_shard is not None:
                yield from _entry_pairs(repo, old_shard, new_shard)
            elif old_shard is not None:
                yield from ((e.name, e, None) for e in iter_dir(repo, old_shard))
            elif new_shard is not None:
                yield from ((e.name, None, e) for e in iter_dir(repo, new_shard))
        return
    old_entries = {e.name: e for e in _entries(repo, old, old_id)}
    new_entries = {e.name: e for e in _entries(repo, new, new_id)}
    for name in sorted(old_entries.keys() | new_entries.keys()):
        before, after = old_entries.get(name), new_entries.get(name)
        if before != after:
            yield name, before, after


def _entries(repo: Repository, node: DirNode, node_id: ObjectId) -> Iterable[DirEntry]:
    """A directory node's entries, without reading a flat node a second time."""
    return iter_dir(repo, node_id) if node.shards else node.entries
