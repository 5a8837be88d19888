"""FileData against a bytearray: reads, writes, truncations, and commits that reuse stored chunks."""

from __future__ import annotations

import errno
import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.helpers import tmpfs
from zerofs.chunking import ChunkParams
from zerofs.content import ContentWriter, iter_file_bytes
from zerofs.mount.filedata import FileData
from zerofs.objects import ObjectId
from zerofs.repo import Repository, Staging

SMALL = ChunkParams(avg_bytes=1024, min_bytes=256, max_bytes=4096)

write_op = st.tuples(st.just("write"), st.integers(0, 70_000), st.integers(1, 9_000))
truncate_op = st.tuples(st.just("truncate"), st.integers(0, 70_000), st.just(0))
commit_op = st.tuples(st.just("commit"), st.just(0), st.just(0))
ops = st.lists(st.one_of(write_op, write_op, truncate_op, commit_op), max_size=25)


def _store(repo: Repository, data: bytes) -> ObjectId:
    with repo.batch() as batch:
        file_id, _ = ContentWriter(repo, Staging(repo, batch)).write_stream(io.BytesIO(data))
    return file_id


def _commit(repo: Repository, file_data: FileData) -> ObjectId:
    with repo.batch() as batch:
        file_id, _ = file_data.store(ContentWriter(repo, Staging(repo, batch)))
    file_data.committed(file_id)
    return file_id


@given(initial=st.binary(min_size=0, max_size=60_000), operations=ops, seed=st.integers(0, 2**32 - 1))
def test_file_data_matches_a_bytearray(
    tmp_path_factory: pytest.TempPathFactory, initial: bytes, operations: list[tuple[str, int, int]], seed: int
) -> None:
    """Every read and every commit gives what the same operations give on a bytearray.

    A commit re-chunks only around the changes, yet must cut exactly the
    chunks a fresh import of the same bytes cuts: the file ids are equal.
    """
    base = tmp_path_factory.mktemp("fd")
    repo = Repository.init(base / "repo", author="t@h", chunk_params=SMALL)
    try:
        rng = random.Random(seed)
        initial = rng.randbytes(len(initial))
        file_id = _store(repo, initial)
        model = bytearray(initial)
        file_data = FileData(repo, file_id, len(initial), str(base))
        for op, offset, length in operations:
            if op == "write":
                chunk = rng.randbytes(length)
                file_data.write(offset, chunk)
                if offset > len(model):
                    model.extend(bytes(offset - len(model)))
                model[offset : offset + length] = chunk
            elif op == "truncate":
                file_data.truncate(offset)
                del model[offset:]
                model.extend(bytes(offset - len(model)))
            else:
                file_id = _commit(repo, file_data)
                assert b"".join(iter_file_bytes(repo, file_id)) == bytes(model)
                assert file_id == _store(repo, bytes(model))
            assert file_data.size == len(model)
            start = rng.randrange(0, len(model) + 10)
            assert file_data.read(start, 20_000) == bytes(model[start : start + 20_000])
        assert file_data.read(0, len(model) + 1) == bytes(model)
        file_id = _commit(repo, file_data)
        assert b"".join(iter_file_bytes(repo, file_id)) == bytes(model)
        assert file_id == _store(repo, bytes(model))
        file_data.close()
    finally:
        repo.close()


def test_a_small_write_into_a_large_file_stores_a_few_chunks(repo: Repository, tmp_path: Path) -> None:
    """4 KiB written into the middle of 64 MiB stores a chunk or two, not a re-chunk of the file."""
    data = os.urandom(64 << 20)
    file_id = _store(repo, data)
    file_data = FileData(repo, file_id, len(data), str(tmp_path))
    file_data.write(32 << 20, b"z" * 4096)
    with repo.batch() as batch:
        sink = Staging(repo, batch)
        new_id, node = file_data.store(ContentWriter(repo, sink))
    assert node.size_bytes == len(data)
    assert sink.new_bytes < 1 << 20, sink.new_bytes
    expected = data[: 32 << 20] + b"z" * 4096 + data[(32 << 20) + 4096 :]
    assert b"".join(iter_file_bytes(repo, new_id)) == expected
    file_data.close()


def test_spilling_into_a_nearly_full_disk_keeps_the_data_or_fails(repo: Repository, tmp_path: Path) -> None:
    """Written data moving from memory to a spill file with no room for it: ENOSPC, and still readable."""
    with tmpfs(tmp_path / "small", "1m") as small:
        filler = small / "filler"
        with open(filler, "wb") as file:
            file.write(b"f" * (os.statvfs(small).f_bavail * os.statvfs(small).f_frsize - 8192))
        assert os.statvfs(small).f_bavail * os.statvfs(small).f_frsize == 8192
        file_data = FileData(repo, None, 0, str(small))
        try:
            file_data.write(0, b"m" * 20_000)  # in memory
            with pytest.raises(OSError) as full:  # noqa: PT011 - the errno is what the kernel gets
                file_data.write(40_000, b"s" * 100)  # past 32 KiB: into a spill file, with the 20,000 bytes
            assert full.value.errno == errno.ENOSPC
            assert file_data.read(0, 20_000) == b"m" * 20_000
            assert file_data.size == 20_000
        finally:
            file_data.close()
