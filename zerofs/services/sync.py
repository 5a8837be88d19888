"""Push and pull: copy the commits one repository's HEAD has and another lacks, then move the other's HEAD.

The algorithm, and why it is safe and cheap:

1. **Skip what the destination has.** Every repository keeps the invariant
   that an object is written before anything that references it (imports,
   changes, gc's rewrites, and this module). So "the destination has X"
   implies that it has everything reachable from X, and the walk from the
   source's HEAD stops at every commit and every subtree the destination
   already has: a one-file change costs the path to that file, whatever the
   size of the tree.
2. **Fast-forward only**, decided before anything is written: the
   destination's HEAD must be an ancestor of the source's HEAD, or the
   destination must hold nothing but its first, empty commit (a repository
   fresh from ``init``). ``force`` replaces it anyway.
3. **Copy children first.** Objects are copied as stored records (no
   re-chunking, no re-compression), each verified against its id between
   the source's store and the destination's batch
   (``Repository.read_record``), in post-order: chunks, file and chunk-list
   nodes, directory shards, directories, then the commit, and a commit
   after its parents. The destination makes a long batch durable in steps,
   each a prefix of this order, so a kill at any instant leaves its
   invariant true, and running the transfer again sends only what is
   missing and ends the same.
4. **The ref moves last**, by compare-and-swap against the HEAD read in
   step 2, in the batch's final transaction. If another writer moved it in
   the meantime, the objects stay (nothing names them; a re-run uses them)
   and the transfer fails with ``ConflictError``, no ref changed.

gc in the destination: the transfer holds the destination's writer lease
from before it reads the destination's HEAD until HEAD has moved, so no
deletion step of a gc runs while an object it relies on (one it skipped
because the destination had it, or one it wrote) is not yet referenced;
gc's next step marks the commits the new HEAD brought. Between two steps
of a gc, what is indexed of its garbage is closed downwards (gc forgets
referrers first), so "the destination has X" still implies it has what X
references. The transfer still waits until no gc is running before it
takes the lease, for its own leftovers: a transfer that fails after
copying (HEAD moved, killed) leaves objects nothing names, and if it ran
between two steps of a gc they may reference garbage it skipped because
the destination had it. That gc did not list them (they came after its
listing), so it keeps them but goes on forgetting that garbage, and a
re-run that finds them would skip them and move HEAD onto missing
objects. Not copying beside a gc's sweep keeps a transfer's leftovers
out of that window; a gc that starts during a transfer is the narrower
case that remains (see gc's module docstring). History cut by gc in
the source: commits are walked through the source's graft table, and the
grafts of the copied commits are added to the destination's table (GRAFTS
moves by compare-and-swap with HEAD), so the destination never follows a
parent it was not sent.

Between repositories that make ids differently (one encrypted and the
other plain, or two with other keys) no record can be copied as stored:
``_Remaker`` re-makes every object reachable from the source's HEAD under
the destination's ids, children first as in step 3, keeping the source's
chunk boundaries, and each commit with its parents as the source's history
has them now (grafts applied, so the destination needs no graft table for
them). Nothing maps the destination's commits back to the source's, so
each such transfer re-derives the ids of the whole history (reading every
object once), and unless the destination is fresh from ``init`` it does
so in a first pass that writes nothing: the fast-forward check of step 2
then compares in the destination's ids, and the writing pass skips every
subtree whose new id the destination has. Steps 3 and 4 are unchanged.

This module must not know where a repository lives (a directory, object
storage): it sees two ``Repository`` handles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Final, NamedTuple

from zerofs.errors import ConflictError, CorruptionError, MissingObjectError, RepositoryError
from zerofs.history import GRAFTS, HEAD, encode_grafts, iter_history, parents_of, read_grafts, walk_commits
from zerofs.objects import (
    ChunkListNode,
    ChunkRef,
    Commit,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    decode,
    encode,
    iter_child_ids,
    iter_children,
)
from zerofs.repo import Record, RefMovedError, RepoBatch, Repository

_LEAF_KINDS: Final = frozenset({Kind.CHUNK, Kind.GRAFTS})
"""Records that reference nothing: copied without decoding them as nodes."""
GC_POLL_SECONDS: Final = 0.05
"""How often a transfer looks whether a gc running in the destination has finished."""
DURABLE_EVERY_SECONDS: Final = 1.0
DURABLE_EVERY_OBJECTS: Final = 5_000
"""A transfer makes what it copied durable this often, so that a killed one loses at most this much.

