"""mount/overlay.py without a mount: changes made while a commit stores are kept for the next one (issue #12).

The mount stores a snapshot on a worker thread while the tree goes on
changing; here the same three steps (``snapshot``, ``store_plan``,
``committed``) run in order, with changes between each, and each stored root
is read back: the first holds exactly the snapshot, the second everything.
"""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

from tests.unit.conftest import NOW
from zerofs.content import ContentWriter, iter_file_bytes
from zerofs.dirnodes import iter_dir
from zerofs.mount.overlay import EMPTY_DIR, EMPTY_FILE, ROOT_INO, DirPlan, Inode, Overlay
from zerofs.objects import DirEntry, Kind, ObjectId, SymlinkNode
from zerofs.repo import Repository, Staging

Tree = dict[str, tuple[Kind, bytes, int]]


def store(overlay: Overlay, plan: DirPlan) -> dict[int, DirEntry]:
    """``store_plan`` as the mount's commit thread runs it."""
    repo = overlay.repo
    with ThreadPoolExecutor(max_workers=2) as executor, repo.batch(index_later=True) as batch:
        sink = Staging(repo, batch)
        return overlay.store_plan(plan, sink, ContentWriter(repo, sink, executor, workers=2))


def stored(repo: Repository, dir_id: ObjectId, prefix: str = "") -> Tree:
    tree: Tree = {}
    for entry in iter_dir(repo, dir_id):
        path = prefix + "/" + entry.name.decode()
        if entry.kind is Kind.DIR:
            tree[path] = (Kind.DIR, b"", stat.S_IMODE(entry.mode))
            tree.update(stored(repo, entry.id, path))
        elif entry.kind is Kind.SYMLINK:
            tree[path] = (Kind.SYMLINK, repo.get_typed(entry.id, SymlinkNode).target, 0o777)
        else:
            tree[path] = (Kind.FILE, b"".join(iter_file_bytes(repo, entry.id)), stat.S_IMODE(entry.mode))
    return tree


def child(overlay: Overlay, parent: Inode, name: bytes) -> Inode:
    kid = overlay.lookup(parent, name)
    assert kid is not None
    return kid


def new_file(overlay: Overlay, parent: Inode, name: bytes, data: bytes) -> Inode:
    entry = DirEntry(name, Kind.FILE, stat.S_IFREG | 0o644, 0, 0, NOW, 0, b"", (), NOW, NOW)
    inode = overlay.create(parent, entry, EMPTY_FILE)
    overlay.file_data(inode).write(0, data)
    overlay.wrote(inode, NOW)
    return inode


def test_changes_made_while_a_commit_stores_go_into_the_next_one(overlay: Overlay) -> None:
    repo, root = overlay.repo, overlay.root
    a, e = child(overlay, root, b"a"), child(overlay, root, b"e")
    f = child(overlay, a, b"f")
    new_file(overlay, a, b"one", b"first")
    overlay.set_entry(f, f.entry._replace(mode=stat.S_IFREG | 0o600), NOW + 1)
    before = stored(repo, root.entry.id)

    plan = overlay.snapshot()
    assert plan is not None
    assert overlay.storing == set(), "a small file's contents are copied into the plan"
    # Changes before the store runs, some under names the plan holds.
    new_file(overlay, a, b"two", b"second")
    overlay.rename(a, b"f", e, b"f2", noreplace=False)
    overlay.rmdir(a, b"c")
    symlink = DirEntry(b"l", Kind.SYMLINK, stat.S_IFLNK | 0o777, 0, 0, NOW, 1, b"", (), NOW, NOW)
    overlay.create(e, symlink, SymlinkNode(b"target"))
    results = store(overlay, plan)
    # And after it, before its end is recorded.
    dir_entry = DirEntry(b"d", Kind.DIR, stat.S_IFDIR | 0o755, 0, 0, NOW, 0, b"", (), NOW, NOW)
    overlay.create(e, dir_entry, EMPTY_DIR)
    overlay.accessed(child(overlay, a, b"b"), NOW + 5)
    overlay.committed(plan, results)

    first = results[ROOT_INO].id
    assert stored(repo, first) == {
        **before,
        "/a/one": (Kind.FILE, b"first", 0o644),
        "/a/f": (Kind.FILE, b"x", 0o600),
    }
    assert root.entry.id == first
    assert root.dirty, "the changes made meanwhile are still marked"
    assert overlay.storing == set()

    plan = overlay.snapshot()
    assert plan is not None
    results = store(overlay, plan)
    overlay.committed(plan, results)
    assert not root.dirty
    final = stored(repo, results[ROOT_INO].id)
    expected = {**before, "/a/one": (Kind.FILE, b"first", 0o644), "/a/two": (Kind.FILE, b"second", 0o644)}
    del expected["/a/f"], expected["/a/c"]
    expected["/e/f2"] = (Kind.FILE, b"x", 0o600)
    expected["/e/l"] = (Kind.SYMLINK, b"target", 0o777)
    expected["/e/d"] = (Kind.DIR, b"", 0o755)
    assert final == expected
    b_entry = next(x for x in iter_dir(repo, child(overlay, root, b"a").entry.id) if x.name == b"b")
    assert b_entry.atime_ns == NOW + 5, "an atime moved while the commit stored is stored by the next"


