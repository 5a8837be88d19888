"""The FUSE mount: ``mount`` (the store as a read-write directory) and ``umount``.

The mount runs in its own process (``zerofs.mount.run``); this module
checks what it can report with the usual exit codes first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

from zerofs.cli.completion import complete_revision
from zerofs.cli.context import (
    Settings,
    Shared,
    key_cache,
    password_if_encrypted,
    s3_mount_dir,
    s3_settings,
    user_cache_dir,
    warn,
    with_password,
    with_repository,
)
from zerofs.cli.options import command
from zerofs.errors import UsageError
from zerofs.repo import Repository, is_s3_path

if TYPE_CHECKING:
    import typer

    from zerofs.mount.run import MountSource

MOUNTPOINT_HELP = "An existing directory on the host."


@command(has_json=False)
def mount(
    mountpoint: Annotated[str, typer.Argument(metavar="MOUNTPOINT", help=MOUNTPOINT_HELP, show_default=False)],
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
    *,
    shared: Shared,
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
    from zerofs.history import resolve_revision
    from zerofs.mount.counting import ENV as REQUEST_COUNTS_ENV
    from zerofs.mount.overlay import ATIME_POLICIES
    from zerofs.mount.run import mount as mount_repository

    if atime not in ATIME_POLICIES:
        raise UsageError(f"unknown --atime policy {atime!r} (choose {', '.join(ATIME_POLICIES)})")
    found = shared.settings()
    # Fail here, with the usual message and exit code, if there is no repository or no such
    # revision: the mount process can only report failures as mount errors (exit 7).
    if is_s3_path(found.repo_path):
        # Not here: the object-store client's threads do not survive the fork into the mount process,
        # so only that process talks to the bucket (and reports a bad revision itself, exit 7).
        commit_hex = at
    else:
        with with_repository(found, readonly=True) as repository:
            commit_hex = None if at is None else resolve_revision(repository, at).hex()
    mount_repository(
        _source(found),
        Path(mountpoint),
        revision=commit_hex,
        read_only=read_only or at is not None,
        commit_interval=commit_interval,
        allow_other=allow_other,
        foreground=foreground,
        atime=atime,
        request_counts=os.environ.get(REQUEST_COUNTS_ENV) or None,
    )
    if not shared.quiet and not foreground:
        mode = "read-only" if read_only or at is not None else "read-write"
        sys.stderr.write(f"mounted {found.repo_path} at {mountpoint} ({mode}); unmount: zerofs umount {mountpoint}\n")


@command(has_json=False)
def umount(
    mountpoint: Annotated[str, typer.Argument(metavar="MOUNTPOINT", help=MOUNTPOINT_HELP, show_default=False)],
    *,
    shared: Shared,
) -> None:
    """Commit what a mount has pending, unmount it, and wait until its process has finished.

    A mount whose process was killed is detached. Example: zerofs umount ~/z
    """
    from zerofs.mount.run import umount as umount_repository

    found = shared.settings()
    if umount_repository(_source(found, opens=False), Path(mountpoint)):
        lost = "its mount process was gone, and what it had not committed is lost"
        warn(f"detached the dead mount at {mountpoint}: {lost}")
    else:
        shared.done(f"unmounted {mountpoint}")


def _source(found: Settings, *, opens: bool = True) -> MountSource:
    """What the mount process opens: a local repository, or an S3 one with this host's cache and AWS settings.

    An encrypted repository's password is read here, before the mount process
    is forked: that process inherits it in memory (the opener's closure), never
    in its environment or arguments, and asks nobody. ``opens`` false
    (``umount``, which only talks to the mount process): no password is read.
    """
    from zerofs.mount.run import MountSource, local_source

    path = found.repo_path
    if not is_s3_path(path):
        password = password_if_encrypted(found) if opens else None
        return local_source(Path(path), password, key_cache(password))
    aws, cache_dir = s3_settings(path), user_cache_dir()
    return MountSource(
        path,
        Path(s3_mount_dir(path)),
        lambda: with_password(
            found,
            lambda password: Repository.open(
                path,
                readonly=False,
                writer_lease=False,
                cache_dir=cache_dir,
                s3_settings=aws,
                password=password,
                key_cache=key_cache(password),
            ),
        ),
    )
