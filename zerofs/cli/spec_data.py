"""Command-line spec of the typer app, for the fast path. GENERATED: do not edit.

Regenerate with ``python -m zerofs.cli.spec`` after changing a command's
options or arguments. ``fast.py`` parses command lines with it; ``spec.py``
explains ``is_fast``, and ``spec_types.py`` each field. One line per
distinct parameter, with only the fields that differ from their defaults,
then one line per command.
"""

from __future__ import annotations

from typing import Final

from zerofs.cli.spec_types import Command, Param, Spec

REPO = Param("repo", opts=("--repo",))
CONFIG = Param("config", opts=("--config", "-c"))
DEBUG = Param("debug", opts=("--debug",), is_flag=True, type="bool", default=False, is_fast=False)
VERSION = Param("version", opts=("--version",), is_flag=True, type="bool", default=False, is_fast=False)
LOCATION = Param("location", kind="argument")
GC_GRACE = Param("gc_grace", opts=("--gc-grace",), type="int", min=1)
ENCRYPT = Param("encrypt", opts=("--encrypt",), is_flag=True, type="bool", default=False)
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
KEEP = [KEEP_LAST, KEEP_WITHIN, KEEP_HOURLY, KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, KEEP_YEARLY]
"""The retention options of gc and prune: options.command's keep parameter."""


SPEC: Final = Spec(
    root=Command("", [REPO, CONFIG, DEBUG, VERSION], allow_interspersed_args=False),
    commands={
        "init": Command("cmd_repository:init", [LOCATION, GC_GRACE, ENCRYPT, *SHARED]),
        "upgrade": Command("cmd_repository:upgrade", [*SHARED]),
        "import": Command("cmd_import:import_", [HOST_PATH, STORE_PATH, PARENTS, SKIP_ERRORS, NO_XATTRS, *SHARED]),
        "clone": Command("cmd_edit:clone", [SOURCE, TARGET, SOURCE_OPT, TARGET_OPT, PARENTS, FORCE, *SHARED]),
        "snapshot": Command("cmd_edit:clone", [SOURCE, TARGET, SOURCE_OPT, TARGET_OPT, PARENTS, FORCE, *SHARED]),
        "snap": Command("cmd_edit:clone", [SOURCE, TARGET, SOURCE_OPT, TARGET_OPT, PARENTS, FORCE, *SHARED]),
        "write": Command("cmd_edit:write", [STORE_PATH, PARENTS, *SHARED]),
        "mkdir": Command("cmd_edit:mkdir", [STORE_PATH, PARENTS, *SHARED]),
        "rm": Command("cmd_edit:rm", [STORE_PATHS, RECURSIVE, FORCE, *SHARED]),
        "mv": Command("cmd_edit:mv", [MV_SOURCE, MV_TARGET, FORCE, *SHARED]),
        "ls": Command("cmd_browse:ls", [LS_STORE_PATH, LONG, SHOW_ALL, LS_RECURSIVE, *SHARED]),
        "cat": Command("cmd_browse:cat", [STORE_PATHS, *SHARED]),
        "stat": Command("cmd_browse:stat", [STORE_PATH, *SHARED]),
        "tree": Command("cmd_browse:tree", [LS_STORE_PATH, *SHARED]),
        "log": Command("cmd_history:log", [LOG_STORE_PATH, MAX_COUNT, *SHARED]),
        "export": Command("cmd_export:export", [STORE_PATH, HOST_PATH, FORCE, NO_XATTRS, *SHARED]),
        "diff": Command("cmd_history:diff", [A, B, SHOW_STAT, *SHARED]),
        "du": Command("cmd_usage:du", [DU_STORE_PATHS, HUMAN, *SHARED]),
        "stats": Command("cmd_usage:stats", [*SHARED]),
        "fsck": Command("cmd_fsck:fsck", [READ_DATA, REBUILD_INDEX, *SHARED]),
        "gc": Command("cmd_gc:gc", [*KEEP, DRY_RUN, COMPACT, BREAK_LOCK, *SHARED]),
        "prune": Command("cmd_gc:prune", [DIRECTORY, *KEEP, DRY_RUN, *SHARED]),
        "push": Command("cmd_sync:push", [DESTINATION, FORCE, DRY_RUN, *SHARED]),
        "pull": Command("cmd_sync:pull", [MV_SOURCE, FORCE, DRY_RUN, *SHARED]),
        "mount": Command(
            "cmd_mount:mount",
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
        "umount": Command("cmd_mount:umount", [MOUNTPOINT, REPO, CONFIG, QUIET]),
        "help": Command("cmd_help:help_", [COMMAND]),
        "key": Command("", [], is_fast=False, allow_interspersed_args=False),
    },
)
