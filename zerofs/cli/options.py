"""The options several commands share, declared once, and the ``command`` decorator that adds them.

A command is one function in its ``cmd_<concept>.py`` module. Its own
arguments and options are declared in its signature, typer's way
(``Annotated[str, typer.Argument(...)]``); those modules use ``from
__future__ import annotations``, so the declarations stay strings until the
typer app is built, and importing a command (as the start-up fast path
does) imports no typer. Two parameter names stand for groups declared here:

- ``shared: Shared`` -- ``--repo``, ``-c/--config``, ``-q/--quiet`` and
  (unless ``has_json=False``) ``--json``, last in the command's options;
- ``keep: Retention`` -- the ``--keep-*`` options of gc and prune, in place.

``command`` wraps the function in one that takes every option by its own
name, merges ``--repo``/``--config`` with the global ones, builds the groups
and calls the body. Both front ends call that wrapper: typer (through the
signature ``typer_signature`` gives it when the app is built) and the fast
path (``fast.py``, with the values it parsed; the spec names the wrapper as
``module:function``).

This module imports no typer at import time: only ``typer_signature`` and
the retention counts' parser, which run under typer, do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

from zerofs.cli.context import Shared

if TYPE_CHECKING:
    import inspect

    from zerofs.retention import Retention

F = TypeVar("F", bound=Callable[..., None])

QUIET: Final = "Print nothing but errors."
QUIET_DATA: Final = "Print nothing but errors: the exit status is the answer."

KEEP_COUNTS: Final = {
    "keep_last": ("--keep-last", "Keep the N newest."),
    "keep_hourly": ("--keep-hourly", "Keep the newest of each of the last N hours."),
    "keep_daily": ("--keep-daily", "Keep the newest of each of the last N days."),
    "keep_weekly": ("--keep-weekly", "Keep the newest of each of the last N ISO weeks."),
    "keep_monthly": ("--keep-monthly", "Keep the newest of each of the last N months."),
    "keep_yearly": ("--keep-yearly", "Keep the newest of each of the last N years."),
}
"""The retention counts: option and help, in the order ``--help`` lists them (``--keep-within`` follows the first)."""

_SETTINGS_ATTRIBUTE: Final = "__zerofs_command__"


def command(*, quiet_help: str = QUIET, has_json: bool = True, **settings: Any) -> Callable[[F], F]:
    """Declare a function as a zerofs command; ``settings`` go to typer's ``app.command``.

    Args:
        quiet_help: the help of ``-q/--quiet`` for this command.
        has_json: whether the command has ``--json``.
        settings: typer's command settings (``name``, ``context_settings``).
    """

    def decorate(body: F) -> F:
        code = body.__code__  # not inspect.signature: importing inspect costs ``cat`` 10 ms
        groups = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]) & {"shared", "keep"}

        @functools.wraps(body)
        def run(ctx: object = None, **values: Any) -> None:
            if "shared" in groups:
                values["shared"] = _shared(ctx, values, has_json=has_json)
            if "keep" in groups:
                values["keep"] = _retention(values)
            body(**values)

        setattr(run, _SETTINGS_ATTRIBUTE, (quiet_help, has_json, settings))
        return run  # type: ignore[return-value]  # takes the options by name; typer and fast.py call it so

    return decorate


def typer_settings(function: Callable[..., None]) -> dict[str, Any]:
    """The typer command settings ``command`` recorded for ``function``."""
    _, _, settings = getattr(function, _SETTINGS_ATTRIBUTE)
    return dict(settings)


def _shared(ctx: object, values: dict[str, Any], *, has_json: bool) -> Shared:
    """The shared options, ``--repo``/``--config`` falling back to the global ones (``fast.merge_root`` too)."""
    root = getattr(ctx, "obj", None) or {}
    repo, config = values.pop("repo"), values.pop("config")
    return Shared(  # given but empty is not absent: settings() refuses it
        repo=repo if repo is not None else root.get("repo"),
        config=config if config is not None else root.get("config"),
        quiet=values.pop("quiet"),
        as_json=values.pop("as_json") if has_json else False,
    )


def _retention(values: dict[str, Any]) -> Retention:
    """The policy the ``--keep-*`` options give; a nonsense duration fails here, before the repository is opened."""
    from zerofs.retention import Retention, parse_duration

    within = values.pop("keep_within")
    if within is not None:
        parse_duration(within)
    counts = {name: values.pop(name) or 0 for name in KEEP_COUNTS}
    return Retention(keep_within=within, **counts)


# -- the typer side: only when the app is built ---------------------------------------


def typer_signature(function: Callable[..., None]) -> None:
    """Give ``function`` (made by ``command``) the signature typer reads: its body's, groups expanded.

    The body's annotations are evaluated here, with typer supplied, since its
    module imports typer only for the type checker.
    """
    import inspect
    import typing

    import typer

    body = function.__wrapped__  # type: ignore[attr-defined]  # set by functools.wraps in command()
    quiet_help, has_json, _ = getattr(function, _SETTINGS_ATTRIBUTE)
    hints = typing.get_type_hints(body, globalns={**body.__globals__, "typer": typer}, include_extras=True)
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    for param in inspect.signature(body).parameters.values():
        if param.name == "shared":
            params += _shared_parameters(quiet_help, has_json)
        elif param.name == "keep":
            params += _retention_parameters()
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[param.name]))
    function.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    function.__annotations__ = {param.name: param.annotation for param in params}


def _option(name: str, annotation: object, default: object) -> inspect.Parameter:
    import inspect

    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def repo_option() -> Any:
    """``--repo``: of every command, and of the root (``zerofs --repo PATH COMMAND``)."""
    import typer

    return typer.Option("--repo", metavar="PATH", help="Repository directory (else $ZEROFS_REPO, config, default).")


def config_option() -> Any:
    """``-c/--config``: of every command, and of the root."""
    import typer

    return typer.Option("--config", "-c", metavar="FILE", help="TOML file naming the repository and defaults.")


def _shared_parameters(quiet_help: str, has_json: bool) -> list[inspect.Parameter]:
    import typer

    params = [
        _option("repo", Annotated[str | None, repo_option()], None),
        _option("config", Annotated[str | None, config_option()], None),
        _option("quiet", Annotated[bool, typer.Option("--quiet", "-q", help=quiet_help)], False),
    ]
    if has_json:
        as_json = typer.Option("--json", help="Print JSON (documented schema) instead of text.")
        params.append(_option("as_json", Annotated[bool, as_json], False))
    return params


def _retention_parameters() -> list[inspect.Parameter]:
    import typer

    within = typer.Option(
        "--keep-within", metavar="DURATION", help="Keep all within DURATION of the newest (30d, 2w, 1y2m, 12h)."
    )
    params = [_option("keep_within", Annotated[str | None, within], None)]
    for name, (flag, text) in KEEP_COUNTS.items():
        option = typer.Option(flag, metavar="N", parser=parse_count, show_default=False, help=f"{text[:-1]} (N>=1).")
        params.append(_option(name, Annotated[int | None, option], None))
    params.insert(1, params.pop(0))  # --keep-within second, where --help has always listed it
    return params


def parse_count(text: str) -> int:
    """A count of at least 1, in plain ASCII digits (typer's int also takes ``+3``, `` 3`` and other scripts' digits).

    Raises:
        typer.BadParameter: anything else; typer reports it naming the option (exit 2).
    """
    import typer

    if not (text.isascii() and text.isdigit()):
        raise typer.BadParameter(f"{text!r} is not a count: use digits 0-9, as in 7")
    if int(text) < 1:
        raise typer.BadParameter(f"{text!r}: keep at least 1; leave the option out to keep everything")
    return int(text)
