"""Fixtures shared by the unit tests: an overlay of the mount over a small stored tree, without a mount."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from zerofs.mount.overlay import Overlay
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.services import edit

NOW = 1_700_000_000_000_000_000
"""The overlay's start time (ns)."""


@pytest.fixture
def overlay(repo: Repository, tmp_path: Path) -> Overlay:
    """An overlay over /a (subdirectories b and c, a file f) and /e (empty)."""
    for path in ("/a/b", "/a/c", "/e"):
        edit.mkdir(repo, StorePath.parse(path), parents=True)
    edit.write_file(repo, StorePath.parse("/a/f"), io.BytesIO(b"x"))
    root_id = repo.resolve_commit(repo.head_id()).root_id
    spill = tmp_path / "spill"
    spill.mkdir()
    return Overlay(repo, root_id, str(spill), NOW)
