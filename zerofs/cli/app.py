"""The zerofs command line: typer commands that parse, call one service, render.

No storage logic lives here. The repository is found and opened once per
command through ``cli.context``; errors become one line on stderr and the
exit code of their class in ``main``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zerofs import __version__
from zerofs.cli import render
from zerofs.cli.context import Settings, open_repository, settings
from zerofs.errors import UsageError, exit_code_table
from zerofs.paths import StorePath
from zerofs.repo import Repository

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

RepoOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional
    "--repo", metavar="PATH", help="Repository directory (else $ZEROFS_REPO, config, default).")]
ConfigOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--config", "-c", metavar="FILE", help="TOML file naming the repository and defaults.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (documented schema) instead of text.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """A content-addressed, copy-on-write file store where a snapshot is a clone."""
    ctx.obj = {"repo": repo, "config": config}


def _settings(ctx: typer.Context, repo: str | None, config: str | None) -> Settings:
    root = ctx.obj or {}
    return settings(repo or root.get("repo"), config or root.get("config"))


def _open(ctx: typer.Context, repo: str | None, config: str | None, *, readonly: bool = False) -> Repository:
    return open_repository(_settings(ctx, repo, config), readonly=readonly)


def _path(text: str) -> StorePath:
    return StorePath.parse(text)


def _done(quiet: bool, message: str) -> None:
    if not quiet:
        sys.stderr.write(message + "\n")


# -- repository -------------------------------------------------------------------


@app.command()
def init(ctx: typer.Context, repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False,
         as_json: JsonOpt = False) -> None:
    """Create a repository (default: $XDG_DATA_HOME/zerofs)."""
    from zerofs.history import author  # noqa: PLC0415

    found = _settings(ctx, repo, config)
    level = found.defaults.get("compression_level", 3)
    if not isinstance(level, int) or not 1 <= level <= 19:
        raise UsageError("config [defaults] compression_level must be an integer from 1 to 19")
    created = Repository.init(found.repo_path, author=author(), compression_level=level)
    if as_json:
        render.print_json({"repository": str(found.repo_path), "format_version": created.config.format_version,
                           "chunking": created.config.chunk_params.to_dict(),
                           "compression_level": created.config.compression_level})
    else:
        _done(quiet, f"initialised zerofs repository at {found.repo_path}")
    created.close()


# -- changes ----------------------------------------------------------------------


@app.command("import")
def import_(
    ctx: typer.Context,
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Host file or directory to import.")],
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Where it goes in the store.")],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create missing parent directories.")] = False,
    skip_errors: Annotated[bool, typer.Option("--skip-errors", help="Skip unreadable files with a warning.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Import a host file or directory tree to STORE_PATH in one commit (replaces what is there)."""
    from zerofs.cli.progress import ImportBar  # noqa: PLC0415
    from zerofs.services.importer import import_tree  # noqa: PLC0415

    target = _path(store_path)
    found = _settings(ctx, repo, config)
    skip = skip_errors or bool(found.defaults.get("skip_errors", False))
    with open_repository(found) as repository, ImportBar(enabled=not quiet and sys.stderr.isatty()) as bar:
        result = import_tree(repository, host_path, target, parents=parents, skip_errors=skip,
                             on_progress=bar.update, on_warning=lambda w: sys.stderr.write(f"zerofs: warning: {w}\n"))
    if as_json:
        render.print_json({"path": str(result.store_path), "commit": result.commit_id.hex() if result.commit_id else None,
                           "files": result.files, "dirs": result.dirs, "symlinks": result.symlinks,
                           "bytes": result.bytes_total, "files_unchanged": result.files_unchanged,
                           "new_bytes": result.new_bytes, "warnings": list(result.warnings)})
    else:
        _done(quiet, f"imported {host_path} -> {result.store_path}: {result.files} files "
                     f"({result.files_unchanged} unchanged), {render.human_size(result.bytes_total)}, "
                     f"{render.human_size(result.new_bytes)} new")


