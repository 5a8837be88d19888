"""gc: prune history by a retention policy, forget what nothing kept references, give the space back.

The algorithm, and why it is safe while other processes import, write,
clone and mount:

1. **Retention.** Walk history from HEAD and pick the commits to keep
   (keep the last N, keep within a duration, keep hourly ... with restic's
   forget semantics; HEAD is always kept; no rule keeps everything). The
   kept commits are chained by *grafts*: a table (an object named by the
   GRAFTS ref) that gives a kept commit a new parent, so commit ids never
   change and ``log`` simply skips what was cut.
2. **Mark**, without any lock: every object reachable from the kept commits,
   and the graft table. This is the slow part and runs while others write.
3. **Sweep**, in short steps. Each step holds ``writers.lock`` exclusively,
   which succeeds only when no writer is in flight in any process: no
   import, write, clone or mount commit holds an id it is about to
   reference (a deduplicated chunk, a cached file node, a subtree of an old
   revision). gc never blocks on the lock: it polls for a gap between
   writers, and writers wait at most one step. Inside a step, gc first marks
   the commits that landed since its mark (HEAD moved, so they and all they
   reference are kept), then, in one index transaction, moves GRAFTS to the
   new table (first step) and forgets up to ``STEP_OBJECTS`` unmarked
   objects. Forgetting removes index entries only; the bytes stay in their
   packs.

   **Referrers first.** Between two steps writers run, and a writer may
   build on a garbage object that is still indexed: the host-file cache
   names a file node, a clone of an old revision takes its subtree, a push
   asks ``has`` and skips what is there. The next step marks it kept, with
   everything below it; so what is below it must still be there. The sweep
   therefore forgets garbage in a topological order of the garbage graph
   (``referrers_first``): graft tables, then commits, directories top-down,
   file and chunk-list nodes, in reverse post-order of one depth-first walk
   that reads each garbage node once; then chunks, symlinks and special
   files, which reference nothing. After any prefix of that order, what is
   still indexed of the garbage is closed downwards (an indexed object's
   children are indexed: garbage ones come later in the order, kept ones
   are never forgotten), and a mark only ever removes whole downward-closed
   sets from the garbage, so the order stays valid step after step. So,
   for every object gc listed, "the repository has X" keeps meaning "it has
   all X references" at every moment a writer can look. The cost: one read
   of every garbage metadata node (as the mark reads each kept one; chunks
   are not read), and while ordering, a map and a set of ids as large as
   the garbage beside its list.

   Not covered: objects stored after the listing that no commit names when
   a step runs (left by a writer that failed between two steps: a transfer
   whose compare-and-swap lost, a killed import whose batch was partly
   durable) are neither candidates nor marked, and a forgotten candidate a
   failed writer stored again is indexed once more. They stay, and may
   reference garbage this gc goes on to forget. A writer that stores
   bottom-up checks every child again, but one that reuses an id without
   looking below it could build on such an object: a push skipping what
   the destination has, the importer's host-file cache, a clone of a
   commit named by its id. Push does not run beside a sweep
   (services/sync.py), which keeps its own leftovers out of this window.
   Marking from such objects at each step (they sit in packs written since
   the listing) would close it; that is not done yet.

4. **Reclaim**, without the writers' lock (only one gc at a time): packs
   that hold no indexed object are deleted; packs whose dead bytes reach
   ``DEAD_SHARE`` (and packs a dead writer left without a trailer) have
   their live objects copied to a new pack, made durable, re-pointed in one
   index transaction, and only then deleted. No writer needs excluding:
   nobody adds to a closed pack, an object a writer is about to reference
   stays indexed (it only moves), and a reader that looked an object up in
   a pack deleted since looks it up again. There is no wall-clock safety
   delay anywhere.

Crash safety: the graft move and the deletions of a step commit together,
so a crash leaves either the old history with all its objects, or the cut
history with some garbage left over for the next gc. An object reachable
from a kept commit is never forgotten (the mark covers every kept commit at
the moment of each step, because no commit can land while the step holds
the lock, and what a new commit reuses of the garbage gc listed is still
whole, see "Referrers first"), and never loses its bytes (a pack is deleted only after the
index names a durable copy of everything live in it). A crash while
reclaiming leaves at most a new pack nobody names, which the next gc
deletes.

``DEAD_SHARE`` was chosen by measurement (benchmarks/gc_bench.py, see
docs/ARCHITECTURE.md): lower rewrites more bytes per byte given back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from zerofs.errors import ConflictError, CorruptionError, Hint, UsageError
from zerofs.history import GRAFTS, encode_grafts, read_grafts, walk_commits
from zerofs.objects import Commit, Kind, ObjectId, decode, iter_child_ids
from zerofs.reachable import iter_reachable, mark_commits
from zerofs.repo import Repository
from zerofs.retention import Retention, parse_duration, select_kept

STEP_OBJECTS: Final = 20_000
"""Objects forgotten per locked step: a few tens of milliseconds of index deletes."""
POLL_SECONDS: Final = 0.02
DEAD_SHARE: Final = 0.15
"""A pack with at least this share of dead bytes is rewritten.

