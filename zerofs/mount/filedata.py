"""The contents of a file seen through the mount: stored chunks plus what was written since.

A file that is only read needs its chunk map: where each chunk starts, so a
read at any offset finds its chunks by bisection and never loads the whole
file; a chunk of zeros (a hole, ``content.is_hole``) is answered without
reading it. A file written through the mount also gets a *spill file*, an
unlinked host file at the same offsets as the file itself, and a list of
dirty extents: byte ranges whose current contents are in the spill file
(``zerofs.mount.spill``).

``base_valid`` is where the stored contents stop counting: the base size,
lowered by a truncation. Every byte at or past it lives in the spill file,
where a region never written reads as zeros (holes, and growth after a
truncation). So a byte is read from the spill file when it lies in a dirty
extent or at or past ``base_valid``, and from the stored chunks otherwise.

Committing stores only what changed: content-defined chunking restarted at
the start of the stored chunk in which a change begins cuts the same chunks
as before wherever the bytes are the same, so it stops as soon as one of its
cuts falls on a stored chunk boundary past the change, and every chunk from
there on is reused. Writing 4 KiB into the middle of a 1 GiB file stores a
chunk or two and the few index nodes above them.
"""

from __future__ import annotations

import bisect
import copy
import errno
import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO, Final, cast

from zerofs.chunking import chunk_stream
from zerofs.content import ContentWriter, is_hole, iter_chunk_ids, store_file
from zerofs.errors import CorruptionError
from zerofs.mount.spill import SpillFile
from zerofs.objects import MAX_FANOUT, ChunkRef, FileNode, ObjectId
from zerofs.repo import Repository

CHUNK_CACHE: Final = 8
"""Decoded chunks kept per open file: reads arrive in pieces smaller than a chunk."""
MEMORY_SPILL: Final = 32 << 10
"""Written data up to this offset stays in memory; past it, it moves to a spill file.

Most files written through a mount are small: they then cost no descriptor
and no host file, and a tree of 100,000 new files fits in memory until the
next commit."""
SMALL_FILE: Final = 1 << 20
"""A file stored whole at commit up to this size is hashed in one piece on this thread."""


class ChunkMap:
    """Where each chunk of a stored file starts, and a few decoded chunks."""

    def __init__(self, repo: Repository, file_id: ObjectId) -> None:
        """Read the file's chunk index (its size follows the number of chunks, not bytes)."""
        self.repo = repo
        node = repo.get_typed(file_id, FileNode)
        self.starts: list[int] = []
        self.refs: list[ChunkRef] = []
        offset = 0
        for chunk, size in iter_chunk_ids(repo, node):
            self.starts.append(offset)
            self.refs.append(ChunkRef(chunk, size))
            offset += size
        self.size = offset
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()  # the commit thread reads too

    def chunk(self, index: int) -> bytes:
        """Return chunk ``index``, verified against its id."""
        with self._lock:
            data = self._cache.get(index)
            if data is not None:
                self._cache.move_to_end(index)
                return data
        ref = self.refs[index]
        if is_hole(self.repo, ref.id, ref.size_bytes):  # zeros, known by the id: nothing to read
            return bytes(ref.size_bytes)
        data = self.repo.read_chunk(ref.id)
        with self._lock:
            self._cache[index] = data
            if len(self._cache) > CHUNK_CACHE:
                self._cache.popitem(last=False)
        return data

    def read(self, offset: int, end: int) -> bytes:
        """Return bytes [offset, end) of the stored file (``end`` within its size)."""
        index = bisect.bisect_right(self.starts, offset) - 1
        parts: list[bytes] = []
        while offset < end:
            start = self.starts[index]
            data = self.chunk(index)
            piece = data[offset - start : end - start]
            parts.append(piece)
            offset += len(piece)
            index += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)


