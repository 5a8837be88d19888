"""Command bodies for issue #5 (the FUSE mount): same contract as ``commands.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from zerofs.cli.context import open_repository, settings
from zerofs.errors import RepositoryError, UsageError
from zerofs.repo import is_s3_path


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
    _refuse_s3(found.repo_path)
    # Fail here, with the usual message and exit code, if there is no repository or no such
    # revision: the mount process can only report failures as mount errors (exit 7).
    with open_repository(found, readonly=True) as repository:
        commit_hex = None if at is None else resolve_revision(repository, at).hex()
    mount_repository(
        Path(found.repo_path),
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
    _refuse_s3(found.repo_path)
    umount_repository(Path(found.repo_path), Path(mountpoint))
    if not quiet:
        sys.stderr.write(f"unmounted {mountpoint}\n")


def _refuse_s3(path: str) -> None:
    """The mount keeps its spill files and control sockets in a local repository's directory.

    Raises:
        RepositoryError: ``path`` is an S3 repository.
    """
    if is_s3_path(path):
        raise RepositoryError(f"mount is not supported on an S3 repository yet ({path})")
