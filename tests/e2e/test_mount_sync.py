"""Commands see every write that returned through a live mount (the control socket).

A command asks each live read-write mount to commit before it opens the
repository (``zerofs.mount.control``). These tests write through real mounts
and run commands at once, with no sleeps: a snapshot must hold every byte
written before it, a new directory must be there to clone, and a wedged mount
must cost a read-only command a bounded wait and a writing command a clear
error, never a silent miss.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, repo_secrets, run_zerofs, zerofs_command
from tests.e2e.helpers import tmpfs
from tests.e2e.mountutil import foreground_mount, mounted
from zerofs.content import iter_file_bytes
from zerofs.history import HEAD
from zerofs.mount.control import READ_WAIT_SECONDS, SILENCE_SECONDS, commit_mounts, live_mounts
from zerofs.objects import Commit
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.tree import lookup


def _stored(repo_path: Path, path: str) -> bytes:
    """The bytes of the file at ``path`` in HEAD, read as a fresh process's command would."""
    with Repository.open(str(repo_path), readonly=True, **repo_secrets()) as repo:
        root = repo.get_typed(repo.head_id(), Commit).root_id
        entry = lookup(repo, root, StorePath.parse(path))
        return b"".join(iter_file_bytes(repo, entry.id))


def _mount_pid(repo_path: Path) -> int:
    (mount,) = live_mounts(str(repo_path))
    return mount.pid


def _fail(message: str) -> None:
    raise AssertionError(f"a command was warned: {message}")


def test_every_write_is_seen_by_the_command_after_it(cli_repo: Path, tmp_path: Path) -> None:
    # Thousands of write-then-read pairs with random delays: zero misses. The command side
    # runs in this process (the same call every command makes before opening the repository);
    # the mount is a real process.
    rng = random.Random(12)
    with mounted(cli_repo, tmp_path / "m") as m:
        (m.path / "d").mkdir()
        for n in range(3000):
            name = f"d/f{rng.randrange(50)}"
            data = rng.randbytes(rng.choice((0, 1, 100, 5000, 70_000)))
            with open(m.path / name, "wb") as f:
                f.write(data)
            if rng.random() < 0.3:
                time.sleep(rng.choice((0.0001, 0.001, 0.005)))
            commit_mounts(str(cli_repo), writing=rng.random() < 0.5, warn=_fail)
            assert _stored(cli_repo, f"/{name}") == data, f"round {n}: {name} is not what was written"


def test_a_snapshot_taken_at_once_holds_every_write(cli_repo: Path, tmp_path: Path) -> None:
    # The report, through the CLI: v2 written, cloned at once; a new directory cloned at once.
    with mounted(cli_repo, tmp_path / "m") as m:
        (m.path / "data").mkdir()
        for n in range(15):
            (m.path / "data" / "f").write_bytes(f"v{n}".encode())
            run_zerofs("clone", "-f", "/data", "/snap", repo=cli_repo)
            assert run_zerofs("cat", "/snap/f", repo=cli_repo).stdout == f"v{n}".encode()
            fresh = m.path / f"new{n}"
            fresh.mkdir()
            (fresh / "f").write_bytes(b"x" * n)
            run_zerofs("clone", f"/new{n}", f"/snap-new{n}", repo=cli_repo)
            assert run_zerofs("cat", f"/snap-new{n}/f", repo=cli_repo).stdout == b"x" * n


