"""Mounting and unmounting: the mount process's life from start to last commit.

``zerofs mount`` forks a child that detaches (setsid, stdio to the log file
``REPO/mounts/mount.log``), mounts, and reports "mounted" or the error back
through a pipe, so the command returns only once the mount is usable (or
has failed, with exit code 7). The mount process records itself in
``REPO/mounts/PID``, a file holding its start time and the mount point
(``control.mount_records``); ``zerofs umount`` finds it there and sends
SIGTERM. On SIGTERM or SIGINT, and when unmounted from
outside (``fusermount3 -u``), the process stops serving, commits what is
pending, unmounts and exits. A mount process killed outright leaves a dead
mount point and a stale record; ``zerofs umount`` detaches it (lazily),
``mount`` there names it, and the repository holds everything up to the
last commit, like after any crash.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

from zerofs.errors import MountError, NotFoundError, UnmountFrom, ZerofsError
from zerofs.history import resolve_revision
from zerofs.mount import control, counting
from zerofs.repo import Repository

if TYPE_CHECKING:
    from zerofs.keycache import KeyCache

MOUNTS_DIR: Final = control.MOUNTS_DIR
LOG_NAME: Final = "mount.log"
UMOUNT_WAIT_SECONDS: Final = 600.0
READ_AHEAD_KB: Final = 1024
"""The kernel's read-ahead for the mount: sequential reads come in 1 MiB requests."""

log = logging.getLogger("zerofs.mount")


class MountSource(NamedTuple):
    """The repository a mount serves: its name, where this host keeps its mounts, how to open it."""

    name: str
    """The mount's source field: a local repository's real path, or an S3 repository's URL."""
    state_dir: Path
    """Holds ``mounts/`` (records, control sockets, spill files, the log): a local repository's own
    directory, or a directory of this host's cache for an S3 repository."""
    open: Callable[[], Repository]
    """Open the repository for the mount process (read-write, without a writer lease)."""


def local_source(repo_path: Path, password: bytes | None = None, key_cache: KeyCache | None = None) -> MountSource:
    """The source of a local repository's mount (``password``: an encrypted one's, kept in memory only)."""
    return MountSource(
        os.path.realpath(repo_path),
        repo_path,
        lambda: Repository.open(repo_path, readonly=False, writer_lease=False, password=password, key_cache=key_cache),
    )


def mount(
    source: MountSource,
    mountpoint: Path,
    *,
    revision: str | None,
    read_only: bool,
    commit_interval: float,
    allow_other: bool,
    foreground: bool,
    atime: str = "relatime",
    request_counts: str | None = None,
) -> None:
    """Mount the repository at ``mountpoint``; in the background unless ``foreground``.

    ``atime`` is when a read sets an access time (``overlay.ATIME_POLICIES``).
    ``request_counts``: count the FUSE requests served and write them to this
    file at exit (``zerofs.mount.counting``).

    Raises:
        MountError: the mount point is unusable or the kernel refused the mount.
    """
    target = _check_mountpoint(source, mountpoint)
    serve = functools.partial(
        _serve, source, target, revision, read_only, commit_interval, allow_other, atime, counts_path=request_counts
    )
    if foreground:
        serve(ready_fd=-1)
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the mount process
        os.close(read_end)
        code = 0
        try:
            os.setsid()
            _detach_stdio(source.state_dir)
            serve(ready_fd=write_end)
        except ZerofsError as exc:
            _report(write_end, f"error: {exc}")
            code = exc.exit_code
        except BaseException as exc:  # the parent must hear of any failure
            log.exception("mount process failed")
            _report(write_end, f"error: {exc}")
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode("utf-8", "replace").strip()
    if message != "mounted":
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise MountError(message.removeprefix("error: ") or "the mount process exited before mounting")


def _check_mountpoint(source: MountSource, mountpoint: Path) -> Path:
    target = Path(os.path.realpath(mountpoint))
    kind = mounted_at(target)
    if kind == "fuse.zerofs":
        _refuse_zerofs_mount(source, mountpoint, target)
    if not target.exists():
        raise MountError(f"mount point {mountpoint} does not exist: create it first (mkdir -p {mountpoint})")
    if not target.is_dir():
        raise MountError(f"mount point {mountpoint} is not a directory")
    if kind is not None:  # zerofs umount refuses other file systems: do not suggest it
        raise MountError(f"{mountpoint} is already a mount point (of a {kind} file system): mount on another directory")
    _refuse_overlap(source, mountpoint, target)
    return target


def _refuse_overlap(source: MountSource, mountpoint: Path, target: Path) -> None:
    """Refuse a mount point that holds the mount's own files (``mount ~`` of a repository in ``~/r``), or is among them.

    The mount process reads packs and writes spill files and its log under
    ``source.state_dir``; with the mount over them, every such access would
    be a request to the mount process itself, which hung it for good in an
    uninterruptible sleep (found by the hostile-input probe, #14).
    """
    state = Path(os.path.realpath(source.state_dir))
    if state == target:
        raise MountError(f"mount point {mountpoint} is the repository's directory: mount outside it")
    if target in state.parents:
        raise MountError(f"mount point {mountpoint} holds the repository's files ({state}): mount outside it")
    if state in target.parents:
        raise MountError(f"mount point {mountpoint} is inside the repository's files ({state}): mount outside it")


