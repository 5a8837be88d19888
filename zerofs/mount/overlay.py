"""The mount's view of the tree: inodes for path instances over immutable nodes.

An inode stands for one place in the tree, not for a node: after a clone the
same directory node sits under two names, and each name gets its own inode
(the design's rule; writing under one must not change the other). Inode
numbers are handed out on first lookup and kept for the life of the mount,
so they stay stable while mounted.

Each inode keeps its ``DirEntry`` (name, kind, mode, owner, times, size and
the id of the node it pointed at when last committed). Every change of
contents or metadata sets the entry's ctime, as POSIX does; a read moves the
atime only when ``atime_is_due`` says so (relatime by default), and marks the
entry like any change, so it is stored by the next commit with the rest
(never by a commit of its own). A directory counts its subdirectories (for
its link count) on first demand and keeps the count up to date as names come
and go, so ``stat`` of a directory reads its stored entries once, not on
every call. A directory remembers
which of its names changed (``changed``: the entry must be put again, from
the child inode) and which were removed from its stored node (``removed``);
a change marks every ancestor the same way, up to the root. Committing is
then path copying from the stored nodes: ``dir_remove`` and ``dir_put`` of
the changed names only, so its cost follows what changed, and renaming a
directory of 100,000 files touches two directory entries.

Commit in three steps, so the file system keeps answering, and changing,
while data is stored: ``snapshot`` (on the event loop) freezes what changed
into a plan; ``store_plan`` (on a worker thread) writes the file contents and
directory nodes, reading the plan only; ``committed`` (on the event loop
again) records the new ids. The tree keeps changing meanwhile (#12): each
mark carries the *epoch* it was made in, a snapshot starts a new epoch, and
``committed`` clears only the marks of the epochs it stored, so a name
changed while the commit stored stays marked for the next one (a mark made
again in the new epoch replaces the old one, up to the root). The plan holds
its own copies of the entries, of the small pending nodes and of the
contents of files whose written data is in memory (``FileData.frozen``);
the one thing it shares with the live tree is the contents of files written
past that (``storing``): a write or truncation of one of those waits for the
commit's end, and such a file's contents are not closed before it. A file
written after its copy was taken stays dirty for the next commit.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

from zerofs.content import ContentWriter
from zerofs.dirnodes import build_dir, dir_get, dir_put, dir_remove, iter_dir
from zerofs.mount.filedata import FileData
from zerofs.objects import (
    LINK_ID_BYTES,
    DirEntry,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    SpecialNode,
    SymlinkNode,
)
from zerofs.repo import Record, Repository, Staging
from zerofs.tree import root_entry

ROOT_INO: Final = 1
NAME_MAX: Final = 255
RELATIME_SECONDS: Final = 24 * 3600
"""relatime moves an atime at least this old even when it is newer than mtime and ctime (as Linux does)."""
ATIME_POLICIES: Final = ("relatime", "strictatime", "noatime")
INCREMENTAL_MAX: Final = 16
"""Above this many changed names, a directory is rebuilt from its listing instead of put name by name."""
EMPTY_FILE: Final = FileNode(0, 0, ())
EMPTY_DIR: Final = DirNode()
_EMPTY_NODES: Final = frozenset({(FileNode, EMPTY_FILE), (DirNode, EMPTY_DIR)})


class FsError(Exception):
    """A file system operation failed with ``errno``."""

    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode.get(code, str(code)))
        self.errno = code


class Inode:
    """One place in the mounted tree."""

    __slots__ = (
        "aliases",
        "changed",
        "complete",
        "data",
        "entry",
        "ino",
        "kids",
        "lookups",
        "name",
        "opens",
        "parent",
        "removed",
        "subdirs",
    )

    def __init__(self, ino: int, parent: Inode | None, entry: DirEntry) -> None:
        self.ino = ino
        self.parent = parent
        self.name = entry.name
        self.entry = entry
        self.kids: dict[bytes, Inode] = {}
        self.complete = False
        """Every name of the directory is in ``kids`` (no need to ask the stored node)."""
        self.changed: dict[bytes, int] = {}
        """Names whose entry must be put again (from the child inode), each with the epoch of its mark."""
        self.removed: dict[bytes, int] = {}
        """Names to remove from the stored node, each with the epoch of its mark."""
        self.data: FileData | None = None
        self.opens = 0
        self.lookups = 0
        self.subdirs: int | None = None
        """How many subdirectories a directory has now (its link count is 2 more), None until asked."""
        self.aliases: list[tuple[Inode, bytes]] = []
        """The other places (directory, name) of a file with hard links; ``parent`` and ``name`` are its first."""

    @property
    def places(self) -> list[tuple[Inode, bytes]]:
        """Every (directory, name) this inode stands at: none once removed, several for hard links."""
        if self.parent is None:
            return []
        return [(self.parent, self.name), *self.aliases]

    def entry_as(self, name: bytes) -> DirEntry:
        """The inode's entry under one of its names."""
        return self.entry if name == self.entry.name else self.entry.renamed(name)

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.entry.kind is Kind.DIR

    @property
    def size(self) -> int:
        """The current size in bytes."""
        return self.data.size if self.data is not None else self.entry.size_bytes

    @property
    def dirty(self) -> bool:
        """True when the node this inode stands for is not the stored one."""
        return bool(self.changed or self.removed) or (self.data is not None and self.data.dirty)


