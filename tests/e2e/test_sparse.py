"""Sparse files (#12): holes cost the repository nothing, export recreates them, the mount reads them as zeros.

A run of zeros is cut by FastCDC into chunks of the maximum size, all one
chunk stored once; export seeks past such chunks and the mount answers them
with zeros, both without reading the stored chunk.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import repo_secrets
from tests.damage import chunk_ids_of, flip_byte
from tests.e2e.mountutil import mounted
from zerofs.chunking import ChunkParams
from zerofs.content import zero_chunk_id
from zerofs.errors import CorruptionError
from zerofs.repo import Repository

GIB = 1 << 30
MIB = 1 << 20
BLOCK = 64 << 10


def _sparse_file(path: Path, size: str, offsets: list[int]) -> dict[int, bytes]:
    """A file of ``size`` made by truncate(1), with random 64 KiB blocks written by dd(1) at ``offsets``."""
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    written = {}
    for offset in offsets:
        block = os.urandom(BLOCK)
        subprocess.run(
            ["dd", f"of={path}", "bs=64K", f"seek={offset // BLOCK}", "conv=notrunc", "status=none"],
            input=block,
            check=True,
        )
        written[offset] = block
    return written


def _du_bytes(path: Path) -> int:
    """Disk space used by ``path`` (a file or tree) as du(1) counts it."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def test_sparse_file_round_trip(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    host = tmp_path / "big"
    _sparse_file(host, "1G", [0, 100 * BLOCK, 5000 * BLOCK, GIB - BLOCK])
    assert _du_bytes(host) < MIB
    zerofs("import", str(host), "/big")
    assert _du_bytes(cli_repo) < 4 * MIB, "the repository stored the holes"
    out = tmp_path / "out"
    zerofs("export", "/big", str(out))
    assert out.stat().st_size == GIB
    assert out.stat().st_blocks * 512 < 4 * MIB, "export wrote the holes"
    subprocess.run(["cmp", str(host), str(out)], check=True)


def test_holes_at_start_and_end_and_odd_size(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    host = tmp_path / "odd"
    _sparse_file(host, "50000001", [20 * BLOCK])  # a hole first, then data, then a hole to an odd size
    zerofs("import", str(host), "/odd")
    out = tmp_path / "out"
    zerofs("export", "/odd", str(out))
    assert out.stat().st_size == 50_000_001
    assert out.stat().st_blocks * 512 < 2 * MIB
    subprocess.run(["cmp", str(host), str(out)], check=True)
    dense = tmp_path / "dense"  # a file of zeros written out, not sparse: same contents, same store
    subprocess.run(["dd", "if=/dev/zero", f"of={dense}", "bs=1M", "count=48", "status=none"], check=True)
    before = _du_bytes(cli_repo)
    zerofs("import", str(dense), "/dense")
    assert _du_bytes(cli_repo) - before < MIB, "zeros written out were stored again"


def test_mount_reads_holes_without_reading_the_store(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    host = tmp_path / "sparse"
    written = _sparse_file(host, "64M", [10 * BLOCK, 900 * BLOCK])
    zerofs("import", str(host), "/sparse")
    with Repository.open(cli_repo, readonly=True, **repo_secrets()) as repo:
        zero_id = zero_chunk_id(ChunkParams().max_bytes, repo.chunk_id)  # keyed in an encrypted repository
    assert zero_id in chunk_ids_of(cli_repo, "/sparse")
    # Damage the stored chunk of zeros: reading it would fail, so a read that succeeds did not read it.
    flip_byte(cli_repo, zero_id)
    zerofs("cat", "/sparse", expect=CorruptionError.exit_code)
    with mounted(cli_repo, tmp_path / "mnt") as mount:
        with open(mount.path / "sparse", "rb") as handle:
            assert os.pread(handle.fileno(), 4 * MIB, 32 * MIB) == bytes(4 * MIB)
            for offset, block in written.items():
                assert os.pread(handle.fileno(), BLOCK, offset) == block
            contents = handle.read()
        assert contents == host.read_bytes()


def test_sparse_file_made_through_the_mount(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    with mounted(cli_repo, tmp_path / "mnt") as mount:
        made = mount.path / "made"
        subprocess.run(["truncate", "-s", "256M", str(made)], check=True)
        with open(made, "r+b") as handle:
            os.pwrite(handle.fileno(), b"middle", 100 * MIB)
        mount.umount()
    assert _du_bytes(cli_repo) < 4 * MIB
    out = tmp_path / "out"
    zerofs("export", "/made", str(out))
    assert out.stat().st_size == 256 * MIB
    assert out.stat().st_blocks * 512 < 2 * MIB
    with open(out, "rb") as handle:
        assert os.pread(handle.fileno(), 8, 100 * MIB - 1) == b"\0middle\0"