Chosen by benchmarks/pack_params.py: when half the data is deleted in the
layout that gives back least (whole packs dead, every other pack just under
the threshold), du falls by 1 - t/(1 - t) of what gc freed, so t <= 1/6 keeps
that at 80% or more; 0.15 measured 0.85, and rewrites 29% fewer bytes over
ten rounds of churn than borg's 0.1 (0.92)."""


@dataclass(frozen=True, slots=True)
class GcResult:
    """What gc did (or, with ``dry_run``, would do)."""

    commits_total: int
    commits_kept: int
    commits_removed: tuple[tuple[ObjectId, Commit], ...]
    objects_deleted: int
    bytes_freed: int
    dry_run: bool
    waited_seconds: float
    packs_deleted: int = 0
    packs_rewritten: int = 0
    bytes_reclaimed: int = 0
    """Pack bytes given back to the file system (deleted, less what rewriting wrote)."""
    compacted: tuple[int, int] | None = None


# -- gc -----------------------------------------------------------------------------


@dataclass
class _Sweep:
    head_id: ObjectId
    marked: set[ObjectId]
    grafts: dict[ObjectId, tuple[ObjectId, ...]]
    grafts_read: ObjectId | None
    deleted: int = 0
    freed: int = 0
    waited: float = 0.0
    is_cut: bool = False
    """True when the retention policy cut history (a new graft table is written)."""
    grafts_written: bool = False
    kept_new: list[ObjectId] = field(default_factory=list)


def collect_garbage(
    repo: Repository,
    policy: Retention,
    *,
    dry_run: bool = False,
    compact: bool = False,
    on_progress: Callable[[str, int], None] | None = None,
    step_objects: int = STEP_OBJECTS,
    break_lock: bool = False,
) -> GcResult:
    """Cut history to ``policy``, forget every object no kept commit reaches, give the space back.

    Open ``repo`` without a writer lease (``Repository.open(...,
    writer_lease=False)``): gc takes the writers' lock exclusively instead.
    Writes, per locked step: the graft table and GRAFTS (first step) and
    the deletions, in one transaction; then rewrites packs (new pack first,
    index next, old pack last). With ``compact``, finally rewrites the index
    without its free pages (this needs the repository to itself).

    On S3 (``repo.is_shared``) gc runs in phases instead, and never excludes
    writers: see ``_collect_shared``. ``break_lock``: remove the lock a gc
    that died left there first.

    Raises:
        UsageError: a malformed retention option, or ``compact`` or ``break_lock`` where they do not apply.
        ConflictError: another gc is running, or ``compact`` while another
            process has the repository open.
    """
    if policy.keep_within:
        parse_duration(policy.keep_within)
    if repo.is_shared and compact:
        raise UsageError(
            "compacting applies to local repositories only: an S3 repository's index is its bucket",
            hint=Hint.WITHOUT_COMPACT,
        )
    if break_lock and not repo.is_shared:
        raise UsageError(
            "breaking a gc lock applies to S3 repositories only: a local gc's lock goes with its process",
            hint=Hint.WITHOUT_BREAK_LOCK,
        )
    with repo.collecting(break_lock=break_lock) as is_only_gc:
        if not is_only_gc:
            if repo.is_shared:
                raise ConflictError(
                    f"another gc is running on the repository at {repo.path} ({repo.gc_lock_holder()})",
                    hint=Hint.BREAK_LOCK,
                )
            raise ConflictError(f"another gc is running on the repository at {repo.path}; wait for it to finish")
        if repo.is_shared:
            return _collect_shared(repo, policy, dry_run=dry_run, on_progress=on_progress)
        if compact and not dry_run and repo.is_open_elsewhere():
            raise ConflictError(f"the repository at {repo.path} is open in another process", hint=Hint.COMPACT_AGAIN)
        return _collect(repo, policy, dry_run=dry_run, compact=compact, on_progress=on_progress, step=step_objects)


