"""Retention selection, durations and grafts, on plain values and a real repository."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from zerofs.errors import UsageError
from zerofs.objects import Commit
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.retention import Retention, parse_duration
from zerofs.retention import select_kept as select_items
from zerofs.services.edit import clone, mkdir, remove_path, write_file
from zerofs.services.gc import collect_garbage


def select_kept(history: list[tuple[bytes, Commit]], policy: Retention) -> set[bytes]:
    return select_items([(commit_id, commit.time_ns) for commit_id, commit in history], policy)


HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS


def history(times_ns: list[int]) -> list[tuple[bytes, Commit]]:
    """Newest first, one commit per time."""
    out = []
    for n, t in enumerate(sorted(times_ns, reverse=True)):
        out.append((bytes([n]) * 32, Commit(b"\0" * 32, (), t, "a", f"c{n}", {})))
    return out


BASE = int(datetime.datetime(2026, 11, 24, 12, 0).timestamp() * 1e9)


@pytest.mark.parametrize(
    ("text", "parts"),
    [("30d", (0, 0, 0, 30, 0)), ("1y2m", (1, 2, 0, 0, 0)), ("2w", (0, 0, 2, 0, 0)), ("12h", (0, 0, 0, 0, 12))],
)
def test_parse_duration(text: str, parts: tuple[int, ...]) -> None:
    assert parse_duration(text) == parts


# Around and inside: spaces, a sign, an Arabic-Indic and a full-width digit (int() takes the last three).
@pytest.mark.parametrize(
    "text", ["", "0d", "30", "d30", "1x", "3 days", "-1d", "1d2y", " 30d", "30d\n", "+3d", "\u0663d", "\uff13d"]
)
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_no_option_keeps_everything() -> None:
    h = history([BASE - n * DAY_NS for n in range(5)])
    assert select_kept(h, Retention()) == {i for i, _ in h}


@pytest.mark.parametrize("duration", ["9999y", "99999999999999999999w", "99999999999999999999h"])
def test_keep_within_reaching_before_the_year_1_keeps_everything(duration: str) -> None:
    """A cutoff no datetime can hold is before every commit (it was 'internal error: ValueError')."""
    h = history([BASE - n * DAY_NS for n in range(5)])
    assert select_kept(h, Retention(keep_within=duration)) == {i for i, _ in h}


def test_keep_last_always_includes_newest() -> None:
    h = history([BASE - n * HOUR_NS for n in range(10)])
    assert select_kept(h, Retention(keep_last=3)) == {i for i, _ in h[:3]}
    assert select_kept(h, Retention(keep_daily=0, keep_weekly=1)) == {h[0][0]}


def test_keep_daily_takes_newest_of_each_day() -> None:
    # Three commits a day for five days.
    times = [BASE - d * DAY_NS - k * HOUR_NS for d in range(5) for k in range(3)]
    h = history(times)
    kept = select_kept(h, Retention(keep_daily=3))
    assert kept == {h[0][0], h[3][0], h[6][0]}


def test_keep_within_is_relative_to_the_newest_commit() -> None:
    h = history([BASE - n * DAY_NS for n in range(10)])
    kept = select_kept(h, Retention(keep_within="3d"))
    assert kept == {i for i, _ in h[:4]}


def test_keep_monthly_and_yearly() -> None:
    times = [int(datetime.datetime(2026 - y, m, 15).timestamp() * 1e9) for y in range(3) for m in (1, 6, 11)]
    h = history(times)
    assert len(select_kept(h, Retention(keep_monthly=4))) == 4
    assert len(select_kept(h, Retention(keep_yearly=2))) == 2


def _data(repo: Repository, n: int) -> None:
    for i in range(n):
        write_file(repo, StorePath.parse(f"/data/f{i}"), _reader(f"content {i} " * 1000), parents=True)


def _reader(text: str):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(text.encode())


def _read_all(repo: Repository) -> None:
    """Every commit in the log reads back completely (nodes and chunks)."""
    from zerofs.history import iter_log
    from zerofs.reachable import mark_commits as mark

    for commit_id, _ in iter_log(repo):
        seen: set[bytes] = set()
        mark(repo, [commit_id], seen)
        for object_id in seen:
            assert repo.has(object_id)


def test_gc_keeps_what_kept_commits_reach_and_frees_the_rest(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", author="t@h")
    _data(repo, 3)
    mkdir(repo, StorePath.parse("/snapshots"))
    for n in range(4):
        write_file(repo, StorePath.parse("/data/changing"), _reader(f"version {n} " * 5000))
        clone(repo, StorePath.parse("/data"), StorePath.parse(f"/snapshots/s{n}"))
    remove_path(repo, StorePath.parse("/snapshots/s0"), recursive=True)
    result = collect_garbage(repo, Retention(keep_last=1))
    assert result.commits_kept == 1
    assert result.bytes_freed > 0
    _read_all(repo)
    again = collect_garbage(repo, Retention(keep_last=1))
    assert again.objects_deleted == 0
    repo.close()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", author="t@h")
    _data(repo, 2)
    write_file(repo, StorePath.parse("/data/f0"), _reader("replaced"))
    ids_before = {i for i, _ in repo.iter_blobs()}
    head_before = repo.head_id()
    result = collect_garbage(repo, Retention(keep_last=1), dry_run=True)
    assert result.dry_run
    assert result.objects_deleted > 0
    assert {i for i, _ in repo.iter_blobs()} == ids_before
    assert repo.head_id() == head_before
    repo.close()
