"""What the mount stores and holds in memory: small edits cost little, copies dedup, reads stream.

Sizes are measured with ``zerofs stats --json``: ``stored_bytes`` counts every record in the
repository (referenced or not), ``objects_by_kind.chunk`` the distinct chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_zerofs
from tests.e2e.mountutil import foreground_mount, mounted

MiB = 1 << 20
BIG_FILE_BYTES = 128 * MiB
READ_FILE_BYTES = 256 * MiB
# No timer commits while a test works: only its fsync or the unmount commits.
NO_TIMER = ("--commit-interval", "3600")


def stats(repo: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_zerofs("stats", "--json", repo=repo).stdout)
    return result


def write_random_file(path: Path, size: int, seed: int) -> str:
    """Write ``size`` seeded random bytes to ``path``; return their sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, 16 * MiB):
            block = rng.randbytes(min(16 * MiB, size - start))
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def sha256_of_store_file(repo: Path, store_path: str) -> str:
    return hashlib.sha256(run_zerofs("cat", store_path, repo=repo).stdout).hexdigest()


def test_small_write_into_large_file_stores_a_few_chunks(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: 4 KiB written mid-file through the mount and fsynced adds a few chunks, not the file."""
    host_file = tmp_path / "big.bin"
    write_random_file(host_file, BIG_FILE_BYTES, seed=1)
    run_zerofs("import", str(host_file), "/big.bin", repo=cli_repo)
    before = stats(cli_repo)

    patch = random.Random(2).randbytes(4096)
    offset = BIG_FILE_BYTES // 2 + 1000
    with host_file.open("r+b") as expected:
        expected.seek(offset)
        expected.write(patch)
    expected_sha = hashlib.sha256(host_file.read_bytes()).hexdigest()

    with mounted(cli_repo, tmp_path / "mnt", *NO_TIMER) as mount:
        started = time.monotonic()
        fd = os.open(mount.path / "big.bin", os.O_WRONLY)
        try:
            assert os.pwrite(fd, patch, offset) == len(patch)
            os.fsync(fd)
        finally:
            os.close(fd)
        elapsed = time.monotonic() - started
        after_fsync = stats(cli_repo)
        mount.umount()
    after_unmount = stats(cli_repo)

    assert after_fsync["commits"] > before["commits"], "fsync did not commit"
    grown = after_fsync["stored_bytes"] - before["stored_bytes"]
    new_chunks = after_fsync["objects_by_kind"]["chunk"] - before["objects_by_kind"]["chunk"]
    assert grown < MiB, f"a 4 KiB write stored {grown} new bytes ({new_chunks} new chunks)"
    assert 1 <= new_chunks <= 4, f"a 4 KiB write stored {new_chunks} new chunks"
    assert after_unmount["stored_bytes"] - before["stored_bytes"] < MiB, "unmounting stored the file again"
    assert elapsed < 10, f"writing 4 KiB and fsyncing took {elapsed:.1f} s"
    assert sha256_of_store_file(cli_repo, "/big.bin") == expected_sha


def make_tree(root: Path, seed: int) -> int:
    """A directory of mixed files (large, small, nested, a symlink); returns its data size in bytes."""
    rng = random.Random(seed)
    (root / "sub" / "deeper").mkdir(parents=True)
    total = 0
    for i in range(12):
        data = rng.randbytes(rng.randint(200_000, 1_500_000))
        (root / f"large{i}.bin").write_bytes(data)
        total += len(data)
    for i in range(10):
        data = rng.randbytes(rng.randint(1, 4000))
        (root / "sub" / f"small{i}").write_bytes(data)
        total += len(data)
    text = b"".join(b"line %d of a compressible file\n" % i for i in range(40_000))
    (root / "sub" / "deeper" / "text.txt").write_bytes(text)
    total += len(text)
    (root / "link").symlink_to("large0.bin")
    return total


def test_cp_r_inside_the_mount_adds_no_chunks(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: copying a directory within the mount stores no new chunk; the copy's files are the same nodes."""
    source = tmp_path / "src"
    source.mkdir()
    data_bytes = make_tree(source, seed=3)
    run_zerofs("import", str(source), "/src", repo=cli_repo)
    before = stats(cli_repo)

    with mounted(cli_repo, tmp_path / "mnt", *NO_TIMER) as mount:
        subprocess.run(["cp", "-r", str(mount.path / "src"), str(mount.path / "copy")], check=True, timeout=120)
        mount.umount()
    after = stats(cli_repo)

    grown = after["stored_bytes"] - before["stored_bytes"]
    assert after["objects_by_kind"]["chunk"] == before["objects_by_kind"]["chunk"], "cp -r stored new chunks"
    assert after["content_bytes"] == before["content_bytes"]
    assert grown < 128 * 1024, f"cp -r of {data_bytes} bytes stored {grown} new bytes"
    assert grown < data_bytes // 50

    def file_ids(store_path: str) -> dict[str, tuple[str, int, str]]:
        rows = json.loads(run_zerofs("ls", "-R", "--json", store_path, repo=cli_repo).stdout)
        return {
            row["path"].removeprefix(store_path): (row["type"], row["size"], row["id"])
            for row in rows
            if row["type"] != "dir"
        }

    source_files = file_ids("/src")
    assert len(source_files) == 24
    assert file_ids("/copy") == source_files


def rss_anon_kib(pid: int) -> int:
    """The anonymous resident memory of ``pid`` in KiB (RssAnon: not the LMDB map's page cache)."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError(f"no RssAnon in /proc/{pid}/status")


def test_reading_a_large_file_streams(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: reading a 256 MiB file through the mount keeps the mount process's anonymous memory small."""
    host_file = tmp_path / "large.bin"
    expected_sha = write_random_file(host_file, READ_FILE_BYTES, seed=4)
    run_zerofs("import", str(host_file), "/large.bin", repo=cli_repo)
    host_file.unlink()

    mountpoint = tmp_path / "mnt"
    with foreground_mount(cli_repo, mountpoint, *NO_TIMER) as mount:
        assert os.path.getsize(mountpoint / "large.bin") == READ_FILE_BYTES
        baseline_kib = rss_anon_kib(mount.pid)
        peak_kib = baseline_kib
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_kib
            while not done.is_set():
                peak_kib = max(peak_kib, rss_anon_kib(mount.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        digest = hashlib.sha256()
        try:
            with open(mountpoint / "large.bin", "rb", buffering=0) as source:
                buffer = bytearray(MiB)
                while n := source.readinto(buffer):
                    digest.update(memoryview(buffer)[:n])
        finally:
            done.set()
            sampler.join(timeout=10)
        assert mount.poll() is None, "the mount process died while the file was read"

    assert digest.hexdigest() == expected_sha, "the file read through the mount is not the file imported"
    grown_mib = (peak_kib - baseline_kib) / 1024
    assert grown_mib < 64, f"reading a 256 MiB file grew the mount's anonymous memory by {grown_mib:.0f} MiB"
    assert peak_kib / 1024 < 160, f"the mount's anonymous memory peaked at {peak_kib / 1024:.0f} MiB"
