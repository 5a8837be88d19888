"""Command-line spec of the typer app, for the fast path. GENERATED: do not edit.

Regenerate with ``python -m zerofs.cli.spec`` after changing a command's
options or arguments. ``fast.py`` parses command lines with it; ``spec.py``
explains ``is_fast``. One line per parameter, with only the fields that
differ from the defaults below; a parameter that several commands share is
written once, as a constant.
"""

from __future__ import annotations

from typing import Final

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
    """A command: the function that runs it (``module:name``) and its parameters."""

    __slots__ = ("allow_interspersed_args", "function", "is_fast", "params")

    def __init__(
        self,
        function: str,  # "" for the root group
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


REPO = Param("repo", opts=("--repo",))
CONFIG = Param("config", opts=("--config", "-c"))
DEBUG = Param("debug", opts=("--debug",), is_flag=True, type="bool", default=False, is_fast=False)
VERSION = Param("version", opts=("--version",), is_flag=True, type="bool", default=False, is_fast=False)
LOCATION = Param("location", kind="argument")
GC_GRACE = Param("gc_grace", opts=("--gc-grace",), type="int", min=1)
QUIET = Param("quiet", opts=("--quiet", "-q"), is_flag=True, type="bool", default=False)
AS_JSON = Param("as_json", opts=("--json",), is_flag=True, type="bool", default=False)
HOST_PATH = Param("host_path", kind="argument", type="path", required=True, path_checks=("readable",))
STORE_PATH = Param("store_path", kind="argument", required=True)
PARENTS = Param("parents", opts=("--parents", "-p"), is_flag=True, type="bool", default=False)
SKIP_ERRORS = Param("skip_errors", opts=("--skip-errors",), is_flag=True, type="bool", default=False)
NO_XATTRS = Param("no_xattrs", opts=("--no-xattrs",), is_flag=True, type="bool", default=False)
SOURCE = Param("source", kind="argument")
TARGET = Param("target", kind="argument")
SOURCE_OPT = Param("source_opt", opts=("--source", "-s"))
TARGET_OPT = Param("target_opt", opts=("--destination", "-d"))
FORCE = Param("force", opts=("--force", "-f"), is_flag=True, type="bool", default=False)
STORE_PATHS = Param("store_paths", kind="argument", nargs=-1, required=True)
RECURSIVE = Param("recursive", opts=("--recursive", "-r", "-R"), is_flag=True, type="bool", default=False)
MV_SOURCE = Param("source", kind="argument", required=True)
MV_TARGET = Param("target", kind="argument", required=True)
LS_STORE_PATH = Param("store_path", kind="argument", default="/")
LONG = Param("long", opts=("-l", "--long"), is_flag=True, type="bool", default=False)
SHOW_ALL = Param("show_all", opts=("-a", "--all"), is_flag=True, type="bool", default=False)
LS_RECURSIVE = Param("recursive", opts=("-R", "--recursive"), is_flag=True, type="bool", default=False)
LOG_STORE_PATH = Param("store_path", kind="argument")
MAX_COUNT = Param("max_count", opts=("-n", "--max-count"), type="int", min=0)
A = Param("a", kind="argument", required=True)
B = Param("b", kind="argument", required=True)
SHOW_STAT = Param("show_stat", opts=("--stat",), is_flag=True, type="bool", default=False)
DU_STORE_PATHS = Param("store_paths", kind="argument", nargs=-1)
HUMAN = Param("human", opts=("--human-readable", "-h"), is_flag=True, type="bool", default=False)
READ_DATA = Param("read_data", opts=("--read-data",), is_flag=True, type="bool", default=False)
REBUILD_INDEX = Param("rebuild_index", opts=("--rebuild-index",), is_flag=True, type="bool", default=False)
KEEP_LAST = Param("keep_last", opts=("--keep-last",), type="int", is_fast=False)
KEEP_WITHIN = Param("keep_within", opts=("--keep-within",))
KEEP_HOURLY = Param("keep_hourly", opts=("--keep-hourly",), type="int", is_fast=False)
KEEP_DAILY = Param("keep_daily", opts=("--keep-daily",), type="int", is_fast=False)
KEEP_WEEKLY = Param("keep_weekly", opts=("--keep-weekly",), type="int", is_fast=False)
KEEP_MONTHLY = Param("keep_monthly", opts=("--keep-monthly",), type="int", is_fast=False)
KEEP_YEARLY = Param("keep_yearly", opts=("--keep-yearly",), type="int", is_fast=False)
DRY_RUN = Param("dry_run", opts=("--dry-run", "-n"), is_flag=True, type="bool", default=False)
COMPACT = Param("compact", opts=("--compact",), is_flag=True, type="bool", default=False)
BREAK_LOCK = Param("break_lock", opts=("--break-lock",), is_flag=True, type="bool", default=False)
DIRECTORY = Param("directory", kind="argument", required=True)
DESTINATION = Param("destination", kind="argument", required=True)
MOUNTPOINT = Param("mountpoint", kind="argument", required=True)
AT = Param("at", opts=("--at",))
READ_ONLY = Param("read_only", opts=("--read-only", "-r"), is_flag=True, type="bool", default=False)
COMMIT_INTERVAL = Param("commit_interval", opts=("--commit-interval",), type="int", default=5, min=1)
ALLOW_OTHER = Param("allow_other", opts=("--allow-other",), is_flag=True, type="bool", default=False)
FOREGROUND = Param("foreground", opts=("--foreground", "-f"), is_flag=True, type="bool", default=False)
ATIME = Param("atime", opts=("--atime",), default="relatime")
COMMAND = Param("command", kind="argument")
SHARED = [REPO, CONFIG, QUIET, AS_JSON]
"""The options (nearly) every command ends with: options.Shared."""


SPEC: Final = Spec(
    root=Command("", [REPO, CONFIG, DEBUG, VERSION], allow_interspersed_args=False),
    commands={
        "init": Command("zerofs.cli.cmd_repository:init", [LOCATION, GC_GRACE, *SHARED]),
        "upgrade": Command("zerofs.cli.cmd_repository:upgrade", [*SHARED]),
        "import": Command(
            "zerofs.cli.cmd_import:import_",
            [
                HOST_PATH,
                STORE_PATH,
                PARENTS,
                SKIP_ERRORS,
                NO_XATTRS,
                *SHARED,
            ],
        ),
        "clone": Command(
            "zerofs.cli.cmd_edit:clone",
            [
                SOURCE,
                TARGET,
                SOURCE_OPT,
                TARGET_OPT,
                PARENTS,
                FORCE,
                *SHARED,
            ],
        ),
        "snapshot": Command(
            "zerofs.cli.cmd_edit:clone",
            [
                SOURCE,
                TARGET,
                SOURCE_OPT,
                TARGET_OPT,
                PARENTS,
                FORCE,
                *SHARED,
            ],
        ),
        "snap": Command("zerofs.cli.cmd_edit:clone", [SOURCE, TARGET, SOURCE_OPT, TARGET_OPT, PARENTS, FORCE, *SHARED]),
        "write": Command("zerofs.cli.cmd_edit:write", [STORE_PATH, PARENTS, *SHARED]),
        "mkdir": Command("zerofs.cli.cmd_edit:mkdir", [STORE_PATH, PARENTS, *SHARED]),
        "rm": Command("zerofs.cli.cmd_edit:rm", [STORE_PATHS, RECURSIVE, FORCE, *SHARED]),
        "mv": Command("zerofs.cli.cmd_edit:mv", [MV_SOURCE, MV_TARGET, FORCE, *SHARED]),
        "ls": Command("zerofs.cli.cmd_browse:ls", [LS_STORE_PATH, LONG, SHOW_ALL, LS_RECURSIVE, *SHARED]),
        "cat": Command("zerofs.cli.cmd_browse:cat", [STORE_PATHS, *SHARED]),
        "stat": Command("zerofs.cli.cmd_browse:stat", [STORE_PATH, *SHARED]),
        "tree": Command("zerofs.cli.cmd_browse:tree", [LS_STORE_PATH, *SHARED]),
        "log": Command("zerofs.cli.cmd_history:log", [LOG_STORE_PATH, MAX_COUNT, *SHARED]),
        "export": Command("zerofs.cli.cmd_export:export", [STORE_PATH, HOST_PATH, FORCE, NO_XATTRS, *SHARED]),
        "diff": Command("zerofs.cli.cmd_history:diff", [A, B, SHOW_STAT, *SHARED]),
        "du": Command("zerofs.cli.cmd_usage:du", [DU_STORE_PATHS, HUMAN, *SHARED]),
        "stats": Command("zerofs.cli.cmd_usage:stats", [*SHARED]),
        "fsck": Command("zerofs.cli.cmd_fsck:fsck", [READ_DATA, REBUILD_INDEX, *SHARED]),
        "gc": Command(
            "zerofs.cli.cmd_gc:gc",
            [
                KEEP_LAST,
                KEEP_WITHIN,
                KEEP_HOURLY,
                KEEP_DAILY,
                KEEP_WEEKLY,
                KEEP_MONTHLY,
                KEEP_YEARLY,
                DRY_RUN,
                COMPACT,
                BREAK_LOCK,
                *SHARED,
            ],
        ),
        "prune": Command(
            "zerofs.cli.cmd_gc:prune",
            [
                DIRECTORY,
                KEEP_LAST,
                KEEP_WITHIN,
                KEEP_HOURLY,
                KEEP_DAILY,
                KEEP_WEEKLY,
                KEEP_MONTHLY,
                KEEP_YEARLY,
                DRY_RUN,
                *SHARED,
            ],
        ),
        "push": Command("zerofs.cli.cmd_sync:push", [DESTINATION, FORCE, DRY_RUN, *SHARED]),
        "pull": Command("zerofs.cli.cmd_sync:pull", [MV_SOURCE, FORCE, DRY_RUN, *SHARED]),
        "mount": Command(
            "zerofs.cli.cmd_mount:mount",
            [
                MOUNTPOINT,
                AT,
                READ_ONLY,
                COMMIT_INTERVAL,
                ALLOW_OTHER,
                FOREGROUND,
                ATIME,
                REPO,
                CONFIG,
                QUIET,
            ],
        ),
        "umount": Command("zerofs.cli.cmd_mount:umount", [MOUNTPOINT, REPO, CONFIG, QUIET]),
        "help": Command("zerofs.cli.cmd_help:help_", [COMMAND]),
    },
)
