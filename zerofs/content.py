"""File contents: cut a stream into chunks, store them, index them; read them back.

A file's chunk list is kept bounded: past ``MAX_FANOUT`` chunks it is split
into CHUNKLIST nodes at content-defined boundaries (after a reference whose
id's low six bits are zero, about every 64 references), level upon level,
so the index is a tree whose nodes hold at most a few KiB. A change of a few
bytes in a huge file changes one chunk, one leaf group and the groups above
it, not a list proportional to the file. As with FastCDC itself, the
boundaries depend on content only, so an insertion re-uses every later group.

Hashing and compression release the GIL; with an executor, they run on
worker threads while the caller's thread reads, chunks and writes to the
store, with a bounded number of chunks in flight.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO, Final, NamedTuple

from zerofs.chunking import chunk_stream, make_chunker
from zerofs.objects import (
    MAX_FANOUT,
    ChunkListNode,
    ChunkRef,
    FileNode,
    Kind,
    ObjectId,
    chunk_id,
    iter_children,
)
from zerofs.repo import Record, Repository, Staging

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future  # 4 ms with logging: annotations only

    from pyfastcdc.cy import FastCDC

GROUP_MASK: Final = 0x3F
IN_FLIGHT_PER_WORKER: Final = 2
GROUP_BYTES: Final = 2 << 20
"""Bytes of chunks handed to a worker at once (see ``_store_parallel``)."""
ZERO_ID_SIZES: Final = 16
ChunkIdFunction = Callable[[bytes | bytearray | memoryview], ObjectId]
"""Sizes whose all-zero chunk id is kept; holes come in chunks of one size (see ``is_hole``)."""


def build_file_node(sink: Staging, refs: Sequence[ChunkRef]) -> FileNode:
    """Group a file's chunk refs into a bounded index; return the top node (unwritten)."""
    size_bytes = sum(r.size_bytes for r in refs)
    level = 0
    while len(refs) > MAX_FANOUT:
        groups: list[list[ChunkRef]] = [[]]
        for ref in refs:
            group = groups[-1]
            group.append(ref)
            if ref.id[0] & GROUP_MASK == 0 or len(group) == MAX_FANOUT:
                groups.append([])
        if not groups[-1]:
            groups.pop()
        refs = [ChunkRef(sink.put(ChunkListNode(level, tuple(g))), sum(r.size_bytes for r in g)) for g in groups]
        level += 1
    return FileNode(size_bytes, level, tuple(refs))


def store_file(sink: Staging, refs: Sequence[ChunkRef]) -> tuple[ObjectId, FileNode]:
    """Write the index of a file of these chunks; return the file's id and index.

    A file of one chunk is stored as that chunk: its id is the chunk's and
    no FILE node is written (``objects.is_single_chunk``). The chunks
    themselves must already be in the batch.
    """
    if len(refs) == 1:
        return refs[0].id, FileNode(refs[0].size_bytes, 0, (refs[0],))
    node = build_file_node(sink, refs)
    return sink.put(node), node