class FileData:
    """A file's current contents: stored chunks under a sparse overlay of writes."""

    def __init__(self, repo: Repository, base_id: ObjectId | None, base_size: int, spill_dir: str) -> None:
        """Start from the stored file ``base_id`` (None: a new, empty file)."""
        self.repo = repo
        self.spill_dir = spill_dir
        self.spill: SpillFile | None = None
        self.memory: bytearray | None = None
        self.version = 0
        """Counts the changes of contents: a commit that stored a copy knows whether it is still current."""
        self._reset(base_id, base_size)
        self.dirty = base_id is None

    def _reset(self, base_id: ObjectId | None, base_size: int) -> None:
        self.base_id = base_id
        self.size = base_size if base_id is not None else 0
        self.base_valid = self.size
        self.starts: list[int] = []  # dirty extents below base_valid: sorted, disjoint, not touching
        self.ends: list[int] = []
        self._map: ChunkMap | None = None
        self.dirty = False

    @property
    def chunk_map(self) -> ChunkMap:
        """The stored file's chunk map, read on first use."""
        if self._map is None:
            assert self.base_id is not None
            self._map = ChunkMap(self.repo, self.base_id)
        return self._map

    def close(self) -> None:
        """Release the spill file (closed on the spill closer's thread)."""
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        self.memory = None

    # -- reads ----------------------------------------------------------------

    def read(self, offset: int, size: int) -> bytes:
        """Return up to ``size`` bytes at ``offset`` (short only at end of file)."""
        end = min(offset + size, self.size)
        parts: list[bytes] = []
        while offset < end:
            if offset >= self.base_valid:
                parts.append(self._read_spill(offset, end))
                break
            at = bisect.bisect_right(self.starts, offset) - 1
            if at >= 0 and offset < self.ends[at]:
                stop = min(end, self.ends[at])
                parts.append(self._read_spill(offset, stop))
            else:
                following = self.starts[at + 1] if at + 1 < len(self.starts) else self.base_valid
                stop = min(end, following, self.base_valid)
                parts.append(self.chunk_map.read(offset, stop))
            offset = stop
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, offset: int, buffer: memoryview) -> int:
        """Fill ``buffer`` with the bytes at ``offset``; return how many (fewer only at end of file).

        Past ``base_valid`` (all of a new file) the spill file is read straight
        into ``buffer``: a commit of a large new file copies each byte once.
        """
        size = max(0, min(len(buffer), self.size - offset))
        if self.spill is not None and offset >= self.base_valid and size:
            self.spill.readinto(offset, buffer[:size])
            return size
        piece = self.read(offset, size)
        buffer[: len(piece)] = piece
        return len(piece)

    def _read_spill(self, offset: int, end: int) -> bytes:
        if self.spill is None:
            memory = self.memory or b""
            data = bytes(memory[offset:end])
            return data + bytes(end - offset - len(data))
        return self.spill.read(offset, end - offset)

    # -- writes ---------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (past the end leaves a hole of zeros)."""
        end = offset + len(data)
        if self.spill is None and end <= MEMORY_SPILL:
            memory = self.memory if self.memory is not None else bytearray()
            if offset > len(memory):
                memory.extend(bytes(offset - len(memory)))
            memory[offset:end] = data
            self.memory = memory
        else:
            end = offset + self._spill_to_file().write(offset, data)
        if offset < self.base_valid:
            self._add_extent(offset, min(end, self.base_valid))
        self.size = max(self.size, end)
        self.dirty = True
        self.version += 1
        return end - offset

    def _spill_to_file(self) -> SpillFile:
        """The spill file, made on first use from the written data kept in memory so far.

        Raises:
            OSError: the host has no room for the data in memory (which stays there, readable).
        """
        if self.spill is None:
            spill = SpillFile(self.spill_dir)
            try:
                if self.memory and spill.write(0, self.memory) < len(self.memory):
                    raise OSError(errno.ENOSPC, "no room for a spill file")
            except OSError:
                spill.close()
                raise
            self.spill = spill
            self.memory = None
        return self.spill

    def _add_extent(self, start: int, end: int) -> None:
        # Merge with every extent it overlaps or touches.
        lo = bisect.bisect_left(self.ends, start)
        hi = bisect.bisect_right(self.starts, end)
        if lo < hi:
            start = min(start, self.starts[lo])
            end = max(end, self.ends[hi - 1])
        self.starts[lo:hi] = [start]
        self.ends[lo:hi] = [end]

    def truncate(self, size: int) -> None:
        """Cut or extend the file to ``size`` bytes (growth reads as zeros)."""
        if size < self.size:
            if self.spill is not None:
                self.spill.truncate(size)
            elif self.memory is not None:
                del self.memory[size:]
            if size < self.base_valid:
                self.base_valid = size
                keep = bisect.bisect_left(self.starts, size)
                del self.starts[keep:], self.ends[keep:]
                if self.ends and self.ends[-1] > size:
                    self.ends[-1] = size
        self.size = size
        self.dirty = True
        self.version += 1

    # -- commit ---------------------------------------------------------------

    def frozen(self) -> FileData | None:
        """Return a copy of the current contents for a commit to store while this file goes on changing.

        None when written data lives in a spill file (a copy would cost as
        much as the file): the commit then reads this object, which must not
        change until it is done. The copy shares the stored chunks (read-only).
        """
        if self.spill is not None:
            return None
        clone = copy.copy(self)
        clone.memory = bytearray(self.memory) if self.memory is not None else None
        clone.starts, clone.ends = list(self.starts), list(self.ends)
        return clone

    def store(self, writer: ContentWriter) -> tuple[ObjectId, FileNode]:
        """Store the current contents through ``writer``; return the file node id and node.

        Re-chunks only the stored chunks a change touches (see the module
        docstring), or the whole file when little of the stored file is left.
        """
        if self.base_id is None or self.base_valid == 0:
            if self.size <= min(SMALL_FILE, MAX_FANOUT * writer.params.min_bytes):
                return writer.write_bytes(self.read(0, self.size))
            return writer.write_stream(_ViewReader.over(self, 0))
        chunk_map = self.chunk_map
        refs: list[ChunkRef] = []
        reused = 0  # the next stored chunk that may be reused
        covered = 0  # where the previous run's re-chunking stopped
        for start, end in self._dirty_runs():
            if reused == len(chunk_map.refs) or start < covered:
                continue  # the previous run's re-chunking went past it (or to the end)
            first = bisect.bisect_right(chunk_map.starts, start) - 1
            refs.extend(chunk_map.refs[reused:first])
            cut_from = chunk_map.starts[first]
            new_refs, reused = self._rechunk(writer, cut_from, end, first)
            refs.extend(new_refs)
            covered = chunk_map.starts[reused] if reused < len(chunk_map.refs) else self.size
        if reused < len(chunk_map.refs):
            refs.extend(chunk_map.refs[reused:])
        # The lease held around a commit keeps gc out from here to the new HEAD; check that
        # gc did not take a reused chunk before it (the stored file was deleted and collected).
        missing = [ref.id for ref in refs if not writer.sink.has(ref.id)]
        if missing:
            raise CorruptionError(
                f"chunk {missing[0].hex()[:16]} of a file being changed was collected by gc; the change cannot land"
            )
        file_id, node = store_file(writer.sink, refs)
        assert node.size_bytes == self.size, (node.size_bytes, self.size)
        return file_id, node

    def _dirty_runs(self) -> Iterator[tuple[int, int]]:
        yield from zip(self.starts, self.ends, strict=True)
        if self.base_valid < self.chunk_map.size or self.size > self.base_valid:
            yield self.base_valid, self.size

    def _rechunk(self, writer: ContentWriter, cut_from: int, dirty_end: int, first: int) -> tuple[list[ChunkRef], int]:
        """Chunk from ``cut_from`` until a cut lands on a clean stored boundary; return refs and where to resume."""
        chunk_map = self.chunk_map
        resume = len(chunk_map.refs)

        def cuts() -> Iterator[memoryview]:
            nonlocal resume
            position = cut_from
            for buffer in chunk_stream(_ViewReader.over(self, cut_from), writer.params, seed=writer.repo.chunker_seed):
                yield buffer
                position += len(buffer)
                if position < dirty_end or position >= self.base_valid:
                    continue
                at = bisect.bisect_left(chunk_map.starts, position, lo=first)
                if at < len(chunk_map.starts) and chunk_map.starts[at] == position and self._clean_at(position):
                    resume = at
                    return

        refs = writer.store_chunks(cuts())
        return refs, resume

    def _clean_at(self, position: int) -> bool:
        """True when no dirty extent covers ``position`` (so the stored chunk there may be reused)."""
        at = bisect.bisect_right(self.starts, position) - 1
        return not (at >= 0 and position < self.ends[at])

    def committed(self, file_id: ObjectId) -> None:
        """The current contents were stored as ``file_id``: start over from there."""
        size = self.size
        self.close()
        self._reset(file_id, size)


class _ViewReader(io.RawIOBase):
    """A file object over a FileData's current contents, from ``offset`` on."""

    def __init__(self, data: FileData, offset: int) -> None:
        self.data = data
        self.offset = offset

    @classmethod
    def over(cls, data: FileData, offset: int) -> BinaryIO:
        """Return a reader typed as the binary file the chunker takes."""
        return cast(BinaryIO, cls(data, offset))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self.data.readinto(self.offset, memoryview(buffer))
        self.offset += count
        return count