The store's own flushes (every 30 s or 1 GiB) only bound a batch's size; a
transfer is meant to be resumed. Pushing 20,000 small files (78 MB, four
such transactions) took 0.89 s with them and 1.03 s without (medians of five
runs, alternated): less than the noise."""


class NotFastForwardError(ConflictError):
    """The destination's HEAD is not an ancestor of the source's: copying would drop its commits."""

    def __init__(self, message: str, *, dest_head: ObjectId, source_head: ObjectId) -> None:
        """Keep both heads so that the CLI can word what to do."""
        super().__init__(message)
        self.dest_head = dest_head
        self.source_head = source_head


class HeadMovedError(ConflictError):
    """Another writer moved the destination's HEAD while the transfer ran."""


class TransferProgress(NamedTuple):
    """Objects and stored bytes copied (or, in a dry run, counted) so far."""

    objects: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What a push or pull did (or, with ``dry_run``, would do)."""

    source_head: ObjectId
    dest_head_before: ObjectId
    dest_head_after: ObjectId
    commits: int
    """Commits copied."""
    objects: int
    """Objects copied, commits included."""
    stored_bytes: int
    """Bytes of the copied records as stored (compressed where they are)."""
    is_fast_forward: bool
    """False when ``force`` replaced a HEAD that was not an ancestor."""
    dry_run: bool
    source_head_in_dest: ObjectId | None = None
    """The source's HEAD under the destination's ids, when the two make ids differently (re-encrypting)."""

    @property
    def is_up_to_date(self) -> bool:
        """True when the destination already had the source's HEAD."""
        return self.dest_head_before in (self.source_head, self.source_head_in_dest)


def transfer(
    source: Repository,
    dest: Repository,
    *,
    force: bool = False,
    dry_run: bool = False,
    on_progress: Callable[[TransferProgress], None] | None = None,
) -> TransferResult:
    """Copy the commits of ``source``'s HEAD that ``dest`` lacks, then move ``dest``'s HEAD to it.

    Open ``dest`` writable without a writer lease (``Repository.open(...,
    writer_lease=False)``): the transfer takes it once no gc runs in
    ``dest`` and holds it until HEAD has moved (a handle holding the lease
    for its lifetime would wait forever for a gc that waits for it).
    Writes into ``dest``, in one batch made durable in steps: every missing
    object, children before parents, each commit after its parents; then,
    in the final transaction, the merged graft table and GRAFTS (if copied
    commits are grafted in ``source``) and HEAD, both by compare-and-swap.
    ``dry_run`` writes nothing and counts what would be copied. Between
    repositories that make ids differently (one encrypted, or other keys)
    every object is re-made under the destination's ids (``_Remaker``).

    Raises:
        RepositoryError: the two repositories have the same keys (or none) and different formats.
        NotFastForwardError: ``dest``'s HEAD is not an ancestor of ``source``'s (and not ``force``).
        HeadMovedError: ``dest``'s HEAD (or graft table) moved during the transfer; no ref changed.
        CorruptionError: an object of ``source`` is missing or damaged; no ref changed.
    """
    is_same_ids = source.has_same_keys(dest)  # else every object is re-made: formats are the encoder's
    if is_same_ids and source.config.format_version != dest.config.format_version:
        raise RepositoryError(
            f"the repositories have different formats ({source.config.format_version} at {source.path}, "
            f"{dest.config.format_version} at {dest.path}): upgrade the older one first"
        )
    if dry_run:
        return _transfer(source, dest, force=force, dry_run=True, on_progress=on_progress)
    with _between_gcs(dest):
        return _transfer(source, dest, force=force, dry_run=False, on_progress=on_progress)


