"""mount/overlay.py without a mount: each operation, the commit marks, and a model of random operations.

The overlay is plain Python over a real LMDB repository in ``tmp_path``:
every test changes the live tree through the overlay's operations (as
``mount/fs.py`` calls them), commits it the way the mount does (``snapshot``,
``store_plan``, ``committed``) and reads the stored tree back.
"""

from __future__ import annotations

import errno
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import AUTHOR
from tests.unit.conftest import NOW
from tests.unit.test_overlay_commit import Tree, child, new_file, store, stored
from zerofs.dirnodes import dir_get
from zerofs.mount.overlay import EMPTY_DIR, ROOT_INO, FsError, Inode, Overlay
from zerofs.objects import DirEntry, Kind
from zerofs.repo import Repository


def commit(overlay: Overlay) -> Tree:
    """Commit what changed, as the mount does; return the stored tree."""
    plan = overlay.snapshot()
    assert plan is not None, "a change left no mark"
    results = store(overlay, plan)
    overlay.committed(plan, results)
    assert results[ROOT_INO].id == overlay.root.entry.id
    assert not overlay.root.dirty
    assert overlay.snapshot() is None, "a committed change is still marked"
    return stored(overlay.repo, overlay.root.entry.id)


def mkdir(overlay: Overlay, parent: Inode, name: bytes) -> Inode:
    entry = DirEntry(name, Kind.DIR, stat.S_IFDIR | 0o755, 0, 0, NOW, 0, b"", (), NOW, NOW)
    return overlay.create(parent, entry, EMPTY_DIR)


def errno_of(call: object) -> int:
    assert callable(call)
    with pytest.raises(FsError) as caught:
        call()
    return caught.value.errno


def test_create_lookup_write_and_read_back(overlay: Overlay) -> None:
    root = overlay.root
    e = child(overlay, root, b"e")
    assert overlay.lookup(e, b"new") is None
    inode = new_file(overlay, e, b"new", b"hello")
    assert overlay.lookup(e, b"new") is inode
    assert overlay.file_data(inode).read(0, 100) == b"hello"
    assert [name for name, _ in overlay.children(e)] == [b"new"]
    assert errno_of(lambda: new_file(overlay, e, b"new", b"again")) == errno.EEXIST
    assert commit(overlay)["/e/new"] == (Kind.FILE, b"hello", 0o644)


def test_names_the_store_cannot_hold_are_refused(overlay: Overlay) -> None:
    e = child(overlay, overlay.root, b"e")
    for name in (b"", b".", b"..", b"a/b", b"nul\0"):
        assert errno_of(lambda name=name: mkdir(overlay, e, name)) == errno.EINVAL
    assert errno_of(lambda: mkdir(overlay, e, b"x" * 256)) == errno.ENAMETOOLONG
    assert errno_of(lambda: overlay.lookup(child(overlay, child(overlay, overlay.root, b"a"), b"f"), b"x")) == (
        errno.ENOTDIR
    )
    assert overlay.snapshot() is None, "a refused operation marked nothing"


def test_write_past_the_end_and_truncate_both_ways(overlay: Overlay) -> None:
    a = child(overlay, overlay.root, b"a")
    f = child(overlay, a, b"f")  # stored: b"x"
    data = overlay.file_data(f)
    data.write(4, b"tail")
    overlay.wrote(f, NOW + 1)
    assert data.read(0, 100) == b"x\0\0\0tail"
    assert f.entry.size_bytes == 8
    assert commit(overlay)["/a/f"] == (Kind.FILE, b"x\0\0\0tail", 0o644)
    data = overlay.file_data(f)
    data.truncate(2)
    overlay.wrote(f, NOW + 2)
    assert commit(overlay)["/a/f"] == (Kind.FILE, b"x\0", 0o644)
    data = overlay.file_data(f)
    data.truncate(5)
    overlay.wrote(f, NOW + 3)
    assert f.entry.size_bytes == 5
    assert commit(overlay)["/a/f"] == (Kind.FILE, b"x\0\0\0\0", 0o644)


def test_mkdir_rmdir_and_unlink(overlay: Overlay) -> None:
    root = overlay.root
    a, e = child(overlay, root, b"a"), child(overlay, root, b"e")
    d = mkdir(overlay, e, b"d")
    new_file(overlay, d, b"x", b"1")
    assert errno_of(lambda: overlay.rmdir(e, b"d")) == errno.ENOTEMPTY
    assert errno_of(lambda: overlay.rmdir(a, b"f")) == errno.ENOTDIR
    assert errno_of(lambda: overlay.unlink(e, b"d")) == errno.EISDIR
    assert errno_of(lambda: overlay.unlink(e, b"missing")) == errno.ENOENT
    assert errno_of(lambda: overlay.rmdir(e, b"missing")) == errno.ENOENT
    tree = commit(overlay)
    assert tree["/e/d"] == (Kind.DIR, b"", 0o755)
    assert tree["/e/d/x"] == (Kind.FILE, b"1", 0o644)
    overlay.unlink(d, b"x")
    overlay.rmdir(e, b"d")
    overlay.unlink(a, b"f")
    overlay.rmdir(a, b"b")
    assert overlay.lookup(a, b"f") is None
    tree = commit(overlay)
    assert sorted(tree) == ["/a", "/a/c", "/e"]


