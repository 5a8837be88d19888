"""Content-defined chunking with FastCDC; knows nothing about storage.

The parameters are fixed per repository at ``init`` (recorded in its config)
because changing them would change every chunk boundary and defeat dedup.
We use pyfastcdc's compiled (Cython) FastCDC 2020; a pure-Python fallback
would be ~100x slower, so we refuse it rather than silently crawl.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Final, NamedTuple

from zerofs.errors import RepositoryError

if TYPE_CHECKING:
    from pyfastcdc.cy import FastCDC

DEFAULT_AVG_BYTES: Final = 64 * 1024
"""Chosen by benchmarks/chunk_params.py; see docs/ARCHITECTURE.md."""


class ChunkParams(NamedTuple):
    """FastCDC parameters; real mean chunk size is about avg + min."""

    avg_bytes: int = DEFAULT_AVG_BYTES
    min_bytes: int = DEFAULT_AVG_BYTES // 4
    max_bytes: int = DEFAULT_AVG_BYTES * 4
    normalization: int = 1

    def to_dict(self) -> dict[str, int]:
        """Return the parameters as recorded in the repository config."""
        return {
            "avg_bytes": self.avg_bytes,
            "min_bytes": self.min_bytes,
            "max_bytes": self.max_bytes,
            "normalization": self.normalization,
        }


def make_chunker(params: ChunkParams) -> FastCDC:
    """Return a compiled FastCDC chunker for ``params``.

    Raises:
        RepositoryError: only the slow pure-Python FastCDC is available.
    """
    try:
        from pyfastcdc.cy import FastCDC  # 40 ms; only imports need it
    except ImportError as exc:
        raise RepositoryError("the compiled FastCDC (pyfastcdc.cy) is not installed; reinstall zerofs") from exc
    return FastCDC(
        params.avg_bytes, min_size=params.min_bytes, max_size=params.max_bytes, normalized_chunking=params.normalization
    )


BLOCK_BYTES: Final = 8 << 20
"""The stream is read in blocks of this size; chunks are views into them, not copies."""


def chunk_stream(reader: BinaryIO, params: ChunkParams, chunker: FastCDC | None = None) -> Iterator[memoryview]:
    """Cut a stream into content-defined chunks; yield each as a read-only view of its bytes.

    The stream is read in blocks, each cut where FastCDC cuts; the last,
    unfinished chunk of a block is cut again at the start of the next (a
    cut depends only on the bytes since the previous cut, so the chunks are
    those of the whole stream). Each block is a buffer of its own, never
    reused, so a view stays valid as long as it is held; only the blocks
    whose chunks are still held are in memory.
    """
    chunker = chunker or make_chunker(params)
    carry = b""
    while True:
        block = bytearray(len(carry) + BLOCK_BYTES)
        block[: len(carry)] = carry
        end = len(carry) + _read_into(reader, memoryview(block)[len(carry) : len(carry) + BLOCK_BYTES])
        is_last = end < len(carry) + BLOCK_BYTES
        view = memoryview(block).toreadonly()[:end]
        chunks = list(chunker.cut_buf(view)) if end else []
        if not is_last and chunks:
            carry = bytes(chunks.pop().data)
        for chunk in chunks:
            yield chunk.data
        if is_last:
            return


def _read_into(reader: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``reader`` unless it ends first; return the bytes read."""
    filled = 0
    while filled < len(view):
        count = reader.readinto(view[filled:])  # type: ignore[attr-defined]  # raw and buffered readers have it
        if not count:
            break
        filled += count
    return filled
