"""The repository itself: ``init`` (create one) and ``upgrade`` (convert an older format in place).

Only ``init`` creates a repository; every other command opens one
through ``context.with_repository``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from zerofs.cli.context import Shared, key_cache, s3_settings, user_cache_dir, warn, with_repository
from zerofs.cli.options import command
from zerofs.errors import UsageError
from zerofs.repo import Repository

if TYPE_CHECKING:
    import typer


@command()
def init(
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
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt",
            help="Encrypt the repository with a password, asked twice on a terminal (or from "
            "ZEROFS_PASSWORD_FILE, ZEROFS_PASSWORD_COMMAND or ZEROFS_PASSWORD). File contents, names, "
            "metadata, commits and refs are all encrypted, and ids reveal nothing about content; "
            "every command then needs the password. A lost password loses the data: nobody can recover it.",
        ),
    ] = False,
    *,
    shared: Shared,
) -> None:
    """Create a repository (default: $XDG_DATA_HOME/zerofs), in a directory or an S3 bucket.

    Plain by default; --encrypt for one on disks that others can read.
    """
    # UsageError: LOCATION and --repo disagree, or (from Repository.init) a gc grace period for a local repository.
    from zerofs.history import author

    if location is not None and shared.repo is not None and location != shared.repo:
        raise UsageError(f"init: LOCATION {location!r} and --repo {shared.repo!r} disagree; give one")
    found = shared._replace(repo=location or shared.repo).settings()
    level = cast(int, found.defaults.get("compression_level", 3))  # settings() checked its type and range
    s3 = s3_settings(found.repo_path)
    password = _new_password(found.repo_path) if encrypt else None
    created = Repository.init(
        found.repo_path,
        author=author(),
        compression_level=level,
        s3_settings=s3,
        cache_dir=user_cache_dir() if s3 is not None else None,
        gc_grace_s=gc_grace,
        password=password,
        key_cache=key_cache(password),
    )
    if shared.as_json:
        from zerofs.cli import render

        render.print_json(
            {
                "repository": str(found.repo_path),
                "format_version": created.config.format_version,
                "chunking": created.config.chunk_params.to_dict(),
                "compression_level": created.config.compression_level,
                "gc_grace_s": created.config.gc_grace_s,
                "encrypted": created.is_encrypted,
            }
        )
    else:
        what = "encrypted zerofs repository" if encrypt else "zerofs repository"
        shared.done(f"initialised {what} at {found.repo_path}")
    created.close()


def _new_password(repo_path: str) -> bytes:
    """The password of a repository about to be created: typed twice on a terminal, or from a password source.

    Raises:
        UsageError: no source and no terminal, an unreadable source, or two typed passwords that differ.
    """
    import os
    import sys

    from zerofs.cli.password import drop_password_variable, read_password

    password = read_password(
        purpose=f"new repository {repo_path}", confirm=True, environ=os.environ, stdin_tty=sys.stdin.isatty()
    )
    drop_password_variable(os.environ)
    return password


@command()
def upgrade(*, shared: Shared) -> None:
    """Convert a repository of an older format to this version's, in place.

    Needs the repository to itself, and room for a second copy of its data
    while it runs. A kill at any moment leaves the old repository or the new
    one, never neither; run it again to finish. Every other command refuses
    an old repository and names this one.
    """
    from zerofs.repo import UpgradeResult, is_s3_path

    found = shared.settings()
    if is_s3_path(found.repo_path):  # S3 repositories were never of an older format: open it to check it is there
        with_repository(found, readonly=True).close()
        result = UpgradeResult(0, 0, 0, is_current=True)
    else:
        result = Repository.upgrade(found.repo_path)
    if shared.as_json:
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
        shared.done(f"the repository at {found.repo_path} is already of the current format{leftovers}")
        return
    if result.n_damaged:
        warn(
            f"{result.n_damaged} objects failed their check in the old repository and were left out; "
            "zerofs fsck names the paths they affect"
        )
    shared.done(f"converted the repository at {found.repo_path}: {result.n_objects} objects")
