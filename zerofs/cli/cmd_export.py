"""``export``: recreate a store path (of HEAD or a revision) on the host.

What may be replaced on the host, and how, is ``services.exporter``'s to
decide; this module only declares the command and reports the result.
"""

from __future__ import annotations

import sys
from pathlib import Path  # typer reads the annotation when the app is built
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.cmd_import import NO_XATTRS_HELP
from zerofs.cli.completion import complete_revision_path
from zerofs.cli.context import Shared, fail_if_incomplete, warn, with_repository
from zerofs.cli.options import command
from zerofs.paths import RevPath

if TYPE_CHECKING:
    import typer


@command()
def export(
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="What to export (REV:/path for history).",
        ),
    ],
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Target (absent or empty directory).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Export into a non-empty directory, replacing files, symlinks and empty directories."
        ),
    ] = False,
    no_xattrs: Annotated[bool, typer.Option("--no-xattrs", help=NO_XATTRS_HELP)] = False,
    *,
    shared: Shared,
) -> None:
    """Recreate a store path on the host with contents, modes, times and symlinks.

    Also recreates FIFOs, sockets and devices (devices need root), user.*
    extended attributes and POSIX ACLs (unless --no-xattrs), holes, and hard
    links among names linked within one import or clone. --force replaces
    only regular files, symlinks (the link itself) and empty directories; a
    device, FIFO, socket or non-empty directory in the way stops the export
    (exit 4) and is left untouched. A device the host will not let it
    create is left out with a warning, and the export exits 10.
    """
    from zerofs.cli import render
    from zerofs.cli.progress import ExportBar
    from zerofs.services.browse import at_revision
    from zerofs.services.exporter import export_tree

    source = RevPath.parse(store_path)
    with (
        with_repository(shared, readonly=True) as repository,
        ExportBar(enabled=not shared.quiet and sys.stderr.isatty()) as bar,
    ):
        commit_id = at_revision(repository, source.rev)
        result = export_tree(
            repository,
            source.path,
            host_path,
            force=force,
            on_file=bar.update,
            commit_id=commit_id,
            rev=source.rev,
            on_warning=warn,
            xattrs=not no_xattrs,
        )
    if shared.as_json:
        render.print_json(
            {
                "files": result.files,
                "dirs": result.dirs,
                "symlinks": result.symlinks,
                "specials": result.specials,
                "hardlinks": result.hardlinks,
                "bytes": result.bytes_written,
                "warnings": list(result.warnings),
            }
        )
    else:
        size = render.human_size(result.bytes_written)
        shared.done(f"exported {source} -> {host_path}: {result.files} files, {size}")
    fail_if_incomplete("exported", len(result.warnings))
