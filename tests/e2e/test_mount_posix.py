"""POSIX behaviour of a real read-write ``zerofs mount``, checked with os calls and ordinary tools.

Every test mounts its own repository at ``tmp_path / "mnt"`` through ``tests.e2e.mountutil`` and checks
what the kernel and the tools see, then what the repository holds once the mount is gone.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Zerofs, cli_env
from tests.e2e.helpers import log_json
from tests.e2e.mountutil import eventually, foreground_mount, is_mounted, mounted

NOBODY = 65534
NEVER = "3600"  # a --commit-interval that never fires during a test
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

_LIBC = ctypes.CDLL(None, use_errno=True)

# (kind, permission bits or 0, sha256 of the contents or the link target)
Entry = tuple[str, int, str]
Tree = dict[str, Entry]


# ---------------------------------------------------------------- helpers


def fails_with(func: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """The errno name ``func(*args)`` fails with, or "OK" when it succeeds (an fd it returns is closed)."""
    try:
        result = func(*args, **kwargs)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    if func is os.open and isinstance(result, int):
        os.close(result)
    return "OK"


def renameat2(src: Path, dst: Path, flags: int) -> None:
    """renameat2(2) through libc (os.rename has no flags)."""
    rc = _LIBC.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags))
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(src), None, str(dst))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tree(root: Path, modes: bool = True) -> Tree:
    """Every path under ``root`` (relative) with its kind, mode (if ``modes``) and a hash of its contents."""
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            bits = stat.S_IMODE(st.st_mode) if modes else 0
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", bits, "")
            else:
                tree[rel] = ("file", bits, digest(Path(path).read_bytes()))
    return tree


def make_host_tree(root: Path, seed: int = 1) -> Path:
    """A small host tree: text, a multi-chunk binary, an empty file and dir, a symlink, a 0600 file."""
    rng = random.Random(seed)
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "b.txt").write_bytes(b"bravo\n" * 100)
    (root / "sub" / "big.bin").write_bytes(rng.randbytes(300_000))
    (root / "sub" / "deep" / "c.txt").write_bytes(b"charlie\n")
    (root / "sub" / "zero").write_bytes(b"")
    os.symlink("../a.txt", root / "sub" / "link")
    os.chmod(root / "b.txt", 0o600)
    return root


def run(*argv: str | Path, cwd: Path | None = None) -> None:
    """Run a host tool; it must succeed."""
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stderr.decode(errors='replace')}"


def store_names(zerofs: Zerofs, path: str) -> list[str]:
    return sorted(zerofs("ls", path).stdout.decode().splitlines())


def store_stat(zerofs: Zerofs, path: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zerofs("stat", "--json", path).stdout)
    return result


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by name."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_commits(repo: Path, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commits made since ``before`` was read (newest first); history before them is unchanged."""
    after = log_json(repo)
    assert after[len(after) - len(before) :] == before, "history before the mount changed"
    return after[: len(after) - len(before)]


# ------------------------------------------------ lookup, getattr, readdir, inodes


