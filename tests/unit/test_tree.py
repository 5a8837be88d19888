"""tree.py: sharded directories stay canonical; path-copy ops; a clone's cost is O(1)."""

from __future__ import annotations

import io
import random
import stat
from pathlib import Path

import pytest

from zerofs.dirnodes import build_dir, count_dir, dir_get, dir_put, dir_remove, iter_dir, list_dir
from zerofs.errors import ConflictError, CorruptionError, NotFoundError, UsageError
from zerofs.history import apply_change, head
from zerofs.merge import merge3
from zerofs.objects import DIR_FLAT_MAX, DIR_SHARDS, DirEntry, DirNode, FileNode, Kind, chunk_id, name_hash, scan_dir
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.services import edit
from zerofs.services.browse import iter_names
from zerofs.tree import lookup, move, place, remove, walk

P = StorePath.parse


def entry(name: bytes) -> DirEntry:
    return DirEntry(name, Kind.FILE, stat.S_IFREG | 0o644, 0, 0, 1, len(name), chunk_id(name))


def names(n: int, prefix: bytes = b"f") -> list[bytes]:
    return [prefix + b"%05d" % i for i in range(n)]


def canonical(repo: Repository, present: set[bytes]) -> bytes:
    return build_dir(Staging(repo), [entry(n) for n in present])


@pytest.mark.parametrize("n", [0, 1, DIR_FLAT_MAX, DIR_FLAT_MAX + 1, 1000, 5000])
def test_build_dir_lookup_every_name(repo: Repository, n: int) -> None:
    staging = Staging(repo)
    all_names = names(n)
    shuffled = list(all_names)
    random.Random(n).shuffle(shuffled)
    dir_id = build_dir(staging, [entry(x) for x in shuffled])
    node = staging.get_typed(dir_id, DirNode)
    assert node.n_entries == n == count_dir(staging, dir_id)
    assert node.is_sharded == (n > DIR_FLAT_MAX)
    for name in all_names:
        found = dir_get(staging, dir_id, name)
        assert found is not None
        assert found == entry(name)
    assert dir_get(staging, dir_id, b"absent") is None
    assert [e.name for e in list_dir(staging, dir_id)] == all_names
    # Order of the input does not matter: one set of entries, one id.
    assert build_dir(staging, [entry(x) for x in all_names]) == dir_id


def test_every_flat_node_within_limit(repo: Repository) -> None:
    staging = Staging(repo)
    dir_id = build_dir(staging, [entry(x) for x in names(5000)])
    stack = [dir_id]
    seen = 0
    while stack:
        node = staging.get_typed(stack.pop(), DirNode)
        if node.is_sharded:
            assert node.n_entries > DIR_FLAT_MAX
            assert all(0 <= index < DIR_SHARDS for index, _ in node.shards)
            stack.extend(shard_id for _, shard_id in node.shards)
        else:
            assert len(node.entries) <= DIR_FLAT_MAX
            seen += len(node.entries)
    assert seen == 5000


@pytest.mark.parametrize("n", [1000, 5000])
def test_remove_one_by_one_is_history_independent(repo: Repository, n: int) -> None:
    staging = Staging(repo)
    present = set(names(n))
    dir_id = build_dir(staging, [entry(x) for x in present])
    order = sorted(present)
    random.Random(n).shuffle(order)
    checkpoints = {n - 1, DIR_FLAT_MAX + 2, DIR_FLAT_MAX + 1, DIR_FLAT_MAX, DIR_FLAT_MAX - 1, 100, 0}
    checkpoints |= set(range(0, n, 500))
    for name in order:
        dir_id = dir_remove(staging, dir_id, name)
        present.discard(name)
        if len(present) in checkpoints:
            assert dir_id == canonical(repo, present), f"after removing down to {len(present)}"
            assert count_dir(staging, dir_id) == len(present)
        if len(present) <= DIR_FLAT_MAX - 5:
            break
    node = staging.get_typed(dir_id, DirNode)
    assert not node.is_sharded
    for name in present:
        assert dir_get(staging, dir_id, name) is not None
    for name in set(order) - present:
        assert dir_get(staging, dir_id, name) is None


