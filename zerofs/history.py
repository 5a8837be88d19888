"""Commits and HEAD: every change is a commit, and HEAD moves only by CAS.

A change is a function from the current root to a new root. ``apply_change``
reads HEAD, runs the function against HEAD's root while staging the nodes it
builds, then, in one write transaction, checks that HEAD has not moved,
writes the staged objects and the commit, and swaps HEAD. If another process
committed in between, nothing is written and the change is re-applied to
the new HEAD, so two concurrent writers both land and neither is lost.

Crash safety: objects are written before (or atomically with) the ref that
names them. A crash before the transaction commits leaves HEAD where it was;
objects written by earlier, already-committed batches (a long import) are
then unreferenced garbage, never a dangling reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

from zerofs.errors import ConflictError
from zerofs.objects import Commit, ObjectId
from zerofs.repo import Repository, Staging
from zerofs.store import WriteBatch

HEAD: Final = b"HEAD"
MAX_ATTEMPTS: Final = 1000


class _HeadMoved(Exception):
    """Raised inside a batch to abort it when HEAD moved under us."""


class ChangeOutcome(NamedTuple):
    """What a committed change produced."""

    commit_id: ObjectId | None
    """The new commit, or None when the change left the tree as it was."""
    root_id: ObjectId
    attempts: int


Change = Callable[[Staging, ObjectId, int], ObjectId]
"""(staging, current root id, now in ns) -> new root id."""


def head(repo: Repository) -> tuple[ObjectId, Commit]:
    """Return HEAD's commit id and commit."""
    commit_id = repo.head_id()
    return commit_id, repo.resolve_commit(commit_id)


def apply_change(
    repo: Repository,
    change: Change,
    *,
    message: str,
    operation: dict[str, object],
    before_commit: Callable[[WriteBatch], None] | None = None,
) -> ChangeOutcome:
    """Apply ``change`` to HEAD's tree and commit it, retrying if HEAD moves.

    Writes, in one write transaction: the staged nodes, the commit, and
    (last) HEAD by compare-and-swap. ``before_commit`` may add writes of its
    own (a cache) to that transaction.

    Raises:
        ConflictError: HEAD kept moving for ``MAX_ATTEMPTS`` attempts.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        head_id, head_commit = head(repo)
        staging = Staging(repo)
        now_ns = time.time_ns()
        new_root = change(staging, head_commit.root_id, now_ns)
        if new_root == head_commit.root_id:
            return ChangeOutcome(None, new_root, attempt)
        commit = Commit(new_root, (head_id,), now_ns, author(), message, operation)
        commit_id = staging.put(commit)
        try:
            with repo.store.batch() as batch:
                if batch.get_ref(HEAD) != head_id:
                    raise _HeadMoved
                staging.write_to(batch)
                if before_commit is not None:
                    before_commit(batch)
                if not batch.cas_ref(HEAD, head_id, commit_id):
                    raise _HeadMoved
        except _HeadMoved:
            time.sleep(min(0.001 * attempt, 0.05))
            continue
        return ChangeOutcome(commit_id, new_root, attempt)
    raise ConflictError(f"the repository kept changing under us; gave up after {MAX_ATTEMPTS} attempts")


def iter_log(repo: Repository, start_id: ObjectId | None = None) -> Iterator[tuple[ObjectId, Commit]]:
    """Yield (id, commit) from ``start_id`` (default HEAD) back along first parents."""
    commit_id: ObjectId | None = start_id or repo.head_id()
    while commit_id is not None:
        commit = repo.resolve_commit(commit_id)
        yield commit_id, commit
        commit_id = commit.parent_ids[0] if commit.parent_ids else None


_author_cache: list[str] = []


def author() -> str:
    """Return ``user@host`` for the commits this process makes."""
    if not _author_cache:
        import pwd

        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = str(os.geteuid())
        _author_cache.append(f"{user}@{os.uname().nodename}")
    return _author_cache[0]
