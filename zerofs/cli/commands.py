"""What each command does once its arguments are parsed: open, call one service, render.

Both front ends call these functions: the typer app (``app.py``, which owns
the help texts and option names) and the start-up fast path (``fast.py``).
Each function takes plain, already-converted values named exactly like the
parameters of the typer command that calls it (``spec.py`` records those
names and ``tests/e2e/test_fast_path.py`` checks they match). ``repo`` and
``config`` arrive already merged with the global options.

This module must not import typer, click or rich: it is on the fast path.
Services, the renderers and the progress bars are imported inside each
function so that ``cat`` loads only what ``cat`` needs.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import TYPE_CHECKING

from zerofs.cli.context import open_repository, s3_settings, settings, user_cache_dir
from zerofs.errors import UsageError
from zerofs.paths import RevPath, StorePath
from zerofs.repo import Repository

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path  # pathlib (with urllib.parse) costs 3 ms of start-up


def _open(repo: str | None, config: str | None, *, readonly: bool = False) -> Repository:
    return open_repository(settings(repo, config), readonly=readonly)


def _path(text: str) -> StorePath:
    return StorePath.parse(text)


def _done(quiet: bool, message: str) -> None:
    if not quiet:
        sys.stderr.write(message + "\n")


def _drain(items: Iterable[object]) -> None:
    """Consume ``items`` for their checks alone: what ``-q`` on a data command leaves."""
    deque(items, maxlen=0)


def _warn(message: str) -> None:
    sys.stderr.write(f"zerofs: warning: {message}\n")


def _report(commit_id: bytes | None, message: str, quiet: bool, as_json: bool) -> None:
    if as_json:
        from zerofs.cli import render

        render.print_json({"commit": commit_id.hex() if commit_id else None, "message": message})
    elif commit_id is None:
        _done(quiet, f"{message}: nothing changed")
    else:
        _done(quiet, f"[{commit_id.hex()[:12]}] {message}")


# -- repository -------------------------------------------------------------------


def init(
    *,
    location: str | None = None,
    gc_grace: int | None = None,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Create a repository at ``location``, else where the options say.

    Raises:
        UsageError: the config's compression level is out of range, LOCATION and --repo disagree,
            or a gc grace period for a local repository.
    """
    from zerofs.history import author

    if location is not None and repo is not None and location != repo:
        raise UsageError(f"init: LOCATION {location!r} and --repo {repo!r} disagree; give one")
    found = settings(location or repo, config)
    level = found.defaults.get("compression_level", 3)
    if not isinstance(level, int) or not 1 <= level <= 19:
        raise UsageError(
            f"config file {config}: [defaults] compression_level must be an integer from 1 to 19, not {level!r}"
        )
    s3 = s3_settings(found.repo_path)
    created = Repository.init(
        found.repo_path,
        author=author(),
        compression_level=level,
        s3_settings=s3,
        cache_dir=user_cache_dir() if s3 is not None else None,
        gc_grace_s=gc_grace,
    )
    if as_json:
        from zerofs.cli import render

        render.print_json(
            {
                "repository": str(found.repo_path),
                "format_version": created.config.format_version,
                "chunking": created.config.chunk_params.to_dict(),
                "compression_level": created.config.compression_level,
                "gc_grace_s": created.config.gc_grace_s,
            }
        )
    else:
        _done(quiet, f"initialised zerofs repository at {found.repo_path}")
    created.close()


def upgrade(*, repo: str | None, config: str | None, quiet: bool, as_json: bool) -> None:
    """Convert a format-1 repository to the current format, in place."""
    from zerofs.repo import UpgradeResult, is_s3_path

    found = settings(repo, config)
    if is_s3_path(found.repo_path):  # S3 repositories were never of an older format: open it to check it is there
        open_repository(found, readonly=True).close()
        result = UpgradeResult(0, 0, 0, is_current=True)
    else:
        result = Repository.upgrade(found.repo_path)
    if as_json:
        from zerofs.cli import render

        render.print_json(
            {
                "repository": str(found.repo_path),
                "converted": not result.is_current,
                "objects": result.n_objects,
                "damaged_objects": result.n_damaged,
                "stored_bytes": result.stored_bytes,
            }
        )
        return
    if result.is_current:
        leftovers = "; removed what an interrupted conversion left" if result.removed_leftovers else ""
        _done(quiet, f"the repository at {found.repo_path} is already of the current format{leftovers}")
        return
    if result.n_damaged:
        _warn(
            f"{result.n_damaged} objects failed their check in the old repository and were left out; "
            "zerofs fsck names the paths they affect"
        )
    _done(quiet, f"converted the repository at {found.repo_path}: {result.n_objects} objects")


# -- changes ----------------------------------------------------------------------