def test_insert_one_by_one_is_history_independent(repo: Repository) -> None:
    staging = Staging(repo)
    dir_id = build_dir(staging, [])
    order = names(1200)
    random.Random(7).shuffle(order)
    present: set[bytes] = set()
    checkpoints = {1, DIR_FLAT_MAX - 1, DIR_FLAT_MAX, DIR_FLAT_MAX + 1, DIR_FLAT_MAX + 2, 600, 1200}
    for name in order:
        dir_id = dir_put(staging, dir_id, entry(name))
        present.add(name)
        if len(present) in checkpoints:
            assert dir_id == canonical(repo, present), f"after inserting up to {len(present)}"
    # Replacing an entry does not change the count.
    replaced = DirEntry(order[0], Kind.FILE, stat.S_IFREG | 0o600, 0, 0, 2, 0, chunk_id(b"other"))
    new_id = dir_put(staging, dir_id, replaced)
    assert count_dir(staging, new_id) == 1200
    assert dir_get(staging, new_id, order[0]) == replaced


def test_insert_and_remove_round_trip_around_threshold(repo: Repository) -> None:
    staging = Staging(repo)
    base = set(names(DIR_FLAT_MAX))
    dir_id = build_dir(staging, [entry(x) for x in base])
    grown = dir_put(staging, dir_id, entry(b"extra"))
    assert staging.get_typed(grown, DirNode).is_sharded
    assert dir_remove(staging, grown, b"extra") == dir_id


def _names_in_shard(index: int, count: int) -> list[bytes]:
    found = []
    i = 0
    while len(found) < count:
        name = b"s%07d" % i
        if name_hash(name)[0] & (DIR_SHARDS - 1) == index:
            found.append(name)
        i += 1
    return found


def test_insert_overflowing_a_shard_is_canonical(repo: Repository) -> None:
    """A shard that grows past DIR_FLAT_MAX must be split at its own depth, as build_dir does."""
    staging = Staging(repo)
    crowded = _names_in_shard(5, DIR_FLAT_MAX + 1)
    others = _names_in_shard(9, 10)
    present = set(crowded[:-1]) | set(others)
    dir_id = build_dir(staging, [entry(x) for x in present])
    dir_id = dir_put(staging, dir_id, entry(crowded[-1]))
    present.add(crowded[-1])
    assert dir_id == canonical(repo, present)
    for name in present:
        assert dir_get(staging, dir_id, name) is not None


def test_remove_from_a_split_shard_is_canonical(repo: Repository) -> None:
    staging = Staging(repo)
    crowded = _names_in_shard(5, DIR_FLAT_MAX + 2)
    others = _names_in_shard(9, 10)
    present = set(crowded) | set(others)
    dir_id = build_dir(staging, [entry(x) for x in present])
    for name in crowded[:3]:
        dir_id = dir_remove(staging, dir_id, name)
        present.discard(name)
        assert dir_id == canonical(repo, present)


def test_remove_missing_name(repo: Repository) -> None:
    staging = Staging(repo)
    for n in (3, 1000):
        dir_id = build_dir(staging, [entry(x) for x in names(n)])
        with pytest.raises(NotFoundError):
            dir_remove(staging, dir_id, b"absent")


# -- path operations on a real repository ----------------------------------------------


def make_tree(repo: Repository, n_files: int, where: str = "/src") -> bytes:
    """Commit a directory ``where`` with ``n_files`` (all sharing one stored file node)."""
    edit.write_file(repo, P("/seed"), io.BytesIO(b"same bytes"))
    file_entry = lookup(repo, head(repo)[1].root_id, P("/seed"))
    entries = [file_entry.renamed(x) for x in names(n_files)]

    def change(staging: Staging, root_id: bytes, now_ns: int) -> bytes:
        dir_id = build_dir(staging, entries)
        dir_entry = DirEntry(b"x", Kind.DIR, stat.S_IFDIR | 0o755, 0, 0, now_ns, 0, dir_id)
        return place(staging, root_id, P(where), dir_entry, now_ns, parents=True)

    outcome = apply_change(repo, change, message=f"make {where}", operation={"op": "test"})
    assert outcome.commit_id is not None
    return outcome.root_id


def clone_cost(repo: Repository) -> tuple[int, int]:
    """(nodes staged by a clone of /src, objects it added to the store)."""
    root_id = head(repo)[1].root_id
    staging = Staging(repo)
    source = lookup(staging, root_id, P("/src"))
    place(staging, root_id, P("/snapshots/today"), source, 1, parents=True)
    staged = len(staging)
    before = sum(1 for _ in repo.iter_blobs())
    result = edit.clone(repo, P("/src"), P("/snapshots/today"), parents=True)
    assert result.commit_id is not None
    after = sum(1 for _ in repo.iter_blobs())
    return staged, after - before


