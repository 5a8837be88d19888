"""Generate the fast path's command-line spec from the typer app.

``fast.py`` parses command lines without typer, from a static table of the
commands and their parameters: ``spec_data.py``, written by this module from
``typer.main.get_command(app)``. Regenerate it after changing a command's
options or arguments, and the test that compares it will pass again::

    python -m zerofs.cli.spec

The spec records, for each command, the function typer calls
(``module:name``, the wrapper ``options.command`` made) and, for each
parameter, what the parser needs (option names, flag or value, type, arity,
default, bounds) and whether the fast path can reproduce typer exactly for
it (``is_fast``). A parameter the fast path cannot handle sends any command
line that uses it to typer; a command with one it cannot handle even when
absent (an environment variable, a prompt) is marked slow as a whole. The
fast path merges a global option into the command's parameter of the same
name; a global option with no such parameter (``--debug``, ``--version``) is
slow, because only typer's root callback knows what it does.

Only this generator (and the test that runs it) reads typer's internals
(``type_descriptor``, the vendored click's parameter classes); that is one
reason pyproject.toml pins typer to the tested minor version. The table it
writes is plain data: one line per distinct parameter, one per command.

This module imports typer only inside ``build_spec``: ``is_current`` and
``write_spec`` are cheap to import, but building needs the app.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

SPEC_FILE: Final = Path(__file__).with_name("spec_data.py")

_HEADER: Final = '''"""Command-line spec of the typer app, for the fast path. GENERATED: do not edit.

Regenerate with ``python -m zerofs.cli.spec`` after changing a command's
options or arguments. ``fast.py`` parses command lines with it; ``spec.py``
explains ``is_fast``, and ``spec_types.py`` each field. One line per
distinct parameter, with only the fields that differ from their defaults,
then one line per command.
"""

from __future__ import annotations

from typing import Final

from zerofs.cli.spec_types import Command, Param, Spec
'''

_PACKAGE: Final = "zerofs.cli."
"""The package of every command module: the spec names ``cmd_browse:cat`` (``fast.py`` adds it back)."""

_PARAM_DEFAULTS: Final = {
    "kind": "option",
    "opts": [],
    "secondary_opts": [],
    "is_flag": False,
    "nargs": 1,
    "type": "str",
    "required": False,
    "default": None,
    "min": None,
    "max": None,
    "path_checks": [],
    "is_fast": True,
}
_GROUPS: Final = {
    "SHARED": (("repo", "config", "quiet", "as_json"), "The options (nearly) every command ends with: options.Shared."),
    "KEEP": (
        ("keep_last", "keep_within", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"),
        "The retention options of gc and prune: options.command's keep parameter.",
    ),
}
"""Runs of parameters written once in the spec, as a list the commands unpack."""
_COMMAND_DEFAULTS: Final = {"is_fast": True, "allow_interspersed_args": True}

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
    function = ""
    if callback is not None and not root_names:
        function = f"{callback.__module__.removeprefix(_PACKAGE)}:{callback.__name__}"
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

    Each distinct parameter is one constant, named after its keyword (after
    its command too, where two differ); each command is one line naming its
    parameters. Lines that would pass 120 columns are exploded with trailing
    commas, so ``ruff format`` leaves the text as written.
    """
    commands = {"": spec["root"], **spec["commands"]}
    names: dict[str, str] = {}
    for command_name, command in commands.items():
        for param in command["params"]:
            _name_param(_param_call(param), param["name"], command_name or "root", names)
    lines = [_HEADER.rstrip("\n"), ""]
    lines += [f"{name} = {call}" for call, name in names.items()]
    for group, (keywords, doc) in _GROUPS.items():
        lines += [f"{group} = [{', '.join(name.upper() for name in keywords)}]", f'"""{doc}"""']
    root = _command_call(spec["root"], names, "    root=")
    lines += ["", "", "SPEC: Final = Spec(", f"    root={root},", "    commands={"]
    for name, command in spec["commands"].items():
        lead = f"        {_text(name)}: "
        lines.append(f"{lead}{_command_call(command, names, lead)},")
    lines += ["    },", ")", ""]
    return "\n".join(lines)


def _name_param(call: str, keyword: str, command_name: str, names: dict[str, str]) -> None:
    """Name the constant for ``call``: its keyword, or command and keyword if another parameter has that name."""
    if call in names:
        return
    name = keyword.upper()
    if name in names.values():
        name = f"{command_name.upper()}_{name}"
    names[call] = name


def _command_call(command: dict[str, Any], names: dict[str, str], lead: str) -> str:
    params = [names[_param_call(p)] for p in command["params"]]
    for group, (keywords, _) in _GROUPS.items():
        params = _fold(params, [name.upper() for name in keywords], f"*{group}")
    extra = [f"{key}={command[key]!r}" for key, value in _COMMAND_DEFAULTS.items() if command[key] != value]
    line = f"Command({', '.join([_text(command['function']), '[' + ', '.join(params) + ']', *extra])})"
    if len(lead) + len(line) + 1 <= 120:
        return line
    pad = " " * (len(lead) - len(lead.lstrip()))
    inner = [f"{pad}        {name}," for name in params]
    return "\n".join(
        [
            "Command(",
            f"{pad}    {_text(command['function'])},",
            f"{pad}    [",
            *inner,
            f"{pad}    ],",
            *[f"{pad}    {item}," for item in extra],
            f"{pad})",
        ]
    )


def _fold(params: list[str], run: list[str], name: str) -> list[str]:
    """``params`` with the first occurrence of ``run`` replaced by ``name``."""
    for at in range(len(params) - len(run) + 1):
        if params[at : at + len(run)] == run:
            return [*params[:at], name, *params[at + len(run) :]]
    return params


def _param_call(param: dict[str, Any]) -> str:
    fields = [_text(param["name"])]
    for key, default in _PARAM_DEFAULTS.items():
        if param[key] != default:
            fields.append(f"{key}={_value(param[key])}")
    return f"Param({', '.join(fields)})"


def _value(value: object) -> str:
    if isinstance(value, list):
        words = [_value(v) for v in value]
        return f"({words[0]},)" if len(words) == 1 else f"({', '.join(words)})"
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    raise TypeError(f"cannot write {value!r} into the spec")


def _text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
