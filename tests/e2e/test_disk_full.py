"""A full disk is an error (exit 5, 'disk full'), not a crash, and leaves the repository as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_one_error_line, log_json, tmpfs
from zerofs.errors import RepositoryError


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small-disk", "40m") as mount_point:
        yield mount_point


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
