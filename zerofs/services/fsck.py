"""fsck: everything retained history reaches is present and is what its id says, and so is the storage below.

The algorithm:

1. **Storage.** The store checks what holds the objects: every pack's
   header and trailer against the index, the index's accounting, the ref
   log's records and its last moves against the refs, the config file
   (``Repository.check_storage``). Each problem is a finding without a path.
2. **Data** (``read_data`` only). Every stored object is read once, pack
   by pack, front to back, and verified against its id; the damaged ones
   are remembered.
3. **Check.** Walk the retained commits (HEAD and all its ancestors by
   default), then each commit's tree, depth first. Every distinct object is
   checked once, whatever the number of commits and clones that share it,
   so checking twenty snapshots costs about one tree. A node is read, its
   record verified against its id, its kind compared with what the
   reference expects, and its body decoded (``objects.decode`` rejects
   anything that is not the canonical encoding), and a special file's node
  must hold the file type its entry's mode names. A chunk (and a file stored
   as its one chunk) is looked up in the index: present, of the kind and
   length its reference declares; with ``read_data``, also verified in pass
   2 (one that pass did not meet is read on its own). On the way back up, a
   node is marked *tainted* when it or anything below it is damaged.
4. **Name.** When something is damaged, walk the retained commits again,
   newest first, descending only into tainted nodes, and report each damaged
   object once for each distinct store path it is reached by (with the
   newest commit that reaches it there). This pass costs the size of the
   damage, not of the tree.

fsck only reads: it holds no lock and writes nothing, so it is safe at any
moment, including while other processes write. An object written after the
walk began is simply not seen; one that a concurrent gc forgets between the
read of its parent and its own read would be reported missing (gc keeps
everything reachable from retained history, so that happens only for
commits gc is cutting, or when fsck's retention differs from gc's).
"""

from __future__ import annotations

import enum
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeAlias

from zerofs.errors import CorruptionError, MissingObjectError
from zerofs.history import GRAFTS, Grafts, read_grafts, walk_commits
from zerofs.objects import (
    SPECIAL_TYPES,
    Child,
    ChunkListNode,
    Commit,
    FileNode,
    Kind,
    Node,
    ObjectId,
    SpecialNode,
    decode,
    iter_children,
)
from zerofs.paths import StorePath
from zerofs.repo import Repository, StorageProblem

PROGRESS_EVERY: Final = 1000
"""Objects checked between two progress events."""


class Severity(enum.Enum):
    """How bad a finding is: errors make fsck fail."""

    ERROR = "error"
    WARNING = "warning"


