"""Hard-link groups in entries, and the rules export and import follow with them (issue #12).

In process, on a real repository and real host files: the scope rule and
the entry helpers, export's refusal to link names that disagree, and the
import path that stops waiting for link groups when too many names wait.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zerofs.dirnodes import dir_put
from zerofs.history import apply_change, head
from zerofs.objects import CREATED_XATTR, LINK_XATTR, DirEntry, Kind, ObjectId, is_kept_xattr
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.services import importer
from zerofs.services.exporter import export_tree
from zerofs.services.importer import import_tree
from zerofs.tree import change_dir, lookup

P = StorePath.parse
LINK = b"\x05" * 16


def entry(*xattrs: tuple[bytes, bytes]) -> DirEntry:
    return DirEntry(b"f", Kind.FILE, 0o100644, 0, 0, 5, 3, b"\x01" * 32, tuple(sorted(xattrs)))


def test_link_ids_are_entry_attributes_no_host_or_program_sees() -> None:
    plain = entry((b"user.a", b"1"))
    linked = plain.with_link(LINK)
    assert linked.link_id == LINK
    assert plain.link_id is None
    assert linked.xattrs == ((b"user.a", b"1"), (LINK_XATTR, LINK))
    assert linked.with_link(b"\x06" * 16).link_id == b"\x06" * 16
    assert linked.unlinked() == plain
    assert plain.unlinked() is plain
    assert not is_kept_xattr(LINK_XATTR)


def test_a_scope_starts_where_a_name_was_created() -> None:
    assert not entry().is_link_scope
    assert not entry().with_link(LINK).is_link_scope
    assert entry().with_created(7).is_link_scope
    assert entry((CREATED_XATTR, (7).to_bytes(8, "little"))).with_link(LINK).is_link_scope


def linked_host_tree(root: Path, names: int = 2) -> None:
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "f").write_bytes(b"shared\n")
    for n in range(1, names):
        os.link(root / "a" / "f", root / "b" / f"f{n}")
    (root / "a" / "other").write_bytes(b"other contents\n")


def set_entry(repo: Repository, path: str, new: DirEntry) -> None:
    """Put ``new`` at ``path`` as it is (no creation record: as a change that kept the link id would)."""
    store_path = P(path)

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        return change_dir(staging, root_id, store_path.parent, lambda d: dir_put(staging, d, new), now_ns)

    apply_change(repo, change, message="test", operation={"op": "test"})


def at(repo: Repository, path: str) -> DirEntry:
    return lookup(repo, head(repo)[1].root_id, P(path))


@pytest.mark.parametrize("change", ["contents", "mode", "mtime", "xattr"])
def test_export_writes_a_name_that_disagrees_with_its_group_as_a_file_of_its_own(
    repo: Repository, tmp_path: Path, change: str
) -> None:
    linked_host_tree(tmp_path / "host", names=3)
    import_tree(repo, tmp_path / "host", P("/t"))
    was = at(repo, "/t/b/f1")
    assert was.link_id is not None
    other = at(repo, "/t/a/other")
    changed = {
        "contents": was._replace(id=other.id, size_bytes=other.size_bytes),
        "mode": was._replace(mode=0o100600),
        "mtime": was._replace(mtime_ns=was.mtime_ns + 1),
        "xattr": was._replace(xattrs=tuple(sorted((*was.xattrs, (b"user.note", b"mine"))))),
    }[change]
    set_entry(repo, "/t/b/f1", changed)
    assert at(repo, "/t/b/f1").link_id == was.link_id
    result = export_tree(repo, P("/t"), tmp_path / "out")
    assert result.hardlinks == 1
    out = tmp_path / "out"
    assert os.path.samestat(os.lstat(out / "a" / "f"), os.lstat(out / "b" / "f2"))
    assert os.lstat(out / "b" / "f1").st_nlink == 1
    assert (out / "a" / "f").read_bytes() == b"shared\n"
    expected = b"other contents\n" if change == "contents" else b"shared\n"
    assert (out / "b" / "f1").read_bytes() == expected


def test_import_gives_waiting_groups_their_ids_when_too_many_names_wait(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past LINK_WAIT_ENTRIES, a group of one may get an id: harmless, it exports as a plain file."""
    monkeypatch.setattr(importer, "LINK_WAIT_ENTRIES", 1)  # any directory with a waiting name and another
    monkeypatch.setattr(importer, "STREAM_THRESHOLD_BYTES", 0)  # files stored as they are met, not in groups
    host = tmp_path / "host"
    for n in range(6):
        (host / f"d{n}").mkdir(parents=True)
        (host / f"d{n}" / "x").write_text(f"{n}\n")
        (host / f"d{n}" / "y").write_text(f"y{n}\n")
    os.link(host / "d0" / "x", host / "d5" / "x0")  # its second name comes last
    os.link(host / "d1" / "x", tmp_path / "outside")  # its second name is not in the tree
    result = import_tree(repo, host, P("/t"))
    assert result.hardlinks == 1
    assert at(repo, "/t/d1/x").link_id is not None, "it waited for a second name instead of getting its id"
    export_tree(repo, P("/t"), tmp_path / "out")
    out = tmp_path / "out"
    assert os.path.samestat(os.lstat(out / "d0" / "x"), os.lstat(out / "d5" / "x0"))
    assert os.lstat(out / "d1" / "x").st_nlink == 1
    assert sorted(os.listdir(out)) == [f"d{n}" for n in range(6)]
    assert all((out / f"d{n}" / "x").read_text() == f"{n}\n" for n in range(6))
