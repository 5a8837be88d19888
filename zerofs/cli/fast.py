"""The start-up fast path: parse a command line without typer and run it.

Importing typer (and the click it vendors) costs about 80 ms, more than a
whole ``cat`` may take. So ``try_run`` parses the command line itself, from
``spec_data.SPEC``, a table generated from the typer app by ``spec.py``, and
calls the function the typer command calls (``cmd_browse:cat``: the command
as ``options.command`` made it, which takes every option by name).

The parser copies click's rules (``typer._click.parser``): global options
stop at the command name; a command's options and arguments may mix; ``--``
ends the options; ``--opt=value``; ``-abc`` is three flags, and a short
option that takes a value takes the rest of its word (``-cFILE``) or the
next word; an option's value is the next word whatever it looks like; the
last of a repeated option wins. Positional arguments are then dealt out as
click's ``_unpack_args`` does, and converted the way typer converts them.

It must never accept what typer would reject, nor run anything differently:
whatever it is not sure of (an unknown option, ``--help``, ``--version``,
``--debug``, a missing or extra argument, an int that is not plain digits,
an unreadable host path, no command) makes ``try_run`` return None, and the
typer app parses the line again and reports the error or shows the help.
``tests/e2e/test_fast_path.py`` runs command lines both ways and compares.

Imports here stay minimal: no typer, click or rich (``render`` imports rich
only for a terminal).
"""

from __future__ import annotations

import os
import stat
from collections import deque
from typing import TYPE_CHECKING

from zerofs.cli.spec_data import SPEC

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from zerofs.cli.spec_types import Command, Param, Spec

NO_FAST_PATH_ENV = "ZEROFS_NO_FAST_PATH"
# Set by a shell asking for completions; only typer answers those.
_COMPLETION_ENV = "_ZEROFS_COMPLETE"


class _NeedsTyper(Exception):
    """The command line is one the fast path does not handle; typer will."""


def try_run(args: list[str]) -> int | None:
    """Run ``args`` if this fast path can; return the exit code, or None to leave it to typer."""
    if os.environ.get(NO_FAST_PATH_ENV) or os.environ.get(_COMPLETION_ENV):
        return None
    parsed = parse(args)
    if parsed is None:
        return None
    function, values = parsed
    import importlib  # after parsing: a bad line costs no imports

    module_name, _, name = function.partition(":")
    getattr(importlib.import_module(f"zerofs.cli.{module_name}"), name)(**values)
    return 0


def parse(args: Sequence[str], spec: Spec = SPEC) -> tuple[str, dict[str, object]] | None:
    """Parse a whole command line as typer would.

    Returns:
        The command's function (``module:name``, the module in zerofs.cli) and its keyword arguments,
        or None if typer must handle the line.
    """
    try:
        root_values, rest = _parse_params(spec.root, list(args), is_group=True)
        if not rest or rest[0] not in spec.commands:
            raise _NeedsTyper
        command = spec.commands[rest[0]]
        values, _ = _parse_params(command, rest[1:], is_group=False)
        return command.function, merge_root(values, root_values)
    except _NeedsTyper:
        return None


def merge_root(values: dict[str, object], root_values: dict[str, object]) -> dict[str, object]:
    """Give a command the global options it did not get itself, as ``options.command`` does.

    Raises:
        _NeedsTyper: a global option was given that the command has no parameter for.
    """
    for name, root_value in root_values.items():
        if name in values:
            values[name] = values[name] if values[name] is not None else root_value
        elif root_value:
            raise _NeedsTyper
    return values


def _parse_params(command: Command, args: list[str], *, is_group: bool) -> tuple[dict[str, object], list[str]]:
    """Parse ``args`` against one command's (or the root group's) parameters.

    Returns:
        The converted value of every parameter by name, and for the group the
        words from the command name on.
    """
    if not command.is_fast:
        raise _NeedsTyper
    long_opts: dict[str, tuple[Param, bool]] = {}
    short_opts: dict[str, tuple[Param, bool]] = {}
    for param in command.params:
        for opts, const in ((param.opts, True), (param.secondary_opts, False)):
            for opt in opts:
                is_short = len(opt) == 2 and opt[1] != "-"
                (short_opts if is_short else long_opts)[opt] = (param, const)
    given: dict[str, object] = {}
    pending = deque(args)
    loose: list[str] = []
    while pending:
        arg = pending.popleft()
        if arg == "--":
            break
        if arg[:1] == "-" and len(arg) > 1:
            _take_option(arg, pending, long_opts, short_opts, given)
        elif command.allow_interspersed_args:
            loose.append(arg)
        else:
            pending.appendleft(arg)
            break
    arguments = [p for p in command.params if p.kind == "argument"]
    dealt, extra = _unpack_args([*loose, *pending], [p.nargs for p in arguments])
    for param, value in zip(arguments, dealt, strict=True):
        given[param.name] = None if value == () else value
    if extra and not is_group:
        raise _NeedsTyper
    values = {param.name: _convert(param, given.get(param.name)) for param in command.params}
    return values, extra