class FindingKind(enum.Enum):
    """Every problem fsck can report (``git fsck``-style ids)."""

    MISSING_OBJECT = "missing-object"
    """A reference names an object the store does not hold."""
    HASH_MISMATCH = "hash-mismatch"
    """The stored record does not decode to bytes that hash to its id (a flipped or cut byte)."""
    UNDECODABLE = "undecodable"
    """The record's header is unreadable, or its body (hash intact) is not a canonical node."""
    WRONG_KIND = "wrong-kind"
    """A reference expects one kind of object and the store holds another under that id."""
    SIZE_MISMATCH = "size-mismatch"
    """A reference declares a length that the object it names does not have."""
    INDEX = "index"
    """An index entry points at bytes that are not its object, a pack it names is missing, or its counts disagree."""
    PACK = "pack"
    """A pack's header or trailer is damaged, or a pack has no trailer (a writer died; a warning)."""
    REF_LOG = "ref-log"
    """A ref log record is damaged, or the log and the index's refs disagree."""
    CONFIG = "config"
    """The config file is damaged or disagrees with the index's copy."""
    LEFTOVER = "leftover"
    """A file an interrupted operation left (a warning: gc or upgrade removes it)."""

    @property
    def severity(self) -> Severity:
        """The default severity of this kind of finding."""
        return Severity.WARNING if self is FindingKind.LEFTOVER else Severity.ERROR


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, with the store path it affects.

    ``path`` is None for a damaged commit (it has no path) and for damage
    below the objects (then ``object_id`` is None too); ``commit_id`` is
    the newest retained commit in which ``path`` reaches the object.
    """

    kind: FindingKind
    severity: Severity
    object_id: ObjectId | None
    path: StorePath | None
    commit_id: ObjectId | None
    detail: str


@dataclass(frozen=True, slots=True)
class FsckProgress:
    """Sent every ``PROGRESS_EVERY`` objects during the check pass."""

    n_objects: int
    read_bytes: int


@dataclass(frozen=True, slots=True)
class FsckSummary:
    """The last event: what was checked and how much was found."""

    n_commits: int
    n_objects: int
    n_chunks: int
    read_bytes: int
    n_errors: int
    n_warnings: int
    is_read_data: bool


FsckEvent: TypeAlias = Finding | FsckProgress | FsckSummary


class _Problem(NamedTuple):
    kind: FindingKind
    detail: str


class _Ref(NamedTuple):
    """A reference met in the walk: what it names and what it expects there."""

    object_id: ObjectId
    kind: Kind
    size_bytes: int | None
    """The length the reference declares (entries: file size; refs: chunk or list length), or None."""
    file_type: int | None = None
    """The file type (``S_IFMT``) an entry of a special file declares in its mode, or None."""


class _Fact(NamedTuple):
    """What a checked object turned out to be."""

    kind: Kind
    size_bytes: int | None
    """A file's or chunk list's total, a chunk's length (read only with ``read_data``); else None."""
    file_type: int | None = None
    """A special node's file type (``S_IFMT``); else None."""


