"""Command bodies for issue #5 (the FUSE mount): same contract as ``commands.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from zerofs.cli.context import open_repository, s3_mount_dir, s3_settings, settings, user_cache_dir
from zerofs.errors import UsageError
from zerofs.repo import Repository, is_s3_path

if TYPE_CHECKING:
    from zerofs.mount.run import MountSource


def mount(
    mountpoint: str,
    *,
    at: str | None,
    read_only: bool,
    commit_interval: int,
    allow_other: bool,
    foreground: bool,
    atime: str,
    repo: str | None,
    config: str | None,
    quiet: bool,
) -> None:
    """Mount the repository at ``mountpoint`` (in the background unless ``foreground``).

    Raises:
        UsageError: ``atime`` is not a policy the mount knows.
    """
    from zerofs.history import resolve_revision
    from zerofs.mount.counting import ENV as REQUEST_COUNTS_ENV
    from zerofs.mount.overlay import ATIME_POLICIES
    from zerofs.mount.run import mount as mount_repository

    if atime not in ATIME_POLICIES:
        raise UsageError(f"unknown --atime policy {atime!r} (choose {', '.join(ATIME_POLICIES)})")
    found = settings(repo, config)
    # Fail here, with the usual message and exit code, if there is no repository or no such
    # revision: the mount process can only report failures as mount errors (exit 7).
    if is_s3_path(found.repo_path):
        # Not here: the object-store client's threads do not survive the fork into the mount process,
        # so only that process talks to the bucket (and reports a bad revision itself, exit 7).
        commit_hex = at
    else:
        with open_repository(found, readonly=True) as repository:
            commit_hex = None if at is None else resolve_revision(repository, at).hex()
    mount_repository(
        _source(found.repo_path),
        Path(mountpoint),
        revision=commit_hex,
        read_only=read_only or at is not None,
        commit_interval=commit_interval,
        allow_other=allow_other,
        foreground=foreground,
        atime=atime,
        request_counts=os.environ.get(REQUEST_COUNTS_ENV) or None,
    )
    if not quiet and not foreground:
        mode = "read-only" if read_only or at is not None else "read-write"
        sys.stderr.write(f"mounted {found.repo_path} at {mountpoint} ({mode}); unmount: zerofs umount {mountpoint}\n")


def umount(mountpoint: str, *, repo: str | None, config: str | None, quiet: bool) -> None:
    """Commit what the mount has pending, unmount it and wait for its process to finish."""
    from zerofs.mount.run import umount as umount_repository

    found = settings(repo, config)
    umount_repository(_source(found.repo_path), Path(mountpoint))
    if not quiet:
        sys.stderr.write(f"unmounted {mountpoint}\n")


def _source(path: str) -> MountSource:
    """What the mount process opens: a local repository, or an S3 one with this host's cache and AWS settings."""
    from zerofs.mount.run import MountSource, local_source

    if not is_s3_path(path):
        return local_source(Path(path))
    aws, cache_dir = s3_settings(path), user_cache_dir()
    return MountSource(
        path,
        Path(s3_mount_dir(path)),
        lambda: Repository.open(path, readonly=False, writer_lease=False, cache_dir=cache_dir, s3_settings=aws),
    )
