"""services/diff.py: statuses, ordering, errors, and a cost that grows with the change, not the tree."""

from __future__ import annotations

import io
import stat

import pytest

from zerofs.dirnodes import build_dir
from zerofs.errors import ConflictError, NotFoundError
from zerofs.history import apply_change
from zerofs.objects import DirEntry, DirNode, Kind, ObjectId
from zerofs.paths import RevPath, StorePath
from zerofs.repo import N, Repository, Staging
from zerofs.services import edit
from zerofs.services.diff import ADDED, DELETED, MODIFIED, diff, parse_operand
from zerofs.tree import lookup, place

P = StorePath.parse
FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755


def write(repo: Repository, path: str, data: bytes) -> None:
    edit.write_file(repo, P(path), io.BytesIO(data), parents=True)


def statuses(repo: Repository, a: str, b: str) -> list[tuple[str, str]]:
    return [(c.status, str(c.path)) for c in diff(repo, parse_operand(a), parse_operand(b)).changes]


def test_added_modified_deleted_sorted_by_path(repo: Repository) -> None:
    write(repo, "/d/keep.txt", b"same")
    write(repo, "/d/change.txt", b"old")
    write(repo, "/d/gone.txt", b"bye")
    write(repo, "/z.txt", b"z")
    edit.remove_path(repo, P("/d/gone.txt"))
    write(repo, "/d/change.txt", b"new contents")
    write(repo, "/a/new/deep.txt", b"hi")
    assert statuses(repo, "HEAD~3", "HEAD") == [
        (ADDED, "/a"),
        (ADDED, "/a/new"),
        (ADDED, "/a/new/deep.txt"),
        (MODIFIED, "/d/change.txt"),
        (DELETED, "/d/gone.txt"),
    ]
    result = diff(repo, parse_operand("HEAD~3"), parse_operand("HEAD"))
    changed = next(c for c in result.changes if c.status == MODIFIED)
    assert (changed.old_size, changed.new_size, changed.kind) == (3, 12, Kind.FILE)
    assert result.a.spec == "HEAD~3"
    assert result.b.spec == "HEAD"


def test_same_tree_and_same_directory_have_no_changes(repo: Repository) -> None:
    write(repo, "/d/x", b"x")
    edit.clone(repo, P("/d"), P("/e"))
    assert statuses(repo, "HEAD", "HEAD") == []
    assert statuses(repo, "/d", "/d") == []
    assert statuses(repo, "/d", "/e") == []
    assert statuses(repo, "HEAD~1:/d", "/e") == []


def test_paths_are_shown_in_the_second_side(repo: Repository) -> None:
    write(repo, "/snap/a", b"1")
    edit.clone(repo, P("/snap"), P("/data"))
    write(repo, "/data/a", b"2")
    write(repo, "/data/b", b"new")
    assert statuses(repo, "/snap", "/data") == [(MODIFIED, "/data/a"), (ADDED, "/data/b")]
    assert statuses(repo, "/data", "/snap") == [(MODIFIED, "/snap/a"), (DELETED, "/snap/b")]


def test_type_change_is_delete_then_add(repo: Repository) -> None:
    write(repo, "/x/inner", b"1")
    edit.remove_path(repo, P("/x"), recursive=True)
    write(repo, "/x", b"now a file")
    assert statuses(repo, "HEAD~2", "HEAD") == [(DELETED, "/x"), (ADDED, "/x"), (DELETED, "/x/inner")]


