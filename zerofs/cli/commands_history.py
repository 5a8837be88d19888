"""Command bodies for issue #4 (history): same contract as ``commands.py``.

Plain functions taking parsed values, named like the typer command that calls
them; commands.__getattr__ finds them for the fast path.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from zerofs.cli.context import open_repository, settings

if TYPE_CHECKING:
    from zerofs.services.diff import Change, DiffResult, Side


def diff(
    a: str, b: str, *, show_stat: bool, repo: str | None, config: str | None, quiet: bool = False, as_json: bool
) -> None:
    """Print what changed from ``a`` to ``b`` (revisions, paths or REV:/path)."""
    from zerofs.services.diff import diff as diff_trees
    from zerofs.services.diff import parse_operand

    old, new = parse_operand(a), parse_operand(b)
    with open_repository(settings(repo, config), readonly=True) as repository:
        result = diff_trees(repository, old, new)
    if as_json:
        from zerofs.cli import render

        render.print_json(diff_json(result))
    elif show_stat and not quiet:
        _write_stat(result)
    elif not quiet:
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