class _Checker:
    """The check pass: each distinct object once; remembers what is damaged and what leads to it.

    Damage of an object itself (missing, hash, undecodable) is kept by id.
    A reference that expects another kind or length than its object has is
    kept by (referencing node, position): the same object may be referenced
    rightly elsewhere, so the problem belongs to the reference.
    """

    def __init__(self, repo: Repository, *, read_data: bool) -> None:
        self.repo = repo
        self.read_data = read_data
        self.problems: dict[ObjectId, _Problem] = {}
        self.ref_problems: dict[tuple[ObjectId, int], _Problem] = {}
        self.tainted: set[ObjectId] = set()
        self.facts: dict[ObjectId, _Fact | None] = {}
        self.commit_findings: list[Finding] = []
        """Commits of the walk that could not be read (fsck reports them and goes on)."""
        self.verified: set[ObjectId] = set()
        """Objects the data pass read and verified (``read_data``)."""
        self.n_objects = 0
        self.n_chunks = 0
        self.read_bytes = 0

    def read_all(self) -> Iterator[FsckProgress]:
        """The data pass: every stored object once, in storage order, verified against its id."""
        for n, scanned in enumerate(self.repo.scan(), 1):
            try:
                self.repo.verify_scanned(scanned)
            except CorruptionError as exc:
                self.problems[scanned.object_id] = _Problem(FindingKind.HASH_MISMATCH, exc.message)
            else:
                self.verified.add(scanned.object_id)
            if scanned.record is not None:
                self.read_bytes += scanned.record.stored_bytes
            if n % PROGRESS_EVERY == 0:
                yield FsckProgress(self.n_objects, self.read_bytes)

    def load(self, ref: _Ref) -> Node | None:
        """Check one object; return its node (None for chunks and damaged objects)."""
        self.n_objects += 1
        self.facts[ref.object_id] = None
        if ref.kind in (Kind.CHUNK, Kind.FILE):
            info = self.repo.blob_info(ref.object_id)
            if info is None:
                self.problems[ref.object_id] = _Problem(
                    FindingKind.MISSING_OBJECT, f"{ref.kind.name.lower()} is missing"
                )
                return None
            if info.kind is Kind.CHUNK:  # a chunk, or a file stored as its one chunk
                self.n_chunks += 1
                self.facts[ref.object_id] = _Fact(Kind.CHUNK, info.raw_bytes)
                if self.read_data:
                    self._check_data(ref.object_id)
                return None
        return self._load_node(ref)

    def _check_data(self, chunk_id: ObjectId) -> None:
        """A chunk the data pass did not verify (nor find damaged): read it on its own."""
        if chunk_id in self.verified or chunk_id in self.problems:
            return
        try:
            self.read_bytes += len(self.repo.read_chunk(chunk_id))
        except MissingObjectError as exc:
            self.problems[chunk_id] = _Problem(FindingKind.MISSING_OBJECT, exc.message)
        except CorruptionError as exc:
            self.problems[chunk_id] = _Problem(FindingKind.HASH_MISMATCH, exc.message)

    def _load_node(self, ref: _Ref) -> Node | None:
        try:
            kind, body = self.repo.get_record_body(ref.object_id)
        except MissingObjectError:
            self.problems[ref.object_id] = _Problem(FindingKind.MISSING_OBJECT, f"{ref.kind.name.lower()} is missing")
            return None
        except CorruptionError as exc:
            self.problems[ref.object_id] = _Problem(FindingKind.HASH_MISMATCH, exc.message)
            return None
        self.read_bytes += len(body)
        problem, fact, node = _inspect(ref.object_id, kind, body)
        if problem is not None:
            self.problems[ref.object_id] = problem
        if fact is not None:
            self.n_chunks += fact.kind is Kind.CHUNK
            self.facts[ref.object_id] = fact
        return node

    def read_commit(self, commit_id: ObjectId) -> Commit | None:
        """Check a commit of the history walk; None (and a finding) if it is missing, damaged or no commit."""
        node = self.load(_Ref(commit_id, Kind.COMMIT, None))
        problem = self.problems.get(commit_id)
        if problem is None and not isinstance(node, Commit):
            fact = self.facts.get(commit_id)
            found = fact.kind.name.lower() if fact is not None else "chunk"
            problem = _Problem(FindingKind.WRONG_KIND, f"expected a commit, found a {found}")
        if problem is not None or not isinstance(node, Commit):
            if problem is not None:
                self.commit_findings.append(_finding(problem, commit_id, None, commit_id))
            return None
        return node

    def check_tree(self, root: _Ref) -> Iterator[FsckProgress]:
        """Check everything below ``root`` not yet visited; mark tainted nodes on the way up."""
        # Explicit stack, not recursion: directory depth is not bounded by Python's stack.
        stack: list[tuple[_Ref, list[_Ref] | None]] = [(root, None)]
        while stack:
            ref, children = stack.pop()
            if children is not None:  # leaving a node: all its children are done
                self._leave(ref.object_id, children)
                continue
            if ref.object_id in self.facts:
                continue
            node = self.load(ref)
            if self.n_objects % PROGRESS_EVERY == 0:
                yield FsckProgress(self.n_objects, self.read_bytes)
            refs = list(_children(node))
            stack.append((ref, refs))
            stack.extend((child, None) for child in reversed(refs))

    def check_reference(self, parent_id: ObjectId, index: int, ref: _Ref) -> bool:
        """Compare what a reference expects with its (checked) object; True if they differ."""
        fact = self.facts.get(ref.object_id)
        if fact is None:
            return False
        if fact.kind is not ref.kind and not (ref.kind is Kind.FILE and fact.kind is Kind.CHUNK):
            detail = f"expected a {ref.kind.name.lower()}, found a {fact.kind.name.lower()}"
            self.ref_problems[(parent_id, index)] = _Problem(FindingKind.WRONG_KIND, detail)
            return True
        if ref.size_bytes is not None and fact.size_bytes is not None and ref.size_bytes != fact.size_bytes:
            detail = f"{fact.kind.name.lower()} holds {fact.size_bytes} bytes, its reference says {ref.size_bytes}"
            self.ref_problems[(parent_id, index)] = _Problem(FindingKind.SIZE_MISMATCH, detail)
            return True
        if ref.file_type is not None and fact.file_type is not None and ref.file_type != fact.file_type:
            detail = f"the entry's mode says {_type_name(ref.file_type)}, its node holds a {_type_name(fact.file_type)}"
            self.ref_problems[(parent_id, index)] = _Problem(FindingKind.WRONG_KIND, detail)
            return True
        return False

    def _leave(self, node_id: ObjectId, children: list[_Ref]) -> None:
        is_tainted = node_id in self.problems
        for index, child in enumerate(children):
            if self.check_reference(node_id, index, child) or child.object_id in self.tainted:
                is_tainted = True
        if is_tainted:
            self.tainted.add(node_id)