class DirPlan(NamedTuple):
    """A changed directory, frozen for a commit."""

    inode: Inode
    entry: DirEntry
    base_id: ObjectId
    removed: tuple[bytes, ...]
    changed: tuple[DirEntry | DirPlan | FilePlan, ...]


class FilePlan(NamedTuple):
    """A file whose contents changed, frozen for a commit."""

    inode: Inode
    entry: DirEntry
    data: FileData


Plan = DirPlan | FilePlan
Invalidate = Callable[[int, bytes | None], None]
"""(inode, name): forget a directory entry (name) or an inode's cache (name None)."""
LinkKey = tuple[object, ...]
Path = tuple[bytes, ...]


class Overlay:
    """The inode table of a mount, over the tree of one root."""

    def __init__(self, repo: Repository, root_id: ObjectId, spill_dir: str, now_ns: int) -> None:
        """View the tree of ``root_id``; spill written data into ``spill_dir``."""
        self.repo = repo
        self.spill_dir = spill_dir
        self.root = Inode(ROOT_INO, None, root_entry(root_id, now_ns))
        self.inodes: dict[int, Inode] = {ROOT_INO: self.root}
        self._next_ino = ROOT_INO + 1
        self.pending: dict[ObjectId, tuple[Record, Node]] = {}
        """Small nodes made by the mount (empty files and directories, symlinks, special files) not yet written."""
        self.counts: dict[str, int] = {}
        self.first_change = ""
        self.only_accessed: set[int] = set()
        """Inodes marked changed by a read alone since the last commit (a write to one is still counted)."""
        self.epoch = 0
        """Marks made now carry this; a snapshot freezes the marks of this epoch and the ones before it."""
        self.storing: set[int] = set()
        """Inodes whose contents the commit in flight stores (reads on its thread): not to be written meanwhile."""
        self._planned: _Planned | None = None
        self._empty_encodings: dict[tuple[type, Node], tuple[ObjectId, Record]] = {}
        """Every new file and directory starts as one of two nodes: each is encoded once per mount (#12)."""
        self.groups: dict[tuple[int, LinkKey], Inode] = {}
        """Hard-link groups loaded from the store, by scope inode and ``DirEntry.link_key``: their one inode."""
        self._unloaded_links: dict[int, dict[LinkKey, list[Path]]] = {}
        """Per scope inode: where its stored linked names not yet loaded are (one walk; dropped when names change)."""

    # -- lookups ----------------------------------------------------------

    def get(self, ino: int) -> Inode:
        """Return the inode numbered ``ino``.

        Raises:
            FsError: ESTALE, unknown (forgotten) inode.
        """
        inode = self.inodes.get(ino)
        if inode is None:
            raise FsError(errno.ESTALE)
        return inode

    def _new(self, parent: Inode, entry: DirEntry) -> Inode:
        """Load a stored name: a new inode, or the inode its hard-link group already has."""
        if entry.is_linked:
            return self._new_linked(parent, entry)
        return self._make(parent, entry)

    def _make(self, parent: Inode, entry: DirEntry) -> Inode:
        inode = Inode(self._next_ino, parent, entry)
        self._next_ino += 1
        self.inodes[inode.ino] = inode
        parent.kids[entry.name] = inode
        return inode

    def _new_linked(self, parent: Inode, entry: DirEntry) -> Inode:
        """Load a name of a stored hard-link group, with every other name of the group in its scope.

        The first name loaded makes the inode; the others are found by one
        walk of the scope (kept until names change) and loaded at once, so
        the link count is right from the first stat and a change reaches
        every name.
        """
        scope = self.scope_of(parent)
        key = (scope.ino, entry.link_key())
        inode = self.groups.get(key)
        if inode is not None and inode.parent is not None:
            inode.aliases.append((parent, entry.name))
            parent.kids[entry.name] = inode
            return inode
        inode = self._make(parent, entry)
        self.groups[key] = inode
        for path in self._unloaded_group_names(scope).pop(key[1], ()):
            self._load_path(scope, path)
        return inode

    def _unloaded_group_names(self, scope: Inode) -> dict[LinkKey, list[Path]]:
        found = self._unloaded_links.get(scope.ino)
        if found is None:
            found = {}
            for path, key, loaded in self._linked_names(scope):
                if not loaded:
                    assert isinstance(key, tuple)
                    found.setdefault(key, []).append(path)
            self._unloaded_links[scope.ino] = found
        return found

    def _load_path(self, scope: Inode, path: Path) -> None:
        node: Inode | None = scope
        for name in path:
            if node is None or not node.is_dir:
                return
            node = self.lookup(node, name)

    def _linked_names(self, scope: Inode) -> Iterator[tuple[Path, object, bool]]:
        """Every name in ``scope`` that may have other names: (path from the scope, group key, loaded?).

        A loaded name's key is its inode number; a stored one's its
        ``DirEntry.link_key``. Nested scopes are not entered.
        """
        stack: list[tuple[Path, Inode | DirEntry]] = [((), scope)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, Inode):
                for name, kid in node.kids.items():
                    if kid.is_dir and not kid.entry.is_link_scope:
                        stack.append(((*path, name), kid))
                    elif not kid.is_dir and (kid.aliases or kid.entry.is_linked):
                        yield (*path, name), kid.ino, True
                if node.complete:
                    continue
                hidden = node.kids.keys() | node.removed
                entries: Iterator[DirEntry] = (e for e in iter_dir(self.repo, node.entry.id) if e.name not in hidden)
            else:
                entries = iter_dir(self.repo, node.id)
            for entry in entries:
                if entry.is_linked:
                    yield (*path, entry.name), entry.link_key(), False
                elif entry.is_dir and not entry.is_link_scope:
                    stack.append(((*path, entry.name), entry))

    def scope_of(self, directory: Inode) -> Inode:
        """The hard-link scope a directory is in (``objects.LINK_XATTR``): itself or an ancestor, else the root."""
        while directory.parent is not None and not directory.entry.is_link_scope:
            directory = directory.parent
        return directory

    def lookup(self, parent: Inode, name: bytes) -> Inode | None:
        """Return the child called ``name``, or None."""
        if not parent.is_dir:
            raise FsError(errno.ENOTDIR)
        kid = parent.kids.get(name)
        if kid is not None or parent.complete or name in parent.removed:
            return kid
        entry = dir_get(self.repo, parent.entry.id, name)
        return None if entry is None else self._new(parent, entry)

    def children(self, parent: Inode) -> list[tuple[bytes, Inode]]:
        """Return every (name, child) of a directory, sorted by name (a file with hard links has several names)."""
        self._load(parent)
        return sorted(parent.kids.items())

    def _load(self, parent: Inode) -> None:
        if parent.complete:
            return
        for entry in iter_dir(self.repo, parent.entry.id):
            if entry.name not in parent.kids and entry.name not in parent.removed:
                self._new(parent, entry)
        parent.complete = True

    def subdir_count(self, directory: Inode) -> int:
        """Return how many subdirectories ``directory`` has, counting them on the first call only.

        An unloaded directory's stored entries are read (no inode is made for
        them); later changes keep the count up to date.
        """
        if directory.subdirs is None:
            count = sum(kid.is_dir for kid in directory.kids.values())
            if not directory.complete:
                hidden = directory.kids.keys() | directory.removed
                count += sum(
                    e.kind is Kind.DIR and e.name not in hidden for e in iter_dir(self.repo, directory.entry.id)
                )
            directory.subdirs = count
        return directory.subdirs

    @staticmethod
    def _count_subdir(directory: Inode, kid: Inode, delta: int) -> None:
        if kid.is_dir and directory.subdirs is not None:
            directory.subdirs += delta

    def path_of(self, inode: Inode) -> str:
        """Return the store path of an inode (for commit messages)."""
        parts: list[str] = []
        node: Inode | None = inode
        while node is not None and node.parent is not None:
            parts.append(node.name.decode("utf-8", "surrogateescape"))
            node = node.parent
        return "/" + "/".join(reversed(parts))

    # -- changes ------------------------------------------------------------

    def dir_changed(self, directory: Inode, now_ns: int) -> None:
        """A name in ``directory`` came or went: set its mtime and ctime, as POSIX does."""
        directory.entry = directory.entry._replace(mtime_ns=now_ns, ctime_ns=now_ns)
        self._unloaded_links.clear()

    def _note(self, inode: Inode, what: str) -> None:
        """Record that ``inode``'s entry (or what it points at) changed, in every ancestor."""
        self._count(inode, what)
        self.touch(inode)

    def _count(self, inode: Inode, what: str) -> None:
        """Count a change for the commit message (the first one is named in it)."""
        if not self.counts:
            self.first_change = f"{what} {self.path_of(inode)}"
        self.counts[what] = self.counts.get(what, 0) + 1

    def touch(self, inode: Inode) -> None:
        """Mark ``inode``'s entry as changed in its parent (in every parent, for hard links), up to the root.

        A name marked in this epoch has every ancestor marked in it too, so
        the walk stops there; a mark of an earlier epoch (frozen in a commit
        in flight) is made again.
        """
        if inode.parent is not None:
            _touch_at(inode.parent, inode.name, self.epoch)
        for parent, name in inode.aliases:
            _touch_at(parent, name, self.epoch)

    def _is_marked(self, inode: Inode) -> bool:
        """True if ``inode``'s entry is marked changed in this epoch (so its next change needs no new mark)."""
        return inode.parent is not None and inode.parent.changed.get(inode.name) == self.epoch

    def set_entry(self, inode: Inode, entry: DirEntry, now_ns: int, what: str = "changed") -> None:
        """Change an inode's metadata (which sets its ctime to ``now_ns``), under every name it has."""
        inode.entry = entry.changed_at(now_ns)
        self._note(inode, what)

    def accessed(self, inode: Inode, now_ns: int) -> None:
        """Set an inode's atime (it was read), to be stored by the next commit."""
        inode.entry = inode.entry._replace(atime_ns=now_ns)
        if inode.parent is not None and not self._is_marked(inode):
            self.only_accessed.add(inode.ino)
            self._note(inode, "accessed")

    def file_data(self, inode: Inode) -> FileData:
        """Return the inode's contents object, made on first use."""
        if inode.data is None:
            inode.data = FileData(self.repo, inode.entry.id, inode.entry.size_bytes, self.spill_dir)
        return inode.data

    def wrote(self, inode: Inode, now_ns: int) -> None:
        """Record a change of a file's contents (a write or a truncation), under every name it has."""
        first = not self._is_marked(inode) or inode.ino in self.only_accessed
        self.only_accessed.discard(inode.ino)
        inode.entry = inode.entry._replace(mtime_ns=now_ns, ctime_ns=now_ns, size_bytes=inode.size)
        if first:
            self._note(inode, "wrote")

    def check_name(self, name: bytes) -> None:
        """Raise FsError for a name the store cannot hold."""
        if len(name) > NAME_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise FsError(errno.EINVAL)

    def create(self, parent: Inode, entry: DirEntry, node: FileNode | DirNode | SymlinkNode | SpecialNode) -> Inode:
        """Add a new name holding ``node`` (a new empty file or directory, a symlink or a special file)."""
        self.check_name(entry.name)
        if self.lookup(parent, entry.name) is not None:
            raise FsError(errno.EEXIST)
        node_id, record = self._encode(node)
        self.pending[node_id] = (record, node)
        inode = self._new(parent, entry._replace(id=node_id))
        if isinstance(node, DirNode):
            inode.complete = True
            inode.subdirs = 0
        elif node is EMPTY_FILE:
            inode.data = FileData(self.repo, None, 0, self.spill_dir)  # new and empty: nothing stored to read
        self._count_subdir(parent, inode, 1)
        self.dir_changed(parent, entry.mtime_ns)
        self._note(inode, "created")
        return inode

    def _encode(self, node: FileNode | DirNode | SymlinkNode | SpecialNode) -> tuple[ObjectId, Record]:
        key = (type(node), node)
        if key not in _EMPTY_NODES:
            return self.repo.encode_node(node)
        encoded = self._empty_encodings.get(key)
        if encoded is None:
            encoded = self._empty_encodings[key] = self.repo.encode_node(node)
        return encoded

    def link(self, inode: Inode, parent: Inode, name: bytes, now_ns: int) -> None:
        """Give a file another name (a hard link), in the same scope (else EXDEV, as btrfs across subvolumes).

        A file linked for the first time gets a new link id; a name that
        starts a scope of its own (a clone or write target) gives that up,
        since such a name is never linked (``objects.LINK_XATTR``).
        """
        self.check_name(name)
        if inode.is_dir:
            raise FsError(errno.EPERM)
        if inode.parent is None:
            raise FsError(errno.ENOENT)
        if self.lookup(parent, name) is not None:
            raise FsError(errno.EEXIST)
        if self.scope_of(parent) is not self.scope_of(inode.parent):
            raise FsError(errno.EXDEV)
        entry = inode.entry
        if not entry.is_linked:
            entry = entry.without_created().with_link(os.urandom(LINK_ID_BYTES))
        inode.entry = entry.changed_at(now_ns)
        inode.aliases.append((parent, name))
        parent.kids[name] = inode
        self.dir_changed(parent, now_ns)
        self._note(inode, "linked")

    def _detach(self, parent: Inode, name: bytes) -> Inode:
        """Take a name out of its directory for good; the inode lives on while open, known or linked."""
        kid = parent.kids[name]
        self._detach_keep(parent, name)
        kid.entry = kid.entry.changed_at(time.time_ns())  # its link count fell
        if kid.aliases:
            _drop_place(kid, parent, name)
            self.touch(kid)  # the other names store the new ctime
        else:
            kid.parent = None
            self.release_if_unused(kid)
        return kid

    def release_if_unused(self, inode: Inode) -> None:
        """Forget a detached inode nothing refers to any more."""
        if inode.parent is None and inode.ino != ROOT_INO and inode.opens == 0 and inode.lookups <= 0:
            self.inodes.pop(inode.ino, None)
            if inode.data is not None and inode.ino not in self.storing:  # else closed once stored
                inode.data.close()
                inode.data = None

    def unlink(self, parent: Inode, name: bytes) -> Inode:
        """Remove a non-directory name; an open file stays readable through its handles."""
        kid = self.lookup(parent, name)
        if kid is None:
            raise FsError(errno.ENOENT)
        if kid.is_dir:
            raise FsError(errno.EISDIR)
        self._count(kid, "removed")
        return self._detach(parent, name)

    def rmdir(self, parent: Inode, name: bytes) -> Inode:
        """Remove an empty directory."""
        kid = self.lookup(parent, name)
        if kid is None:
            raise FsError(errno.ENOENT)
        if not kid.is_dir:
            raise FsError(errno.ENOTDIR)
        if self.children(kid):
            raise FsError(errno.ENOTEMPTY)
        self._count(kid, "removed")
        return self._detach(parent, name)

    def rename(self, old_parent: Inode, old: bytes, new_parent: Inode, new: bytes, *, noreplace: bool) -> None:
        """Move a name (and everything under it) in O(1) of the tree below it."""
        self.check_name(new)
        kid = self.lookup(old_parent, old)
        if kid is None:
            raise FsError(errno.ENOENT)
        target = self.lookup(new_parent, new)
        if target is kid:
            return
        self._check_scopes(kid, old_parent, new_parent)
        if target is not None:
            if noreplace:
                raise FsError(errno.EEXIST)
            if kid.is_dir and not target.is_dir:
                raise FsError(errno.ENOTDIR)
            if target.is_dir and not kid.is_dir:
                raise FsError(errno.EISDIR)
            if target.is_dir and self.children(target):
                raise FsError(errno.ENOTEMPTY)
            self._detach(new_parent, new)
        self._detach_keep(old_parent, old)
        now_ns = time.time_ns()
        _move_place(kid, old_parent, old, new_parent, new)
        kid.entry = kid.entry.changed_at(now_ns)  # Linux sets a renamed inode's ctime
        new_parent.kids[new] = kid
        self._count_subdir(new_parent, kid, 1)
        self.dir_changed(new_parent, now_ns)
        self._note(kid, "renamed")

    def exchange(self, a_parent: Inode, a: bytes, b_parent: Inode, b: bytes) -> None:
        """Swap two names atomically (RENAME_EXCHANGE)."""
        first, second = self.lookup(a_parent, a), self.lookup(b_parent, b)
        if first is None or second is None:
            raise FsError(errno.ENOENT)
        if first is second:
            return
        self._check_scopes(first, a_parent, b_parent)
        self._check_scopes(second, b_parent, a_parent)
        if first.is_dir != second.is_dir:
            a_parent.subdirs = b_parent.subdirs = None  # counted again when next asked
        now_ns = time.time_ns()
        _move_place(first, a_parent, a, b_parent, b)
        _move_place(second, b_parent, b, a_parent, a)
        for parent, name, kid in ((a_parent, a, second), (b_parent, b, first)):
            kid.entry = kid.entry.changed_at(now_ns)
            parent.kids[name] = kid
            self.dir_changed(parent, now_ns)
        self._note(first, "renamed")
        self._note(second, "renamed")

    def _check_scopes(self, kid: Inode, old_parent: Inode, new_parent: Inode) -> None:
        """Refuse (EXDEV) a move into another scope that would split a hard-link group.

        A file with several names cannot leave its scope; a directory can
        unless it holds some names of a group and not the others, which costs
        a walk of the scope it leaves (only for such moves).
        """
        if old_parent is new_parent or (kid.is_dir and kid.entry.is_link_scope):
            return
        old_scope = self.scope_of(old_parent)
        if old_scope is self.scope_of(new_parent):
            return
        if not kid.is_dir:
            if kid.aliases:
                raise FsError(errno.EXDEV)
            return
        prefix: list[bytes] = []
        node = kid
        while node is not old_scope and node.parent is not None:
            prefix.append(node.name)
            node = node.parent
        inside = tuple(reversed(prefix))
        seen: dict[object, set[bool]] = {}
        for path, key, _ in self._linked_names(old_scope):
            seen.setdefault(key, set()).add(path[: len(inside)] == inside)
        if any(len(where) == 2 for where in seen.values()):
            raise FsError(errno.EXDEV)

    def _detach_keep(self, parent: Inode, name: bytes) -> None:
        """Take a name out of its directory, keeping the inode alive (it is moving)."""
        self.dir_changed(parent, time.time_ns())
        self._count_subdir(parent, parent.kids[name], -1)
        del parent.kids[name]
        parent.changed.pop(name, None)
        parent.removed[name] = self.epoch
        self.touch(parent)

    # -- commit ---------------------------------------------------------------

    def snapshot(self) -> DirPlan | None:
        """Freeze what changed since the last commit and start a new epoch; None when nothing changed.

        The counts for the commit message start again too (``summary`` first).
        """
        if not self.root.dirty:
            return None
        plan = self._plan(self.root, self.root.name)
        assert isinstance(plan, DirPlan)
        self._planned = _Planned(self.epoch, dict(self.pending), self.counts, self.first_change)
        self.storing = {
            file_plan.inode.ino for file_plan in _file_plans(plan) if file_plan.data is file_plan.inode.data
        }
        self.epoch += 1
        self.counts, self.first_change = {}, ""
        self.only_accessed.clear()
        return plan

    def _plan(self, inode: Inode, name: bytes) -> DirEntry | Plan:
        """The plan for ``inode`` under ``name`` (a file with hard links is planned under each of its names)."""
        if inode.is_dir:
            if not inode.dirty:
                return inode.entry
            changed = tuple(self._plan(inode.kids[kid], kid) for kid in sorted(inode.changed))
            return DirPlan(inode, inode.entry, inode.entry.id, tuple(sorted(inode.removed)), changed)
        if inode.data is not None and inode.data.dirty:
            return FilePlan(inode, inode.entry_as(name), inode.data.frozen() or inode.data)
        return inode.entry_as(name)

    def store_plan(self, plan: DirPlan, sink: Staging, writer: ContentWriter) -> dict[int, DirEntry]:
        """Write the plan's contents and directories; return the new entry of every planned inode.

        Runs on a worker thread: reads the plan, never the live inodes.
        """
        assert self._planned is not None
        sink = Staging(sink.repo, sink.batch, keeps_nodes=True)  # reads back the directories it writes
        for node_id, (record, node) in self._planned.pending.items():
            sink.put_record(node_id, record, node)
        results: dict[int, DirEntry] = {}
        self._store(plan, sink, writer, results)
        return results

    def _store(self, plan: Plan, sink: Staging, writer: ContentWriter, results: dict[int, DirEntry]) -> DirEntry:
        if isinstance(plan, FilePlan):
            stored = results.get(plan.inode.ino)
            if stored is None:
                file_id, node = plan.data.store(writer)
                entry = plan.entry.pointing_at(file_id, node.size_bytes)
            else:  # another name of the same file, stored already
                entry = plan.entry.pointing_at(stored.id, stored.size_bytes)
        else:
            changed = [c if isinstance(c, DirEntry) else self._store(c, sink, writer, results) for c in plan.changed]
            dir_id = plan.base_id
            if len(plan.removed) + len(changed) <= INCREMENTAL_MAX:
                # Path copying: each put rewrites one shard and the node above it.
                for name in plan.removed:
                    if dir_get(sink, dir_id, name) is not None:
                        dir_id = dir_remove(sink, dir_id, name)
                for child_entry in changed:
                    dir_id = dir_put(sink, dir_id, child_entry)
            else:
                # Many names changed (a directory filled by cp or tar): build it once.
                entries = {e.name: e for e in iter_dir(sink, dir_id)}
                for name in plan.removed:
                    entries.pop(name, None)
                entries.update((e.name, e) for e in changed)
                dir_id = build_dir(sink, list(entries.values()))
            entry = plan.entry.pointing_at(dir_id)
        results[plan.inode.ino] = entry
        return entry

    def committed(self, plan: DirPlan, results: dict[int, DirEntry]) -> None:
        """Record a stored plan: its inodes stand for stored nodes again, but for what changed meanwhile."""
        planned, self._planned = self._planned, None
        assert planned is not None
        self.storing.clear()
        for node_id in planned.pending:
            self.pending.pop(node_id, None)
        self._mark_stored(plan, results, planned.epoch)

    def abandoned(self) -> None:
        """The commit of the last snapshot failed: its marks stay, and so do its counts, for the next one."""
        planned, self._planned = self._planned, None
        self.storing.clear()
        if planned is None:
            return
        for what, n in planned.counts.items():
            self.counts[what] = self.counts.get(what, 0) + n
        self.first_change = planned.first_change or self.first_change

    def _mark_stored(self, plan: Plan, results: dict[int, DirEntry], epoch: int) -> None:
        entry = results[plan.inode.ino]
        inode = plan.inode
        inode.entry = inode.entry.pointing_at(entry.id, entry.size_bytes)
        if isinstance(plan, FilePlan):
            data = inode.data
            if data is None or not data.dirty or data.version != plan.data.version:
                # Another name of the file, marked already; or written since its copy was taken
                # for this commit: then it stays dirty for the next one.
                return
            data.committed(entry.id)
            if inode.opens == 0:  # nobody has it open: drop the spill file and the chunk map
                data.close()
                inode.data = None
            return
        _clear_marks(inode.changed, epoch)
        _clear_marks(inode.removed, epoch)
        for child in plan.changed:
            if not isinstance(child, DirEntry):
                self._mark_stored(child, results, epoch)

    def summary(self) -> str:
        """A one-line description of the changes since the last commit."""
        total = sum(self.counts.values())
        if total <= 1:
            return self.first_change or "changed metadata"
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"{parts} (first: {self.first_change})"

    # -- another process changed the tree ------------------------------------

    def rebase(self, root_id: ObjectId, invalidate: Invalidate) -> None:
        """Show the tree of ``root_id`` (committed elsewhere); call ``invalidate`` for what changed.

        Only for a clean overlay: every inode the kernel knows is compared
        with its new entry, and subtrees whose ids are unchanged are skipped.
        """
        assert not self.root.dirty
        self._unloaded_links.clear()
        if root_id != self.root.entry.id:
            self.root.entry = self.root.entry.pointing_at(root_id)
            self._refresh(self.root, invalidate)

    def _refresh(self, directory: Inode, invalidate: Invalidate) -> None:
        directory.complete = False
        directory.subdirs = None
        for name, kid in list(directory.kids.items()):
            entry = dir_get(self.repo, directory.entry.id, name)
            if entry == kid.entry_as(name):
                continue
            if entry is None or entry.kind is not kid.entry.kind or kid.aliases:
                # Gone, or another kind; or one name of a linked file changed: loaded again when asked.
                del directory.kids[name]
                if kid.aliases:
                    _drop_place(kid, directory, name)
                    invalidate(kid.ino, None)
                else:
                    kid.parent = None
                    self.release_if_unused(kid)
                invalidate(directory.ino, name)
                continue
            old = kid.entry
            kid.entry = entry
            if kid.is_dir:
                if entry.id != old.id:
                    self._refresh(kid, invalidate)
            elif entry.id != old.id and kid.data is not None:
                kid.data.close()
                kid.data = None
            invalidate(kid.ino, None)
        invalidate(directory.ino, None)


