"""Extended attributes and POSIX ACLs through import and export (#12), checked with getfattr and getfacl.

Import keeps ``user.*`` attributes and ``system.posix_acl_access`` /
``system.posix_acl_default``, export sets them again, and ``--no-xattrs``
on either side leaves them out. The trees live under pytest's tmp_path,
on a file system with user xattrs and ACLs (checked first).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_fails
from tests.e2e.mountutil import mounted
from zerofs.errors import HostIOError


def _run(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=cwd).stdout


def _attributes(root: Path) -> str:
    """Every extended attribute (any namespace) and ACL under ``root``, as getfattr and getfacl print them."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_symlink())
    xattrs = _run("getfattr", "-d", "-m", "-", "-e", "base64", *names, cwd=root) if names else ""
    acls = _run("getfacl", "-n", ".", *names, cwd=root)
    return xattrs + acls


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree with user xattrs (text and binary), access and default ACLs, an inherited ACL and a symlink."""
    root = tmp_path / "tree"
    (root / "shared").mkdir(parents=True)
    (root / "plain.txt").write_bytes(b"no attributes\n")
    (root / "tagged.txt").write_bytes(b"tagged\n")
    try:
        _run("setfattr", "-n", "user.color", "-v", "blue", str(root / "tagged.txt"))
    except subprocess.CalledProcessError as exc:  # the test set-up is wrong, not zerofs: say so
        raise AssertionError(f"{tmp_path} has no user xattrs: {exc.stderr}") from exc
    _run("setfattr", "-n", "user.blob", "-v", "0sAAEC/w==", str(root / "tagged.txt"))
    _run("setfacl", "-m", "u:1234:rw,g:4321:r", str(root / "tagged.txt"))
    _run("setfattr", "-n", "user.kind", "-v", "directory", str(root / "shared"))
    _run("setfacl", "-m", "u:99:rwx", str(root / "shared"))
    _run("setfacl", "-d", "-m", "g:55:rx", str(root / "shared"))
    (root / "shared" / "inherited.txt").write_bytes(b"gets the default ACL\n")
    (root / "link").symlink_to("tagged.txt")
    return root


def test_round_trip_keeps_xattrs_and_acls(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    want = _attributes(tree)
    assert "user.color" in want
    assert "system.posix_acl_default" in want
    assert "user:1234:rw-" in want
    assert "default:group:55:r-x" in want
    zerofs("import", str(tree), "/tree")
    zerofs("export", "/tree", str(tmp_path / "out"))
    assert _attributes(tmp_path / "out") == want
    # A single file keeps them too.
    zerofs("export", "/tree/tagged.txt", str(tmp_path / "one.txt"))
    assert _run("getfattr", "-n", "user.color", "--only-values", str(tmp_path / "one.txt")) == "blue"
    assert "user:1234:rw-" in _run("getfacl", "-n", str(tmp_path / "one.txt"))


def _no_attributes(root: Path) -> None:
    assert _run("getfattr", "-R", "-d", "-m", "-", str(root)) == ""
    assert _run("getfacl", "-R", "-s", str(root)) == "", "an ACL beyond the mode bits"


def test_no_xattrs_on_import(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    zerofs("import", "--no-xattrs", str(tree), "/tree")
    zerofs("export", "/tree", str(tmp_path / "out"))
    _no_attributes(tmp_path / "out")
    assert (tmp_path / "out" / "tagged.txt").read_bytes() == b"tagged\n"


def test_no_xattrs_on_export(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    zerofs("import", str(tree), "/tree")
    zerofs("export", "--no-xattrs", "/tree", str(tmp_path / "out"))
    _no_attributes(tmp_path / "out")


def test_reimport_sees_changed_xattrs(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    zerofs("import", str(tree), "/tree")
    tagged = tree / "tagged.txt"
    ctime_ns = tagged.stat().st_ctime_ns
    _run("setfattr", "-n", "user.color", "-v", "green", str(tagged))
    _run("setfacl", "-x", "u:1234", str(tagged))
    assert tagged.stat().st_ctime_ns != ctime_ns, "setxattr left ctime: the host-file cache would not notice"
    result = json.loads(zerofs("import", "--json", str(tree), "/tree").stdout)
    assert result["files_unchanged"] == 2, "the changed file was taken from the cache"
    zerofs("export", "/tree", str(tmp_path / "out"))
    assert _attributes(tmp_path / "out") == _attributes(tree)
    assert "user:1234" not in _attributes(tmp_path / "out")


def test_clone_record_is_never_exported(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    zerofs("import", str(tree), "/tree")
    zerofs("clone", "/tree", "/copy")  # records zerofs.created in the clone's entry
    zerofs("export", "/copy", str(tmp_path / "out"))
    assert "zerofs" not in _run("getfattr", "-d", "-m", "-", str(tmp_path / "out"))
    assert _attributes(tmp_path / "out") == _attributes(tree)


def test_export_where_acls_cannot_be_set(zerofs: Any, cli_repo: Path, tree: Path, tmp_path: Path) -> None:
    """The zerofs mount keeps user.* attributes but not ACLs: export into it fails clearly, or leaves them out."""
    zerofs("import", str(tree), "/tree")
    # The target is a mount of another repository: what a failed export wrote into a mount of
    # this one would be committed by the next command, as every write through a mount is.
    other = tmp_path / "other-repo"
    zerofs("init", repo=other)
    with mounted(other, tmp_path / "mnt", "--commit-interval", "3600") as mount:
        target = mount.path / "restored"
        line = assert_fails(cli_repo, "export", "/tree", str(target), expect=HostIOError.exit_code)
        assert "system.posix_acl" in line
        assert "--no-xattrs" in line
        zerofs("export", "--no-xattrs", "/tree", str(mount.path / "plain"))
        assert (mount.path / "plain" / "tagged.txt").read_bytes() == b"tagged\n"
        assert os.listxattr(mount.path / "plain" / "tagged.txt") == []
