"""The shape of the fast path's spec: a command's parameters as ``fast.py`` parses them.

``spec.py`` writes ``spec_data.py`` as instances of these classes;
``fast.py`` reads them. Nothing here knows typer.
"""

from __future__ import annotations

# Plain classes, not NamedTuples: creating a NamedTuple class costs ``cat`` 1.5 ms of start-up.


class Param:
    """One parameter of a command, as the fast path parses it."""

    __slots__ = (
        "default",
        "is_fast",
        "is_flag",
        "kind",
        "max",
        "min",
        "name",
        "nargs",
        "opts",
        "path_checks",
        "required",
        "secondary_opts",
        "type",
    )

    def __init__(
        self,
        name: str,  # the keyword the command function takes
        kind: str = "option",  # or "argument"
        opts: tuple[str, ...] = (),  # option words; a flag they name becomes True
        secondary_opts: tuple[str, ...] = (),  # option words that set a flag to False
        is_flag: bool = False,  # takes no value
        nargs: int = 1,  # or -1 for an argument that takes all remaining words
        type: str = "str",  # "str", "int", "bool" or "path"; "" if the fast path cannot convert it
        required: bool = False,
        default: str | int | bool | None = None,
        min: int | None = None,  # bounds of an int
        max: int | None = None,
        path_checks: tuple[str, ...] = (),  # checks of an existing host path: not_file, not_dir, readable, writable
        is_fast: bool = True,  # False: a command line that gives it goes to typer
    ) -> None:
        self.name, self.kind, self.opts, self.secondary_opts = name, kind, opts, secondary_opts
        self.is_flag, self.nargs, self.type, self.required = is_flag, nargs, type, required
        self.default, self.min, self.max = default, min, max
        self.path_checks, self.is_fast = path_checks, is_fast


class Command:
    """A command: the function that runs it (``module:name``, in zerofs.cli) and its parameters."""

    __slots__ = ("allow_interspersed_args", "function", "is_fast", "params")

    def __init__(
        self,
        function: str,  # "cmd_browse:cat" for zerofs.cli.cmd_browse.cat; "" for the root group
        params: list[Param],
        is_fast: bool = True,  # False: every use of the command goes to typer
        allow_interspersed_args: bool = True,  # options may follow arguments (not for the root group)
    ) -> None:
        self.function, self.params, self.is_fast = function, params, is_fast
        self.allow_interspersed_args = allow_interspersed_args


class Spec:
    """The root group (global options) and every command by name."""

    __slots__ = ("commands", "root")

    def __init__(self, root: Command, commands: dict[str, Command]) -> None:
        self.root, self.commands = root, commands
