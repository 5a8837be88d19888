"""Command bodies for issue #4 (gc): same contract as ``commands.py``.

Plain functions taking parsed values, named like the typer command that calls
them; commands.__getattr__ finds them for the fast path.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from zerofs.cli.context import settings
from zerofs.repo import Repository

if TYPE_CHECKING:
    from zerofs.retention import Retention


def gc(
    *,
    keep_last: int,
    keep_within: str | None,
    keep_hourly: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
    dry_run: bool,
    compact: bool,
    repo: str | None,
    break_lock: bool = False,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Cut history to the retention policy, delete unreferenced objects, optionally compact."""
    from zerofs.cli import render
    from zerofs.cli.context import open_repository
    from zerofs.services.gc import collect_garbage

    policy = _retention(keep_last, keep_within, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    found = settings(repo, config)
    repository: Repository = open_repository(found, writer_lease=False)
    from zerofs.cli.progress import GcBar

    try:
        with GcBar(enabled=not quiet and not as_json and sys.stderr.isatty()) as bar:
            progress = bar.update if bar.enabled else None
            result = collect_garbage(
                repository, policy, dry_run=dry_run, compact=compact, on_progress=progress, break_lock=break_lock
            )
    finally:
        repository.close()
    removed = [
        {"commit": commit_id.hex(), "time_ns": commit.time_ns, "message": commit.message}
        for commit_id, commit in result.commits_removed
    ]
    if as_json:
        render.print_json(
            {
                "dry_run": result.dry_run,
                "commits_total": result.commits_total,
                "commits_kept": result.commits_kept,
                "commits_removed": removed,
                "objects_deleted": result.objects_deleted,
                "bytes_freed": result.bytes_freed,
                "waited_seconds": round(result.waited_seconds, 3),
                "packs_deleted": result.packs_deleted,
                "packs_rewritten": result.packs_rewritten,
                "bytes_reclaimed": result.bytes_reclaimed,
                "compacted": None
                if result.compacted is None
                else {"bytes_before": result.compacted[0], "bytes_after": result.compacted[1]},
            }
        )
        return
    if quiet:
        return
    out = sys.stdout
    verb = "would remove" if result.dry_run else "removed"
    for item in removed:
        out.write(
            f"{verb}\t{str(item['commit'])[:12]}\t{render.iso_time(int(str(item['time_ns'])))}\t{item['message']}\n"
        )
    what = "would free" if result.dry_run else "freed"
    out.write(
        f"kept {result.commits_kept} of {result.commits_total} commits; "
        f"{'would delete' if result.dry_run else 'deleted'} {result.objects_deleted} objects, "
        f"{what} {render.human_size(result.bytes_freed)}\n"
    )
    if result.packs_deleted or result.packs_rewritten:
        where = "in the bucket" if repository.is_shared else "on disk"
        out.write(
            f"deleted {result.packs_deleted} and rewrote {result.packs_rewritten} packs: "
            f"{render.human_size(result.bytes_reclaimed)} back {where}\n"
        )
    if result.compacted is not None:
        before, after = result.compacted
        out.write(f"compacted the index: {render.human_size(before)} -> {render.human_size(after)}\n")


def prune(
    directory: str,
    *,
    keep_last: int,
    keep_within: str | None,
    keep_hourly: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
    dry_run: bool,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Remove the snapshot directories under DIRECTORY that the policy does not keep."""
    from zerofs.cli import render
    from zerofs.cli.context import open_repository
    from zerofs.paths import StorePath
    from zerofs.services.prune import prune_snapshots

    policy = _retention(keep_last, keep_within, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    target = StorePath.parse(directory)
    with open_repository(settings(repo, config)) as repository:
        result = prune_snapshots(repository, target, policy, dry_run=dry_run)
    if as_json:
        render.print_json(
            {
                "directory": str(result.directory),
                "dry_run": result.dry_run,
                "commit": result.commit_id.hex() if result.commit_id else None,
                "kept": [{"path": str(p), "created_ns": t} for p, t in result.kept],
                "removed": [{"path": str(p), "created_ns": t} for p, t in result.removed],
                "undated": [str(p) for p in result.undated],
            }
        )
        return
    for path in result.undated:
        sys.stderr.write(f"zerofs: warning: kept {path}: no creation time recorded\n")
    if quiet:
        return
    verb = "would remove" if result.dry_run else "removed"
    for path, created in result.removed:
        sys.stdout.write(f"{verb}\t{render.iso_time(created)}\t{path}\n")
    sys.stdout.write(
        f"kept {len(result.kept) + len(result.undated)}, {verb} {len(result.removed)} under {result.directory}\n"
    )


def _retention(
    keep_last: int,
    keep_within: str | None,
    keep_hourly: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    keep_yearly: int,
) -> Retention:
    """Build the policy; a nonsense duration fails here, before the repository is opened."""
    from zerofs.retention import Retention, parse_duration

    if keep_within is not None:
        parse_duration(keep_within)
    return Retention(keep_last, keep_within, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
