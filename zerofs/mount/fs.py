"""The pyfuse3 file system: kernel requests in, overlay operations out.

Everything runs on one trio event loop. A commit freezes what changed and
stores it on a worker thread while requests go on changing the tree (the
overlay keeps what changed meanwhile for the next commit); only a write or
truncation of a file whose contents the commit is storing waits for it
(``_settled``). Another process's
commits are noticed by polling HEAD (a read transaction every
``POLL_SECONDS``): a clean mount moves onto the new tree at once and tells
the kernel what to forget; a mount with changes commits them first, merged
three ways onto the new HEAD (``tree.merge3``), so nothing written through
the mount is lost and the CLI's changes show up within a second.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Final

import pyfuse3
import trio

from zerofs.content import ContentWriter
from zerofs.errors import ZerofsError
from zerofs.history import HEAD, apply_change
from zerofs.merge import merge3
from zerofs.mount import control
from zerofs.mount.overlay import (
    ATIME_POLICIES,
    EMPTY_DIR,
    EMPTY_FILE,
    ROOT_INO,
    DirPlan,
    FsError,
    Inode,
    Overlay,
    atime_is_due,
)
from zerofs.objects import Commit, DirEntry, Kind, ObjectId, SpecialNode, SymlinkNode, special_node
from zerofs.repo import N, Repository, Staging

log = logging.getLogger("zerofs.mount")

TIMEOUT: Final = 60.0
"""Seconds the kernel may cache entries and attributes. Every change not made through the kernel (a
commit the mount follows, an atime it moves) is invalidated explicitly, so the length is only a cost:
past it, each stat pays a lookup (measured: 10,767 lstats 6 s after a tar -x took 0.59 s at 5 s, and
no request at all within the timeout)."""
POLL_SECONDS: Final = 0.3
RELEASE_SECONDS: Final = 1.0
"""How often the mount closes its descriptors of packs gc deleted (a few fstat calls)."""
PACK_IDLE_SECONDS: Final = 10.0
"""A mount with nothing to commit for this long closes its open pack: gc never rewrites a pack a
live writer holds, so a long-lived mount would otherwise keep the space of what was deleted from it."""
BLOCK: Final = 4096
XATTR_PREFIX: Final = b"user."


class ZerofsOperations(pyfuse3.Operations):
    """A read-write zerofs tree as a FUSE file system."""

    enable_writeback_cache = False

    def __init__(
        self,
        repo: Repository,
        commit_id: ObjectId,
        spill_dir: str,
        *,
        read_only: bool,
        commit_interval: float,
        follow: bool = True,
        atime: str = "relatime",
    ) -> None:
        """Serve the tree of ``commit_id``; ``read_only`` mounts never commit.

        ``follow``: move onto the commits other processes make (not for a
        mount of a fixed revision). ``atime``: when a read moves an atime
        (one of ``ATIME_POLICIES``; never in a read-only mount).
        """
        super().__init__()
        assert atime in ATIME_POLICIES
        self.repo = repo
        self.read_only = read_only
        self.atime = "noatime" if read_only else atime
        self.follow = follow
        self.commit_interval = commit_interval
        self.synced_commit = commit_id
        self.synced_root = repo.resolve_commit(commit_id).root_id
        self.overlay = Overlay(repo, self.synced_root, spill_dir, time.time_ns())
        self.lock = trio.Lock()
        """Held by a commit from its snapshot to its last step; one commit at a time."""
        self._committing: trio.Event | None = None
        self._is_holding = False
        """The commit running moves the mount onto others' changes: every change waits for it."""
        self._is_behind = False
        """HEAD holds others' changes the mount does not show: its last commit ended with more pending."""
        self._handles: dict[int, tuple[Inode, int]] = {}
        self._dir_handles: dict[int, tuple[Inode, list[tuple[bytes, Inode]]]] = {}
        self._next_fh = 1
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zerofs-commit")
        self.commits = 0
        self.last_error: str | None = None

    # -- attributes -----------------------------------------------------------

    def _attrs(self, inode: Inode, *, is_listing: bool = False) -> pyfuse3.EntryAttributes:
        """The attributes of an inode; ``is_listing``: for readdir, whose link counts the kernel never reads."""
        entry = inode.entry
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = inode.ino
        attrs.generation = 0
        attrs.entry_timeout = TIMEOUT
        attrs.attr_timeout = TIMEOUT
        attrs.st_mode = entry.mode
        attrs.st_nlink = self._link_count(inode, is_listing)
        attrs.st_uid = entry.uid
        attrs.st_gid = entry.gid
        attrs.st_rdev = self._special(inode).rdev if entry.kind is Kind.SPECIAL else 0
        size = inode.size if entry.kind is not Kind.DIR else 0
        attrs.st_size = size
        attrs.st_blksize = BLOCK
        attrs.st_blocks = (size + 511) // 512
        attrs.st_atime_ns = entry.atime_ns
        attrs.st_mtime_ns = entry.mtime_ns
        attrs.st_ctime_ns = entry.ctime_ns
        return attrs

    def _link_count(self, inode: Inode, is_listing: bool) -> int:
        """0 for a removed name still open; one per name (hard links); a directory: 2 and one per subdirectory."""
        if inode.parent is None and inode.ino != ROOT_INO:
            return 0
        if not inode.is_dir:
            return 1 + len(inode.aliases)
        if is_listing and inode.subdirs is None:
            return 2  # not worth reading a directory per name listed
        return 2 + self.overlay.subdir_count(inode)

    def _accessed(self, inode: Inode, *, is_open: bool = False) -> None:
        """A read of ``inode``: move its atime if the policy says so (stored by the next commit).

        The kernel forgets its cached atime after a read or readdir it sent us,
        not after an open (``is_open``): tell it then.
        """
        now_ns = time.time_ns()
        if not atime_is_due(inode.entry, now_ns, self.atime):
            return
        if is_open:
            # Attributes only: no lock the kernel holds during an open is taken, so this cannot deadlock.
            with contextlib.suppress(OSError):
                pyfuse3.invalidate_inode(inode.ino, attr_only=True)
        self.overlay.accessed(inode, now_ns)

    def _small_node(self, node_id: ObjectId, node_type: type[N]) -> N:
        """A symlink's or special file's node: made by this mount and not yet written, or stored."""
        pending = self.overlay.pending.get(node_id)
        if pending is not None and isinstance(pending[1], node_type):
            return pending[1]
        return self.repo.get_typed(node_id, node_type)

    def _special(self, inode: Inode) -> SpecialNode:
        return self._small_node(inode.entry.id, SpecialNode)

    async def _settled(self, node: Inode | None = None) -> None:
        """Wait while a commit needs what a request would change: call before changing the tree.

        A commit stores while the tree changes, but its thread reads the
        contents of the files it stores (``node``'s, if it is one of them),
        and a commit that moves the mount onto other processes' changes
        (``_is_holding``) needs the whole tree to stay as it is. No checkpoint
        when none of this holds: the request then runs to its end without
        another task in between, which is what makes it atomic.
        """
        while self._committing is not None and (
            self._is_holding or (node is not None and node.ino in self.overlay.storing)
        ):
            await self._committing.wait()

    def _writable(self) -> None:
        if self.read_only:
            raise FsError(errno.EROFS)

    def _child(self, parent_ino: int, name: bytes) -> Inode:
        kid = self.overlay.lookup(self.overlay.get(parent_ino), name)
        if kid is None:
            raise FsError(errno.ENOENT)
        return kid

    # -- lookups --------------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        with _errors():
            parent = self.overlay.get(parent_inode)
            if name == b".":
                inode = parent
            elif name == b"..":
                inode = parent.parent or parent
            else:
                if len(name) > 255:
                    raise FsError(errno.ENAMETOOLONG)
                found = self.overlay.lookup(parent, name)
                if found is None:  # every create is preceded by one: answered without a second exception
                    raise pyfuse3.FUSEError(errno.ENOENT)
                inode = found
            inode.lookups += 1
            return self._attrs(inode)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            inode = self.overlay.inodes.get(ino)
            if inode is not None:
                inode.lookups -= count
                self.overlay.release_if_unused(inode)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        with _errors():
            return self._attrs(self.overlay.get(inode))

    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        with _errors():
            self._writable()
            node = self.overlay.get(inode)
            await self._settled(node if fields.update_size else None)
            entry = node.entry
            now = time.time_ns()
            if fields.update_size:
                if node.is_dir:
                    raise FsError(errno.EISDIR)
                if node.entry.kind is not Kind.FILE:  # the kernel truncates regular files only
                    raise FsError(errno.EINVAL)
                self.overlay.file_data(node).truncate(attr.st_size)
                self.overlay.wrote(node, now)
                entry = node.entry
            if fields.update_mode:
                entry = entry._replace(mode=(entry.mode & ~0o7777) | (attr.st_mode & 0o7777))
            if fields.update_uid:
                entry = entry._replace(uid=attr.st_uid)
            if fields.update_gid:
                entry = entry._replace(gid=attr.st_gid)
            if fields.update_atime:
                entry = entry._replace(atime_ns=attr.st_atime_ns)
            if fields.update_mtime:
                entry = entry._replace(mtime_ns=attr.st_mtime_ns)
            if _is_change(fields):  # even to the same value: chmod, chown and utimensat set the ctime
                self.overlay.set_entry(node, entry, now)
            return self._attrs(node)

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        with _errors():
            node = self.overlay.get(inode)
            if node.entry.kind is not Kind.SYMLINK:
                raise FsError(errno.EINVAL)
            return self._small_node(node.entry.id, SymlinkNode).target

    # -- directories ----------------------------------------------------------

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        with _errors():
            node = self.overlay.get(inode)
            if not node.is_dir:
                raise FsError(errno.ENOTDIR)
            fh = self._next_fh
            self._next_fh += 1
            self._dir_handles[fh] = (node, self.overlay.children(node))
            return fh

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        with _errors():
            directory, kids = self._dir_handles[fh]
            if start_id == 0:  # the first read, or after rewinddir: show the directory as it is now
                kids = self.overlay.children(directory)
                self._dir_handles[fh] = (directory, kids)
                self._accessed(directory)
            # Offsets 0 and 1 are "." and ".."; the kernel takes no reference on them.
            for index in range(start_id, len(kids) + 2):
                if index < 2:
                    kid = directory if index == 0 else (directory.parent or directory)
                    name = b"." if index == 0 else b".."
                else:
                    name, kid = kids[index - 2]
                if not pyfuse3.readdir_reply(token, name, self._attrs(kid, is_listing=True), index + 1):
                    return
                if index >= 2:
                    kid.lookups += 1

    async def releasedir(self, fh: int) -> None:
        self._dir_handles.pop(fh, None)

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        with _errors():
            self._writable()
            await self._settled()
            entry = _new_entry(name, Kind.DIR, stat.S_IFDIR | (mode & 0o7777), ctx)
            node = self.overlay.create(self.overlay.get(parent_inode), entry, EMPTY_DIR)
            node.lookups += 1
            return self._attrs(node)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        with _errors():
            self._writable()
            await self._settled()
            self.overlay.rmdir(self.overlay.get(parent_inode), name)

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        with _errors():
            self._writable()
            await self._settled()
            entry = _new_entry(name, Kind.SYMLINK, stat.S_IFLNK | 0o777, ctx)._replace(size_bytes=len(target))
            node = self.overlay.create(self.overlay.get(parent_inode), entry, SymlinkNode(target))
            node.lookups += 1
            return self._attrs(node)

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        with _errors():
            self._writable()
            await self._settled()
            self.overlay.unlink(self.overlay.get(parent_inode), name)

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        with _errors():
            self._writable()
            await self._settled()
            old_parent = self.overlay.get(parent_inode_old)
            new_parent = self.overlay.get(parent_inode_new)
            if flags & pyfuse3.RENAME_EXCHANGE:
                self.overlay.exchange(old_parent, name_old, new_parent, name_new)
            elif flags & ~pyfuse3.RENAME_NOREPLACE:
                raise FsError(errno.EINVAL)
            else:
                noreplace = bool(flags & pyfuse3.RENAME_NOREPLACE)
                self.overlay.rename(old_parent, name_old, new_parent, name_new, noreplace=noreplace)

    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        with _errors():
            self._writable()
            await self._settled()
            node = self.overlay.get(inode)
            self.overlay.link(node, self.overlay.get(new_parent_inode), new_name, time.time_ns())
            node.lookups += 1
            return self._attrs(node)

    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """Create a regular file, FIFO, socket (bind(2)) or device (the kernel checks CAP_MKNOD first)."""
        with _errors():
            self._writable()
            await self._settled()
            if stat.S_ISREG(mode):
                node = self._create_file(parent_inode, name, mode, ctx)
            else:
                node = self._create_special(parent_inode, name, mode, rdev, ctx)
            node.lookups += 1
            return self._attrs(node)

    def _create_special(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> Inode:
        try:
            node = special_node(mode, rdev)
        except ValueError:
            raise FsError(errno.EINVAL) from None
        entry = _new_entry(name, Kind.SPECIAL, node.file_type | (mode & 0o7777), ctx)
        return self.overlay.create(self.overlay.get(parent_inode), entry, node)

    # -- files ------------------------------------------------------------------

    def _create_file(self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext) -> Inode:
        entry = _new_entry(name, Kind.FILE, stat.S_IFREG | (mode & 0o7777), ctx)
        return self.overlay.create(self.overlay.get(parent_inode), entry, EMPTY_FILE)

    def _open_handle(self, node: Inode, flags: int) -> pyfuse3.FileInfo:
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = (node, flags)
        node.opens += 1
        info = pyfuse3.FileInfo()
        info.fh = fh
        info.keep_cache = True
        return info

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        with _errors():
            self._writable()
            await self._settled()
            node = self._create_file(parent_inode, name, mode, ctx)
            node.lookups += 1
            return self._open_handle(node, flags), self._attrs(node)

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        with _errors():
            node = self.overlay.get(inode)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            if node.entry.kind is Kind.SPECIAL:  # the kernel opens FIFOs and devices itself; sockets never open
                raise FsError(errno.ENXIO)
            if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
                self._writable()
            if flags & os.O_TRUNC:
                await self._settled(node)
                self.overlay.file_data(node).truncate(0)
                self.overlay.wrote(node, time.time_ns())
            elif flags & os.O_ACCMODE == os.O_RDONLY:
                # Reads the kernel's page cache answers never reach read(): count the open as the access.
                self._accessed(node, is_open=True)
            return self._open_handle(node, flags)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        with _errors():
            node, _ = self._handles[fh]
            self._accessed(node)
            if node.data is None:
                if node.entry.size_bytes == 0:
                    return b""
                self.overlay.file_data(node)
            assert node.data is not None
            return node.data.read(off, size)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        with _errors():
            self._writable()
            node, flags = self._handles[fh]
            await self._settled(node)
            data = self.overlay.file_data(node)
            if flags & os.O_APPEND:
                off = data.size
            written = data.write(off, buf)
            self.overlay.wrote(node, time.time_ns())
            return written

    async def release(self, fh: int) -> None:
        node, _ = self._handles.pop(fh)
        node.opens -= 1
        if node.data is not None and not node.data.dirty and node.opens == 0:
            node.data.close()
            node.data = None
        self.overlay.release_if_unused(node)

    async def fsync(self, fh: int, datasync: bool) -> None:
        if not self.read_only:
            await self.commit("fsync")

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        if not self.read_only:
            await self.commit("fsync")

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        host = os.statvfs(self.overlay.spill_dir)  # beside the repository (or its host cache, on S3)
        data = pyfuse3.StatvfsData()
        data.f_bsize = host.f_bsize
        data.f_frsize = host.f_frsize
        data.f_blocks = host.f_blocks
        data.f_bfree = host.f_bfree
        data.f_bavail = host.f_bavail
        data.f_files = max(host.f_files, len(self.overlay.inodes))
        data.f_ffree = host.f_ffree
        data.f_favail = host.f_favail
        data.f_namemax = 255
        return data

    # -- extended attributes ----------------------------------------------------

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        with _errors():
            self._writable()
            _check_xattr(name)
            await self._settled()
            node = self.overlay.get(inode)
            xattrs = dict(node.entry.xattrs)
            xattrs[name] = value
            self.overlay.set_entry(node, node.entry._replace(xattrs=tuple(sorted(xattrs.items()))), time.time_ns())

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        # The kernel asks for security.capability on every write(): answered without a second exception.
        if not name.startswith(XATTR_PREFIX):
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)
        with _errors():
            for key, value in self.overlay.get(inode).entry.xattrs:
                if key == name:
                    return value
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        with _errors():
            return [k for k, _ in self.overlay.get(inode).entry.xattrs if k.startswith(XATTR_PREFIX)]

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        with _errors():
            self._writable()
            _check_xattr(name)
            await self._settled()
            node = self.overlay.get(inode)
            xattrs = dict(node.entry.xattrs)
            if xattrs.pop(name, None) is None:
                raise FsError(pyfuse3.ENOATTR)
            self.overlay.set_entry(node, node.entry._replace(xattrs=tuple(sorted(xattrs.items()))), time.time_ns())

    # -- commits ------------------------------------------------------------------

    async def commit(self, reason: str) -> None:
        """Commit what changed (if anything), merged onto HEAD; then show the merged tree."""
        async with self.lock:
            message = f"mount: {self.overlay.summary()}"
            plan = self.overlay.snapshot()
            if plan is None:
                return
            self._committing = trio.Event()
            self._is_holding = self._is_behind
            try:
                try:
                    outcome = await trio.to_thread.run_sync(self._store_and_commit, plan, message, reason)
                except BaseException:
                    self.overlay.abandoned()
                    raise
                results, commit_id, merged_root = outcome
                self.overlay.committed(plan, results)
                self.commits += 1
                invalidations = self._move_to(commit_id, merged_root)
            except ZerofsError as exc:
                self.last_error = str(exc)
                log.error("commit failed, changes kept in memory: %s", exc)
                raise pyfuse3.FUSEError(errno.EIO) from exc
            except Exception as exc:
                # A bug must cost this one call (EIO), never the mount and what it holds.
                self.last_error = f"internal error: {exc!r}"
                log.exception("commit failed (a bug in zerofs), changes kept in memory")
                raise pyfuse3.FUSEError(errno.EIO) from exc
            finally:
                self.overlay.storing.clear()  # even after a bug: a writer waiting must not wait forever
                done, self._committing, self._is_holding = self._committing, None, False
                done.set()
        await self._invalidate(invalidations)

    async def commit_for_command(self) -> str | None:
        """Commit every write served so far, for a command about to run; return why it failed, or None."""
        if self.read_only:
            return None
        try:
            with trio.CancelScope(shield=True):  # a commit cut short would skip its invalidations
                await self.commit("command")
        except pyfuse3.FUSEError:
            return self.last_error or "the commit failed"
        return None

    async def serve_commands(self, listener: socket.socket) -> None:
        """Answer commands on the control socket until cancelled (the protocol: ``zerofs.mount.control``)."""
        server = trio.socket.from_stdlib_socket(listener)
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await server.accept()
                nursery.start_soon(self._answer_command, conn)

    async def _answer_command(self, conn: trio.socket.SocketType) -> None:
        with conn:
            try:
                if not control.peer_allowed(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, control.CRED_SIZE)):
                    return
                request = b""
                with trio.move_on_after(control.SILENCE_SECONDS):
                    request = await conn.recv(len(control.REQUEST))
                if request != control.REQUEST:
                    return
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_keep_saying_wait, conn)
                    error = await self.commit_for_command()
                    nursery.cancel_scope.cancel()
                reply = control.OK if error is None else control.ERROR + error.encode("utf-8", "replace") + b"\n"
                await conn.send(reply)
            except OSError:
                pass  # the command went away: nothing to tell it

    def _store_and_commit(
        self, plan: DirPlan, message: str, reason: str
    ) -> tuple[dict[int, DirEntry], ObjectId, ObjectId]:
        with self.repo.writer_lease():
            with self.repo.batch(index_later=True) as batch:
                sink = Staging(self.repo, batch)
                writer = ContentWriter(self.repo, sink, self._executor, workers=2)
                results = self.overlay.store_plan(plan, sink, writer)
            ours = results[ROOT_INO].id
            base = self.synced_root

            def change(staging: Staging, head_root: ObjectId, now_ns: int) -> ObjectId:
                return merge3(staging, base, ours, head_root)

            outcome = apply_change(self.repo, change, message=message, operation={"op": "mount", "reason": reason})
            commit_id = outcome.commit_id or self.repo.head_id()
            return results, commit_id, outcome.root_id

    def _move_to(self, commit_id: ObjectId, root_id: ObjectId) -> list[tuple[int, bytes | None]]:
        if self.overlay.root.dirty:
            # Changed while the commit stored: keep showing our tree. The next commit merges it onto
            # HEAD from the root just stored; if others' changes came in with this one, it comes at
            # once (``follow_head``) and holds every change until it is done, so they show.
            self._is_behind = root_id != self.overlay.root.entry.id
            self.synced_commit = commit_id
            self.synced_root = self.overlay.root.entry.id
            return []
        self._is_behind = False
        invalidations: list[tuple[int, bytes | None]] = []
        self.overlay.rebase(root_id, lambda ino, name: invalidations.append((ino, name)))
        self.synced_commit = commit_id
        self.synced_root = root_id
        return invalidations

    async def _invalidate(self, invalidations: list[tuple[int, bytes | None]]) -> None:
        if invalidations:
            await trio.to_thread.run_sync(_invalidate_all, invalidations)

    async def follow_head(self) -> None:
        """Notice commits made by other processes: move onto them (committing ours first)."""
        head_id = self.repo.get_ref(HEAD)
        if head_id is None or (head_id == self.synced_commit and not self._is_behind):
            return
        if self.overlay.root.dirty:
            await self.commit("another process committed")
            return
        async with self.lock:
            if self.overlay.root.dirty or (head_id == self.synced_commit and not self._is_behind):
                return
            commit = self.repo.get_typed(head_id, Commit)
            invalidations = self._move_to(head_id, commit.root_id)
        await self._invalidate(invalidations)

    async def background(self) -> None:
        """Poll HEAD and commit on the interval, until cancelled; close an idle mount's pack."""
        last_commit = last_change = last_release = time.monotonic()
        while True:
            await trio.sleep(POLL_SECONDS)
            if not self.follow:
                continue
            try:
                await self.follow_head()
                if self.read_only:
                    continue
                now = time.monotonic()
                if self.overlay.root.dirty and now - last_commit >= self.commit_interval:
                    await self.commit("interval")
                    last_commit = last_change = time.monotonic()
                elif not self.overlay.root.dirty:
                    last_commit = now
                    if now - last_change >= PACK_IDLE_SECONDS:
                        await self._close_pack()
                        last_change = now
                if now - last_release >= RELEASE_SECONDS:
                    self.repo.release_deleted_packs()  # gc deleted packs the mount read: their space comes back
                    last_release = now
            except pyfuse3.FUSEError:
                pass  # logged by commit; tried again on the next round

    async def _close_pack(self) -> None:
        """Close the mount's open pack (with its trailer), so gc can reclaim what was deleted from it."""
        async with self.lock:
            await trio.to_thread.run_sync(self.repo.close_open_pack)


