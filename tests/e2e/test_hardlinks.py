"""Hard links through import and export (issue #12): names of one host file come back as one file.

Every test builds its host tree with real ``ln`` / ``cp -al``, runs the CLI
as a subprocess, and checks the exported tree with ``os.lstat`` and real
tools (``tar``, ``rsync -aH``). The rule pinned throughout: names linked
inside one imported tree are linked again on export, within one scope (an
import, clone, mkdir or write target); a tree and its clone are never
linked to each other; identical but unrelated files are never linked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Zerofs
from tests.e2e.helpers import log_json
from tests.e2e.mountutil import mounted

NEWLINE = b"new\nline"
BAD_UTF8 = b"bad\xff\xfename"


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc


def make_linked_tree(root: Path) -> None:
    """Groups of 2 and 3 names across directories (odd names among them), identical unrelated files, a lone link."""
    for sub in ("a", "b", "c/deep"):
        (root / sub).mkdir(parents=True)
    (root / "a" / "two").write_bytes(b"two names\n")
    run("ln", root / "a" / "two", root / "b" / "two-again")
    (root / "a" / "three").write_bytes(b"three names\n")
    run("ln", root / "a" / "three", root / "c" / "deep" / "three")
    os.link(root / "a" / "three", os.path.join(os.fsencode(root / "b"), NEWLINE))
    odd = os.path.join(os.fsencode(root / "b"), BAD_UTF8)
    with open(odd, "wb") as f:
        f.write(b"odd names\n")
    os.link(odd, os.path.join(os.fsencode(root / "c"), BAD_UTF8))
    (root / "a" / "same-1").write_bytes(b"identical\n")
    (root / "b" / "same-2").write_bytes(b"identical\n")
    (root / "a" / "lone").write_bytes(b"its other name is outside the tree\n")
    run("ln", root / "a" / "lone", root.parent / "outside-name")
    os.chmod(root / "a" / "two", 0o640)


def inodes(root: Path) -> dict[bytes, tuple[int, int]]:
    """Relative name of every regular file below ``root`` -> (inode, link count)."""
    found = {}
    top = os.fsencode(root)
    for directory, _, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[os.path.relpath(path, top)] = (st.st_ino, st.st_nlink)
    return found


def groups(root: Path) -> set[frozenset[bytes]]:
    """The sets of names below ``root`` that are one file, and how many names each has (all below ``root``)."""
    by_inode: dict[int, set[bytes]] = {}
    for name, (ino, _) in inodes(root).items():
        by_inode.setdefault(ino, set()).add(name)
    return {frozenset(names) for names in by_inode.values()}


EXPECTED_GROUPS = {
    frozenset({b"a/two", b"b/two-again"}),
    frozenset({b"a/three", b"c/deep/three", b"b/" + NEWLINE}),
    frozenset({b"b/" + BAD_UTF8, b"c/" + BAD_UTF8}),
    frozenset({b"a/same-1"}),
    frozenset({b"b/same-2"}),
    frozenset({b"a/lone"}),
}


def import_json(zerofs: Zerofs, host: Path, path: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(zerofs("import", "--json", str(host), path).stdout)
    return result


def test_linked_names_come_back_as_one_file_and_identical_files_stay_apart(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    assert import_json(zerofs, host, "/t")["hardlinks"] == 4
    exported = json.loads(zerofs("export", "--json", "/t", str(tmp_path / "out")).stdout)
    assert (exported["files"], exported["hardlinks"]) == (10, 4)
    out = tmp_path / "out"
    assert groups(out) == EXPECTED_GROUPS
    counts = inodes(out)
    assert counts[b"a/three"][1] == counts[b"b/" + NEWLINE][1] == 3
    assert counts[b"a/two"][1] == 2
    assert counts[b"a/same-1"][1] == counts[b"b/same-2"][1] == counts[b"a/lone"][1] == 1
    assert (out / "b" / "two-again").stat().st_mode & 0o777 == 0o640
    assert (out / "c" / "deep" / "three").read_bytes() == b"three names\n"
    listing = run("tar", "-cf", tmp_path / "out.tar", "-C", out, ".").returncode == 0
    assert listing
    tar_lines = run("tar", "-tvf", tmp_path / "out.tar").stdout.splitlines()
    assert sum(" link to " in line for line in tar_lines) == 4, tar_lines


def test_rsync_sees_no_difference_between_the_host_tree_and_its_export(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """rsync -aH compares link structure too: a lost or extra link is a change it would make."""
    assert shutil.which("rsync"), "rsync is installed by `make setup` (the Makefile's package list)"
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    zerofs("export", "/t", str(tmp_path / "out"))
    itemized = run("rsync", "-aHni", "--checksum", f"{host}/", f"{tmp_path / 'out'}/").stdout
    assert itemized == "", itemized
    copy = tmp_path / "rsynced"
    run("rsync", "-aH", f"{tmp_path / 'out'}/", f"{copy}/")
    assert groups(copy) == EXPECTED_GROUPS


def test_cp_al_backups_keep_sharing_unchanged_files(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """The `cp -al` rotation: day2 shares every file day1 has, except the one replaced since."""
    backups = tmp_path / "backups"
    (backups / "day1" / "src").mkdir(parents=True)
    for n in range(5):
        (backups / "day1" / "src" / f"f{n}").write_text(f"file {n}\n")
    run("cp", "-al", backups / "day1", backups / "day2")
    (backups / "day2" / "src" / "f3").unlink()
    (backups / "day2" / "src" / "f3").write_text("changed on day 2\n")
    assert import_json(zerofs, backups, "/backups")["hardlinks"] == 4
    zerofs("export", "/backups", str(tmp_path / "out"))
    day1, day2 = tmp_path / "out" / "day1" / "src", tmp_path / "out" / "day2" / "src"
    for n in (0, 1, 2, 4):
        assert os.path.samestat(os.lstat(day1 / f"f{n}"), os.lstat(day2 / f"f{n}"))
        assert os.lstat(day1 / f"f{n}").st_nlink == 2
    assert not os.path.samestat(os.lstat(day1 / "f3"), os.lstat(day2 / "f3"))
    assert (day1 / "f3").read_text() == "file 3\n"
    assert (day2 / "f3").read_text() == "changed on day 2\n"


def test_a_clone_is_linked_within_itself_never_to_its_source(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    zerofs("clone", "/t", "/snap")
    zerofs("clone", "/t/a/three", "/single")
    zerofs("export", "/", str(tmp_path / "all"))
    everything = groups(tmp_path / "all")
    assert {frozenset(n[len(b"t/") :] for n in g) for g in everything if all(n.startswith(b"t/") for n in g)} == (
        EXPECTED_GROUPS
    )
    assert {frozenset(n[len(b"snap/") :] for n in g) for g in everything if all(n.startswith(b"snap/") for n in g)} == (
        EXPECTED_GROUPS
    )
    assert frozenset({b"single"}) in everything
    assert all(len({n.split(b"/")[0] for n in g}) == 1 for g in everything), "a name linked across scopes"
    zerofs("export", "/snap", str(tmp_path / "snap"))
    assert groups(tmp_path / "snap") == EXPECTED_GROUPS
    zerofs("export", "/single", str(tmp_path / "single"))
    assert os.lstat(tmp_path / "single").st_nlink == 1
    zerofs("export", "/t/c", str(tmp_path / "c-only"))  # its scope is /t, above the export
    assert groups(tmp_path / "c-only") == {frozenset({b"deep/three"}), frozenset({BAD_UTF8})}


def test_a_change_through_the_mount_reaches_every_name(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """A write, chmod or utime through one name of a linked file is a change of the file: every name, on export too."""
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        assert os.listxattr(m.path / "t" / "a" / "three") == []  # the link id is the store's, not the program's
        with open(m.path / "t" / "c" / "deep" / "three", "ab") as f:
            f.write(b"appended\n")
        os.chmod(m.path / "t" / "b" / "two-again", 0o600)
        os.utime(m.path / "t" / "c" / os.fsdecode(BAD_UTF8), ns=(1, 2))
    zerofs("export", "/t", str(tmp_path / "out"))
    out = tmp_path / "out"
    assert groups(out) == groups(host)
    assert (out / "b" / os.fsdecode(NEWLINE)).read_bytes() == b"three names\nappended\n"
    assert (out / "a" / "two").stat().st_mode & 0o777 == 0o600
    assert os.lstat(os.path.join(os.fsencode(out / "b"), BAD_UTF8)).st_mtime_ns == 2


def test_reimport_of_an_unchanged_linked_tree_changes_nothing(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    for path in inodes(host):  # the first read moves a new file's atime (relatime), which an import keeps
        (host / os.fsdecode(path)).read_bytes()
    zerofs("import", str(host), "/t")
    before = json.loads(zerofs("stat", "--json", "/t").stdout)["id"]
    again = import_json(zerofs, host, "/t")
    assert (again["files_unchanged"], again["hardlinks"]) == (10, 4)
    assert json.loads(zerofs("stat", "--json", "/t").stdout)["id"] == before, "new directory nodes"
    assert zerofs("diff", "HEAD~1:/t", "/t").stdout == b""
    run("ln", host / "a" / "same-1", host / "c" / "now-linked")
    grown = import_json(zerofs, host, "/t")
    assert grown["hardlinks"] == 5
    assert len(log_json(cli_repo)) == 4
    zerofs("export", "/t", str(tmp_path / "out"))
    assert groups(tmp_path / "out") == (EXPECTED_GROUPS - {frozenset({b"a/same-1"})}) | {
        frozenset({b"a/same-1", b"c/now-linked"})
    }


def test_export_force_over_an_earlier_export_keeps_the_links(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    out = tmp_path / "out"
    zerofs("export", "/t", str(out))
    (out / "a" / "three").unlink()
    (out / "a" / "three").write_bytes(b"a stranger\n")
    (out / "b" / "two-again").unlink()
    (out / "b" / "two-again").symlink_to("/etc/passwd")
    zerofs("export", "/t", str(out), expect=4)  # not empty, and no --force
    zerofs("export", "--force", "/t", str(out))
    assert groups(out) == EXPECTED_GROUPS
    assert (out / "b" / "two-again").read_bytes() == b"two names\n"
    assert not (out / "b" / "two-again").is_symlink()


def test_a_fifo_in_the_way_of_a_link_is_left_alone(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    out = tmp_path / "out"
    (out / "b").mkdir(parents=True)
    os.mkfifo(out / "b" / "two-again")
    proc = zerofs("export", "--force", "/t", str(out), expect=None)
    assert proc.returncode != 0
    assert "two-again is in the way: it is a FIFO" in str(proc.stderr)
    assert (out / "b" / "two-again").is_fifo()


@pytest.mark.parametrize("where", ["same directory", "other directory"])
def test_a_single_linked_file_imported_alone_is_a_plain_file(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs, where: str
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x\n")
    other = tmp_path / "d" / "g" if where == "same directory" else tmp_path / "g"
    run("ln", tmp_path / "d" / "f", other)
    assert import_json(zerofs, tmp_path / "d" / "f", "/f")["hardlinks"] == 0
    zerofs("export", "/f", str(tmp_path / "back"))
    assert os.lstat(tmp_path / "back").st_nlink == 1


def test_du_counts_a_linked_file_once_per_scope_as_du_does(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_linked_tree(host)
    zerofs("import", str(host), "/t")
    zerofs("clone", "/t", "/snap")
    zerofs("clone", "/t/a/three", "/single")
    # du(1) of the host tree's files, counting each inode once; the store has no directory sizes.
    distinct = {os.lstat(os.path.join(os.fsencode(host), n)).st_ino: n for n in inodes(host)}
    once = sum(os.lstat(os.path.join(os.fsencode(host), n)).st_size for n in distinct.values())
    every_name = sum(os.lstat(os.path.join(os.fsencode(host), n)).st_size for n in inodes(host))
    assert once < every_name
    rows = json.loads(zerofs("du", "--json", "/t", "/snap", "/single", "/", "/t/c").stdout)
    sizes = {row["path"]: row["apparent_bytes"] for row in rows}
    three = len(b"three names\n")
    assert sizes == {
        "/t": once,
        "/snap": once,
        "/single": three,
        "/": 2 * once + three,
        "/t/c": three + len(b"odd names\n"),
    }
