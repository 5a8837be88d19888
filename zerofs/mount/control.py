"""The control channel: a CLI command has every live mount commit before it runs.

A read-write mount holds what programs wrote through it in memory until it
commits (on fsync, every commit interval, on unmount). A
command that reads or changes the repository must see those writes: a
snapshot taken right after ``cp`` returned has to contain what ``cp`` wrote.
So before it opens the repository, every command asks each live read-write
mount of that repository to commit, and waits for the answers.

The channel. Each read-write mount process listens on a Unix stream socket
``REPO/mounts/PID.sock`` (bound mode 0600 before ``listen``, and every peer
checked with ``SO_PEERCRED``: only the mount's own user and root may ask).
A command connects to every ``*.sock`` there, sends ``commit``, and reads
lines: ``wait`` (sent every second while the commit runs, so a long commit
is told from a wedged mount), then ``ok`` or ``error MESSAGE``. The mount
answers ``ok`` only after the commit that holds every write it had served
when the request arrived is HEAD (or there was nothing to commit): a
``write(2)`` that returned to its program was served before the command
started, so it is in that commit. A socket nobody listens on (a killed
mount) is skipped.

Records. Each mount process keeps ``REPO/mounts/PID``: the start time of
the process (``/proc/PID/stat``, in clock ticks since boot) and the mount
point. A mount killed outright (SIGKILL) leaves its record and socket
behind; a record whose process is gone, or whose pid now belongs to a
process that started at another time (a reused pid), is stale. Every look
at the records (each command, ``mount``, ``umount``) removes stale ones,
so a reused pid is never taken for a mount and never sent a signal.

Bounds. A command that only reads waits at most ``READ_WAIT_SECONDS`` in
all; then it warns and reads the repository as last committed. A command
that changes the repository waits while the mount keeps saying ``wait``,
up to ``WRITE_WAIT_SECONDS``, and fails (exit 7, nothing changed) if a
mount says nothing for ``SILENCE_SECONDS`` or reports a failed commit.

Paths in ``AF_UNIX`` addresses are limited to 107 bytes; both sides reach the
socket through ``/proc/self/fd/N/`` of the mounts directory, so a repository
can live at any depth. This module imports neither trio nor pyfuse3: every
command loads it, including the fast ``cat`` and ``ls``.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Final, NamedTuple

from zerofs.errors import MountError

if TYPE_CHECKING:
    import socket  # imported where used: 4 ms that ``cat`` need not pay when nothing is mounted

MOUNTS_DIR: Final = "mounts"
SOCKET_SUFFIX: Final = ".sock"
REQUEST: Final = b"commit\n"
WAIT: Final = b"wait\n"
OK: Final = b"ok\n"
ERROR: Final = b"error "
HEARTBEAT_SECONDS: Final = 1.0
"""How often a mount that is committing says ``wait``."""
READ_WAIT_SECONDS: Final = 5.0
"""The longest a command that only reads waits for the mounts, in all."""
SILENCE_SECONDS: Final = 10.0
"""A mount that says nothing for this long is wedged: a command that writes gives up."""
WRITE_WAIT_SECONDS: Final = 600.0
"""The longest a command that writes waits for mounts that keep saying ``wait``."""
_CRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid
CRED_SIZE: Final = _CRED.size


class Mount(NamedTuple):
    """A mount's control socket, by the pid of its process and its mount point."""

    pid: int
    mountpoint: str


def socket_name(pid: int) -> str:
    """The name of the control socket of mount process ``pid`` in the mounts directory."""
    return f"{pid}{SOCKET_SUFFIX}"


def live_mounts(repo_path: str) -> list[Mount]:
    """The live mounts of ``repo_path`` that have a control socket (read-write mounts); stale records go."""
    try:
        names = set(os.listdir(os.path.join(repo_path, MOUNTS_DIR)))
    except OSError:
        return []
    return [
        mount
        for mount in mount_records(repo_path, names)
        if socket_name(mount.pid) in names  # none: a read-only mount, or one still starting
    ]


def mount_records(repo_path: str, names: set[str] | None = None) -> list[Mount]:
    """The mounts of ``repo_path`` whose process is alive; remove the records (and sockets) of the others.

    ``names``: the mounts directory's listing, when the caller has it.
    """
    directory = os.path.join(repo_path, MOUNTS_DIR)
    if names is None:
        try:
            names = set(os.listdir(directory))
        except OSError:
            return []
    _remove_orphan_sockets(repo_path, names)
    mounts = []
    for name in sorted(n for n in names if n.isdigit()):
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="surrogateescape") as record:
                start_ticks, mountpoint = parse_record(record.read())
        except OSError:
            continue  # its process removed it meanwhile
        pid = int(name)
        if is_mount_process(pid, start_ticks):
            mounts.append(Mount(pid, mountpoint))
        else:
            remove_stale(repo_path, pid)
    return mounts


UNKNOWN_START: Final = 0
"""The start time of a process whose ``/proc`` entry cannot be read (hidden from this user)."""


def _remove_orphan_sockets(repo_path: str, names: set[str]) -> None:
    """Remove the sockets that have no record and no process (left by a mount whose record went first)."""
    for name in names:
        pid = name.removesuffix(SOCKET_SUFFIX)
        if (
            name.endswith(SOCKET_SUFFIX)
            and pid.isdigit()
            and pid not in names
            and process_start_ticks(int(pid)) is None
        ):
            remove(repo_path, int(pid))


def record_text(pid: int, mountpoint: str) -> str:
    """The text of the record of mount process ``pid``: its start time, then its mount point."""
    return f"{process_start_ticks(pid) or UNKNOWN_START}\n{mountpoint}\n"


