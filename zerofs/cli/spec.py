"""Generate the fast path's command-line spec from the typer app.

``fast.py`` parses command lines without typer, from a static table of the
commands and their parameters: ``spec_data.py``, written by this module from
``typer.main.get_command(app)``. Regenerate it after changing a command's
options or arguments, and the test that compares it will pass again::

    python -m zerofs.cli.spec

The spec records, for each parameter, what the parser needs (option names,
flag or value, type, arity, default, bounds) and whether the fast path can
reproduce typer exactly for it (``is_fast``). A parameter the fast path
cannot handle sends any command line that uses it to typer; a command with
one it cannot handle even when absent (an environment variable, a prompt)
is marked slow as a whole. The fast path merges a global option into the
command's parameter of the same name; a global option with no such
parameter (``--debug``, ``--version``) is slow, because only typer's root
callback knows what it does.

This module imports typer only inside ``build_spec``: ``is_current`` and
``write_spec`` are cheap to import, but building needs the app.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

SPEC_FILE: Final = Path(__file__).with_name("spec_data.py")

_HEADER: Final = '''"""Command-line spec of the typer app, for the fast path. GENERATED: do not edit.

Regenerate with ``python -m zerofs.cli.spec`` after changing a command in
``app.py``. ``fast.py`` parses command lines with it; ``spec.py`` explains
``is_fast``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # only for the type checker: defining TypedDicts costs start-up time
    from typing import TypedDict

    class ParamSpec(TypedDict):
        """One parameter of a command, as the fast path parses it."""

        name: str  # the keyword of the commands.py function
        kind: str  # "option" or "argument"
        opts: list[str]  # option words; a flag they name becomes True
        secondary_opts: list[str]  # option words that set a flag to False
        is_flag: bool  # takes no value
        nargs: int  # 1, or -1 for an argument that takes all remaining words
        type: str  # "str", "int", "bool" or "path"; "" if the fast path cannot convert it
        required: bool
        default: str | int | bool | None
        min: int | None  # bounds of an int
        max: int | None
        path_checks: list[str]  # checks of an existing host path: not_file, not_dir, readable, writable
        is_fast: bool  # False: a command line that gives it goes to typer

    class CommandSpec(TypedDict):
        """A command: the ``commands.py`` function that runs it and its parameters."""

        function: str  # "" for the root group
        is_fast: bool  # False: every use of the command goes to typer
        allow_interspersed_args: bool  # options may follow arguments (not for the root group)
        params: list[ParamSpec]

    class Spec(TypedDict):
        """The root group (global options) and every command by name."""

        root: CommandSpec
        commands: dict[str, CommandSpec]


