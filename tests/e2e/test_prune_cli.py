"""prune dates snapshots by their recorded creation, not their names, and removes the rest in one commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import repo_secrets
from tests.e2e.helpers import assert_fails, log_json
from zerofs.dirnodes import dir_put
from zerofs.errors import NotFoundError, UsageError
from zerofs.history import apply_change
from zerofs.objects import DirEntry, DirNode, Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.tree import change_dir


def test_prune_trusts_creation_records_not_names(zerofs: Any, cli_repo: Path) -> None:
    zerofs("mkdir", "-p", "/data")
    zerofs("mkdir", "-p", "/snapshots/daily")
    # Created oldest first, but named so that sorting by name would invert them.
    for name in ("2026-12-31", "2026-06-01", "2020-01-01"):
        zerofs("clone", "/data", f"/snapshots/daily/{name}")
    zerofs("mv", "/snapshots/daily/2026-06-01", "/snapshots/daily/renamed")  # a rename keeps the date
    before = len(log_json(cli_repo))
    preview = json.loads(zerofs("prune", "/snapshots/daily", "--keep-last", "2", "--dry-run", "--json").stdout)
    assert [r["path"] for r in preview["removed"]] == ["/snapshots/daily/2026-12-31"]
    assert len(log_json(cli_repo)) == before
    result = json.loads(zerofs("prune", "/snapshots/daily", "--keep-last", "2", "--json").stdout)
    assert sorted(k["path"] for k in result["kept"]) == ["/snapshots/daily/2020-01-01", "/snapshots/daily/renamed"]
    assert zerofs("ls", "/snapshots/daily").stdout.decode().split() == ["2020-01-01", "renamed"]
    assert len(log_json(cli_repo)) == before + 1
    assert log_json(cli_repo)[0]["message"] == "prune /snapshots/daily (keep last 2)"


def test_undated_entries_are_kept_with_a_warning(zerofs: Any, cli_repo: Path) -> None:
    zerofs("mkdir", "-p", "/snapshots")
    zerofs("mkdir", "/snapshots/dated")
    repo = Repository.open(cli_repo, **repo_secrets())
    try:

        def add_undated(staging: Staging, root_id: bytes, now_ns: int) -> bytes:
            entry = DirEntry(b"legacy", Kind.DIR, 0o40755, 0, 0, 1, 0, staging.put(DirNode()))
            return change_dir(
                staging, root_id, StorePath.parse("/snapshots"), lambda d: dir_put(staging, d, entry), now_ns
            )

        apply_change(repo, add_undated, message="add an entry without a creation record", operation={})
    finally:
        repo.close()
    proc = zerofs("prune", "/snapshots", "--keep-last", "1")
    assert "legacy" in proc.stderr
    assert "no creation time" in proc.stderr
    assert zerofs("ls", "/snapshots").stdout.decode().split() == ["dated", "legacy"]


def test_prune_bad_inputs(zerofs: Any, cli_repo: Path) -> None:
    zerofs("mkdir", "-p", "/snapshots/a")
    line = assert_fails(cli_repo, "prune", "/snapshots", expect=UsageError.exit_code)
    assert (
        line
        == "zerofs: prune needs at least one rule of what to keep (give a --keep option, for example --keep-daily 7)"
    )
    assert_fails(cli_repo, "prune", "/nothing", "--keep-last", "1", expect=NotFoundError.exit_code)
    assert_fails(cli_repo, "prune", "/snapshots", "--keep-within", "soon", expect=UsageError.exit_code)
    assert_fails(cli_repo, "prune", "/snapshots/a", "--keep-last", "1", "--keep-daily", "-1", expect=2)
