#!/usr/bin/env python3
"""A do-nothing pyfuse3 file system: the ceiling of any pyfuse3 mount on this machine.

Not part of zerofs. ``benchmarks/mount_bench.py`` mounts it beside zerofs and
reports every zerofs figure against it: what is left between the two is
zerofs's own work, what is left between it and a local directory is FUSE,
pyfuse3 and trio. It keeps everything in memory and stores nothing; it is
mounted with the options of ``zerofs mount`` (``zerofs/mount/run.py``:
pyfuse3's default options, ``fsname``, ``subtype``, ``noatime``) and answers
with zerofs's timeouts (5 s for entries and attributes) and its answers to
the requests that cost round trips (ENOATTR for a missing extended attribute,
so the kernel keeps asking; ENOSYS for flush; a plain ENOENT for a missing
name, so the kernel caches no negative entry).

    python benchmarks/nullfs.py MOUNTPOINT [--discard] [--counts FILE] [--trace]

Runs in the foreground until unmounted (``fusermount3 -u MOUNTPOINT``) or
sent SIGTERM/SIGINT. ``--discard`` throws written data away (a file keeps
only its size and reads back as zeros): the ceiling for sequential writes.
``--counts FILE`` counts the requests by kind (``zerofs.mount.counting``)
and writes them to FILE as JSON on SIGUSR1 and at exit. ``--trace`` logs
every request with its inode numbers to stderr. The remaining options change
one answer each, to count what the kernel sends then (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyfuse3
import trio

if __package__ in (None, ""):  # run as a script: zerofs is importable from the worktree root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zerofs.mount import counting

TIMEOUT = 5.0
"""Entry and attribute timeout, as zerofs/mount/fs.py."""
BLOCK = 4096
READ_AHEAD_KB = 1024


@dataclass
class Node:
    """One inode: a directory (children), a symlink (target) or a file (data or, discarding, a size)."""

    ino: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    target: bytes = b""
    children: dict[bytes, int] = field(default_factory=dict)
    parent: int = pyfuse3.ROOT_INODE
    nlink: int = 1
    xattrs: dict[bytes, bytes] = field(default_factory=dict)


@dataclass
class Options:
    """The answers the file system gives; the defaults are zerofs's."""

    discard: bool = False
    trace: bool = False
    timeout: float = TIMEOUT
    negative_timeout: float = 0.0  # > 0: a missing name is answered with ino 0 and this entry timeout
    xattr_errno: int = pyfuse3.ENOATTR  # what getxattr answers for a missing name (ENOSYS: never asked again)
    keep_cache: bool = True
    writeback_cache: bool = False