@contextmanager
def _between_gcs(dest: Repository) -> Iterator[None]:
    """Hold the destination's writer lease for the block, taken at a moment when no gc runs there.

    Never holds the lease while waiting, so a running gc's steps go on.
    """
    while True:
        with ExitStack() as stack:
            stack.enter_context(dest.writer_lease())
            if dest.is_shared:  # gc there never excludes writers (store/s3gc.py)
                yield
                return
            with dest.collecting() as is_no_gc:
                pass
            if is_no_gc:
                yield
                return
        time.sleep(GC_POLL_SECONDS)


def _transfer(
    source: Repository,
    dest: Repository,
    *,
    force: bool,
    dry_run: bool,
    on_progress: Callable[[TransferProgress], None] | None,
) -> TransferResult:
    source_head = source.head_id()
    dest_head = dest.head_id()
    if not source.has_same_keys(dest):
        return _transfer_remade(
            source, dest, source_head, dest_head, force=force, dry_run=dry_run, on_progress=on_progress
        )
    if source_head == dest_head:
        return TransferResult(source_head, dest_head, dest_head, 0, 0, 0, True, dry_run)
    commits, boundary = missing_commits(source, dest.has, source_head)
    is_fast_forward = _is_fast_forward(dest, dest_head, boundary)
    _check_fast_forward(source, dest, source_head, dest_head, is_fast_forward=is_fast_forward, force=force)
    if dry_run:
        counter = _Copier(source, dest.has, None, on_progress)
        counter.copy_commits(commits)
        return TransferResult(
            source_head,
            dest_head,
            dest_head,
            len(commits),
            counter.objects,
            counter.stored_bytes,
            is_fast_forward,
            True,
        )
    copier = _copy(source, dest, commits, dest_head, source_head, on_progress)
    return TransferResult(
        source_head, dest_head, source_head, len(commits), copier.objects, copier.stored_bytes, is_fast_forward, False
    )


def _transfer_remade(
    source: Repository,
    dest: Repository,
    source_head: ObjectId,
    dest_head: ObjectId,
    *,
    force: bool,
    dry_run: bool,
    on_progress: Callable[[TransferProgress], None] | None,
) -> TransferResult:
    """Transfer between repositories that make ids differently (one encrypted, or other keys).

    No object can be copied as stored: every object reachable from the
    source's HEAD is re-made under the destination's ids (``_Remaker``).
    Nothing records which destination commit came from which source commit,
    so each transfer re-derives the whole history's ids (it reads every
    reachable object of the source once); what the destination has under
    its new id is not written again. Unless the destination is fresh from
    ``init``, a first pass writes nothing and only derives the ids, so the
    fast-forward check compares in the destination's ids before anything is
    written, and the writing pass skips every subtree the destination has.
    """
    is_fresh = is_empty(dest, dest_head)
    is_fast_forward = True
    known: dict[ObjectId, ObjectId] = {}
    if dry_run or not is_fresh:
        plan = _Remaker(source, dest, dest.has, None, on_progress if dry_run else None, {}, is_exact=dry_run)
        new_head = plan.remake_history(source_head)
        is_fast_forward = is_fresh or dest_head == new_head or dest_head in plan.new_commits
        _check_fast_forward(source, dest, source_head, dest_head, is_fast_forward=is_fast_forward, force=force)
        if dry_run or dest_head == new_head:
            return TransferResult(
                source_head,
                dest_head,
                dest_head,
                plan.commits,
                plan.objects,
                plan.stored_bytes,
                is_fast_forward,
                dry_run,
                new_head,
            )
        known = plan.new
    moved = f"the HEAD of {dest.path} moved while copying into it (another writer committed); run it again"
    try:
        with dest.batch() as batch:
            writer = _Remaker(source, dest, batch.has, batch, on_progress, known)
            new_head = writer.remake_history(source_head)
            is_swapped = batch.cas_ref(HEAD, dest_head, new_head)
    except RefMovedError as exc:
        raise HeadMovedError(moved) from exc
    if not is_swapped:  # the objects are kept: a re-run does not write them again
        raise HeadMovedError(moved)
    return TransferResult(
        source_head,
        dest_head,
        new_head,
        writer.commits,
        writer.objects,
        writer.stored_bytes,
        is_fast_forward,
        False,
        new_head,
    )


