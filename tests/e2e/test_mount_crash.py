"""A mount killed with SIGKILL at any instant loses nothing that was committed or fsynced.

Each round runs ``zerofs mount --foreground --commit-interval 1``, lets writer processes fill it
(many small files, some large, some fsynced) and kills the mount process at a different instant.
After each round the repository must open, every commit must read back completely
(``fsck --read-data``), every file whose fsync returned must be in HEAD with its content, and
what earlier rounds left in HEAD must still be there unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import run_zerofs
from tests.e2e.helpers import gc_leaves_it_clean, log_json
from tests.e2e.mountutil import foreground_mount, is_mounted, mounted

ROUNDS = 6
WRITERS = 2
WRITER_BUDGET_BYTES = 32 << 20
WRITER_MAX_FILES = 4000
# (earliest, latest) seconds after the writers start at which the mount is killed, one per round.
KILL_WINDOWS = [(0.2, 0.5), (1.2, 1.6), (0.5, 1.0), (1.8, 2.3), (0.9, 1.3), (1.5, 1.9)]

# Writes files below ROOT/PREFIX until a write fails (the mount was killed): mixed sizes until it
# has written BUDGET bytes, then small files only (at most MAX_FILES in all), so the mount stays
# busy until the kill without the repository growing much. After each fsync that returned it
# prints "STORE_PATH SIZE SHA256" and flushes: what it printed is exactly the set of files whose
# fsync returned.
WRITER = r"""
import hashlib, os, random, sys

root, prefix = sys.argv[1:3]
seed, budget, max_files = map(int, sys.argv[3:6])
rng = random.Random(seed)
written = 0
i = 0
try:
    while i < max_files:
        rel = f"{prefix}/d{i // 16}"
        os.makedirs(os.path.join(root, rel), exist_ok=True)
        mixed = written < budget
        if mixed and i % 12 == 11:
            size = rng.randint(1 << 20, 4 << 20)
        else:
            size = rng.randint(1, 96 << 10 if mixed else 4096)
        data = rng.randbytes(size)
        path = f"{rel}/f{i}"
        fd = os.open(os.path.join(root, path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view[: 256 << 10]) :]
            if i % 4 == 0 or i % 24 == 23:
                os.fsync(fd)
                print(f"/{path} {size} {hashlib.sha256(data).hexdigest()}", flush=True)
        finally:
            os.close(fd)
        written += size
        i += 1
    print("done", flush=True)
except OSError as exc:
    print(f"error {exc.errno}", flush=True)
