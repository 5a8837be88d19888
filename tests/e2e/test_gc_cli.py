"""gc through the CLI: retention, freed space, dry runs, bad durations, compaction, and races."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, repo_password, repo_secrets, zerofs_command
from tests.e2e.helpers import assert_fails, log_json
from tests.e2e.mountutil import mounted
from zerofs.content import iter_file_bytes
from zerofs.errors import ConflictError, UsageError
from zerofs.history import iter_log
from zerofs.objects import FileNode
from zerofs.reachable import mark_commits as mark
from zerofs.repo import Repository


def _write_through(mountpoint: Path, round_no: int, written: dict[str, bytes]) -> None:
    """Write and fsync files through a mount (the fsync commits), as gc runs."""
    directory = mountpoint / f"m{round_no}"
    directory.mkdir()
    for i in range(20):
        data = os.urandom(1000 + 997 * i) if i % 2 else b"mount %d %d\n" % (round_no, i) * 50
        with (directory / f"f{i}").open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        written[f"m{round_no}/f{i}"] = data


def verify_history(repo_path: Path) -> int:
    """Every commit in the log reads back completely: every node decodes, every chunk hashes."""
    repo = Repository.open(repo_path, readonly=True, **repo_secrets())
    try:
        commits = 0
        for commit_id, _ in iter_log(repo):
            commits += 1
            reachable: set[bytes] = set()
            mark(repo, [commit_id], reachable)
            for object_id in reachable:
                kind, _ = repo.get_record_body(object_id)  # verifies the hash
                if kind.name == "FILE":
                    for _ in iter_file_bytes(repo, object_id):
                        pass
                    assert isinstance(repo.get_node(object_id), FileNode)
        return commits
    finally:
        repo.close()


def _snapshots(zerofs: Any, tmp_path: Path, n: int) -> Path:
    host = tmp_path / "data"
    host.mkdir()
    zerofs("mkdir", "/snapshots")
    for i in range(n):
        (host / f"f{i}").write_bytes(os.urandom(200_000))
        zerofs("import", str(host), "/data")
        zerofs("clone", "/data", f"/snapshots/s{i}")
    return host


def test_gc_frees_what_deleted_snapshots_held(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    host = _snapshots(zerofs, tmp_path, 6)
    for name in os.listdir(host):
        os.unlink(host / name)
    (host / "only").write_bytes(b"small")
    zerofs("import", str(host), "/data")
    zerofs("rm", "-r", "/snapshots/s[0-4]")
    # s5 still holds all six files: only history and the replaced trees can go.
    kept_files = json.loads(zerofs("gc", "--keep-last", "1", "--json").stdout)
    assert kept_files["commits_kept"] == 1
    assert kept_files["bytes_freed"] < 200_000
    for i in range(6):
        assert len(zerofs("cat", f"/snapshots/s5/f{i}").stdout) == 200_000
    zerofs("rm", "-r", "/snapshots/s5")
    result = json.loads(zerofs("gc", "--keep-last", "1", "--json").stdout)
    assert result["bytes_freed"] > 6 * 200_000
    assert verify_history(cli_repo) == 1
    assert len(log_json(cli_repo)) == 1
    assert log_json(cli_repo)[0]["parents"] == []  # the grafted parents, not the cut ones
    assert zerofs("cat", "/data/only").stdout == b"small"


def test_gc_without_retention_keeps_history(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    _snapshots(zerofs, tmp_path, 3)
    before = log_json(cli_repo)
    result = json.loads(zerofs("gc", "--json").stdout)
    assert result["commits_kept"] == len(before)
    assert log_json(cli_repo) == before
    assert verify_history(cli_repo) == len(before)


def test_dry_run_changes_nothing(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    _snapshots(zerofs, tmp_path, 3)
    zerofs("rm", "-r", "/snapshots/s0")
    before = log_json(cli_repo)
    files_before = repository_files(cli_repo)
    out = zerofs("gc", "--keep-last", "1", "--dry-run").stdout.decode()
    assert "would remove" in out
    assert log_json(cli_repo) == before
    assert repository_files(cli_repo) == files_before


def repository_files(repo: Path) -> dict[str, bytes]:
    """Every file of a repository and its bytes, but lock files (every command takes them)."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not p.name.endswith((".lock", "-lock"))
    }


