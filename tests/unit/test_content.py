"""content.py: bounded multi-level chunk index, exact read-back, small edits store few objects."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from zerofs.chunking import ChunkParams
from zerofs.content import ContentWriter, iter_chunk_ids, iter_file_bytes
from zerofs.objects import MAX_FANOUT, ChunkListNode, FileNode
from zerofs.repo import Repository, Staging

SMALL = ChunkParams(avg_bytes=1024, min_bytes=256, max_bytes=4096)
SIZE = 2 << 20


@pytest.fixture
def small_repo(tmp_path: Path):
    repo = Repository.init(tmp_path / "small", author="test@host", chunk_params=SMALL)
    yield repo
    repo.close()


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(1).randbytes(SIZE)


def store(repo: Repository, payload: bytes, *, stream: bool = True) -> tuple[bytes, FileNode, int]:
    """Store ``payload``; return (file id, node, bytes of new records)."""
    with repo.batch() as batch:
        sink = Staging(repo, batch)
        writer = ContentWriter(repo, sink)
        if stream:
            file_id, node = writer.write_stream(io.BytesIO(payload))
        else:
            file_id, node = writer.write_bytes(payload)
    return file_id, node, sink.new_bytes


def count_ids(repo: Repository) -> int:
    return sum(1 for _ in repo.iter_blobs())


def index_nodes(repo: Repository, node: FileNode | ChunkListNode) -> list[FileNode | ChunkListNode]:
    found: list[FileNode | ChunkListNode] = [node]
    if node.level > 0:
        for ref in node.refs:
            child = repo.get_typed(ref.id, ChunkListNode)
            assert child.level == node.level - 1
            assert sum(r.size_bytes for r in child.refs) == ref.size_bytes
            found.extend(index_nodes(repo, child))
    return found


def test_large_file_gets_bounded_multi_level_index(small_repo: Repository, data: bytes) -> None:
    file_id, node, _ = store(small_repo, data)
    assert node.size_bytes == SIZE
    chunks = list(iter_chunk_ids(small_repo, node))
    assert len(chunks) > MAX_FANOUT, "the test needs more chunks than one node can hold"
    assert node.level >= 1
    nodes = index_nodes(small_repo, node)
    assert len(nodes) > 1
    assert all(len(n.refs) <= MAX_FANOUT for n in nodes)
    assert sum(size for _, size in chunks) == SIZE
    assert all(size <= SMALL.max_bytes for _, size in chunks)
    assert b"".join(iter_file_bytes(small_repo, file_id)) == data
    assert small_repo.get_typed(file_id, FileNode) == node


def test_stream_and_bytes_give_the_same_file(small_repo: Repository, data: bytes) -> None:
    a, _, _ = store(small_repo, data[:100_000], stream=True)
    b, _, _ = store(small_repo, data[:100_000], stream=False)
    assert a == b


@pytest.mark.parametrize("payload", [b"", b"x", b"y" * 255, b"z" * 300, os.urandom(5000)])
def test_small_files_round_trip(small_repo: Repository, payload: bytes) -> None:
    for stream in (True, False):
        file_id, node, _ = store(small_repo, payload, stream=stream)
        assert node.size_bytes == len(payload)
        assert b"".join(iter_file_bytes(small_repo, file_id)) == payload


def test_storing_again_adds_nothing(small_repo: Repository, data: bytes) -> None:
    first, _, _ = store(small_repo, data)
    before = count_ids(small_repo)
    again, _, new_bytes = store(small_repo, data)
    assert again == first
    assert new_bytes == 0
    assert count_ids(small_repo) == before


@pytest.mark.parametrize("where", [0.5, 0.01, 0.99])
def test_small_change_adds_few_objects(small_repo: Repository, data: bytes, where: float) -> None:
    store(small_repo, data)
    before = count_ids(small_repo)
    changed = bytearray(data)
    at = int(SIZE * where)
    changed[at : at + 10] = bytes(b ^ 0xFF for b in changed[at : at + 10])
    file_id, _node, new_bytes = store(small_repo, bytes(changed))
    added = count_ids(small_repo) - before
    assert 1 <= added < 10, f"a 10-byte change added {added} objects"
    assert new_bytes < 64 * 1024
    assert b"".join(iter_file_bytes(small_repo, file_id)) == bytes(changed)


def test_insertion_at_start_reuses_later_chunks(small_repo: Repository, data: bytes) -> None:
    store(small_repo, data)
    before = count_ids(small_repo)
    file_id, _, _ = store(small_repo, b"inserted!" + data)
    added = count_ids(small_repo) - before
    assert added < 10, f"an insertion at the start added {added} objects"
    assert b"".join(iter_file_bytes(small_repo, file_id)) == b"inserted!" + data


def test_identical_content_is_stored_once(small_repo: Repository, data: bytes) -> None:
    store(small_repo, data[:50_000])
    before = count_ids(small_repo)
    store(small_repo, data[:50_000] + data[:50_000])
    # Only the boundary chunk(s) and the new file node are new.
    assert count_ids(small_repo) - before < 6
