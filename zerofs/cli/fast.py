"""A fast path for ``cat`` and ``ls`` without typer, click or rich.

Serves only argument lists it fully understands (``cat PATH...``, ``ls
[-l] [-a] [--json] [PATH]`` with optional ``--repo``/``-c``) and only when
output is not a terminal (rich output needs rich anyway). Everything else
returns None and goes to the typer app, which defines the same commands.
It calls the same services and renderers as the app, so the output is the
same; tests compare the two.
"""

from __future__ import annotations

import os
import sys

_VALUE_OPTIONS = {"--repo": "repo", "-r": "repo", "--config": "config", "-c": "config"}
_LS_FLAGS = {"-l": "long", "--long": "long", "-a": "all", "--all": "all", "--json": "json",
             "-la": "long+all", "-al": "long+all"}


def try_run(args: list[str]) -> int | None:
    """Run ``args`` if this fast path can; return the exit code or None."""
    if os.environ.get("ZEROFS_NO_FAST_PATH") or sys.stdout.isatty():
        return None
    options: dict[str, str] = {}
    at = 0
    while at + 1 < len(args) and args[at] in _VALUE_OPTIONS:
        options[_VALUE_OPTIONS[args[at]]] = args[at + 1]
        at += 2
    args = args[at:]
    if not args or args[0] not in ("cat", "ls"):
        return None
    flags: set[str] = set()
    positional: list[str] = []
    rest = iter(args[1:])
    for arg in rest:
        if arg in _VALUE_OPTIONS:
            value = next(rest, None)
            if value is None:
                return None
            options[_VALUE_OPTIONS[arg]] = value
        elif args[0] == "ls" and arg in _LS_FLAGS:
            flags.update(_LS_FLAGS[arg].split("+"))
        elif arg.startswith("-"):
            return None
        else:
            positional.append(arg)
    from zerofs.cli.context import open_repository, settings  # noqa: PLC0415
    from zerofs.paths import StorePath  # noqa: PLC0415

    found = settings(options.get("repo"), options.get("config"))
    if args[0] == "cat":
        if not positional:
            return None
        targets = [StorePath.parse(p) for p in positional]
        from zerofs.services.browse import read_file  # noqa: PLC0415

        with open_repository(found, readonly=True) as repository:
            out = sys.stdout.buffer
            for target in targets:
                for data in read_file(repository, target):
                    out.write(data)
            out.flush()
        return 0
    if len(positional) > 1:
        return None
    target = StorePath.parse(positional[0] if positional else "/")
    from zerofs.cli.render import render_listing  # noqa: PLC0415
    from zerofs.services.browse import list_path  # noqa: PLC0415

    as_json = "json" in flags
    with open_repository(found, readonly=True) as repository:
        rows = list_path(repository, target, with_targets="long" in flags or as_json)
        render_listing(rows, long="long" in flags, show_all="all" in flags or as_json, recursive=False,
                       as_json=as_json)
    sys.stdout.flush()
    return 0
