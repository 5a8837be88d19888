"""The mount and umount commands themselves: errors, dead mounts, and gc alongside a mount."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import Zerofs, cli_env, zerofs_command
from tests.e2e.helpers import assert_fails, assert_one_error_line
from tests.e2e.mountutil import foreground_mount, is_mounted, mounted, require_fuse


def test_mount_errors_are_one_line_with_exit_7(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """A missing mount point, a file, and an occupied mount point each fail cleanly, changing nothing."""
    require_fuse()
    assert "create it first" in assert_fails(cli_repo, "mount", str(tmp_path / "nope"), expect=7)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert assert_fails(cli_repo, "mount", str(a_file), expect=7) == f"zerofs: mount point {a_file} is not a directory"
    with mounted(cli_repo, tmp_path / "mnt"):
        assert "already a mount point" in assert_fails(cli_repo, "mount", str(tmp_path / "mnt"), expect=7)


def test_mount_over_the_repository_or_inside_it_is_refused(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """zerofs --repo ~/r mount ~ hung for good: the mount process's own reads of its packs went to itself."""
    require_fuse()
    assert cli_repo.parent == tmp_path
    line = assert_fails(cli_repo, "mount", str(tmp_path), expect=7)
    assert line == f"zerofs: mount point {tmp_path} holds the repository's files ({cli_repo}): mount outside it"
    line = assert_fails(cli_repo, "mount", str(cli_repo), expect=7)
    assert line == f"zerofs: mount point {cli_repo} is the repository's directory: mount outside it"
    inside = cli_repo / "packs"
    line = assert_fails(cli_repo, "mount", str(inside), expect=7)
    assert line == f"zerofs: mount point {inside} is inside the repository's files ({cli_repo}): mount outside it"
    assert not is_mounted(tmp_path)
    assert not is_mounted(cli_repo)


def test_mount_over_another_file_system_does_not_suggest_zerofs_umount(cli_repo: Path, tmp_path: Path) -> None:
    """zerofs umount refuses a mount that is not zerofs's, so it is not the fix there."""
    other = tmp_path / "tmpfs"
    other.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "zerofs-test", str(other)], check=True)
    try:
        line = assert_fails(cli_repo, "mount", str(other), expect=7)
        assert line == f"zerofs: {other} is already a mount point (of a tmpfs file system): mount on another directory"
    finally:
        subprocess.run(["umount", str(other)], check=True)