def _clone(ctx: typer.Context, source: str | None, target: str | None, source_opt: str | None,
           target_opt: str | None, parents: bool, force: bool, repo: str | None, config: str | None,
           quiet: bool, as_json: bool) -> None:
    from zerofs.services.edit import clone as clone_path  # noqa: PLC0415

    src = source_opt or source
    dst = target_opt or target
    if src is None or dst is None:
        raise UsageError("clone needs a SOURCE and a DESTINATION (positional or --source/--destination)")
    if (source_opt and source) or (target_opt and target):
        raise UsageError("give SOURCE and DESTINATION either as arguments or as --source/--destination, not both")
    found = _settings(ctx, repo, config)
    parents = parents or bool(found.defaults.get("parents", False))
    with open_repository(found) as repository:
        result = clone_path(repository, _path(src), _path(dst), parents=parents, force=force)
    _report(result.commit_id, result.message, quiet, as_json)


def _report(commit_id: bytes | None, message: str, quiet: bool, as_json: bool) -> None:
    if as_json:
        render.print_json({"commit": commit_id.hex() if commit_id else None, "message": message})
    elif commit_id is None:
        _done(quiet, f"{message}: nothing changed")
    else:
        _done(quiet, f"[{commit_id.hex()[:12]}] {message}")


SourceArg = Annotated[Optional[str], typer.Argument(metavar="SOURCE", help="Store path to clone.")]  # noqa: UP045
TargetArg = Annotated[Optional[str], typer.Argument(metavar="DESTINATION", help="New store path.")]  # noqa: UP045
SourceOpt = Annotated[Optional[str], typer.Option("--source", "-s", help="Store path to clone.")]  # noqa: UP045
TargetOpt = Annotated[Optional[str], typer.Option("--destination", "-d", help="New store path.")]  # noqa: UP045
ParentsOpt = Annotated[bool, typer.Option("--parents", "-p", help="Create missing parent directories.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Replace DESTINATION if it exists.")]


@app.command()
def clone(ctx: typer.Context, source: SourceArg = None, target: TargetArg = None, source_opt: SourceOpt = None,
          target_opt: TargetOpt = None, parents: ParentsOpt = False, force: ForceOpt = False,
          repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Clone SOURCE to DESTINATION: an instant snapshot, whatever its size."""
    _clone(ctx, source, target, source_opt, target_opt, parents, force, repo, config, quiet, as_json)


@app.command()
def snapshot(ctx: typer.Context, source: SourceArg = None, target: TargetArg = None, source_opt: SourceOpt = None,
             target_opt: TargetOpt = None, parents: ParentsOpt = False, force: ForceOpt = False,
             repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False,
             as_json: JsonOpt = False) -> None:
    """Same as clone: snapshots are clones."""
    _clone(ctx, source, target, source_opt, target_opt, parents, force, repo, config, quiet, as_json)


@app.command("snap", hidden=True)
def snap(ctx: typer.Context, source: SourceArg = None, target: TargetArg = None, source_opt: SourceOpt = None,
         target_opt: TargetOpt = None, parents: ParentsOpt = False, force: ForceOpt = False,
         repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Same as clone."""
    _clone(ctx, source, target, source_opt, target_opt, parents, force, repo, config, quiet, as_json)


@app.command()
def write(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="File to write.")],
    parents: ParentsOpt = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Write standard input to a file in the store (replacing its contents)."""
    from zerofs.services.edit import write_file  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config) as repository:
        result = write_file(repository, target, sys.stdin.buffer, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, quiet, as_json)


@app.command()
def mkdir(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Directory to create.")],
    parents: Annotated[bool, typer.Option("--parents", "-p", help="Create parents; no error if it exists.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create a directory in the store."""
    from zerofs.services.edit import mkdir as make_dir  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config) as repository:
        result = make_dir(repository, target, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, quiet, as_json)


@app.command()
def rm(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Path to remove.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", "-R", help="Remove directories and their contents.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="No error if the path does not exist.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Remove a file or directory from the store (history keeps it)."""
    from zerofs.services.edit import remove_path  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config) as repository:
        result = remove_path(repository, target, recursive=recursive, missing_ok=force)
    _report(result.commit_id, result.message, quiet, as_json)


