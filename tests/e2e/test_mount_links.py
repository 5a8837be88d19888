"""Hard links through the mount (issue #12): link(2) with POSIX semantics, kept by commits, remounts and exports.

Every test works through a real mount with os calls and real tools (``ln``,
``cp -a``, ``tar``, ``rsync -aH``) and checks what the store kept with the
CLI. The rules pinned: one file, several names, one inode number and a link
count that follows link and unlink; a change through any name is a change
of every name; names stay linked after a commit and a remount; a link into
another scope (a clone) is EXDEV, as across btrfs subvolumes; a clone of a
tree holding links is linked within itself, never to its source.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tests.conftest import Zerofs
from tests.e2e.mountutil import eventually, mounted
from tests.e2e.test_hardlinks import BAD_UTF8, NEWLINE, groups, make_linked_tree, run


def fails_with(call: object, *args: object) -> str:
    try:
        call(*args)  # type: ignore[operator]
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    raise AssertionError("the call succeeded")


def test_link_gives_one_file_two_names(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Same inode, link count 2, a write through one name read through the other, unlink leaves the rest."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        (m.path / "d").mkdir()
        (m.path / "f").write_bytes(b"one\n")
        before = os.lstat(m.path / "f")
        os.link(m.path / "f", m.path / "d" / "g")
        f, g = os.lstat(m.path / "f"), os.lstat(m.path / "d" / "g")
        assert f.st_ino == g.st_ino
        assert (f.st_nlink, g.st_nlink) == (2, 2)
        assert f.st_ctime_ns >= before.st_ctime_ns
        with open(m.path / "d" / "g", "ab") as out:
            out.write(b"two\n")
        assert (m.path / "f").read_bytes() == b"one\ntwo\n"
        os.chmod(m.path / "f", 0o600)
        assert os.lstat(m.path / "d" / "g").st_mode & 0o777 == 0o600
        run("ln", m.path / "f", m.path / "h")
        assert os.lstat(m.path / "d" / "g").st_nlink == 3
        assert sorted(os.listdir(m.path)) == ["d", "f", "h"]
        os.unlink(m.path / "f")
        assert os.lstat(m.path / "h").st_nlink == 2
        assert (m.path / "d" / "g").read_bytes() == b"one\ntwo\n"
        assert fails_with(os.link, m.path / "d", m.path / "d2") == "EPERM"
        assert fails_with(os.link, m.path / "h", m.path / "d" / "g") == "EEXIST"
        assert fails_with(os.link, m.path / "missing", m.path / "x") == "ENOENT"
    # Committed and read back: the two names are one file in the store and on export.
    zerofs("export", "/", str(tmp_path / "out"))
    assert groups(tmp_path / "out") == {frozenset({b"d/g", b"h"})}
    assert (tmp_path / "out" / "h").stat().st_mode & 0o777 == 0o600
    with mounted(cli_repo, tmp_path / "mnt") as m:
        g, h = os.lstat(m.path / "d" / "g"), os.lstat(m.path / "h")
        assert g.st_ino == h.st_ino
        assert g.st_nlink == 2
        with open(m.path / "h", "ab") as out:
            out.write(b"three\n")
        assert (m.path / "d" / "g").read_bytes() == b"one\ntwo\nthree\n"
    assert zerofs("cat", "/d/g").stdout == b"one\ntwo\nthree\n"


def test_an_unlinked_open_file_with_another_name_keeps_its_count(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """fstat of an open file counts the names left: 1 after one of two goes, 0 after both."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        (m.path / "a").write_bytes(b"x")
        os.link(m.path / "a", m.path / "b")
        fd = os.open(m.path / "a", os.O_RDWR)
        try:
            os.unlink(m.path / "a")
            assert os.fstat(fd).st_nlink == 1
            os.unlink(m.path / "b")
            assert os.fstat(fd).st_nlink == 0
            assert os.pread(fd, 1, 0) == b"x"
        finally:
            os.close(fd)
        assert os.listdir(m.path) == []


