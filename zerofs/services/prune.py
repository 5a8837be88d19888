"""prune: apply a retention policy to the snapshot directories under a directory.

Snapshots kept as dated clones (``/snapshots/daily/2026-11-24``, ...) are
dated by the creation time the store records on each entry when it is
placed (``DirEntry.created_ns``), never by their names or mtimes (a clone
keeps its source's mtime). An entry with no record (made before zerofs
recorded creation times) is kept and reported: prune never removes what it
cannot date. Everything the policy does not keep goes in one commit; the
space comes back with the next ``gc``.
"""

from __future__ import annotations

from dataclasses import dataclass

from zerofs.dirnodes import list_dir
from zerofs.errors import ConflictError, Hint, UsageError
from zerofs.history import apply_change
from zerofs.objects import DirEntry, Kind, ObjectId
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.retention import Retention, select_kept
from zerofs.tree import lookup, remove


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What prune removed (or, with ``dry_run``, would remove)."""

    directory: StorePath
    kept: tuple[tuple[StorePath, int], ...]
    removed: tuple[tuple[StorePath, int], ...]
    undated: tuple[StorePath, ...]
    commit_id: ObjectId | None
    dry_run: bool


def _dated(entries: list[DirEntry], directory: StorePath) -> tuple[list[tuple[StorePath, int]], list[StorePath]]:
    dated = []
    undated = []
    for entry in entries:
        path = directory.child(entry.name)
        created = entry.created_ns
        if created is None:
            undated.append(path)
        else:
            dated.append((path, created))
    dated.sort(key=lambda item: (item[1], item[0].parts), reverse=True)
    return dated, undated


def prune_snapshots(repo: Repository, directory: StorePath, policy: Retention, *, dry_run: bool = False) -> PruneResult:
    """Remove the children of ``directory`` that ``policy`` does not keep, in one commit.

    Raises:
        UsageError: no keep rule (prune would otherwise remove nothing or everything).
        NotFoundError / ConflictError: ``directory`` is missing or not a directory.
    """
    if policy.keeps_everything:
        raise UsageError("prune needs at least one rule of what to keep", hint=Hint.KEEP_RULE)
    decided: list[PruneResult] = []

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        decided.clear()
        entry = lookup(staging, root_id, directory)
        if entry.kind is not Kind.DIR:
            raise ConflictError(f"not a directory: {directory.shown()}")
        dated, undated = _dated(list_dir(staging, entry.id), directory)
        kept_paths = select_kept(dated, policy)
        kept = tuple(item for item in dated if item[0] in kept_paths)
        removed = tuple(item for item in dated if item[0] not in kept_paths)
        decided.append(PruneResult(directory, kept, removed, tuple(undated), None, dry_run))
        if dry_run:
            return root_id
        for path, _ in removed:
            root_id = remove(staging, root_id, path, now_ns, recursive=True)
        return root_id

    outcome = apply_change(
        repo,
        change,
        message=f"prune {directory.shown()} (keep {policy.describe()})",
        operation={"op": "prune", "path": str(directory), "policy": _policy_dict(policy)},
    )
    result = decided[-1]
    return PruneResult(result.directory, result.kept, result.removed, result.undated, outcome.commit_id, result.dry_run)


def _policy_dict(policy: Retention) -> dict[str, object]:
    return {
        "keep_last": policy.keep_last,
        "keep_within": policy.keep_within,
        "keep_hourly": policy.keep_hourly,
        "keep_daily": policy.keep_daily,
        "keep_weekly": policy.keep_weekly,
        "keep_monthly": policy.keep_monthly,
        "keep_yearly": policy.keep_yearly,
    }
