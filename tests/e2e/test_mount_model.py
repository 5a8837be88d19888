"""A zerofs mount behaves like a local file system, checked against a plain host directory as the model.

A seeded generator draws a long sequence of file operations (writes at random offsets, past the end
too, appends, truncates, mkdir, rmdir, unlink, renames of files and directories over existing
targets, symlinks, FIFOs and (as root) devices, hard links, chmod, chown, utime and utimensat with UTIME_NOW and
UTIME_OMIT, setxattr and removexattr of user.* attributes, fsync, operations on open handles) and
applies each one both to a host directory and to a real mount. Every operation must succeed or fail
alike (same errno), and the two trees must stay equal: names, types, contents, sizes, symlink
targets, device numbers, mode bits, owners, which names are one file (link counts and groups), user.*
extended attributes and the atimes and mtimes the
test set explicitly (the atimes lie in the future, where relatime never moves them on either side,
so reads do not blur them). The mount is unmounted and mounted again now and then; after each
unmount ``zerofs export`` of the repository must equal the host tree too.

Every open is O_NONBLOCK, so an operation that lands on a FIFO fails or succeeds at once, alike on
both sides, instead of waiting for a peer (it changes nothing for regular files). As root the host
directory is bind-mounted nodev, as the mount is, so opening a device is refused alike too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_zerofs
from tests.e2e.helpers import UTIME_NOW, UTIME_OMIT, log_json, utimensat
from tests.e2e.mountutil import mounted

SEEDS = [11, 23, 37, 41, 53]
N_OPS = 900
COMPARE_EVERY = 30
REMOUNT_PROBABILITY = 0.005
MAX_DEPTH = 3
MAX_HANDLES = 3

NAMES = ["a", "b", "c", "dir", "e.txt", "sp ace", "x" * 255]
TOO_LONG_NAME = "y" * 256
TARGETS = ["a", "b", "dir", "dir/a", "sp ace", "nowhere/x", "t/" * 40 + "end"]
FILE_MODES = [0o644, 0o600, 0o755, 0o700, 0o444, 0o640, 0o751, 0o604]
DIR_MODES = [0o755, 0o700, 0o555, 0o750, 0o711, 0o777]
DEVICES = [(stat.S_IFCHR, 1, 3), (stat.S_IFCHR, 1, 5), (stat.S_IFCHR, 10, 200), (stat.S_IFBLK, 7, 0)]
SPECIAL_NAMES = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}
NONBLOCK = os.O_NONBLOCK
"""Every open of the model: a FIFO opens (or fails, ENXIO) at once instead of waiting for a peer."""
IS_ROOT = os.geteuid() == 0
# Explicit mtimes fall in 2001-2009: no clock of this run can produce one by accident.
EXPLICIT_MTIME_RANGE_S = (978_307_200, 1_262_304_000)
# Explicit atimes fall in 2040-2049: newer than any mtime or ctime and never a day old, so a read
# (relatime, on the host and in the mount) leaves them; they stay comparable after any read.
EXPLICIT_ATIME_RANGE_S = (2_208_988_800, 2_524_608_000)
OWNERS = [0, 1000, 65534] if os.geteuid() == 0 else [os.geteuid()]


Outcome = tuple[str, object]
Fields = tuple[str, int, int, int, int | None, str, int | None, int | None, tuple[tuple[str, bytes], ...]]
Entry = tuple[
    str, int, int, int, int | None, str, int | None, int | None, tuple[tuple[str, bytes], ...], int, tuple[str, ...]
]
"""Fields, then for a regular file its link count and the names of the same file (for others: 0 and ())."""
XATTR_NAMES = ["user.a", "user.tag", "user." + "k" * 200]


def attempt(action: Callable[[], object]) -> Outcome:
    """Run ``action``; ("ok", its result) or ("err", the errno's name)."""
    try:
        return ("ok", action())
    except OSError as exc:
        code = exc.errno or 0
        return ("err", errno.errorcode.get(code, str(code)))


def user_xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    """The ``user.*`` extended attributes of ``path`` (not following a symlink), sorted."""
    names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if n.startswith("user."))
    return tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)


