"""repo.Staging, the one node sink: held for a later write, or written into a batch at once."""

from __future__ import annotations

import stat

from zerofs.objects import DirEntry, DirNode, Kind, SymlinkNode
from zerofs.repo import Repository, Staging


def test_held_nodes_are_readable_and_only_what_the_top_reaches_is_written(repo: Repository) -> None:
    staging = Staging(repo)
    link_id = staging.put(SymlinkNode(b"target"))
    entry = DirEntry(b"l", Kind.SYMLINK, stat.S_IFLNK | 0o777, 0, 0, 0, 6, link_id)
    top_id = staging.put(DirNode((entry,), 0, 1))
    orphan_id = staging.put(SymlinkNode(b"never used"))
    assert staging.get_typed(top_id, DirNode).entries == (entry,)
    assert staging.has(orphan_id)
    assert not repo.has(top_id), "nothing is written before write_to"
    with repo.batch() as batch:
        staging.write_to(batch, top_id)
    assert repo.has(top_id)
    assert repo.has(link_id)
    assert not repo.has(orphan_id), "a node the top does not reach is not written"
    assert staging.new_bytes == 0, "only a sink with a batch counts what it writes"


def test_a_sink_with_a_batch_writes_at_once_and_counts_new_bytes(repo: Repository) -> None:
    with repo.batch() as batch:
        sink = Staging(repo, batch, keeps_nodes=True)
        node_id = sink.put(SymlinkNode(b"somewhere"))
        written = sink.new_bytes
        assert written > 0
        assert sink.has(node_id)
        assert sink.put(SymlinkNode(b"somewhere")) == node_id
        assert sink.new_bytes == written, "a node already in the batch adds nothing"
        assert sink.get_typed(node_id, SymlinkNode).target == b"somewhere", "kept readable before the commit"
        assert len(sink) == 0, "nothing is held for a later write"
    assert repo.get_typed(node_id, SymlinkNode).target == b"somewhere"
