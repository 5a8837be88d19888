"""Export a store path to the host: contents, modes, mtimes, symlinks and special files.

A file's holes (runs of all-zero chunks, known by their ids) are recreated as
holes by seeking past them, as restic's sparse restore does, so a sparse file
takes as little host space as it did when imported.

The ``user.*`` extended attributes and POSIX ACLs an entry keeps are set on
its file or directory (unless ``xattrs`` is False), before its mode and mtime;
a directory's only after its contents, so a default ACL is not inherited by
files that did not have it.

Everything is created relative to directory file descriptors the export
itself opened, with O_NOFOLLOW and O_EXCL, and every name was validated when
its directory node was decoded (no '/', '.', '..' or NUL). So no name in the
store, and no symlink the export itself creates or finds, can make it write
outside the target directory. Directory modes and mtimes are set after their
contents, so writing into a read-only directory still works.

FIFOs, sockets and devices are recreated with mknod(2) (issue #12). Sockets
are recreated as socket files, as ``cp -a`` and rsync (keeping specials) do
(restic skips them): nothing listens on one, but the tree comes back the
same. Creating a device needs CAP_MKNOD (root): where the host refuses it,
the device is skipped with a warning and the export goes on, as ``tar``
does, so an unprivileged restore of a tree with a few device nodes still
brings back everything else.

Hard links (issue #12): names of one link group (``objects.LINK_XATTR``)
in one scope (the nearest entry at or above them that an import, clone,
mkdir or write created) are exported as one host file with several names.
The first name is written, with its owner, xattrs, mode and times, on the
walking thread; each later name with the same contents and metadata is made
with link(2) from it, and checked to be that very inode (else it is removed
and written as a file of its own). A name whose contents or metadata differ
from the first's (it was changed on its own), or whose link the host
refuses (EMLINK, a directory without search permission), is written as a
separate file. Names in different scopes (a tree and its clone) are never
linked to each other.

Export never destroys what it does not own. Without ``force`` nothing that
exists is replaced. With ``force``, a name the export writes may hold a
regular file, a symlink (replaced as a link, never followed) or an empty
directory, which are replaced, or a directory where the store has one, which
is merged into; a device, FIFO or socket, or a non-empty directory where a
non-directory goes, stops the export with a ConflictError naming it. Nothing
is ever opened for writing without O_CREAT|O_EXCL|O_NOFOLLOW, and a name is
replaced by first renaming what stands there aside and checking that what was
moved is still a file or symlink, so a device swapped in meanwhile is put back,
not removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from zerofs.content import iter_file_pieces, write_all
from zerofs.dirnodes import list_dir
from zerofs.errors import ConflictError, Hint, HostIOError
from zerofs.history import head
from zerofs.objects import SPECIAL_TYPES, DirEntry, Kind, ObjectId, SpecialNode, SymlinkNode, is_kept_xattr
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.tree import lookup, root_entry

EXPORT_THREADS = 1
"""One writer beside the walk measured best on 2 cores: (b) to tmpfs in 1.05-1.33 s, 1.6-2.0 s with 2, 2.0-3.0 s with 4.

Every syscall a writer makes hands the GIL back and forth; more writers add
that contention (and kernel lock contention on the directory) faster than
they add work done. A tree of larger files (src) took as long with 1 as with 2.
"""
FILES_PER_TASK = 16
"""Files of one directory handed to the writer at a time: a future per file cost a third of an export of (b)."""
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote."""

    files: int
    dirs: int
    symlinks: int
    bytes_written: int
    specials: int = 0
    """FIFOs, sockets and devices created."""
    warnings: tuple[str, ...] = ()
    """One line per special file the host refused (a device, when not root)."""
    hardlinks: int = 0
    """File names made as links to a name written before (counted in ``files`` too)."""


@dataclass
class _Counts:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_written: int = 0
    specials: int = 0
    hardlinks: int = 0
    warnings: list[str] = field(default_factory=list)