def _inspect(object_id: ObjectId, kind: Kind, body: bytes) -> tuple[_Problem | None, _Fact | None, Node | None]:
    """Decode a verified record: (problem, what it is, its node)."""
    if kind is Kind.CHUNK:
        return None, _Fact(kind, len(body)), None
    if kind is Kind.GRAFTS:
        return None, _Fact(kind, None), None
    try:
        node = decode(kind, body, object_id.hex())
    except CorruptionError as exc:
        return _Problem(FindingKind.UNDECODABLE, exc.message), None, None
    size: int | None = None
    if isinstance(node, FileNode):
        size = node.size_bytes
    elif isinstance(node, ChunkListNode):
        size = sum(r.size_bytes for r in node.refs)
    elif isinstance(node, SpecialNode):
        return None, _Fact(kind, None, node.file_type), node
    return None, _Fact(kind, size), node


def _children(node: Node | None) -> Iterator[_Ref]:
    """The references a tree node holds (commits' parents and roots are walked separately)."""
    if node is None or isinstance(node, Commit):
        return
    for child in iter_children(node):
        yield _child_ref(child)


def _type_name(file_type: int) -> str:
    return SPECIAL_TYPES.get(file_type, f"file type {file_type:o}")


def _child_ref(child: Child) -> _Ref:
    """What a reference expects of the node it names: a chunk's or a file's length, a special file's type."""
    if child.entry is None:
        return _Ref(child.object_id, child.kind, child.size_bytes if child.kind is not Kind.DIR else None)
    if child.kind is Kind.FILE:
        return _Ref(child.object_id, child.kind, child.size_bytes)
    if child.kind is Kind.SPECIAL:
        return _Ref(child.object_id, child.kind, None, stat.S_IFMT(child.entry.mode))
    return _Ref(child.object_id, child.kind, None)


def _child_paths(node: Node | None, path: StorePath) -> Iterator[StorePath]:
    """The store path each reference of ``node`` is reached by, in the order of ``_children``."""
    if node is None or isinstance(node, Commit):
        return
    for child in iter_children(node):
        yield path if child.entry is None else StorePath((*path.parts, child.entry.name))


_STORAGE_KINDS: dict[str, FindingKind] = {
    "index-entry": FindingKind.INDEX,
    "pack-missing": FindingKind.INDEX,
    "pack-accounting": FindingKind.INDEX,
    "pack-trailer": FindingKind.PACK,
    "pack-header": FindingKind.PACK,
    "ref-log": FindingKind.REF_LOG,
    "config": FindingKind.CONFIG,
    "leftover": FindingKind.LEFTOVER,
}


def _storage_finding(problem: StorageProblem) -> Finding:
    severity = Severity.ERROR if problem.is_error else Severity.WARNING
    return Finding(_STORAGE_KINDS[problem.kind.value], severity, None, None, None, problem.detail)