class NullOperations(pyfuse3.Operations):
    """Every request answered from a dict of inodes; no storage, no locks, no commits."""

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.opts = options
        self.enable_writeback_cache = options.writeback_cache
        now = time.time_ns()
        root = Node(pyfuse3.ROOT_INODE, stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), now)
        self.nodes: dict[int, Node] = {root.ino: root}
        self.next_ino = pyfuse3.ROOT_INODE + 1
        self.handles: dict[int, int] = {}
        self.next_fh = 1

    # -- helpers ----------------------------------------------------------------

    def _trace(self, op: str, *args: Any) -> None:
        if self.opts.trace:
            print(op, *args, file=sys.stderr, flush=True)

    def _get(self, ino: int) -> Node:
        node = self.nodes.get(ino)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    def _dir(self, ino: int) -> Node:
        node = self._get(ino)
        if not stat.S_ISDIR(node.mode):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return node

    def _child(self, parent: int, name: bytes) -> Node:
        ino = self._dir(parent).children.get(name)
        if ino is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self.nodes[ino]

    def _attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = node.ino
        attrs.generation = 0
        attrs.entry_timeout = self.opts.timeout
        attrs.attr_timeout = self.opts.timeout
        attrs.st_mode = node.mode
        attrs.st_nlink = node.nlink
        attrs.st_uid = node.uid
        attrs.st_gid = node.gid
        attrs.st_rdev = 0
        attrs.st_size = node.size
        attrs.st_blksize = BLOCK
        attrs.st_blocks = (node.size + 511) // 512
        attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = node.mtime_ns
        return attrs

    def _new(self, parent: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext) -> Node:
        directory = self._dir(parent)
        if name in directory.children:
            raise pyfuse3.FUSEError(errno.EEXIST)
        node = Node(self.next_ino, mode, ctx.uid, ctx.gid, time.time_ns(), parent=parent)
        self.next_ino += 1
        self.nodes[node.ino] = node
        directory.children[name] = node.ino
        directory.mtime_ns = node.mtime_ns
        return node

    def _unlink(self, parent: int, name: bytes) -> Node:
        directory = self._dir(parent)
        node = self._child(parent, name)
        del directory.children[name]
        directory.mtime_ns = time.time_ns()
        return node

    def _fh(self, node: Node) -> pyfuse3.FileInfo:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node.ino
        return pyfuse3.FileInfo(fh=fh, keep_cache=self.opts.keep_cache)

    # -- names ------------------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        self._trace("lookup", parent_inode, name)
        directory = self._dir(parent_inode)
        if name == b".":
            return self._attrs(directory)
        if name == b"..":
            return self._attrs(self._get(directory.parent))
        ino = directory.children.get(name)
        if ino is None:
            if self.opts.negative_timeout <= 0:
                raise pyfuse3.FUSEError(errno.ENOENT)
            negative = pyfuse3.EntryAttributes()
            negative.st_ino = 0
            negative.entry_timeout = self.opts.negative_timeout
            return negative
        return self._attrs(self.nodes[ino])

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        self._trace("forget", [ino for ino, _ in inode_list])

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        self._trace("getattr", inode)
        return self._attrs(self._get(inode))

    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        self._trace("setattr", inode)
        node = self._get(inode)
        if fields.update_size:
            if not self.opts.discard:
                node.data[attr.st_size :] = b""
                node.data.extend(bytes(attr.st_size - len(node.data)))
            node.size = attr.st_size
        if fields.update_mode:
            node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            node.uid = attr.st_uid
        if fields.update_gid:
            node.gid = attr.st_gid
        if fields.update_mtime:
            node.mtime_ns = attr.st_mtime_ns
        return self._attrs(node)

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        self._trace("mkdir", parent_inode, name)
        node = self._new(parent_inode, name, stat.S_IFDIR | stat.S_IMODE(mode), ctx)
        return self._attrs(node)

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        self._trace("symlink", parent_inode, name)
        node = self._new(parent_inode, name, stat.S_IFLNK | 0o777, ctx)
        node.target = target
        node.size = len(target)
        return self._attrs(node)

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        self._trace("readlink", inode)
        return self._get(inode).target

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._trace("unlink", parent_inode, name)
        if stat.S_ISDIR(self._child(parent_inode, name).mode):
            raise pyfuse3.FUSEError(errno.EISDIR)
        self._unlink(parent_inode, name)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._trace("rmdir", parent_inode, name)
        node = self._child(parent_inode, name)
        if not stat.S_ISDIR(node.mode):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if node.children:
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        self._unlink(parent_inode, name)

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        self._trace("rename", parent_inode_old, name_old, parent_inode_new, name_new)
        if flags:
            raise pyfuse3.FUSEError(errno.EINVAL)
        node = self._child(parent_inode_old, name_old)
        target = self._dir(parent_inode_new)
        replaced = target.children.get(name_new)
        if replaced is not None and self.nodes[replaced].children:
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        self._unlink(parent_inode_old, name_old)
        target.children[name_new] = node.ino
        node.parent = parent_inode_new

    # -- files ------------------------------------------------------------------

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        self._trace("create", parent_inode, name)
        node = self._new(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        return self._fh(node), self._attrs(node)

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        self._trace("open", inode)
        node = self._get(inode)
        if flags & os.O_TRUNC:
            node.data.clear()
            node.size = 0
        return self._fh(node)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        self._trace("read", self.handles[fh], off, size)
        node = self.nodes[self.handles[fh]]
        if self.opts.discard:
            return bytes(max(0, min(size, node.size - off)))
        return bytes(node.data[off : off + size])

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        self._trace("write", self.handles[fh], off, len(buf))
        node = self.nodes[self.handles[fh]]
        if not self.opts.discard:
            if off > len(node.data):
                node.data.extend(bytes(off - len(node.data)))
            node.data[off : off + len(buf)] = buf
        node.size = max(node.size, off + len(buf))
        node.mtime_ns = time.time_ns()
        return len(buf)

    async def release(self, fh: int) -> None:
        self._trace("release", self.handles[fh])
        del self.handles[fh]

    async def fsync(self, fh: int, datasync: bool) -> None:
        self._trace("fsync", self.handles[fh])

    # -- directories --------------------------------------------------------------

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        self._trace("opendir", inode)
        self._dir(inode)
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        self._trace("readdir", fh, start_id)
        entries = list(self._dir(fh).children.items())
        for index in range(start_id, len(entries)):
            name, ino = entries[index]
            if not pyfuse3.readdir_reply(token, name, self._attrs(self.nodes[ino]), index + 1):
                return

    async def releasedir(self, fh: int) -> None:
        self._trace("releasedir", fh)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        self._trace("fsyncdir", fh)

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        self._trace("statfs")
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = BLOCK
        data.f_blocks = data.f_bfree = data.f_bavail = 1 << 30
        data.f_files = data.f_ffree = data.f_favail = 1 << 30
        data.f_namemax = 255
        return data

    # -- extended attributes --------------------------------------------------------

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        self._trace("getxattr", inode, name)
        value = self._get(inode).xattrs.get(name)
        if value is None:
            raise pyfuse3.FUSEError(self.opts.xattr_errno)
        return value

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        self._trace("listxattr", inode)
        return list(self._get(inode).xattrs)

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._trace("setxattr", inode, name)
        self._get(inode).xattrs[name] = value

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._trace("removexattr", inode, name)
        if self._get(inode).xattrs.pop(name, None) is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)