class ContentWriter:
    """Stores file contents through a batch, optionally hashing on worker threads."""

    def __init__(self, repo: Repository, sink: Staging, executor: Executor | None = None, workers: int = 1) -> None:
        """Write through ``sink``; use ``executor`` (with ``workers`` threads) for big files."""
        self.repo = repo
        self.sink = sink
        self.executor = executor
        self.max_in_flight = max(2, workers * IN_FLIGHT_PER_WORKER)
        self.params = repo.config.chunk_params
        self._chunker = make_chunker(self.params, repo.chunker_seed)

    def _store_chunk(self, data: memoryview) -> ChunkRef:
        make_id = self.repo.chunk_id
        new_id = zero_chunk_id(len(data), make_id) if is_zero_block(data, self.params.max_bytes) else make_id(data)
        if not self.sink.has(new_id):
            self.sink.put_record(new_id, self.repo.chunk_record(data))
        return ChunkRef(new_id, len(data))

    def write_bytes(self, data: bytes) -> tuple[ObjectId, FileNode]:
        """Store a small file held in memory; return its file node id and node."""
        encoded = encode_small_file(self.repo, self._chunker, data, self.sink.has)
        return self.write_encoded(encoded)

    def write_encoded(self, encoded: EncodedFile) -> tuple[ObjectId, FileNode]:
        """Write the records of a file encoded by ``encode_small_file``."""
        for new_id, record in encoded.records:
            if record is not None:
                self.sink.put_record(new_id, record)
        return encoded.file_id, encoded.node

    def write_stream(self, reader: BinaryIO) -> tuple[ObjectId, FileNode]:
        """Store a stream of any length with a few chunks in memory; return its node."""
        return store_file(self.sink, self.store_chunks(chunk_stream(reader, self.params, self._chunker)))

    def store_chunks(self, chunks: Iterator[memoryview]) -> list[ChunkRef]:
        """Store chunks cut by ``chunk_stream``; return their refs in order."""
        if self.executor is None:
            return [self._store_chunk(d) for d in chunks]
        return self._store_parallel(chunks)

    def _store_parallel(self, chunks: Iterator[memoryview]) -> list[ChunkRef]:
        """Hash and compress groups of chunks on workers; write in order here.

        Chunks go to workers in groups of about ``GROUP_BYTES``: one hand-off
        per chunk costs more in GIL and futex traffic than hashing the chunk.
        At most ``max_in_flight`` groups are pending, which bounds memory.
        """
        assert self.executor is not None
        refs: list[ChunkRef] = []
        pending: collections.deque[Future[list[_Encoded]]] = collections.deque()
        group: list[memoryview] = []
        group_bytes = 0
        for buffer in chunks:
            group.append(buffer)
            group_bytes += len(buffer)
            if group_bytes >= GROUP_BYTES:
                pending.append(self.executor.submit(_encode_group, self.repo, group))
                group, group_bytes = [], 0
                if len(pending) >= self.max_in_flight:
                    refs.extend(self._finish(pending.popleft()))
        if group:
            pending.append(self.executor.submit(_encode_group, self.repo, group))
        while pending:
            refs.extend(self._finish(pending.popleft()))
        return refs

    def _finish(self, future: Future[list[_Encoded]]) -> Iterator[ChunkRef]:
        for new_id, size_bytes, record in future.result():
            if record is not None:
                self.sink.put_record(new_id, record)
            yield ChunkRef(new_id, size_bytes)


_Encoded = tuple[ObjectId, int, "Record | None"]


class EncodedFile(NamedTuple):
    """A small file hashed and compressed, ready to be written."""

    file_id: ObjectId
    node: FileNode
    records: tuple[tuple[ObjectId, Record | None], ...]
    """(id, record) of each chunk and of the file node (if it has one); None where already stored."""


def encode_small_file(
    repo: Repository, chunker: FastCDC, data: bytes, is_stored: Callable[[ObjectId], bool]
) -> EncodedFile:
    """Hash and compress a file held in memory (at most a few MiB), writing nothing.

    Safe on worker threads given a chunker of the thread's own (FastCDC
    objects are not thread-safe). ``is_stored`` skips compressing chunks the
    store already has.
    """
    params = repo.config.chunk_params
    pieces = [data] if len(data) <= params.min_bytes else [bytes(c.data) for c in chunker.cut_buf(data)]
    records: list[tuple[ObjectId, Record | None]] = []
    refs = []
    for piece in pieces:
        if not piece:
            continue
        new_id = repo.chunk_id(piece)
        records.append((new_id, None if is_stored(new_id) else repo.chunk_record(piece)))
        refs.append(ChunkRef(new_id, len(piece)))
    if len(refs) > MAX_FANOUT:
        raise ValueError("encode_small_file is for files of at most MAX_FANOUT chunks")
    node = FileNode(len(data), 0, tuple(refs))
    if len(refs) == 1:  # stored as its one chunk (see store_file)
        return EncodedFile(refs[0].id, node, tuple(records))
    file_id, file_record = repo.encode_node(node)
    records.append((file_id, file_record))
    return EncodedFile(file_id, node, tuple(records))