"""


@dataclass(frozen=True)
class Synced:
    """A file whose fsync returned before the mount was killed."""

    path: str
    size: int
    sha256: str


def files_in_head(repo: Path) -> dict[str, tuple[str, str, int]]:
    """Every non-directory entry of HEAD: store path -> (type, id, size)."""
    rows = json.loads(run_zerofs("ls", "-R", "--json", "/", repo=repo).stdout)
    return {row["path"]: (row["type"], row["id"], row["size"]) for row in rows if row["type"] != "dir"}


def under(files: dict[str, tuple[str, str, int]], prefix: str) -> dict[str, tuple[str, str, int]]:
    return {path: value for path, value in files.items() if path.startswith(prefix + "/")}


def assert_synced_in_head(repo: Path, synced: list[Synced]) -> None:
    """Every fsynced file is in HEAD with the size and content the writer fsynced."""
    for start in range(0, len(synced), 200):
        group = synced[start : start + 200]
        out = run_zerofs("cat", *[s.path for s in group], repo=repo).stdout
        assert len(out) == sum(s.size for s in group), "cat of the fsynced files printed the wrong number of bytes"
        offset = 0
        for item in group:
            content = out[offset : offset + item.size]
            offset += item.size
            assert hashlib.sha256(content).hexdigest() == item.sha256, f"{item.path}: not the content fsynced"


def parse_writer_output(stdout: bytes) -> list[Synced]:
    synced = []
    for line in stdout.decode().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0].startswith("/"):
            synced.append(Synced(fields[0], int(fields[1]), fields[2]))
    return synced


def test_sigkilled_mount_keeps_every_commit_and_every_fsync(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: after SIGKILL the log opens, fsck --read-data passes, fsynced files and earlier rounds survive."""
    rng = random.Random(20261125)
    base = tmp_path / "base"
    base.mkdir()
    for i in range(5):
        (base / f"b{i}").write_bytes(rng.randbytes(rng.randint(10, 300_000)))
    run_zerofs("import", str(base), "/base", repo=cli_repo)
    kept: dict[str, dict[str, tuple[str, str, int]]] = {"/base": under(files_in_head(cli_repo), "/base")}
    assert len(kept["/base"]) == 5
    commits_before = len(log_json(cli_repo))
    total_synced = 0
    mountpoint = tmp_path / "mnt"

    for round_no, (earliest, latest) in enumerate(KILL_WINDOWS[:ROUNDS]):
        delay = rng.uniform(earliest, latest)
        outputs: list[bytes] = []
        with foreground_mount(cli_repo, mountpoint, "--commit-interval", "1") as mount:
            writers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WRITER,
                        str(mountpoint),
                        f"r{round_no}/w{k}",
                        str(round_no * 10 + k),
                        str(WRITER_BUDGET_BYTES),
                        str(WRITER_MAX_FILES),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    cwd=tmp_path,
                )
                for k in range(WRITERS)
            ]
            time.sleep(delay)
            alive = mount.poll() is None
            mount.send_signal(signal.SIGKILL)
            mount.wait(timeout=30)
            for writer in writers:
                try:
                    out, _ = writer.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    writer.kill()
                    out, _ = writer.communicate()
                    raise AssertionError(f"round {round_no}: a writer hung after the mount was killed") from None
                outputs.append(out)
            stderr = mount.stderr.read().decode(errors="replace") if mount.stderr else ""
            assert alive, f"round {round_no}: the mount process exited by itself before the kill: {stderr[-2000:]}"
        assert not is_mounted(mountpoint)

        context = f"round {round_no} (killed after {delay:.2f} s)"
        log = log_json(cli_repo)
        new_commits = log[: len(log) - commits_before]
        assert all(c["message"].startswith("mount:") for c in new_commits), [c["message"] for c in new_commits]
        commits_before = len(log)
        fsck = run_zerofs("fsck", "--read-data", repo=cli_repo, expect=None)
        assert fsck.returncode == 0, (
            f"{context}: fsck --read-data failed:\n{fsck.stdout.decode()[:2000]}\n{fsck.stderr!r}"
        )

        synced = [item for out in outputs for item in parse_writer_output(out)]
        total_synced += len(synced)
        head = files_in_head(cli_repo)
        missing = [s.path for s in synced if s.path not in head]
        assert not missing, f"{context}: files whose fsync returned are not in HEAD: {missing[:10]}"
        wrong_size = [s.path for s in synced if head[s.path][2] != s.size]
        assert not wrong_size, f"{context}: fsynced files with the wrong size in HEAD: {wrong_size[:10]}"
        assert_synced_in_head(cli_repo, synced)
        for prefix, files in kept.items():
            assert under(head, prefix) == files, f"{context}: what HEAD held under {prefix} changed or was lost"
        kept[f"/r{round_no}"] = under(head, f"/r{round_no}")
        # The killed mount's pack (no trailer) is reclaimed by gc, which leaves fsck nothing to warn about.
        gc_leaves_it_clean(cli_repo, context, "--keep-last", "2")

    assert total_synced > 0, "no fsync returned in any round: the test did not exercise durability"

    # The repository is still usable: a normal mount serves what the rounds left and takes new writes.
    with mounted(cli_repo, mountpoint) as mount:
        for files in kept.values():
            for path, (kind, _, size) in list(files.items())[:20]:
                if kind == "file":
                    assert os.path.getsize(mountpoint / path.lstrip("/")) == size
        (mountpoint / "after.txt").write_bytes(b"still writable")
        mount.umount()
    assert run_zerofs("cat", "/after.txt", repo=cli_repo).stdout == b"still writable"
    run_zerofs("fsck", "--read-data", repo=cli_repo)