def export_tree(
    repo: Repository,
    store_path: StorePath,
    host_path: Path,
    *,
    force: bool = False,
    on_file: Callable[[int, int], None] | None = None,
    commit_id: ObjectId | None = None,
    rev: str | None = None,
    on_warning: Callable[[str], None] | None = None,
    xattrs: bool = True,
) -> ExportResult:
    """Recreate ``store_path`` (in ``commit_id``, default HEAD) at ``host_path``.

    A directory is exported into ``host_path``, which must not exist or be
    empty unless ``force`` (then existing files of the same names are
    replaced). A file or symlink is written at ``host_path``. ``rev`` is how
    the user named ``commit_id`` (for errors). ``on_warning`` hears of each
    device the host would not let us create (also in the result's warnings).

    Raises:
        ConflictError: ``host_path`` exists (non-empty) and not ``force``, or
            something export never replaces is in the way.
        HostIOError: the host refused a write (extended attributes included).
    """
    commit = head(repo)[1] if commit_id is None else repo.resolve_commit(commit_id)
    entry = (
        root_entry(commit.root_id, commit.time_ns)
        if store_path.is_root
        else lookup(repo, commit.root_id, store_path, rev=rev)
    )
    target = Path(os.path.abspath(host_path))
    counts = _Counts()
    executor = ThreadPoolExecutor(EXPORT_THREADS, thread_name_prefix="zerofs-export")
    exporter = _Exporter(repo, counts, force, on_file, executor, xattrs, on_warning)
    try:
        parent_fd = os.open(target.parent, _DIR_FLAGS)
    except FileNotFoundError as exc:
        raise HostIOError(
            f"parent directory does not exist: {target.parent} (create it first: mkdir -p {target.parent})"
        ) from exc
    except OSError as exc:
        raise _unusable_parent(target.parent) or HostIOError(f"cannot open {target.parent}: {exc.strerror}") from exc
    try:
        if entry.kind is Kind.DIR:
            _check_target_dir(target, force)
        else:
            _check_target_file(target, force, store_path)
        exporter.export_entry(parent_fd, os.fsencode(target.name), entry, is_top=True)
    except OSError as exc:
        raise HostIOError(f"export to {target} failed: {exc.strerror or exc}") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        os.close(parent_fd)
    return ExportResult(
        counts.files,
        counts.dirs,
        counts.symlinks,
        counts.bytes_written,
        counts.specials,
        tuple(counts.warnings),
        counts.hardlinks,
    )


def _unusable_parent(parent: Path) -> ConflictError | None:
    """The error naming the first component of ``parent`` that is not a directory, if one is not.

    The export opens ``parent`` without following a symlink there (the
    components above it are followed, as the user named them).
    """
    for prefix in (*reversed(parent.parents), parent):
        try:
            mode = os.lstat(prefix).st_mode
        except OSError:
            return None
        try:
            followed = os.stat(prefix).st_mode
        except OSError as exc:  # a dangling symlink, or a loop
            return ConflictError(f"{prefix} is a symlink that leads nowhere ({exc.strerror})")
        if stat.S_ISLNK(mode) and prefix == parent and stat.S_ISDIR(followed):
            return ConflictError(
                f"{prefix} is a symlink, which export never follows "
                f"(name the directory it points to: {os.path.realpath(prefix)})"
            )
        if not stat.S_ISDIR(followed):
            link = "symlink to a " if stat.S_ISLNK(mode) else ""
            return ConflictError(f"{prefix} is a {link}{_kind_name(followed)}, not a directory")
    return None


def _check_target_dir(target: Path, force: bool) -> None:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):  # a symlink too: the target itself is never followed
        raise ConflictError(f"{target} exists and is a {_kind_name(st.st_mode)}, not a directory")
    if any(target.iterdir()) and not force:
        raise ConflictError(f"{target} is not empty", hint=Hint.WRITE_INTO)


def _check_target_file(target: Path, force: bool, store_path: StorePath) -> None:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):  # a forced export would not replace it either
        raise ConflictError(
            f"{target} is a directory (name a path inside it, such as {target / os.fsdecode(store_path.name)})"
        )
    if not _is_replaceable(st.st_mode):
        raise ConflictError(_never_replaced(str(target), st.st_mode))
    if not force:
        raise ConflictError(f"{target} already exists", hint=Hint.REPLACE)


def _kind_name(mode: int) -> str:
    """What a host file is, for a message ("character device", "FIFO", ...)."""
    kinds = (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for is_kind, name in kinds if is_kind(mode)), "special file")


def _is_replaceable(mode: int) -> bool:
    """True for what a forced export may remove to write its own: a regular file or a symlink (never followed)."""
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _never_replaced(path: str, mode: int) -> str:
    return f"{path} is in the way: it is a {_kind_name(mode)}, which export never replaces (move it away first)"


