"""The mount's debug counter of FUSE requests (ZEROFS_MOUNT_REQUEST_COUNTS), as the benchmark uses it.

A mount started with the variable counts the requests it serves by kind;
SIGUSR1 writes the counts so far and the exit writes the final ones, so the
benchmark can take a snapshot before and after a phase and report requests
per operation.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import run_zerofs
from tests.e2e.mountutil import force_unmount, is_mounted, require_fuse
from zerofs.mount.counting import ENV


def _snapshot(pid: int, counts: Path) -> dict[str, int]:
    counts.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not counts.exists():
        assert time.monotonic() < deadline, "SIGUSR1 wrote no counts"
        time.sleep(0.01)
    result: dict[str, int] = json.loads(counts.read_text())
    return result


def test_sigusr1_writes_the_counts_so_far_and_the_exit_the_final_ones(cli_repo: Path, tmp_path: Path) -> None:
    require_fuse()
    mnt, counts = tmp_path / "mnt", tmp_path / "counts.json"
    mnt.mkdir()
    run_zerofs("mount", str(mnt), repo=cli_repo, env={ENV: str(counts)}, timeout=60)
    try:
        (pid,) = [int(p.name) for p in (cli_repo / "mounts").iterdir() if p.name.isdigit()]
        (mnt / "d").mkdir()
        before = _snapshot(pid, counts)
        for i in range(5):
            (mnt / "d" / f"f{i}").write_bytes(b"x" * 100)
        time.sleep(0.3)  # release is sent after close returns
        after = _snapshot(pid, counts)
        assert before["mkdir"] == 1
        assert {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("create", "write", "release")} == {
            "create": 5,
            "write": 5,
            "release": 5,
        }
        assert is_mounted(mnt)  # the signal did not end the mount
        run_zerofs("umount", str(mnt), repo=cli_repo)
        final = json.loads(counts.read_text())
        assert final["create"] == 5
        assert final["mkdir"] == 1
    finally:
        force_unmount(mnt)