def _check_fast_forward(
    source: Repository,
    dest: Repository,
    source_head: ObjectId,
    dest_head: ObjectId,
    *,
    is_fast_forward: bool,
    force: bool,
) -> None:
    """Raise ``NotFastForwardError`` unless the transfer is a fast-forward or forced."""
    if is_fast_forward or force:
        return
    raise NotFastForwardError(
        f"the HEAD of {dest.path} ({dest_head.hex()[:12]}) is not an ancestor of the HEAD of {source.path} "
        f"({source_head.hex()[:12]}): it has commits the other lacks",
        dest_head=dest_head,
        source_head=source_head,
    )


def missing_commits(
    source: Repository, dest_has: Callable[[ObjectId], bool], head_id: ObjectId
) -> tuple[list[ObjectId], set[ObjectId]]:
    """Return the commits reachable from ``head_id`` that the destination lacks, parents first.

    Also returns the commits the destination has at which the walk stopped
    (its HEAD among them on a fast-forward). Parents are read through the
    source's graft table; nothing below a commit the destination has is read.
    A parent that gc cut from the source's history but the destination
    still has is in the boundary too: it is still an ancestor there.
    """
    order: list[ObjectId] = []
    boundary: set[ObjectId] = set()
    seen: set[ObjectId] = set()
    stack: list[tuple[ObjectId, bool]] = [(head_id, False)]
    while stack:
        commit_id, is_expanded = stack.pop()
        if is_expanded:  # every parent is in ``order`` or in the destination
            order.append(commit_id)
            continue
        if commit_id in seen:
            continue
        seen.add(commit_id)
        if dest_has(commit_id):
            boundary.add(commit_id)
            continue
        stack.append((commit_id, True))
        commit = source.resolve_commit(commit_id)
        grafted = parents_of(source, commit_id, commit)
        for parent_id in commit.parent_ids:  # cut from the source's history, still in the destination's
            if parent_id not in grafted and parent_id not in seen and dest_has(parent_id):
                seen.add(parent_id)
                boundary.add(parent_id)
        stack.extend((parent_id, False) for parent_id in reversed(grafted))
    return order, boundary


def _is_fast_forward(dest: Repository, dest_head: ObjectId, boundary: set[ObjectId]) -> bool:
    """True if ``dest_head`` is empty or an ancestor of the source's HEAD.

    The source's history above ``boundary`` is not in the destination, so
    the destination's HEAD is an ancestor only if it is in the boundary or
    an ancestor (in the destination) of a boundary commit; the usual case is
    the first, and costs nothing.
    """
    if dest_head in boundary or is_empty(dest, dest_head):
        return True
    if not boundary:
        return False
    return any(commit_id == dest_head for commit_id, _ in iter_history(dest, sorted(boundary)))


def is_empty(repo: Repository, commit_id: ObjectId) -> bool:
    """True if ``commit_id`` is a first commit of an empty tree (what ``init`` makes): nothing to keep."""
    commit = repo.resolve_commit(commit_id)
    return commit.root_id == repo.object_id(Kind.DIR, encode(DirNode())) and not parents_of(repo, commit_id, commit)


