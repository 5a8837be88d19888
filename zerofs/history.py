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

Revisions name commits without writing anything: ``HEAD``, ``HEAD~N``,
``HEAD^`` (chains such as ``HEAD~2^^``) and a unique prefix of at least
``MIN_PREFIX_HEX`` hex digits of a commit id, optionally followed by the
same ``~N``/``^`` suffixes. ``~N`` and ``^`` follow first parents only.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Container, Iterable, Iterator
from typing import Final, NamedTuple

from zerofs.errors import ConflictError, NotFoundError, UsageError
from zerofs.objects import Commit, Kind, ObjectId
from zerofs.repo import RefMovedError, RepoBatch, Repository, Staging

HEAD: Final = b"HEAD"
MAX_ATTEMPTS: Final = 1000
MIN_PREFIX_HEX: Final = 4
"""Shortest commit id prefix accepted as a revision."""
MAX_CANDIDATES_SHOWN: Final = 5

_REVISION = re.compile(r"(?P<base>HEAD|[0-9a-fA-F]+)(?P<steps>(?:~[0-9]*|\^)*)")
_STEP = re.compile(r"~([0-9]*)|\^")
_MAX_STEP_DIGITS: Final = 18
"""``~N`` with more digits than this goes back past any first commit (and Python refuses to parse 4,300 digits)."""


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
    before_commit: Callable[[RepoBatch], None] | None = None,
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
            with repo.batch() as batch:
                if batch.get_ref(HEAD) != head_id:
                    raise _HeadMoved
                staging.write_to(batch, commit_id)
                if before_commit is not None:
                    before_commit(batch)
                if not batch.cas_ref(HEAD, head_id, commit_id):
                    raise _HeadMoved
        except (_HeadMoved, RefMovedError):
            time.sleep(min(0.001 * attempt, 0.05))
            continue
        return ChangeOutcome(commit_id, new_root, attempt)
    raise ConflictError(
        f"the repository at {repo.path} kept changing under us; gave up after {MAX_ATTEMPTS} attempts "
        "(run the command again)"
    )


Grafts = dict[ObjectId, tuple[ObjectId, ...]]
"""A graft table: commit id -> the parents it has since gc cut history."""


GRAFTS: Final = b"GRAFTS"
"""The ref naming gc's graft table (a GRAFTS object), once gc has cut history."""
_grafts_cache: dict[ObjectId, Grafts] = {}


def read_grafts(repo: Repository) -> Grafts:
    """Return the graft table: commit id -> the parents it has since gc cut history.

    Commits are immutable, so gc does not rewrite the ones it keeps: it
    records their new parents in a table named by the GRAFTS ref, and every
    walk of history goes through ``parents_of``. A table is immutable too,
    so it is decoded once per process.

    Raises:
        CorruptionError: the table is missing or damaged.
    """
    grafts_id = repo.get_ref(GRAFTS)
    if grafts_id is None:
        return {}
    table = _grafts_cache.get(grafts_id)
    if table is None:
        raw = json.loads(repo.read_blob(grafts_id, Kind.GRAFTS))
        table = {bytes.fromhex(k): tuple(bytes.fromhex(p) for p in v) for k, v in raw.items()}
        _grafts_cache[grafts_id] = table
    return table


def encode_grafts(grafts: Grafts) -> bytes:
    """Return the canonical stored form of a graft table."""
    table = {k.hex(): [p.hex() for p in v] for k, v in sorted(grafts.items())}
    return json.dumps(table, sort_keys=True, separators=(",", ":")).encode()


def parents_of(repo: Repository, commit_id: ObjectId, commit: Commit) -> tuple[ObjectId, ...]:
    """Return a commit's parents as history has them now (after any gc cut)."""
    return read_grafts(repo).get(commit_id, commit.parent_ids)


def walk_commits(
    repo: Repository,
    start_ids: Iterable[ObjectId] | None = None,
    *,
    all_parents: bool = True,
    stop: Container[ObjectId] = frozenset(),
    grafts: Grafts | None = None,
    read: Callable[[ObjectId], Commit | None] | None = None,
) -> Iterator[tuple[ObjectId, Commit]]:
    """Yield (id, commit) of every commit reachable from ``start_ids``, once each, a commit before its parents.

    The one walk of history: log, revisions, gc, fsck, usage and sync all
    go through it, so every one of them follows gc's grafts. Depth first:
    a commit's first parent (and its ancestors) come before its other
    parents.

    Args:
        repo: the repository (only read).
        start_ids: where to start (default: HEAD).
        all_parents: follow every parent; False follows first parents only
            (``log``, and gc's retention, which counts the first-parent chain).
        stop: commits neither yielded nor walked past (gc: a HEAD it has marked).
        grafts: the parent table to follow (default: the stored one); gc
            passes the table it is about to write.
        read: how a commit is read (default ``Repository.resolve_commit``,
            which raises on a missing or damaged commit). One that returns
            None skips the commit and its ancestors: fsck reports them as
            findings instead of stopping.

    Raises:
        CorruptionError: with the default ``read``, a commit of the walk is
            missing or damaged; without ``grafts``, the graft table is damaged.
    """
    table = read_grafts(repo) if grafts is None else grafts
    read_commit = repo.resolve_commit if read is None else read
    pending = list(start_ids) if start_ids is not None else [repo.head_id()]
    pending.reverse()
    seen: set[ObjectId] = set()
    while pending:
        commit_id = pending.pop()
        if commit_id in seen or commit_id in stop:
            continue
        seen.add(commit_id)
        commit = read_commit(commit_id)
        if commit is None:
            continue
        yield commit_id, commit
        parents = table.get(commit_id, commit.parent_ids)
        pending.extend(reversed(parents if all_parents else parents[:1]))


