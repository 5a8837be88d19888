"""Revisions, REV:/path and diff through ``python -m zerofs``: output, --json, errors, nothing written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repo_secrets
from tests.e2e.helpers import assert_fails, log_json
from zerofs.objects import Commit
from zerofs.repo import Repository, Staging


@pytest.fixture
def history(zerofs: Any, cli_repo: Path, tmp_path: Path) -> Path:
    """/data imported twice (a.txt changed, sub/c.txt added, old.txt removed), then /other written."""
    host = tmp_path / "host"
    (host / "sub").mkdir(parents=True)
    (host / "a.txt").write_bytes(b"alpha\n")
    (host / "old.txt").write_bytes(b"old\n")
    (host / "sub" / "b.txt").write_bytes(b"bravo\n")
    zerofs("import", str(host), "/data")
    (host / "a.txt").write_bytes(b"alpha, changed\n")
    (host / "old.txt").unlink()
    (host / "sub" / "c.txt").write_bytes(b"charlie\n")
    zerofs("import", str(host), "/data")
    zerofs("write", "/other", input=b"other\n")
    return cli_repo


def test_ls_and_cat_read_an_older_revision(zerofs: Any, history: Path) -> None:
    assert zerofs("ls", "HEAD~1:/data").stdout.decode().split() == ["a.txt", "sub"]
    assert zerofs("ls", "HEAD~2:/data").stdout.decode().split() == ["a.txt", "old.txt", "sub"]
    assert zerofs("cat", "HEAD~2:/data/a.txt").stdout == b"alpha\n"
    assert zerofs("cat", "/data/a.txt", "HEAD^^:/data/old.txt").stdout == b"alpha, changed\nold\n"
    rows = json.loads(zerofs("ls", "--json", "HEAD~2:/data/sub").stdout)
    assert [r["name"] for r in rows] == ["b.txt"]


def test_commit_id_prefix_names_a_revision(zerofs: Any, history: Path) -> None:
    oldest_import = log_json(history)[2]["commit"]
    assert zerofs("cat", f"{oldest_import[:7]}:/data/old.txt").stdout == b"old\n"
    assert zerofs("cat", f"{oldest_import[:4]}:/data/a.txt").stdout == b"alpha\n"
    info = json.loads(zerofs("stat", "--json", f"{oldest_import[:10]}:/data/a.txt").stdout)
    assert info["commit"] == oldest_import
    assert info["size"] == len(b"alpha\n")


def test_tree_and_export_of_an_older_revision(zerofs: Any, history: Path, tmp_path: Path) -> None:
    shown = zerofs("tree", "HEAD~2:/data").stdout.decode()
    assert shown.splitlines()[0] == "HEAD~2:/data"
    assert "old.txt" in shown
    out = tmp_path / "out"
    zerofs("export", "HEAD~2:/data", str(out))
    assert (out / "old.txt").read_bytes() == b"old\n"
    assert (out / "a.txt").read_bytes() == b"alpha\n"


def test_clone_from_history_restores_in_one_commit(zerofs: Any, history: Path) -> None:
    before = log_json(history)
    zerofs("clone", "HEAD~1:/data", "/restored")
    after = log_json(history)
    assert len(after) == len(before) + 1
    newest = after[0]
    assert newest["message"] == "clone HEAD~1:/data -> /restored"
    assert newest["operation"]["source_rev"] == "HEAD~1"
    assert newest["operation"]["source_commit"] == before[1]["commit"]
    assert zerofs("cat", "/restored/a.txt").stdout == b"alpha, changed\n"
    assert zerofs("diff", "HEAD~1:/data", "/restored").stdout == b""
    # snapshot is clone: it takes REV:/path as its source too
    zerofs("snapshot", "HEAD~3:/data", "/first")
    assert zerofs("cat", "/first/old.txt").stdout == b"old\n"


def test_diff_of_two_revisions(zerofs: Any, history: Path) -> None:
    assert zerofs("diff", "HEAD~2", "HEAD~1").stdout.decode() == (
        "M\t/data/a.txt\nD\t/data/old.txt\nA\t/data/sub/c.txt\n"
    )
    assert zerofs("diff", "HEAD~1", "HEAD").stdout.decode() == "A\t/other\n"
    assert zerofs("diff", "HEAD", "HEAD").stdout == b""


def test_diff_of_two_paths_with_stat(zerofs: Any, history: Path) -> None:
    zerofs("clone", "HEAD~1:/data", "/monday")
    zerofs("write", "/data/sub/b.txt", input=b"bravo, longer now\n")
    out = zerofs("diff", "/monday", "/data", "--stat").stdout.decode().splitlines()
    assert out == [
        "M\t/data/sub/b.txt\t6 -> 18 bytes (+12)",
        "1 paths changed (0 added, 1 modified, 0 deleted), 6 -> 18 bytes (+12)",
    ]


def test_diff_json(zerofs: Any, history: Path) -> None:
    doc = json.loads(zerofs("diff", "--json", "HEAD~2:/data", "HEAD~1:/data").stdout)
    head = log_json(history)
    assert doc["a"] == {"spec": "HEAD~2:/data", "commit": head[2]["commit"], "path": "/data"}
    assert doc["b"]["commit"] == head[1]["commit"]
    changes = {c["path"]: c for c in doc["changes"]}
    assert [c["status"] for c in doc["changes"]] == ["M", "D", "A"]
    assert set(changes["/data/a.txt"]) == {"status", "path", "type", "old_size", "new_size", "old_id", "new_id"}
    assert changes["/data/a.txt"]["old_size"] == 6
    assert changes["/data/a.txt"]["new_size"] == 15
    assert changes["/data/old.txt"]["new_id"] is None
    assert changes["/data/sub/c.txt"]["old_size"] is None
    assert changes["/data/sub/c.txt"]["type"] == "file"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("ls", "HEAD~9:/data"), 3),
        (("cat", "ffffffff:/data/a.txt"), 3),
        (("ls", "abc:/data"), 2),
        (("ls", "HEAD~x:/data"), 2),
        (("ls", ":/data"), 2),
        (("clone", "HEAD~9:/data", "/x"), 3),
        (("clone", "HEAD~2:/nothing", "/x"), 3),
        (("diff", "HEAD~9", "HEAD"), 3),
        (("diff", "nope", "HEAD"), 2),
        (("diff", "/data", "/data/a.txt"), 4),
        (("diff", "HEAD~1:/data/a.txt", "HEAD"), 4),
        (("diff", "/data", "/missing"), 3),
        (("export", "HEAD~9:/data", "out-never"), 3),
    ],
)
def test_bad_revisions_and_diffs_fail_cleanly(history: Path, args: tuple[str, ...], code: int) -> None:
    line = assert_fails(history, *args, expect=code)
    assert len(line) < 200


def test_ambiguous_prefix_is_a_usage_error(history: Path) -> None:
    """Two stored commits (off the history chain) whose ids share 4 hex digits."""
    with Repository.open(history, **repo_secrets()) as repository:
        root_id = repository.resolve_commit(repository.head_id()).root_id
        by_prefix: dict[str, Commit] = {}
        for time_ns in itertools.count():
            commit = Commit(root_id, (), time_ns, "test@host", "made up", {"op": "test"})
            other = by_prefix.setdefault(repository.encode_node(commit)[0].hex()[:4], commit)
            if other is not commit:
                break
        staging = Staging(repository)
        first, second = staging.put(other), staging.put(commit)
        with repository.batch() as batch:
            staging.write_to(batch)
    line = assert_fails(history, "ls", f"{first.hex()[:4]}:/", expect=2)
    assert "ambiguous" in line
    assert first.hex()[:12] in line
    assert second.hex()[:12] in line
