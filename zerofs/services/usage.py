"""Space accounting: ``du`` (per store path) and ``stats`` (repository totals).

Three sizes describe a path. *Apparent* bytes add up the sizes of the
regular files at or below it, once per path (twenty clones of a 1 GiB tree
are 20 GiB). *Stored* bytes add up the records of the distinct objects
reachable from its node (chunks, file and chunk-list nodes, directories,
symlinks): what it occupies after dedup and compression. *Unique* bytes are
the records that deleting the path and running gc would free: those
reachable from the path's node and from nothing else that is retained.

Retained means the commits gc keeps, with the path removed from HEAD's
tree. gc retention arrives separately (issue #4), so the functions take the
retained commit ids and default to all of history (every commit reachable
from HEAD). With all history retained, whatever an earlier commit still
holds is not unique: a file removed from HEAD, or the source of a clone
whose other copy was removed, costs nothing more to delete until gc cuts
the history that holds it. Unique bytes are therefore usually 0 except for
content that only the newest commit added.

Reading never changes the repository; nodes built to model "HEAD without
the path" are staged in memory and never written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from zerofs.history import head, iter_history
from zerofs.objects import DirEntry, DirNode, Kind, ObjectId
from zerofs.paths import StorePath
from zerofs.reachable import apparent_bytes, iter_reachable, mark_commits
from zerofs.repo import Repository, Staging
from zerofs.tree import lookup, remove, root_entry

KIND_NAMES = {
    Kind.CHUNK: "chunk",
    Kind.FILE: "file",
    Kind.CHUNKLIST: "chunklist",
    Kind.DIR: "dir",
    Kind.SYMLINK: "symlink",
    Kind.COMMIT: "commit",
    Kind.GRAFTS: "grafts",
    Kind.SPECIAL: "special",
}


@dataclass(frozen=True, slots=True)
class PathUsage:
    """What ``du`` reports for one store path."""

    path: StorePath
    kind: Kind
    apparent_bytes: int
    stored_bytes: int
    unique_bytes: int
    n_objects: int
    """Distinct objects reachable from the path's node (itself included)."""


@dataclass(frozen=True, slots=True)
class RepoStats:
    """Repository totals for ``stats``."""

    logical_bytes: int
    """Apparent size of HEAD's tree."""
    stored_bytes: int
    """Sum of the stored (compressed) lengths of every object in the store, reachable or not."""
    reachable_stored_bytes: int
    """Record bytes of the objects reachable from history (what gc keeps)."""
    content_bytes: int
    """Uncompressed bytes of the distinct chunks reachable from history."""
    content_stored_bytes: int
    """Record bytes of those chunks."""
    n_commits: int
    objects_by_kind: dict[str, int] = field(default_factory=dict)
    disk_bytes: int | None = None
    """Blocks allocated to the repository directory, as ``du`` counts them."""
    n_packs: int = 0
    pack_bytes: int = 0
    """Length of every pack file (live objects, dead ones not yet reclaimed, headers and trailers)."""
    index_bytes: int = 0
    """Bytes of the index in use."""

    @property
    def n_objects(self) -> int:
        """Every stored object."""
        return sum(self.objects_by_kind.values())

    @property
    def dedup_ratio(self) -> float | None:
        """Logical bytes per byte of distinct content (None for an empty repository)."""
        return self.logical_bytes / self.content_bytes if self.content_bytes else None

    @property
    def compression_ratio(self) -> float | None:
        """Distinct content bytes per stored byte of their records."""
        return self.content_bytes / self.content_stored_bytes if self.content_stored_bytes else None


def _retained_ids(repo: Repository, retained: Iterable[ObjectId] | None) -> list[ObjectId]:
    if retained is not None:
        return list(retained)
    return [commit_id for commit_id, _ in iter_history(repo)]


def _record_bytes(repo: Repository, object_id: ObjectId) -> int:
    info = repo.blob_info(object_id)
    return 0 if info is None else info.stored_bytes


def _entry_at(repo: Repository, root_id: ObjectId, path: StorePath, rev: str | None = None) -> DirEntry:
    return root_entry(root_id) if path.is_root else lookup(repo, root_id, path, rev=rev)


