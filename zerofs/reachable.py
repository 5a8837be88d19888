"""What a tree reaches: every object once (gc's mark, usage, fsck's tests) and the bytes of its files.

The objects below a node are listed by ``objects.iter_children`` alone;
the commits whose trees are walked come from ``history.walk_commits``.
Reads only, through a ``NodeSource``: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from zerofs.dirnodes import NodeSource, iter_dir
from zerofs.objects import (
    Child,
    ChunkListNode,
    DirEntry,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    is_single_chunk,
    iter_children,
)
from zerofs.paths import StorePath
from zerofs.repo import Repository


class Reached(NamedTuple):
    """One object met by ``iter_reachable``: what it is and where it was first met."""

    object_id: ObjectId
    kind: Kind
    path: StorePath
    """The store path it is reached by (a file's chunks and a directory's shards: the file's, the directory's)."""
    size_bytes: int
    """Uncompressed bytes its reference declares: a chunk's or chunk list's length, a file's size; else 0."""


def iter_reachable(
    source: NodeSource,
    root_id: ObjectId,
    *,
    kind: Kind = Kind.DIR,
    path: StorePath = StorePath(),  # noqa: B008 (an immutable tuple)
    size_bytes: int = 0,
    seen: set[ObjectId] | None = None,
) -> Iterator[Reached]:
    """Yield every object reachable from ``root_id`` once, parents before children.

    Ids already in ``seen`` are skipped with everything below them, and every
    id yielded is added to it: pass the same set to walk many roots (all of
    history) reading each shared subtree once. Chunks are yielded, not read.
    Only directory, file and chunk-list nodes are read, through ``source``.
    A file stored as its one chunk is yielded as that chunk (kind CHUNK).
    """
    if seen is None:
        seen = set()
    # The stack holds (child, its parent's path): most children of a walk over
    # many commits are already seen, and are dropped before a path or a
    # ``Reached`` is built for them.
    stack: list[tuple[Child, StorePath]] = [(Child(kind, root_id, size_bytes), path)]
    while stack:
        child, parent_path = stack.pop()
        if child.object_id in seen:
            continue
        seen.add(child.object_id)
        item = _reached(child, parent_path)
        if item.kind is Kind.FILE:
            file_node = source.get_typed(item.object_id, FileNode)
            if is_single_chunk(item.object_id, file_node):  # stored as its one chunk
                yield item._replace(kind=Kind.CHUNK)
                continue
            yield item
            node: Node = file_node
        elif item.kind is Kind.DIR:
            yield item
            node = source.get_typed(item.object_id, DirNode)
        elif item.kind is Kind.CHUNKLIST:
            yield item
            node = source.get_typed(item.object_id, ChunkListNode)
        else:  # a leaf: yielded, never read
            yield item
            continue
        children = [(grandchild, item.path) for grandchild in iter_children(node)]
        children.reverse()
        stack.extend(children)


def _reached(child: Child, parent_path: StorePath) -> Reached:
    """A child met below ``parent_path``: an entry is reached by its own name, a shard or chunk by its parent's path."""
    path = parent_path if child.entry is None else StorePath((*parent_path.parts, child.entry.name))
    return Reached(child.object_id, child.kind, path, child.size_bytes)


def apparent_bytes(source: NodeSource, entry: DirEntry, memo: dict[bytes, int] | None = None) -> int:
    """Return the sum of the sizes of the regular files at or below ``entry``, counting every path.

    The names of one hard-link group (``objects.LINK_XATTR``) in one scope
    count once, as du(1) counts a file with several names; ``entry`` itself
    closes a scope. A directory's total is remembered by id in ``memo``, so
    twenty clones of one tree cost one walk of it.
    """
    plain, links = _apparent(source, entry, {} if memo is None else memo)
    return plain + sum(links.values())


def _apparent(source: NodeSource, entry: DirEntry, memo: dict[bytes, int]) -> tuple[int, dict[bytes, int]]:
    """The bytes of ``entry``'s files that are in no open link group, and each open group's size.

    ``memo`` holds a directory's total under its id when no link group is
    open below it, and under its id and ``b"+"`` as a closed scope.
    """
    if entry.kind is Kind.FILE:
        link_id = entry.link_id
        if link_id is None or entry.is_link_scope:
            return entry.size_bytes, {}
        return 0, {link_id + entry.id: entry.size_bytes}  # names that differ in contents are separate files
    if entry.kind is not Kind.DIR:
        return 0, {}
    is_scope = entry.is_link_scope
    total = memo.get(entry.id)
    if total is None and is_scope:
        total = memo.get(entry.id + b"+")
    if total is not None:
        return total, {}
    plain = 0
    links: dict[bytes, int] = {}
    for child in iter_dir(source, entry.id):
        child_plain, child_links = _apparent(source, child, memo)
        plain += child_plain
        if len(child_links) > len(links):
            links, child_links = child_links, links
        links.update(child_links)
    if not links:
        memo[entry.id] = plain
    elif is_scope:
        plain += sum(links.values())
        memo[entry.id + b"+"] = plain
        links = {}
    return plain, links


def mark_commits(repo: Repository, commit_ids: Iterable[ObjectId], marked: set[ObjectId]) -> None:
    """Add to ``marked`` each commit and every object its tree reaches (shared subtrees once).

    gc's mark (nothing in ``marked`` is ever deleted) and usage's "what other
    commits keep" both come from here. A commit already in ``marked`` is
    skipped: its tree was marked with it.
    """
    for commit_id in commit_ids:
        if commit_id in marked:
            continue
        marked.add(commit_id)
        for _ in iter_reachable(repo, repo.resolve_commit(commit_id).root_id, seen=marked):
            pass