def test_the_readme_cron_workflow_back_to_back(cli_repo: Path, tmp_path: Path) -> None:
    # cp -r ~/projects ~/z/projects; zerofs clone /projects /snapshots/pN: no sleeps anywhere.
    rng = random.Random(3)
    projects = tmp_path / "projects"
    with mounted(cli_repo, tmp_path / "z") as m:
        run_zerofs("mkdir", "/snapshots", repo=cli_repo)
        for n in range(8):
            shutil.rmtree(projects, ignore_errors=True)
            for d in range(rng.randrange(1, 4)):
                (projects / f"d{d}").mkdir(parents=True)
                for f in range(rng.randrange(1, 20)):
                    (projects / f"d{d}" / f"f{f}").write_bytes(rng.randbytes(rng.randrange(0, 20_000)))
            shutil.rmtree(m.path / "projects", ignore_errors=True)
            subprocess.run(["cp", "-r", str(projects), str(m.path / "projects")], check=True)
            run_zerofs("clone", "/projects", f"/snapshots/p{n}", repo=cli_repo)
            out = tmp_path / f"out{n}"
            run_zerofs("export", f"/snapshots/p{n}", str(out), repo=cli_repo)
            assert subprocess.run(["diff", "-r", str(projects), str(out)], check=False).returncode == 0, n


def test_every_mount_of_the_repository_is_asked(cli_repo: Path, tmp_path: Path) -> None:
    with mounted(cli_repo, tmp_path / "a") as a, mounted(cli_repo, tmp_path / "b") as b:
        assert len(live_mounts(str(cli_repo))) == 2
        for n in range(5):
            (a.path / f"a{n}").write_bytes(b"from a")
            (b.path / f"b{n}").write_bytes(b"from b")
            run_zerofs("clone", "/", f"/snap{n}", repo=cli_repo)
            listing = run_zerofs("ls", f"/snap{n}", repo=cli_repo).stdout.decode().split()
            assert {f"a{k}" for k in range(n + 1)} | {f"b{k}" for k in range(n + 1)} <= set(listing)


def test_the_control_socket_is_private_and_goes_with_the_mount(cli_repo: Path, tmp_path: Path) -> None:
    with mounted(cli_repo, tmp_path / "m"):
        pid = _mount_pid(cli_repo)
        sock = cli_repo / "mounts" / f"{pid}.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert not sock.exists()
    assert live_mounts(str(cli_repo)) == []


def test_a_read_only_mount_has_no_control_socket(cli_repo: Path, tmp_path: Path) -> None:
    with mounted(cli_repo, tmp_path / "m", "--read-only"):
        assert live_mounts(str(cli_repo)) == []


