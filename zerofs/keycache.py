"""The host-local key cache: an encrypted repository's unwrapped master key, kept between processes (issue #15).

Opening an encrypted repository runs argon2id over the password (about
0.15 s at the default cost, ``crypto/slots.py``), which alone would make a
``zerofs cat`` four times slower than on a plain repository. A process that
opened a key slot leaves a *key cache entry* here; the next process that
finds one skips the KDF.

An entry (``crypto.slots.seal_key_cache``) is the master key sealed under
a key derived from the password, bound to the key slot it came from. It is
of no use without the password, and it stops opening once its slot is
removed or replaced (``key remove``, ``key passwd``): the slots are read
from the repository each time, the cache only saves the KDF.

**Where.** One file per repository, named by the repository's id, in a
directory ``zerofs-keys`` of the user's runtime directory
(``$XDG_RUNTIME_DIR``, else ``/run/user/UID``): memory-backed, private to
its user, emptied at logout. The runtime directory and ours must be
directories owned by this user and closed to everyone else (mode 0700), and
an entry a regular file of this user's with mode 0600, checked at each use;
otherwise nothing is read or written and every process runs the KDF.

**How long.** An entry unused for the cache's lifetime (15 minutes unless the
caller says otherwise) is removed instead of used; each use extends it, as
sudo extends its timestamp.

**What it gives away.** The entry's key is derived from the password with
HKDF, not argon2id: whoever can read the file (this user, root) can test
guesses of the password against it far faster than against a key slot. Such
a reader can usually read the password file or the running process too, but
not a password that was typed and is gone. ``ZEROFS_KEY_CACHE=off`` (the
CLI's) turns the cache off for those who weigh it otherwise.

A cache never fails a command: every error here means "no entry" and the
caller runs the KDF. This module knows files; ``crypto.slots`` the format.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable
from typing import Final

from zerofs.crypto.slots import CACHE_BYTES

CACHE_DIRECTORY: Final = "zerofs-keys"
DEFAULT_LIFETIME_S: Final = 15 * 60.0
_PRIVATE_BITS: Final = 0o077
_NAME_CHARS: Final = frozenset("0123456789abcdef")


class KeyCache:
    """The key cache entries of this user, in a directory already checked private (build it with ``open``)."""

    __slots__ = ("directory", "lifetime_s")

    def __init__(self, directory: str, lifetime_s: float) -> None:
        self.directory = directory
        self.lifetime_s = lifetime_s

    @classmethod
    def open(cls, runtime_dir: str, lifetime_s: float = DEFAULT_LIFETIME_S) -> KeyCache | None:
        """The cache in ``runtime_dir/zerofs-keys`` (made 0700 if missing), or None if either is not private."""
        if not _is_private_directory(runtime_dir):
            return None
        directory = os.path.join(runtime_dir, CACHE_DIRECTORY)
        with contextlib.suppress(FileExistsError, OSError):
            os.mkdir(directory, 0o700)
        return cls(directory, lifetime_s) if _is_private_directory(directory) else None

    def load(self, repo_id: str) -> bytes | None:
        """The entry of repository ``repo_id``, or None: none, not private, expired (then removed) or unreadable."""
        path = self._path(repo_id)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            found = os.fstat(fd)
            if not _is_private(found, stat.S_ISREG):
                return None
            if time.time() - found.st_mtime > self.lifetime_s:
                self.forget(repo_id)
                return None
            entry = os.read(fd, CACHE_BYTES + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.utime(path)  # used: it lives another lifetime
        return entry

    def store(self, repo_id: str, entry: bytes) -> None:
        """Keep ``entry`` for repository ``repo_id`` (mode 0600, replacing any older one); on failure, nothing."""
        path = self._path(repo_id)
        if path is None:
            return
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, entry)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    def forget(self, repo_id: str) -> bool:
        """Remove repository ``repo_id``'s entry; True if there was one."""
        path = self._path(repo_id)
        if path is None:
            return False
        try:
            os.unlink(path)
        except OSError:
            return False
        return True

    def _path(self, repo_id: str) -> str | None:
        """The entry's file; None for an id that is not a file name we write (config ids are 32 hex digits)."""
        if not repo_id or len(repo_id) > 64 or not set(repo_id) <= _NAME_CHARS:
            return None
        return os.path.join(self.directory, repo_id)


def _is_private_directory(path: str) -> bool:
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return _is_private(found, stat.S_ISDIR)


def _is_private(found: os.stat_result, is_type: Callable[[int], bool]) -> bool:
    """``found`` is of the wanted type (``stat.S_ISDIR``/``S_ISREG``), this user's, and closed to every other."""
    return bool(is_type(found.st_mode)) and found.st_uid == os.geteuid() and not found.st_mode & _PRIVATE_BITS
