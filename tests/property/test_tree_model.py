"""Tree operations through services.edit (and import) on a real LMDB repository, against a dict model.

The model is ``files: {path: bytes}`` and ``dirs: {path}`` (paths as tuples of names). Every
rule predicts either the new model or the ZerofsError subclass the operation must raise; a
failing operation must leave HEAD where it was. After every step the whole tree is compared:
kinds, names and every file's contents read back through ``browse.read_file``.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from zerofs.errors import ConflictError, NotFoundError, UsageError, ZerofsError
from zerofs.history import head
from zerofs.objects import DIR_FLAT_MAX, DirNode, Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.services import browse, edit
from zerofs.services.importer import import_tree
from zerofs.tree import walk

Path_ = tuple[bytes, ...]

# x007 and x256 also name files of the big imported directories, so writes and removes
# land in (and can push across the threshold of) sharded directories.
ALPHABET = [b"a", b"b", b"c", b"x007", b"x256"]
BIG_SIZES = [DIR_FLAT_MAX - 6, DIR_FLAT_MAX, DIR_FLAT_MAX + 1, 300]

names = st.sampled_from(ALPHABET)
paths = st.lists(names, min_size=0, max_size=3).map(tuple)
contents = st.sampled_from([b"", b"one", b"two" * 3000]) | st.binary(max_size=64)

_HOST_DIRS: dict[int, Path] = {}


def big_host_dir(count: int) -> Path:
    """A host directory of ``count`` small files x000, x001, ... (made once per session)."""
    if count not in _HOST_DIRS:
        where = Path(tempfile.mkdtemp(prefix=f"zerofs-big{count}-"))
        for i in range(count):
            (where / f"x{i:03d}").write_bytes(b"file %d" % i)
        _HOST_DIRS[count] = where
    return _HOST_DIRS[count]


def big_contents(count: int) -> dict[Path_, bytes]:
    return {(b"x%03d" % i,): b"file %d" % i for i in range(count)}


def sp(path: Path_) -> StorePath:
    return StorePath(path)


class Expected(Exception):
    def __init__(self, error: type[ZerofsError]) -> None:
        super().__init__(error.__name__)
        self.error = error


class Model:
    """What the tree should be."""

    def __init__(self, files: dict[Path_, bytes] | None = None, dirs: set[Path_] | None = None) -> None:
        self.files = dict(files or {})
        self.dirs = set(dirs or {()})

    def copy(self) -> Model:
        return Model(self.files, self.dirs)

    def kind(self, path: Path_) -> str | None:
        if path in self.dirs:
            return "dir"
        if path in self.files:
            return "file"
        return None

    def lookup(self, path: Path_) -> str:
        """Mirror of tree.lookup: NotFound for a missing component, Conflict for a file on the way."""
        current = "dir"
        for k in range(1, len(path) + 1):
            if current != "dir":
                raise Expected(ConflictError)
            found = self.kind(path[:k])
            if found is None:
                raise Expected(NotFoundError)
            current = found
        return current

    def try_lookup(self, path: Path_) -> str | None:
        try:
            return self.lookup(path)
        except Expected as exc:
            if exc.error is NotFoundError:
                return None
            raise

    def require_parent(self, path: Path_) -> None:
        if self.lookup(path[:-1]) != "dir":
            raise Expected(ConflictError)

    def ensure_dirs(self, path: Path_) -> None:
        for k in range(1, len(path) + 1):
            found = self.kind(path[:k])
            if found == "file":
                raise Expected(ConflictError)
            if found is None:
                self.dirs.add(path[:k])

    def subtree(self, path: Path_) -> tuple[dict[Path_, bytes], set[Path_]]:
        """Files and dirs below ``path``, relative to it (the dir itself as ())."""
        n = len(path)
        files = {p[n:]: data for p, data in self.files.items() if p[:n] == path and len(p) > n}
        dirs = {p[n:] for p in self.dirs if p[:n] == path}
        return files, dirs

    def delete(self, path: Path_) -> None:
        n = len(path)
        self.files = {p: d for p, d in self.files.items() if p[:n] != path}
        self.dirs = {p for p in self.dirs if p[:n] != path or p == ()}

    def graft(self, path: Path_, files: dict[Path_, bytes], dirs: set[Path_]) -> None:
        self.delete(path)
        for rel, data in files.items():
            self.files[path + rel] = data
        for rel in dirs:
            self.dirs.add(path + rel)

    def entry_at(self, path: Path_) -> tuple[dict[Path_, bytes], set[Path_]]:
        if self.kind(path) == "file":
            return {(): self.files[path]}, set()
        return self.subtree(path)

    def place(self, path: Path_, files: dict[Path_, bytes], dirs: set[Path_]) -> None:
        if () in files:
            self.delete(path)
            self.files[path] = files[()]
        else:
            self.graft(path, files, dirs)


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="zerofs-model-"))
        self.repo = Repository.init(self.tmp / "repo", author="test@host")
        self.model = Model()
        self.contents_by_id: dict[bytes, bytes] = {}

    def teardown(self) -> None:
        self.repo.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def apply(self, real, predict) -> None:
        """Run ``real``; it must do what ``predict`` (acting on a model copy) says."""
        head_before = self.repo.head_id()
        new_model = self.model.copy()
        try:
            predict(new_model)
        except Expected as exc:
            with pytest.raises(ZerofsError) as raised:
                real()
            assert isinstance(raised.value, exc.error), (  # noqa: PT017 - the expected class comes from the model
                f"expected {exc.error.__name__}, got {type(raised.value).__name__}: {raised.value}"
            )
            assert self.repo.head_id() == head_before, "a failed operation moved HEAD"
            return
        real()
        self.model = new_model

    # -- rules ------------------------------------------------------------------------

    @rule(path=paths, parents=st.booleans())
    def mkdir(self, path: Path_, parents: bool) -> None:
        def predict(m: Model) -> None:
            if parents:
                m.ensure_dirs(path)
                return
            if not path:
                raise Expected(UsageError)
            m.require_parent(path)
            if m.kind(path) is not None:
                raise Expected(ConflictError)
            m.dirs.add(path)

        self.apply(lambda: edit.mkdir(self.repo, sp(path), parents=parents), predict)

    @rule(path=paths, data=contents, parents=st.booleans())
    def write_file(self, path: Path_, data: bytes, parents: bool) -> None:
        def predict(m: Model) -> None:
            if m.try_lookup(path) == "dir":
                raise Expected(ConflictError)
            if parents:
                m.ensure_dirs(path[:-1])
            else:
                m.require_parent(path)
            m.files[path] = data

        self.apply(lambda: edit.write_file(self.repo, sp(path), io.BytesIO(data), parents=parents), predict)

    @rule(path=paths, recursive=st.booleans())
    def remove_path(self, path: Path_, recursive: bool) -> None:
        def predict(m: Model) -> None:
            if not path:
                raise Expected(UsageError)
            kind = m.lookup(path)
            if kind == "dir" and not recursive:
                files, dirs = m.subtree(path)
                if files or len(dirs) > 1:
                    raise Expected(ConflictError)
            m.delete(path)

        self.apply(lambda: edit.remove_path(self.repo, sp(path), recursive=recursive), predict)

    @rule(source=paths, dest=paths, force=st.booleans())
    def move_path(self, source: Path_, dest: Path_, force: bool) -> None:
        def predict(m: Model) -> None:
            if not source:
                raise Expected(UsageError)
            kind = m.lookup(source)
            final = dest
            existing = m.try_lookup(final)
            if existing == "dir" and final != source:
                final = (*final, source[-1])
                existing = m.try_lookup(final)
            if final == source:
                return
            if final[: len(source)] == source:
                raise Expected(UsageError)
            if existing == "dir":
                raise Expected(ConflictError)
            if existing == "file" and kind == "dir" and not force:
                raise Expected(ConflictError)
            m.require_parent(final)
            files, dirs = m.entry_at(source)
            m.delete(source)
            m.place(final, files, dirs)

        self.apply(lambda: edit.move_path(self.repo, sp(source), sp(dest), force=force), predict)

    @rule(source=paths, dest=paths, parents=st.booleans(), force=st.booleans())
    def clone(self, source: Path_, dest: Path_, parents: bool, force: bool) -> None:
        target = dest

        def predict(m: Model) -> None:
            if source:
                m.lookup(source)
            files, dirs = m.entry_at(source)
            if not target:
                raise Expected(UsageError)
            if parents:
                m.ensure_dirs(target[:-1])
            else:
                m.require_parent(target)
            if m.kind(target) is not None and not force:
                raise Expected(ConflictError)
            m.place(target, files, dirs)

        self.apply(lambda: edit.clone(self.repo, sp(source), sp(target), parents=parents, force=force), predict)

    @rule(path=paths, size=st.sampled_from(BIG_SIZES), parents=st.booleans(), go=st.integers(0, 3))
    def import_big_dir(self, path: Path_, size: int, parents: bool, go: int) -> None:
        if go != 0:
            return  # imports are the slow rule: run about one draw in four

        def predict(m: Model) -> None:
            if not path:
                raise Expected(UsageError)
            if parents:
                m.ensure_dirs(path[:-1])
            else:
                m.require_parent(path)
            m.graft(path, big_contents(size), {()})

        self.apply(lambda: import_tree(self.repo, big_host_dir(size), sp(path), parents=parents, workers=1), predict)

    # -- the comparison ---------------------------------------------------------------------

    @invariant()
    def tree_matches_model(self) -> None:
        root_id = head(self.repo)[1].root_id
        files: dict[Path_, bytes] = {}
        dirs: set[Path_] = {()}
        for path, entry in walk(self.repo, root_id, StorePath()):
            if entry.kind is Kind.DIR:
                dirs.add(path.parts)
                assert self.repo.get_typed(entry.id, DirNode).n_entries >= 0
            else:
                assert entry.kind is Kind.FILE
                data = self.contents_by_id.get(entry.id)
                if data is None:
                    data = b"".join(browse.read_file(self.repo, path))
                    self.contents_by_id[entry.id] = data
                assert entry.size_bytes == len(data)
                files[path.parts] = data
        assert dirs == self.model.dirs
        assert files.keys() == self.model.files.keys()
        assert files == self.model.files


TreeMachine.TestCase.settings = settings(
    settings(),
    stateful_step_count=30,
    max_examples=settings().max_examples,
)
TestTreeModel = TreeMachine.TestCase
