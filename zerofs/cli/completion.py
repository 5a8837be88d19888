"""Shell completion of store paths, read from the repository the command line names.

Called by typer's completion protocol (the scripts in completions/ set
``_ZEROFS_COMPLETE``), never on a normal run. It must never print or fail:
any error (no repository, a bad revision, a missing directory) completes
nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zerofs.cli.context import Shared, with_repository
from zerofs.errors import ZerofsError
from zerofs.objects import Kind
from zerofs.paths import StorePath

if TYPE_CHECKING:
    from zerofs.repo import Repository


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


REVISIONS_OFFERED = 20
"""How many recent commits revision completion offers by id."""


def complete_revision(ctx: Any, incomplete: str) -> list[str]:
    """Return the revisions that start with ``incomplete``: HEAD, HEAD~N and recent commit ids."""
    try:
        return [r for r in _revisions(ctx) if r.startswith(incomplete)]
    except (ZerofsError, OSError, ValueError):
        return []


def complete_path_or_revision(ctx: Any, incomplete: str) -> list[str]:
    """Complete a store path, ``REV:/path``, or (before any "/" or ":") a revision."""
    if incomplete.startswith("/") or ":" in incomplete:
        return complete_store_path(ctx, incomplete)
    return ["/", *complete_revision(ctx, incomplete)] if not incomplete else complete_revision(ctx, incomplete)


def complete_revision_path(ctx: Any, incomplete: str) -> list[str]:
    """Complete a store path or ``REV:/path``: a revision is offered as ``REV:/``."""
    if incomplete.startswith("/") or ":" in incomplete:
        return complete_store_path(ctx, incomplete)
    revisions = [f"{r}:/" for r in complete_revision(ctx, incomplete)]
    return ["/", *revisions] if not incomplete else revisions


def _repository(ctx: Any) -> Repository:
    """The repository the command line names so far, read-only; live mounts are not asked to commit (too slow).

    An encrypted repository is refused (so nothing is completed): completion never asks for a password.
    """
    return with_repository(
        Shared(_option(ctx, "repo"), _option(ctx, "config")),
        readonly=True,
        settle_mounts=False,
        may_ask_password=False,
    )


def _revisions(ctx: Any) -> list[str]:
    from itertools import islice

    from zerofs.history import iter_log

    with _repository(ctx) as repository:
        ids = [commit_id.hex()[:12] for commit_id, _ in islice(iter_log(repository), REVISIONS_OFFERED)]
    back = [f"HEAD~{n}" for n in range(1, min(len(ids), 10))]
    return ["HEAD", *back, *ids]


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
    from zerofs.services.browse import at_revision, iter_names, resolve

    wanted = prefix.encode("utf-8", "surrogateescape")
    hidden_ok = prefix.startswith(".")
    with _repository(ctx) as repository:
        entry = resolve(repository, StorePath.parse(directory or "/"), at_revision(repository, rev or None))
        if entry.kind is not Kind.DIR:
            return []
        # Names only, no entries decoded nor paths built: 100,000 entries in a fraction of a second.
        found = [
            (name, kind is Kind.DIR)
            for name, kind in iter_names(repository, entry.id)
            if name.startswith(wanted) and (hidden_ok or not name.startswith(b"."))
        ]
    found.sort()
    head = f"{rev}:" if rev else ""
    return [
        f"{head}{directory}/{name.decode('utf-8', 'surrogateescape')}{'/' if is_dir else ''}" for name, is_dir in found
    ]