def snapshot(root: Path, explicit_mtimes: set[int], explicit_atimes: set[int] | None = None) -> dict[str, Entry]:
    """Everything the model compares below ``root``, by relative path (not following symlinks).

    An mtime or atime is recorded only when it is one the test set explicitly; any other is the clock's.
    """
    atimes = explicit_atimes or set()
    entries: dict[str, Fields] = {}
    names_of: dict[int, list[str]] = {}
    inode_of: dict[str, tuple[int, int]] = {}

    def walk(rel: str) -> None:
        for name in sorted(os.listdir(root / rel if rel else root)):
            child = f"{rel}/{name}" if rel else name
            path = root / child
            st = os.lstat(path)
            xattrs = user_xattrs(path)
            mode = stat.S_IMODE(st.st_mode)
            mtime = st.st_mtime_ns if st.st_mtime_ns in explicit_mtimes else None
            atime = st.st_atime_ns if st.st_atime_ns in atimes else None
            if stat.S_ISDIR(st.st_mode):
                entries[child] = ("dir", mode, st.st_uid, st.st_gid, None, "", mtime, atime, xattrs)
                walk(child)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                entries[child] = ("symlink", mode, st.st_uid, st.st_gid, st.st_size, target, mtime, atime, xattrs)
            elif stat.S_ISREG(st.st_mode):
                data = path.read_bytes()
                assert len(data) == st.st_size, f"{path}: read {len(data)} bytes, stat says {st.st_size}"
                digest = hashlib.sha256(data).hexdigest()
                entries[child] = ("file", mode, st.st_uid, st.st_gid, st.st_size, digest, mtime, atime, xattrs)
                inode_of[child] = (st.st_ino, st.st_nlink)
                names_of.setdefault(st.st_ino, []).append(child)
            else:
                kind = SPECIAL_NAMES.get(stat.S_IFMT(st.st_mode), f"other {stat.S_IFMT(st.st_mode):o}")
                device = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}" if kind.endswith("dev") else ""
                entries[child] = (kind, mode, st.st_uid, st.st_gid, None, device, mtime, atime, xattrs)

    walk("")
    result: dict[str, Entry] = {}
    for rel, fields in entries.items():
        ino, nlink = inode_of.get(rel, (0, 0))
        result[rel] = (*fields, nlink, tuple(sorted(names_of.get(ino, ())) if ino else ()))
    return result


ENTRY_FIELDS = (
    "type",
    "mode",
    "uid",
    "gid",
    "size",
    "content sha256, target or device",
    "explicit mtime",
    "explicit atime",
    "user xattrs",
    "link count",
    "names of the same file",
)


def tree_differences(expected: dict[str, Entry], actual: dict[str, Entry]) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    lines = []
    for rel in sorted(set(expected) | set(actual)):
        want, got = expected.get(rel), actual.get(rel)
        if want is None or got is None:
            lines.append(f"{rel[:60]!r}: host {want}, other {got}")
        elif want != got:
            fields = [
                f"{field}: host {w!r}, other {g!r}"
                for field, w, g in zip(ENTRY_FIELDS, want, got, strict=True)
                if w != g
            ]
            lines.append(f"{rel[:60]!r} ({want[0]}): " + "; ".join(fields))
    return lines


@dataclass
class Handle:
    """A file opened on both sides: the host's descriptor and the mount's."""

    rel: str
    host_fd: int
    mount_fd: int


