"""gc: prune history by a retention policy, delete what nothing kept references.

The algorithm, and why it is safe while other processes write:

1. **Retention.** Walk history from HEAD and pick the commits to keep
   (``--keep-last``, ``--keep-within``, ``--keep-hourly`` ... with restic's
   forget semantics; HEAD is always kept; no option keeps everything). The
   kept commits are chained by *grafts*: a table in the repository metadata
   that gives a kept commit a new parent (the next older kept commit), so
   commit ids never change and ``log`` simply skips what was cut.
2. **Mark**, without any lock: every object reachable from the kept
   commits. This is the slow part and runs while others import and commit.
3. **Sweep**, in short steps. Each step holds ``writers.lock`` exclusively,
   which succeeds only when no writable handle is open in any process: no
   import, write, clone or mount is in flight, so no writer holds an id it
   is about to reference (a deduplicated chunk, a cached file node, a
   subtree of an old revision). gc never blocks on the lock: it polls for a
   gap between writers, and writers wait at most one step. Inside a step,
   gc first marks whatever commits landed since its mark (HEAD moved, so
   they and everything they reference are kept), then, in one transaction,
   writes the grafts (first step) and deletes up to ``STEP_OBJECTS``
   unmarked objects.

Crash safety: grafts and deletions commit together, so a crash leaves
either the old history with all its objects, or the cut history with some
garbage left over for the next gc. An object reachable from a kept commit
is never deleted: the mark covers every kept commit at the moment of each
deletion step, because no commit can land while the step holds the lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from zerofs.errors import ConflictError
from zerofs.history import GRAFTS_KEY, encode_grafts, read_grafts
from zerofs.objects import Commit, ObjectId
from zerofs.repo import Repository
from zerofs.retention import Retention, parse_duration, select_kept
from zerofs.tree import iter_reachable

STEP_OBJECTS: Final = 20_000
"""Objects deleted per locked step: a few tens of milliseconds of LMDB deletes."""
POLL_SECONDS: Final = 0.02


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
    compacted: tuple[int, int] | None = None


# -- history walks -----------------------------------------------------------------


def walk_history(
    repo: Repository, start_id: ObjectId, grafts: dict[ObjectId, tuple[ObjectId, ...]], stop: set[ObjectId]
) -> Iterator[tuple[ObjectId, Commit]]:
    """Yield (id, commit) from ``start_id`` along first (grafted) parents, until a commit in ``stop``."""
    commit_id: ObjectId | None = start_id
    while commit_id is not None and commit_id not in stop:
        commit = repo.resolve_commit(commit_id)
        yield commit_id, commit
        parents = grafts.get(commit_id, commit.parent_ids)
        commit_id = parents[0] if parents else None


# -- mark ---------------------------------------------------------------------------


def mark(repo: Repository, commit_ids: Iterable[ObjectId], marked: set[ObjectId]) -> None:
    """Add to ``marked`` every object reachable from the given commits (shared subtrees once)."""
    for commit_id in commit_ids:
        if commit_id in marked:
            continue
        marked.add(commit_id)
        for _ in iter_reachable(repo, repo.resolve_commit(commit_id).root_id, seen=marked):
            pass


# -- gc -----------------------------------------------------------------------------


@dataclass
class _Sweep:
    head_id: ObjectId
    marked: set[ObjectId]
    grafts: dict[ObjectId, tuple[ObjectId, ...]]
    grafts_read: bytes | None
    deleted: int = 0
    freed: int = 0
    waited: float = 0.0
    grafts_written: bool = False
    kept_new: list[ObjectId] = field(default_factory=list)


def collect_garbage(
    repo: Repository,
    policy: Retention,
    *,
    dry_run: bool = False,
    compact: bool = False,
    on_progress: Callable[[str, int], None] | None = None,
) -> GcResult:
    """Cut history to ``policy`` and delete every object no kept commit reaches.

    Open ``repo`` without a writer lease (``Repository.open(...,
    writer_lease=False)``): gc takes the writers' lock exclusively instead.
    Writes, per locked step: grafts (first step) and deletions, in one
    transaction. With ``compact``, finally rewrites the store compactly
    (this needs the repository to itself) and closes it.

    Raises:
        UsageError: a malformed retention option.
        ConflictError: ``compact`` while another process has the repository open.
    """
    if policy.keep_within:
        parse_duration(policy.keep_within)
    if compact and not dry_run and repo.store.is_open_elsewhere():
        raise ConflictError(
            f"the repository at {repo.path} is open in another process; close it (or unmount it) "
            "and run gc --compact again"
        )
    grafts = read_grafts(repo)
    head_id = repo.head_id()
    history = list(walk_history(repo, head_id, grafts, set()))
    kept_ids = select_kept([(commit_id, commit.time_ns) for commit_id, commit in history], policy)
    kept = [(commit_id, commit) for commit_id, commit in history if commit_id in kept_ids]
    removed = tuple((commit_id, commit) for commit_id, commit in history if commit_id not in kept_ids)
    new_grafts = _cut(grafts, history, kept)
    marked: set[ObjectId] = set()
    mark(repo, [commit_id for commit_id, _ in kept], marked)
    if on_progress is not None:
        on_progress("marked", len(marked))
    if dry_run:
        garbage = [object_id for object_id in repo.store.iter_ids() if object_id not in marked]
        freed = sum(len(repo.store.get(object_id) or b"") for object_id in garbage)
        return GcResult(len(history), len(kept), removed, len(garbage), freed, True, 0.0)
    # Objects stored after this listing are not candidates: they belong to writers
    # that started after the mark, and are referenced or left for the next gc.
    candidates = [object_id for object_id in repo.store.iter_ids() if object_id not in marked]
    sweep = _Sweep(head_id, marked, new_grafts, repo.store.get_meta(GRAFTS_KEY))
    for start in range(0, max(len(candidates), 1), STEP_OBJECTS):
        _sweep_step(repo, sweep, candidates[start : start + STEP_OBJECTS])
        if on_progress is not None:
            on_progress("deleted", sweep.deleted)
    compacted = repo.store.compact() if compact else None
    return GcResult(len(history), len(kept), removed, sweep.deleted, sweep.freed, False, sweep.waited, compacted)


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
    """Wait for a gap between writers, then delete ``candidates`` still unmarked.

    Raises:
        ConflictError: another gc changed the history cut since this one began.
    """
    started = time.monotonic()
    while True:
        with repo.store.writers_excluded() as is_alone:
            if is_alone:
                sweep.waited += time.monotonic() - started
                if repo.store.get_meta(GRAFTS_KEY) != sweep.grafts_read and not sweep.grafts_written:
                    raise ConflictError("another gc cut the history while this one ran; run gc again")
                _mark_new_commits(repo, sweep)
                with repo.store.batch() as batch:
                    if not sweep.grafts_written:
                        batch.put_meta(GRAFTS_KEY, encode_grafts(sweep.grafts))
                    for object_id in candidates:
                        if object_id in sweep.marked:
                            continue
                        record = repo.store.get(object_id)
                        if record is not None and batch.delete(object_id):
                            sweep.deleted += 1
                            sweep.freed += len(record)
                sweep.grafts_written = True
                sweep.grafts_read = encode_grafts(sweep.grafts)
                return
        time.sleep(POLL_SECONDS)


def _mark_new_commits(repo: Repository, sweep: _Sweep) -> None:
    """Mark commits that landed since the last mark (they are all kept)."""
    head_id = repo.head_id()
    if head_id == sweep.head_id:
        return
    new = [commit_id for commit_id, _ in walk_history(repo, head_id, sweep.grafts, {sweep.head_id})]
    mark(repo, new, sweep.marked)
    sweep.head_id = head_id