def test_rename_moves_replaces_and_refuses(overlay: Overlay) -> None:
    root = overlay.root
    a, e = child(overlay, root, b"a"), child(overlay, root, b"e")
    new_file(overlay, e, b"g", b"gee")
    assert errno_of(lambda: overlay.rename(a, b"f", e, b"g", noreplace=True)) == errno.EEXIST
    assert errno_of(lambda: overlay.rename(a, b"f", a, b"b", noreplace=False)) == errno.EISDIR
    assert errno_of(lambda: overlay.rename(a, b"b", e, b"g", noreplace=False)) == errno.ENOTDIR
    assert errno_of(lambda: overlay.rename(a, b"missing", e, b"z", noreplace=False)) == errno.ENOENT
    new_file(overlay, child(overlay, a, b"c"), b"inside", b"i")
    assert errno_of(lambda: overlay.rename(a, b"b", a, b"c", noreplace=False)) == errno.ENOTEMPTY
    f = child(overlay, a, b"f")
    overlay.rename(a, b"f", e, b"g", noreplace=False)  # a file replaces a file
    assert overlay.lookup(e, b"g") is f
    overlay.rename(a, b"c", e, b"c2", noreplace=False)  # a directory moves with what is inside it
    tree = commit(overlay)
    assert tree["/e/g"] == (Kind.FILE, b"x", 0o644)
    assert tree["/e/c2/inside"] == (Kind.FILE, b"i", 0o644)
    assert "/a/f" not in tree
    assert "/a/c" not in tree


def test_hard_links_share_one_inode_and_its_contents(overlay: Overlay) -> None:
    root = overlay.root
    a, e = child(overlay, root, b"a"), child(overlay, root, b"e")
    f = child(overlay, a, b"f")
    overlay.link(f, a, b"f2", NOW + 1)
    assert overlay.lookup(a, b"f2") is f
    assert errno_of(lambda: overlay.link(child(overlay, a, b"b"), a, b"dir", NOW)) == errno.EPERM
    assert errno_of(lambda: overlay.link(f, a, b"c", NOW)) == errno.EEXIST
    assert errno_of(lambda: overlay.link(f, e, b"away", NOW)) == errno.EXDEV  # /e is a scope of its own
    overlay.file_data(f).write(0, b"both")
    overlay.wrote(f, NOW + 2)
    tree = commit(overlay)
    assert tree["/a/f"] == tree["/a/f2"] == (Kind.FILE, b"both", 0o644)
    names = [dir_get(overlay.repo, child(overlay, root, b"a").entry.id, name) for name in (b"f", b"f2")]
    link_ids = {entry.link_id for entry in names if entry is not None}
    assert len(link_ids) == 1
    assert None not in link_ids
    overlay.unlink(a, b"f")
    assert overlay.file_data(f).read(0, 10) == b"both", "the other name still holds the file"
    tree = commit(overlay)
    assert "/a/f" not in tree
    assert tree["/a/f2"] == (Kind.FILE, b"both", 0o644)


def test_a_change_marks_its_ancestors_and_leaves_the_rest_as_stored(overlay: Overlay) -> None:
    root = overlay.root
    a, e = child(overlay, root, b"a"), child(overlay, root, b"e")
    b = child(overlay, a, b"b")
    untouched = (e.entry.id, child(overlay, a, b"c").entry.id)
    assert overlay.snapshot() is None, "a lookup marks nothing"
    new_file(overlay, b, b"deep", b"d")
    assert b"deep" in b.changed
    assert b"b" in a.changed
    assert b"a" in root.changed
    assert not e.dirty
    assert not e.changed
    commit(overlay)
    assert not (b.changed)
    assert not (a.changed)
    assert not (root.changed)
    assert (e.entry.id, child(overlay, a, b"c").entry.id) == untouched, "an unchanged subtree keeps its id"


# --------------------------------------------------------------------------
# Random operations against a dict model

NAMES = (b"p", b"q", b"r")
Model = dict[tuple[bytes, ...], bytes | None]
"""Path -> a file's contents, or None for a directory."""


def operations(model: Model) -> st.SearchStrategy[tuple[object, ...]]:
    """One operation on the tree the model holds now: mostly on names that exist, or new names in directories."""
    dirs = [(), *sorted(path for path, data in model.items() if data is None)]
    files = sorted(path for path, data in model.items() if data is not None)
    in_a_dir = st.tuples(st.sampled_from(dirs), st.sampled_from(NAMES)).map(lambda pair: (*pair[0], pair[1]))
    choices = [
        st.tuples(st.just("mkdir"), in_a_dir),
        st.tuples(st.just("write"), in_a_dir, st.integers(0, 12), st.binary(max_size=16)),
        st.tuples(st.just("commit")),
    ]
    if files:
        choices += [
            st.tuples(st.just("truncate"), st.sampled_from(files), st.integers(0, 20)),
            st.tuples(st.just("unlink"), st.sampled_from(files)),
        ]
    if model:
        existing = st.sampled_from(sorted(model))
        choices += [st.tuples(st.just("rmdir"), existing), st.tuples(st.just("rename"), existing, in_a_dir)]
    return st.one_of(choices)