def _copy(
    source: Repository,
    dest: Repository,
    commits: list[ObjectId],
    dest_head: ObjectId,
    source_head: ObjectId,
    on_progress: Callable[[TransferProgress], None] | None,
) -> _Copier:
    """Write the objects in one batch, then the grafts and HEAD by compare-and-swap; return the copier."""
    moved = f"the HEAD of {dest.path} moved while copying into it (another writer committed); run it again"
    try:
        with dest.batch() as batch:
            copier = _Copier(source, batch.has, batch, on_progress)
            copier.copy_commits(commits)
            is_swapped = _move_grafts(source, dest, batch, commits) and batch.cas_ref(HEAD, dest_head, source_head)
    except RefMovedError as exc:
        raise HeadMovedError(moved) from exc
    if not is_swapped:  # the objects are kept: a re-run does not send them again
        raise HeadMovedError(moved)
    return copier


def _move_grafts(source: Repository, dest: Repository, batch: RepoBatch, commits: Iterable[ObjectId]) -> bool:
    """Add the source's grafts of ``commits`` to the destination's table; False if its GRAFTS moved.

    Only where the destination cannot follow a copied commit's recorded
    parents: one whose parents it has keeps its whole history there.
    """
    source_grafts = read_grafts(source)
    added = {
        commit_id: source_grafts[commit_id]
        for commit_id in commits
        if commit_id in source_grafts
        and not all(batch.has(parent_id) for parent_id in source.resolve_commit(commit_id).parent_ids)
    }
    if not added:
        return True
    current_id = dest.get_ref(GRAFTS)
    table = read_grafts(dest)
    merged = {**table, **added}
    if merged == table:
        return True
    return batch.cas_ref(GRAFTS, current_id, batch.put_blob(Kind.GRAFTS, encode_grafts(merged)))


class _Sending:
    """What a transfer has sent (or would send): counts, progress, and a batch made durable every so often."""

    objects: int
    stored_bytes: int
    _on_progress: Callable[[TransferProgress], None] | None
    _durable_at: float
    _durable_objects: int

    def _count(self, stored_bytes: int) -> None:
        self.objects += 1
        self.stored_bytes += stored_bytes
        if self._on_progress is not None:
            self._on_progress(TransferProgress(self.objects, self.stored_bytes))

    def _flush_if_due(self, batch: RepoBatch) -> None:
        is_due = self.objects - self._durable_objects >= DURABLE_EVERY_OBJECTS
        if is_due or time.monotonic() - self._durable_at >= DURABLE_EVERY_SECONDS:
            batch.flush()  # a prefix of the post-order: the destination's invariant holds
            self._durable_at = time.monotonic()
            self._durable_objects = self.objects


class _Copier(_Sending):
    """Copies trees and commits children first, skipping what the destination has.

    Without a batch it only counts (a dry run): nodes are read to find their
    children, chunks are not read at all.
    """

    def __init__(
        self,
        source: Repository,
        dest_has: Callable[[ObjectId], bool],
        batch: RepoBatch | None,
        on_progress: Callable[[TransferProgress], None] | None,
    ) -> None:
        self._source = source
        self._dest_has = dest_has
        self._batch = batch
        self._on_progress = on_progress
        self._done: set[ObjectId] = set()
        self._durable_at = time.monotonic()
        self._durable_objects = 0
        self.objects = 0
        self.stored_bytes = 0

    def copy_commits(self, commits: Iterable[ObjectId]) -> None:
        """Copy each commit's tree, then the commit (``commits`` lists parents first)."""
        for commit_id in commits:
            self.copy_tree(self._source.resolve_commit(commit_id).root_id)
            record, _ = self._source.read_record(commit_id)
            self._put(commit_id, record)

    def copy_tree(self, top_id: ObjectId) -> None:
        """Copy every object reachable from ``top_id`` that the destination lacks, in post-order.

        An object is marked done when it is expanded, before its children
        are copied: everything copied between its expansion and its own
        write is below it, and nothing below it can reference it.
        """
        stack: list[tuple[ObjectId, Record | None]] = [(top_id, None)]
        while stack:
            node_id, record = stack.pop()
            if record is not None:  # its children are in the destination now
                self._put(node_id, record)
                continue
            if node_id in self._done or self._dest_has(node_id):
                continue
            self._done.add(node_id)
            if self._batch is None and self._count_leaf(node_id):
                continue
            record, body = self._source.read_record(node_id)
            stack.append((node_id, record))
            if record.kind not in _LEAF_KINDS:
                node = decode(record.kind, body, node_id.hex())
                stack.extend((child_id, None) for kind, child_id in iter_child_ids(node) if kind is not Kind.COMMIT)

    def _count_leaf(self, object_id: ObjectId) -> bool:
        """In a dry run, count a chunk from the index alone; True if it was one."""
        info = self._source.blob_info(object_id)
        if info is None:
            raise MissingObjectError(f"object {object_id.hex()[:16]} is missing from the repository")
        if info.kind not in _LEAF_KINDS:
            return False
        self._count(info.stored_bytes)
        return True

    def _put(self, object_id: ObjectId, record: Record) -> None:
        if self._batch is None:
            self._count(record.stored_bytes)
            return
        if self._batch.put(object_id, record):
            self._count(record.stored_bytes)
            self._flush_if_due(self._batch)


