"""Import a host file or directory tree into the store, as one commit.

The walk is depth first: a directory's node is built after its children,
from their entries. Contents go to the store in batched transactions as the
walk proceeds (objects first); the single commit that places the imported
tree at its store path, and moves HEAD, comes last. Importing onto an
existing path replaces it. Symlinks are stored as links and never followed;
FIFOs, sockets and character and block devices are stored as SPECIAL nodes
(file type and device number; issue #12), never opened. The ``user.*``
extended attributes and POSIX ACLs (``system.posix_acl_access``,
``system.posix_acl_default``) of every file and directory are kept in its
entry's ``xattrs``, as restic and borg keep them, unless ``xattrs`` is False.
They are read on every import (one listxattr per name): the host-file cache
below saves reading contents, never metadata.

Unchanged files are skipped without reading them, as restic and borg do: a
per-repository cache maps each host path to (device, inode, size, mtime,
ctime) and the file node stored for it; a file whose stat matches, and whose
node is still stored, re-uses that node.

Hard links (issue #12): names of one host inode (same device and inode
number) that the walk finds at least twice get one random link-group id
(``objects.LINK_XATTR``) in their entries; a file whose other names are
outside the tree gets none, so a tree without links costs nothing more. A
directory holding a name whose group is not known yet (one name seen, more
links on the host) is built only when a second name turns up or the walk
ends; past ``LINK_WAIT_ENTRIES`` names waiting, the waiting groups get
their ids at once instead (a group of one with an id is harmless), so
memory stays bounded. A re-import re-uses the id the host-file cache
recorded for the inode, so an unchanged linked tree gives the same nodes.

Small files are read whole (with their xattrs), hashed and compressed in
groups on a worker, one while they come from the page cache (for them the
GIL, not the CPU, is the limit), all once reads show the disk; their
records are written on the calling thread (``_SmallFiles``). Large files
stream through FastCDC with hashing and compression on a small thread
pool, a few chunks in flight.
"""

from __future__ import annotations

import collections
import errno
import io
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias, cast

from zerofs.chunking import make_chunker
from zerofs.content import ContentWriter, EncodedFile, encode_small_file
from zerofs.dirnodes import build_dir
from zerofs.errors import Hint, HostIOError, NotFoundError, UsageError
from zerofs.history import apply_change
from zerofs.objects import (
    LINK_ID_BYTES,
    DirEntry,
    Kind,
    ObjectId,
    SymlinkNode,
    is_kept_xattr,
    special_node,
    validate_name,
)
from zerofs.paths import StorePath, escaped
from zerofs.repo import CachedFile, Repository, Staging
from zerofs.tree import place

