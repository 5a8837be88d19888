"""Assertions shared by the e2e tests."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import run_zerofs


def log_json(repo: Path) -> list[dict[str, Any]]:
    """The repository's history as ``zerofs log --json`` prints it (newest first)."""
    out = run_zerofs("log", "--json", repo=repo).stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """A failed command printed exactly one ``zerofs: `` line on stderr and no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    assert lines[0].startswith("zerofs: "), lines[0]
    assert "internal error" not in lines[0], lines[0]
    return lines[0]


def assert_fails(
    repo: Path,
    *args: str,
    expect: int,
    input: bytes | None = None,
    stdout_empty: bool = True,
    before: list[dict[str, Any]] | None = None,
) -> str:
    """Run a command that must fail: its exit code, one error line, the repository untouched.

    ``before`` is the log the repository is known to have (saves one subprocess).
    """
    if before is None:
        before = log_json(repo)
    proc = run_zerofs(*args, repo=repo, input=input, expect=expect)
    line = assert_one_error_line(proc)
    if stdout_empty:
        assert proc.stdout == b"", proc.stdout[:200]
    assert log_json(repo) == before, "a failed command changed the repository"
    return line


@contextmanager
def unreadable_file(path: Path) -> Iterator[Path]:
    """Make ``path`` a regular file whose open() fails even for root, for the ``with`` block.

    Tests run as root, for whom chmod 000 changes nothing; bind-mounting
    /proc/1/mem over a file gives a regular file whose open() fails (EACCES).
    """
    path.touch()
    subprocess.run(["mount", "--bind", "/proc/1/mem", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fsck_warnings(repo: Path, context: str) -> list[str]:
    """Run ``fsck --read-data``: it must exit 0 with no traceback; return its warning lines."""
    proc = run_zerofs("fsck", "--read-data", repo=repo, expect=None, timeout=300)
    out = proc.stdout.decode("utf-8", "replace")
    assert "Traceback" not in proc.stderr, f"{context}: fsck --read-data crashed:\n{proc.stderr}"
    assert proc.returncode == 0, f"{context}: fsck --read-data exit {proc.returncode}:\n{out[-4000:]}\n{proc.stderr}"
    return [line for line in out.splitlines() if line.startswith("warning:")]


def gc_leaves_it_clean(repo: Path, context: str, *gc_args: str) -> None:
    """Run gc; then ``fsck --read-data`` passes without a warning, and HEAD holds what it held."""
    head_before = head_files(repo)
    first_before = log_json(repo)[0]["commit"]
    gc = run_zerofs("gc", *gc_args, repo=repo, expect=None, timeout=300)
    assert "Traceback" not in gc.stderr, f"{context}: zerofs gc {' '.join(gc_args)} after the kill:\n{gc.stderr}"
    assert gc.returncode == 0, (
        f"{context}: zerofs gc {' '.join(gc_args)} after the kill: exit {gc.returncode}\n{gc.stderr}"
    )
    warnings = fsck_warnings(repo, f"{context}, after gc")
    assert not warnings, f"{context}: gc left what fsck warns about:\n" + "\n".join(warnings)
    assert log_json(repo)[0]["commit"] == first_before, f"{context}: gc moved HEAD"
    assert head_files(repo) == head_before, f"{context}: gc changed what HEAD holds"


def head_files(repo: Path) -> dict[str, tuple[str, str, int]]:
    """Every entry of HEAD but directories: store path -> (type, id, size)."""
    rows = json.loads(run_zerofs("ls", "-R", "--json", "/", repo=repo).stdout)
    return {row["path"]: (row["type"], row["id"], row["size"]) for row in rows if row["type"] != "dir"}


@contextmanager
def tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (``40m``) at ``mount_point`` for the block: a small disk that fills up.

    Mounting needs root (CAP_SYS_ADMIN); the suite runs as root, as CI does, so a
    failed mount fails the test: a full disk is never faked and never skipped.
    """
    mount_point.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"cannot mount a tmpfs (the suite needs root): {proc.stderr.strip()}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


AT_FDCWD = -100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
_LIBC = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path: Path, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """utimensat(2), following symlinks, with raw (seconds, nanoseconds): UTIME_NOW and UTIME_OMIT pass through."""
    times = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    if _LIBC.utimensat(AT_FDCWD, os.fsencode(path), times, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(path))