# -- the process ------------------------------------------------------------------------


def mount_options(mountpoint: Path, default_permissions: bool) -> set[str]:
    """The options of ``zerofs mount`` (zerofs/mount/run.py ``_serve``), with this file system's names."""
    options = set(pyfuse3.default_options)
    if not default_permissions:
        options.discard("default_permissions")
    options |= {f"fsname=nullfs:{mountpoint}", "subtype=nullfs", "noatime"}
    return options


def set_read_ahead(mountpoint: Path) -> None:
    """The read-ahead zerofs sets (zerofs/mount/run.py READ_AHEAD_KB), so sequential reads compare."""
    device = None
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if fields[4] == str(mountpoint):
                device = fields[2]
    if device is not None:
        with suppress(OSError):
            Path(f"/sys/class/bdi/{device}/read_ahead_kb").write_text(str(READ_AHEAD_KB))


async def serve(mountpoint: Path) -> None:
    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                pyfuse3.terminate()
                return

    async def when_ready() -> None:
        await trio.sleep(0.05)  # after the kernel's INIT, which resets the read-ahead (as zerofs does)
        set_read_ahead(mountpoint)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signals)
        nursery.start_soon(when_ready)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mountpoint", type=Path)
    p.add_argument("--discard", action="store_true", help="throw written data away (files read back as zeros)")
    p.add_argument("--counts", metavar="FILE", help="count requests by kind; write JSON on SIGUSR1 and at exit")
    p.add_argument("--trace", action="store_true", help="log every request with its inode numbers to stderr")
    p.add_argument("--timeout", type=float, default=TIMEOUT, help=f"entry and attr timeout (default {TIMEOUT:g})")
    p.add_argument("--negative-timeout", type=float, default=0.0, help="answer a missing name with ino 0 and this")
    p.add_argument("--xattr-enosys", action="store_true", help="answer getxattr of a missing name with ENOSYS")
    p.add_argument("--no-keep-cache", action="store_true", help="open without FOPEN_KEEP_CACHE")
    p.add_argument("--writeback-cache", action="store_true", help="ask for the kernel's writeback cache")
    p.add_argument("--no-default-permissions", action="store_true", help="mount without default_permissions")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        discard=args.discard,
        trace=args.trace,
        timeout=args.timeout,
        negative_timeout=args.negative_timeout,
        xattr_errno=errno.ENOSYS if args.xattr_enosys else pyfuse3.ENOATTR,
        keep_cache=not args.no_keep_cache,
        writeback_cache=args.writeback_cache,
    )
    ops = NullOperations(options)
    counts = counting.count_requests(ops, pyfuse3.Operations) if args.counts else None
    if args.counts and counts is not None:
        counting.write_on_signal(args.counts, counts)
    mountpoint = args.mountpoint.resolve()
    pyfuse3.init(ops, str(mountpoint), mount_options(mountpoint, not args.no_default_permissions))
    try:
        trio.run(serve, mountpoint)
    finally:
        pyfuse3.close(unmount=True)
        if args.counts and counts is not None:
            counting.write_counts(args.counts, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