def test_readdir_lists_the_tree_with_dot_entries(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """readdir returns every name once plus `.` and `..`; d_ino matches st_ino; lookups see the imported tree."""
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/data")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        data = m.path / "data"
        assert os.listdir(m.path) == ["data"]
        assert sorted(os.listdir(data)) == sorted(os.listdir(host))
        assert read_tree(data) == read_tree(host)
        raw = subprocess.run(["ls", "-1", "-f", str(data)], capture_output=True, check=True).stdout
        names = raw.decode().splitlines()
        assert names.count(".") == 1, names
        assert names.count("..") == 1, names
        assert sorted(n for n in names if n not in (".", "..")) == sorted(os.listdir(host))
        with os.scandir(data / "sub") as entries:
            for entry in entries:
                assert entry.inode() == os.lstat(entry.path).st_ino, entry.name
                assert entry.is_symlink() == (entry.name == "link")
                assert entry.is_dir(follow_symlinks=False) == (entry.name == "deep")
        assert os.stat(data / "sub" / "..").st_ino == os.stat(data).st_ino
        assert os.stat(data / "..").st_ino == os.stat(m.path).st_ino
        assert (data / "sub" / "link").read_bytes() == b"alpha\n"  # followed through the mount


def test_getattr_reports_the_stored_metadata(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Mode, owner, size, ns times come from the store (import keeps the host's); link counts are POSIX's."""
    host = make_host_tree(tmp_path / "host")
    os.chown(host / "a.txt", 1234, 5678)
    mtime_ns = 1_500_000_000_123_456_789
    os.utime(host / "a.txt", ns=(mtime_ns, mtime_ns))
    os.chmod(host / "sub" / "deep", 0o750)
    zerofs("import", str(host), "/data")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        data = m.path / "data"
        st = os.stat(data / "a.txt")
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o644
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert st.st_size == 6
        assert st.st_mtime_ns == mtime_ns
        assert st.st_atime_ns == mtime_ns
        assert st.st_ctime_ns == os.stat(host / "a.txt").st_ctime_ns
        assert st.st_nlink == 1
        assert stat.S_IMODE(os.stat(data / "b.txt").st_mode) == 0o600
        assert os.stat(data / "sub" / "big.bin").st_size == 300_000
        assert os.stat(data / "sub" / "zero").st_size == 0
        deep = os.stat(data / "sub" / "deep")
        assert stat.S_ISDIR(deep.st_mode)
        assert stat.S_IMODE(deep.st_mode) == 0o750
        assert deep.st_mtime_ns == os.stat(host / "sub" / "deep").st_mtime_ns
        assert os.stat(m.path).st_nlink == 3  # 2 and /data's ".."
        for rel in (".", "sub", "sub/deep", "empty"):  # 2 plus one per subdirectory, as on the host
            assert os.stat(data / rel).st_nlink == os.stat(host / rel).st_nlink, rel
        link = os.lstat(data / "sub" / "link")
        assert stat.S_ISLNK(link.st_mode)
        assert link.st_size == len("../a.txt")


def test_inode_numbers_are_distinct_and_stable_while_mounted(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Each path has its own st_ino (even identical contents and clones), kept across stats, commits and renames."""
    host = make_host_tree(tmp_path / "host")
    (host / "same1").write_bytes(b"identical")
    (host / "same2").write_bytes(b"identical")
    zerofs("import", str(host), "/data")
    zerofs("clone", "/data", "/snap")
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        paths = [Path(dirpath) / n for dirpath, dirs, files in os.walk(m.path) for n in dirs + files]
        inodes = {p: os.lstat(p).st_ino for p in paths}
        assert len(set(inodes.values())) == len(paths), "two paths share an inode number"
        assert os.stat(m.path).st_ino not in inodes.values()
        assert len({os.lstat(p).st_dev for p in paths}) == 1
        for _ in range(3):
            assert {p: os.lstat(p).st_ino for p in paths} == inodes
        # A commit through the mount and one by the CLI do not renumber anything.
        with open(m.path / "data" / "a.txt", "ab") as f:
            f.write(b"more\n")
            f.flush()
            os.fsync(f.fileno())
        zerofs("write", "/elsewhere", input=b"cli")
        eventually(lambda: os.stat(m.path / "elsewhere"), timeout=1.5)
        assert {p: os.lstat(p).st_ino for p in paths} == inodes
        # A renamed file, a renamed directory and its children keep their numbers.
        data = m.path / "data"
        moved = data / "sub" / "moved.txt"
        os.rename(data / "a.txt", moved)
        assert os.lstat(moved).st_ino == inodes[data / "a.txt"]
        os.rename(data / "sub", data / "sub2")
        assert os.lstat(data / "sub2").st_ino == inodes[data / "sub"]
        assert os.lstat(data / "sub2" / "moved.txt").st_ino == inodes[data / "a.txt"]
        assert os.lstat(data / "sub2" / "deep" / "c.txt").st_ino == inodes[data / "sub" / "deep" / "c.txt"]
        assert os.lstat(m.path / "snap" / "sub" / "big.bin").st_ino == inodes[m.path / "snap" / "sub" / "big.bin"]


def test_large_directory_readdir_and_delete_while_iterating(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """A directory of 300 entries (sharded in the store) lists completely, also while entries are unlinked."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        big = m.path / "big"
        big.mkdir()
        names = [f"file-{i:04d}" for i in range(300)]
        for name in names:
            (big / name).write_bytes(name.encode())
        assert sorted(os.listdir(big)) == names
        fsync_path(big)
        assert store_names(zerofs, "/big") == names
        assert sorted(os.listdir(big)) == names
        seen = []
        with os.scandir(big) as entries:
            for entry in entries:
                seen.append(entry.name)
                os.unlink(entry.path)
        assert sorted(seen) == names, "readdir skipped or repeated entries while they were being unlinked"
        assert os.listdir(big) == []
        for name in names[:50]:
            (big / name).write_bytes(b"again")
        run("rm", "-rf", big)
        assert not big.exists()
        m.umount()
    assert store_names(zerofs, "/") == []


def test_rewound_directory_handle_sees_current_entries(cli_repo: Path, tmp_path: Path) -> None:
    """Reading an open directory again from the start (rewinddir) shows what it holds now, not at opendir."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        d = m.path / "d"
        d.mkdir()
        (d / "first").write_bytes(b"1")
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert os.listdir(fd) == ["first"]  # os.listdir(fd) reads the open directory, then rewinds it
            (d / "second").write_bytes(b"2")
            os.unlink(d / "first")
            assert os.listdir(fd) == ["second"]
        finally:
            os.close(fd)


# ---------------------------------------------------------------- file data


def test_create_write_read_and_truncate(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """create/open/read/write/pread/pwrite, ftruncate and truncate both ways, O_TRUNC and O_EXCL."""
    rng = random.Random(7)
    big = rng.randbytes(700_000)
    host = tmp_path / "host"
    host.mkdir()
    (host / "big.bin").write_bytes(big)
    zerofs("import", str(host), "/data")
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        f = m.path / "f.bin"
        fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
        try:
            assert os.write(fd, b"hello world") == 11
            assert os.pread(fd, 5, 6) == b"world"
            assert os.pwrite(fd, b"W", 6) == 1
            os.lseek(fd, 0, os.SEEK_SET)
            assert os.read(fd, 100) == b"hello World"
            os.ftruncate(fd, 5)
            assert os.fstat(fd).st_size == 5
            assert os.pread(fd, 100, 0) == b"hello"
            os.ftruncate(fd, 8)
            assert os.pread(fd, 100, 0) == b"hello\0\0\0"
        finally:
            os.close(fd)
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
        assert os.stat(f).st_size == 8
        os.truncate(f, 2)
        assert f.read_bytes() == b"he"
        os.truncate(f, 4)
        assert f.read_bytes() == b"he\0\0"
        assert fails_with(os.open, f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644) == "EEXIST"
        with open(f, "wb") as out:  # O_TRUNC
            out.write(b"new")
        assert f.read_bytes() == b"new"
        run("touch", m.path / "empty")
        assert (m.path / "empty").read_bytes() == b""

        # 1 MiB in 4 KiB writes, read back at random offsets.
        payload = rng.randbytes(1 << 20)
        fd = os.open(m.path / "stream.bin", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            for off in range(0, len(payload), 4096):
                os.write(fd, payload[off : off + 4096])
        finally:
            os.close(fd)
        fd = os.open(m.path / "stream.bin", os.O_RDONLY)
        try:
            for _ in range(50):
                off = rng.randrange(len(payload))
                size = rng.randrange(1, 200_000)
                assert os.pread(fd, size, off) == payload[off : off + size]
            assert os.pread(fd, 10, len(payload)) == b""
        finally:
            os.close(fd)

        # Overwrite the middle of a stored multi-chunk file, then cut and grow it.
        bigp = m.path / "data" / "big.bin"
        assert bigp.read_bytes() == big
        fd = os.open(bigp, os.O_WRONLY)
        try:
            os.pwrite(fd, b"X" * 100, 350_000)
        finally:
            os.close(fd)
        expected_big = big[:350_000] + b"X" * 100 + big[350_100:]
        assert bigp.read_bytes() == expected_big
        m.umount()
    assert zerofs("cat", "/f.bin").stdout == b"new"
    assert zerofs("cat", "/empty").stdout == b""
    assert zerofs("cat", "/stream.bin").stdout == payload
    assert zerofs("cat", "/data/big.bin").stdout == expected_big
    assert store_stat(zerofs, "/f.bin")["mode"] == "0640"


def test_o_append_writes_at_the_end(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """O_APPEND ignores the file offset; two appenders interleave without overwriting; shell >> appends."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        f = m.path / "log.txt"
        f.write_bytes(b"hello")
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b" world")
        finally:
            os.close(fd)
        assert f.read_bytes() == b"hello world"
        fd1 = os.open(f, os.O_WRONLY | os.O_APPEND)
        fd2 = os.open(f, os.O_WRONLY | os.O_APPEND)
        try:
            for i in range(5):
                os.write(fd1, b"<1:%d>" % i)
                os.write(fd2, b"<2:%d>" % i)
        finally:
            os.close(fd1)
            os.close(fd2)
        expected = b"hello world" + b"".join(b"<1:%d><2:%d>" % (i, i) for i in range(5))
        assert f.read_bytes() == expected
        run("sh", "-c", f"echo tail >> '{f}'")
        assert f.read_bytes() == expected + b"tail\n"
        m.umount()
    assert zerofs("cat", "/log.txt").stdout == expected + b"tail\n"


def test_sparse_writes_past_eof_read_as_zeros(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """A write past EOF leaves a hole of zeros, through the mount and in the store."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        f = m.path / "sparse.bin"
        fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.write(fd, b"start")
            os.pwrite(fd, b"end", 1 << 20)
            assert os.fstat(fd).st_size == (1 << 20) + 3
            assert os.pread(fd, 10, 1000) == b"\0" * 10
            os.lseek(fd, 3 << 20, os.SEEK_SET)
            os.write(fd, b"far")
        finally:
            os.close(fd)
        expected = b"start" + b"\0" * ((1 << 20) - 5) + b"end" + b"\0" * ((2 << 20) - 3) + b"far"
        assert os.stat(f).st_size == len(expected)
        assert f.read_bytes() == expected
        m.umount()
    assert zerofs("cat", "/sparse.bin").stdout == expected


def test_unlinked_open_file_stays_readable(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """An unlinked file vanishes from its directory but its open fd reads (and writes) it until closed."""
    zerofs("write", "/victim.txt", input=b"still here")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        victim = m.path / "victim.txt"
        fd = os.open(victim, os.O_RDWR)
        try:
            assert os.read(fd, 5) == b"still"
            os.unlink(victim)
            assert fails_with(os.stat, victim) == "ENOENT"
            assert os.listdir(m.path) == [], "unlinked file still listed (or a hidden placeholder appeared)"
            assert os.pread(fd, 100, 0) == b"still here"
            assert os.fstat(fd).st_size == 10
            os.pwrite(fd, b"!", 10)
            assert os.pread(fd, 100, 0) == b"still here!"
            victim.write_bytes(b"replacement")
            assert os.pread(fd, 100, 0) == b"still here!"
        finally:
            os.close(fd)
        assert victim.read_bytes() == b"replacement"
        assert os.listdir(m.path) == ["victim.txt"]
        m.umount()
    assert store_names(zerofs, "/") == ["victim.txt"]
    assert zerofs("cat", "/victim.txt").stdout == b"replacement"


# ---------------------------------------------------------------- namespace operations


def test_rename_files_and_directories(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """rename over files and empty dirs replaces them; over a non-empty dir is ENOTEMPTY; dirs move whole."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        root = m.path
        (root / "a").write_bytes(b"A")
        (root / "b").write_bytes(b"B")
        ino_a = os.stat(root / "a").st_ino
        os.rename(root / "a", root / "b")
        assert (root / "b").read_bytes() == b"A"
        assert os.stat(root / "b").st_ino == ino_a
        assert fails_with(os.stat, root / "a") == "ENOENT"

        # An open fd follows its file through a rename.
        fd = os.open(root / "b", os.O_WRONLY | os.O_APPEND)
        try:
            os.rename(root / "b", root / "c")
            os.write(fd, b"+")
        finally:
            os.close(fd)
        assert (root / "c").read_bytes() == b"A+"

        (root / "d1" / "inner").mkdir(parents=True)
        (root / "d1" / "inner" / "f").write_bytes(b"deep")
        (root / "empty").mkdir()
        (root / "full").mkdir()
        (root / "full" / "x").write_bytes(b"x")
        assert fails_with(os.rename, root / "d1", root / "full") == "ENOTEMPTY"
        assert (root / "d1" / "inner" / "f").read_bytes() == b"deep"
        assert (root / "full" / "x").read_bytes() == b"x"
        os.rename(root / "d1", root / "empty")  # over an empty directory
        assert (root / "empty" / "inner" / "f").read_bytes() == b"deep"
        assert not (root / "d1").exists()
        os.rename(root / "empty", root / "full" / "moved")  # into another directory
        assert (root / "full" / "moved" / "inner" / "f").read_bytes() == b"deep"
        os.replace(root / "c", root / "full" / "x")  # over a file in another directory
        assert (root / "full" / "x").read_bytes() == b"A+"
        assert sorted(os.listdir(root)) == ["full"]
        assert sorted(os.listdir(root / "full")) == ["moved", "x"]
        run("mv", root / "full" / "moved", root / "top")
        assert (root / "top" / "inner" / "f").read_bytes() == b"deep"
        m.umount()
    assert store_names(zerofs, "/") == ["full", "top"]
    assert store_names(zerofs, "/full") == ["x"]
    assert zerofs("cat", "/full/x", "/top/inner/f").stdout == b"A+deep"


def test_renameat2_noreplace_and_exchange(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """RENAME_NOREPLACE fails EEXIST on an existing target; RENAME_EXCHANGE swaps two entries atomically."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        root = m.path
        (root / "one").write_bytes(b"1")
        (root / "two").write_bytes(b"2")
        (root / "dir").mkdir()
        (root / "dir" / "inside").write_bytes(b"in")
        ino_one = os.stat(root / "one").st_ino
        ino_two = os.stat(root / "two").st_ino

        assert fails_with(renameat2, root / "one", root / "two", RENAME_NOREPLACE) == "EEXIST"
        assert (root / "one").read_bytes() == b"1"
        assert (root / "two").read_bytes() == b"2"
        renameat2(root / "one", root / "three", RENAME_NOREPLACE)
        assert (root / "three").read_bytes() == b"1"
        assert not (root / "one").exists()

        renameat2(root / "three", root / "two", RENAME_EXCHANGE)
        assert (root / "three").read_bytes() == b"2"
        assert (root / "two").read_bytes() == b"1"
        assert os.stat(root / "two").st_ino == ino_one
        assert os.stat(root / "three").st_ino == ino_two

        renameat2(root / "two", root / "dir", RENAME_EXCHANGE)  # a file and a directory
        assert (root / "dir").read_bytes() == b"1"
        assert (root / "two" / "inside").read_bytes() == b"in"
        assert fails_with(renameat2, root / "three", root / "missing", RENAME_EXCHANGE) == "ENOENT"
        assert sorted(os.listdir(root)) == ["dir", "three", "two"]
        m.umount()
    assert zerofs("cat", "/dir", "/three", "/two/inside").stdout == b"12in"
    assert store_stat(zerofs, "/two")["type"] == "dir"


def test_mkdir_and_rmdir(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """mkdir honours its mode; rmdir removes empty directories only (ENOTEMPTY otherwise)."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        d = m.path / "d"
        os.mkdir(d, 0o750)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o750
        assert stat.S_ISDIR(os.stat(d).st_mode)
        assert os.stat(d).st_nlink == 2
        assert fails_with(os.mkdir, d) == "EEXIST"
        os.makedirs(d / "x" / "y")
        (d / "x" / "y" / "f").write_bytes(b"f")
        assert fails_with(os.rmdir, d / "x") == "ENOTEMPTY"
        assert fails_with(os.rmdir, d / "x" / "y" / "f") == "ENOTDIR"
        os.unlink(d / "x" / "y" / "f")
        os.rmdir(d / "x" / "y")
        os.rmdir(d / "x")
        assert os.listdir(d) == []
        os.mkdir(m.path / "gone")
        os.rmdir(m.path / "gone")
        assert fails_with(os.rmdir, m.path / "gone") == "ENOENT"
        assert os.listdir(m.path) == ["d"]
        m.umount()
    assert store_names(zerofs, "/") == ["d"]
    assert store_names(zerofs, "/d") == []
    assert store_stat(zerofs, "/d")["mode"] == "0750"


def test_symlink_and_readlink(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """symlink stores the target verbatim; readlink returns it; following works; dangling links are ENOENT."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        root = m.path
        (root / "dir").mkdir()
        (root / "dir" / "target.txt").write_bytes(b"pointed at")
        os.symlink("dir/target.txt", root / "rel")
        os.symlink("/nonexistent/absolute/path", root / "abs")
        os.symlink("dir", root / "dirlink")
        assert os.readlink(root / "rel") == "dir/target.txt"
        assert os.readlink(root / "abs") == "/nonexistent/absolute/path"
        assert stat.S_ISLNK(os.lstat(root / "rel").st_mode)
        assert (root / "rel").read_bytes() == b"pointed at"
        assert (root / "dirlink" / "target.txt").read_bytes() == b"pointed at"
        assert fails_with(os.stat, root / "abs") == "ENOENT"
        assert fails_with(os.symlink, "x", root / "rel") == "EEXIST"
        assert fails_with(os.readlink, root / "dir" / "target.txt") == "EINVAL"
        os.unlink(root / "dirlink")  # removes the link, not the directory
        assert (root / "dir" / "target.txt").exists()
        m.umount()
    rel = store_stat(zerofs, "/rel")
    assert (rel["type"], rel["target"]) == ("symlink", "dir/target.txt")
    assert store_stat(zerofs, "/abs")["target"] == "/nonexistent/absolute/path"
    assert store_names(zerofs, "/") == ["abs", "dir", "rel"]


# ---------------------------------------------------------------- metadata


def test_chmod_chown_and_utime(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """chmod and chown change the entry; utime sets mtime to the ns (atime/ctime follow); writes bump mtime."""
    mtime_ns = 1_600_000_000_123_456_789
    with mounted(cli_repo, tmp_path / "mnt") as m:
        f = m.path / "f"
        f.write_bytes(b"data")
        os.chmod(f, 0o600)
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
        os.chmod(f, 0o4755)
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o4755
        os.chmod(f, 0o640)
        os.chown(f, 1234, 5678)
        assert (os.stat(f).st_uid, os.stat(f).st_gid) == (1234, 5678)
        os.chown(f, -1, 42)
        assert (os.stat(f).st_uid, os.stat(f).st_gid) == (1234, 42)
        before_ns = time.time_ns()
        os.utime(f, ns=(1_000_000_000_000_000_000, mtime_ns))
        st = os.stat(f)
        assert st.st_mtime_ns == mtime_ns
        assert st.st_atime_ns == 1_000_000_000_000_000_000
        assert st.st_ctime_ns >= before_ns
        assert stat.S_IMODE(st.st_mode) == 0o640  # utime kept the mode

        d = m.path / "d"
        d.mkdir()
        os.chmod(d, 0o700)
        os.utime(d, ns=(mtime_ns + 1, mtime_ns + 1))
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert os.stat(d).st_mtime_ns == mtime_ns + 1

        os.symlink("f", m.path / "link")
        os.utime(m.path / "link", ns=(mtime_ns + 2, mtime_ns + 2), follow_symlinks=False)
        assert os.lstat(m.path / "link").st_mtime_ns == mtime_ns + 2
        assert os.stat(f).st_mtime_ns == mtime_ns

        w = m.path / "written"
        w.write_bytes(b"x")
        os.utime(w, ns=(mtime_ns, mtime_ns))
        with open(w, "ab") as out:
            out.write(b"y")
        assert abs(os.stat(w).st_mtime_ns - time.time_ns()) < 10 * 10**9, "a write did not update mtime"
        t = m.path / "touched"
        t.write_bytes(b"")
        os.utime(t, ns=(mtime_ns, mtime_ns))
        run("touch", t)
        assert abs(os.stat(t).st_mtime_ns - time.time_ns()) < 10 * 10**9, "touch (UTIME_NOW) did not set mtime"
        m.umount()
    meta = store_stat(zerofs, "/f")
    assert (meta["mode"], meta["uid"], meta["gid"], meta["mtime_ns"]) == ("0640", 1234, 42, mtime_ns)
    d_meta = store_stat(zerofs, "/d")
    assert (d_meta["mode"], d_meta["mtime_ns"]) == ("0700", mtime_ns + 1)
    assert store_stat(zerofs, "/link")["mtime_ns"] == mtime_ns + 2


def test_directory_mtime_follows_changes_to_its_entries(cli_repo: Path, tmp_path: Path) -> None:
    """Creating, removing or renaming an entry sets its directory's mtime to now (POSIX; find -mtime relies on it)."""
    long_ago = 1_000_000_000 * 10**9
    with mounted(cli_repo, tmp_path / "mnt") as m:
        a = m.path / "a"
        b = m.path / "b"
        a.mkdir()
        b.mkdir()
        (a / "moving").write_bytes(b"m")
        (a / "doomed").write_bytes(b"d")
        (a / "olddir").mkdir()
        operations: list[tuple[str, Path, Callable[[], object]]] = [
            ("create", a, lambda: (a / "new").write_bytes(b"n")),
            ("unlink", a, lambda: os.unlink(a / "doomed")),
            ("mkdir", a, lambda: os.mkdir(a / "newdir")),
            ("rmdir", a, lambda: os.rmdir(a / "olddir")),
            ("symlink", a, lambda: os.symlink("new", a / "link")),
            ("rename within", a, lambda: os.rename(a / "new", a / "renamed")),
            ("rename out (source)", a, lambda: os.rename(a / "moving", b / "moving")),
            ("rename in (target)", b, lambda: os.rename(a / "renamed", b / "renamed")),
        ]
        updated = {}
        for name, directory, operation in operations:
            os.utime(directory, ns=(long_ago, long_ago))
            operation()
            updated[name] = abs(os.stat(directory).st_mtime_ns - time.time_ns()) < 10 * 10**9
        assert updated == dict.fromkeys(updated, True)


def test_statvfs(cli_repo: Path, tmp_path: Path) -> None:
    """statvfs answers with sane numbers and a 255-byte name limit; df works on the mount."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        sv = os.statvfs(m.path)
        assert sv.f_namemax == 255
        assert sv.f_bsize > 0
        assert sv.f_frsize > 0
        assert sv.f_blocks >= sv.f_bfree >= sv.f_bavail >= 0
        run("df", m.path)


def test_extended_attributes(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """user.* xattrs are stored, listed, replaced and removed (and persist); other namespaces are ENOTSUP."""
    zerofs("write", "/imported", input=b"i")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        f = m.path / "f"
        f.write_bytes(b"f")
        assert os.listxattr(m.path / "imported") == [], "bookkeeping attributes leak into listxattr"
        assert os.listxattr(f) == []
        os.setxattr(f, "user.color", b"blue")
        os.setxattr(f, "user.bin", bytes(range(256)))
        os.setxattr(f, "user.empty", b"")
        assert os.getxattr(f, "user.color") == b"blue"
        assert os.getxattr(f, "user.bin") == bytes(range(256))
        assert os.getxattr(f, "user.empty") == b""
        assert sorted(os.listxattr(f)) == ["user.bin", "user.color", "user.empty"]
        assert fails_with(os.setxattr, f, "user.color", b"red", os.XATTR_CREATE) == "EEXIST"
        assert fails_with(os.setxattr, f, "user.nope", b"x", os.XATTR_REPLACE) == "ENODATA"
        os.setxattr(f, "user.color", b"red", os.XATTR_REPLACE)
        assert os.getxattr(f, "user.color") == b"red"
        os.removexattr(f, "user.empty")
        assert fails_with(os.getxattr, f, "user.empty") == "ENODATA"
        assert fails_with(os.removexattr, f, "user.empty") == "ENODATA"
        assert fails_with(os.setxattr, f, "trusted.secret", b"x") == errno.errorcode[errno.EOPNOTSUPP]
        assert sorted(os.listxattr(f)) == ["user.bin", "user.color"]
        d = m.path / "d"
        d.mkdir()
        os.setxattr(d, "user.dir", b"yes")
        assert os.listxattr(d) == ["user.dir"]
        # Writing the file and renaming it keep its attributes.
        with open(f, "ab") as out:
            out.write(b"more")
        os.rename(f, m.path / "g")
        assert os.getxattr(m.path / "g", "user.color") == b"red"
        # Committed attributes travel with CLI clones and moves.
        fsync_path(m.path)
        zerofs("clone", "/d", "/d-clone")
        zerofs("mv", "/g", "/h")

        def cli_kept_xattrs() -> None:
            assert os.getxattr(m.path / "d-clone", "user.dir") == b"yes"
            assert os.getxattr(m.path / "h", "user.color") == b"red"

        eventually(cli_kept_xattrs, timeout=1.5)
        zerofs("mv", "/h", "/g")
        eventually(lambda: os.stat(m.path / "g"), timeout=1.5)
        m.umount()
    with mounted(cli_repo, tmp_path / "mnt", "--read-only") as m:
        g = m.path / "g"
        assert sorted(os.listxattr(g)) == ["user.bin", "user.color"]
        assert os.getxattr(g, "user.bin") == bytes(range(256))
        assert os.getxattr(m.path / "d", "user.dir") == b"yes"


# ---------------------------------------------------------------- errors


def test_errnos(cli_repo: Path, tmp_path: Path) -> None:
    """Each failing call reports the POSIX errno; a 255-byte name works and a 256-byte one is ENAMETOOLONG."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        root = m.path
        (root / "file").write_bytes(b"f")
        (root / "dir" / "sub").mkdir(parents=True)
        (root / "dir" / "sub" / "x").write_bytes(b"x")
        (root / "empty").mkdir()
        long = "n" * 256
        results = {
            "open missing": fails_with(os.open, root / "missing", os.O_RDONLY),
            "stat missing": fails_with(os.stat, root / "missing"),
            "unlink missing": fails_with(os.unlink, root / "missing"),
            "rename missing": fails_with(os.rename, root / "missing", root / "other"),
            "mkdir in missing": fails_with(os.mkdir, root / "missing" / "d"),
            "create in missing": fails_with(os.open, root / "missing" / "f", os.O_CREAT | os.O_WRONLY, 0o644),
            "mkdir existing dir": fails_with(os.mkdir, root / "dir"),
            "mkdir existing file": fails_with(os.mkdir, root / "file"),
            "create excl existing": fails_with(os.open, root / "file", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644),
            "symlink existing": fails_with(os.symlink, "t", root / "dir"),
            "stat under file": fails_with(os.stat, root / "file" / "x"),
            "create under file": fails_with(os.open, root / "file" / "x", os.O_CREAT | os.O_WRONLY, 0o644),
            "mkdir under file": fails_with(os.mkdir, root / "file" / "x"),
            "listdir file": fails_with(os.listdir, root / "file"),
            "rmdir file": fails_with(os.rmdir, root / "file"),
            "rename dir over file": fails_with(os.rename, root / "empty", root / "file"),
            "open dir for writing": fails_with(os.open, root / "dir", os.O_WRONLY),
            "unlink dir": fails_with(os.unlink, root / "dir"),
            "rename file over dir": fails_with(os.rename, root / "file", root / "empty"),
            "rmdir non-empty": fails_with(os.rmdir, root / "dir"),
            "rename over non-empty": fails_with(os.rename, root / "empty", root / "dir"),
            "create long name": fails_with(os.open, root / long, os.O_CREAT | os.O_WRONLY, 0o644),
            "mkdir long name": fails_with(os.mkdir, root / long),
            "symlink long name": fails_with(os.symlink, "t", root / long),
            "rename to long name": fails_with(os.rename, root / "file", root / long),
            "rename dir into itself": fails_with(os.rename, root / "dir", root / "dir" / "sub" / "inner"),
            "readlink of a file": fails_with(os.readlink, root / "file"),
        }
        enoent, eexist, enotdir, eisdir, enotempty, toolong = (
            "ENOENT",
            "EEXIST",
            "ENOTDIR",
            "EISDIR",
            "ENOTEMPTY",
            "ENAMETOOLONG",
        )
        assert results == {
            "open missing": enoent,
            "stat missing": enoent,
            "unlink missing": enoent,
            "rename missing": enoent,
            "mkdir in missing": enoent,
            "create in missing": enoent,
            "mkdir existing dir": eexist,
            "mkdir existing file": eexist,
            "create excl existing": eexist,
            "symlink existing": eexist,
            "stat under file": enotdir,
            "create under file": enotdir,
            "mkdir under file": enotdir,
            "listdir file": enotdir,
            "rmdir file": enotdir,
            "rename dir over file": enotdir,
            "open dir for writing": eisdir,
            "unlink dir": eisdir,
            "rename file over dir": eisdir,
            "rmdir non-empty": enotempty,
            "rename over non-empty": enotempty,
            "create long name": toolong,
            "mkdir long name": toolong,
            "symlink long name": toolong,
            "rename to long name": toolong,
            "rename dir into itself": "EINVAL",
            "readlink of a file": "EINVAL",
        }
        # Nothing those calls did changed the tree.
        assert sorted(os.listdir(root)) == ["dir", "empty", "file"]
        assert (root / "file").read_bytes() == b"f"
        # 255 bytes is the longest name, and it works.
        longest = "m" * 255
        (root / longest).write_bytes(b"long")
        assert longest in os.listdir(root)
        assert (root / longest).read_bytes() == b"long"


AS_NOBODY = textwrap.dedent("""
    import errno, json, os, sys
    root = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)

    def attempt(op, name):
        try:
            if op == "read":
                fd = os.open(name, os.O_RDONLY, dir_fd=root)
                os.read(fd, 100)
                os.close(fd)
            elif op == "write":
                os.close(os.open(name, os.O_WRONLY, dir_fd=root))
            elif op == "stat":
                os.stat(name, dir_fd=root)
            elif op == "mkdir":
                os.mkdir(name, dir_fd=root)
            elif op == "unlink":
                os.unlink(name, dir_fd=root)
            elif op == "create":
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644, dir_fd=root)
                st = os.fstat(fd)
                os.close(fd)
                return f"OK {st.st_uid}:{st.st_gid}"
        except OSError as exc:
            return errno.errorcode[exc.errno]
        return "OK"

    print(json.dumps({f"{op} {name}": attempt(op, name) for op, name in json.loads(sys.argv[2])}))
""")


def as_nobody(mountpoint: Path, ops: list[tuple[str, str]]) -> dict[str, str]:
    """Run ``ops`` (op, name relative to the mount) as uid/gid 65534; the errno name (or "OK") of each."""
    proc = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, str(mountpoint), json.dumps(ops)],
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def test_permissions_are_enforced_for_other_users(cli_repo: Path, tmp_path: Path) -> None:
    """With --allow-other the kernel checks modes (default_permissions): a 0600 root file is EACCES for nobody."""
    with mounted(cli_repo, tmp_path / "mnt", "--allow-other") as m:
        secret = m.path / "secret"
        secret.write_bytes(b"root only")
        os.chmod(secret, 0o600)
        (m.path / "public").write_bytes(b"everyone")
        os.chmod(m.path / "public", 0o644)
        (m.path / "locked").mkdir(mode=0o755)
        (m.path / "locked" / "f").write_bytes(b"f")
        (m.path / "open").mkdir()
        os.chmod(m.path / "open", 0o777)
        results = as_nobody(
            m.path,
            [
                ("read", "secret"),
                ("read", "public"),
                ("write", "public"),
                ("stat", "locked/f"),
                ("create", "locked/new"),
                ("mkdir", "locked/newdir"),
                ("unlink", "locked/f"),
                ("create", "open/mine"),
            ],
        )
        assert results == {
            "read secret": "EACCES",
            "read public": "OK",
            "write public": "EACCES",
            "stat locked/f": "OK",
            "create locked/new": "EACCES",
            "mkdir locked/newdir": "EACCES",
            "unlink locked/f": "EACCES",
            "create open/mine": f"OK {NOBODY}:{NOBODY}",
        }
        mine = os.stat(m.path / "open" / "mine")
        assert (mine.st_uid, mine.st_gid) == (NOBODY, NOBODY)
        assert sorted(os.listdir(m.path / "locked")) == ["f"]
        # root is not bound by modes.
        os.chmod(secret, 0o000)
        assert secret.read_bytes() == b"root only"


def test_mount_is_private_without_allow_other(cli_repo: Path, tmp_path: Path) -> None:
    """Without --allow-other another user cannot even stat the mount's files."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        (m.path / "public").write_bytes(b"everyone")
        os.chmod(m.path / "public", 0o644)
        results = as_nobody(m.path, [("stat", "public"), ("read", "public")])
        assert results == {"stat public": "EACCES", "read public": "EACCES"}


# ---------------------------------------------------------------- read-only mounts


@pytest.mark.parametrize("options", [("--read-only",), ("--at", "HEAD")], ids=["read-only", "at-HEAD"])
def test_read_only_mount_refuses_every_write(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    """On a read-only mount every write is EROFS, reads work, and unmounting commits nothing."""
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/data")
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", *options) as m:
        data = m.path / "data"
        assert read_tree(data) == read_tree(host)
        a = data / "a.txt"
        results = {
            "open for writing": fails_with(os.open, a, os.O_WRONLY),
            "open for append": fails_with(os.open, a, os.O_WRONLY | os.O_APPEND),
            "create": fails_with(os.open, data / "new", os.O_CREAT | os.O_WRONLY, 0o644),
            "truncate": fails_with(os.truncate, a, 0),
            "unlink": fails_with(os.unlink, a),
            "rename": fails_with(os.rename, a, data / "renamed"),
            "mkdir": fails_with(os.mkdir, data / "newdir"),
            "rmdir": fails_with(os.rmdir, data / "empty"),
            "symlink": fails_with(os.symlink, "a.txt", data / "newlink"),
            "chmod": fails_with(os.chmod, a, 0o600),
            "chown": fails_with(os.chown, a, 1, 1),
            "utime": fails_with(os.utime, a, ns=(1, 1)),
            "setxattr": fails_with(os.setxattr, a, "user.x", b"1"),
        }
        assert results == dict.fromkeys(results, "EROFS")
        assert read_tree(data) == read_tree(host)
        assert (data / "sub" / "big.bin").read_bytes() == (host / "sub" / "big.bin").read_bytes()
        m.umount()
    assert log_json(cli_repo) == before


def test_read_only_mount_follows_cli_commits(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """A --read-only mount of HEAD (unlike --at REV) still shows commits made by the CLI within a second."""
    zerofs("write", "/old", input=b"old")
    with mounted(cli_repo, tmp_path / "mnt", "--read-only") as m:
        assert os.listdir(m.path) == ["old"]
        zerofs("write", "/new", input=b"new")
        zerofs("rm", "/old")

        def followed() -> None:
            assert os.listdir(m.path) == ["new"]
            assert (m.path / "new").read_bytes() == b"new"

        eventually(followed, timeout=1.5)


def test_mount_at_an_older_revision_shows_the_older_tree(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """`mount --at HEAD~1` shows the tree as it was one commit ago, read-only."""
    zerofs("write", "/f.txt", input=b"version 1")
    zerofs("write", "/f.txt", input=b"version 2, longer")
    zerofs("mkdir", "/later")
    zerofs("write", "/later/g", input=b"g")
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", "--at", "HEAD~2") as m:
        assert (m.path / "f.txt").read_bytes() == b"version 2, longer"
        assert sorted(os.listdir(m.path)) == ["f.txt"]
        m.umount()
    with mounted(cli_repo, tmp_path / "mnt", "--at", "HEAD~3") as m:
        assert (m.path / "f.txt").read_bytes() == b"version 1"
        assert os.stat(m.path / "f.txt").st_size == 9
        assert fails_with(os.open, m.path / "f.txt", os.O_WRONLY) == "EROFS"
        assert fails_with(os.mkdir, m.path / "later") == "EROFS"
        m.umount()
    with mounted(cli_repo, tmp_path / "mnt", "--at", "HEAD~1") as m:
        assert sorted(os.listdir(m.path)) == ["f.txt", "later"]
        assert os.listdir(m.path / "later") == []
        m.umount()
    assert log_json(cli_repo) == before
    assert zerofs("cat", "/f.txt").stdout == b"version 2, longer"


# ---------------------------------------------------------------- commits and persistence


def test_writes_persist_after_umount(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """After umount the store holds what was written through the mount, in "mount:" commits; fsck is clean."""
    rng = random.Random(3)
    blob = rng.randbytes(400_000)
    mtime_ns = 1_700_000_000_000_000_001
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        root = m.path
        (root / "docs" / "deep").mkdir(parents=True)
        (root / "docs" / "readme.txt").write_bytes(b"read me\n")
        (root / "docs" / "deep" / "blob.bin").write_bytes(blob)
        (root / "docs" / "empty.txt").write_bytes(b"")
        (root / "emptydir").mkdir()
        os.symlink("docs/readme.txt", root / "link")
        os.chmod(root / "docs" / "readme.txt", 0o600)
        os.utime(root / "docs" / "readme.txt", ns=(mtime_ns, mtime_ns))
        expected = read_tree(root)
        m.umount()
    commits = new_commits(cli_repo, before)
    assert commits, "unmounting committed nothing"
    assert all(c["message"].startswith("mount:") for c in commits), [c["message"] for c in commits]
    assert store_names(zerofs, "/") == ["docs", "emptydir", "link"]
    assert store_names(zerofs, "/docs") == ["deep", "empty.txt", "readme.txt"]
    assert zerofs("cat", "/docs/readme.txt").stdout == b"read me\n"
    assert zerofs("cat", "/docs/deep/blob.bin").stdout == blob
    assert zerofs("cat", "/docs/empty.txt").stdout == b""
    readme = store_stat(zerofs, "/docs/readme.txt")
    assert (readme["mode"], readme["mtime_ns"]) == ("0600", mtime_ns)
    assert store_stat(zerofs, "/link")["target"] == "docs/readme.txt"
    zerofs("fsck", "--read-data")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        assert read_tree(m.path) == expected


def mount_processes(mountpoint: Path) -> list[int]:
    """Pids of `zerofs ... mount ... MOUNTPOINT` processes."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"zerofs" in argv and b"mount" in argv and os.fsencode(mountpoint) in argv:
            pids.append(int(pid))
    return pids


def test_umount_commits_and_waits_for_the_mount_process(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """`zerofs mount` returns with a mount process serving; `zerofs umount` commits and returns after it exits."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--commit-interval", NEVER) as m:
        assert len(mount_processes(mnt)) == 1
        (m.path / "f").write_bytes(b"at umount")
        m.umount()
        assert mount_processes(mnt) == [], "umount returned before the mount process exited"
        assert os.listdir(mnt) == []
    assert zerofs("cat", "/f").stdout == b"at umount"


def test_mount_without_changes_commits_nothing(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Reading through a mount, waiting past the commit interval and unmounting make no commit.

    With relatime (the default) the first reads of files written before their last access store
    new atimes: one commit at the interval for all of them, and none for the reads after it.
    """
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/data")
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", "1", "--atime", "noatime") as m:
        assert read_tree(m.path / "data") == read_tree(host)
        time.sleep(2.5)
        assert log_json(cli_repo) == before
        m.umount()
    assert log_json(cli_repo) == before
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", "1") as m:
        assert read_tree(m.path / "data") == read_tree(host)
        time.sleep(2.5)
        atimes = new_commits(cli_repo, before)
        assert len(atimes) == 1
        assert atimes[0]["message"].startswith("mount: ")
        assert "accessed" in atimes[0]["message"]
        for _ in range(3):
            assert read_tree(m.path / "data") == read_tree(host)
        time.sleep(2.5)
        m.umount()
    assert len(new_commits(cli_repo, before)) == 1


def test_fsync_commits_while_mounted(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """fsync and fdatasync of a file, and fsync of a directory, each commit before they return."""
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        fd = os.open(m.path / "journal", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"first ")
            os.fsync(fd)
            commits = new_commits(cli_repo, before)
            assert commits, "fsync did not commit"
            assert commits[0]["message"].startswith("mount:")
            assert zerofs("cat", "/journal").stdout == b"first "
            os.write(fd, b"second")
            os.fdatasync(fd)
            assert zerofs("cat", "/journal").stdout == b"first second"
            assert len(new_commits(cli_repo, before)) > len(commits), "fdatasync did not commit"
        finally:
            os.close(fd)
        os.mkdir(m.path / "dir")
        os.symlink("journal", m.path / "dir" / "link")
        fsync_path(m.path / "dir")
        assert store_names(zerofs, "/") == ["dir", "journal"]
        assert store_stat(zerofs, "/dir/link")["target"] == "journal"
        assert all(c["message"].startswith("mount:") for c in new_commits(cli_repo, before))


def test_commit_interval_commits_without_fsync(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """With --commit-interval 1 a change is committed within a few seconds, and an idle mount stays quiet."""
    before = log_json(cli_repo)
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", "1") as m:
        (m.path / "d").mkdir()
        (m.path / "d" / "f.txt").write_bytes(b"interval")

        def committed() -> None:
            assert zerofs("cat", "/d/f.txt", expect=None).stdout == b"interval"

        eventually(committed, timeout=5, interval=0.2)
        commits = new_commits(cli_repo, before)
        assert commits
        assert all(c["message"].startswith("mount:") for c in commits)
        time.sleep(2.5)
        assert len(new_commits(cli_repo, before)) == len(commits), "an idle mount committed"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_mount_process_commits_pending_data(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGTERM/SIGINT make the mount process commit what is pending, unmount and exit."""
    mnt = tmp_path / "mnt"
    before = log_json(cli_repo)
    with foreground_mount(cli_repo, mnt, "--commit-interval", NEVER) as proc:
        (mnt / "pending").mkdir()
        (mnt / "pending" / "data.bin").write_bytes(b"do not lose me" * 1000)
        proc.send_signal(signum)
        proc.wait(timeout=30)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        assert "Traceback" not in stderr, stderr

        def unmounted() -> None:
            assert not is_mounted(mnt)

        eventually(unmounted, timeout=5)
    assert zerofs("cat", "/pending/data.bin").stdout == b"do not lose me" * 1000
    commits = new_commits(cli_repo, before)
    assert commits
    assert all(c["message"].startswith("mount:") for c in commits)


# ---------------------------------------------------------------- the CLI alongside a mount


def test_cli_changes_show_up_in_the_mount_within_a_second(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """clone, write, rm and mv by the CLI are visible through the mount within a second, caches included."""
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/data")
    zerofs("mkdir", "/snapshots")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        data = m.path / "data"
        snapshots = m.path / "snapshots"
        # Warm the kernel's caches first.
        assert read_tree(data) == read_tree(host)
        assert os.listdir(snapshots) == []

        zerofs("clone", "/data", "/snapshots/s1")

        def cloned() -> None:
            assert read_tree(snapshots / "s1") == read_tree(host)

        eventually(cloned, timeout=1.5)

        same_size = b"ALPHA\n"
        zerofs("write", "/data/a.txt", input=same_size)

        def rewritten() -> None:
            assert (data / "a.txt").read_bytes() == same_size

        eventually(rewritten, timeout=1.5)

        zerofs("write", "/data/b.txt", input=b"short")

        def shrunk() -> None:
            assert (data / "b.txt").read_bytes() == b"short"
            assert os.stat(data / "b.txt").st_size == 5

        eventually(shrunk, timeout=1.5)

        assert not (data / "new.txt").exists()  # a failed lookup must not hide the name once it exists
        zerofs("write", "/data/new.txt", input=b"new")

        def created() -> None:
            assert (data / "new.txt").read_bytes() == b"new"
            assert "new.txt" in os.listdir(data)

        eventually(created, timeout=1.5)

        zerofs("rm", "/data/sub/deep/c.txt")

        def removed() -> None:
            assert not os.path.lexists(data / "sub" / "deep" / "c.txt")
            assert os.listdir(data / "sub" / "deep") == []

        eventually(removed, timeout=1.5)

        zerofs("mv", "/data/new.txt", "/data/renamed.txt")

        def moved() -> None:
            assert sorted(os.listdir(data)) == ["a.txt", "b.txt", "empty", "renamed.txt", "sub"]
            assert (data / "renamed.txt").read_bytes() == b"new"

        eventually(moved, timeout=1.5)

        zerofs("rm", "-r", "/snapshots/s1")

        def snapshot_gone() -> None:
            assert os.listdir(snapshots) == []
            assert not os.path.lexists(snapshots / "s1")

        eventually(snapshot_gone, timeout=1.5)
        # What the CLI did not touch still reads as imported.
        assert (data / "sub" / "big.bin").read_bytes() == (host / "sub" / "big.bin").read_bytes()


def test_mount_writes_survive_cli_commits(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Mount writes and CLI commits interleave: a command has the mount commit first, so the later write wins."""
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/data")
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        data = m.path / "data"
        (data / "from-mount.txt").write_bytes(b"mount wrote this")
        (data / "a.txt").write_bytes(b"the mount's a")
        (m.path / "mdir" / "inner").mkdir(parents=True)
        (m.path / "mdir" / "inner" / "x").write_bytes(b"x")
        os.rename(data / "b.txt", data / "b-renamed.txt")
        watched = [data, data / "sub" / "big.bin", data / "from-mount.txt", data / "a.txt", m.path / "mdir" / "inner"]
        inodes = [os.lstat(p).st_ino for p in watched]
        fd = os.open(data / "open.txt", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"part one, ")
            # The mount's a.txt is not committed yet (no interval): the CLI has the mount commit it
            # first, so its own write comes after and wins, as it would on a local disk.
            zerofs("write", "/data/a.txt", input=b"the CLI's a")
            zerofs("write", "/data/from-cli.txt", input=b"cli wrote this")
            zerofs("clone", "/data/sub", "/cli-clone")

            def cli_visible() -> None:
                assert (data / "from-cli.txt").read_bytes() == b"cli wrote this"
                assert (m.path / "cli-clone" / "deep" / "c.txt").read_bytes() == b"charlie\n"

            eventually(cli_visible, timeout=1.5)
            os.write(fd, b"part two")
        finally:
            os.close(fd)
        time.sleep(0.5)
        assert [os.lstat(p).st_ino for p in watched] == inodes, "merging a CLI commit renumbered inodes"
        assert (data / "from-mount.txt").read_bytes() == b"mount wrote this"
        assert (data / "a.txt").read_bytes() == b"the CLI's a"
        assert (data / "open.txt").read_bytes() == b"part one, part two"
        assert (m.path / "mdir" / "inner" / "x").read_bytes() == b"x"
        assert not (data / "b.txt").exists()
        assert (data / "b-renamed.txt").read_bytes() == b"bravo\n" * 100
        m.umount()
    assert zerofs("cat", "/data/from-mount.txt").stdout == b"mount wrote this"
    assert zerofs("cat", "/data/from-cli.txt").stdout == b"cli wrote this"
    assert zerofs("cat", "/data/a.txt").stdout == b"the CLI's a"
    assert zerofs("cat", "/data/open.txt").stdout == b"part one, part two"
    assert zerofs("cat", "/mdir/inner/x").stdout == b"x"
    assert zerofs("cat", "/cli-clone/deep/c.txt").stdout == b"charlie\n"
    assert zerofs("cat", "/data/b-renamed.txt").stdout == b"bravo\n" * 100
    assert "b.txt" not in store_names(zerofs, "/data")
    zerofs("fsck", "--read-data")


def test_appends_during_cli_commits_are_not_lost(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """A program appending through the mount while the CLI commits repeatedly loses no write."""
    lines = [b"line %d\n" % i for i in range(300)]
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", "1") as m:
        log = m.path / "log"

        def append() -> None:
            fd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
            try:
                for line in lines:
                    os.write(fd, line)
                    time.sleep(0.003)
            finally:
                os.close(fd)

        writer = threading.Thread(target=append)
        writer.start()
        try:
            for i in range(4):
                zerofs("write", f"/cli{i}", input=b"%d" % i)
        finally:
            writer.join()
        assert log.read_bytes() == b"".join(lines)
        m.umount()
    assert zerofs("cat", "/log").stdout == b"".join(lines)
    assert store_names(zerofs, "/") == ["cli0", "cli1", "cli2", "cli3", "log"]


# ---------------------------------------------------------------- workflows with ordinary tools


def test_cron_snapshots_pruning_and_restore(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Daily CLI clones while mounted, rm -rf and find -mtime pruning, and a restore by two mv's."""
    host = make_host_tree(tmp_path / "host")
    mirror = tmp_path / "mirror"
    shutil.copytree(host, mirror, symlinks=True)
    zerofs("import", str(host), "/data")
    zerofs("mkdir", "/snapshots")
    zerofs("clone", "/data", "/snapshots/old")
    rng = random.Random(11)
    expected: dict[str, Tree] = {}
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", NEVER) as m:
        data = m.path / "data"
        snapshots = m.path / "snapshots"
        assert os.listdir(snapshots) == ["old"]
        for day in range(1, 6):
            blob = rng.randbytes(70_000)
            for root in (data, mirror):
                with open(root / "log.txt", "ab") as out:
                    out.write(f"day {day}\n".encode())
                (root / "new").mkdir(exist_ok=True)
                (root / "new" / f"day{day}.bin").write_bytes(blob)
                if day == 3:
                    (root / "a.txt").unlink()
            for changed in (data / "log.txt", data / "new" / f"day{day}.bin", data / "new", data):
                fsync_path(changed)
            zerofs("clone", "/data", f"/snapshots/d{day}")
            expected[f"d{day}"] = read_tree(mirror)

            def snapshot_visible(day: int = day) -> None:
                assert read_tree(snapshots / f"d{day}") == expected[f"d{day}"]

            eventually(snapshot_visible, timeout=1.5)
        assert sorted(os.listdir(snapshots)) == ["d1", "d2", "d3", "d4", "d5", "old"]

        run("rm", "-rf", snapshots / "old")
        assert not os.path.lexists(snapshots / "old")
        month_ago = time.time() - 40 * 86400
        for name in ("d2", "d3"):
            os.utime(snapshots / name, (month_ago, month_ago))
        run("find", snapshots, "-maxdepth", "1", "-mindepth", "1", "-mtime", "+30", "-exec", "rm", "-rf", "{}", "+")
        assert sorted(os.listdir(snapshots)) == ["d1", "d4", "d5"]

        run("sh", "-c", "mv data data-broken && mv snapshots/d1 data", cwd=m.path)
        assert read_tree(data) == expected["d1"]
        assert read_tree(m.path / "data-broken") == expected["d5"]
        assert (data / "log.txt").read_bytes() == b"day 1\n"
        assert (data / "sub" / "big.bin").read_bytes() == (host / "sub" / "big.bin").read_bytes()
        assert sorted(os.listdir(snapshots)) == ["d4", "d5"]
        m.umount()
    assert store_names(zerofs, "/") == ["data", "data-broken", "snapshots"]
    assert store_names(zerofs, "/snapshots") == ["d4", "d5"]
    assert zerofs("cat", "/data/log.txt").stdout == b"day 1\n"
    assert zerofs("cat", "/data/a.txt").stdout == b"alpha\n"
    assert zerofs("cat", "/data/new/day1.bin").stdout == (mirror / "new" / "day1.bin").read_bytes()
    assert "a.txt" not in store_names(zerofs, "/data-broken")
    assert zerofs("cat", "/snapshots/d4/log.txt").stdout == b"day 1\nday 2\nday 3\nday 4\n"
    zerofs("fsck", "--read-data")
    with mounted(cli_repo, tmp_path / "mnt", "--read-only") as m:
        assert read_tree(m.path / "data") == expected["d1"]
        assert read_tree(m.path / "snapshots" / "d5") == expected["d5"]


def test_cp_r_and_tar_through_the_mount(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """cp -r / cp -rp copy a tree within the mount; tar archives from it and extracts into it intact."""
    host = make_host_tree(tmp_path / "host")
    zerofs("import", str(host), "/src")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        src = m.path / "src"
        run("cp", "-r", src, m.path / "copy")
        assert read_tree(m.path / "copy", modes=False) == read_tree(host, modes=False)
        run("cp", "-rp", src, m.path / "copy-p")
        assert read_tree(m.path / "copy-p") == read_tree(host)
        for rel in ("a.txt", "sub/big.bin", "sub", "empty"):
            assert os.stat(m.path / "copy-p" / rel).st_mtime_ns == os.stat(host / rel).st_mtime_ns, rel

        run("tar", "-cf", m.path / "src.tar", "-C", m.path, "src")
        (m.path / "x").mkdir()
        run("tar", "-xf", m.path / "src.tar", "-C", m.path / "x")
        assert read_tree(m.path / "x" / "src") == read_tree(host)
        for rel in ("a.txt", "sub/big.bin", "sub/deep/c.txt"):
            assert int(os.stat(m.path / "x" / "src" / rel).st_mtime) == int(os.stat(host / rel).st_mtime), rel

        # A host archive extracted into the mount, and the mount's archive extracted on the host.
        run("tar", "-cf", tmp_path / "host.tar", "-C", host, ".")
        (m.path / "y").mkdir()
        run("tar", "-xf", tmp_path / "host.tar", "-C", m.path / "y")
        assert read_tree(m.path / "y") == read_tree(host)
        (tmp_path / "out").mkdir()
        run("tar", "-xf", m.path / "src.tar", "-C", tmp_path / "out")
        assert read_tree(tmp_path / "out" / "src") == read_tree(host)
        m.umount()
    big = (host / "sub" / "big.bin").read_bytes()
    for prefix in ("/copy", "/copy-p", "/x/src", "/y"):
        assert zerofs("cat", f"{prefix}/sub/big.bin").stdout == big, prefix
        assert zerofs("cat", f"{prefix}/b.txt").stdout == b"bravo\n" * 100, prefix
    assert store_stat(zerofs, "/x/src/b.txt")["mode"] == "0600"
    assert store_stat(zerofs, "/y/sub/link")["target"] == "../a.txt"
    zerofs("fsck", "--read-data")