def check(
    repo: Repository, *, read_data: bool = False, retained: Iterable[ObjectId] | None = None
) -> Iterator[FsckEvent]:
    """Check the storage and every object reachable from the retained commits; yield findings, progress, a summary.

    Args:
        repo: the repository (only read).
        read_data: also read every stored object once, pack by pack, and
            verify it against its id (else chunks are looked up in the index).
        retained: the commits to start from (default: HEAD); their
            ancestors are always followed.

    Raises:
        RepositoryError: HEAD is not set.
    """
    checker = _Checker(repo, read_data=read_data)
    findings: list[Finding] = [_storage_finding(problem) for problem in repo.check_storage()]
    if read_data:
        yield from checker.read_all()
    start = list(retained) if retained is not None else [repo.head_id()]
    findings.extend(_check_grafts(checker))
    commits: list[tuple[ObjectId, Commit]] = []
    for commit_id, commit in walk_commits(repo, start, grafts=_grafts_or_none(repo), read=checker.read_commit):
        commits.append((commit_id, commit))
        root = _Ref(commit.root_id, Kind.DIR, None)
        yield from checker.check_tree(root)
        if checker.check_reference(commit_id, 0, root):
            checker.tainted.add(commit_id)
    findings.extend(checker.commit_findings)
    if checker.tainted:
        findings.extend(_name_damage(checker, commits))
    yield from findings
    n_errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    yield FsckSummary(
        n_commits=len(commits),
        n_objects=checker.n_objects,
        n_chunks=checker.n_chunks,
        read_bytes=checker.read_bytes,
        n_errors=n_errors,
        n_warnings=len(findings) - n_errors,
        is_read_data=read_data,
    )


def _grafts_or_none(repo: Repository) -> Grafts:
    """The graft table, or none if it is damaged (``_check_grafts`` reports it): stored parents are followed then."""
    try:
        return read_grafts(repo)
    except CorruptionError:
        return {}


def _check_grafts(checker: _Checker) -> Iterator[Finding]:
    """The graft table gc left, which every walk of history reads."""
    grafts_id = checker.repo.get_ref(GRAFTS)
    if grafts_id is None:
        return
    checker.load(_Ref(grafts_id, Kind.GRAFTS, None))
    problem = checker.problems.get(grafts_id)
    if problem is not None:
        yield Finding(problem.kind, problem.kind.severity, grafts_id, None, None, f"the graft table: {problem.detail}")


def _name_damage(checker: _Checker, commits: list[tuple[ObjectId, Commit]]) -> Iterator[Finding]:
    """The second pass: each damaged object once per distinct store path, newest commit first."""
    reported: set[tuple[FindingKind, ObjectId, StorePath]] = set()
    walked: set[tuple[ObjectId, StorePath]] = set()

    def report(problem: _Problem, object_id: ObjectId, path: StorePath, commit_id: ObjectId) -> Iterator[Finding]:
        if (problem.kind, object_id, path) not in reported:
            reported.add((problem.kind, object_id, path))
            yield _finding(problem, object_id, path, commit_id)

    for commit_id, commit in commits:
        root_problem = checker.ref_problems.get((commit_id, 0))
        if root_problem is not None:
            yield from report(root_problem, commit.root_id, StorePath(), commit_id)
        stack = [(commit.root_id, StorePath())]
        while stack:
            object_id, path = stack.pop()
            if object_id not in checker.tainted or (object_id, path) in walked:
                continue
            walked.add((object_id, path))
            problem = checker.problems.get(object_id)
            if problem is not None:
                yield from report(problem, object_id, path, commit_id)
                continue  # nothing below a damaged object can be read
            node = checker.repo.get_node(object_id)  # tainted and undamaged: a node that decodes
            for index, (child, child_path) in enumerate(zip(_children(node), _child_paths(node, path), strict=True)):
                ref_problem = checker.ref_problems.get((object_id, index))
                if ref_problem is not None:
                    yield from report(ref_problem, child.object_id, child_path, commit_id)
                stack.append((child.object_id, child_path))


def _finding(problem: _Problem, object_id: ObjectId, path: StorePath | None, commit_id: ObjectId) -> Finding:
    return Finding(problem.kind, problem.kind.severity, object_id, path, commit_id, problem.detail)