class _Remaker(_Sending):
    """Re-makes a history under another repository's ids, children first, keeping the source's chunk boundaries.

    A chunk gets the destination's id of the same bytes; every file,
    chunk-list, directory and commit node is rebuilt bottom-up with its
    children's new ids (children as ``iter_children`` describes them), and
    a commit with its parents as the source's history has them now (gc's
    grafts applied), so the destination needs no graft table for them.
    Re-chunking with the destination's keyed chunker would re-cut every
    file; kept boundaries leave the file nodes' shape and sizes as they were.

    ``new`` maps each source id to its new id: a dict, about 180 bytes per
    object (two 32-byte ``bytes`` and the dict's slot, measured with
    tracemalloc), so 10 million objects need about 1.8 GB; an LMDB scratch
    table would bound it, at the cost of a write per object. ``known`` is a previous pass's map: a subtree
    whose new id the destination has is skipped whole (the destination
    holds all that is below what it holds). Without a batch nothing is
    written: the pass derives ids and counts what the destination lacks;
    ``is_exact`` (a dry run) counts the stored bytes of the records the push
    would write, as compressed, else (the check before a push) the bodies'
    lengths, which saves compressing everything twice.
    """

    def __init__(
        self,
        source: Repository,
        dest: Repository,
        dest_has: Callable[[ObjectId], bool],
        batch: RepoBatch | None,
        on_progress: Callable[[TransferProgress], None] | None,
        known: dict[ObjectId, ObjectId],
        *,
        is_exact: bool = False,
    ) -> None:
        self._source = source
        self._is_exact = is_exact
        self._dest = dest
        self._dest_has = dest_has
        self._batch = batch
        self._on_progress = on_progress
        self._known = known
        self._durable_at = time.monotonic()
        self._durable_objects = 0
        self.new: dict[ObjectId, ObjectId] = {}
        self.new_commits: set[ObjectId] = set()
        self.commits = 0
        self.objects = 0
        self.stored_bytes = 0

    def remake_history(self, head_id: ObjectId) -> ObjectId:
        """Re-make every commit reachable from ``head_id``, parents first; return the new id of ``head_id``."""
        history = dict(walk_commits(self._source, [head_id]))
        stack: list[tuple[ObjectId, bool]] = [(head_id, False)]
        while stack:
            commit_id, is_expanded = stack.pop()
            if commit_id in self.new:
                continue
            commit = history[commit_id]
            parent_ids = parents_of(self._source, commit_id, commit)
            if is_expanded:
                self._remake_commit(commit_id, commit, parent_ids)
            elif not self._is_known(commit_id):
                stack.append((commit_id, True))
                stack.extend((parent_id, False) for parent_id in reversed(parent_ids))
        return self.new[head_id]

    def _remake_commit(self, commit_id: ObjectId, commit: Commit, parent_ids: tuple[ObjectId, ...]) -> None:
        root_id = self.remake_tree(commit.root_id)
        remade = commit._replace(root_id=root_id, parent_ids=tuple(self.new[parent_id] for parent_id in parent_ids))
        self.new[commit_id] = new_id = self._put_node(remade)
        self.new_commits.add(new_id)

    def _is_known(self, object_id: ObjectId) -> bool:
        """True (and mapped) if a previous pass gave ``object_id`` a new id that the destination has."""
        new_id = self._known.get(object_id)
        if new_id is None or not self._dest_has(new_id):
            return False
        self.new[object_id] = new_id
        return True

    def remake_tree(self, top_id: ObjectId) -> ObjectId:
        """Re-make every object reachable from the directory ``top_id``, in post-order; return its new id.

        Raises:
            CorruptionError: an object is missing, damaged, or not of the kind its referrer expects.
        """
        stack: list[tuple[ObjectId, Kind, Node | None]] = [(top_id, Kind.DIR, None)]
        while stack:
            old_id, kind, node = stack.pop()
            if node is not None:  # its children have their new ids now
                self.new[old_id] = self._put_node(_with_new_ids(node, self.new))
                continue
            if old_id in self.new or self._is_known(old_id):
                continue
            record, body = self._source.read_record(old_id)
            found_kind = record.kind
            if found_kind is Kind.CHUNK and kind in (Kind.CHUNK, Kind.FILE):  # a file stored as its one chunk
                self.new[old_id] = self._put_chunk(body)
                continue
            if found_kind is not kind:
                raise CorruptionError(
                    f"object {old_id.hex()[:16]} is a {found_kind.name.lower()}, expected {kind.name.lower()}"
                )
            node = decode(kind, body, old_id.hex())
            stack.append((old_id, kind, node))
            stack.extend((child.object_id, child.kind, None) for child in iter_children(node))
        return self.new[top_id]

    def _put_chunk(self, data: bytes) -> ObjectId:
        new_id = self._dest.chunk_id(data)
        if not self._dest_has(new_id):
            self._write(new_id, data, None)
        return new_id

    def _put_node(self, node: Node) -> ObjectId:
        body = encode(node)
        new_id = self._dest.object_id(node.kind, body)
        if not self._dest_has(new_id):
            self.commits += node.kind is Kind.COMMIT
            self._write(new_id, body, node)
        return new_id

    def _write(self, new_id: ObjectId, body: bytes, node: Node | None) -> None:
        """Write a chunk (``node`` None) or a node under its new id, or in a pass without a batch count it."""
        if self._batch is None and not self._is_exact:
            self._count(len(body))
            return
        record = self._dest.chunk_record(body) if node is None else self._dest.encode_node(node)[1]
        if self._batch is None:  # a dry run: what the push would write, byte for byte (#15)
            self._count(record.stored_bytes)
            return
        if not self._batch.put(new_id, record):
            return
        self._count(record.stored_bytes)
        self._flush_if_due(self._batch)


def _with_new_ids(node: Node, new: dict[ObjectId, ObjectId]) -> Node:
    """Return ``node`` with every child id replaced by its new id (a commit is rebuilt by ``_Remaker``)."""
    if isinstance(node, FileNode | ChunkListNode):
        return node._replace(refs=tuple(ChunkRef(new[ref.id], ref.size_bytes) for ref in node.refs))
    if isinstance(node, DirNode):
        return node._replace(
            shards=tuple((index, new[shard_id]) for index, shard_id in node.shards),
            entries=tuple(entry._replace(id=new[entry.id]) for entry in node.entries),
        )
    if isinstance(node, Commit):
        raise TypeError("a commit is re-made by _Remaker._remake_commit")
    return node