def test_a_wedged_mount_bounds_reads_and_fails_writes(cli_repo: Path, tmp_path: Path) -> None:
    with mounted(cli_repo, tmp_path / "m") as m:
        (m.path / "pending").write_bytes(b"written before the stop")
        pid = _mount_pid(cli_repo)
        head = _head(cli_repo)
        os.kill(pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            ls = run_zerofs("ls", "/", repo=cli_repo)
            took = time.monotonic() - start
            assert READ_WAIT_SECONDS - 0.5 < took < READ_WAIT_SECONDS + 5
            (line,) = ls.stderr.splitlines()
            assert line.startswith("zerofs: warning: the mount at ")
            assert "did not answer" in line
            start = time.monotonic()
            clone = run_zerofs("clone", "/", "/snap", repo=cli_repo, expect=7)
            took = time.monotonic() - start
            assert SILENCE_SECONDS - 0.5 < took < SILENCE_SECONDS + 5
            (line,) = clone.stderr.splitlines()
            assert "did not answer" in line
            assert line.endswith("nothing was changed")
            assert _head(cli_repo) == head
        finally:
            os.kill(pid, signal.SIGCONT)
        run_zerofs("clone", "/", "/snap", repo=cli_repo)
        assert run_zerofs("cat", "/snap/pending", repo=cli_repo).stdout == b"written before the stop"


def test_a_killed_mount_costs_commands_nothing(cli_repo: Path, tmp_path: Path) -> None:
    with foreground_mount(cli_repo, tmp_path / "m") as proc:
        (tmp_path / "m" / "f").write_bytes(b"x")
        run_zerofs("ls", "/", repo=cli_repo)  # commits f
        proc.kill()
        proc.wait()
    assert list((cli_repo / "mounts").glob("*.sock")), "the killed mount's socket stays behind"
    start = time.monotonic()
    assert run_zerofs("cat", "/f", repo=cli_repo).stdout == b"x"
    run_zerofs("clone", "/f", "/g", repo=cli_repo)
    assert time.monotonic() - start < 3
    assert not [p.name for p in (cli_repo / "mounts").iterdir() if p.name[0].isdigit()], "its record stayed"


def test_a_failed_commit_is_an_error_for_a_writing_command(tmp_path: Path) -> None:
    # A mount whose commit fails (its disk is full) answers "error": a writing command fails
    # with that reason and changes nothing; a reading one warns and reads what is committed.
    with tmpfs(tmp_path / "disk", "12m") as disk:
        repo = disk / "repo"
        run_zerofs("init", repo=repo)
        with mounted(repo, tmp_path / "m") as m:
            head = _head(repo)
            (m.path / "big").write_bytes(os.urandom(7 << 20))  # its spill file fits; it does not fit twice
            clone = run_zerofs("clone", "/", "/snap", repo=repo, expect=7)
            (line,) = clone.stderr.splitlines()
            assert "could not commit" in line
            assert line.endswith("nothing was changed")
            assert _head(repo) == head
            ls = run_zerofs("ls", "/", repo=repo)
            assert "could not commit" in ls.stderr
            assert b"big" not in ls.stdout
            (m.path / "big").unlink()
            (m.path / "small").write_bytes(b"fits")
            run_zerofs("clone", "/", "/snap", repo=repo)
            assert run_zerofs("cat", "/snap/small", repo=repo).stdout == b"fits"


def _head(repo_path: Path) -> bytes | None:
    with Repository.open(str(repo_path), readonly=True, **repo_secrets()) as repo:
        return repo.get_ref(HEAD)


def test_cli_clone_subprocesses_in_a_loop(cli_repo: Path, tmp_path: Path) -> None:
    # The whole path, many times: a real zerofs process right after each write.
    rng = random.Random(5)
    with mounted(cli_repo, tmp_path / "m") as m:
        for n in range(60):
            data = rng.randbytes(rng.randrange(0, 3000))
            (m.path / "f").write_bytes(data)
            proc = subprocess.run(
                zerofs_command(cli_repo, "clone", "-f", "/f", "/snap"), env=cli_env(), capture_output=True, check=True
            )
            assert b"warning" not in proc.stderr
            assert _stored(cli_repo, "/snap") == data, n


def test_a_mount_another_user_cannot_ask_is_never_skipped_silently(zerofs: Any, tmp_path: Path) -> None:
    # The control socket is private (0600): a command of another user cannot ask that mount to
    # commit. It must say so (a warning when it only reads, an error when it writes), never act as
    # if the mount were not there.
    if os.geteuid() != 0:
        pytest.fail("this test switches to another user, which needs root (CI runs as root)")
    base = Path(tempfile.mkdtemp(prefix="zerofs-shared-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        repo = base / "repo"
        zerofs("init", repo=repo)
        with mounted(repo, base / "m") as m:
            (m.path / "f").write_bytes(b"pending")
            probe = (
                "import os, socket  # before the switch: this Python lives under /root\n"
                "from zerofs.errors import MountError\n"
                "from zerofs.mount.control import commit_mounts\n"
                "os.setgid(65534); os.setuid(65534)\n"
                f"commit_mounts({str(repo)!r}, writing=False, warn=lambda m: print('warned:', m))\n"
                "try:\n"
                f"    commit_mounts({str(repo)!r}, writing=True, warn=print)\n"
                "except MountError as exc:\n"
                "    print('refused:', exc)\n"
            )
            out = subprocess.run(
                [sys.executable, "-c", probe], env=cli_env(), capture_output=True, text=True, check=True
            ).stdout
            assert "warned: the mount at" in out
            assert "could not be asked to commit (Permission denied)" in out
            assert "refused: the mount at" in out
            assert out.rstrip().endswith("nothing was changed")
    finally:
        shutil.rmtree(base, ignore_errors=True)