@pytest.mark.parametrize("duration", ["30", "0d", "thirty days", "1d2y", "-5d", ""])
def test_nonsense_durations(zerofs: Any, cli_repo: Path, duration: str) -> None:
    before = log_json(cli_repo)
    line = assert_fails(cli_repo, "gc", "--keep-within", duration, expect=UsageError.exit_code)
    assert "duration" in line
    assert log_json(cli_repo) == before


def test_compact_shrinks_the_index_and_needs_the_repository_alone(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    _snapshots(zerofs, tmp_path, 5)
    zerofs("rm", "-r", "/snapshots", "/data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from zerofs.repo import Repository; "
            f"r = Repository.open(__import__('pathlib').Path({str(cli_repo)!r}), readonly=True, "
            f"password={repo_password()!r}); "
            "print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"open"
        line = assert_fails(cli_repo, "gc", "--keep-last", "1", "--compact", expect=ConflictError.exit_code)
        assert line == (
            f"zerofs: the repository at {cli_repo} is open in another process "
            "(close it (or unmount it) and run gc --compact again)"
        )
    finally:
        holder.kill()
        holder.wait()
    before = (cli_repo / "index.mdb").stat().st_blocks * 512
    result = json.loads(zerofs("gc", "--keep-last", "1", "--compact", "--json").stdout)
    after = (cli_repo / "index.mdb").stat().st_blocks * 512
    assert result["compacted"]["bytes_after"] == after
    assert after < before
    assert verify_history(cli_repo) == 1
    zerofs("mkdir", "/after-compact")
    assert "after-compact" in zerofs("ls", "/").stdout.decode()


def test_gc_races_imports_and_a_mount_without_losing_anything(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    """Real processes: imports, clones and removals keep committing, and a live mount keeps writing,
    while gc cuts history, forgets objects and rewrites packs; fsck after each round."""
    env = cli_env()
    base = zerofs_command(cli_repo)
    written: dict[str, bytes] = {}
    with mounted(cli_repo, tmp_path / "mnt", "--commit-interval", "1") as mount:
        for round_no in range(4):
            writers = []
            for w in range(3):
                host = tmp_path / f"r{round_no}w{w}"
                host.mkdir()
                for i in range(40):
                    # Half the files repeat content from earlier rounds: deduplicated chunks that
                    # gc may consider garbage while an import is about to reference them.
                    seed = (i % 20) if i % 2 else round_no * 100 + i
                    (host / f"f{i}").write_bytes(str(seed).encode() * 3000)
                script = (
                    f"{' '.join(map(str, base))} import {host} /w{w} -q && "
                    f"{' '.join(map(str, base))} clone -q -f /w{w} /snap-w{w} && "
                    f"{' '.join(map(str, base))} rm -q -r /w{w}"
                )
                writers.append(subprocess.Popen(["bash", "-c", script], env=env))
            through_mount = threading.Thread(target=_write_through, args=(mount.path, round_no, written))
            through_mount.start()
            gcs = [
                subprocess.run([*base, "gc", "--keep-last", "2", "-q"], env=env, capture_output=True, text=True)
                for _ in range(2)
            ]
            through_mount.join(timeout=120)
            for proc in writers:
                assert proc.wait(timeout=120) == 0
            for proc in gcs:
                assert proc.returncode in (0, ConflictError.exit_code), proc.stderr
                assert "Traceback" not in proc.stderr
            assert verify_history(cli_repo) >= 1
            fsck = subprocess.run([*base, "fsck", "--read-data"], env=env, capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stdout + fsck.stderr
            for w in range(3):
                listing = zerofs("ls", f"/snap-w{w}").stdout.decode().split()
                assert len(listing) == 40
                assert zerofs("cat", f"/snap-w{w}/f0").stdout
            for name, data in written.items():
                assert (mount.path / name).read_bytes() == data, name
            time.sleep(0.05)
    for name, data in written.items():  # committed by the mount, kept by every gc
        assert zerofs("cat", f"/{name}").stdout == data, name
    subprocess.run([*base, "gc", "--keep-last", "1", "-q"], env=env, check=True)
    assert verify_history(cli_repo) == 1
