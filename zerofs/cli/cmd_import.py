"""``import``: a host file or directory tree into the store, in one commit.

The host side (what is kept, what is skipped) is ``services.importer``'s;
here are the options, the progress bar and the report.
"""

from __future__ import annotations

import sys
from pathlib import Path  # typer reads the annotation when the app is built
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.completion import complete_store_path
from zerofs.cli.context import Shared, fail_if_incomplete, user_cache_dir, warn, with_repository
from zerofs.cli.options import command
from zerofs.paths import StorePath

if TYPE_CHECKING:
    import typer

NO_XATTRS_HELP = "Leave out user.* extended attributes and POSIX ACLs."
"""The help of ``--no-xattrs``, of import and export."""


@command(name="import")
def import_(
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Host file or directory to import.")],
    store_path: Annotated[
        str,
        typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Where it goes in the store."),
    ],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create missing parent directories.")] = False,
    skip_errors: Annotated[bool, typer.Option("--skip-errors", help="Skip unreadable files with a warning.")] = False,
    no_xattrs: Annotated[bool, typer.Option("--no-xattrs", help=NO_XATTRS_HELP)] = False,
    *,
    shared: Shared,
) -> None:
    """Import a host file or directory tree to STORE_PATH in one commit (replaces what is there).

    Keeps modes, owners, atimes, mtimes and ctimes (ns), symlinks (never
    followed), FIFOs, sockets and devices, user.* extended attributes and
    POSIX ACLs (unless --no-xattrs), holes of sparse files, and hard links
    among the imported names. Unchanged files are not read again. With
    --skip-errors, a file that cannot be read is left out with a warning and
    the import commits the rest, then exits 10 (as does one that meets a
    file type or name the store cannot hold), so a script can tell a
    partial import from a complete one.
    """
    from zerofs.cli import render
    from zerofs.cli.progress import ImportBar
    from zerofs.services.importer import import_tree

    target = StorePath.parse(store_path)
    found = shared.settings()
    skip = skip_errors or bool(found.defaults.get("skip_errors", False))
    with (
        with_repository(found, cache_dir=user_cache_dir()) as repository,
        ImportBar(enabled=not shared.quiet and sys.stderr.isatty()) as bar,
    ):
        result = import_tree(
            repository,
            host_path,
            target,
            parents=parents,
            skip_errors=skip,
            on_progress=bar.update if bar.enabled else None,
            on_warning=warn,
            xattrs=not no_xattrs,
        )
    if shared.as_json:
        commit_hex = result.commit_id.hex() if result.commit_id else None
        render.print_json(
            {
                "path": str(result.store_path),
                "commit": commit_hex,
                "files": result.files,
                "dirs": result.dirs,
                "symlinks": result.symlinks,
                "specials": result.specials,
                "hardlinks": result.hardlinks,
                "bytes": result.bytes_total,
                "files_unchanged": result.files_unchanged,
                "new_bytes": result.new_bytes,
                "warnings": list(result.warnings),
                "left_out": result.left_out,
            }
        )
    else:
        shared.done(
            f"imported {host_path} -> {result.store_path}: {result.files} files "
            f"({result.files_unchanged} unchanged), {render.human_size(result.bytes_total)}, "
            f"{render.human_size(result.new_bytes)} new",
        )
    fail_if_incomplete("imported", result.left_out)