class Scenario:
    """One seeded run: draws operations from the host's state, applies them to host and mount."""

    def __init__(self, seed: int, repo: Path, host: Path, mountpoint: Path, scratch: Path) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.repo = repo
        self.host = host
        self.mountpoint = mountpoint
        self.scratch = scratch
        self.explicit_mtimes: set[int] = set()
        self.explicit_atimes: set[int] = set()
        self.atime_checks = 0
        self.handles: list[Handle] = []
        self.history: list[str] = []
        self.exports = 0
        self.fsync_checks = 0
        self.made: dict[str, int] = {"fifo": 0, "device": 0, "xattr": 0, "link": 0}

    # -- reporting -------------------------------------------------------------------------------

    def context(self) -> str:
        recent = "\n  ".join(self.history[-40:])
        return f"seed {self.seed}, after {len(self.history)} operations; the last ones:\n  {recent}"

    def compare(self, other: Path, what: str) -> None:
        expected = snapshot(self.host, self.explicit_mtimes, self.explicit_atimes)
        actual = snapshot(other, self.explicit_mtimes, self.explicit_atimes)
        differences = tree_differences(expected, actual)
        self.atime_checks += sum(entry[7] is not None for entry in expected.values())
        assert not differences, (
            f"{what} differs from the host tree:\n" + "\n".join(differences[:30]) + ("\n" + self.context())
        )

    def compare_export(self) -> None:
        self.exports += 1
        target = self.scratch / f"export{self.exports}"
        run_zerofs("export", "/", str(target), repo=self.repo)
        self.compare(target, f"zerofs export after unmount #{self.exports}")

    # -- choosing paths from the host (the model) ----------------------------------------------

    def listing(self) -> list[tuple[str, str]]:
        """(relative path, kind) of every entry of the host tree, the root as ("", "dir")."""
        found = [("", "dir")]
        for rel, entry in snapshot_kinds(self.host).items():
            found.append((rel, entry))
        return found

    def existing(self, *kinds: str) -> str | None:
        candidates = [rel for rel, kind in self.listing() if rel and (not kinds or kind in kinds)]
        return self.rng.choice(candidates) if candidates else None

    def name(self) -> str:
        return TOO_LONG_NAME if self.rng.random() < 0.03 else self.rng.choice(NAMES)

    def fresh_path(self) -> str:
        """A path whose parent usually exists (sometimes it is missing or a file): may exist."""
        listing = self.listing()
        if self.rng.random() < 0.1:
            parent = self.rng.choice([rel for rel, _ in listing] + ["nowhere"])
        else:
            dirs = [rel for rel, kind in listing if kind == "dir" and rel.count("/") < MAX_DEPTH - 1]
            parent = self.rng.choice(dirs)
        name = self.name()
        return f"{parent}/{name}" if parent else name

    def any_path(self) -> str:
        if self.rng.random() < 0.5:
            found = self.existing()
            if found is not None:
                return found
        return self.fresh_path()

    def payload(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.6:
            size = self.rng.randint(1, 6000)
        elif roll < 0.9:
            size = self.rng.randint(6000, 70_000)
        else:
            size = self.rng.randint(70_000, 400_000)
        if self.rng.random() < 0.3:
            return bytes([self.rng.randrange(256)]) * size  # compressible
        return self.rng.randbytes(size)

    def offset(self, rel: str) -> int:
        try:
            size = os.lstat(self.host / rel).st_size
        except OSError:
            size = 0
        roll = self.rng.random()
        if roll < 0.4:
            return self.rng.randint(0, size)
        if roll < 0.8:
            return self.rng.randint(0, max(size, 1) + 4096)
        return size + self.rng.randint(0, 600_000)  # well past EOF: a hole

    # -- applying ----------------------------------------------------------------------------------

    def both(self, description: str, action: Callable[[Path], object]) -> Outcome:
        """Apply ``action`` to the host root, then to the mount root; the outcomes must be equal."""
        self.history.append(description)
        on_host = attempt(lambda: action(self.host))
        on_mount = attempt(lambda: action(self.mountpoint))
        assert on_mount == on_host, f"{description}: host gave {on_host!r:.200}, mount gave {on_mount!r:.200}\n" + (
            self.context()
        )
        return on_host

    def both_handles(self, handle: Handle, description: str, action: Callable[[int], object]) -> Outcome:
        self.history.append(f"{description} [handle on {handle.rel[:40]!r}]")
        on_host = attempt(lambda: action(handle.host_fd))
        on_mount = attempt(lambda: action(handle.mount_fd))
        assert on_mount == on_host, f"{description}: host gave {on_host!r:.200}, mount gave {on_mount!r:.200}\n" + (
            self.context()
        )
        return on_host

    def step(self) -> None:
        operations: list[tuple[int, Callable[[], None]]] = [
            (16, self.op_write),
            (7, self.op_append),
            (3, self.op_create_empty),
            (6, self.op_read),
            (6, self.op_truncate),
            (8, self.op_mkdir),
            (4, self.op_rmdir),
            (6, self.op_unlink),
            (12, self.op_rename),
            (5, self.op_symlink),
            (5, self.op_link),
            (3, self.op_mkfifo),
            (2 if IS_ROOT else 0, self.op_mknod),
            (5, self.op_chmod),
            (6, self.op_utime),
            (4, self.op_utimensat),
            (3, self.op_chown),
            (3, self.op_setxattr),
            (2, self.op_removexattr),
            (3, self.op_fsync),
            (3, self.op_open_handle),
            (4, self.op_handle_io),
            (2, self.op_close_handle),
        ]
        weights = [weight for weight, _ in operations]
        self.rng.choices([op for _, op in operations], weights)[0]()

    def op_write(self) -> None:
        rel = self.any_path() if self.rng.random() < 0.3 else (self.existing("file") or self.fresh_path())
        data = self.payload()
        offset = self.offset(rel)
        flags = os.O_WRONLY | os.O_CREAT
        truncate = self.rng.random() < 0.15
        if truncate:
            flags |= os.O_TRUNC
            offset = 0
        mode = self.rng.choice(FILE_MODES)

        def write(root: Path) -> int:
            fd = os.open(root / rel, flags | NONBLOCK, mode)
            try:
                return os.pwrite(fd, data, offset)
            finally:
                os.close(fd)

        self.both(f"write {rel[:40]!r} {len(data)} bytes at {offset} trunc={truncate} mode={mode:o}", write)

    def op_append(self) -> None:
        rel = self.existing("file") or self.any_path()
        data = self.payload()

        def append(root: Path) -> int:
            fd = os.open(root / rel, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NONBLOCK, 0o644)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)

        self.both(f"append {rel[:40]!r} {len(data)} bytes", append)

    def op_create_empty(self) -> None:
        rel = self.fresh_path()

        def create(root: Path) -> None:
            os.close(os.open(root / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NONBLOCK, 0o640))

        self.both(f"create-excl {rel[:40]!r}", create)

    def op_read(self) -> None:
        rel = self.existing("file", "symlink") or self.any_path()
        offset = self.offset(rel)
        length = self.rng.choice([1, 100, 4096, 65_536, 300_000])

        def read(root: Path) -> bytes:
            fd = os.open(root / rel, os.O_RDONLY | NONBLOCK)
            try:
                return os.pread(fd, length, offset)
            finally:
                os.close(fd)

        self.both(f"read {rel[:40]!r} {length} bytes at {offset}", read)

    def op_truncate(self) -> None:
        rel = self.existing("file") or self.any_path()
        try:
            size = os.lstat(self.host / rel).st_size
        except OSError:
            size = 0
        new_size = self.rng.choice([0, size // 2, max(size - 1, 0), size + 1, size + 70_000, 1 << 20])
        self.both(f"truncate {rel[:40]!r} to {new_size}", lambda root: os.truncate(root / rel, new_size))

    def op_mkdir(self) -> None:
        rel = self.fresh_path()
        mode = self.rng.choice(DIR_MODES)
        self.both(f"mkdir {rel[:40]!r} mode={mode:o}", lambda root: os.mkdir(root / rel, mode))

    def op_rmdir(self) -> None:
        rel = self.existing("dir") or self.any_path()
        self.both(f"rmdir {rel[:40]!r}", lambda root: os.rmdir(root / rel))

    def op_unlink(self) -> None:
        rel = self.existing() if self.rng.random() < 0.85 else self.fresh_path()
        rel = rel or self.fresh_path()
        self.both(f"unlink {rel[:40]!r}", lambda root: os.unlink(root / rel))

    def op_rename(self) -> None:
        source = self.existing() if self.rng.random() < 0.9 else self.fresh_path()
        source = source or self.fresh_path()
        roll = self.rng.random()
        if roll < 0.4:
            target = self.existing() or self.fresh_path()  # over an existing entry (or itself)
        elif roll < 0.5:
            target = f"{source}/{self.name()}"  # into itself
        else:
            target = self.fresh_path()
        self.both(f"rename {source[:40]!r} -> {target[:40]!r}", lambda root: os.rename(root / source, root / target))

    def op_symlink(self) -> None:
        rel = self.fresh_path()
        target = self.rng.choice(TARGETS)
        self.both(f"symlink {rel[:40]!r} -> {target[:40]!r}", lambda root: os.symlink(target, root / rel))

    def op_link(self) -> None:
        source = self.existing("file") if self.rng.random() < 0.9 else self.any_path()
        source = source or self.fresh_path()
        target = self.fresh_path() if self.rng.random() < 0.85 else (self.existing() or self.fresh_path())
        outcome = self.both(
            f"link {source[:40]!r} -> {target[:40]!r}", lambda root: os.link(root / source, root / target)
        )
        if outcome[0] == "ok":
            self.made["link"] += 1

    def op_mkfifo(self) -> None:
        rel = self.fresh_path()
        mode = self.rng.choice(FILE_MODES)
        if self.both(f"mkfifo {rel[:40]!r} mode={mode:o}", lambda root: os.mkfifo(root / rel, mode))[0] == "ok":
            self.made["fifo"] += 1

    def op_mknod(self) -> None:
        rel = self.fresh_path()
        file_type, major, minor = self.rng.choice(DEVICES)
        mode = self.rng.choice(FILE_MODES)
        device = os.makedev(major, minor)
        outcome = self.both(
            f"mknod {rel[:40]!r} {SPECIAL_NAMES[file_type]} {major},{minor} mode={mode:o}",
            lambda root: os.mknod(root / rel, file_type | mode, device),
        )
        if outcome[0] == "ok":
            self.made["device"] += 1

    def op_setxattr(self) -> None:
        rel = self.existing() or self.any_path()
        key = self.rng.choice(XATTR_NAMES)
        value = self.rng.randbytes(self.rng.choice((0, 1, 30, 900)))
        outcome = self.both(
            f"setxattr {rel[:40]!r} {key[:12]} ({len(value)} B)",
            lambda root: os.setxattr(root / rel, key, value, follow_symlinks=False),
        )
        if outcome[0] == "ok":
            self.made["xattr"] += 1

    def op_removexattr(self) -> None:
        rel = self.existing() or self.any_path()
        key = self.rng.choice(XATTR_NAMES)
        self.both(
            f"removexattr {rel[:40]!r} {key[:12]}",
            lambda root: os.removexattr(root / rel, key, follow_symlinks=False),
        )

    def op_chmod(self) -> None:
        rel = self.existing() or self.any_path()
        kind = "dir" if os.path.isdir(self.host / rel) else "file"
        mode = self.rng.choice(DIR_MODES if kind == "dir" else FILE_MODES)
        self.both(f"chmod {rel[:40]!r} {mode:o}", lambda root: os.chmod(root / rel, mode))

    def op_utime(self) -> None:
        rel = self.existing() or self.any_path()
        mtime_ns = self.explicit_time(EXPLICIT_MTIME_RANGE_S, self.explicit_mtimes)
        atime_ns = self.explicit_time(EXPLICIT_ATIME_RANGE_S, self.explicit_atimes)
        follow = self.rng.random() < 0.7

        def utime(root: Path) -> None:
            os.utime(root / rel, ns=(atime_ns, mtime_ns), follow_symlinks=follow)

        self.both(f"utime {rel[:40]!r} atime={atime_ns} mtime={mtime_ns} follow={follow}", utime)

    def explicit_time(self, range_s: tuple[int, int], explicit: set[int]) -> int:
        time_ns = self.rng.randrange(*range_s) * 1_000_000_000 + self.rng.randrange(1_000_000_000)
        explicit.add(time_ns)
        return time_ns

    def timespec(self, range_s: tuple[int, int], explicit: set[int]) -> tuple[int, int]:
        """An explicit time (as a timespec), UTIME_NOW or UTIME_OMIT."""
        roll = self.rng.random()
        if roll < 0.3:
            return (0, UTIME_OMIT)
        if roll < 0.5:
            return (0, UTIME_NOW)
        return divmod(self.explicit_time(range_s, explicit), 1_000_000_000)

    def op_utimensat(self) -> None:
        rel = self.existing() or self.any_path()
        atime = self.timespec(EXPLICIT_ATIME_RANGE_S, self.explicit_atimes)
        mtime = self.timespec(EXPLICIT_MTIME_RANGE_S, self.explicit_mtimes)
        self.both(
            f"utimensat {rel[:40]!r} atime={atime} mtime={mtime}", lambda root: utimensat(root / rel, atime, mtime)
        )

    def op_chown(self) -> None:
        rel = self.existing() or self.any_path()
        uid, gid = self.rng.choice(OWNERS), self.rng.choice([*OWNERS, -1])
        follow = self.rng.random() < 0.7

        def chown(root: Path) -> None:
            os.chown(root / rel, uid, gid, follow_symlinks=follow)

        self.both(f"chown {rel[:40]!r} {uid}:{gid} follow={follow}", chown)

    def op_fsync(self) -> None:
        rel = self.existing("file")
        if rel is None:
            return

        def fsync(root: Path) -> None:
            fd = os.open(root / rel, os.O_WRONLY | NONBLOCK)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        if self.both(f"fsync {rel[:40]!r}", fsync)[0] == "ok":
            self.fsync_checks += 1
            committed = run_zerofs("cat", "/" + rel, repo=self.repo).stdout
            assert committed == (self.host / rel).read_bytes(), (
                f"after fsync of {rel!r} returned, HEAD does not hold its content\n" + self.context()
            )

    def op_open_handle(self) -> None:
        if len(self.handles) >= MAX_HANDLES:
            return
        rel = self.existing("file") or self.any_path()
        self.history.append(f"open handle on {rel[:40]!r}")
        on_host = attempt(lambda: os.open(self.host / rel, os.O_RDWR | NONBLOCK))
        on_mount = attempt(lambda: os.open(self.mountpoint / rel, os.O_RDWR | NONBLOCK))
        opened = [fd for status, fd in (on_host, on_mount) if status == "ok" and isinstance(fd, int)]
        if len(opened) != 2:
            for fd in opened:
                os.close(fd)
            assert on_host == on_mount, f"open {rel!r}: host gave {on_host}, mount gave {on_mount}\n" + self.context()
            return
        self.handles.append(Handle(rel, opened[0], opened[1]))

    def op_handle_io(self) -> None:
        if not self.handles:
            return
        handle = self.rng.choice(self.handles)
        roll = self.rng.random()
        if roll < 0.45:
            data = self.payload()
            offset = self.rng.randint(0, 300_000)
            self.both_handles(handle, f"pwrite {len(data)} bytes at {offset}", lambda fd: os.pwrite(fd, data, offset))
        elif roll < 0.8:
            length = self.rng.choice([10, 5000, 200_000])
            offset = self.rng.randint(0, 300_000)
            self.both_handles(handle, f"pread {length} bytes at {offset}", lambda fd: os.pread(fd, length, offset))
        elif roll < 0.9:
            self.both_handles(handle, "fstat size", lambda fd: os.fstat(fd).st_size)
        else:
            self.both_handles(handle, "fsync", os.fsync)

    def op_close_handle(self) -> None:
        if not self.handles:
            return
        handle = self.handles.pop(self.rng.randrange(len(self.handles)))
        self.both_handles(handle, "close", os.close)

    def close_handles(self) -> None:
        while self.handles:
            handle = self.handles.pop()
            self.both_handles(handle, "close", os.close)

    # -- the run -------------------------------------------------------------------------------------

    def run(self, n_ops: int) -> None:
        remaining = n_ops
        while True:
            with mounted(self.repo, self.mountpoint) as mount:
                self.compare(self.mountpoint, "the mount, just mounted")
                while remaining > 0:
                    remaining -= 1
                    # At random, and at least once: halfway through.
                    if self.rng.random() < REMOUNT_PROBABILITY or remaining == n_ops // 2:
                        self.history.append("unmount and mount again")
                        break
                    self.step()
                    if len(self.history) % COMPARE_EVERY == 0:
                        self.compare(self.mountpoint, "the mount")
                self.close_handles()
                self.compare(self.mountpoint, "the mount, before unmounting")
                mount.umount()
            self.compare_export()
            if remaining == 0:
                return


def snapshot_kinds(root: Path) -> dict[str, str]:
    """The kind ("file", "dir", "symlink", "special") of every entry below ``root``, without reading contents."""
    kinds: dict[str, str] = {}

    def walk(rel: str) -> None:
        for name in sorted(os.listdir(root / rel if rel else root)):
            child = f"{rel}/{name}" if rel else name
            mode = os.lstat(root / child).st_mode
            if stat.S_ISDIR(mode):
                kinds[child] = "dir"
                walk(child)
            elif stat.S_ISLNK(mode):
                kinds[child] = "symlink"
            else:
                kinds[child] = "file" if stat.S_ISREG(mode) else "special"

    walk("")
    return kinds


@contextmanager
def nodev(directory: Path) -> Iterator[None]:
    """As root, bind-mount ``directory`` onto itself nodev for the block, as a FUSE mount is."""
    if not IS_ROOT:
        yield
        return
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,nodev", str(directory)], check=True)
        yield
    finally:
        # Lazily: after a failure the scenario's handles may still hold files open in it.
        subprocess.run(["umount", "--lazy", str(directory)], check=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_match_a_host_directory(cli_repo: Path, tmp_path: Path, seed: int) -> None:
    """Pins: every operation gives the host's result or errno, and the trees stay equal live and exported."""
    host = tmp_path / "host"
    host.mkdir()
    scenario = Scenario(seed, cli_repo, host, tmp_path / "mnt", tmp_path)
    with nodev(host):
        scenario.run(N_OPS)
    assert scenario.exports >= 2, "the run never unmounted and mounted again"
    assert scenario.fsync_checks > 0, "no fsync was checked against HEAD"
    assert scenario.atime_checks > 0, "no explicit atime was compared"
    assert scenario.made["fifo"] > 0, "the run made no FIFO"
    assert scenario.made["device"] > 0 or not IS_ROOT, "the run (as root) made no device"
    assert scenario.made["xattr"] > 0, "the run set no extended attribute"
    assert scenario.made["link"] > 0, "the run made no hard link"
    messages = [commit["message"] for commit in log_json(cli_repo)]
    assert messages[-1] == "init"
    assert len(messages) > 1, "the mount changed files but made no commit"
    assert all(message.startswith("mount:") for message in messages[:-1]), messages
