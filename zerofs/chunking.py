"""Content-defined chunking with FastCDC, unkeyed or keyed; knows nothing about storage.

The parameters are fixed per repository at ``init`` (recorded in its config)
because changing them would change every chunk boundary and defeat dedup.
We use pyfastcdc's compiled (Cython) FastCDC 2020; a pure-Python fallback
would be ~100x slower, so we refuse it rather than silently crawl.

**Keyed chunking (issue #15).** With a public gear table anyone can compute
a known file's chunk boundaries, hence its sequence of chunk sizes, and look
for that pattern among the sizes of a repository's sealed blobs. An
encrypted repository passes its ``Keys.chunker_seed`` as ``seed``; ``None``
is byte for byte the unkeyed chunker of a plain repository, on the same code
path at the same cost. pyfastcdc cannot take a gear table of our own: its
only key is ``seed``, a 63-bit integer XORed into every entry of its fixed
table (the same construction as borg's buzhash seed, 32 bits there). We use
it, with the integer taken from keyed BLAKE3 of the seed (``gear_xor``), and
choose it over the alternatives by measurement
(``benchmarks/keyed_chunking.py``: ``chunk_stream`` over 1 GiB of random
bytes, median of 5 runs, 2 shared cores, two runs):

- the XOR seed costs nothing: the same compiled loop over another table
  (keyed 2,330 and 2,270 MiB/s; unkeyed 2,260 and 2,310; the code before
  this change 2,290 and 2,330);
- a keyed byte permutation of every block before cutting
  (``bytes.translate``; the table becomes ``gear[perm[b]] ^ x``, one of
  256! * 2^63) copies every byte under the GIL: 1,235 and 912 MiB/s, 0.38
  to 0.68 s more per GiB, which alone makes an import of a large file
  (401 MB/s) 12-20% slower, before sealing costs anything; #15 allows 10%;
- a fully keyed table (256 keyed 64-bit entries, say from a BLAKE3 XOF of
  the seed) costs nothing at run time but needs compiled code: a 13-line
  ``gear`` argument in pyfastcdc's ``fastcdc.pyx``, built here with Cython
  and gcc, cut at the speed of the same build unkeyed (1,940 against 2,010
  MiB/s; both beat the installed wheel's 1,670). zerofs builds no extension
  today; vendoring one means Cython and a C compiler at every install.
  ``TODO(#15)``: switch to a full table once pyfastcdc takes one upstream.

What it hides, honestly: without the key nobody can compute a known file's
boundaries from the public table, so its size pattern cannot be looked up
in advance. It is a thin mitigation. Only the low 48 bits of the XOR value
reach the mask bits that decide a cut, and bit j of the gear hash depends
only on bits 0..j of the table, so someone who knows one file's bytes and
can pick out its chunk lengths in order (consecutive blobs in a pack) finds
the value one bit at a time: ``benchmarks/keyed_chunking.py`` does it in
0.1 s from the 13 chunks of a known 1 MiB file, and can then compute every
other known file's boundaries. (Known-plaintext attacks published in 2025
recover borg's XOR-seeded buzhash key too.) The same search finds nothing
against the byte permutation or a fully keyed table (tried on the patched
build), whose entries' low bits are all unknown at once; neither is proven
secure. No table hides the sizes themselves, nor which blobs make
one file.

**What the store does about chunk sizes (issue #15).** Two things, both in
the store of an encrypted repository only. Every sealed record is padded
to a Padmé length (``store/sealer.py``): a chunk's sealed size tells its
length only to within 2 KiB at 64-128 KiB (4 KiB above), so the 245,761
possible lengths of a default chunk (16-256 KiB) show as 97 sealed sizes,
at about 1.3% more bytes. And blobs are written to a pack in a random
order, a run at a time (``PackStore.hold``: runs of up to 2 MiB, about 25
chunks, locally; ``s3store._NewPack``: the whole pack on S3), so
consecutive blobs are no longer consecutive chunks. Against the attack above
(``benchmarks/keyed_chunking.py``): it finds the XOR value from the
simulated old layout of a pack (exact lengths in stream order) and finds
nothing from a real encrypted pack. Even given the chunks in order and
where each one starts (more than a pack shows), padding leaves each cut
somewhere in a 2 KiB window, and the bit-by-bit search then drops a guess
only once 11 mask bits lie at or below the bit it guesses (bit 33 of the
small mask, 40 of the large): about 2^33 guesses to carry instead of a few,
within reach of compiled code. Shuffling alone would not do either: with
exact lengths, a file's first chunk is one of the ~25 blobs of its run,
the next one of the rest, and a search over those orders prunes as it
goes. Each measure multiplies the other's cost, and we rely on both.
What is left after shuffling is each pack's multiset of padded sizes; a
guess of all 48 bits can be checked against it (cut the known file, pad,
compare) in about 0.3 ms, so 2^48 of them cost thousands of CPU-years. A
search that guesses orders within a run and cuts within their windows at
once may well do better; we have not built one, and none of this is
proven. Still visible: the
number and padded sizes of a pack's blobs, hence roughly how much data of
what size arrived when; a large set of known small files can still be
looked for statistically by their padded sizes (about 7 bits each, single-
chunk files need no key to predict); and a pack's blobs were stored by one
writer within one batch, so they tend to belong together; locally, a
large file's chunks stay within a few MiB of their place in the stream,
in a random order there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Final, NamedTuple

import blake3

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


SEED_BYTES: Final = 32
"""A chunker seed is a 32-byte key: ``Keys.chunker_seed``."""

GEAR_XOR_LABEL: Final = b"zerofs/v1/chunker:pyfastcdc-gear-xor"
"""What keyed BLAKE3 hashes to turn a seed into pyfastcdc's XOR value; changing it moves every keyed cut."""


