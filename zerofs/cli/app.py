"""The typer app: the root options and the registration of every command.

Each command lives in its own ``cmd_<concept>.py`` module, its declaration
(the function's signature) beside its body; the options several commands
share are declared once in ``options.py``. This module only builds the
Typer object, defines the root callback (the global ``--repo``,
``--config``, ``--debug`` and ``--version``) and registers the commands,
in the order ``--help`` and the man pages list them. The start-up fast path
(``fast.py``) runs the same command functions from a spec generated from
this app (``spec.py``). Errors become one line on stderr and the exit code
of their class in ``main``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from zerofs import __version__
from zerofs.cli import (
    cmd_browse,
    cmd_edit,
    cmd_export,
    cmd_fsck,
    cmd_gc,
    cmd_help,
    cmd_history,
    cmd_import,
    cmd_key,
    cmd_mount,
    cmd_repository,
    cmd_sync,
    cmd_usage,
)
from zerofs.cli.hints import exit_codes
from zerofs.cli.options import config_option, repo_option, typer_settings, typer_signature

_EXIT_CODES = "\n\n".join(f"{code}: {meaning}" for code, meaning in exit_codes())

app = typer.Typer(
    name="zerofs",
    help="A content-addressed, copy-on-write file store where a snapshot is a clone.\n\n"
    "Store paths are absolute (/data/x.txt); host paths are ordinary paths.\n\n"
    f"Exit status:\n\n{_EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"zerofs {__version__}\n")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    repo: Annotated[str | None, repo_option()] = None,
    config: Annotated[str | None, config_option()] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """A content-addressed, copy-on-write file store where a snapshot is a clone."""
    # A command's own --repo/--config win over these (options.command merges them).
    ctx.obj = {"repo": repo, "config": config}


def _register(function: Callable[..., None], name: str | None = None, **settings: Any) -> None:
    """Add a command made by ``options.command`` to the app (``name``: under another name)."""
    typer_signature(function)
    declared = typer_settings(function)
    if name is not None:
        declared["name"] = name
    app.command(**{**declared, **settings})(function)


_register(cmd_repository.init)
_register(cmd_repository.upgrade)
_register(cmd_import.import_)
_register(cmd_edit.clone)
# The same command under its other names: snapshots are clones.
_register(cmd_edit.clone, "snapshot", help="Same as clone: snapshots are clones.")
_register(cmd_edit.clone, "snap", hidden=True, help="Same as clone.")
_register(cmd_edit.write)
_register(cmd_edit.mkdir)
_register(cmd_edit.rm)
_register(cmd_edit.mv)
_register(cmd_browse.ls)
_register(cmd_browse.cat)
_register(cmd_browse.stat)
_register(cmd_browse.tree)
_register(cmd_history.log)
_register(cmd_export.export)
_register(cmd_history.diff)
_register(cmd_usage.du)
_register(cmd_usage.stats)
_register(cmd_fsck.fsck)
_register(cmd_gc.gc)
_register(cmd_gc.prune)
_register(cmd_sync.push)
_register(cmd_sync.pull)
_register(cmd_mount.mount)
_register(cmd_mount.umount)
_register(cmd_help.help_)


def _register_key(function: Callable[..., None], name: str | None = None) -> None:
    """Add a ``key`` subcommand made by ``options.command`` to its group."""
    typer_signature(function)
    declared = typer_settings(function)
    if name is not None:
        declared["name"] = name
    cmd_key.key_app.command(**declared)(function)


_register_key(cmd_key.list_, "list")
_register_key(cmd_key.add)
_register_key(cmd_key.remove)
_register_key(cmd_key.passwd)
app.add_typer(cmd_key.key_app, name="key")