def _write_contents(repo: Repository, fd: int, entry: DirEntry) -> None:
    """Write a file's contents to a new, empty file; a stored hole becomes a hole (seek past it, then ftruncate)."""
    has_holes = False
    for piece in iter_file_pieces(repo, entry.id):
        if isinstance(piece, int):
            os.lseek(fd, piece, os.SEEK_CUR)
            has_holes = True
        else:
            write_all(fd, piece)
    if has_holes:
        os.ftruncate(fd, entry.size_bytes)


def _host_path(dir_fd: int, name: bytes) -> str:
    """The host path of ``name`` in the directory open as ``dir_fd``, for a message (just the name if unknown)."""
    try:
        return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fsdecode(name))
    except OSError:
        return os.fsdecode(name)


def _process_umask() -> int:
    """Read this process's umask without changing it (Linux 4.7+; else assume 0o777)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777


_LinkKey: TypeAlias = tuple[int, tuple[object, ...]]
"""A name that may be linked to another: scope, link id, and what both names must agree on."""


@dataclass(frozen=True, slots=True)
class _Written:
    """The first name of a link group written by this export: where it is and which inode it is."""

    path: bytes
    """Relative to the export's top directory."""
    device: int
    inode: int


def _link_key(scope: int, entry: DirEntry) -> _LinkKey:
    return (scope, entry.link_key())