def test_mode_or_mtime_only_change_is_modified(repo: Repository) -> None:
    write(repo, "/f", b"same")
    entry = lookup(repo, repo.resolve_commit(repo.head_id()).root_id, P("/f"))

    def touch(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        changed = DirEntry(b"f", Kind.FILE, FILE_MODE, 0, 0, entry.mtime_ns + 1, entry.size_bytes, entry.id)
        return place(staging, root_id, P("/f"), changed, now_ns, replace=True)

    apply_change(repo, touch, message="touch", operation={"op": "test"})
    assert statuses(repo, "HEAD~1", "HEAD") == [(MODIFIED, "/f")]


def test_two_files_compare_as_one_entry(repo: Repository) -> None:
    write(repo, "/a", b"one")
    write(repo, "/b", b"two")
    write(repo, "/c", b"one")
    assert statuses(repo, "/a", "/b") == [(MODIFIED, "/b")]
    assert statuses(repo, "HEAD~2:/a", "/a") == []


def test_file_against_directory_is_a_conflict(repo: Repository) -> None:
    write(repo, "/d/f", b"1")
    with pytest.raises(ConflictError, match="directory") as info:
        diff(repo, parse_operand("/d"), parse_operand("/d/f"))
    assert info.value.exit_code == 4
    with pytest.raises(ConflictError):
        diff(repo, parse_operand("/d/f"), parse_operand("HEAD"))


def test_missing_path_or_revision_is_not_found(repo: Repository) -> None:
    write(repo, "/d/f", b"1")
    with pytest.raises(NotFoundError):
        diff(repo, parse_operand("HEAD~1:/d"), parse_operand("/d"))
    with pytest.raises(NotFoundError):
        diff(repo, parse_operand("HEAD~7"), parse_operand("HEAD"))


def test_parse_operand() -> None:
    assert parse_operand("HEAD~1") == RevPath("HEAD~1", StorePath())
    assert parse_operand("/x") == RevPath(None, P("/x"))
    assert parse_operand("abcd:/x") == RevPath("abcd", P("/x"))


# -- cost: only subtrees whose ids differ are read --------------------------------------


def count_dir_reads(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the directory nodes read through ``repo.get_typed`` from now on (the way tree reads them)."""
    reads = [0]
    original = repo.get_typed

    def counting(node_id: ObjectId, node_type: type[N]) -> N:
        if node_type is DirNode:
            reads[0] += 1
        return original(node_id, node_type)

    monkeypatch.setattr(repo, "get_typed", counting)
    return reads


def build_wide_tree(repo: Repository) -> int:
    """/t/dNN/eNN/fNNN: 10 x 10 x 50 = 5,000 files, plus /flat with 5,000 (a sharded dir)."""
    write(repo, "/seed", b"content")
    file_id = lookup(repo, repo.resolve_commit(repo.head_id()).root_id, P("/seed")).id

    def files(n: int) -> list[DirEntry]:
        return [DirEntry(b"f%04d" % i, Kind.FILE, FILE_MODE, 0, 0, 1, 7, file_id) for i in range(n)]

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        tops = []
        for d in range(10):
            leaves = [
                DirEntry(b"e%02d" % e, Kind.DIR, DIR_MODE, 0, 0, 1, 0, build_dir(staging, files(50))) for e in range(10)
            ]
            tops.append(DirEntry(b"d%02d" % d, Kind.DIR, DIR_MODE, 0, 0, 1, 0, build_dir(staging, leaves)))
        tree = DirEntry(b"t", Kind.DIR, DIR_MODE, 0, 0, 1, 0, build_dir(staging, tops))
        flat = DirEntry(b"flat", Kind.DIR, DIR_MODE, 0, 0, 1, 0, build_dir(staging, files(5000)))
        root_id = place(staging, root_id, P("/t"), tree, now_ns)
        return place(staging, root_id, P("/flat"), flat, now_ns)

    apply_change(repo, change, message="build", operation={"op": "test"})
    return 10 + 10 * 10 + 1


def test_one_change_deep_in_a_big_tree_reads_only_the_path_to_it(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_dirs = build_wide_tree(repo)
    write(repo, "/t/d07/e03/f0042", b"changed")
    reads = count_dir_reads(repo, monkeypatch)
    result = diff(repo, parse_operand("HEAD~1"), parse_operand("HEAD"))
    assert [(c.status, str(c.path)) for c in result.changes] == [(MODIFIED, "/t/d07/e03/f0042")]
    # /, /t, /t/d07 and /t/d07/e03 once on each side: O(depth), not the 112 directories.
    assert reads[0] <= 2 * 4, reads[0]
    assert reads[0] < n_dirs


def test_one_change_in_a_sharded_directory_reads_only_differing_shards(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_wide_tree(repo)
    flat_id = lookup(repo, repo.resolve_commit(repo.head_id()).root_id, P("/flat")).id
    assert repo.get_typed(flat_id, DirNode).is_sharded
    write(repo, "/flat/f1234", b"changed")
    reads = count_dir_reads(repo, monkeypatch)
    result = diff(repo, parse_operand("HEAD~1:/flat"), parse_operand("/flat"))
    assert [(c.status, str(c.path)) for c in result.changes] == [(MODIFIED, "/flat/f1234")]
    # 5,000 names take two shard levels: the top node and one shard per level on each side.
    assert reads[0] <= 2 * 4, reads[0]