def _refuse_zerofs_mount(source: MountSource, mountpoint: Path, target: Path) -> None:
    """Refuse to mount over a zerofs mount, saying whether its process is gone (a killed mount)."""
    mounted_from = _mount_field(target, -2)
    if mounted_from == source.name and mount_process(source.state_dir, target) is None:
        raise MountError(
            f"{mountpoint} is still the mount point of a zerofs mount whose process is gone (killed?)",
            hint=UnmountFrom(source.name, str(mountpoint)),
        )
    raise MountError(f"{mountpoint} is already a mount point: unmount it first (zerofs umount {mountpoint})")


def _detach_stdio(state_dir: Path) -> None:
    mounts = state_dir / MOUNTS_DIR
    try:
        mounts.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(mounts / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:  # stderr is still the terminal here: a traceback would reach the user
        raise MountError(
            f"cannot write the mount log in {mounts}: {exc.strerror} (a mount needs a writable repository)"
        ) from exc
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)


def _report(fd: int, message: str) -> None:
    if fd >= 0:
        with suppress(OSError):
            os.write(fd, message.encode())
            os.close(fd)


def _serve(
    source: MountSource,
    mountpoint: Path,
    revision: str | None,
    read_only: bool,
    commit_interval: float,
    allow_other: bool,
    atime: str,
    ready_fd: int,
    counts_path: str | None,
) -> None:
    """Open the repository, mount, serve until unmounted or signalled, commit, unmount."""
    import pyfuse3
    import trio

    from zerofs.mount.fs import ZerofsOperations

    logging.basicConfig(level=logging.INFO, format="%(asctime)s zerofs mount[%(process)d] %(levelname)s %(message)s")
    read_only = read_only or revision is not None
    _raise_file_limit()
    repo = source.open()
    spill_dir = source.state_dir / MOUNTS_DIR
    spill_dir.mkdir(parents=True, exist_ok=True)
    pid_file = spill_dir / str(os.getpid())
    try:
        commit_id = resolve_revision(repo, revision)
        ops = ZerofsOperations(
            repo,
            commit_id,
            str(spill_dir),
            read_only=read_only,
            commit_interval=commit_interval,
            follow=revision is None,
            atime=atime,
        )
        counts = counting.count_requests(ops, pyfuse3.Operations) if counts_path else None
        if counts_path and counts is not None:
            counting.write_on_signal(counts_path, counts)
        options = set(pyfuse3.default_options)
        # The source field names the repository: umount checks it before touching the mount.
        # noatime: the kernel leaves access times to the mount (ZerofsOperations sets them).
        options |= {f"fsname={source.name}", "subtype=zerofs", "noatime"}
        if read_only:
            options.add("ro")
        if allow_other:
            options.add("allow_other")
        try:
            pyfuse3.init(ops, str(mountpoint), options)
        except RuntimeError as exc:
            raise MountError(f"cannot mount at {mountpoint}: {exc}") from exc
        # Commands ask a read-write mount to commit before they run (zerofs.mount.control).
        listener = None if read_only else control.listen(str(source.state_dir), os.getpid())
        _write_record(pid_file, mountpoint)
        log.info("mounted %s at %s (%s)", source.name, mountpoint, "read-only" if read_only else "read-write")
        unmounted = False
        try:
            trio.run(_main, ops, mountpoint, ready_fd, listener)
            unmounted = not _is_mounted(mountpoint)
        finally:
            _final_commit(ops, listener)
            if listener is not None:
                listener.close()
                control.remove(str(source.state_dir), os.getpid())
            pyfuse3.close(unmount=not unmounted)
            log.info("unmounted %s after %d commits", mountpoint, ops.commits)
            if counts_path and counts is not None:
                counting.write_counts(counts_path, counts)
    finally:
        with suppress(FileNotFoundError):
            pid_file.unlink()
        repo.close()


async def _main(ops: object, mountpoint: Path, ready_fd: int, listener: socket.socket | None) -> None:
    import pyfuse3
    import trio

    from zerofs.mount.fs import ZerofsOperations

    assert isinstance(ops, ZerofsOperations)
    async with trio.open_nursery() as nursery:

        async def when_ready() -> None:
            # The kernel's INIT, answered by pyfuse3.main, resets read-ahead: set it after.
            await trio.sleep(0.05)
            _set_read_ahead(mountpoint)
            _report(ready_fd, "mounted")

        async def on_signals() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
                async for signum in signals:
                    log.info("signal %d: committing and unmounting", signum)
                    pyfuse3.terminate()
                    return

        nursery.start_soon(on_signals)
        nursery.start_soon(when_ready)
        nursery.start_soon(ops.background)
        if listener is not None:
            nursery.start_soon(ops.serve_commands, listener)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def _final_commit(ops: object, listener: socket.socket | None) -> None:
    """Commit what is pending; commands that ask meanwhile get their answer once it has landed."""
    import trio

    from zerofs.mount.fs import ZerofsOperations

    assert isinstance(ops, ZerofsOperations)
    if ops.read_only:
        return

    async def commit() -> None:
        async with trio.open_nursery() as nursery:
            if listener is not None:
                nursery.start_soon(ops.serve_commands, listener)
            await ops.commit("unmount")
            # Answer what was asked before the commit ended (the socket goes once this returns).
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    try:
        trio.run(commit)
    except Exception:  # logged: the process must still unmount
        log.exception("the final commit failed")