def _collect(
    repo: Repository,
    policy: Retention,
    *,
    dry_run: bool,
    compact: bool,
    on_progress: Callable[[str, int], None] | None,
    step: int,
) -> GcResult:
    retained = _retain(repo, policy, on_progress)
    history, kept, removed, marked = retained.history, retained.kept, retained.removed, retained.marked
    if dry_run:
        return _dry_run(repo, retained)
    # Objects stored after this listing are not candidates: they belong to writers
    # that started after the mark, and are referenced or left for the next gc
    # (see "Not covered" above).
    candidates = referrers_first(repo, {i: info.kind for i, info in repo.iter_blobs() if i not in marked})
    sweep = _Sweep(
        retained.head_id, marked, retained.new_grafts, retained.grafts_id, is_cut=retained.new_grafts != retained.grafts
    )
    for start in range(0, max(len(candidates), 1), step):
        _sweep_step(repo, sweep, candidates[start : start + step])
        if on_progress is not None:
            on_progress("deleted", sweep.deleted)
    reclaimed = repo.reclaim(DEAD_SHARE)
    compacted = repo.compact_index() if compact else None
    return GcResult(
        len(history),
        len(kept),
        removed,
        sweep.deleted,
        sweep.freed,
        False,
        sweep.waited,
        reclaimed.packs_deleted,
        reclaimed.packs_rewritten,
        reclaimed.bytes_reclaimed,
        compacted,
    )


@dataclass
class _Retained:
    """History as gc found it, what the policy keeps, and what the kept commits reach."""

    head_id: ObjectId
    grafts: dict[ObjectId, tuple[ObjectId, ...]]
    grafts_id: ObjectId | None
    history: list[tuple[ObjectId, Commit]]
    kept: list[tuple[ObjectId, Commit]]
    removed: tuple[tuple[ObjectId, Commit], ...]
    new_grafts: dict[ObjectId, tuple[ObjectId, ...]]
    marked: set[ObjectId]


def _retain(repo: Repository, policy: Retention, on_progress: Callable[[str, int], None] | None) -> _Retained:
    """Apply the retention policy to history from HEAD, and mark what the kept commits (and the grafts) reach."""
    grafts = read_grafts(repo)
    grafts_id = repo.get_ref(GRAFTS)
    head_id = repo.head_id()
    history = list(walk_commits(repo, [head_id], all_parents=False, grafts=grafts))
    kept_ids = select_kept([(commit_id, commit.time_ns) for commit_id, commit in history], policy)
    kept = [(commit_id, commit) for commit_id, commit in history if commit_id in kept_ids]
    removed = tuple((commit_id, commit) for commit_id, commit in history if commit_id not in kept_ids)
    marked: set[ObjectId] = set() if grafts_id is None else {grafts_id}
    mark_commits(repo, [commit_id for commit_id, _ in kept], marked)
    if on_progress is not None:
        on_progress("marked", len(marked))
    return _Retained(head_id, grafts, grafts_id, history, kept, removed, _cut(grafts, history, kept), marked)