async def _keep_saying_wait(conn: trio.socket.SocketType) -> None:
    """Tell a waiting command, every second, that its commit is still running."""
    with suppress(OSError):
        while True:
            await trio.sleep(control.HEARTBEAT_SECONDS)
            await conn.send(control.WAIT)


def _invalidate_all(invalidations: list[tuple[int, bytes | None]]) -> None:
    for ino, name in invalidations:
        try:
            if name is None:
                pyfuse3.invalidate_inode(ino, attr_only=False)
            else:
                pyfuse3.invalidate_entry(ino, name)
        except OSError:
            pass  # the kernel no longer knows it: nothing to forget


def _new_entry(name: bytes, kind: Kind, mode: int, ctx: pyfuse3.RequestContext) -> DirEntry:
    now_ns = time.time_ns()
    return DirEntry(name, kind, mode, ctx.uid, ctx.gid, now_ns, 0, b"", atime_ns=now_ns, ctime_ns=now_ns)


def _is_change(fields: pyfuse3.SetattrFields) -> bool:
    """True if a setattr changes anything (the size is handled, with the mtime, by ``Overlay.wrote``)."""
    return (
        fields.update_mode
        or fields.update_uid
        or fields.update_gid
        or fields.update_atime
        or fields.update_mtime
        or fields.update_ctime
    )


def _check_xattr(name: bytes) -> None:
    if not name.startswith(XATTR_PREFIX):
        raise FsError(errno.EOPNOTSUPP)


class _errors:
    """Turn FsError (and anything unexpected) into the FUSEError the kernel understands."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, pyfuse3.FUSEError):
            return
        if isinstance(exc, FsError):
            raise pyfuse3.FUSEError(exc.errno) from None
        if isinstance(exc, OSError) and exc.errno is not None:
            log.warning("host error: %s", exc)
            raise pyfuse3.FUSEError(exc.errno) from None
        if isinstance(exc, ZerofsError):
            log.error("%s", exc)
            raise pyfuse3.FUSEError(errno.EIO) from None
        if isinstance(exc, Exception):
            log.exception("unexpected error")
            raise pyfuse3.FUSEError(errno.EIO) from None