def test_mount_at_a_bad_revision_exits_like_other_commands(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """--at was resolved in the mount process, whose every failure reached the user as exit 7."""
    (tmp_path / "mnt").mkdir()
    line = assert_fails(cli_repo, "mount", "--at", "HEAD~9", str(tmp_path / "mnt"), expect=3)
    assert line == "zerofs: revision 'HEAD~9' goes back past the first commit (the first commit is HEAD)"
    assert "invalid revision 'main'" in assert_fails(cli_repo, "mount", "--at", "main", str(tmp_path / "mnt"), expect=2)
    assert not is_mounted(tmp_path / "mnt")


def test_mount_of_a_read_only_repository_is_one_line(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """The mount process failed creating REPO/mounts before its stderr went to the log: a traceback."""
    require_fuse()
    read_only = tmp_path / "ro"
    read_only.mkdir()
    subprocess.run(["mount", "--bind", str(cli_repo), str(read_only)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(read_only)], check=True)
        (tmp_path / "mnt").mkdir()
        line = assert_fails(read_only, "mount", str(tmp_path / "mnt"), expect=7)
        assert line == (
            f"zerofs: cannot write the mount log in {read_only / 'mounts'}: Read-only file system "
            "(a mount needs a writable repository)"
        )
        assert not is_mounted(tmp_path / "mnt")
    finally:
        subprocess.run(["umount", str(read_only)], check=True)


def test_mount_needs_a_repository(zerofs: Zerofs, tmp_path: Path) -> None:
    """Mounting where there is no repository says how to make one (exit 5) and mounts nothing."""
    (tmp_path / "mnt").mkdir()
    line = assert_one_error_line(zerofs("mount", str(tmp_path / "mnt"), expect=5))
    assert "zerofs --repo" in line
    assert "init" in line
    assert not is_mounted(tmp_path / "mnt")


def test_umount_of_nothing_is_not_found(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """umount of a directory that is not a mount point exits 3."""
    (tmp_path / "plain").mkdir()
    assert "nothing is mounted" in assert_fails(cli_repo, "umount", str(tmp_path / "plain"), expect=3)


def test_umount_refuses_the_mount_of_another_repository(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """--repo OTHER umount MNT names MNT's repository and leaves the mount, and what it holds, alone."""
    other = tmp_path / "other"
    zerofs("init", repo=other)
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        (mnt / "pending.txt").write_bytes(b"not committed yet")
        line = assert_fails(other, "umount", str(mnt), expect=7)
        assert line == (
            f"zerofs: {mnt} is a mount of the repository at {cli_repo} "
            f"(unmount it with: zerofs --repo {cli_repo} umount {mnt})"
        )
        assert (mnt / "pending.txt").read_bytes() == b"not committed yet"
    assert zerofs("cat", "/pending.txt").stdout == b"not committed yet"


def test_umount_detaches_a_mount_whose_process_was_killed(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """After kill -9 the mount point is dead (ENOTCONN); umount detaches it and the repository is intact."""
    mnt = tmp_path / "mnt"
    with foreground_mount(cli_repo, mnt) as proc:
        (mnt / "kept.txt").write_bytes(b"kept")
        fd = os.open(mnt / "kept.txt", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        (mnt / "lost.txt").write_bytes(b"never committed")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert is_mounted(mnt)
        zerofs("umount", str(mnt))
        assert not is_mounted(mnt)
    assert zerofs("cat", "/kept.txt").stdout == b"kept"
    zerofs("cat", "/lost.txt", expect=3)
    zerofs("fsck", "--read-data")


def test_gc_runs_while_a_mount_is_idle(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """The mount holds the writer lease only while committing, so gc completes beside it and keeps its data."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--commit-interval", "1") as mount:
        (mnt / "a").write_bytes(os.urandom(300_000))
        (mnt / "b").write_bytes(b"b" * 100)
        fd = os.open(mnt / "a", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.unlink(mnt / "b")
        fd = os.open(mnt, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        result = zerofs("gc", "--keep-last", "1", "--json")
        assert json.loads(result.stdout)["commits_removed"], "gc removed no commit"
        data = (mnt / "a").read_bytes()
        (mnt / "c").write_bytes(data[:1000])
        mount.umount()
    assert zerofs("cat", "/a").stdout == data
    assert zerofs("cat", "/c").stdout == data[:1000]
    zerofs("fsck", "--read-data")


def _records(repo: Path) -> list[str]:
    """The names in the repository's mounts directory that belong to a mount process (records, sockets)."""
    return sorted(name for name in os.listdir(repo / "mounts") if name.split(".")[0].isdigit())


def _kill_the_mount(repo: Path, mnt: Path) -> int:
    """SIGKILL the background mount process serving ``mnt``, wait until it is gone; return its pid."""
    (pid,) = [int(name) for name in os.listdir(repo / "mounts") if name.isdigit()]
    assert (repo / "mounts" / str(pid)).read_text().endswith(f"\n{mnt}\n")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        assert time.monotonic() < deadline, f"mount process {pid} outlived SIGKILL"
        time.sleep(0.02)
    return pid


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_killed_mount_is_named_by_mount_and_its_record_cleared(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path
) -> None:
    """kill -9 left REPO/mounts/PID and PID.sock for good, and mount over the dead mount point was an internal error."""
    mnt = tmp_path / "mnt"
    try:
        with mounted(cli_repo, mnt):
            (mnt / "kept").write_bytes(b"kept")
            zerofs("ls", "/")  # has the mount commit
            pid = _kill_the_mount(cli_repo, mnt)
            assert _records(cli_repo) == sorted([str(pid), f"{pid}.sock"])
            line = assert_fails(cli_repo, "mount", str(mnt), expect=7)
            assert line == (
                f"zerofs: {mnt} is still the mount point of a zerofs mount whose process is gone (killed?) "
                f"(unmount it with: zerofs --repo {cli_repo} umount {mnt})"
            )
            assert _records(cli_repo) == [], "the dead mount's record and socket stayed"
            detached = zerofs("umount", str(mnt))
            assert detached.stderr == (
                f"zerofs: warning: detached the dead mount at {mnt}: its mount process was gone, "
                "and what it had not committed is lost\n"
            )
            assert not is_mounted(mnt)
        with mounted(cli_repo, mnt) as again:
            assert (mnt / "kept").read_bytes() == b"kept"
            again.umount()
        assert _records(cli_repo) == []
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, check=False)


def test_a_command_clears_the_record_of_a_killed_mount(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Every command asks the mounts it finds to commit: one whose process is gone loses its record there."""
    mnt = tmp_path / "mnt"
    try:
        with mounted(cli_repo, mnt):
            _kill_the_mount(cli_repo, mnt)
            proc = zerofs("write", "/after", input=b"after")
            assert "zerofs:" not in proc.stderr, proc.stderr  # no warning, no error: there is nothing to commit
            assert _records(cli_repo) == []
            zerofs("umount", str(mnt))
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, check=False)
    assert zerofs("cat", "/after").stdout == b"after"


def test_umount_never_signals_a_process_that_reused_a_dead_mounts_pid(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path
) -> None:
    """A record names a pid; once its mount is killed the pid may be another process's, which umount must spare."""
    mnt = tmp_path / "mnt"
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        with mounted(cli_repo, mnt):
            pid = _kill_the_mount(cli_repo, mnt)
            mounts = cli_repo / "mounts"
            (mounts / str(pid)).rename(mounts / str(bystander.pid))  # as if the pid had been reused
            zerofs("umount", str(mnt))
            assert not is_mounted(mnt)
            assert bystander.poll() is None, "umount signalled a process that is not the mount"
            assert _records(cli_repo) == [f"{pid}.sock"] or _records(cli_repo) == []
            zerofs("ls", "/")
            assert _records(cli_repo) == []
    finally:
        bystander.kill()
        bystander.wait()
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, check=False)


def test_mount_and_umount_without_proc_are_one_line(cli_repo: Path, tmp_path: Path) -> None:
    """In a container without /proc, mount and umount said 'internal error: FileNotFoundError' (exit 1).

    /proc is unmounted only in a private mount namespace of the child (unshare), never on the host.
    """
    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for words in (("mount", str(mnt)), ("umount", str(mnt))):
        proc = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                'umount -l /proc && exec "$@"',
                "sh",
                *zerofs_command(cli_repo, *words),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
        assert proc.returncode == 7, proc.stderr
        line = assert_one_error_line(proc)
        assert line == (
            "zerofs: cannot read /proc/self/mountinfo to see what is mounted: No such file or directory"
            " (is /proc mounted?)"
        )
    assert not is_mounted(mnt)
    assert os.path.exists("/proc/self/mountinfo")