def test_renames_move_one_name_and_rename_onto_a_partner_does_nothing(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """POSIX: rename of a name onto another name of the same file succeeds and changes nothing."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        (m.path / "sub").mkdir()
        (m.path / "a").write_bytes(b"data")
        os.link(m.path / "a", m.path / "b")
        os.rename(m.path / "a", m.path / "b")
        assert sorted(os.listdir(m.path)) == ["a", "b", "sub"]
        os.rename(m.path / "a", m.path / "sub" / "moved")
        os.rename(m.path / "sub", m.path / "sub2")
        assert os.lstat(m.path / "sub2" / "moved").st_ino == os.lstat(m.path / "b").st_ino
        assert os.lstat(m.path / "b").st_nlink == 2
        (m.path / "c").write_bytes(b"other")
        os.rename(m.path / "c", m.path / "b")  # replaces one name of the linked file
        assert os.lstat(m.path / "sub2" / "moved").st_nlink == 1
        assert (m.path / "sub2" / "moved").read_bytes() == b"data"
    zerofs("export", "/", str(tmp_path / "out"))
    assert (tmp_path / "out" / "b").read_bytes() == b"other"
    assert (tmp_path / "out" / "sub2" / "moved").read_bytes() == b"data"


def test_imported_links_show_as_one_inode_and_change_together(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Names linked on the host are one inode in the mount, with the host's link count, whichever is looked up first."""
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        t = m.path / "t"
        deep = os.lstat(t / "c" / "deep" / "three")  # the other names are in directories not yet looked up
        assert deep.st_nlink == 3
        assert os.lstat(os.path.join(os.fsencode(t / "b"), NEWLINE)).st_ino == deep.st_ino
        assert os.lstat(t / "a" / "three").st_ino == deep.st_ino
        assert os.lstat(t / "a" / "lone").st_nlink == 1  # its other name was outside the imported tree
        assert os.lstat(t / "a" / "same-1").st_ino != os.lstat(t / "b" / "same-2").st_ino
        with open(t / "c" / "deep" / "three", "ab") as f:
            f.write(b"appended\n")
        os.chmod(t / "b" / "two-again", 0o600)
        assert (t / "a" / "three").read_bytes() == b"three names\nappended\n"
        assert os.lstat(t / "a" / "two").st_mode & 0o777 == 0o600
    zerofs("export", "/t", str(tmp_path / "out"))
    assert groups(tmp_path / "out") == groups(host)
    assert (tmp_path / "out" / "a" / "three").read_bytes() == b"three names\nappended\n"
    assert (tmp_path / "out" / "b" / "two-again").stat().st_mode & 0o777 == 0o600


def test_links_never_cross_a_scope_and_a_clone_stays_frozen(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """link(2) or rename into another scope (a clone) is EXDEV; a clone's names are linked within it only."""
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    zerofs("clone", "/t", "/snap")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        t, snap = m.path / "t", m.path / "snap"
        assert os.lstat(t / "a" / "three").st_ino != os.lstat(snap / "a" / "three").st_ino
        assert os.lstat(snap / "a" / "three").st_nlink == 3
        assert fails_with(os.link, t / "a" / "two", snap / "two") == "EXDEV"
        assert fails_with(os.rename, t / "a" / "two", snap / "two") == "EXDEV"
        assert fails_with(os.rename, t / "c", snap / "c2") == "EXDEV"  # holds some names of a group
        os.rename(t / "b", t / "b2")  # within the scope: fine
        with open(t / "a" / "three", "ab") as f:
            f.write(b"changed in t\n")
        assert (snap / "c" / "deep" / "three").read_bytes() == b"three names\n"
        run("mv", t / "a" / "two", snap / "two")  # mv copies across EXDEV
        assert os.lstat(snap / "two").st_nlink == 1
    zerofs("export", "/snap", str(tmp_path / "snap"))
    assert frozenset({b"a/three", b"c/deep/three", b"b/" + NEWLINE}) in groups(tmp_path / "snap")


def test_cp_a_tar_and_rsync_keep_links_into_and_out_of_the_mount(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """The tools users back up with: what they link on the way in is linked on the way out."""
    host = tmp_path / "host"
    make_linked_tree(host)
    expected = groups(host)
    with mounted(cli_repo, tmp_path / "mnt") as m:
        run("cp", "-a", host, m.path / "cp")
        run("tar", "-C", host, "-cf", tmp_path / "t.tar", ".")
        (m.path / "tar").mkdir()
        run("tar", "-C", m.path / "tar", "-xf", tmp_path / "t.tar")
        run("rsync", "-aH", f"{host}/", f"{m.path / 'rsync'}/")
        for name in ("cp", "tar", "rsync"):
            assert groups(m.path / name) == expected, name
        run("cp", "-a", m.path / "tar", tmp_path / "back")
        assert groups(tmp_path / "back") == expected
    for name in ("cp", "tar", "rsync"):
        zerofs("export", f"/{name}", str(tmp_path / f"out-{name}"))
        assert groups(tmp_path / f"out-{name}") == expected, name
    check = run("rsync", "-aHn", "--itemize-changes", f"{host}/", f"{tmp_path / 'out-tar'}/")
    assert check.stdout == ""
    assert os.fsencode(BAD_UTF8) in os.listdir(os.fsencode(tmp_path / "out-cp" / "c"))


def test_a_cli_change_to_one_linked_name_shows_in_the_mount(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """`zerofs write` onto one name of a linked file replaces that name alone; the mount follows within a second."""
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        t = m.path / "t"
        assert os.lstat(t / "a" / "three").st_nlink == 3
        zerofs("write", "/t/a/three", input=b"replaced\n")

        def followed() -> None:
            assert (t / "a" / "three").read_bytes() == b"replaced\n"

        eventually(followed, timeout=5)
        assert os.lstat(t / "a" / "three").st_nlink == 1
        assert os.lstat(t / "c" / "deep" / "three").st_nlink == 2
        assert (t / "c" / "deep" / "three").read_bytes() == b"three names\n"
        with open(t / "c" / "deep" / "three", "ab") as f:
            f.write(b"more\n")
        assert Path(os.fsdecode(os.path.join(os.fsencode(t / "b"), NEWLINE))).read_bytes() == b"three names\nmore\n"
    zerofs("export", "/t", str(tmp_path / "out"))
    out = groups(tmp_path / "out")
    assert frozenset({b"c/deep/three", b"b/" + NEWLINE}) in out
    assert frozenset({b"a/three"}) in out
