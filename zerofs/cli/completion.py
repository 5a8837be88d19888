"""Shell completion of store paths, read from the repository the command line names.

Called by typer's completion protocol (the scripts in completions/ set
``_ZEROFS_COMPLETE``), never on a normal run. It must never print or fail:
any error (no repository, a bad revision, a missing directory) completes
nothing.
"""

from __future__ import annotations

from typing import Any

from zerofs.cli.context import open_repository, settings
from zerofs.errors import ZerofsError
from zerofs.objects import Kind
from zerofs.paths import StorePath


def _option(ctx: Any, name: str) -> str | None:
    """A --repo/--config value from this command or the root options."""
    value = ctx.params.get(name) if ctx is not None else None
    while value is None and ctx is not None:
        value = (ctx.obj or {}).get(name) if isinstance(ctx.obj, dict) else None
        ctx = ctx.parent
    return value if isinstance(value, str) else None


def complete_store_path(ctx: Any, incomplete: str) -> list[str]:
    """Return the store paths (``/dir/`` for directories) that start with ``incomplete``.

    ``REV:/path`` completes inside that revision. Names starting with a dot
    are offered only when the typed prefix starts with one, as shells do.
    """
    try:
        return _complete(ctx, incomplete)
    except (ZerofsError, OSError, ValueError):
        return []


def _complete(ctx: Any, incomplete: str) -> list[str]:
    if not incomplete:
        return ["/"]
    rev = ""
    path_text = incomplete
    if not incomplete.startswith("/") and ":" in incomplete:
        rev, _, path_text = incomplete.partition(":")
        if not path_text:
            return [f"{rev}:/"]
    if not path_text.startswith("/"):
        return []
    directory, _, prefix = path_text.rpartition("/")
    from zerofs.services.browse import at_revision, list_path

    with open_repository(settings(_option(ctx, "repo"), _option(ctx, "config")), readonly=True) as repository:
        commit_id = at_revision(repository, rev or None)
        base = StorePath.parse(directory or "/")
        candidates = []
        for row in list_path(repository, base, commit_id=commit_id):
            name = row.entry.name.decode("utf-8", "surrogateescape")
            if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
                continue
            suffix = "/" if row.entry.kind is Kind.DIR else ""
            candidates.append(f"{rev + ':' if rev else ''}{directory}/{name}{suffix}")
    return candidates