class _Planned(NamedTuple):
    """What a snapshot froze besides its plan."""

    epoch: int
    pending: dict[ObjectId, tuple[Record, Node]]
    counts: dict[str, int]
    first_change: str


def _file_plans(plan: Plan) -> Iterator[FilePlan]:
    if isinstance(plan, FilePlan):
        yield plan
        return
    for child in plan.changed:
        if not isinstance(child, DirEntry):
            yield from _file_plans(child)


def _clear_marks(marks: dict[bytes, int], epoch: int) -> None:
    """Forget the marks a commit stored (made in ``epoch`` or before); keep the ones made while it stored."""
    if any(mark_epoch > epoch for mark_epoch in marks.values()):
        kept = {name: mark_epoch for name, mark_epoch in marks.items() if mark_epoch > epoch}
        marks.clear()
        marks.update(kept)
    else:
        marks.clear()


def _touch_at(parent: Inode, name: bytes, epoch: int) -> None:
    """Mark ``name`` as changed in ``parent`` in ``epoch``, and ``parent`` in its own parent, up to the root."""
    directory: Inode | None = parent
    while directory is not None:
        if directory.changed.get(name) == epoch:
            return
        directory.changed[name] = epoch
        name, directory = directory.name, directory.parent


def _drop_place(inode: Inode, parent: Inode, name: bytes) -> None:
    """Forget one of the names of a file with several; the next becomes its first."""
    if inode.parent is parent and inode.name == name:
        inode.parent, inode.name = inode.aliases.pop(0)
        inode.entry = inode.entry.renamed(inode.name)
    else:
        inode.aliases = [(p, n) for p, n in inode.aliases if not (p is parent and n == name)]


def _move_place(inode: Inode, old_parent: Inode, old: bytes, new_parent: Inode, new: bytes) -> None:
    """Move one of an inode's names: its first (which names its entry) or one of its hard links."""
    if inode.parent is old_parent and inode.name == old:
        inode.parent, inode.name = new_parent, new
        inode.entry = inode.entry.renamed(new)
    else:
        inode.aliases = [(new_parent, new) if p is old_parent and n == old else (p, n) for p, n in inode.aliases]


def atime_is_due(entry: DirEntry, now_ns: int, policy: str) -> bool:
    """True if a read at ``now_ns`` moves the entry's atime under ``policy`` (one of ``ATIME_POLICIES``).

    relatime (Linux's default): when the atime is not newer than the mtime
    or the ctime, or is a day old; strictatime: on every read; noatime: never.
    """
    if policy == "strictatime":
        return True
    if policy == "noatime":
        return False
    atime = entry.atime_ns
    return atime <= entry.mtime_ns or atime <= entry.ctime_ns or now_ns - atime >= RELATIME_SECONDS * 10**9