def import_(
    host_path: Path,
    store_path: str,
    *,
    parents: bool,
    skip_errors: bool,
    no_xattrs: bool,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Import a host file or tree to ``store_path`` in one commit."""
    from zerofs.cli import render
    from zerofs.cli.progress import ImportBar
    from zerofs.services.importer import import_tree

    target = _path(store_path)
    found = settings(repo, config)
    skip = skip_errors or bool(found.defaults.get("skip_errors", False))
    with (
        open_repository(found, cache_dir=user_cache_dir()) as repository,
        ImportBar(enabled=not quiet and sys.stderr.isatty()) as bar,
    ):
        result = import_tree(
            repository,
            host_path,
            target,
            parents=parents,
            skip_errors=skip,
            on_progress=bar.update if bar.enabled else None,
            on_warning=_warn,
            xattrs=not no_xattrs,
        )
    if as_json:
        commit_hex = result.commit_id.hex() if result.commit_id else None
        render.print_json(
            {
                "path": str(result.store_path),
                "commit": commit_hex,
                "files": result.files,
                "dirs": result.dirs,
                "symlinks": result.symlinks,
                "specials": result.specials,
                "hardlinks": result.hardlinks,
                "bytes": result.bytes_total,
                "files_unchanged": result.files_unchanged,
                "new_bytes": result.new_bytes,
                "warnings": list(result.warnings),
            }
        )
    else:
        _done(
            quiet,
            f"imported {host_path} -> {result.store_path}: {result.files} files "
            f"({result.files_unchanged} unchanged), {render.human_size(result.bytes_total)}, "
            f"{render.human_size(result.new_bytes)} new",
        )


def clone(
    source: str | None,
    target: str | None,
    *,
    source_opt: str | None,
    target_opt: str | None,
    parents: bool,
    force: bool,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Clone a store path, given as arguments or as ``--source``/``--destination``.

    Raises:
        UsageError: a path is missing, or given both ways.
    """
    from zerofs.services.browse import at_revision
    from zerofs.services.edit import clone as clone_path

    src = source_opt or source
    dst = target_opt or target
    if src is None or dst is None:
        raise UsageError("clone needs a SOURCE and a DESTINATION (positional or --source/--destination)")
    if (source_opt and source) or (target_opt and target):
        raise UsageError("give SOURCE and DESTINATION either as arguments or as --source/--destination, not both")
    found = settings(repo, config)
    parents = parents or bool(found.defaults.get("parents", False))
    source_path, target_path = RevPath.parse(src), _path(dst)
    with open_repository(found) as repository:
        result = clone_path(
            repository,
            source_path.path,
            target_path,
            parents=parents,
            force=force,
            source_commit_id=at_revision(repository, source_path.rev),
            source_rev=source_path.rev,
        )
    _report(result.commit_id, result.message, quiet, as_json)


# ``snapshot`` and the hidden ``snap`` are clone under other names; the spec
# names each command's function after its typer function.


def write(store_path: str, *, parents: bool, repo: str | None, config: str | None, quiet: bool, as_json: bool) -> None:
    """Write standard input to a file in the store."""
    from zerofs.services.edit import write_file

    target = _path(store_path)
    if sys.stdin is None:  # started with fd 0 closed
        raise UsageError(
            f"standard input is closed: write stores what it reads there (e.g. ... | zerofs write {target})"
        )
    with _open(repo, config) as repository:
        result = write_file(repository, target, sys.stdin.buffer, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, quiet, as_json)


def mkdir(store_path: str, *, parents: bool, repo: str | None, config: str | None, quiet: bool, as_json: bool) -> None:
    """Create a directory in the store."""
    from zerofs.services.edit import mkdir as make_dir

    target = _path(store_path)
    with _open(repo, config) as repository:
        result = make_dir(repository, target, parents=parents, uid=os.getuid(), gid=os.getgid())
    _report(result.commit_id, result.message, quiet, as_json)


def rm(
    store_paths: list[str],
    *,
    recursive: bool,
    force: bool,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Remove paths (quoted wildcards expanded against the store) in one commit."""
    from zerofs.services.edit import remove_paths

    targets = [_path(p) for p in store_paths]
    with _open(repo, config) as repository:
        result = remove_paths(repository, targets, recursive=recursive, missing_ok=force)
    if as_json:
        from zerofs.cli import render

        render.print_json(
            {
                "commit": result.commit_id.hex() if result.commit_id else None,
                "message": result.message,
                "removed": [str(p) for p in result.removed],
            }
        )
        return
    _report(result.commit_id, result.message, quiet, as_json)


def mv(
    source: str, target: str, *, force: bool, repo: str | None, config: str | None, quiet: bool, as_json: bool
) -> None:
    """Move or rename a path in the store."""
    from zerofs.services.edit import move_path

    src, dst = _path(source), _path(target)
    with _open(repo, config) as repository:
        result = move_path(repository, src, dst, force=force)
    _report(result.commit_id, result.message, quiet, as_json)


# -- reading ----------------------------------------------------------------------


def ls(
    store_path: str,
    *,
    long: bool,
    show_all: bool,
    recursive: bool,
    repo: str | None,
    config: str | None,
    quiet: bool = False,
    as_json: bool,
) -> None:
    """List a directory (or describe a file) in the store."""
    from zerofs.cli import render
    from zerofs.services.browse import at_revision, list_path

    target = RevPath.parse(store_path)
    with _open(repo, config, readonly=True) as repository:
        commit_id = at_revision(repository, target.rev)
        rows = list_path(
            repository,
            target.path,
            recursive=recursive,
            with_targets=long or as_json,
            commit_id=commit_id,
            rev=target.rev,
        )
        if quiet and not as_json:
            _drain(rows)
            return
        render.render_listing(rows, long=long, show_all=show_all or as_json, recursive=recursive, as_json=as_json)


def cat(
    store_paths: list[str], *, repo: str | None, config: str | None, quiet: bool = False, as_json: bool = False
) -> None:
    """Stream files from the store to standard output (with --json, one document holding them).

    With ``quiet``, every chunk is still read and checked against its hash; nothing is written.
    """
    from zerofs.services.browse import at_revision, read_file

    targets = [RevPath.parse(p) for p in store_paths]
    with _open(repo, config, readonly=True) as repository:
        located = [(t, at_revision(repository, t.rev)) for t in targets]
        if as_json:
            from zerofs.cli import render

            render.print_json(
                [render.content_json(str(t), b"".join(read_file(repository, t.path, c, t.rev))) for t, c in located]
            )
            return
        if quiet:
            for target, commit_id in located:
                _drain(read_file(repository, target.path, commit_id, target.rev))
            return
        out = sys.stdout.buffer
        for target, commit_id in located:
            for data in read_file(repository, target.path, commit_id, target.rev):
                out.write(data)
        out.flush()


def stat(store_path: str, *, repo: str | None, config: str | None, quiet: bool = False, as_json: bool) -> None:
    """Show the metadata and node of a path."""
    from zerofs.cli import render
    from zerofs.services.browse import at_revision, stat_path

    target = RevPath.parse(store_path)
    with _open(repo, config, readonly=True) as repository:
        info = stat_path(repository, target.path, at_revision(repository, target.rev), target.rev)
    if not quiet or as_json:
        render.render_stat(info, as_json=as_json)


def tree(store_path: str, *, repo: str | None, config: str | None, quiet: bool = False, as_json: bool) -> None:
    """Show a directory and everything below it."""
    from zerofs.cli import render
    from zerofs.services.browse import at_revision, list_path

    target = RevPath.parse(store_path)
    with _open(repo, config, readonly=True) as repository:
        commit_id = at_revision(repository, target.rev)
        rows = list_path(
            repository, target.path, recursive=True, with_targets=True, commit_id=commit_id, rev=target.rev
        )
        if quiet and not as_json:
            _drain(rows)
            return
        render.render_tree(rows, str(target), as_json=as_json)


def log(
    store_path: str | None,
    *,
    max_count: int | None,
    repo: str | None,
    config: str | None,
    quiet: bool = False,
    as_json: bool,
) -> None:
    """Show commits, newest first, optionally only those that changed ``store_path``."""
    from zerofs.cli import render
    from zerofs.services.browse import log as iter_commits

    target = _path(store_path) if store_path else None
    with _open(repo, config, readonly=True) as repository:
        commits = iter_commits(repository, limit=max_count, path=target)
        if quiet and not as_json:
            _drain(commits)
            return
        render.render_log(commits, as_json=as_json)


def export(
    store_path: str,
    host_path: Path,
    *,
    force: bool,
    no_xattrs: bool,
    repo: str | None,
    config: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Recreate a store path on the host."""
    from zerofs.cli import render
    from zerofs.cli.progress import ExportBar
    from zerofs.services.browse import at_revision
    from zerofs.services.exporter import export_tree

    source = RevPath.parse(store_path)
    with _open(repo, config, readonly=True) as repository, ExportBar(enabled=not quiet and sys.stderr.isatty()) as bar:
        commit_id = at_revision(repository, source.rev)
        result = export_tree(
            repository,
            source.path,
            host_path,
            force=force,
            on_file=bar.update,
            commit_id=commit_id,
            rev=source.rev,
            on_warning=_warn,
            xattrs=not no_xattrs,
        )
    if as_json:
        render.print_json(
            {
                "files": result.files,
                "dirs": result.dirs,
                "symlinks": result.symlinks,
                "specials": result.specials,
                "hardlinks": result.hardlinks,
                "bytes": result.bytes_written,
                "warnings": list(result.warnings),
            }
        )
    else:
        _done(
            quiet, f"exported {source} -> {host_path}: {result.files} files, {render.human_size(result.bytes_written)}"
        )


_MORE_COMMANDS = (
    "zerofs.cli.commands_history",
    "zerofs.cli.commands_usage",
    "zerofs.cli.commands_gc",
    "zerofs.cli.commands_sync",
    "zerofs.cli.commands_mount",
    "zerofs.cli.commands_help",
)


def __getattr__(name: str) -> object:
    """Find a command body in the modules of later areas (imported only when asked for)."""
    import importlib

    for module_name in _MORE_COMMANDS:
        module = importlib.import_module(module_name)
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
