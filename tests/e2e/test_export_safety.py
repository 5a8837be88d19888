"""Export never destroys what it does not own: devices, FIFOs, sockets and host symlinks (#12).

What ``--force`` may replace: a regular file, a symlink (as a link, never
followed) and an empty directory; a directory where the store has one is
merged into. Everything else in the way stops the export with exit 4 and one
line naming it, and is left as it was. The tests run as root, the case in
which replacing /dev/full used to succeed.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_fails
from zerofs.errors import ConflictError

CONFLICT = ConflictError.exit_code


@pytest.fixture
def stored(zerofs: Any, cli_repo: Path, tmp_path: Path) -> Path:
    """A repository holding /data: a.txt, sub/c.txt and link -> a.txt."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "sub" / "c.txt").write_bytes(b"charlie\n")
    (tree / "link").symlink_to("a.txt")
    zerofs("import", str(tree), "/data")
    return cli_repo


def _device(path: Path, kind: int = stat.S_IFCHR, major: int = 1, minor: int = 7) -> os.stat_result:
    """Create a device node (char 1,7 is /dev/full) and return its stat."""
    os.mknod(path, 0o666 | kind, os.makedev(major, minor))
    return os.lstat(path)


def _same_node(path: Path, before: os.stat_result) -> None:
    """``path`` is still the very node it was: same inode, type, mode and device numbers."""
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (before.st_ino, before.st_mode, before.st_rdev)


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    """A bound Unix socket at ``tmp_path/target/sock``."""
    (tmp_path / "target").mkdir(exist_ok=True)
    path = tmp_path / "target" / "a.txt"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        yield path


@pytest.mark.parametrize("force", [False, True])
def test_file_onto_own_char_device_is_refused(stored: Path, tmp_path: Path, force: bool) -> None:
    device = tmp_path / "full"
    before = _device(device)
    args = ["export", "/data/a.txt", str(device), *(["--force"] if force else [])]
    line = assert_fails(stored, *args, expect=CONFLICT)
    assert str(device) in line
    assert "character device" in line
    _same_node(device, before)


def test_file_onto_real_dev_full_is_refused(stored: Path) -> None:
    before = os.lstat("/dev/full")
    assert stat.S_ISCHR(before.st_mode)
    line = assert_fails(stored, "export", "/data/a.txt", "/dev/full", "--force", expect=CONFLICT)
    assert "/dev/full" in line
    _same_node(Path("/dev/full"), before)
    with open("/dev/full", "rb") as full:  # still the device: it reads zeros
        assert full.read(4) == bytes(4)


def test_file_onto_block_device_is_refused(stored: Path, tmp_path: Path) -> None:
    device = tmp_path / "loop"
    before = _device(device, stat.S_IFBLK, 7, 0)
    line = assert_fails(stored, "export", "/data/a.txt", str(device), "--force", expect=CONFLICT)
    assert "block device" in line
    _same_node(device, before)


def test_file_onto_fifo_is_refused_without_blocking(stored: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    before = os.lstat(fifo)
    for force in ([], ["--force"]):
        # Nobody reads the FIFO: an export that opened it for writing would hang until the timeout.
        line = assert_fails(stored, "export", "/data/a.txt", str(fifo), *force, expect=CONFLICT)
        assert "FIFO" in line
        _same_node(fifo, before)


def test_force_into_tree_stops_at_fifo_and_device(stored: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    (target / "sub").mkdir(parents=True)
    os.mkfifo(target / "sub" / "c.txt")
    fifo = os.lstat(target / "sub" / "c.txt")
    line = assert_fails(stored, "export", "/data", str(target), "--force", expect=CONFLICT)
    assert str(target / "sub" / "c.txt") in line
    _same_node(target / "sub" / "c.txt", fifo)
    os.unlink(target / "sub" / "c.txt")
    device = _device(target / "a.txt")
    line = assert_fails(stored, "export", "/data", str(target), "--force", expect=CONFLICT)
    assert str(target / "a.txt") in line
    _same_node(target / "a.txt", device)


def test_force_into_tree_stops_at_socket(stored: Path, unix_socket: Path, tmp_path: Path) -> None:
    before = os.lstat(unix_socket)
    line = assert_fails(stored, "export", "/data", str(tmp_path / "target"), "--force", expect=CONFLICT)
    assert "socket" in line
    assert str(unix_socket) in line
    _same_node(unix_socket, before)


def test_device_at_directory_position_is_refused(stored: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    device = _device(target / "sub")
    line = assert_fails(stored, "export", "/data", str(target), "--force", expect=CONFLICT)
    assert str(target / "sub") in line
    _same_node(target / "sub", device)


def test_force_replaces_symlink_to_outside_as_a_link(zerofs: Any, stored: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    target = tmp_path / "target"
    target.mkdir()
    (target / "a.txt").symlink_to(victim)
    (target / "link").symlink_to(victim)
    zerofs("export", "/data", str(target), "--force")
    assert victim.read_bytes() == b"do not touch\n"
    assert not (target / "a.txt").is_symlink()
    assert (target / "a.txt").read_bytes() == b"alpha\n"
    assert os.readlink(target / "link") == "a.txt"


def test_top_level_symlink_to_outside(zerofs: Any, stored: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    line = assert_fails(stored, "export", "/data/a.txt", str(link), expect=CONFLICT)
    assert "--force" in line
    zerofs("export", "/data/a.txt", str(link), "--force")
    assert victim.read_bytes() == b"do not touch\n"
    assert not link.is_symlink()
    assert link.read_bytes() == b"alpha\n"


def test_top_level_symlink_to_directory_is_refused(stored: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "out"
    link.symlink_to(elsewhere)
    line = assert_fails(stored, "export", "/data", str(link), "--force", expect=CONFLICT)
    assert "symlink" in line
    assert os.listdir(elsewhere) == []
    assert os.readlink(link) == str(elsewhere)


def test_symlink_at_directory_position_inside_target(zerofs: Any, stored: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "sub").symlink_to(elsewhere)
    zerofs("export", "/data", str(target), "--force")
    assert os.listdir(elsewhere) == [], "export followed a symlink out of its target"
    assert not (target / "sub").is_symlink()
    assert (target / "sub" / "c.txt").read_bytes() == b"charlie\n"


def test_force_replaces_files_and_empty_dirs_not_full_dirs(zerofs: Any, stored: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    (target / "a.txt").mkdir(parents=True)  # an empty directory where a file goes
    (target / "sub").mkdir()
    (target / "sub" / "c.txt").write_bytes(b"old contents, longer than the new ones\n")
    zerofs("export", "/data", str(target), "--force")
    assert (target / "a.txt").read_bytes() == b"alpha\n"
    assert (target / "sub" / "c.txt").read_bytes() == b"charlie\n"
    (target / "a.txt").unlink()
    (target / "a.txt").mkdir()
    (target / "a.txt" / "mine").write_bytes(b"mine\n")
    line = assert_fails(stored, "export", "/data", str(target), "--force", expect=CONFLICT)
    assert str(target / "a.txt") in line
    assert (target / "a.txt" / "mine").read_bytes() == b"mine\n"
    assert not [n for n in os.listdir(target) if n.startswith(".zerofs")], "a name set aside was left behind"
