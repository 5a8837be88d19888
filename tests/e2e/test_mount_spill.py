"""Large writes through a real mount: read back at once, committed whole, never lost without an error.

Written data lives in a spill file until a commit stores it
(``zerofs.mount.spill``), closed on a thread of its own. These tests pin
what must hold whatever moves where: a write the host disk cannot take is
reported to the writer (by that write or the fsync that commits it), never
read back as zeros and never committed; overlapping large writes read back
at once and commit as the last of them wrote.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from tests.conftest import run_zerofs
from tests.e2e.helpers import tmpfs
from tests.e2e.mountutil import mounted

MIB = 1 << 20


def _write_blocks(path: Path, blocks: list[bytes]) -> OSError | None:
    """Write ``blocks`` in order, then fsync (the mount's commit); return the first error, if any."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for block in blocks:
            os.write(fd, block)
        os.fsync(fd)
    except OSError as exc:
        return exc
    finally:
        os.close(fd)
    return None


def _read(path: Path) -> tuple[bytes, int | None]:
    """What a read of the whole file gives before it fails, and its errno (None: it did not fail)."""
    data = bytearray()
    with open(path, "rb", buffering=0) as file:
        while True:
            try:
                piece = file.read(MIB)
            except OSError as exc:
                return bytes(data), exc.errno
            if not piece:
                return bytes(data), None
            data += piece


def test_a_large_write_the_disk_cannot_take_is_an_error(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "12m") as disk:
        repo = disk / "repo"
        run_zerofs("init", repo=repo)
        with mounted(repo, tmp_path / "m") as m:
            blocks = [os.urandom(MIB) for _ in range(32)]
            error = _write_blocks(m.path / "big", blocks)
            assert error is not None, "32 MiB written through a mount on a 12 MiB disk without an error"
            assert error.errno in (errno.ENOSPC, errno.EIO)
            # Whatever is read back is what was written, or an error: never zeros in its place.
            data, read_error = _read(m.path / "big")
            assert read_error in (None, errno.ENOSPC, errno.EIO)
            assert data == b"".join(blocks)[: len(data)]
            (m.path / "big").unlink()
            (m.path / "small").write_bytes(b"fits")
        assert run_zerofs("cat", "/small", repo=repo).stdout == b"fits"
        assert b"big" not in run_zerofs("ls", "/", repo=repo).stdout


def test_large_writes_read_back_at_once_and_commit_whole(tmp_path: Path) -> None:
    """Overlapping 1 MiB writes and reads right after them, then the commit: the last write wins everywhere."""
    repo = tmp_path / "repo"
    run_zerofs("init", repo=repo)
    model = bytearray()
    with mounted(repo, tmp_path / "m") as m:
        path = m.path / "f"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for step in range(48):
                offset = (step * 5 * MIB // 8) % (16 * MIB)  # overlaps the blocks before it
                block = os.urandom(MIB)
                os.pwrite(fd, block, offset)
                model.extend(bytes(max(0, offset - len(model))))
                model[offset : offset + MIB] = block
                low, high = max(0, offset - MIB), offset + 2 * MIB
                assert os.pread(fd, high - low, low) == bytes(model[low:high])
            os.fsync(fd)
        finally:
            os.close(fd)
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(model).digest()
    assert run_zerofs("cat", "/f", repo=repo).stdout == bytes(model)