@app.command()
def mv(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Path to move.")],
    target: Annotated[str, typer.Argument(metavar="DESTINATION", help="New path, or a directory to move into.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Allow replacing a file with a directory.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Move or rename a path in the store (O(1), whatever its size)."""
    from zerofs.services.edit import move_path  # noqa: PLC0415

    src, dst = _path(source), _path(target)
    with _open(ctx, repo, config) as repository:
        result = move_path(repository, src, dst, force=force)
    _report(result.commit_id, result.message, quiet, as_json)


# -- reading ----------------------------------------------------------------------


@app.command()
def ls(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Directory or file.")] = "/",
    long: Annotated[bool, typer.Option("-l", "--long", help="Mode, size, mtime and name.")] = False,
    show_all: Annotated[bool, typer.Option("-a", "--all", help="Include names starting with '.'.")] = False,
    recursive: Annotated[bool, typer.Option("-R", "--recursive", help="List subdirectories too.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """List a directory in the store."""
    from zerofs.services.browse import list_path  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config, readonly=True) as repository:
        rows = list_path(repository, target, recursive=recursive, with_targets=long or as_json)
        render.render_listing(rows, long=long, show_all=show_all or as_json, recursive=recursive, as_json=as_json)


@app.command()
def cat(
    ctx: typer.Context,
    store_paths: Annotated[list[str], typer.Argument(metavar="STORE_PATH...", help="Files to print.")],
    repo: RepoOpt = None, config: ConfigOpt = None,
) -> None:
    """Print files from the store to standard output (streamed, verified)."""
    from zerofs.services.browse import read_file  # noqa: PLC0415

    targets = [_path(p) for p in store_paths]
    with _open(ctx, repo, config, readonly=True) as repository:
        out = sys.stdout.buffer
        for target in targets:
            for data in read_file(repository, target):
                out.write(data)
        out.flush()


@app.command()
def stat(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Path to describe.")],
    repo: RepoOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show the metadata and node of a path."""
    from zerofs.services.browse import stat_path  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config, readonly=True) as repository:
        render.render_stat(stat_path(repository, target), as_json=as_json)


@app.command()
def tree(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="Directory to show.")] = "/",
    repo: RepoOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a directory and everything below it as a tree."""
    from zerofs.services.browse import list_path  # noqa: PLC0415

    target = _path(store_path)
    with _open(ctx, repo, config, readonly=True) as repository:
        rows = list_path(repository, target, recursive=True, with_targets=True)
        render.render_tree(rows, str(target), as_json=as_json)


@app.command()
def log(
    ctx: typer.Context,
    store_path: Annotated[Optional[str], typer.Argument(metavar="[STORE_PATH]", help="Only commits that changed this path.")] = None,  # noqa: UP045
    max_count: Annotated[Optional[int], typer.Option("-n", "--max-count", min=0, help="Show at most N commits.")] = None,  # noqa: UP045
    repo: RepoOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show the history of commits, newest first (JSON lines with --json)."""
    from zerofs.services.browse import log as iter_commits  # noqa: PLC0415

    target = _path(store_path) if store_path else None
    with _open(ctx, repo, config, readonly=True) as repository:
        render.render_log(iter_commits(repository, limit=max_count, path=target), as_json=as_json)


@app.command()
def export(
    ctx: typer.Context,
    store_path: Annotated[str, typer.Argument(metavar="STORE_PATH", help="What to export.")],
    host_path: Annotated[Path, typer.Argument(metavar="HOST_PATH", help="Target (absent or empty directory).")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Export into a non-empty directory, replacing files.")] = False,
    repo: RepoOpt = None, config: ConfigOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False,
) -> None:
    """Recreate a store path on the host with contents, modes, mtimes and symlinks."""
    from zerofs.cli.progress import ExportBar  # noqa: PLC0415
    from zerofs.services.exporter import export_tree  # noqa: PLC0415

    source = _path(store_path)
    with _open(ctx, repo, config, readonly=True) as repository, \
            ExportBar(enabled=not quiet and sys.stderr.isatty()) as bar:
        result = export_tree(repository, source, host_path, force=force, on_file=bar.update)
    if as_json:
        render.print_json({"files": result.files, "dirs": result.dirs, "symlinks": result.symlinks,
                           "bytes": result.bytes_written})
    else:
        _done(quiet, f"exported {source} -> {host_path}: {result.files} files, "
                     f"{render.human_size(result.bytes_written)}")