def _write_record(pid_file: Path, mountpoint: Path) -> None:
    """Write this process's record whole (renamed into place: a reader never sees half of one)."""
    partial = pid_file.with_name(f".{pid_file.name}.new")
    partial.write_text(control.record_text(os.getpid(), str(mountpoint)), errors="surrogateescape")
    partial.replace(pid_file)


def _raise_file_limit() -> None:
    """Raise the soft limit on open files to the hard one: every file open through the mount may hold a spill file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _set_read_ahead(mountpoint: Path) -> None:
    """Raise the kernel's read-ahead for this mount (best effort: needs root).

    The device number comes from mountinfo: a stat of the mount point would
    wait for this very process, which is not serving requests yet.
    """
    device = _mount_field(mountpoint, 2)
    if device is not None:
        with suppress(OSError):
            Path(f"/sys/class/bdi/{device}/read_ahead_kb").write_text(str(READ_AHEAD_KB))


# -- finding and unmounting mounts ----------------------------------------------


MOUNTINFO: Final = "/proc/self/mountinfo"
"""Where the kernel lists this process's mounts."""


def mounted_at(mountpoint: Path) -> str | None:
    """Return the file system type mounted at ``mountpoint`` (a real path), or None."""
    return _mount_field(mountpoint, -1)


def _mount_field(mountpoint: Path, index: int) -> str | None:
    """Return a field of the mountinfo line of ``mountpoint`` (-1: the file system type, -2: its source)."""
    target = str(mountpoint)
    found: str | None = None
    try:
        with open(MOUNTINFO, encoding="utf-8") as mountinfo:
            lines = mountinfo.readlines()
    except OSError as exc:  # a container without /proc: say so, not "internal error"
        raise MountError(f"cannot read {MOUNTINFO} to see what is mounted: {exc.strerror} (is /proc mounted?)") from exc
    for line in lines:
        fields = line.split()
        if _unescape(fields[4]) == target:
            # The last mount on a point is the visible one.
            found = _unescape(fields[fields.index("-") - index]) if index < 0 else fields[index]
    return found


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _is_mounted(mountpoint: Path) -> bool:
    return mounted_at(mountpoint) is not None


def mount_process(state_dir: Path, mountpoint: Path) -> int | None:
    """Return the pid of the live mount process serving ``mountpoint`` from the repository of ``state_dir``.

    Records of mount processes that are gone are removed on the way (``control.mount_records``).
    """
    live = control.mount_records(str(state_dir))
    return next((m.pid for m in live if m.mountpoint == str(mountpoint)), None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def umount(source: MountSource, mountpoint: Path) -> bool:
    """Commit what the mount at ``mountpoint`` has pending, unmount it, and wait for its process.

    Returns True if its process was gone (killed): only the dead mount
    point was detached, and what it had not committed is lost. Records of
    mount processes that are gone are removed either way.

    Raises:
        NotFoundError: nothing is mounted there.
        MountError: it is not a zerofs mount, or it would not unmount.
    """
    target = Path(os.path.realpath(mountpoint))
    control.mount_records(str(source.state_dir))
    kind = mounted_at(target)
    if kind is None:
        raise NotFoundError(f"nothing is mounted at {mountpoint}")
    if kind != "fuse.zerofs":
        raise MountError(f"{mountpoint} is a {kind} mount, not a zerofs mount")
    mounted_from = _mount_field(target, -2)
    if mounted_from is not None and mounted_from != source.name:
        # Another repository's mount: its process is not ours to signal, nor its mount to detach.
        raise MountError(
            f"{mountpoint} is a mount of the repository at {mounted_from}",
            hint=UnmountFrom(mounted_from, str(mountpoint)),
        )
    pid = mount_process(source.state_dir, target)
    if pid is None:
        # Its process is gone (killed): detach the dead mount point.
        _fusermount(target, lazy=True)
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + UMOUNT_WAIT_SECONDS
    while _alive(pid):
        if time.monotonic() > deadline:
            raise MountError(f"the mount process {pid} did not finish within {UMOUNT_WAIT_SECONDS:.0f} s")
        time.sleep(0.02)
    if _is_mounted(target):
        _fusermount(target, lazy=False)
    return False


def _fusermount(target: Path, *, lazy: bool) -> None:
    command = ["fusermount3", "-u", *(["-z"] if lazy else []), str(target)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise MountError("fusermount3 is not installed (apt-get install fuse3)") from exc
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        if "busy" in reason.lower():
            raise MountError(f"{target} is busy: close the files open there, or cd out of it")
        raise MountError(f"cannot unmount {target}: {reason}")
