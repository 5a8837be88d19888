"""The zerofs command line: the typer app that defines every command, its options and help.

Each command here only declares its parameters (names, flags, help texts)
and hands the parsed values to the function of the same name in
``commands.py``, which opens the repository, calls one service and renders.
The fast path (``fast.py``) parses the same command lines from a spec
generated from this app (``spec.py``) and calls the same functions, so the
two cannot drift apart. Errors become one line on stderr and the exit code
of their class in ``main``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerofs import __version__
from zerofs.cli import commands, commands_gc, commands_help, commands_mount, commands_sync
from zerofs.cli.completion import (
    complete_path_or_revision,
    complete_revision,
    complete_revision_path,
    complete_store_path,
)
from zerofs.errors import exit_code_table

_EXIT_CODES = "\n\n".join(f"{code}: {meaning}" for code, meaning in exit_code_table())

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

RepoOpt = Annotated[
    str | None,
    typer.Option("--repo", metavar="PATH", help="Repository directory (else $ZEROFS_REPO, config, default)."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", metavar="FILE", help="TOML file naming the repository and defaults."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (documented schema) instead of text.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
QuietDataOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors: the exit status is the answer.")
]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"zerofs {__version__}\n")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """A content-addressed, copy-on-write file store where a snapshot is a clone."""
    ctx.obj = {"repo": repo, "config": config}


def _where(ctx: typer.Context, repo: str | None, config: str | None) -> dict[str, str | None]:
    """``repo`` and ``config`` for a command: its own options, else the global ones.

    The fast path merges the same way (``fast.merge_root``): a command's option
    wins when it is given and not empty.
    """
    root = ctx.obj or {}
    return {"repo": repo or root.get("repo"), "config": config or root.get("config")}


# -- repository -------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Argument(
            metavar="[LOCATION]",
            show_default=False,
            help="Where to create it: a directory or s3://BUCKET/PREFIX (same as --repo).",
        ),
    ] = None,
    gc_grace: Annotated[
        int | None,
        typer.Option(
            "--gc-grace",
            metavar="SECONDS",
            min=1,
            show_default=False,
            help="S3 only: how long gc waits between publishing what it will delete and deleting it, so that "
            "writers on every host learn of it first (default 1800). Fixed for the repository's life.",
        ),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a repository (default: $XDG_DATA_HOME/zerofs), in a directory or an S3 bucket."""
    commands.init(location=location, gc_grace=gc_grace, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def upgrade(
    ctx: typer.Context,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert a repository of an older format to this version's, in place.

    Needs the repository to itself, and room for a second copy of its data
    while it runs. A kill at any moment leaves the old repository or the new
    one, never neither; run it again to finish. Every other command refuses
    an old repository and names this one.
    """
    commands.upgrade(quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


# -- changes ----------------------------------------------------------------------


NoXattrsOpt = Annotated[bool, typer.Option("--no-xattrs", help="Leave out user.* extended attributes and POSIX ACLs.")]


@app.command("import")
def import_(
    ctx: typer.Context,
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Host file or directory to import.")],
    store_path: Annotated[
        str,
        typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Where it goes in the store."),
    ],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create missing parent directories.")] = False,
    skip_errors: Annotated[bool, typer.Option("--skip-errors", help="Skip unreadable files with a warning.")] = False,
    no_xattrs: NoXattrsOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a host file or directory tree to STORE_PATH in one commit (replaces what is there).

    Keeps modes, owners, atimes, mtimes and ctimes (ns), symlinks (never
    followed), FIFOs, sockets and devices, user.* extended attributes and
    POSIX ACLs (unless --no-xattrs), holes of sparse files, and hard links
    among the imported names. Unchanged files are not read again.
    """
    commands.import_(
        host_path,
        store_path,
        parents=parents,
        skip_errors=skip_errors,
        no_xattrs=no_xattrs,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


SourceArg = Annotated[
    Optional[str],  # noqa: UP045
    typer.Argument(
        metavar="SOURCE",
        autocompletion=complete_revision_path,
        help="Store path to clone, or REV:/path to restore from history.",
    ),
]
TargetArg = Annotated[
    str | None, typer.Argument(metavar="DESTINATION", autocompletion=complete_store_path, help="New store path.")
]
SourceOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--source", "-s", metavar="SOURCE", help="Store path to clone, or REV:/path."),
]
TargetOpt = Annotated[Optional[str], typer.Option("--destination", "-d", metavar="DESTINATION", help="New store path.")]  # noqa: UP045
ParentsOpt = Annotated[bool, typer.Option("--parents", "-p", help="Create missing parent directories.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Replace DESTINATION if it exists.")]


@app.command()
def clone(
    ctx: typer.Context,
    source: SourceArg = None,
    target: TargetArg = None,
    source_opt: SourceOpt = None,
    target_opt: TargetOpt = None,
    parents: ParentsOpt = False,
    force: ForceOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Clone SOURCE to DESTINATION: an instant snapshot, whatever its size.

    SOURCE may name a revision (HEAD~3:/data): restoring from history is a clone too.
    Names hard-linked inside SOURCE stay linked to each other in the clone, never
    to SOURCE's names, so a snapshot stays as it was whatever is written later.
    """
    commands.clone(
        source,
        target,
        source_opt=source_opt,
        target_opt=target_opt,
        parents=parents,
        force=force,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


# The same command under its other names: snapshots are clones.
app.command("snapshot", help="Same as clone: snapshots are clones.")(clone)
app.command("snap", hidden=True, help="Same as clone.")(clone)


@app.command()
def write(
    ctx: typer.Context,
    store_path: Annotated[
        str, typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="File to write.")
    ],
    parents: ParentsOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write standard input to a file in the store (replacing its contents)."""
    commands.write(store_path, parents=parents, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def mkdir(
    ctx: typer.Context,
    store_path: Annotated[
        str, typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Directory to create.")
    ],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create parents; no error if it exists.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a directory in the store."""
    commands.mkdir(store_path, parents=parents, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def rm(
    ctx: typer.Context,
    store_paths: Annotated[
        list[str],
        typer.Argument(
            metavar="STORE_PATH...", autocompletion=complete_store_path, help="Paths or quoted patterns to remove."
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", "-R", help="Remove directories and their contents.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="No error if nothing matches.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove files or directories from the store, in one commit (history keeps them).

    Quote wildcards so that zerofs expands them against the store, not the
    shell against the host: zerofs rm -r '/snapshots/2026-01-*'. As in the
    shell, * and ? do not match a leading dot, and [*] matches a literal *.
    """
    commands.rm(
        store_paths, recursive=recursive, force=force, quiet=quiet, as_json=as_json, **_where(ctx, repo, config)
    )


@app.command()
def mv(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", autocompletion=complete_store_path, help="Path to move.")],
    target: Annotated[
        str,
        typer.Argument(
            metavar="DESTINATION", autocompletion=complete_store_path, help="New path, or a directory to move into."
        ),
    ],
    force: Annotated[bool, typer.Option("--force", "-f", help="Allow replacing a file with a directory.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move or rename a path in the store (O(1), whatever its size)."""
    commands.mv(source, target, force=force, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


# -- reading ----------------------------------------------------------------------


@app.command()
def ls(
    ctx: typer.Context,
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Directory or file (REV:/path for history).",
        ),
    ] = "/",
    long: Annotated[bool, typer.Option("-l", "--long", help="Mode, size, mtime and name.")] = False,
    show_all: Annotated[bool, typer.Option("-a", "--all", help="Include names starting with '.'.")] = False,
    recursive: Annotated[bool, typer.Option("-R", "--recursive", help="List subdirectories too.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List a directory in the store, in HEAD or in a revision (HEAD~3:/data, 3f9a2c1:/data)."""
    commands.ls(
        store_path,
        long=long,
        show_all=show_all,
        recursive=recursive,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


@app.command()
def cat(
    ctx: typer.Context,
    store_paths: Annotated[
        list[str],
        typer.Argument(
            metavar="STORE_PATH...",
            autocompletion=complete_revision_path,
            help="Files to print (REV:/path for history).",
        ),
    ],
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing: only read and verify every byte (exit status).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print files from the store to standard output (streamed, verified).

    With --json, prints one JSON array of {path, size, encoding, content}; the
    content is UTF-8 text when it decodes as such, else base64. That form holds
    each file in memory.
    """
    commands.cat(store_paths, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def stat(
    ctx: typer.Context,
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Path to describe (REV:/path for history).",
        ),
    ],
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the metadata and node of a path (with -q, only whether it exists: exit 0 or 3)."""
    commands.stat(store_path, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def tree(
    ctx: typer.Context,
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="Directory to show (REV:/path for history).",
        ),
    ] = "/",
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a directory and everything below it as a tree."""
    commands.tree(store_path, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def log(
    ctx: typer.Context,
    store_path: Annotated[
        str | None,
        typer.Argument(
            metavar="[STORE_PATH]", autocompletion=complete_store_path, help="Only commits that changed this path."
        ),
    ] = None,
    max_count: Annotated[
        int | None,
        typer.Option("-n", "--max-count", metavar="N", min=0, help="Show at most N commits."),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the history of commits, newest first (JSON lines with --json)."""
    commands.log(store_path, max_count=max_count, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def export(
    ctx: typer.Context,
    store_path: Annotated[
        str,
        typer.Argument(
            metavar="STORE_PATH",
            autocompletion=complete_revision_path,
            help="What to export (REV:/path for history).",
        ),
    ],
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Target (absent or empty directory).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Export into a non-empty directory, replacing files, symlinks and empty directories."
        ),
    ] = False,
    no_xattrs: NoXattrsOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Recreate a store path on the host with contents, modes, times and symlinks.

    Also recreates FIFOs, sockets and devices (devices need root), user.*
    extended attributes and POSIX ACLs (unless --no-xattrs), holes, and hard
    links among names linked within one import or clone. --force replaces
    only regular files, symlinks (the link itself) and empty directories; a
    device, FIFO, socket or non-empty directory in the way stops the export
    (exit 4) and is left untouched.
    """
    commands.export(
        store_path,
        host_path,
        force=force,
        no_xattrs=no_xattrs,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


# -- history: revisions and diff (issue #4) -------------------------------------------


@app.command()
def diff(
    ctx: typer.Context,
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            autocompletion=complete_path_or_revision,
            help="Old side: a revision (HEAD~1), a path (/x) or REV:/path.",
        ),
    ],
    b: Annotated[
        str,
        typer.Argument(
            metavar="B", autocompletion=complete_path_or_revision, help="New side: a revision, a path or REV:/path."
        ),
    ],
    show_stat: Annotated[bool, typer.Option("--stat", help="Byte counts per path and a total line.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what changed from A to B: one 'A', 'M' or 'D' line per path, sorted.

    A and B are revisions (whole trees), store paths in HEAD, or REV:/path.
    Only subtrees whose ids differ are read. A type change is a D line then
    an A line; a mode- or mtime-only change is an M. Paths are shown as in
    B. A directory against a file is an error (exit 4).
    """
    from zerofs.cli import commands_history

    commands_history.diff(a, b, show_stat=show_stat, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


# -- usage: du, stats, fsck (issue #4) --------------------------------------------------


@app.command(context_settings={"help_option_names": ["--help"]})
def du(
    ctx: typer.Context,
    store_paths: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer needs Optional for a list argument with a default)
        typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Paths to measure (default: /)."),
    ] = None,
    human: Annotated[bool, typer.Option("--human-readable", "-h", help="Sizes like 1.5M instead of bytes.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the apparent, stored and unique bytes of store paths.

    apparent: the sizes of the files below the path, counted once per path.
    stored: the records of the distinct objects the path reaches, after dedup
    and compression. unique: what deleting the path and running gc would free;
    history is retained, so content an earlier commit still holds is not
    unique. (-h means --human-readable here; use --help for help.)
    """
    from zerofs.cli import commands_usage

    commands_usage.du(store_paths or [], human=human, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def stats(
    ctx: typer.Context,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietDataOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show repository totals: logical and stored bytes, dedup and compression ratios, objects.

    logical: the files of HEAD's tree. content: the distinct chunks history
    reaches, uncompressed. dedup ratio = logical / content; compression ratio
    = content / the records that store it. on disk: blocks of the repository
    directory, as du counts them; packs: the pack files (live and not yet
    reclaimed objects); index: the index's pages in use.
    """
    from zerofs.cli import commands_usage

    commands_usage.stats(quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


@app.command()
def fsck(
    ctx: typer.Context,
    read_data: Annotated[
        bool,
        typer.Option("--read-data", help="Also read every pack once, in order, and re-hash every object in it."),
    ] = False,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index",
            help="First rebuild the index from the pack files and HEAD from the ref log (needs the repository "
            "to itself; on S3, index again what no intact index object names, while others write).",
        ),
    ] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check that every object history reaches is present and matches its id, and the storage below.

    Nodes are always read, re-hashed and decoded; chunks are looked up in the
    index, or with --read-data read and re-hashed. The packs are checked
    against the index and HEAD against the ref log. Each problem is one line
    naming the store path it affects and the commit; exit status 6 if any.
    """
    from zerofs.cli import commands_usage

    commands_usage.fsck(
        read_data=read_data, rebuild_index=rebuild_index, quiet=quiet, as_json=as_json, **_where(ctx, repo, config)
    )


# -- space: gc and prune (issue #4) -----------------------------------------------------


# Retention options, shared by gc (commits) and prune (snapshot directories).
KeepLastOpt = Annotated[int, typer.Option("--keep-last", min=0, metavar="N", help="Keep the N newest.")]
KeepWithinOpt = Annotated[
    str | None,
    typer.Option(
        "--keep-within", metavar="DURATION", help="Keep all within DURATION of the newest (30d, 2w, 1y2m, 12h)."
    ),
]
KeepHourlyOpt = Annotated[
    int, typer.Option("--keep-hourly", min=0, metavar="N", help="Keep the newest of each of the last N hours.")
]
KeepDailyOpt = Annotated[
    int, typer.Option("--keep-daily", min=0, metavar="N", help="Keep the newest of each of the last N days.")
]
KeepWeeklyOpt = Annotated[
    int, typer.Option("--keep-weekly", min=0, metavar="N", help="Keep the newest of each of the last N ISO weeks.")
]
KeepMonthlyOpt = Annotated[
    int, typer.Option("--keep-monthly", min=0, metavar="N", help="Keep the newest of each of the last N months.")
]
KeepYearlyOpt = Annotated[
    int, typer.Option("--keep-yearly", min=0, metavar="N", help="Keep the newest of each of the last N years.")
]


@app.command()
def gc(
    ctx: typer.Context,
    keep_last: KeepLastOpt = 0,
    keep_within: KeepWithinOpt = None,
    keep_hourly: KeepHourlyOpt = 0,
    keep_daily: KeepDailyOpt = 0,
    keep_weekly: KeepWeeklyOpt = 0,
    keep_monthly: KeepMonthlyOpt = 0,
    keep_yearly: KeepYearlyOpt = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would go; change nothing.")] = False,
    compact: Annotated[
        bool, typer.Option("--compact", help="Then rewrite the index without its free pages (needs it to itself).")
    ] = False,
    break_lock: Annotated[
        bool,
        typer.Option(
            "--break-lock", help="S3 only: first remove the lock of a gc that died (make sure none is running)."
        ),
    ] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Cut history to a retention policy and delete what no kept commit references.

    Retention has restic forget's semantics; HEAD is always kept, and with no
    --keep option every commit is kept (gc then only deletes objects nothing
    references, such as those of an interrupted import). Then the space comes
    back: packs holding no live object are deleted, packs with 15% or more
    of dead bytes are rewritten. gc runs while other processes import, commit
    and mount: it forgets objects only in short steps taken in gaps between
    writers, never one a writer in flight may reference, and rewrites packs
    without stopping anyone.
    On S3, where other hosts write at any moment, gc publishes what it will
    delete, waits the repository's grace period (zerofs init --gc-grace,
    default 30 minutes) while writers on every host learn of it and copy
    what they reuse, marks again, and only then deletes; one gc at a time
    (a lock object; --break-lock removes one a killed gc left).
    Examples: zerofs gc --keep-last 10 --keep-within 30d --dry-run
    """
    commands_gc.gc(
        keep_last=keep_last,
        keep_within=keep_within,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        dry_run=dry_run,
        compact=compact,
        break_lock=break_lock,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


@app.command()
def prune(
    ctx: typer.Context,
    directory: Annotated[
        str,
        typer.Argument(
            metavar="DIRECTORY", autocompletion=complete_store_path, help="Directory whose children are snapshots."
        ),
    ],
    keep_last: KeepLastOpt = 0,
    keep_within: KeepWithinOpt = None,
    keep_hourly: KeepHourlyOpt = 0,
    keep_daily: KeepDailyOpt = 0,
    keep_weekly: KeepWeeklyOpt = 0,
    keep_monthly: KeepMonthlyOpt = 0,
    keep_yearly: KeepYearlyOpt = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="List what would go; change nothing.")] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove the snapshots under DIRECTORY that a retention policy does not keep, in one commit.

    Each child is dated by when it was created in the store (recorded when a
    clone, import or mkdir places it; renames keep it), not by its name. A
    child with no record is kept, with a warning. Run gc afterwards to
    reclaim the space. Example: zerofs prune /snapshots/daily --keep-daily 7 --keep-weekly 4
    """
    commands_gc.prune(
        directory,
        keep_last=keep_last,
        keep_within=keep_within,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        dry_run=dry_run,
        quiet=quiet,
        as_json=as_json,
        **_where(ctx, repo, config),
    )


# -- between repositories ----------------------------------------------------------------

TransferForceOpt = Annotated[
    bool,
    typer.Option("--force", "-f", help="Move the other HEAD even if it is not an ancestor (drops its commits)."),
]
TransferDryRunOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="Count what would be copied; change nothing.")]


@app.command()
def push(
    ctx: typer.Context,
    destination: Annotated[
        str, typer.Argument(metavar="DESTINATION", help="Repository to copy into (a directory made by init).")
    ],
    force: TransferForceOpt = False,
    dry_run: TransferDryRunOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy this repository's HEAD, with the commits and objects DESTINATION lacks, and move its HEAD.

    Only what DESTINATION lacks is sent, so a small change costs little in a
    tree of any size; records are copied as stored and verified on the way.
    DESTINATION's HEAD moves last, by compare-and-swap, and only forward (its
    HEAD must be an ancestor of this one, or it must be fresh from init)
    unless --force. An interrupted push can simply be run again: it sends
    only what is still missing. Chunk sizes may differ between the two.
    Example: zerofs push /mnt/backup/zerofs
    """
    commands_sync.push(
        destination, force=force, dry_run=dry_run, quiet=quiet, as_json=as_json, **_where(ctx, repo, config)
    )


@app.command()
def pull(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Repository to copy from.")],
    force: TransferForceOpt = False,
    dry_run: TransferDryRunOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy SOURCE's HEAD, with the commits and objects this repository lacks, and move this HEAD to it.

    The reverse of push, with the same guarantees: only what is missing is
    copied, verified, and this repository's HEAD moves last, only forward
    unless --force. A live mount of this repository commits first and then
    shows the pulled tree. Example: zerofs pull /mnt/backup/zerofs
    """
    commands_sync.pull(source, force=force, dry_run=dry_run, quiet=quiet, as_json=as_json, **_where(ctx, repo, config))


MountpointArg = Annotated[
    str, typer.Argument(metavar="MOUNTPOINT", help="An existing directory on the host.", show_default=False)
]


@app.command()
def mount(
    ctx: typer.Context,
    mountpoint: MountpointArg,
    at: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Option(
            "--at",
            metavar="REV",
            autocompletion=complete_revision,
            help="Mount the tree of this revision (implies --read-only).",
        ),
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", "-r", help="Refuse every change (EROFS).")] = False,
    commit_interval: Annotated[
        int,
        typer.Option("--commit-interval", metavar="SECONDS", min=1, help="Commit pending changes at least this often."),
    ] = 5,
    allow_other: Annotated[
        bool, typer.Option("--allow-other", help="Let other users in (file modes still apply).")
    ] = False,
    foreground: Annotated[
        bool, typer.Option("--foreground", "-f", help="Stay attached; unmount on Ctrl-C or SIGTERM.")
    ] = False,
    atime: Annotated[
        str,
        typer.Option(
            "--atime",
            metavar="POLICY",
            help="When a read sets the access time: relatime (when older than the last change, or a day"
            " old, as Linux by default), strictatime (every read) or noatime (never).",
        ),
    ] = "relatime",
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Mount the store at MOUNTPOINT as an ordinary read-write directory.

    Any program can read and write there; snapshots are plain directories, and
    `zerofs clone` run meanwhile shows up in the mount within a second. Every
    zerofs command first has the mount commit what was written through it, so a
    snapshot taken right after a write holds it. Changes are also committed when
    a file is fsynced, every --commit-interval seconds, and on unmount (zerofs
    umount, or SIGTERM/SIGINT to the mount process); each commit appears in
    `zerofs log` as "mount: ...". FIFOs, sockets and device nodes can be created
    (devices only by root); the mount is nodev, so devices cannot be opened in
    it. Hard links work within one import, clone or write target; a link into
    another fails with EXDEV, as across btrfs subvolumes.
    Example: zerofs mount ~/z; zerofs mount --at HEAD~5 ~/old
    """
    commands_mount.mount(
        mountpoint,
        at=at,
        read_only=read_only,
        commit_interval=commit_interval,
        allow_other=allow_other,
        foreground=foreground,
        atime=atime,
        quiet=quiet,
        **_where(ctx, repo, config),
    )


@app.command()
def umount(
    ctx: typer.Context,
    mountpoint: MountpointArg,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Commit what a mount has pending, unmount it, and wait until its process has finished.

    A mount whose process was killed is detached. Example: zerofs umount ~/z
    """
    commands_mount.umount(mountpoint, quiet=quiet, **_where(ctx, repo, config))


def _complete_command(ctx: typer.Context, incomplete: str) -> list[str]:
    group = ctx.find_root().command
    names: list[str] = getattr(group, "list_commands", lambda _: [])(ctx)
    return [name for name in names if name.startswith(incomplete)]


@app.command("help")
def help_(
    command: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime
        typer.Argument(metavar="COMMAND", autocompletion=_complete_command, help="The command to explain."),
    ] = None,
) -> None:
    """Show the help of COMMAND (the same as zerofs COMMAND --help), or of zerofs itself.

    Example: zerofs help clone
    """
    commands_help.help_(command)