def _dry_run(repo: Repository, retained: _Retained) -> GcResult:
    """What gc would forget: every stored object the kept commits do not reach."""
    garbage = [(object_id, info) for object_id, info in repo.iter_blobs() if object_id not in retained.marked]
    freed = sum(info.stored_bytes for _, info in garbage)
    return GcResult(len(retained.history), len(retained.kept), retained.removed, len(garbage), freed, True, 0.0)


# -- gc on S3 ------------------------------------------------------------------------


def _collect_shared(
    repo: Repository, policy: Retention, *, dry_run: bool, on_progress: Callable[[str, int], None] | None
) -> GcResult:
    """Gc of a repository many hosts share (S3): plan, wait the grace period, mark again, then delete.

    The protocol and why it is safe are in ``store/s3gc.py``. Here: cut
    history (the graft table is written first, as locally), mark, have the
    store publish the plan, wait, mark from every commit that landed
    meanwhile and every node stored meanwhile (all kept), then have the
    store copy out what is marked and delete the rest.
    """
    retained = _retain(repo, policy, on_progress)
    if dry_run:
        return _dry_run(repo, retained)
    marked = retained.marked
    if retained.new_grafts != retained.grafts:
        with repo.batch() as batch:
            grafts_id = batch.put_blob(Kind.GRAFTS, encode_grafts(retained.new_grafts))
            if not batch.cas_ref(GRAFTS, retained.grafts_id, grafts_id):
                raise ConflictError("another gc cut the history while this one ran; run gc again")
        marked.add(grafts_id)
    collection = repo.publish_collection(marked, DEAD_SHARE)
    if on_progress is not None:
        on_progress("planned", len(collection.plan.doomed))
    waited = collection.wait()
    sweep = _Sweep(retained.head_id, marked, retained.new_grafts, None)
    _mark_new_commits(repo, sweep)
    for node_id, kind in collection.nodes_stored_since():
        if node_id in marked:
            continue
        if kind is Kind.COMMIT:
            mark_commits(repo, [node_id], marked)
        else:
            for _ in iter_reachable(repo, node_id, kind=kind, seen=marked):
                pass
    reclaimed, deleted, freed = collection.finish(marked)
    if on_progress is not None:
        on_progress("deleted", deleted)
    return GcResult(
        len(retained.history),
        len(retained.kept),
        retained.removed,
        deleted,
        freed,
        False,
        waited,
        reclaimed.packs_deleted,
        reclaimed.packs_rewritten,
        reclaimed.bytes_reclaimed,
    )


# -- sweep order --------------------------------------------------------------------

_LEAVES: Final = frozenset({Kind.CHUNK, Kind.SYMLINK, Kind.SPECIAL})
"""Kinds that reference nothing: never read to order the sweep, forgotten last."""


def referrers_first(repo: Repository, garbage: dict[ObjectId, Kind]) -> list[ObjectId]:
    """Return ``garbage`` in an order that puts every object before each garbage object it references.

    Graft tables first (nothing references one), then the commit, directory,
    file and chunk-list nodes in reverse post-order of a depth-first walk of
    the garbage graph (each read once, not cached: the garbage can be far
    larger than the node cache), then chunks, symlinks and special files,
    which reference nothing and are not read. A node that cannot be read
    goes first with the graft tables, before anything it may reference.
    """
    unvisited = {object_id for object_id, kind in garbage.items() if kind not in _LEAVES and kind is not Kind.GRAFTS}
    first = [object_id for object_id, kind in garbage.items() if kind is Kind.GRAFTS]
    post_order: list[ObjectId] = []
    for root_id in garbage:
        if root_id in unvisited:
            unvisited.discard(root_id)
            _walk_garbage(repo, root_id, unvisited, post_order, first)
    post_order.reverse()
    return [*first, *post_order, *(object_id for object_id, kind in garbage.items() if kind in _LEAVES)]