def gear_xor(seed: bytes) -> int:
    """Return the nonzero 63-bit value that pyfastcdc XORs into its gear table for ``seed``.

    pyfastcdc takes a C ``uint64_t`` but shifts it left by one first, so
    only values below 2^63 are accepted, and 0 means "unkeyed".

    Raises:
        ValueError: ``seed`` is not ``SEED_BYTES`` long.
    """
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a chunker seed is {SEED_BYTES} bytes, not {len(seed)}")
    digest = blake3.blake3(GEAR_XOR_LABEL, key=seed).digest(length=8)
    return (int.from_bytes(digest, "little") >> 1) or 1  # 0 would be unkeyed; 2^-63, but never silently


def make_chunker(params: ChunkParams, seed: bytes | None = None) -> FastCDC:
    """Return a compiled FastCDC chunker for ``params``, keyed by ``seed`` if there is one.

    ``seed=None`` is the unkeyed chunker of a plain repository; a seed
    (``Keys.chunker_seed``) moves every boundary (see the module docstring).

    Raises:
        RepositoryError: only the slow pure-Python FastCDC is available.
        ValueError: ``seed`` is not ``SEED_BYTES`` long.
    """
    try:
        from pyfastcdc.cy import FastCDC  # 40 ms; only imports need it
    except ImportError as exc:
        raise RepositoryError("the compiled FastCDC (pyfastcdc.cy) is not installed; reinstall zerofs") from exc
    return FastCDC(
        params.avg_bytes,
        min_size=params.min_bytes,
        max_size=params.max_bytes,
        normalized_chunking=params.normalization,
        seed=0 if seed is None else gear_xor(seed),
    )


BLOCK_BYTES: Final = 8 << 20
"""The stream is read in blocks of this size; chunks are views into them, not copies."""


def chunk_stream(
    reader: BinaryIO, params: ChunkParams, chunker: FastCDC | None = None, seed: bytes | None = None
) -> Iterator[memoryview]:
    """Cut a stream into content-defined chunks; yield each as a read-only view of its bytes.

    ``chunker``, if given, must come from ``make_chunker(params, seed)``;
    without one, a chunker for ``params`` and ``seed`` is made here.

    The stream is read in blocks, each cut where FastCDC cuts; the last,
    unfinished chunk of a block is cut again at the start of the next (a
    cut depends only on the bytes since the previous cut, so the chunks are
    those of the whole stream). Each block is a buffer of its own, never
    reused, so a view stays valid as long as it is held; only the blocks
    whose chunks are still held are in memory.
    """
    chunker = chunker or make_chunker(params, seed)
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