def test_clone_cost_does_not_grow_with_tree_size(tmp_path: Path) -> None:
    costs = []
    for n in (10, 5000):
        with Repository.init(tmp_path / f"r{n}", author="test@host") as repo:
            make_tree(repo, n)
            costs.append(clone_cost(repo))
            root_id = head(repo)[1].root_id
            assert lookup(repo, root_id, P("/snapshots/today")).id == lookup(repo, root_id, P("/src")).id
            assert dir_get(repo, lookup(repo, root_id, P("/snapshots/today")).id, b"f00009") is not None
    assert costs[0] == costs[1]
    staged, written = costs[0]
    assert staged <= 5
    assert written <= 5


def test_clone_of_a_sharded_tree_shares_it(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r", author="test@host") as repo:
        make_tree(repo, 1000)
        edit.clone(repo, P("/src"), P("/copy"))
        edit.write_file(repo, P("/copy/f00001"), io.BytesIO(b"changed"))
        root_id = head(repo)[1].root_id
        src = lookup(repo, root_id, P("/src/f00001"))
        copy = lookup(repo, root_id, P("/copy/f00001"))
        assert src.id != copy.id
        assert count_dir(repo, lookup(repo, root_id, P("/copy")).id) == 1000


def test_lookup_errors(repo: Repository) -> None:
    edit.write_file(repo, P("/a/file"), io.BytesIO(b"x"), parents=True)
    root_id = head(repo)[1].root_id
    with pytest.raises(NotFoundError):
        lookup(repo, root_id, P("/missing"))
    with pytest.raises(NotFoundError):
        lookup(repo, root_id, P("/a/missing/deeper"))
    with pytest.raises(ConflictError):
        lookup(repo, root_id, P("/a/file/below"))
    assert lookup(repo, root_id, P("/")).kind is Kind.DIR


def test_path_ops_reject_root_and_self(repo: Repository) -> None:
    edit.mkdir(repo, P("/a/b"), parents=True)
    root_id = head(repo)[1].root_id
    staging = Staging(repo)
    with pytest.raises(UsageError):
        remove(staging, root_id, P("/"), 1, recursive=True)
    with pytest.raises(UsageError):
        move(staging, root_id, P("/a"), P("/a/b/c"), 1)
    with pytest.raises(UsageError):
        place(staging, root_id, P("/"), lookup(staging, root_id, P("/a")), 1)


def test_walk_is_sorted_parents_first(repo: Repository) -> None:
    for path in ("/b/z", "/b/a", "/a", "/c/d/e"):
        edit.write_file(repo, P(path), io.BytesIO(path.encode()), parents=True)
    root_id = head(repo)[1].root_id
    walked = [str(p) for p, _ in walk(repo, root_id, P("/"))]
    assert walked == ["/a", "/b", "/b/a", "/b/z", "/c", "/c/d", "/c/d/e"]


def test_unchanged_subtrees_keep_their_ids(repo: Repository) -> None:
    edit.write_file(repo, P("/x/one"), io.BytesIO(b"1"), parents=True)
    edit.write_file(repo, P("/y/two"), io.BytesIO(b"2"), parents=True)
    before = lookup(repo, head(repo)[1].root_id, P("/x")).id
    edit.write_file(repo, P("/y/three"), io.BytesIO(b"3"))
    assert lookup(repo, head(repo)[1].root_id, P("/x")).id == before


def test_a_missing_path_names_close_names(repo: Repository) -> None:
    """The error for a mistyped name suggests the names that are close, and only those."""
    for name in ("/data", "/docs", "/photos"):
        edit.mkdir(repo, StorePath.parse(name))
    edit.write_file(repo, StorePath.parse("/data/report.txt"), io.BytesIO(b"x"))
    root = head(repo)[1].root_id
    with pytest.raises(NotFoundError, match=r"^no such path in the store: /dat \(did you mean /data\?\)$"):
        lookup(repo, root, StorePath.parse("/dat"))
    with pytest.raises(NotFoundError, match=r"/data/reprot.txt \(did you mean /data/report.txt\?\)$"):
        lookup(repo, root, StorePath.parse("/data/reprot.txt"))
    with pytest.raises(NotFoundError, match=r"^no such path in the store: /zzz$"):
        lookup(repo, root, StorePath.parse("/zzz/deeper"))


@pytest.mark.parametrize("n", [0, 3, DIR_FLAT_MAX, DIR_FLAT_MAX + 1, 5000])
def test_names_only_scan_matches_the_full_decode(repo: Repository, n: int) -> None:
    """browse.iter_names (shell completion) yields what iter_dir does, xattrs and kinds included."""
    rng = random.Random(n)
    kinds = [(Kind.FILE, stat.S_IFREG | 0o644), (Kind.DIR, stat.S_IFDIR | 0o755), (Kind.SYMLINK, stat.S_IFLNK | 0o777)]
    entries = []
    for name in names(n):
        kind, mode = rng.choice(kinds)
        xattrs = tuple((b"user.k%d" % i, rng.randbytes(rng.randrange(40))) for i in range(rng.randrange(3)))
        entries.append(DirEntry(name, kind, mode, 0, 0, 1, 0, chunk_id(name), xattrs))
    staging = Staging(repo)
    dir_id = build_dir(staging, entries)
    with repo.batch() as batch:
        staging.write_to(batch)
    assert list(iter_names(repo, dir_id)) == [(e.name, e.kind) for e in iter_dir(repo, dir_id)]
    assert sorted(name for name, _ in iter_names(repo, dir_id)) == names(n)


def test_names_only_scan_refuses_what_is_not_a_directory(repo: Repository) -> None:
    staging = Staging(repo)
    file_id = staging.put(FileNode(0, 0, ()))
    with repo.batch() as batch:
        staging.write_to(batch)
    with pytest.raises(CorruptionError, match="expected a directory"):
        list(iter_names(repo, file_id))
    with pytest.raises(CorruptionError, match="not a valid directory node"):
        scan_dir(b"\x01\x00\x05\x00\x00\x00")  # a flat directory claiming 5 entries and holding none


def test_merge_never_lets_a_read_beat_a_change(repo: Repository) -> None:
    """Issue #12: a side that only moved an atime (a read through a mount) takes the other side's change."""
    staging = Staging(repo)
    base = entry(b"f")
    read = base._replace(atime_ns=99)
    written = base._replace(id=chunk_id(b"new"), size_bytes=3, mtime_ns=5, ctime_ns=5)
    base_id = build_dir(staging, [base, entry(b"g")])
    changed_id = build_dir(staging, [written, entry(b"g")])
    read_id = build_dir(staging, [read, entry(b"g")])
    without_id = build_dir(staging, [entry(b"g")])
    for ours, theirs in ((read_id, changed_id), (changed_id, read_id)):
        assert dir_get(staging, merge3(staging, base_id, ours, theirs), b"f") == written
    # A removal on one side beats a read on the other, as it beats an unchanged name.
    for ours, theirs in ((read_id, without_id), (without_id, read_id)):
        assert dir_get(staging, merge3(staging, base_id, ours, theirs), b"f") is None
    # Two real changes: ours wins, as before.
    chmod = base._replace(mode=stat.S_IFREG | 0o600, ctime_ns=7)
    chmod_id = build_dir(staging, [chmod, entry(b"g")])
    assert dir_get(staging, merge3(staging, base_id, chmod_id, changed_id), b"f") == chmod


def test_changing_a_version_1_directory_writes_version_2(repo: Repository) -> None:
    """Issue #12: tree operations build version-2 nodes, so a put into an old node can hold any times."""
    staging = Staging(repo)
    old = [entry(n)._replace(atime_ns=1, ctime_ns=1) for n in (b"a", b"b")]
    old_id = staging.put(DirNode(tuple(old), 0, 2, (), 1))
    new = entry(b"c")._replace(atime_ns=5, ctime_ns=6)
    new_id = dir_put(staging, old_id, new)
    node = staging.get_typed(new_id, DirNode)
    assert node.version == 2
    assert node.entries == (*old, new)
    removed = staging.get_typed(dir_remove(staging, old_id, b"a"), DirNode)
    assert (removed.version, removed.entries) == (2, (old[1],))
    sharded = staging.get_typed(build_dir(staging, [entry(n) for n in names(DIR_FLAT_MAX + 1)]), DirNode)
    assert sharded.version == 2
    assert all(staging.get_typed(shard_id, DirNode).version == 2 for _, shard_id in sharded.shards)