'''

# Context settings the fast parser reproduces; any other setting makes a command slow.
_KNOWN_CONTEXT_SETTINGS: Final = frozenset({"help_option_names"})
_TYPE_NAMES: Final = {str: "str", int: "int", bool: "bool", Path: "path"}


def build_spec() -> dict[str, Any]:
    """Walk the typer app's click commands and return the spec as plain data."""
    import typer.main  # only generation and its test need typer

    from zerofs.cli.app import app

    group: Any = typer.main.get_command(app)
    commands = {name: _command_spec(command, root_names=set()) for name, command in group.commands.items()}
    forwarded = {p["name"] for spec in commands.values() for p in spec["params"]}
    return {"root": _command_spec(group, root_names=forwarded), "commands": commands}


def _command_spec(command: Any, *, root_names: set[str]) -> dict[str, Any]:
    params = [_param_spec(param) for param in command.params]
    is_fast = (
        set(command.context_settings) <= _KNOWN_CONTEXT_SETTINGS
        and not getattr(command, "deprecated", False)
        and not command.ignore_unknown_options
        and not getattr(command, "chain", False)
        and (bool(root_names) or not command.no_args_is_help)
    )
    if root_names:
        # The root group: its options reach a command only by name (see the module docstring).
        for param in params:
            if param["name"] not in root_names:
                param["is_fast"] = False
    for param, source in zip(params, command.params, strict=True):
        if _always_slow(source, param):
            is_fast = False
    callback = command.callback
    function = getattr(callback, "__name__", "") if callback is not None and not root_names else ""
    return {
        "function": function,
        "is_fast": is_fast,
        "allow_interspersed_args": bool(command.allow_interspersed_args),
        "params": params,
    }


def _param_spec(param: Any) -> dict[str, Any]:
    descriptor = param.type_descriptor
    annotation = descriptor.annotation
    info = descriptor.parameter_info
    is_list = getattr(annotation, "__origin__", None) is list
    element = annotation.__args__[0] if is_list else annotation
    type_name = _TYPE_NAMES.get(element, "")
    is_option = param.param_type_name == "option"
    is_flag = bool(getattr(param, "is_flag", False))
    is_fast = (
        type_name != ""
        and param.callback is None
        and not param.is_eager
        and not getattr(param, "deprecated", False)
        and not getattr(param, "multiple", False)
        and not getattr(param, "count", False)
        and (param.nargs == 1 or (param.nargs == -1 and not is_option and is_list))
        and is_flag == (type_name == "bool")
        and (not is_flag or getattr(param, "is_bool_flag", False))
        and getattr(info, "parser", None) is None
        and not getattr(info, "clamp", False)
        and _path_is_plain(info, type_name)
        and all(opt.startswith("-") for opt in [*param.opts, *param.secondary_opts] if is_option)
    )
    return {
        "name": param.name,
        "kind": param.param_type_name,
        "opts": list(param.opts) if is_option else [],
        "secondary_opts": list(param.secondary_opts),
        "is_flag": is_flag,
        "nargs": param.nargs,
        "type": type_name,
        "required": bool(param.required),
        "default": param.default if _is_plain(param.default) else None,
        "min": param.min,
        "max": param.max,
        "path_checks": _path_checks(info, type_name),
        "is_fast": is_fast,
    }


def _path_checks(info: Any, type_name: str) -> list[str]:
    """The checks typer makes on an existing host path, in its order (``typer._param_types.coerce_cli_path``)."""
    if type_name != "path":
        return []
    wanted = {
        "not_file": not getattr(info, "file_okay", True),
        "not_dir": not getattr(info, "dir_okay", True),
        "readable": getattr(info, "readable", True),
        "writable": getattr(info, "writable", False),
    }
    return [name for name, is_wanted in wanted.items() if is_wanted]


def _path_is_plain(info: Any, type_name: str) -> bool:
    """False if typer would require, resolve or specially treat a path (the fast path only checks it)."""
    if type_name != "path":
        return True
    return not any(getattr(info, name, None) for name in ("exists", "resolve_path", "allow_dash", "path_type"))


def _is_plain(value: object) -> bool:
    return value is None or isinstance(value, (str, int, bool))


def _always_slow(source: Any, param: dict[str, Any]) -> bool:
    """True for what applies even when the parameter is absent: the fast path then never runs the command."""
    return bool(
        source.envvar
        or getattr(source, "prompt", None)
        or not source.expose_value
        or not _is_plain(source.default)
        or callable(source.default)
        or (param["kind"] == "option" and param["required"])
    )


def render_spec(spec: dict[str, Any]) -> str:
    """Return the text of ``spec_data.py`` for ``spec``.

    The literal is fully exploded with trailing commas, so ``ruff format``
    leaves it as written.
    """
    return _HEADER + "SPEC: Final[Spec] = " + _literal(spec, 0) + "\n"


def _literal(value: object, depth: int) -> str:
    pad, inner = "    " * depth, "    " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(f"{inner}{_literal(k, depth + 1)}: {_literal(v, depth + 1)},\n" for k, v in value.items())
        return "{\n" + items + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"{inner}{_literal(v, depth + 1)},\n" for v in value) + pad + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    raise TypeError(f"cannot write {value!r} into the spec")


def is_current() -> bool:
    """True if ``spec_data.py`` is what ``build_spec`` generates from the app today."""
    try:
        text = SPEC_FILE.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return text == render_spec(build_spec())


def write_spec() -> bool:
    """Regenerate ``spec_data.py``; return True if its text changed."""
    text = render_spec(build_spec())
    try:
        if SPEC_FILE.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    SPEC_FILE.write_text(text, encoding="utf-8")
    return True


def main() -> int:
    """``python -m zerofs.cli.spec [--check]``: rewrite the spec, or only check it (exit 1 if stale)."""
    if sys.argv[1:] == ["--check"]:
        if is_current():
            return 0
        sys.stderr.write(f"{SPEC_FILE} is out of date: run python -m zerofs.cli.spec\n")
        return 1
    changed = write_spec()
    sys.stdout.write(f"{'wrote' if changed else 'unchanged:'} {SPEC_FILE}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
