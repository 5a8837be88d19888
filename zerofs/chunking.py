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


def chunk_stream(reader: BinaryIO, params: ChunkParams, chunker: FastCDC | None = None) -> Iterator[bytes]:
    """Cut a stream into content-defined chunks; yield each as bytes of its own.

    Only a few chunks of the stream are in memory at any time, however long it is.
    """
    chunker = chunker or make_chunker(params)
    for chunk in chunker.cut_stream(reader):
        yield bytes(chunk.data)
