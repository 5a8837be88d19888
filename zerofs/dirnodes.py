"""Directory nodes, flat or sharded: build, read, look up, insert and remove entries by path copying.

Directories with more than ``DIR_FLAT_MAX`` entries are split into shards by
the hash of each name (see ``objects.DirNode``): inserting into a directory
of 100,000 entries rebuilds one small shard per level, not the directory.
The layout is a pure function of the set of entries, so equal directories
always have equal ids. Nothing here knows paths, mutates a node or moves a
ref: nodes are read through a ``NodeSource`` and the new ones staged
through a ``NodeSink`` (``repo.Staging``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from zerofs.errors import NotFoundError
from zerofs.objects import (
    DIR_FLAT_MAX,
    DIR_SHARDS,
    ChunkListNode,
    Commit,
    DirEntry,
    DirNode,
    FileNode,
    Node,
    ObjectId,
    SpecialNode,
    SymlinkNode,
    name_hash,
)

N = TypeVar("N", FileNode, ChunkListNode, DirNode, SymlinkNode, SpecialNode, Commit)


class NodeSource(Protocol):
    """Where tree operations read nodes."""

    def get_typed(self, node_id: ObjectId, node_type: type[N]) -> N:
        """Return the node with this id, which must be of ``node_type``."""
        ...


class NodeSink(NodeSource, Protocol):
    """Where tree operations read nodes and stage the ones they build."""

    def put(self, node: Node) -> ObjectId:
        """Stage a node; return its id."""
        ...


def _shard_of(name: bytes, depth: int) -> int:
    return name_hash(name)[depth] & (DIR_SHARDS - 1)


def build_dir(sink: NodeSink, entries: Sequence[DirEntry]) -> ObjectId:
    """Stage a directory holding ``entries`` (any order, unique names); return its id."""
    return _build(sink, sorted(entries, key=lambda e: e.name), 0)


def _build(sink: NodeSink, entries: Sequence[DirEntry], depth: int) -> ObjectId:
    if len(entries) <= DIR_FLAT_MAX:
        return sink.put(DirNode(tuple(entries), 0, len(entries)))
    groups: dict[int, list[DirEntry]] = {}
    for entry in entries:
        groups.setdefault(_shard_of(entry.name, depth), []).append(entry)
    shards = tuple((index, _build(sink, groups[index], depth + 1)) for index in sorted(groups))
    return sink.put(DirNode((), depth, len(entries), shards))


def iter_dir(source: NodeSource, dir_id: ObjectId) -> Iterator[DirEntry]:
    """Yield a directory's entries in storage order (sorted within each shard)."""
    node = source.get_typed(dir_id, DirNode)
    if not node.shards:
        yield from node.entries
        return
    for _, shard_id in node.shards:
        yield from iter_dir(source, shard_id)


def list_dir(source: NodeSource, dir_id: ObjectId) -> list[DirEntry]:
    """Return a directory's entries sorted by name."""
    node = source.get_typed(dir_id, DirNode)
    if not node.shards:
        return list(node.entries)
    return sorted(iter_dir(source, dir_id), key=lambda e: e.name)


def count_dir(source: NodeSource, dir_id: ObjectId) -> int:
    """Return the number of entries in a directory without reading its shards."""
    return source.get_typed(dir_id, DirNode).n_entries


def dir_get(source: NodeSource, dir_id: ObjectId, name: bytes) -> DirEntry | None:
    """Return the entry called ``name``, or None."""
    node = source.get_typed(dir_id, DirNode)
    while node.shards:
        index = _shard_of(name, node.depth)
        shard_id = dict(node.shards).get(index)
        if shard_id is None:
            return None
        node = source.get_typed(shard_id, DirNode)
    entries = node.entries
    at = bisect.bisect_left(entries, name, key=lambda e: e.name)
    if at < len(entries) and entries[at].name == name:
        return entries[at]
    return None


def dir_put(sink: NodeSink, dir_id: ObjectId, entry: DirEntry) -> ObjectId:
    """Stage a copy of the directory with ``entry`` inserted or replaced."""
    return _put(sink, sink.get_typed(dir_id, DirNode), entry, 0)[0]


def _put(sink: NodeSink, node: DirNode, entry: DirEntry, depth: int) -> tuple[ObjectId, bool]:
    # ``depth`` is passed down: a flat node does not record the depth it sits at.
    if not node.shards:
        entries = list(node.entries)
        at = bisect.bisect_left(entries, entry.name, key=lambda e: e.name)
        is_new = not (at < len(entries) and entries[at].name == entry.name)
        if is_new:
            entries.insert(at, entry)
        else:
            entries[at] = entry
        return _build(sink, entries, depth), is_new
    index = _shard_of(entry.name, depth)
    shards = dict(node.shards)
    if index in shards:
        shards[index], is_new = _put(sink, sink.get_typed(shards[index], DirNode), entry, depth + 1)
    else:
        shards[index], is_new = _build(sink, [entry], depth + 1), True
    return sink.put(DirNode((), depth, node.n_entries + is_new, tuple(sorted(shards.items())))), is_new


def dir_remove(sink: NodeSink, dir_id: ObjectId, name: bytes) -> ObjectId:
    """Stage a copy of the directory without ``name`` (which must be present)."""
    new_id, removed = _remove(sink, sink.get_typed(dir_id, DirNode), name, 0)
    if not removed:
        raise NotFoundError(f"no entry {name!r} to remove")
    return new_id


def _remove(sink: NodeSink, node: DirNode, name: bytes, depth: int) -> tuple[ObjectId, bool]:
    if not node.shards:
        kept = [e for e in node.entries if e.name != name]
        if len(kept) == len(node.entries):
            return sink.put(node), False
        return _build(sink, kept, depth), True
    index = _shard_of(name, depth)
    shards = dict(node.shards)
    if index not in shards:
        return sink.put(node), False
    child = sink.get_typed(shards[index], DirNode)
    new_child_id, removed = _remove(sink, child, name, depth + 1)
    if not removed:
        return sink.put(node), False
    if node.n_entries - 1 <= DIR_FLAT_MAX:
        # Back under the limit: the canonical form is flat again.
        shards[index] = new_child_id
        entries = [e for _, shard_id in sorted(shards.items()) for e in iter_dir(sink, shard_id)]
        return _build(sink, sorted(entries, key=lambda e: e.name), depth), True
    if sink.get_typed(new_child_id, DirNode).n_entries == 0:
        del shards[index]
    else:
        shards[index] = new_child_id
    return sink.put(DirNode((), depth, node.n_entries - 1, tuple(sorted(shards.items())))), True