def parse_record(text: str) -> tuple[int, str]:
    """Return (the process's start time, ``UNKNOWN_START`` in a record of an older zerofs; the mount point)."""
    first, newline, rest = text.partition("\n")
    if newline and first.isascii() and first.isdigit():  # a mount point is absolute: never all digits
        return int(first), rest.removesuffix("\n")
    return UNKNOWN_START, text.strip()


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; None if there is no such process.

    ``UNKNOWN_START`` for a live process whose ``/proc`` entry this user may not read.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:  # bytes: no codec to load (a command may have dropped root)
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return _start_unknown_if_alive(pid)
    if fields[0] == b"Z":  # exited, not yet reaped: no mount is served there
        return None
    return int(fields[19])


def _start_unknown_if_alive(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process: alive all the same
        pass
    return UNKNOWN_START


def is_mount_process(pid: int, start_ticks: int) -> bool:
    """True if process ``pid`` is alive and is the one that wrote a record saying ``start_ticks``."""
    started = process_start_ticks(pid)
    if started is None:
        return False
    return UNKNOWN_START in (started, start_ticks) or started == start_ticks


def remove_stale(repo_path: str, pid: int) -> None:
    """Remove what mount process ``pid``, which is gone, left: its record, and its socket if the pid is free.

    A reused pid may be a new mount's that has bound its socket but not yet
    written its record: its socket stays (``listen`` replaces a dead one).
    """
    directory = os.path.join(repo_path, MOUNTS_DIR)
    with suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, str(pid)))
    if process_start_ticks(pid) is None:
        remove(repo_path, pid)


@contextmanager
def _mounts_dir(repo_path: str) -> Iterator[str]:
    """Yield a short path to the mounts directory (``/proc/self/fd/N``), valid inside the block."""
    fd = os.open(os.path.join(repo_path, MOUNTS_DIR), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def commit_mounts(repo_path: str, *, writing: bool, warn: Callable[[str], None]) -> None:
    """Have every live read-write mount of ``repo_path`` commit what it holds, and wait for it.

    ``writing``: the command changes the repository, so a mount that does not
    commit is an error; a command that only reads is told through ``warn``
    and goes on with the repository as last committed.

    Raises:
        MountError: ``writing`` and a mount failed to commit, or went silent.
    """
    mounts = live_mounts(repo_path)
    if not mounts:
        return
    with _mounts_dir(repo_path) as directory:
        asked = [(m, _ask(directory, m)) for m in mounts]
    total = WRITE_WAIT_SECONDS if writing else READ_WAIT_SECONDS
    limit = time.monotonic() + total
    for mount, conn in asked:
        if conn is None:
            continue
        if isinstance(conn, str):
            problem: str | None = conn
        else:
            with conn:
                problem = _await_answer(conn, limit, silence=SILENCE_SECONDS if writing else total)
        if problem is None:
            continue
        where = f"the mount at {mount.mountpoint} (process {mount.pid})"
        if writing:
            raise MountError(f"{where} {problem}: nothing was changed")
        warn(f"{where} {problem}: showing the repository as last committed")


def _ask(directory: str, mount: Mount) -> socket.socket | str | None:
    """Connect to ``mount`` and send the request.

    Returns the connection; None when nobody listens there (the socket of a
    mount that exited, or gone meanwhile); or what went wrong with a live one
    (a socket of another user's mount: it cannot be asked, so its latest
    writes may be missing, which the caller must say).
    """
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(SILENCE_SECONDS)
        conn.connect(f"{directory}/{socket_name(mount.pid)}")
        conn.sendall(REQUEST)
    except (ConnectionRefusedError, FileNotFoundError):
        conn.close()
        return None
    except OSError as exc:
        conn.close()
        return f"could not be asked to commit ({exc.strerror or exc})"
    return conn


def _await_answer(conn: socket.socket, limit: float, *, silence: float) -> str | None:
    """Read the mount's lines until its answer; return what went wrong, or None."""
    pending = b""
    while True:
        wait = min(silence, limit - time.monotonic())
        if wait <= 0:
            return "did not finish its commit in time"
        conn.settimeout(wait)
        try:
            data = conn.recv(4096)
        except TimeoutError:
            return f"did not answer within {wait:.0f} s"
        except OSError as exc:
            return f"broke off the connection ({exc.strerror})"
        if not data:
            return "closed the connection without committing (did it exit?)"
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line + b"\n" == OK:
                return None
            if line.startswith(ERROR):
                return f"could not commit: {line[len(ERROR) :].decode('utf-8', 'replace')}"


# -- the mount's side ---------------------------------------------------------


def listen(repo_path: str, pid: int) -> socket.socket:
    """Bind and listen on the control socket of mount process ``pid``; private to this user."""
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _mounts_dir(repo_path) as directory:
        path = f"{directory}/{socket_name(pid)}"
        with suppress(FileNotFoundError):
            os.unlink(path)  # a dead process's socket, under a reused pid
        listener.bind(path)
        os.chmod(path, 0o600)  # before listen: until then nobody can connect
    listener.listen(64)
    return listener


def remove(repo_path: str, pid: int) -> None:
    """Remove the control socket of mount process ``pid``."""
    with suppress(FileNotFoundError):
        os.unlink(os.path.join(repo_path, MOUNTS_DIR, socket_name(pid)))


def peer_allowed(credentials: bytes) -> bool:
    """True if ``credentials`` (``SO_PEERCRED``, ``CRED_SIZE`` bytes) name this process's user or root."""
    _, uid, _ = _CRED.unpack(credentials)
    return uid in (0, os.getuid())
