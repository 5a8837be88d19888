"""rm takes several paths and quoted wildcards, expanded against the store, in one commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.helpers import assert_fails, log_json
from zerofs.errors import NotFoundError


def _snapshots(zerofs: Any, names: list[str]) -> None:
    for name in names:
        zerofs("mkdir", "-p", f"/snapshots/{name}")


def test_glob_removes_matches_in_one_commit(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    _snapshots(zerofs, ["2026-01-01", "2026-01-02", "2026-02-01", ".2026-01-hidden"])
    # A host file matching the pattern must not matter: the store is what is expanded.
    (tmp_path / "2026-01-99").write_text("host")
    before = len(log_json(cli_repo))
    result = json.loads(zerofs("rm", "-r", "--json", "/snapshots/2026-01-*").stdout)
    assert result["removed"] == ["/snapshots/2026-01-01", "/snapshots/2026-01-02"]
    assert len(log_json(cli_repo)) == before + 1
    listing = zerofs("ls", "-a", "/snapshots").stdout.decode().split()
    assert listing == [".2026-01-hidden", "2026-02-01"]


def test_question_mark_brackets_and_several_paths(zerofs: Any, cli_repo: Path) -> None:
    _snapshots(zerofs, ["a1", "a2", "b1", "star*"])
    zerofs("rm", "-r", "/snapshots/a?", "/snapshots/star[*]")
    assert zerofs("ls", "/snapshots").stdout.decode().split() == ["b1"]


def test_no_match_is_not_found_unless_forced(zerofs: Any, cli_repo: Path) -> None:
    _snapshots(zerofs, ["keep"])
    before = log_json(cli_repo)
    line = assert_fails(cli_repo, "rm", "-r", "/snapshots/nothing-*", expect=NotFoundError.exit_code)
    assert "nothing-*" in line
    assert log_json(cli_repo) == before
    zerofs("rm", "-r", "-f", "/snapshots/nothing-*")
    assert log_json(cli_repo) == before


def test_glob_needs_recursive_for_non_empty_directories(zerofs: Any, cli_repo: Path) -> None:
    zerofs("mkdir", "-p", "/d/x/inner")
    before = log_json(cli_repo)
    assert_fails(cli_repo, "rm", "/d/*", expect=4)
    assert log_json(cli_repo) == before