def _encode_group(repo: Repository, group: list[memoryview]) -> list[_Encoded]:
    """Worker: hash each chunk; make records of those no committed record holds."""
    encoded: list[_Encoded] = []
    max_bytes = repo.config.chunk_params.max_bytes
    make_id = repo.chunk_id
    for data in group:
        new_id = zero_chunk_id(max_bytes, make_id) if is_zero_block(data, max_bytes) else make_id(data)
        record = None if repo.has(new_id) else repo.chunk_record(data, new_id)
        encoded.append((new_id, len(data), record))
    return encoded


def iter_chunk_ids(repo: Repository, node: FileNode | ChunkListNode) -> Iterator[tuple[ObjectId, int]]:
    """Yield (chunk id, size) of a file's chunks in order."""
    for child in iter_children(node):
        if child.kind is Kind.CHUNK:
            yield child.object_id, child.size_bytes
        else:
            yield from iter_chunk_ids(repo, repo.get_typed(child.object_id, ChunkListNode))


_ZERO_IDS: dict[tuple[ChunkIdFunction, int], ObjectId] = {}


def zero_chunk_id(size_bytes: int, make_id: ChunkIdFunction = chunk_id) -> ObjectId:
    """The id of a chunk of ``size_bytes`` zeros (computed once per size and id function).

    ``make_id``: the repository's ``chunk_id`` (keyed in an encrypted one;
    one stable callable per repository, so it can key this cache).
    """
    found = _ZERO_IDS.get((make_id, size_bytes))
    if found is None:
        if len(_ZERO_IDS) >= ZERO_ID_SIZES:
            _ZERO_IDS.clear()
        found = _ZERO_IDS[make_id, size_bytes] = make_id(bytes(size_bytes))
    return found


def is_hole(repo: Repository, chunk: ObjectId, size_bytes: int) -> bool:
    """True if ``chunk`` is all zeros, known without reading it.

    FastCDC cuts a run of zeros into chunks of its maximum size (no cut
    point is ever found in it), so only chunks of that size are compared
    with the id of zeros: one dict lookup, and no hashing for other sizes.
    """
    return size_bytes == repo.config.chunk_params.max_bytes and chunk == zero_chunk_id(size_bytes, repo.chunk_id)


def is_zero_block(data: bytes | bytearray | memoryview, max_bytes: int) -> bool:
    """True if a chunk cut by FastCDC is a block of zeros whose id ``zero_chunk_id`` knows (no hashing)."""
    return len(data) == max_bytes and _zeros(max_bytes).startswith(data)  # a memcmp; == on a view is slow


def _zeros(size_bytes: int) -> bytes:
    found = _ZERO_BLOCKS.get(size_bytes)
    if found is None:
        if len(_ZERO_BLOCKS) >= ZERO_ID_SIZES:
            _ZERO_BLOCKS.clear()
        found = _ZERO_BLOCKS[size_bytes] = bytes(size_bytes)
    return found


_ZERO_BLOCKS: dict[int, bytes] = {}


def iter_file_pieces(repo: Repository, file_id: ObjectId) -> Iterator[bytes | int]:
    """Yield a file's contents chunk by chunk, verified, but a hole (``is_hole``) as its length, unread."""
    start = repo.read_file_start(file_id)
    if isinstance(start, bytes):
        yield start
        return
    for id_, size_bytes in iter_chunk_ids(repo, start):
        yield size_bytes if is_hole(repo, id_, size_bytes) else repo.read_chunk(id_)


def iter_file_bytes(repo: Repository, file_id: ObjectId) -> Iterator[bytes]:
    """Yield a file's contents chunk by chunk, each verified against its id (a single-chunk file too)."""
    start = repo.read_file_start(file_id)
    if isinstance(start, bytes):
        yield start
        return
    for id_, _ in iter_chunk_ids(repo, start):
        yield repo.read_chunk(id_)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a file descriptor."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