def iter_log(repo: Repository, start_id: ObjectId | None = None) -> Iterator[tuple[ObjectId, Commit]]:
    """Yield (id, commit) from ``start_id`` (default HEAD) back along first parents."""
    return walk_commits(repo, None if start_id is None else [start_id], all_parents=False)


def resolve_revision(repo: Repository, text: str | None) -> ObjectId:
    """Return the id of the commit that revision ``text`` names (None means HEAD).

    Reads only: nothing is written, whatever ``text`` is.

    Raises:
        UsageError: ``text`` is not revision syntax, or a hex prefix is shorter
            than ``MIN_PREFIX_HEX`` digits or matches several commits.
        NotFoundError: no commit has that prefix, or ``~N``/``^`` goes back
            past the first commit.
    """
    if text is None:
        return repo.head_id()
    match = _REVISION.fullmatch(text)
    if match is None:
        upper = "HEAD" + text[4:]
        hint = f" (did you mean {upper}?)" if text[:4].upper() == "HEAD" and is_revision(upper) else ""
        raise UsageError(
            f"invalid revision {text!r}: expected HEAD, HEAD~N, HEAD^ or a commit id prefix "
            f"of at least {MIN_PREFIX_HEX} hex digits{hint}"
        )
    base = match["base"]
    commit_id = repo.head_id() if base == "HEAD" else _commit_by_prefix(repo, base.lower())
    # ``~`` alone and ``^`` each mean one first parent back; ``~N`` means N.
    back = sum(_count(step[1]) for step in _STEP.finditer(match["steps"]))
    return _first_parent_ancestor(repo, commit_id, back, text, base)


def _count(digits: str) -> int:
    """The N of ``~N`` (1 for a bare ``~``); more digits than any history has count as that much."""
    if not digits:
        return 1
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= _MAX_STEP_DIGITS else 10**_MAX_STEP_DIGITS


def is_revision(text: str) -> bool:
    """True if ``text`` is written like a revision (it may still name no commit)."""
    return _REVISION.fullmatch(text) is not None


def _commit_by_prefix(repo: Repository, prefix_hex: str) -> ObjectId:
    if len(prefix_hex) < MIN_PREFIX_HEX:
        raise UsageError(
            f"revision {prefix_hex!r} is too short: give at least {MIN_PREFIX_HEX} hex digits of a commit id"
        )
    # An odd number of digits cannot be a byte prefix: scan by the even part, filter by text.
    byte_prefix = bytes.fromhex(prefix_hex[: len(prefix_hex) // 2 * 2])
    found: list[ObjectId] = []
    for object_id, info in repo.iter_blobs(byte_prefix):
        if not object_id.hex().startswith(prefix_hex):
            continue
        if info.kind is Kind.COMMIT:
            found.append(object_id)
            if len(found) > MAX_CANDIDATES_SHOWN:
                break
    if not found:
        raise NotFoundError(
            f"unknown revision {prefix_hex!r}: no commit id starts with it (zerofs log lists the commits)"
        )
    if len(found) > 1:
        shown = ", ".join(c.hex()[:12] for c in found[:MAX_CANDIDATES_SHOWN])
        more = ", ..." if len(found) > MAX_CANDIDATES_SHOWN else ""
        raise UsageError(f"ambiguous revision {prefix_hex!r}: it starts commits {shown}{more}; give more digits")
    return found[0]


def _first_parent_ancestor(repo: Repository, commit_id: ObjectId, back: int, text: str, base: str) -> ObjectId:
    step = 0
    for step, (ancestor_id, _) in enumerate(walk_commits(repo, [commit_id], all_parents=False)):
        if step == back:
            return ancestor_id  # read by the walk: a prefix or a parent names a readable commit
    first = f"{base}~{step}" if step else base
    raise NotFoundError(f"revision {text!r} goes back past the first commit (the first commit is {first})")


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


def iter_history(repo: Repository, start_ids: Iterable[ObjectId] | None = None) -> Iterator[tuple[ObjectId, Commit]]:
    """Yield (id, commit) of every commit reachable from ``start_ids`` (default HEAD), once each, all parents."""
    return walk_commits(repo, start_ids)
