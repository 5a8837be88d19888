"""Help: ``zerofs help [COMMAND]``, and the summary ``zerofs`` prints alone.

Unlike the other commands, both read the typer app itself, so they
import typer when they run (never on the fast path's way to ``cat``).
"""

from __future__ import annotations

import difflib
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

from zerofs.cli.options import command
from zerofs.errors import UsageError

if TYPE_CHECKING:
    import typer


def _group() -> tuple[Any, Any]:
    """The click group of the typer app, and a context for it (help needs one)."""
    import typer.main

    from zerofs.cli.app import app

    group = typer.main.get_command(app)
    return group, group.make_context("zerofs", [], resilient_parsing=True)


def _complete_command(ctx: Any, incomplete: str) -> list[str]:
    group = ctx.find_root().command
    names: list[str] = getattr(group, "list_commands", lambda _: [])(ctx)
    return [name for name in names if name.startswith(incomplete)]


@command(name="help")
def help_(
    command: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Argument(metavar="COMMAND", autocompletion=_complete_command, help="The command to explain."),
    ] = None,
) -> None:
    """Show the help of COMMAND (the same as zerofs COMMAND --help), or of zerofs itself.

    Example: zerofs help clone
    """
    group, ctx = _group()
    if command is None:
        sys.stdout.write(group.get_help(ctx) + "\n")
        return
    found = group.get_command(ctx, command)
    if found is None:
        raise UsageError(f"no such command {command!r}{_did_you_mean(command, group.list_commands(ctx))}")
    with found.make_context(command, [], parent=ctx, resilient_parsing=True) as sub:
        sys.stdout.write(found.get_help(sub) + "\n")


def _did_you_mean(typed: str, choices: list[str]) -> str:
    """Return " (did you mean X?)" for the choices close to ``typed``, else a pointer to the list."""
    close = difflib.get_close_matches(typed, choices, n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(close) + "?)"
    return "; 'zerofs help' lists the commands"


def summary() -> str:
    """The short usage summary that ``zerofs`` with no arguments prints."""
    group, ctx = _group()
    lines = ["usage: zerofs [--repo PATH] COMMAND [ARGS]...", "", "commands:"]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        lines.append(f"  {name:<9} {command.get_short_help_str(limit=68)}")
    lines += ["", "'zerofs help COMMAND' shows a command's options; 'zerofs --help' the exit codes; 'man zerofs' more."]
    return "\n".join(lines) + "\n"
