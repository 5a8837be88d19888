"""Retention and space: ``gc`` (cut history, delete what nothing kept references) and ``prune`` (snapshots).

Both take the ``--keep-*`` options, declared once in ``options`` and
handed over as a ``Retention``; what is kept is ``retention.py``'s rule.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.completion import complete_store_path
from zerofs.cli.context import Shared, with_repository
from zerofs.cli.options import command
from zerofs.paths import StorePath
from zerofs.retention import Retention

if TYPE_CHECKING:
    import typer


@command()
def gc(
    keep: Retention,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would go; change nothing.")] = False,
    compact: Annotated[
        bool, typer.Option("--compact", help="Then rewrite the index without its free pages (needs it to itself).")
    ] = False,
    break_lock: Annotated[
        bool,
        typer.Option(
            "--break-lock", help="S3 only: first remove the lock of a gc that died (make sure none is running)."
        ),
    ] = False,
    *,
    shared: Shared,
) -> None:
    """Cut history to a retention policy and delete what no kept commit references.

    Retention has restic forget's semantics; HEAD is always kept, and with no
    --keep option every commit is kept (gc then only deletes objects nothing
    references, such as those of an interrupted import). Then the space comes
    back: packs holding no live object are deleted, packs with 15% or more
    of dead bytes are rewritten. gc runs while other processes import, commit
    and mount: it forgets objects only in short steps taken in gaps between
    writers, never one a writer in flight may reference, and rewrites packs
    without stopping anyone.
    On S3, where other hosts write at any moment, gc publishes what it will
    delete, waits the repository's grace period (zerofs init --gc-grace,
    default 30 minutes) while writers on every host learn of it and copy
    what they reuse, marks again, and only then deletes; one gc at a time
    (a lock object; --break-lock removes one a killed gc left).
    Examples: zerofs gc --keep-last 10 --keep-within 30d --dry-run
    """
    from zerofs.cli import render
    from zerofs.cli.progress import GcBar
    from zerofs.services.gc import collect_garbage

    with (
        with_repository(shared, writer_lease=False) as repository,
        GcBar(enabled=not shared.quiet and not shared.as_json and sys.stderr.isatty()) as bar,
    ):
        progress = bar.update if bar.enabled else None
        result = collect_garbage(
            repository, keep, dry_run=dry_run, compact=compact, on_progress=progress, break_lock=break_lock
        )
    removed = [
        {"commit": commit_id.hex(), "time_ns": commit.time_ns, "message": commit.message}
        for commit_id, commit in result.commits_removed
    ]
    if shared.as_json:
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
    if shared.quiet:
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


@command()
def prune(
    directory: Annotated[
        str,
        typer.Argument(
            metavar="DIRECTORY", autocompletion=complete_store_path, help="Directory whose children are snapshots."
        ),
    ],
    keep: Retention,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="List what would go; change nothing.")] = False,
    *,
    shared: Shared,
) -> None:
    """Remove the snapshots under DIRECTORY that a retention policy does not keep, in one commit.

    Each child is dated by when it was created in the store (recorded when a
    clone, import or mkdir places it; renames keep it), not by its name. A
    child with no record is kept, with a warning. Run gc afterwards to
    reclaim the space. Example: zerofs prune /snapshots/daily --keep-daily 7 --keep-weekly 4
    """
    from zerofs.cli import render
    from zerofs.services.prune import prune_snapshots

    target = StorePath.parse(directory)
    with with_repository(shared) as repository:
        result = prune_snapshots(repository, target, keep, dry_run=dry_run)
    if shared.as_json:
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
    if shared.quiet:
        return
    verb = "would remove" if result.dry_run else "removed"
    for path, created in result.removed:
        sys.stdout.write(f"{verb}\t{render.iso_time(created)}\t{path}\n")
    sys.stdout.write(
        f"kept {len(result.kept) + len(result.undated)}, {verb} {len(result.removed)} under {result.directory}\n"
    )