class _Exporter:
    """Writes a tree; files of one directory are written on a thread pool, a few to a task.

    Creating, writing and closing files, reading records, decompressing and
    hashing all release the GIL, so the writer and the walk overlap. A
    directory's mode and mtime are set, and its descriptor closed, only after
    every file in it is done.
    """

    def __init__(
        self,
        repo: Repository,
        counts: _Counts,
        force: bool,
        on_file: Callable[[int, int], None] | None,
        executor: Executor,
        xattrs: bool,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.repo = repo
        self.xattrs = xattrs
        self.counts = counts
        self.force = force
        self.on_file = on_file
        self.executor = executor
        self.on_warning = on_warning
        self.lock = threading.Lock()
        self.is_root = os.geteuid() == 0
        self.owner = (os.geteuid(), os.getegid())
        self.umask = _process_umask()
        self.dirs: dict[int, tuple[bytes, int]] = {}
        """Each open directory's descriptor: its path from the top directory, and its link scope."""
        self.scopes = 0
        self.top_fd = -1
        self.written: dict[_LinkKey, _Written] = {}

    def export_entry(self, dir_fd: int, name: bytes, entry: DirEntry, is_top: bool = False) -> None:
        if entry.kind is Kind.DIR:
            self.export_dir(dir_fd, name, entry, may_exist=is_top or self.force, is_top=is_top)
        elif entry.kind is Kind.FILE:
            self.export_file(dir_fd, name, entry)
        elif entry.kind is Kind.SPECIAL:
            self.export_special(dir_fd, name, entry)
        else:
            self.export_symlink(dir_fd, name, entry)

    def _make_room(self, dir_fd: int, name: bytes, *, for_dir: bool) -> None:
        """In a forced export, remove what may be replaced at ``name`` (see the module docstring), or refuse.

        Raises:
            ConflictError: a device, FIFO or socket, or a non-empty directory where a non-directory goes.
        """
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not for_dir:
                self._remove_empty_dir(dir_fd, name)
            return
        if not _is_replaceable(st.st_mode):
            raise ConflictError(_never_replaced(_host_path(dir_fd, name), st.st_mode))
        self._remove_aside(dir_fd, name)

    def _remove_empty_dir(self, dir_fd: int, name: bytes) -> None:
        try:
            os.rmdir(name, dir_fd=dir_fd)  # removes only an empty directory; never follows a link
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise ConflictError(
                f"cannot replace directory {_host_path(dir_fd, name)} with a file: it is not empty"
                " (move it away and export again)"
            ) from exc

    def _remove_aside(self, dir_fd: int, name: bytes) -> None:
        """Remove the file or symlink at ``name``; put back anything else that took its place meanwhile.

        Checking, then unlinking, would remove whatever was swapped in between;
        renaming aside first makes the check apply to what is removed.
        """
        aside = b".zerofs-replaced-" + os.urandom(8).hex().encode()
        os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        st = os.stat(aside, dir_fd=dir_fd, follow_symlinks=False)
        if _is_replaceable(st.st_mode):
            os.unlink(aside, dir_fd=dir_fd)
            return
        if stat.S_ISDIR(st.st_mode):
            os.rename(aside, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:  # link(2) fails rather than replace whatever now holds the name
            os.link(aside, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            os.unlink(aside, dir_fd=dir_fd)
        raise ConflictError(_never_replaced(_host_path(dir_fd, name), st.st_mode))

    def _in_the_way(self, dir_fd: int, name: bytes) -> ConflictError:
        """The error for a name that holds what the export may not use (it found it there)."""
        path = _host_path(dir_fd, name)
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            return ConflictError(f"{path} is in the way (it changed while exporting)")
        if not (stat.S_ISDIR(mode) or _is_replaceable(mode)):
            return ConflictError(_never_replaced(path, mode))
        followed = ", which export never follows" if stat.S_ISLNK(mode) else ""
        text = f"{path} is in the way: it is a {_kind_name(mode)}{followed}"
        if self.force:
            return ConflictError(f"{text} (move it away first)")
        return ConflictError(text, hint=Hint.REPLACE)

    def export_dir(self, parent_fd: int, name: bytes, entry: DirEntry, may_exist: bool, is_top: bool = False) -> None:
        # An existing top-level target was checked (absent, empty, or a forced export) by the caller.
        if self.force and not is_top:
            self._make_room(parent_fd, name, for_dir=True)
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            if not may_exist:
                raise self._in_the_way(parent_fd, name) from None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise self._in_the_way(parent_fd, name) from exc
        self.enter_dir(fd, parent_fd, name, entry, is_top)
        try:
            files: list[Future[None]] = []
            group: list[DirEntry] = []
            try:
                for child in list_dir(self.repo, entry.id):
                    if child.kind is Kind.FILE and child.is_linked:
                        self.export_linked(fd, child)
                    elif child.kind is Kind.FILE:
                        group.append(child)
                        if len(group) >= FILES_PER_TASK:
                            files.append(self.executor.submit(self.export_files, fd, group))
                            group = []
                    else:
                        self.export_entry(fd, child.name, child)
                if group:
                    files.append(self.executor.submit(self.export_files, fd, group))
            finally:
                for done in files:
                    done.result()
            self._set_owner(fd, entry)
            self._set_xattrs(fd, entry)
            os.chmod(fd, stat.S_IMODE(entry.mode))
            os.utime(fd, ns=(entry.atime_ns, entry.mtime_ns))
        finally:
            del self.dirs[fd]
            os.close(fd)
        self.counts.dirs += 1

    def enter_dir(self, fd: int, parent_fd: int, name: bytes, entry: DirEntry, is_top: bool) -> None:
        """Note where an opened directory is, and its link scope: a new one at the top or where a name was created."""
        if is_top:
            self.top_fd = fd
            path = b""
        else:
            path = os.path.join(self.dirs[parent_fd][0], name)
        if is_top or entry.is_link_scope:
            self.scopes += 1
            scope = self.scopes
        else:
            scope = self.dirs[parent_fd][1]
        self.dirs[fd] = (path, scope)

    def export_linked(self, dir_fd: int, entry: DirEntry) -> None:
        """Export a name of a link group (on the walking thread): a link to the group's first name, if it agrees."""
        path, scope = self.dirs[dir_fd]
        key = _link_key(scope, entry)
        first = self.written.get(key)
        if first is not None and self.link(dir_fd, entry.name, first):
            return
        self.export_file(dir_fd, entry.name, entry)
        if first is None:
            st = os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=False)
            self.written[key] = _Written(os.path.join(path, entry.name), st.st_dev, st.st_ino)

    def link(self, dir_fd: int, name: bytes, first: _Written) -> bool:
        """Make ``name`` another name of the file written as ``first``; False if the host would not."""
        if self.force:
            self._make_room(dir_fd, name, for_dir=False)
        try:
            os.link(first.path, name, src_dir_fd=self.top_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise self._in_the_way(dir_fd, name) from None
        except OSError:  # too many links, no search permission on the way, another file system: write a copy
            return False
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (first.device, first.inode):  # the first name was swapped meanwhile
            os.unlink(name, dir_fd=dir_fd)
            return False
        with self.lock:
            self.counts.files += 1
            self.counts.hardlinks += 1
            if self.on_file is not None:
                self.on_file(self.counts.files, self.counts.bytes_written)
        return True

    def export_files(self, dir_fd: int, entries: list[DirEntry]) -> None:
        """Write files of one directory, one after another (on a pool thread)."""
        for entry in entries:
            self.export_file(dir_fd, entry.name, entry)

    def export_file(self, dir_fd: int, name: bytes, entry: DirEntry) -> None:
        if self.force:
            self._make_room(dir_fd, name, for_dir=False)
        mode = stat.S_IMODE(entry.mode)
        # Each syscall a worker makes is a GIL hand-off: skip the chmod when the
        # umask lets open() set the mode, and the chown when we own it already.
        is_plain_mode = mode & ~self.umask == mode and not mode & 0o7000
        try:
            fd = os.open(name, _FILE_FLAGS, mode if is_plain_mode else 0o600, dir_fd=dir_fd)
        except FileExistsError:
            raise self._in_the_way(dir_fd, name) from None
        try:
            _write_contents(self.repo, fd, entry)
            self._set_owner(fd, entry)
            self._set_xattrs(fd, entry)
            if not is_plain_mode:
                os.chmod(fd, mode)
            os.utime(fd, ns=(entry.atime_ns, entry.mtime_ns))
        finally:
            os.close(fd)
        with self.lock:
            self.counts.files += 1
            self.counts.bytes_written += entry.size_bytes
            if self.on_file is not None:
                self.on_file(self.counts.files, self.counts.bytes_written)

    def export_symlink(self, dir_fd: int, name: bytes, entry: DirEntry) -> None:
        if self.force:
            self._make_room(dir_fd, name, for_dir=False)
        target = self.repo.get_typed(entry.id, SymlinkNode).target
        try:
            os.symlink(target, name, dir_fd=dir_fd)
        except FileExistsError:
            raise self._in_the_way(dir_fd, name) from None
        with contextlib.suppress(OSError):
            if self.is_root:
                os.chown(name, entry.uid, entry.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.utime(name, ns=(entry.atime_ns, entry.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        self.counts.symlinks += 1

    def export_special(self, dir_fd: int, name: bytes, entry: DirEntry) -> None:
        """Recreate a FIFO, socket or device; a device the host refuses is a warning, not an error."""
        if self.force:
            self._make_room(dir_fd, name, for_dir=False)
        node = self.repo.get_typed(entry.id, SpecialNode)
        try:
            os.mknod(name, node.file_type | 0o600, node.rdev, dir_fd=dir_fd)
        except FileExistsError:
            raise self._in_the_way(dir_fd, name) from None
        except PermissionError as exc:
            if not node.is_device:
                raise
            self._warn(
                f"cannot create {SPECIAL_TYPES[node.file_type]} {_host_path(dir_fd, name)} "
                f"({os.major(node.rdev)},{os.minor(node.rdev)}): {exc.strerror} "
                "(creating a device needs root, with CAP_MKNOD); skipped"
            )
            return
        # By name, never following a symlink: the node cannot be opened without blocking (a FIFO) or side effects.
        if self.is_root and (entry.uid, entry.gid) != self.owner:
            os.chown(name, entry.uid, entry.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.chmod(name, stat.S_IMODE(entry.mode), dir_fd=dir_fd, follow_symlinks=False)
        os.utime(name, ns=(entry.atime_ns, entry.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        self.counts.specials += 1

    def _warn(self, text: str) -> None:
        self.counts.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def _set_xattrs(self, fd: int, entry: DirEntry) -> None:
        """Set the kept extended attributes and ACLs of ``entry`` (never ``zerofs.created``)."""
        if not self.xattrs or not entry.xattrs:
            return
        for key, value in entry.xattrs:
            if not is_kept_xattr(key):
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                path = os.readlink(f"/proc/self/fd/{fd}")
                raise HostIOError(
                    f"cannot set {os.fsdecode(key)} on {path}: {exc.strerror}", hint=Hint.NO_XATTRS
                ) from exc

    def _set_owner(self, fd: int, entry: DirEntry) -> None:
        # Like tar: restore ownership only when running as root.
        if self.is_root and (entry.uid, entry.gid) != self.owner:
            try:
                os.fchown(fd, entry.uid, entry.gid)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EINVAL):
                    raise