def _walk_garbage(
    repo: Repository,
    root_id: ObjectId,
    unvisited: set[ObjectId],
    post_order: list[ObjectId],
    unreadable: list[ObjectId],
) -> None:
    """Append the garbage nodes below ``root_id`` still in ``unvisited``, then ``root_id``, to ``post_order``.

    Children come before their referrers. Iterative: a deep tree or a long
    chain of removed commits needs no recursion.
    """
    stack = [(root_id, _garbage_children(repo, root_id, unvisited))]
    while stack:
        node_id, children = stack[-1]
        if children is None:
            stack.pop()
            unreadable.append(node_id)
            continue
        for child_id in children:
            if child_id in unvisited:
                unvisited.discard(child_id)
                stack.append((child_id, _garbage_children(repo, child_id, unvisited)))
                break
        else:
            stack.pop()
            post_order.append(node_id)


def _garbage_children(repo: Repository, node_id: ObjectId, unvisited: set[ObjectId]) -> Iterator[ObjectId] | None:
    """The garbage nodes ``node_id`` references and the walk has not reached, or None if it cannot be read."""
    try:
        node = decode(*repo.get_record_body(node_id), node_id.hex())
    except CorruptionError:
        return None
    return iter([child_id for _, child_id in iter_child_ids(node) if child_id in unvisited])


# -- retention -----------------------------------------------------------------------


def _cut(
    grafts: dict[ObjectId, tuple[ObjectId, ...]],
    history: list[tuple[ObjectId, Commit]],
    kept: list[tuple[ObjectId, Commit]],
) -> dict[ObjectId, tuple[ObjectId, ...]]:
    """Return grafts that chain the kept commits, newest first, and drop the rest."""
    kept_ids = [commit_id for commit_id, _ in kept]
    new = {k: v for k, v in grafts.items() if k in set(kept_ids)}
    for position, (commit_id, commit) in enumerate(kept):
        wanted = (kept_ids[position + 1],) if position + 1 < len(kept_ids) else ()
        current = grafts.get(commit_id, commit.parent_ids)
        if current[:1] != wanted[:1] or (not wanted and current):
            new[commit_id] = wanted
    if len(kept) == len(history):
        return grafts
    return new


def _sweep_step(repo: Repository, sweep: _Sweep, candidates: list[ObjectId]) -> None:
    """Wait for a gap between writers, then forget ``candidates`` still unmarked.

    Raises:
        ConflictError: the history cut changed since this gc began (another gc, from an older zerofs).
    """
    started = time.monotonic()
    while True:
        with repo.writers_excluded() as is_alone:
            if is_alone:
                sweep.waited += time.monotonic() - started
                if repo.get_ref(GRAFTS) != sweep.grafts_read:
                    raise ConflictError("another gc cut the history while this one ran; run gc again")
                _mark_new_commits(repo, sweep)
                with repo.batch() as batch:
                    grafts_id = sweep.grafts_read
                    if not sweep.grafts_written and sweep.is_cut:
                        grafts_id = batch.put_blob(Kind.GRAFTS, encode_grafts(sweep.grafts))
                        sweep.marked.add(grafts_id)
                        if grafts_id != sweep.grafts_read:
                            batch.cas_ref(GRAFTS, sweep.grafts_read, grafts_id)
                    for object_id in candidates:
                        if object_id in sweep.marked:
                            continue
                        info = repo.blob_info(object_id)
                        if info is not None and batch.delete(object_id):
                            sweep.deleted += 1
                            sweep.freed += info.stored_bytes
                sweep.grafts_written = True
                sweep.grafts_read = grafts_id
                return
        time.sleep(POLL_SECONDS)


def _mark_new_commits(repo: Repository, sweep: _Sweep) -> None:
    """Mark commits that landed since the last mark (they are all kept)."""
    head_id = repo.head_id()
    if head_id == sweep.head_id:
        return
    landed = walk_commits(repo, [head_id], all_parents=False, stop={sweep.head_id}, grafts=sweep.grafts)
    new = [commit_id for commit_id, _ in landed]
    mark_commits(repo, new, sweep.marked)
    sweep.head_id = head_id