def resolve(overlay: Overlay, path: tuple[bytes, ...]) -> Inode | None:
    inode: Inode | None = overlay.root
    for name in path:
        if inode is None or not inode.is_dir:
            return None
        inode = overlay.lookup(inode, name)
    return inode


def is_dir(model: Model, path: tuple[bytes, ...]) -> bool:
    return path == () or (path in model and model[path] is None)


def has_children(model: Model, path: tuple[bytes, ...]) -> bool:
    return any(p[: len(path)] == path and len(p) > len(path) for p in model)


def apply(overlay: Overlay, model: Model, operation: tuple[object, ...]) -> None:
    """Apply one operation to the overlay and the model, if the model says it is valid (else skip it)."""
    kind = operation[0]
    if kind == "commit":
        if overlay.root.dirty:
            commit(overlay)
        return
    path = operation[1]
    assert isinstance(path, tuple)
    parent = resolve(overlay, path[:-1]) if is_dir(model, path[:-1]) else None
    if parent is None:
        return
    name, exists = path[-1], path in model
    if kind == "mkdir" and not exists:
        mkdir(overlay, parent, name)
        model[path] = None
    elif kind == "write" and model.get(path, b"") is not None:
        offset, data = operation[2], operation[3]
        assert isinstance(offset, int)
        assert isinstance(data, bytes)
        inode = resolve(overlay, path) if exists else new_file(overlay, parent, name, b"")
        assert inode is not None
        overlay.file_data(inode).write(offset, data)
        overlay.wrote(inode, NOW)
        old = model.get(path, b"")
        assert old is not None
        old = old.ljust(offset, b"\0")
        model[path] = old[:offset] + data + old[offset + len(data) :]
    elif kind == "truncate" and exists and model[path] is not None:
        size, inode = operation[2], resolve(overlay, path)
        assert isinstance(size, int)
        assert inode is not None
        overlay.file_data(inode).truncate(size)
        overlay.wrote(inode, NOW)
        model[path] = (model[path] or b"")[:size].ljust(size, b"\0")
    elif kind == "unlink" and exists and model[path] is not None:
        overlay.unlink(parent, name)
        del model[path]
    elif kind == "rmdir" and exists and model[path] is None and not has_children(model, path):
        overlay.rmdir(parent, name)
        del model[path]
    elif kind == "rename" and exists:
        target = operation[2]
        assert isinstance(target, tuple)
        rename(overlay, model, path, target)


def rename(overlay: Overlay, model: Model, source: tuple[bytes, ...], target: tuple[bytes, ...]) -> None:
    if target[: len(source)] == source or not is_dir(model, target[:-1]):
        return  # into itself (the kernel refuses it before the overlay sees it), or no such directory
    if target in model and (is_dir(model, source) != is_dir(model, target) or has_children(model, target)):
        return
    old_parent, new_parent = resolve(overlay, source[:-1]), resolve(overlay, target[:-1])
    assert old_parent is not None
    assert new_parent is not None
    overlay.rename(old_parent, source[-1], new_parent, target[-1], noreplace=False)
    model.pop(target, None)
    for path in sorted(p for p in model if p[: len(source)] == source):
        model[target + path[len(source) :]] = model.pop(path)


def expected_tree(model: Model) -> Tree:
    tree: Tree = {}
    for path, data in model.items():
        shown = "/" + "/".join(name.decode() for name in path)
        tree[shown] = (Kind.DIR, b"", 0o755) if data is None else (Kind.FILE, data, 0o644)
    return tree


def live_tree(overlay: Overlay, inode: Inode, prefix: str = "") -> Tree:
    tree: Tree = {}
    for name, kid in overlay.children(inode):
        shown = f"{prefix}/{name.decode()}"
        if kid.is_dir:
            tree[shown] = (Kind.DIR, b"", 0o755)
            tree.update(live_tree(overlay, kid, shown))
        else:
            tree[shown] = (Kind.FILE, overlay.file_data(kid).read(0, kid.size + 1), 0o644)
    return tree


@given(st.data())
def test_random_operations_match_a_dict_model(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Repository.init(Path(scratch) / "repo", author=AUTHOR)
        try:
            spill = Path(scratch) / "spill"
            spill.mkdir()
            overlay = Overlay(repo, repo.resolve_commit(repo.head_id()).root_id, str(spill), NOW)
            model: Model = {}
            for _ in range(data.draw(st.integers(1, 40), label="operations")):
                apply(overlay, model, data.draw(operations(model)))
                assert live_tree(overlay, overlay.root) == expected_tree(model)
            if overlay.root.dirty:
                assert commit(overlay) == expected_tree(model)
            assert stored(repo, overlay.root.entry.id) == expected_tree(model)
        finally:
            repo.close()
