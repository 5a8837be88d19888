"""History: ``log`` (the commits, newest first) and ``diff`` (what changed between two trees).

Both only read; ``diff`` has its documented JSON form here (``diff_json``).
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.completion import complete_path_or_revision, complete_store_path
from zerofs.cli.context import Shared, with_repository
from zerofs.cli.options import QUIET_DATA, command
from zerofs.paths import StorePath

if TYPE_CHECKING:
    import typer

    from zerofs.services.diff import Change, DiffResult, Side


@command(quiet_help=QUIET_DATA)
def log(
    store_path: Annotated[
        str | None,
        typer.Argument(
            metavar="[STORE_PATH]", autocompletion=complete_store_path, help="Only commits that changed this path."
        ),
    ] = None,
    max_count: Annotated[
        int | None,
        typer.Option("-n", "--max-count", metavar="N", min=0, help="Show at most N commits."),
    ] = None,
    *,
    shared: Shared,
) -> None:
    """Show the history of commits, newest first (JSON lines with --json)."""
    from zerofs.cli import render
    from zerofs.services.browse import log as iter_commits

    target = StorePath.parse(store_path) if store_path else None
    with with_repository(shared, readonly=True) as repository:
        commits = iter_commits(repository, limit=max_count, path=target)
        show = functools.partial(render.render_log, as_json=shared.as_json)
        render.show_or_drain(commits, show, is_silent=shared.is_silent)


@command(quiet_help=QUIET_DATA)
def diff(
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            autocompletion=complete_path_or_revision,
            help="Old side: a revision (HEAD~1), a path (/x) or REV:/path.",
        ),
    ],
    b: Annotated[
        str,
        typer.Argument(
            metavar="B", autocompletion=complete_path_or_revision, help="New side: a revision, a path or REV:/path."
        ),
    ],
    show_stat: Annotated[bool, typer.Option("--stat", help="Byte counts per path and a total line.")] = False,
    *,
    shared: Shared,
) -> None:
    """Show what changed from A to B: one 'A', 'M' or 'D' line per path, sorted.

    A and B are revisions (whole trees), store paths in HEAD, or REV:/path.
    Only subtrees whose ids differ are read. A type change is a D line then
    an A line; a mode- or mtime-only change is an M. Paths are shown as in
    B. A directory against a file is an error (exit 4).
    """
    from zerofs.services.diff import diff as diff_trees
    from zerofs.services.diff import parse_operand

    old, new = parse_operand(a), parse_operand(b)
    with with_repository(shared, readonly=True) as repository:
        result = diff_trees(repository, old, new)
    if shared.as_json:
        from zerofs.cli import render

        render.print_json(diff_json(result))
    elif show_stat and not shared.quiet:
        _write_stat(result)
    elif not shared.quiet:
        sys.stdout.writelines(f"{c.status}\t{c.path}\n" for c in result.changes)


def diff_json(result: DiffResult) -> dict[str, object]:
    """Return the documented JSON form of ``diff``."""
    return {"a": _side_json(result.a), "b": _side_json(result.b), "changes": [_change_json(c) for c in result.changes]}


def _side_json(side: Side) -> dict[str, object]:
    return {"spec": side.spec, "commit": side.commit_id.hex(), "path": str(side.path)}


def _change_json(change: Change) -> dict[str, object]:
    from zerofs.cli.render import type_name

    entry = change.new if change.new is not None else change.old
    assert entry is not None  # a change has at least one side
    return {
        "status": change.status,
        "path": str(change.path),
        "type": type_name(entry),
        "old_size": change.old_size,
        "new_size": change.new_size,
        "old_id": change.old.id.hex() if change.old is not None else None,
        "new_id": change.new.id.hex() if change.new is not None else None,
    }


def _write_stat(result: DiffResult) -> None:
    """One line per path with its sizes, then a total line."""
    counts = {"A": 0, "M": 0, "D": 0}
    old_total = new_total = 0
    out = sys.stdout
    for change in result.changes:
        old_size, new_size = change.old_size or 0, change.new_size or 0
        counts[change.status] += 1
        old_total += old_size
        new_total += new_size
        out.write(f"{change.status}\t{change.path}\t{old_size} -> {new_size} bytes ({new_size - old_size:+d})\n")
    out.write(
        f"{len(result.changes)} paths changed ({counts['A']} added, {counts['M']} modified, {counts['D']} deleted), "
        f"{old_total} -> {new_total} bytes ({new_total - old_total:+d})\n"
    )
