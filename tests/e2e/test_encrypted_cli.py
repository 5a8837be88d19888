"""The command line meets an encrypted repository before it can give a password (issue #15): one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zerofs.crypto.slots import KdfParams
from zerofs.repo import Repository


@pytest.fixture
def encrypted_repo(tmp_path: Path) -> Path:
    path = tmp_path / "enc"
    Repository.init(path, author="t@h", password=b"pw", kdf=KdfParams(1, 64, 1)).close()
    return path


@pytest.mark.parametrize("args", [("ls", "/"), ("cat", "/x"), ("log",), ("fsck",)])
def test_commands_on_an_encrypted_repository_say_it_needs_a_password(
    zerofs: Any, encrypted_repo: Path, args: tuple[str, ...]
) -> None:
    proc = zerofs(*args, repo=encrypted_repo, expect=5)
    assert proc.stderr.strip().splitlines() == [
        f"zerofs: the repository at {encrypted_repo} is encrypted: it needs a password (give its password)"
    ]
