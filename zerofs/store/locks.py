"""Advisory locks of a local repository: who has it open, who is writing, who collects garbage.

These are not part of the storage interface (an object-storage backend has
no ``flock``); the ``Repository`` holds them around the store.

- ``open.lock``: every handle holds it shared for as long as it is open.
  Exclusive means nobody else has the repository open (index rebuild,
  index compaction, upgrade).
- ``writers.lock``: every writer holds it shared while a change is in
  flight (an import, a write, a clone, a mount's commit). gc's deletion
  steps hold it exclusively, taken without blocking (see ``services/gc.py``).
- ``gc.lock``: one gc at a time rewrites packs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

OPEN_LOCK: Final = "open.lock"
WRITERS_LOCK: Final = "writers.lock"
GC_LOCK: Final = "gc.lock"


def lock_file(path: str, operation: int) -> int:
    """Open ``path`` and flock it; return the descriptor, or -1 if that is not possible now.

    A blocking shared lock waits only while gc deletes one step's worth of
    garbage. A read-only repository (or file system) gets no lock: -1.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        os.close(fd)
        return -1
    return fd


@contextmanager
def locked(path: str, operation: int) -> Iterator[bool]:
    """Hold ``lock_file(path, operation)`` for the block; yield whether the lock is held."""
    fd = lock_file(path, operation)
    try:
        yield fd >= 0
    finally:
        if fd >= 0:
            os.close(fd)


class RepoLocks:
    """The locks one repository handle holds or takes."""

    def __init__(self, path: str, *, readonly: bool, writer_lease: bool) -> None:
        """Take ``open.lock`` shared, and with ``writer_lease`` (and not ``readonly``) the writer lease too.

        ``writer_lease`` false is for gc (which takes the lease exclusively
        in steps) and a mount (which takes it around each commit).
        """
        self.path = path
        self.readonly = readonly
        self._open = lock_file(os.path.join(path, OPEN_LOCK), fcntl.LOCK_SH)
        self._writers = (
            lock_file(os.path.join(path, WRITERS_LOCK), fcntl.LOCK_SH) if writer_lease and not readonly else -1
        )

    def close(self) -> None:
        """Release every lock this handle holds."""
        for fd in (self._open, self._writers):
            if fd >= 0:
                os.close(fd)
        self._open = self._writers = -1

    @contextmanager
    def writer_lease(self) -> Iterator[None]:
        """Hold a shared lock on ``writers.lock`` for the ``with`` block (a handle without a lifetime lease)."""
        if self._writers >= 0 or self.readonly:
            yield
            return
        with locked(os.path.join(self.path, WRITERS_LOCK), fcntl.LOCK_SH):
            yield

    @contextmanager
    def writers_excluded(self) -> Iterator[bool]:
        """Try to hold ``writers.lock`` exclusively; yield whether it is held. Never blocks."""
        if self._writers >= 0:
            # This handle is a writer itself (a library caller running gc): convert its own
            # shared lock, which an exclusive lock on another descriptor would wait for forever.
            try:
                fcntl.flock(self._writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(self._writers, fcntl.LOCK_SH)
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(self._writers, fcntl.LOCK_SH)
            return
        with locked(os.path.join(self.path, WRITERS_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
            yield held

    def is_open_elsewhere(self) -> bool:
        """True if another handle, in any process, has this repository open."""
        with self.alone() as held:
            return not held

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """Hold ``open.lock`` exclusively for the block if nobody else has the repository open; yield whether held."""
        # flock locks belong to open file descriptions: our own shared lock would
        # block an exclusive one from another descriptor, so drop it meanwhile.
        if self._open >= 0:
            fcntl.flock(self._open, fcntl.LOCK_UN)
        try:
            with locked(os.path.join(self.path, OPEN_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
                yield held
        finally:
            if self._open >= 0:
                fcntl.flock(self._open, fcntl.LOCK_SH)

    @contextmanager
    def collecting(self) -> Iterator[bool]:
        """Hold ``gc.lock`` for the block if no other gc holds it; yield whether held."""
        with locked(os.path.join(self.path, GC_LOCK), fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
            yield held