def disk_usage(
    repo: Repository,
    paths: Sequence[StorePath],
    *,
    retained: Iterable[ObjectId] | None = None,
    commit_id: ObjectId | None = None,
    rev: str | None = None,
) -> Iterator[PathUsage]:
    """Yield the apparent, stored and unique bytes of each path in HEAD's tree.

    Args:
        repo: the repository (only read).
        paths: store paths in HEAD; each is measured on its own (unique bytes
            of a path are what deleting that path alone would free).
        retained: the commits gc would keep (default: all of history). HEAD
            counts with the path removed from its tree.
        commit_id: read the paths in this commit instead of HEAD (``REV:/path``);
            it then plays HEAD's part: its tree counts with the path removed.
        rev: how the user named ``commit_id`` (for errors).

    Raises:
        NotFoundError: a path does not exist in HEAD.
        CorruptionError: a node on the way is missing or damaged.
    """
    if commit_id is None:
        head_id, head_commit = head(repo)
    else:
        head_id, head_commit = commit_id, repo.resolve_commit(commit_id)
    entries = [(path, _entry_at(repo, head_commit.root_id, path, rev)) for path in paths]
    others_in_history: set[ObjectId] | None = None
    memo: dict[ObjectId, int] = {}
    for path, entry in entries:
        sizes = {
            reached.object_id: _record_bytes(repo, reached.object_id)
            for reached in iter_reachable(repo, entry.id, kind=entry.kind, path=path, size_bytes=entry.size_bytes)
        }
        if others_in_history is None:
            others_in_history = set()
            mark_commits(repo, [c for c in _retained_ids(repo, retained) if c != head_id], others_in_history)
        kept = set(others_in_history)
        for _ in iter_reachable(*_head_without(repo, head_commit.root_id, path), seen=kept):
            pass
        yield PathUsage(
            path=path,
            kind=entry.kind,
            apparent_bytes=apparent_bytes(repo, entry, memo),
            stored_bytes=sum(sizes.values()),
            unique_bytes=sum(size for object_id, size in sizes.items() if object_id not in kept),
            n_objects=len(sizes),
        )


def _head_without(repo: Repository, root_id: ObjectId, path: StorePath) -> tuple[Staging, ObjectId]:
    """Return a staging area and the root of HEAD's tree with ``path`` removed (nothing is written)."""
    staging = Staging(repo)
    if path.is_root:
        return staging, staging.put(DirNode())
    return staging, remove(staging, root_id, path, time.time_ns(), recursive=True)


def repository_stats(repo: Repository) -> RepoStats:
    """Return repository totals: one walk of history (shared subtrees once) and one scan of the records.

    Raises:
        CorruptionError: a commit or node of history is missing or damaged.
    """
    _, head_commit = head(repo)
    logical = apparent_bytes(repo, root_entry(head_commit.root_id))
    reachable: set[ObjectId] = set()
    chunk_sizes: dict[ObjectId, int] = {}
    n_commits = 0
    for commit_id, commit in iter_history(repo):
        n_commits += 1
        reachable.add(commit_id)
        for reached in iter_reachable(repo, commit.root_id, seen=reachable):
            if reached.kind is Kind.CHUNK:
                chunk_sizes[reached.object_id] = reached.size_bytes
    storage = repo.usage()
    stored = reachable_stored = content_stored = 0
    by_kind = dict.fromkeys(KIND_NAMES.values(), 0)
    for object_id, info in repo.iter_blobs():
        size = info.stored_bytes
        stored += size
        name = KIND_NAMES[info.kind]
        by_kind[name] = by_kind.get(name, 0) + 1
        if object_id in reachable:
            reachable_stored += size
            if object_id in chunk_sizes:
                content_stored += size
    return RepoStats(
        logical_bytes=logical,
        stored_bytes=stored,
        reachable_stored_bytes=reachable_stored,
        content_bytes=sum(chunk_sizes.values()),
        content_stored_bytes=content_stored,
        n_commits=n_commits,
        objects_by_kind=by_kind,
        disk_bytes=storage.disk_bytes,
        n_packs=storage.n_packs,
        pack_bytes=storage.pack_bytes,
        index_bytes=storage.index_bytes,
    )
