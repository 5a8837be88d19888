"""The ZerofsError tree: every error a user can see, each with its exit code.

This module owns the exit codes. It must not import anything from zerofs and
must not format or print: the CLI's single handler does that.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final, NamedTuple, TypeAlias

EXIT_BUG: Final = 1
EXIT_PARTIAL: Final = 10
"""Completed, but some inputs were skipped or could not be read (3, restic's code for this, is NotFoundError's)."""
EXIT_INTERRUPTED: Final = 130


class Hint(enum.Enum):
    """What a user can do about an error, as a structured hint the CLI words (the core names no option)."""

    CHECK_DAMAGE = "check-damage"
    """Find which store paths a damaged object affects (a read-everything fsck)."""
    REBUILD_INDEX = "rebuild-index"
    """Rebuild the repository's index from its pack files."""
    UPGRADE = "upgrade"
    """Convert the repository to the current format."""
    INIT = "init"
    """There is no repository where the options say: create one."""
    NEW_REPOSITORY_DIR = "new-repository-dir"
    """Create the repository in a new or empty directory instead."""
    REPLACE = "replace"
    """Ask again, allowing what is in the way to be replaced."""
    WRITE_INTO = "write-into"
    """Ask again, allowing an export into a directory that is not empty."""
    CREATE_PARENTS = "create-parents"
    """Ask again, creating the missing parent directories."""
    ACCEPT_EXISTING = "accept-existing"
    """Ask again, accepting a directory that already exists."""
    RECURSIVE = "recursive"
    """Ask again, removing the directory together with its contents."""
    SKIP_ERRORS = "skip-errors"
    """Ask again, leaving out what cannot be read and importing the rest."""
    NO_XATTRS = "no-xattrs"
    """Ask again, without extended attributes."""
    KEEP_RULE = "keep-rule"
    """Name at least one rule of which commits to keep."""
    BREAK_LOCK = "break-lock"
    """If the gc that holds the lock is gone, ask again, removing its lock first."""
    COMPACT_AGAIN = "compact-again"
    """Close what holds the repository open, then compact again."""
    WITHOUT_COMPACT = "without-compact"
    """Ask again without compacting: it does not apply here."""
    WITHOUT_BREAK_LOCK = "without-break-lock"
    """Ask again without breaking a lock: it does not apply here."""
    PASSWORD = "password"
    """The repository is encrypted: give its password (issue #15; the CLI words how)."""


class UnmountFrom(NamedTuple):
    """A hint with values: unmount ``mountpoint`` through the repository it was mounted from.

    A NamedTuple, not a dataclass: this module is on every command's start-up
    path, and importing dataclasses costs about 8 ms there.
    """

    repository: str
    mountpoint: str


AnyHint: TypeAlias = Hint | UnmountFrom
"""Every kind of hint an error may carry."""


class ZerofsError(Exception):
    """Root of every error zerofs raises on purpose."""

    exit_code: ClassVar[int] = 1
    summary: ClassVar[str] = "internal error"

    def __init__(self, message: str, *, hint: AnyHint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ZerofsError):
    """Bad arguments or a malformed store path."""

    exit_code = 2
    summary = "bad arguments, store path or name"


class InvalidNameError(UsageError):
    """An entry name that cannot be stored (empty, '.', '..', '/', NUL, >255 bytes)."""


class NotFoundError(ZerofsError):
    """A path, revision or id the user named does not exist."""

    exit_code = 3
    summary = "a path, revision or object the user named does not exist"


class ConflictError(ZerofsError):
    """The target exists, is not empty, is of the wrong kind, or a ref moved."""

    exit_code = 4
    summary = "exists, not empty, not a directory, or changed concurrently"


class RepositoryError(ZerofsError):
    """No repository there, unsupported format version, or unusable settings."""

    exit_code = 5
    summary = "no repository, unsupported format, or repository unusable"


class DiskFullError(RepositoryError):
    """The file system holding the repository has no room left."""


class ObjectStoreError(RepositoryError):
    """Object storage (S3) refused or failed a request in a way retrying now will not fix."""


class ObjectStoreUnreachableError(ObjectStoreError):
    """The object storage endpoint could not be reached, timed out, or kept failing (5xx) through every retry."""

    exit_code = 9
    summary = "the object storage (S3) could not be reached, or kept failing through every retry"


class BucketNotFoundError(ObjectStoreError):
    """The bucket a repository URL names does not exist at the endpoint."""


class ObjectStoreAccessError(ObjectStoreError):
    """The object storage refused the credentials (unknown key, bad signature) or denied the request."""


class ConditionalWritesUnsupportedError(ObjectStoreError):
    """The object storage ignores or rejects If-None-Match / If-Match writes, which zerofs needs to be safe."""


class CorruptionError(ZerofsError):
    """A stored object is missing, undecodable, or does not hash to its id."""

    exit_code = 6
    summary = "a stored object is missing, damaged or does not match its hash"


class MissingObjectError(CorruptionError):
    """A referenced object is not in the repository."""


class DamagedObjectError(CorruptionError):
    """A stored object is there but unreadable: its bytes do not decode to what its id says."""


class HostIOError(ZerofsError):
    """Reading or writing a host file failed (import, export), or standard output could not be written."""

    exit_code = 8
    summary = "a host file or standard output could not be read or written"


class IncompleteError(ZerofsError):
    """The command did its work, but left out some of its inputs (each named in a warning before this)."""

    exit_code = EXIT_PARTIAL
    summary = "completed, but some inputs were skipped or could not be read"


class WrongPasswordError(ZerofsError):
    """No key slot of an encrypted repository opens with the password given (or the slot it fits was changed)."""

    exit_code = 12
    summary = "wrong password: no key slot of the repository opens with it"


class MountError(ZerofsError):
    """Mounting or unmounting failed."""

    exit_code = 7
    summary = "mount or unmount failed, or a live mount did not commit in time"


def exit_code_table() -> list[tuple[int, str]]:
    """Return (code, meaning) rows for the help, the man pages and the README."""
    rows = {
        0: "success",
        EXIT_BUG: "a bug in zerofs",
    }
    for cls in (
        UsageError,
        NotFoundError,
        ConflictError,
        RepositoryError,
        CorruptionError,
        MountError,
        HostIOError,
        ObjectStoreUnreachableError,
        IncompleteError,
        WrongPasswordError,
    ):
        rows[cls.exit_code] = cls.summary
    rows[EXIT_INTERRUPTED] = "interrupted (Ctrl-C)"
    return sorted(rows.items())
