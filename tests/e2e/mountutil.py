"""Real FUSE mounts for the end-to-end tests: mount, wait, unmount, clean up.

Every mount test goes through ``mounted``: it runs ``zerofs mount`` as a real
background process, and on the way out ``zerofs umount`` (which commits what
is pending and waits for the mount process to exit). A mount left behind by a
killed process is lazily detached so a failing test never wedges the next.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_zerofs, zerofs_command

FUSE_DEVICE = Path("/dev/fuse")


def require_fuse() -> None:
    """Skip where /dev/fuse is absent; fail under CI, which must run the FUSE tests."""
    if FUSE_DEVICE.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("/dev/fuse is missing on a CI machine: the FUSE tests must run in CI")
    pytest.skip("no /dev/fuse on this machine")


def is_mounted(mountpoint: Path) -> bool:
    """True when ``mountpoint`` is a mount point in /proc/self/mountinfo."""
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


def force_unmount(mountpoint: Path) -> None:
    """Detach a mount whatever state its process is in (lazy unmount)."""
    if is_mounted(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False)


class Mount:
    """A live mount: where it is and which repository it serves."""

    def __init__(self, repo: Path, path: Path) -> None:
        self.repo = repo
        self.path = path

    def umount(self) -> None:
        """Unmount through the CLI (commits, then waits for the mount process)."""
        run_zerofs("umount", str(self.path), repo=self.repo)
        assert not is_mounted(self.path)


@contextmanager
def mounted(repo: Path, mountpoint: Path, *options: str) -> Iterator[Mount]:
    """Mount ``repo`` at ``mountpoint`` in the background for the ``with`` block."""
    require_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    run_zerofs("mount", *options, str(mountpoint), repo=repo, timeout=60)
    assert is_mounted(mountpoint), "zerofs mount returned but nothing is mounted"
    mount = Mount(repo, mountpoint)
    try:
        yield mount
    finally:
        if is_mounted(mountpoint):
            proc = subprocess.run(
                zerofs_command(repo, "umount", str(mountpoint)),
                capture_output=True,
                env=cli_env(),
                timeout=120,
                check=False,
            )
            if proc.returncode != 0:
                force_unmount(mountpoint)


@contextmanager
def foreground_mount(repo: Path, mountpoint: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``zerofs mount --foreground`` as a child process (for kill tests)."""
    require_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    # stderr goes to a file: a pipe nobody reads would block a mount that logs a lot.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            zerofs_command(repo, "mount", "--foreground", *options, str(mountpoint)),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        proc.stderr = log
        try:
            wait_mounted(mountpoint, proc)
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            force_unmount(mountpoint)


def wait_mounted(mountpoint: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait until ``mountpoint`` is mounted, failing if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not is_mounted(mountpoint):
        if proc.poll() is not None:
            stderr = ""
            if proc.stderr:
                proc.stderr.seek(0)
                stderr = proc.stderr.read().decode()
            raise AssertionError(f"zerofs mount exited with {proc.returncode}: {stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{mountpoint} was not mounted within {timeout} s")
        time.sleep(0.02)


def eventually(check: object, timeout: float = 1.0, interval: float = 0.05) -> None:
    """Retry the callable ``check`` (which asserts) until it passes or ``timeout`` runs out."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)
