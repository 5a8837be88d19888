"""A full disk is an error (exit 5, 'disk full'), not a crash, and leaves the repository as it was."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_one_error_line, log_json
from zerofs.errors import RepositoryError

# Mounting a tmpfs needs root (CAP_SYS_ADMIN). The test suite runs as root (CI does), so a
# failed mount fails the test: a full disk is never faked and never skipped.


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"cannot mount a tmpfs (the suite needs root): {proc.stderr.strip()}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_import_onto_full_disk(zerofs: Any, small_disk: Path, tmp_path: Path) -> None:
    repo = small_disk / "repo"
    zerofs("init", repo=repo)
    zerofs("write", "/small.txt", repo=repo, input=b"still here")
    before = log_json(repo)
    listing = zerofs("ls", "-l", "/", repo=repo).stdout

    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for _ in range(60):
            handle.write(os.urandom(1 << 20))
    proc = zerofs("import", str(big), "/big.bin", repo=repo, expect=RepositoryError.exit_code)
    line = assert_one_error_line(proc)
    assert "disk full" in line

    # The repository still opens and shows what it showed before.
    assert log_json(repo) == before
    assert zerofs("ls", "-l", "/", repo=repo).stdout == listing
    assert zerofs("cat", "/small.txt", repo=repo).stdout == b"still here"
    zerofs("cat", "/big.bin", repo=repo, expect=3)


def test_write_onto_full_disk_then_recover(zerofs: Any, small_disk: Path) -> None:
    repo = small_disk / "repo"
    zerofs("init", repo=repo)
    before = log_json(repo)
    proc = zerofs("write", "/big", repo=repo, input=os.urandom(60 << 20), expect=RepositoryError.exit_code)
    assert "disk full" in assert_one_error_line(proc)
    assert log_json(repo) == before
    # Small writes work again once the failed one is gone.
    zerofs("write", "/after", repo=repo, input=b"ok")
    assert zerofs("cat", "/after", repo=repo).stdout == b"ok"