def _take_option(
    arg: str,
    pending: deque[str],
    long_opts: dict[str, tuple[Param, bool]],
    short_opts: dict[str, tuple[Param, bool]],
    given: dict[str, object],
) -> None:
    """Consume one option word (and its value) as click's ``_process_opts`` does."""
    name, has_value, explicit = arg.partition("=")
    if name in long_opts:
        param, const = long_opts[name]
        if param.is_flag:
            if has_value:
                raise _NeedsTyper
            _store(param, const, given)
            return
        if has_value:
            pending.appendleft(explicit)
        if not pending:
            raise _NeedsTyper
        _store(param, pending.popleft(), given)
        return
    if arg.startswith("--"):
        raise _NeedsTyper
    for at, letter in enumerate(arg[1:], start=2):
        if "-" + letter not in short_opts:
            raise _NeedsTyper
        param, const = short_opts["-" + letter]
        if param.is_flag:
            _store(param, const, given)
            continue
        if at < len(arg):
            pending.appendleft(arg[at:])
        if not pending:
            raise _NeedsTyper
        _store(param, pending.popleft(), given)
        return


def _store(param: Param, value: object, given: dict[str, object]) -> None:
    if not param.is_fast:
        raise _NeedsTyper
    given[param.name] = value


def _unpack_args(args: list[str], nargs_spec: list[int]) -> tuple[list[object], list[str]]:
    """Deal positional words to arguments: click's ``_unpack_args`` for nargs 1 and -1.

    Arguments before a ``-1`` take words from the front, those after it from
    the back, and the ``-1`` argument a tuple of what is left between.
    """
    words = deque(args)
    star = nargs_spec.index(-1) if -1 in nargs_spec else len(nargs_spec)
    front: list[object] = [words.popleft() if words else None for _ in nargs_spec[:star]]
    if star == len(nargs_spec):
        return front, list(words)
    back: list[object] = [words.pop() if words else None for _ in nargs_spec[star + 1 :]]
    back.reverse()
    return [*front, tuple(words), *back], []


def _convert(param: Param, raw: object) -> object:
    """Convert a parsed word, or the default, as typer's coercion would; else raise _NeedsTyper."""
    value = param.default if raw is None else raw
    is_many = param.nargs == -1
    if value is None:
        if param.required:
            raise _NeedsTyper
        return [] if is_many else None
    kind = param.type
    if is_many:
        if kind != "str" or not isinstance(value, tuple):
            raise _NeedsTyper
        return [str(word) for word in value]
    if kind == "bool":
        if not isinstance(value, bool):
            raise _NeedsTyper
        return value
    if kind == "str":
        return str(value)
    if kind == "int":
        return _convert_int(param, value)
    if kind == "path" and isinstance(value, str):
        return _convert_path(param, value)
    raise _NeedsTyper


def _convert_int(param: Param, value: object) -> int:
    # Only plain ASCII digits: typer (pydantic) also takes " 5", "5_0" and
    # "5.0", and rejects what int() would take; it decides those itself.
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise _NeedsTyper
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _NeedsTyper
    low, high = param.min, param.max
    if (low is not None and value < low) or (high is not None and value > high):
        raise _NeedsTyper
    return value


def _convert_path(param: Param, text: str) -> Path:
    """A host path, with the checks typer makes when it exists (``coerce_cli_path``)."""
    from pathlib import Path  # only import and export take one; it costs ``cat`` 3 ms

    path = Path(text)
    try:
        st = os.stat(path)
    except OSError:
        return path
    except ValueError:  # an embedded NUL: typer reports it as a bad parameter
        raise _NeedsTyper from None
    checks = param.path_checks
    if (
        ("not_file" in checks and stat.S_ISREG(st.st_mode))
        or ("not_dir" in checks and stat.S_ISDIR(st.st_mode))
        or ("readable" in checks and not os.access(path, os.R_OK))
        or ("writable" in checks and not os.access(path, os.W_OK))
    ):
        raise _NeedsTyper
    return path
