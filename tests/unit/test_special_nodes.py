"""Special files (FIFOs, sockets, devices; issue #12) in the services: fsck's check of type, diff, usage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zerofs.history import apply_change
from zerofs.objects import DirEntry, Kind, ObjectId, special_node
from zerofs.paths import RevPath, StorePath
from zerofs.repo import Repository, Staging
from zerofs.services.diff import diff
from zerofs.services.fsck import Finding, FindingKind, check
from zerofs.services.usage import disk_usage
from zerofs.tree import place

P = StorePath.parse


def put_special(repo: Repository, path: str, mode: int, node_mode: int, rdev: int = 0) -> None:
    """Commit an entry of ``mode`` at ``path`` naming the special node of ``node_mode`` and ``rdev``."""
    node = special_node(node_mode, rdev)

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        node_id = staging.put(node)
        entry = DirEntry(P(path).name, Kind.SPECIAL, mode, 0, 0, 1, 0, node_id)
        return place(staging, root_id, P(path), entry, now_ns, parents=True, replace=True)

    apply_change(repo, change, message=f"put {path}", operation={"op": "test"})


def findings(repo: Repository) -> list[Finding]:
    return [event for event in check(repo, read_data=True) if isinstance(event, Finding)]


@pytest.fixture
def special_repo(tmp_path: Path) -> Repository:
    return Repository.init(tmp_path / "repo", author="t@h")


def test_fsck_accepts_special_entries_whose_node_has_their_type(special_repo: Repository) -> None:
    with special_repo as repo:
        put_special(repo, "/d/pipe", stat.S_IFIFO | 0o644, stat.S_IFIFO)
        put_special(repo, "/d/null", stat.S_IFCHR | 0o666, stat.S_IFCHR, os.makedev(1, 3))
        put_special(repo, "/d/sock", stat.S_IFSOCK | 0o755, stat.S_IFSOCK)
        assert findings(repo) == []


def test_fsck_reports_an_entry_whose_node_is_another_type(special_repo: Repository) -> None:
    """A FIFO entry naming a character device's node is a wrong-kind error at that path."""
    with special_repo as repo:
        put_special(repo, "/ok", stat.S_IFIFO | 0o644, stat.S_IFIFO)
        put_special(repo, "/bad", stat.S_IFIFO | 0o644, stat.S_IFCHR, os.makedev(1, 3))
        found = findings(repo)
    assert [(f.kind, str(f.path)) for f in found] == [(FindingKind.WRONG_KIND, "/bad")]
    assert found[0].detail == "the entry's mode says fifo, its node holds a character device"


def test_diff_tells_a_new_device_number_from_a_new_type(special_repo: Repository) -> None:
    with special_repo as repo:
        put_special(repo, "/a/dev", stat.S_IFCHR | 0o600, stat.S_IFCHR, os.makedev(1, 3))
        put_special(repo, "/a/x", stat.S_IFIFO | 0o600, stat.S_IFIFO)
        put_special(repo, "/b/dev", stat.S_IFCHR | 0o600, stat.S_IFCHR, os.makedev(1, 5))
        put_special(repo, "/b/x", stat.S_IFSOCK | 0o600, stat.S_IFSOCK)
        result = diff(repo, RevPath.parse("/a"), RevPath.parse("/b"))
    sides = [(c.status, str(c.path), c.new if c.new is not None else c.old) for c in result.changes]
    assert [(status, path, stat.S_IFMT(entry.mode)) for status, path, entry in sides if entry is not None] == [
        ("M", "/b/dev", stat.S_IFCHR),
        ("D", "/b/x", stat.S_IFIFO),
        ("A", "/b/x", stat.S_IFSOCK),
    ]


def test_special_files_have_no_apparent_bytes(special_repo: Repository) -> None:
    with special_repo as repo:
        put_special(repo, "/s/null", stat.S_IFCHR | 0o666, stat.S_IFCHR, os.makedev(1, 3))
        put_special(repo, "/s/pipe", stat.S_IFIFO | 0o644, stat.S_IFIFO)
        (usage,) = disk_usage(repo, [P("/s")])
    assert usage.apparent_bytes == 0
    assert usage.n_objects == 3  # the directory and two special nodes
