"""Spill files: where a mount keeps what was written to a file until a commit stores it.

A spill file is an unlinked host file (``O_TMPFILE``, so a crash leaves
nothing behind) at the same offsets as the file written through the mount.
Writes, reads and truncations run on the calling thread: the event loop, or
a commit's worker thread while no request changes anything. Only the close is
handed to a thread of its own (``SpillCloser``): the last close of a large
unlinked file gives its pages back to the kernel, 0.05-0.15 s per GiB
measured, and a commit closes the spill files it stored before the fsync that
asked for it returns.

Queueing large writes for a writer thread, so that a 1 MiB write is answered
before its ``pwrite``, was built and measured for issue #12, and left out: on
the 2 shared cores we measure on, it moved the event loop's CPU per GiB
written from 0.41-0.70 s to 0.25 s (the do-nothing pyfuse3 file system: 0.21
s), yet the write took longer whenever other processes kept the second core
busy (median of 21 runs each 0.93 s against 0.86 s, and 1.4-2.7 s against
0.8-1.8 s under heavier load): the thread hand-offs and the GIL cost more
than the parallel ``pwrite`` saved.

This module knows nothing of chunks or the repository.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading


class SpillCloser:
    """A thread that closes spill files' descriptors, so nobody waits while the kernel frees their pages."""

    def __init__(self) -> None:
        """Start nothing yet: the thread starts with the first close."""
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def close_later(self, fd: int) -> None:
        """Close ``fd`` on the thread (it is no longer used: nothing can write into it meanwhile)."""
        with self._lock:
            if self._thread is None:
                # A daemon: a descriptor still open at exit goes with the process, and its file was unlinked.
                self._thread = threading.Thread(target=self._run, name="zerofs-spill-close", daemon=True)
                self._thread.start()
        self._queue.put(fd)

    def _run(self) -> None:
        while True:
            fd = self._queue.get()
            with contextlib.suppress(OSError):  # nothing is lost: the file was unlinked from the start
                os.close(fd)


_shared: SpillCloser | None = None
_shared_lock = threading.Lock()


def shared_closer() -> SpillCloser:
    """The process's spill closer (one thread per mount process, started on first use)."""
    global _shared  # one closer thread per process
    with _shared_lock:
        if _shared is None:
            _shared = SpillCloser()
        return _shared


class SpillFile:
    """One unlinked spill file."""

    def __init__(self, directory: str, closer: SpillCloser | None = None) -> None:
        """Create the file in ``directory``; ``closer``: who closes it (the process's shared one by default)."""
        self.fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        self._closer = closer or shared_closer()

    def write(self, offset: int, data: bytes | bytearray) -> int:
        """Write ``data`` at ``offset``; return how much was written (less only when the disk fills)."""
        return os.pwrite(self.fd, data, offset)

    def read(self, offset: int, size: int) -> bytes:
        """Return ``size`` bytes at ``offset``; never written bytes read as zeros."""
        data = os.pread(self.fd, size, offset)
        if len(data) < size:  # past the file's end: never written, zeros
            data += bytes(size - len(data))
        return data

    def readinto(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the bytes at ``offset`` (never written bytes read as zeros), with no copy between."""
        count = os.preadv(self.fd, [buffer], offset)
        if count < len(buffer):  # past the file's end: never written, zeros
            buffer[count:] = bytes(len(buffer) - count)

    def truncate(self, size: int) -> None:
        """Cut or extend the file to ``size`` bytes."""
        os.ftruncate(self.fd, size)

    def close(self) -> None:
        """Hand the descriptor to the closer (a second close does nothing)."""
        if self.fd >= 0:
            self._closer.close_later(self.fd)
            self.fd = -1