def test_a_change_marked_again_meanwhile_is_not_cleared(overlay: Overlay) -> None:
    # The same name changed before the snapshot and again while it stores: the second change must survive.
    repo, root = overlay.repo, overlay.root
    a = child(overlay, root, b"a")
    f = child(overlay, a, b"f")
    overlay.set_entry(f, f.entry._replace(mode=stat.S_IFREG | 0o600), NOW + 1)
    plan = overlay.snapshot()
    assert plan is not None
    overlay.set_entry(f, f.entry._replace(mode=stat.S_IFREG | 0o640), NOW + 2)
    overlay.committed(plan, store(overlay, plan))
    plan = overlay.snapshot()
    assert plan is not None, "the second chmod was forgotten"
    results = store(overlay, plan)
    overlay.committed(plan, results)
    assert stored(repo, results[ROOT_INO].id)["/a/f"] == (Kind.FILE, b"x", 0o640)


def test_a_failed_commit_keeps_its_changes_and_counts(overlay: Overlay) -> None:
    a = child(overlay, overlay.root, b"a")
    new_file(overlay, a, b"one", b"first")
    summary = overlay.summary()
    plan = overlay.snapshot()
    assert plan is not None
    new_file(overlay, a, b"two", b"second")
    overlay.abandoned()
    assert overlay.storing == set()
    assert overlay.summary() == "2 created (first: created /a/one)"
    assert summary == "created /a/one"
    plan = overlay.snapshot()
    assert plan is not None
    results = store(overlay, plan)
    overlay.committed(plan, results)
    tree = stored(overlay.repo, results[ROOT_INO].id)
    assert (tree["/a/one"][1], tree["/a/two"][1]) == (b"first", b"second")


def test_a_directory_renamed_while_it_is_stored_lands_under_its_old_name_first(overlay: Overlay) -> None:
    repo, root = overlay.repo, overlay.root
    a = child(overlay, root, b"a")
    b = child(overlay, a, b"b")
    new_file(overlay, b, b"x", b"inside")
    plan = overlay.snapshot()
    assert plan is not None
    overlay.rename(a, b"b", a, b"b2", noreplace=False)
    results = store(overlay, plan)
    overlay.committed(plan, results)
    first = stored(repo, results[ROOT_INO].id)
    assert first["/a/b/x"] == (Kind.FILE, b"inside", 0o644)
    assert not any(path.startswith("/a/b2") for path in first)
    plan = overlay.snapshot()
    assert plan is not None
    results = store(overlay, plan)
    overlay.committed(plan, results)
    final = stored(repo, results[ROOT_INO].id)
    assert final["/a/b2/x"] == (Kind.FILE, b"inside", 0o644)
    assert not any(path.startswith("/a/b/") or path == "/a/b" for path in final)


def test_a_file_written_while_its_copy_is_stored_is_stored_again(overlay: Overlay) -> None:
    repo, root = overlay.repo, overlay.root
    a = child(overlay, root, b"a")
    small = new_file(overlay, a, b"small", b"v1")
    big = new_file(overlay, a, b"big", b"b" * 100_000)  # past MEMORY_SPILL: in a spill file, not copied
    plan = overlay.snapshot()
    assert plan is not None
    assert overlay.storing == {big.ino}
    overlay.file_data(small).write(0, b"v2!")
    overlay.wrote(small, NOW + 1)
    results = store(overlay, plan)
    overlay.committed(plan, results)
    first = stored(repo, results[ROOT_INO].id)
    assert (first["/a/small"][1], first["/a/big"][1]) == (b"v1", b"b" * 100_000)
    assert root.dirty
    assert overlay.file_data(small).read(0, 10) == b"v2!"
    plan = overlay.snapshot()
    assert plan is not None
    results = store(overlay, plan)
    overlay.committed(plan, results)
    assert not root.dirty
    assert stored(repo, results[ROOT_INO].id)["/a/small"][1] == b"v2!"
