"""Changing the store by name: ``clone`` (``snapshot``), ``write``, ``mkdir``, ``rm`` and ``mv``.

Each makes one commit through ``services.edit``, or none if nothing
changed, and reports it the same way (``_report``); none touches the
tree itself. Declared as ``options`` describes.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Optional

from zerofs.cli.completion import complete_revision_path, complete_store_path
from zerofs.cli.context import Shared, with_repository
from zerofs.cli.options import command
from zerofs.errors import UsageError
from zerofs.paths import RevPath, StorePath

if TYPE_CHECKING:
    import typer

PARENTS_HELP = "Create missing parent directories."


def _report(commit_id: bytes | None, message: str, shared: Shared) -> None:
    """Say which commit a change made (``--json``: as an object), or that nothing changed."""
    if shared.as_json:
        from zerofs.cli import render

        render.print_json({"commit": commit_id.hex() if commit_id else None, "message": message})
    elif commit_id is None:
        shared.done(f"{message}: nothing changed")
    else:
        shared.done(f"[{commit_id.hex()[:12]}] {message}")


@command()
def clone(
    source: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Argument(
            metavar="SOURCE",
            autocompletion=complete_revision_path,
            help="Store path to clone, or REV:/path to restore from history.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Argument(metavar="DESTINATION", autocompletion=complete_store_path, help="New store path.")
    ] = None,
    source_opt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--source", "-s", metavar="SOURCE", help="Store path to clone, or REV:/path."),
    ] = None,
    target_opt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--destination", "-d", metavar="DESTINATION", help="New store path."),
    ] = None,
    parents: Annotated[bool, typer.Option("--parents", "-p", help=PARENTS_HELP)] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace DESTINATION if it exists.")] = False,
    *,
    shared: Shared,
) -> None:
    """Clone SOURCE to DESTINATION: an instant snapshot, whatever its size.

    SOURCE may name a revision (HEAD~3:/data): restoring from history is a clone too.
    Names hard-linked inside SOURCE stay linked to each other in the clone, never
    to SOURCE's names, so a snapshot stays as it was whatever is written later.
    """
    from zerofs.services.browse import at_revision
    from zerofs.services.edit import clone as clone_path

    src = source_opt or source
    dst = target_opt or target
    if src is None or dst is None:
        raise UsageError("clone needs a SOURCE and a DESTINATION (positional or --source/--destination)")
    if (source_opt and source) or (target_opt and target):
        raise UsageError("give SOURCE and DESTINATION either as arguments or as --source/--destination, not both")
    found = shared.settings()
    parents = parents or bool(found.defaults.get("parents", False))
    source_path, target_path = RevPath.parse(src), StorePath.parse(dst)
    with with_repository(found) as repository:
        result = clone_path(
            repository,
            source_path.path,
            target_path,
            parents=parents,
            force=force,
            source_commit_id=at_revision(repository, source_path.rev),
            source_rev=source_path.rev,
        )
    _report(result.commit_id, result.message, shared)


@command()
def write(
    store_path: Annotated[
        str, typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="File to write.")
    ],
    parents: Annotated[bool, typer.Option("--parents", "-p", help=PARENTS_HELP)] = False,
    *,
    shared: Shared,
) -> None:
    """Write standard input to a file in the store (replacing its contents).

    Writing onto a symlink in the store replaces the link itself with a
    regular file; the link is never followed (its target may be a host path).
    """
    from zerofs.services.edit import write_file

    target = StorePath.parse(store_path)
    if sys.stdin is None:  # started with fd 0 closed
        raise UsageError(
            f"standard input is closed: write stores what it reads there (e.g. ... | zerofs write {target})"
        )
    with with_repository(shared) as repository:
        result = write_file(repository, target, sys.stdin.buffer, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, shared)


@command()
def mkdir(
    store_path: Annotated[
        str, typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Directory to create.")
    ],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create parents; no error if it exists.")] = False,
    *,
    shared: Shared,
) -> None:
    """Create a directory in the store."""
    from zerofs.services.edit import mkdir as make_dir

    target = StorePath.parse(store_path)
    with with_repository(shared) as repository:
        result = make_dir(repository, target, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, shared)


@command()
def rm(
    store_paths: Annotated[
        list[str],
        typer.Argument(
            metavar="STORE_PATH...", autocompletion=complete_store_path, help="Paths or quoted patterns to remove."
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", "-R", help="Remove directories and their contents.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="No error if nothing matches.")] = False,
    *,
    shared: Shared,
) -> None:
    """Remove files or directories from the store, in one commit (history keeps them).

    Quote wildcards so that zerofs expands them against the store, not the
    shell against the host: zerofs rm -r '/snapshots/2026-01-*'. As in the
    shell, * and ? do not match a leading dot, and [*] matches a literal *.
    """
    from zerofs.services.edit import remove_paths

    targets = [StorePath.parse(p) for p in store_paths]
    with with_repository(shared) as repository:
        result = remove_paths(repository, targets, recursive=recursive, missing_ok=force)
    if shared.as_json:
        from zerofs.cli import render

        render.print_json(
            {
                "commit": result.commit_id.hex() if result.commit_id else None,
                "message": result.message,
                "removed": [str(p) for p in result.removed],
            }
        )
        return
    _report(result.commit_id, result.message, shared)


@command()
def mv(
    source: Annotated[str, typer.Argument(metavar="SOURCE", autocompletion=complete_store_path, help="Path to move.")],
    target: Annotated[
        str,
        typer.Argument(
            metavar="DESTINATION", autocompletion=complete_store_path, help="New path, or a directory to move into."
        ),
    ],
    force: Annotated[bool, typer.Option("--force", "-f", help="Allow replacing a file with a directory.")] = False,
    *,
    shared: Shared,
) -> None:
    """Move or rename a path in the store (O(1), whatever its size)."""
    from zerofs.services.edit import move_path

    src, dst = StorePath.parse(source), StorePath.parse(target)
    with with_repository(shared) as repository:
        result = move_path(repository, src, dst, force=force)
    _report(result.commit_id, result.message, shared)
