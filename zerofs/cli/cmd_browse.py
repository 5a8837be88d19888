"""Reading the store: ``ls``, ``cat``, ``stat`` and ``tree`` (in HEAD or a revision).

``cat`` and ``ls`` must start in well under 50 ms: like every command
module, this one imports no typer (see ``options``), and it imports
services and renderers only inside the command that needs them.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.completion import complete_revision_path
from zerofs.cli.context import Shared, with_repository
from zerofs.cli.options import QUIET_DATA, command
from zerofs.paths import RevPath

if TYPE_CHECKING:
    from collections.abc import Iterator

    import typer

    from zerofs.repo import Repository
    from zerofs.services.browse import Listed


@command(quiet_help=QUIET_DATA)
def ls(
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Directory or file (REV:/path for history).",
        ),
    ] = "/",
    long: Annotated[bool, typer.Option("-l", "--long", help="Mode, size, mtime and name.")] = False,
    show_all: Annotated[bool, typer.Option("-a", "--all", help="Include names starting with '.'.")] = False,
    recursive: Annotated[bool, typer.Option("-R", "--recursive", help="List subdirectories too.")] = False,
    *,
    shared: Shared,
) -> None:
    """List a directory in the store, in HEAD or in a revision (HEAD~3:/data, 3f9a2c1:/data)."""
    from zerofs.cli import render

    target = RevPath.parse(store_path)
    as_json = shared.as_json
    show = functools.partial(
        render.render_listing, long=long, show_all=show_all or as_json, recursive=recursive, as_json=as_json
    )
    with with_repository(shared, readonly=True) as repository:
        rows = _rows(repository, target, recursive=recursive, with_targets=long or shared.as_json)
        render.show_or_drain(rows, show, is_silent=shared.is_silent)


@command(quiet_help="Print nothing: only read and verify every byte (exit status).")
def cat(
    store_paths: Annotated[
        list[str],
        typer.Argument(
            metavar="STORE_PATH...",
            autocompletion=complete_revision_path,
            help="Files to print (REV:/path for history).",
        ),
    ],
    *,
    shared: Shared,
) -> None:
    """Print files from the store to standard output (streamed, verified).

    With --json, prints one JSON array of {path, size, encoding, content}; the
    content is UTF-8 text when it decodes as such, else base64. That form holds
    each file in memory.
    """
    from zerofs.services.browse import at_revision, read_file

    targets = [RevPath.parse(p) for p in store_paths]
    with with_repository(shared, readonly=True) as repository:
        located = [(t, at_revision(repository, t.rev)) for t in targets]
        if shared.as_json:
            from zerofs.cli import render

            render.print_json(
                [render.content_json(str(t), b"".join(read_file(repository, t.path, c, t.rev))) for t, c in located]
            )
            return
        if shared.quiet:  # every chunk is still read and checked against its hash
            from zerofs.cli.render import drain

            for target, commit_id in located:
                drain(read_file(repository, target.path, commit_id, target.rev))
            return
        out = sys.stdout.buffer
        for target, commit_id in located:
            for data in read_file(repository, target.path, commit_id, target.rev):
                out.write(data)
        out.flush()


@command(quiet_help=QUIET_DATA)
def stat(
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Path to describe (REV:/path for history).",
        ),
    ],
    *,
    shared: Shared,
) -> None:
    """Show the metadata and node of a path (with -q, only whether it exists: exit 0 or 3)."""
    from zerofs.cli import render
    from zerofs.services.browse import at_revision, stat_path

    target = RevPath.parse(store_path)
    with with_repository(shared, readonly=True) as repository:
        info = stat_path(repository, target.path, at_revision(repository, target.rev), target.rev)
    if not shared.quiet or shared.as_json:
        render.render_stat(info, as_json=shared.as_json)


@command(quiet_help=QUIET_DATA)
def tree(
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Directory to show (REV:/path for history).",
        ),
    ] = "/",
    *,
    shared: Shared,
) -> None:
    """Show a directory and everything below it as a tree."""
    from zerofs.cli import render

    target = RevPath.parse(store_path)
    with with_repository(shared, readonly=True) as repository:
        rows = _rows(repository, target, recursive=True, with_targets=True)
        show = functools.partial(render.render_tree, root_label=str(target), as_json=shared.as_json)
        render.show_or_drain(rows, show, is_silent=shared.is_silent)


def _rows(repository: Repository, target: RevPath, *, recursive: bool, with_targets: bool) -> Iterator[Listed]:
    """The entries ``ls`` and ``tree`` show, read lazily from ``target``'s revision."""
    from zerofs.services.browse import at_revision, list_path

    commit_id = at_revision(repository, target.rev)
    return list_path(
        repository, target.path, recursive=recursive, with_targets=with_targets, commit_id=commit_id, rev=target.rev
    )
