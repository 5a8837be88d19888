"""Three-way merge of directory trees: a mount's changes land on commits other processes made meanwhile.

Reads the three trees and stages the merged directories through a
``NodeSink``; never moves a ref (``history.apply_change`` commits the result).
"""

from __future__ import annotations

from zerofs.dirnodes import NodeSink, build_dir, iter_dir
from zerofs.objects import (
    DirEntry,
    ObjectId,
)


def merge3(sink: NodeSink, base_id: ObjectId | None, ours_id: ObjectId, theirs_id: ObjectId) -> ObjectId:
    """Merge two directory trees that both started from ``base_id``; return the merged tree.

    A subtree equal on two sides is never opened (ids are Merkle hashes), so
    the cost follows what changed, not the size of the tree. Name by name:
    a side that left an entry as it was in the base takes the other side's
    version; where both changed the same directory, its contents are merged;
    otherwise ours wins, except that a deletion never beats a change (the
    change is kept) and a new atime alone (a read) never beats a change of
    the other side. ``None`` as base means an empty directory. This is how
    a mount's changes land on top of commits other processes made meanwhile.
    """
    if ours_id == theirs_id or theirs_id == base_id:
        return ours_id
    if ours_id == base_id:
        return theirs_id
    base = {e.name: e for e in iter_dir(sink, base_id)} if base_id is not None else {}
    ours = {e.name: e for e in iter_dir(sink, ours_id)}
    theirs = {e.name: e for e in iter_dir(sink, theirs_id)}
    merged: list[DirEntry] = []
    for name in ours.keys() | theirs.keys() | base.keys():
        was, mine, other = base.get(name), ours.get(name), theirs.get(name)
        if mine == other or _is_unchanged(other, was):
            picked = mine
        elif _is_unchanged(mine, was) or mine is None:
            picked = other
        elif other is not None and mine.is_dir and other.is_dir:
            common = was.id if was is not None and was.is_dir else None
            picked = mine.pointing_at(merge3(sink, common, mine.id, other.id))
        else:
            picked = mine
        if picked is not None:
            merged.append(picked)
    return build_dir(sink, merged)


def _is_unchanged(entry: DirEntry | None, was: DirEntry | None) -> bool:
    """True if ``entry`` is ``was`` or differs from it only in atime: a read must not win a merge."""
    return entry == was or (entry is not None and was is not None and entry.differs_only_in_atime(was))