STREAM_THRESHOLD_BYTES: Final = 1 << 20
"""Files larger than this are streamed; smaller ones are read whole."""
SMALL_GROUP_BYTES: Final = 512 << 10
SMALL_GROUP_FILES: Final = 64
"""Small files go to a worker in groups: one hand-off per file costs more than hashing it."""
SLOW_READ_SECONDS: Final = 40e-6
"""A group of small files whose median read took longer came from the disk, not the page cache (``_SmallFiles``)."""
CACHE_FLUSH_FILES: Final = 50_000
"""Host-file cache records are written after this many files, so memory stays bounded."""
LINK_WAIT_ENTRIES: Final = 100_000
"""Most names held in directories waiting to know whether a linked file has another name in the tree."""


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Counters passed to the progress callback after each file."""

    files: int
    bytes_read: int
    bytes_total: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    store_path: StorePath
    commit_id: ObjectId | None
    files: int
    dirs: int
    symlinks: int
    bytes_total: int
    files_unchanged: int
    new_bytes: int
    warnings: tuple[str, ...] = ()
    specials: int = 0
    """FIFOs, sockets and devices stored."""
    hardlinks: int = 0
    """Names stored as further links of a file (each hard-link group's names but its first)."""
    left_out: int = 0
    """Entries not imported because they could not be read or stored (each has a warning).

    The repository itself, met inside the imported tree, is skipped by
    design and not counted: the import is complete without it.
    """


@dataclass
class _Counters:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    specials: int = 0
    hardlinks: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    files_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    left_out: int = 0


ProgressCallback = Callable[[ImportProgress], None]


def import_tree(
    repo: Repository,
    host_path: Path,
    store_path: StorePath,
    *,
    parents: bool = False,
    skip_errors: bool = False,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    on_warning: Callable[[str], None] | None = None,
    xattrs: bool = True,
) -> ImportResult:
    """Import ``host_path`` (file, directory or symlink) to ``store_path`` in one commit.

    Writes contents and nodes in batched transactions while walking, then
    one commit that places the tree (replacing what was there) and moves
    HEAD by compare-and-swap, together with the updated host-file cache.

    Raises:
        NotFoundError: ``host_path`` does not exist.
        HostIOError: a host file could not be read (unless ``skip_errors``).
        UsageError: ``store_path`` is the root, or ``host_path`` is in the repository.
    """
    absolute = Path(os.path.abspath(host_path))
    try:
        top_stat = os.lstat(absolute)
    except FileNotFoundError:
        raise NotFoundError(f"no such host file or directory: {host_path}") from None
    except OSError as exc:
        raise HostIOError(f"cannot read {host_path}: {exc.strerror}") from exc
    if store_path.is_root:
        raise UsageError("cannot import onto the root directory /; name a path such as /data")
    repo_dir = _identity(repo.path)
    if repo_dir is not None and any(_identity(p) == repo_dir for p in (absolute, *absolute.parents)):
        raise UsageError(f"cannot import {host_path}: it is the repository at {repo.path}, or inside it")
    n_workers = workers or min(4, os.cpu_count() or 1)
    counters = _Counters()
    with (
        ThreadPoolExecutor(n_workers, thread_name_prefix="zerofs-hash") as executor,
        ThreadPoolExecutor(1, thread_name_prefix="zerofs-small") as one_worker,
        repo.batch(index_later=True) as batch,
    ):
        sink = Staging(repo, batch)
        writer = ContentWriter(repo, sink, executor, n_workers)
        walker = _Walker(
            os.fsencode(absolute),
            repo,
            sink,
            writer,
            _SmallFiles(repo, writer, executor, one_worker, n_workers, xattrs=xattrs),
            counters,
            skip_errors,
            on_progress,
            on_warning,
            xattrs,
        )
        top_path = os.fsencode(absolute)
        cached = repo.cached_files(os.path.dirname(top_path)) if not stat.S_ISDIR(top_stat.st_mode) else {}
        top = walker.finish(walker.entry_for(top_path, store_path.name, top_stat, cached))
    if top is None:
        raise HostIOError(f"nothing to import: {host_path} is not a file, directory, symlink, FIFO, socket or device")

    def place_import(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        return place(staging, root_id, store_path, top, now_ns, parents=parents, replace=True)

    size = _human_bytes(counters.bytes_total)
    message = f"import {escaped(os.fsencode(absolute))} -> {store_path.shown()} ({counters.files} files, {size})"
    outcome = apply_change(
        repo,
        place_import,
        message=message,
        operation={
            "op": "import",
            "host_path": os.fsdecode(absolute),
            "path": str(store_path),
            "files": counters.files,
            "bytes": counters.bytes_total,
        },
    )
    walker.save_cache()  # after the commit: a cache naming files of a failed import would only be re-checked
    return ImportResult(
        store_path,
        outcome.commit_id,
        counters.files,
        counters.dirs,
        counters.symlinks,
        counters.bytes_total,
        counters.files_unchanged,
        sink.new_bytes,
        tuple(counters.warnings),
        counters.specials,
        counters.hardlinks,
        counters.left_out,
    )


_Child: TypeAlias = "DirEntry | _PendingFile | _PendingDir | _LinkedFile"
Xattrs: TypeAlias = tuple[tuple[bytes, bytes], ...]


class _Walker:
    """Depth-first walk of a host tree that builds and writes nodes.

    A directory's node needs its files' ids, which workers compute; so a
    directory is not built when its walk ends, but queued (children before
    parents) and built as soon as its files are done, while the walk goes
    on into the next directories and keeps the workers busy.
    """

    def __init__(
        self,
        top_path: bytes,
        repo: Repository,
        sink: Staging,
        writer: ContentWriter,
        small: _SmallFiles,
        counters: _Counters,
        skip_errors: bool,
        on_progress: ProgressCallback | None,
        on_warning: Callable[[str], None] | None,
        xattrs: bool,
    ) -> None:
        self.top_path = top_path
        self.xattrs = xattrs
        self.repo_dir = _identity(repo.path)
        self.repo = repo
        self.sink = sink
        self.writer = writer
        self.small = small
        self.counters = counters
        self.skip_errors = skip_errors
        self.on_progress = on_progress
        self.on_warning = on_warning
        self.unbuilt: deque[_PendingDir] = deque()
        self.incomplete: set[bytes] = set()
        """Host directories not built yet: their records for the host-file cache are not whole."""
        self.cache_updates: dict[bytes, dict[bytes, CachedFile]] = {}
        self.cache_loaded: dict[bytes, dict[bytes, CachedFile]] = {}
        """What the cache held for each directory: a record that did not change is not written again."""
        self.cache_pending = 0
        self.link_groups: dict[tuple[int, int], _LinkGroup] = {}
        self.link_ids_used: set[bytes] = set()
        self.links_final = False
        """True once the walk is over: a group with one name then has no other in the tree."""
        self.parked: list[_PendingDir] = []
        """Directories (in walk order) whose files are stored but which wait on link groups (some built since)."""
        self.n_parked = 0
        self.parked_entries = 0

    def warn(self, text: str, *, left_out: bool = True) -> None:
        """Report an entry skipped; ``left_out``: the import is incomplete without it."""
        self.counters.warnings.append(text)
        self.counters.left_out += left_out
        if self.on_warning is not None:
            self.on_warning(text)

    def failed(self, path: bytes, exc: OSError) -> None:
        text = f"cannot read {os.fsdecode(path)}: {exc.strerror or exc}"
        if path == self.top_path:  # the whole import: there is no rest to import by skipping errors
            raise HostIOError(text) from exc
        if not self.skip_errors:
            raise HostIOError(text, hint=Hint.SKIP_ERRORS) from exc
        self.warn(text + "; skipped")

    def finish(self, top: _Child | None) -> DirEntry | None:
        """Wait for everything still in flight; return the top entry (None if it was skipped)."""
        self.small.submit()
        self.links_final = True
        for pending in self.parked:  # children before parents
            if pending.is_parked:
                self.build(pending)
        self.parked = []
        self.build_ready(wait=True)
        return None if top is None else self.resolved(top)

    def resolved(self, child: _Child) -> DirEntry | None:
        """The entry of a child, waiting for its file to be stored (None if it could not be read)."""
        if isinstance(child, _PendingFile):
            return self.small.entry(child)
        if isinstance(child, _PendingDir):
            assert child.entry is not None, "a directory is built after the directories in it"
            return child.entry
        if isinstance(child, _LinkedFile):
            return self.linked(child)
        return child

    def linked(self, child: _LinkedFile) -> DirEntry | None:
        """The entry of a file with other host names: in its link group if the tree holds two of them."""
        entry = self.resolved(child.file)
        link_id = child.group.link_id
        if entry is None or link_id is None:
            return entry
        self.counters.hardlinks += child.group.stored > 0
        child.group.stored += 1
        records = self.cache_updates.get(os.path.dirname(child.path), {})
        record = records.get(entry.name)
        if record is not None and record.link_id != link_id:
            records[entry.name] = record._replace(link_id=link_id)
        return entry.with_link(link_id)

    def link_group(self, st: os.stat_result, cached: CachedFile | None) -> _LinkGroup:
        """Count one more name of a host inode with several links; decide its id at the second name."""
        group = self.link_groups.get((st.st_dev, st.st_ino))
        if group is None:
            group = self.link_groups[st.st_dev, st.st_ino] = _LinkGroup()
        if not group.previous and cached is not None and (cached.device, cached.inode) == (st.st_dev, st.st_ino):
            group.previous = cached.link_id
        group.names += 1
        if group.names == 2 and group.link_id is None:  # it may have had its id while its first name waited
            self.give_link_id(group)
        if group.names >= st.st_nlink:  # every name is seen: no other will look it up
            del self.link_groups[st.st_dev, st.st_ino]
        return group

    def give_link_id(self, group: _LinkGroup) -> None:
        """Give a group its id (the one the last import gave this inode, if no other group has it yet).

        The directories that waited for it may now be built.
        """
        link_id = group.previous
        if len(link_id) != LINK_ID_BYTES or link_id in self.link_ids_used:
            link_id = os.urandom(LINK_ID_BYTES)
        self.link_ids_used.add(link_id)
        group.link_id = link_id
        waiters, group.waiters = group.waiters, []
        for pending in waiters:
            self.one_less_wait(pending)

    def settle(self, pending: _PendingDir) -> None:
        """Put the entries of a directory's stored files in place of what stood for them while in flight."""
        children: list[_Child] = []
        for child in pending.children:
            settled: _Child | None = child
            if isinstance(child, _PendingFile):
                settled = self.resolved(child)
            elif isinstance(child, _LinkedFile) and isinstance(child.file, _PendingFile):
                entry = self.resolved(child.file)
                if entry is None:
                    settled = None
                else:
                    child.file = entry
            if settled is not None:  # a file that could not be read (errors skipped) is left out
                children.append(settled)
        pending.children = children

    def one_less_wait(self, pending: _PendingDir) -> None:
        """One thing ``pending`` waited for is done: build it if it was parked and waits for nothing more."""
        pending.waiting -= 1
        if pending.waiting == 0 and pending.is_parked:
            self.build(pending)

    def park(self, pending: _PendingDir) -> None:
        """Set aside a directory waiting on link groups; past the limit, stop waiting for any.

        Its files are stored: their entries are made now, so that only they are held while it waits.
        """
        self.settle(pending)
        pending.is_parked = True
        self.parked.append(pending)
        self.n_parked += 1
        self.parked_entries += len(pending.children)
        if self.parked_entries > LINK_WAIT_ENTRIES:
            for waiting in list(self.parked):
                for linked in waiting.linked:
                    if linked.group.link_id is None:
                        self.give_link_id(linked.group)
        if len(self.parked) > 2 * self.n_parked + 16:
            self.parked = [p for p in self.parked if p.is_parked]

    def build_ready(self, *, wait: bool = False) -> None:
        """Build the queued directories whose files are stored (with ``wait``, all of them)."""
        self.small.collect_done()
        while self.unbuilt:
            pending = self.unbuilt[0]
            if not wait and not pending.is_ready():
                return
            self.unbuilt.popleft()
            if pending.waiting == 0 or self.links_final:
                self.build(pending)
            else:
                self.park(pending)

    def build(self, pending: _PendingDir) -> None:
        """Build and store a directory whose files are stored and whose link groups are known."""
        if pending.is_parked:
            pending.is_parked = False
            self.n_parked -= 1
            self.parked_entries -= len(pending.children)
        entries = [entry for entry in map(self.resolved, pending.children) if entry is not None]
        pending.children = []
        pending.linked = []
        st = pending.st
        dir_id = build_dir(self.sink, entries)
        entry = DirEntry(
            pending.name, Kind.DIR, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, 0, dir_id, pending.xattrs
        )
        pending.entry = _with_times(entry, st)
        self.incomplete.discard(pending.path)
        if pending.parent is not None:
            self.one_less_wait(pending.parent)

    def entry_for(self, path: bytes, name: bytes, st: os.stat_result, cached: dict[bytes, CachedFile]) -> _Child | None:
        """Store what is at ``path`` and return its entry (or what will be), or None if skipped."""
        mode = st.st_mode
        try:
            if stat.S_ISREG(mode):
                return self.file_entry(path, name, st, cached.get(name))
            if stat.S_ISDIR(mode):
                return self.dir_entry(path, name, st)
            if stat.S_ISLNK(mode):
                target = os.readlink(path)
                node_id = self.sink.put(SymlinkNode(target))
                self.counters.symlinks += 1
                entry = DirEntry(name, Kind.SYMLINK, mode, st.st_uid, st.st_gid, st.st_mtime_ns, len(target), node_id)
                return _with_times(entry, st)
        except OSError as exc:
            self.failed(path, exc)
            return None
        return self.special_entry(path, name, st)

    def special_entry(self, path: bytes, name: bytes, st: os.stat_result) -> DirEntry | None:
        """Store a FIFO, socket or device from its stat alone (never opened: a FIFO would block)."""
        try:
            node_id = self.sink.put(special_node(st.st_mode, st.st_rdev))
        except ValueError:  # a file type Linux does not have (a Solaris door, say)
            self.warn(f"skipped {os.fsdecode(path)}: unknown file type {oct(stat.S_IFMT(st.st_mode))}")
            return None
        self.counters.specials += 1
        xattrs = self.read_xattrs(path)
        entry = DirEntry(name, Kind.SPECIAL, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, 0, node_id, xattrs)
        return _with_times(entry, st)

    def dir_entry(self, path: bytes, name: bytes, st: os.stat_result) -> _PendingDir:
        pending = _PendingDir(path, name, st, self.read_xattrs(path))
        self.incomplete.add(path)
        cached = self.cache_loaded[path] = self.repo.cached_files(path)
        with os.scandir(path) as iterator:
            children = list(iterator)
        for child in children:
            child_name = child.name
            try:
                validate_name(child_name)  # scandir never yields '.', '..' or '/'
            except Exception:  # noqa: BLE001 - a name the store cannot hold is a warning
                self.warn(f"skipped {os.fsdecode(child.path)}: name cannot be stored")
                continue
            try:
                child_stat = child.stat(follow_symlinks=False)
            except OSError as exc:
                self.failed(child.path, exc)
                continue
            if stat.S_ISDIR(child_stat.st_mode) and (child_stat.st_dev, child_stat.st_ino) == self.repo_dir:
                # Reading the store's own files while writing them is useless, and broke LMDB (EINVAL).
                text = f"skipped {os.fsdecode(child.path)}: it is the repository being imported into"
                self.warn(text, left_out=False)
                continue
            entry = self.entry_for(child.path, child_name, child_stat, cached)
            if entry is not None:
                pending.add(entry)
        self.counters.dirs += 1
        self.unbuilt.append(pending)
        self.build_ready()
        return pending

    def file_entry(
        self, path: bytes, name: bytes, st: os.stat_result, cached: CachedFile | None
    ) -> DirEntry | _PendingFile | _LinkedFile:
        """Store a regular file (or re-use what the cache says is stored); one of several links joins its group."""
        if st.st_nlink > 1:
            group = self.link_group(st, cached)
            return _LinkedFile(path, self.unlinked_file_entry(path, name, st, cached), group)
        return self.unlinked_file_entry(path, name, st, cached)

    def unlinked_file_entry(
        self, path: bytes, name: bytes, st: os.stat_result, cached: CachedFile | None
    ) -> DirEntry | _PendingFile:
        counters = self.counters
        if cached is not None and self.is_unchanged(st, cached):
            counters.files_unchanged += 1
            return self.finish_file(path, name, st, cached.file_id, st.st_size)
        if st.st_size <= STREAM_THRESHOLD_BYTES:
            counters.bytes_read += st.st_size
            return self.small.add(_PendingFile(self, path, name, st))
        with _open_host_file(path, is_sparse=st.st_blocks * 512 < st.st_size) as reader:
            file_id, node = self.writer.write_stream(reader)
        counters.bytes_read += node.size_bytes
        return self.finish_file(path, name, st, file_id, node.size_bytes)

    def finish_file(
        self,
        path: bytes,
        name: bytes,
        st: os.stat_result,
        file_id: ObjectId,
        size: int,
        xattrs: Xattrs | OSError | None = None,
    ) -> DirEntry:
        """Count a stored file, remember it for the host-file cache, return its entry.

        ``xattrs``: as a worker read them (or failed to), None to read them now.
        """
        counters = self.counters
        counters.files += 1
        counters.bytes_total += size
        if self.on_progress is not None:
            self.on_progress(ImportProgress(counters.files, counters.bytes_read, counters.bytes_total))
        directory = os.path.dirname(path)
        record = CachedFile(st.st_dev, st.st_ino, size, st.st_mtime_ns, st.st_ctime_ns, file_id)
        self.cache_updates.setdefault(directory, {})[name] = record
        self.cache_pending += 1
        if self.cache_pending >= CACHE_FLUSH_FILES:
            self.save_cache()
        if xattrs is None:
            try:
                xattrs = self.read_xattrs(path)
            except OSError as exc:
                xattrs = exc
        if isinstance(xattrs, OSError):
            self.failed(path, xattrs)
            xattrs = ()
        entry = DirEntry(name, Kind.FILE, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, size, file_id, xattrs)
        return _with_times(entry, st)

    def read_xattrs(self, path: bytes) -> Xattrs:
        """The extended attributes of ``path`` that are kept (``is_kept_xattr``), sorted; none if off."""
        return _read_xattrs(path) if self.xattrs else ()

    def save_cache(self) -> None:
        """Write the host-file cache records gathered so far (whole directories only)."""
        done = {d: files for d, files in self.cache_updates.items() if d not in self.incomplete}
        self.repo.remember_files({d: files for d, files in done.items() if files != self.cache_loaded.get(d)})
        for directory in done:
            del self.cache_updates[directory]
            self.cache_loaded.pop(directory, None)
        self.cache_pending = sum(len(files) for files in self.cache_updates.values())

    def is_unchanged(self, st: os.stat_result, cached: CachedFile) -> bool:
        """True if the host file is as the last import saw it, and what it stored is still stored."""
        seen = (cached.device, cached.inode, cached.size_bytes, cached.mtime_ns, cached.ctime_ns)
        if seen != (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return False
        return self.sink.has(cached.file_id)


class _PendingDir:
    """A directory walked but not built yet: its children, some of them files still in flight."""

    __slots__ = ("children", "entry", "is_parked", "linked", "name", "parent", "path", "st", "waiting", "xattrs")

    def __init__(self, path: bytes, name: bytes, st: os.stat_result, xattrs: tuple[tuple[bytes, bytes], ...]) -> None:
        self.path = path
        self.name = name
        self.st = st
        self.xattrs = xattrs
        self.children: list[_Child] = []
        self.linked: list[_LinkedFile] = []
        """The children that are names of host files with several links."""
        self.entry: DirEntry | None = None
        self.waiting = 0
        """Link groups not known yet of its files, and directories in it not built yet."""
        self.parent: _PendingDir | None = None
        """Set when it was not built by the time its parent's walk came back to it."""
        self.is_parked = False

    def add(self, child: _Child) -> None:
        """Add a child; count what it makes this directory wait for."""
        self.children.append(child)
        if isinstance(child, _LinkedFile):
            self.linked.append(child)
            if child.group.link_id is None:
                self.waiting += 1
                child.group.waiters.append(self)
        elif isinstance(child, _PendingDir) and child.entry is None:
            self.waiting += 1
            child.parent = self

    def is_ready(self) -> bool:
        """True when every file in it is stored (its directories were walked before it)."""
        return all(c.is_done() for c in self.children if isinstance(c, (_PendingFile, _LinkedFile)))


class _LinkGroup:
    """The names one import found of one host inode with several links, and the group id they get."""

    __slots__ = ("link_id", "names", "previous", "stored", "waiters")

    def __init__(self) -> None:
        self.names = 0
        self.stored = 0
        self.waiters: list[_PendingDir] = []
        """Directories waiting for its id (one entry per name that made one wait)."""
        self.link_id: bytes | None = None
        """Given at the second name (or when waiting costs too much memory); None while unknown."""
        self.previous = b""
        """The id the last import gave this inode (from the host-file cache), re-used if free."""


class _LinkedFile:
    """A file with other host names: its entry (or the file still in flight) and its inode's group."""

    __slots__ = ("file", "group", "path")

    def __init__(self, path: bytes, file: DirEntry | _PendingFile, group: _LinkGroup) -> None:
        self.path = path
        self.file = file
        self.group = group

    def is_done(self) -> bool:
        """True once its contents are stored."""
        return not isinstance(self.file, _PendingFile) or self.file.is_done()


class _PendingFile:
    """A small file handed to a worker; becomes a DirEntry once its group is done."""

    __slots__ = ("group", "index", "name", "path", "st", "walker")

    def __init__(self, walker: _Walker, path: bytes, name: bytes, st: os.stat_result) -> None:
        self.walker = walker
        self.path = path
        self.name = name
        self.st = st
        self.group: _Group | None = None
        self.index = 0

    def is_done(self) -> bool:
        """True once its group's records are written."""
        return self.group is not None and self.group.results is not None


class _Group:
    """Small files encoded together on one worker."""

    __slots__ = ("future", "paths", "results", "size_bytes")

    def __init__(self) -> None:
        self.paths: list[tuple[bytes, int]] = []
        self.size_bytes = 0
        self.future: Future[tuple[list[tuple[EncodedFile, Xattrs | OSError] | OSError], float]] | None = None
        """From the worker: each file encoded with its xattrs (or the error reading it); the median read time."""
        self.results: list[tuple[ObjectId, int, Xattrs | OSError] | OSError] | None = None


class _SmallFiles:
    """Reads, hashes and compresses small files on workers, in groups, with bounded memory.

    Records are written on the caller's thread, in submission order, as soon
    as more than ``max_in_flight`` groups are pending; only (id, size,
    xattrs) of each file is kept after that, until its directory is built.
    The workers read each file's extended attributes too, from the file
    they opened: on the walking thread, every call that lets go of the GIL
    (a listxattr there cost as much as the file's stat) waits for a worker
    to give it back, and that thread is the one the import waits for.

    For the same reason the groups go to one worker (``one_worker``) while
    the files come from the page cache: all of the work then holds the GIL,
    and a second worker only makes the walking thread wait longer for it
    (20,000 files of 1-4 KB: 1.26 s against 1.43 s with two). Once a
    group's median read takes over ``SLOW_READ_SECONDS`` (the files come
    from the disk), the groups go to all the workers (``executor``), whose
    reads overlap (the same files from the disk: 2.2 s against 2.7 s with one).
    """

    def __init__(
        self,
        repo: Repository,
        writer: ContentWriter,
        executor: Executor,
        one_worker: Executor,
        workers: int,
        *,
        xattrs: bool,
    ) -> None:
        self.repo = repo
        self.xattrs = xattrs
        self.writer = writer
        self.executor = executor
        self.one_worker = one_worker
        self.reads_wait = False
        """The last group written read its files from the disk: groups go to every worker."""
        self.max_in_flight = max(2, 2 * workers)
        self.current = _Group()
        self.in_flight: collections.deque[_Group] = collections.deque()
        self.local = threading.local()

    def add(self, pending: _PendingFile) -> _PendingFile:
        group = self.current
        pending.group, pending.index = group, len(group.paths)
        group.paths.append((pending.path, pending.st.st_size))
        group.size_bytes += pending.st.st_size
        if group.size_bytes >= SMALL_GROUP_BYTES or len(group.paths) >= SMALL_GROUP_FILES:
            self.submit()
        return pending

    def submit(self) -> None:
        group = self.current
        if not group.paths:
            return
        self.current = _Group()
        executor = self.executor if self.reads_wait else self.one_worker
        group.future = executor.submit(self._encode, group.paths)
        group.paths = []
        self.in_flight.append(group)
        while len(self.in_flight) > self.max_in_flight:
            self._write(self.in_flight.popleft())

    def collect_done(self) -> None:
        """Write the records of the groups, oldest first, that workers have finished (never waits)."""
        while self.in_flight and self.in_flight[0].future is not None and self.in_flight[0].future.done():
            self._write(self.in_flight.popleft())

    def _encode(
        self, paths: list[tuple[bytes, int]]
    ) -> tuple[list[tuple[EncodedFile, Xattrs | OSError] | OSError], float]:
        """Worker: read (contents and xattrs), hash and compress each file; and the median read time."""
        chunker = self.local.__dict__.get("chunker")
        if chunker is None:
            chunker = self.local.chunker = make_chunker(self.repo.config.chunk_params, self.repo.chunker_seed)
        encoded: list[tuple[EncodedFile, Xattrs | OSError] | OSError] = []
        read_seconds = []
        with self.repo.has_checker() as has:
            for path, size in paths:
                started = time.perf_counter()
                try:
                    data, xattrs = _read_small_file(path, size, xattrs=self.xattrs)
                except OSError as exc:
                    encoded.append(exc)
                    continue
                read_seconds.append(time.perf_counter() - started)
                encoded.append((encode_small_file(self.repo, chunker, data, has), xattrs))
        read_seconds.sort()
        return encoded, read_seconds[len(read_seconds) // 2] if read_seconds else 0.0

    def _write(self, group: _Group) -> None:
        assert group.future is not None
        results: list[tuple[ObjectId, int, Xattrs | OSError] | OSError] = []
        files, median_read_seconds = group.future.result()
        self.reads_wait = median_read_seconds > SLOW_READ_SECONDS
        for done in files:
            if isinstance(done, OSError):
                results.append(done)
                continue
            encoded, xattrs = done
            self.writer.write_encoded(encoded)
            results.append((encoded.file_id, encoded.node.size_bytes, xattrs))
        group.results = results
        group.future = None

    def entry(self, pending: _PendingFile) -> DirEntry | None:
        """Return the finished entry, or None if the file could not be read (and errors are skipped)."""
        group = pending.group
        assert group is not None
        if group.results is None and group.future is None:  # still the group being filled
            self.submit()
        while group.results is None:
            self._write(self.in_flight.popleft())
        result = group.results[pending.index]
        if isinstance(result, OSError):
            pending.walker.failed(pending.path, result)
            return None
        file_id, size, xattrs = result
        return pending.walker.finish_file(pending.path, pending.name, pending.st, file_id, size, xattrs)


def _read_small_file(path: bytes, size: int, *, xattrs: bool) -> tuple[bytes, Xattrs | OSError]:
    """Read a whole small file with as few calls as possible (it may have grown since stat), then its xattrs.

    The xattrs (none if ``xattrs`` is False) or the error reading them: that
    error is the caller's to report, the contents are good.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) > size:
            parts = [data]
            while more := os.read(fd, 1 << 20):
                parts.append(more)
            data = b"".join(parts)
        if not xattrs:
            return data, ()
        try:
            return data, _read_xattrs(fd)
        except OSError as exc:
            return data, exc
    finally:
        os.close(fd)


def _read_xattrs(target: bytes | int) -> Xattrs:
    """The extended attributes kept (``is_kept_xattr``) of a path (a symlink's own) or an open file, sorted."""
    follow = isinstance(target, int)  # an open file is itself: Python refuses follow_symlinks=False with one
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):  # the host file system has none
            return ()
        raise
    kept = [os.fsencode(n) for n in names if is_kept_xattr(os.fsencode(n))]
    found = []
    for key in kept:
        try:
            found.append((key, os.getxattr(target, key, follow_symlinks=follow)))
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # removed since listxattr
                raise
    return tuple(sorted(found))


def _open_host_file(path: bytes, *, is_sparse: bool = False) -> BinaryIO:
    """Open a host file for reading without following a symlink swapped in after the walk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if is_sparse:
        return cast(BinaryIO, _SparseReader(fd))
    return os.fdopen(fd, "rb", buffering=0)


class _SparseReader(io.RawIOBase):
    """Reads a file with holes: a hole is filled with zeros, found with SEEK_DATA/SEEK_HOLE, not read(2).

    The bytes are the same as a plain read's; only the kernel's zeroing of
    pages for every hole (most of the time of a 1 GiB file with a few blocks
    written) is saved.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.offset = 0
        self.data_start = 0
        self.data_end = 0
        """The data region at or after ``offset`` is [data_start, data_end); before it, a hole."""

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.offset >= self.data_end:
            self._find_data()
        view = memoryview(buffer).cast("B")
        if self.offset < self.data_start:
            count = min(len(view), self.data_start - self.offset)
            view[:count] = bytes(count)
        else:
            count = os.preadv(self.fd, [view[: self.data_end - self.offset]], self.offset)
        self.offset += count
        return count

    def _find_data(self) -> None:
        try:
            self.data_start = os.lseek(self.fd, self.offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            # No data from here on: the rest, up to the end of the file, is a hole.
            self.data_start = self.data_end = max(self.offset, os.fstat(self.fd).st_size)
            return
        self.data_end = os.lseek(self.fd, self.data_start, os.SEEK_HOLE)


def _identity(path: str | Path | None) -> tuple[int, int] | None:
    """(device, inode) of ``path``, to recognise it under another name; None if there is none."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _with_times(entry: DirEntry, st: os.stat_result) -> DirEntry:
    """Return ``entry`` with the host's atime and ctime (stat before reading: a read moves the atime)."""
    return entry._replace(atime_ns=st.st_atime_ns, ctime_ns=st.st_ctime_ns)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
