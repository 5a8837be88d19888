"""chunking.py: the unkeyed chunker unchanged, and the keyed one (issue #15) moving every boundary."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyfastcdc.cy import FastCDC

import zerofs
from zerofs.chunking import BLOCK_BYTES, SEED_BYTES, ChunkParams, chunk_stream, gear_xor, make_chunker

MIB = 1 << 20
SEED = bytes(range(SEED_BYTES))
OTHER_SEED = bytes(range(1, SEED_BYTES + 1))
SMALL = ChunkParams(avg_bytes=4096, min_bytes=1024, max_bytes=16384)
"""Small chunks, so a megabyte gives hundreds of them."""

KNOWN_DATA_BYTES = 20 * MIB
"""Over two of chunk_stream's blocks, so the known answers cover the cut again at a block's end."""
KNOWN_UNKEYED = (243, "430fe85ebfd9db72b551c490e6ebbde1e90d7a760594d7dd10fd8f58c67616a3")
"""Chunk count and digest of the lengths of ``known_data()``, unkeyed, from the code before #15's keyed chunker."""
KNOWN_KEYED = (260, "9b9d84a25d4c54804fa0dd82b148f871c3c8ba298b18349866024ed4ea8d2e3a")
"""The same with ``seed=SEED``, written down from one run."""
KNOWN_GEAR_XOR = 0x3FE30F853067FD70
"""``gear_xor(SEED)``, written down from one run."""


def random_bytes(size: int, key: bytes = SEED) -> bytes:
    """Reproducible random bytes: a BLAKE3 XOF, fast enough for megabytes per example."""
    return blake3.blake3(b"test data", key=key).digest(length=size)


def known_data() -> bytes:
    return blake3.blake3(b"zerofs chunking known answer").digest(length=KNOWN_DATA_BYTES)


def lengths(data: bytes, params: ChunkParams = ChunkParams(), seed: bytes | None = None) -> list[int]:  # noqa: B008
    return [len(chunk) for chunk in chunk_stream(io.BytesIO(data), params, seed=seed)]


def cuts(data: bytes, params: ChunkParams = ChunkParams(), seed: bytes | None = None) -> set[int]:  # noqa: B008
    """The offsets where a chunk ends, the end of the data left out (every chunker cuts there)."""
    offsets, offset = set(), 0
    for length in lengths(data, params, seed)[:-1]:
        offset += length
        offsets.add(offset)
    return offsets


def digest(found: list[int]) -> tuple[int, str]:
    return len(found), blake3.blake3(b"".join(n.to_bytes(4, "little") for n in found)).hexdigest()


def shared_fraction(first: set[int], second: set[int]) -> float:
    return len(first & second) / min(len(first), len(second))


def test_unkeyed_is_the_unchanged_chunker() -> None:
    """seed=None cuts where pyfastcdc's default table cuts the whole buffer, and where the old code cut."""
    data = known_data()
    old = FastCDC(65536, min_size=16384, max_size=262144, normalized_chunking=1)
    assert lengths(data) == [chunk.length for chunk in old.cut_buf(data)]
    assert digest(lengths(data)) == KNOWN_UNKEYED
    assert digest([len(c) for c in chunk_stream(io.BytesIO(data), ChunkParams(), make_chunker(ChunkParams()))]) == (
        KNOWN_UNKEYED
    )


def test_keyed_known_answer() -> None:
    assert gear_xor(SEED) == KNOWN_GEAR_XOR
    assert digest(lengths(known_data(), seed=SEED)) == KNOWN_KEYED


def test_keyed_stream_cuts_like_the_whole_buffer() -> None:
    """Re-cutting each block's unfinished chunk gives the keyed chunks of the whole stream."""
    data = random_bytes(2 * BLOCK_BYTES + 12345)
    whole = make_chunker(ChunkParams(), SEED).cut_buf(data)
    assert lengths(data, seed=SEED) == [chunk.length for chunk in whole]


def test_a_given_chunker_is_used() -> None:
    data = random_bytes(MIB)
    keyed = make_chunker(SMALL, SEED)
    assert [len(c) for c in chunk_stream(io.BytesIO(data), SMALL, keyed)] == lengths(data, SMALL, SEED)


def test_keyed_boundaries_differ_from_unkeyed_and_between_seeds() -> None:
    """Independent chunkers share a cut only by chance: a few in a thousand, never most."""
    data = random_bytes(8 * MIB)
    unkeyed, keyed, other = cuts(data, SMALL), cuts(data, SMALL, SEED), cuts(data, SMALL, OTHER_SEED)
    assert min(len(unkeyed), len(keyed), len(other)) > 1000
    assert shared_fraction(unkeyed, keyed) < 0.05
    assert shared_fraction(unkeyed, other) < 0.05
    assert shared_fraction(keyed, other) < 0.05


def test_same_seed_same_boundaries_across_calls_and_processes() -> None:
    data_key = b"k" * 32
    here = lengths(random_bytes(4 * MIB, data_key), seed=SEED)
    assert lengths(random_bytes(4 * MIB, data_key), seed=SEED) == here
    program = (
        "import io, sys, blake3\n"
        "from zerofs.chunking import ChunkParams, chunk_stream\n"
        "data = blake3.blake3(b'test data', key=b'k' * 32).digest(length=4 << 20)\n"
        "seed = bytes(range(32))\n"
        "print(' '.join(str(len(c)) for c in chunk_stream(io.BytesIO(data), ChunkParams(), seed=seed)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(zerofs.__file__).parent.parent), "PYTHONHASHSEED": "random"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    assert [int(n) for n in done.stdout.split()] == here


def test_only_the_low_48_bits_of_the_xor_value_reach_a_cut() -> None:
    """The weakness the module docstring states: no mask has a bit above 47, so higher key bits are wasted."""
    data = random_bytes(4 * MIB)
    value = gear_xor(SEED)
    for params in (SMALL, ChunkParams()):

        def cut(xor: int, params: ChunkParams = params) -> list[int]:
            chunker = FastCDC(params.avg_bytes, min_size=params.min_bytes, max_size=params.max_bytes, seed=xor)
            return [chunk.length for chunk in chunker.cut_buf(data)]

        assert cut(value ^ (1 << 60) ^ (1 << 48)) == cut(value)
        assert cut(value ^ (1 << 47)) != cut(value)


@settings(max_examples=25)
@given(seed=st.binary(min_size=SEED_BYTES, max_size=SEED_BYTES), data_key=st.binary(min_size=32, max_size=32))
def test_keyed_sizes_stay_within_bounds_and_near_the_mean(seed: bytes, data_key: bytes) -> None:
    """On random data, a keyed chunker's sizes keep FastCDC's shape: real mean about avg + min."""
    data = random_bytes(2 * MIB, data_key)
    found = lengths(data, SMALL, seed)
    assert sum(found) == len(data)
    assert all(SMALL.min_bytes <= n <= SMALL.max_bytes for n in found[:-1])
    assert 0 < found[-1] <= SMALL.max_bytes
    mean = len(data) / len(found)
    assert 0.7 * (SMALL.avg_bytes + SMALL.min_bytes) < mean < 1.3 * (SMALL.avg_bytes + SMALL.min_bytes)


@given(
    seed=st.binary(min_size=SEED_BYTES, max_size=SEED_BYTES),
    pattern=st.binary(min_size=1, max_size=4096),
    repeats=st.integers(min_value=1, max_value=64),
)
def test_keyed_chunks_rebuild_any_data_within_bounds(seed: bytes, pattern: bytes, repeats: int) -> None:
    """Any bytes, low-entropy ones included: the chunks put back together are the data, none over max."""
    data = pattern * repeats
    chunks = [bytes(c) for c in chunk_stream(io.BytesIO(data), SMALL, seed=seed)]
    assert b"".join(chunks) == data
    assert all(SMALL.min_bytes <= len(c) <= SMALL.max_bytes for c in chunks[:-1])


@pytest.mark.parametrize("seed", [None, SEED], ids=["unkeyed", "keyed"])
def test_an_inserted_byte_leaves_most_chunks_shared(seed: bytes | None) -> None:
    original = random_bytes(8 * MIB)
    edited = original[: 3 * MIB + 12345] + b"!" + original[3 * MIB + 12345 :]
    before = {bytes(c) for c in chunk_stream(io.BytesIO(original), ChunkParams(), seed=seed)}
    after = [bytes(c) for c in chunk_stream(io.BytesIO(edited), ChunkParams(), seed=seed)]
    new_bytes = sum(len(c) for c in after if c not in before)
    assert 0 < new_bytes < 4 * ChunkParams().max_bytes


@pytest.mark.parametrize("size", [0, 16, SEED_BYTES + 1])
def test_a_seed_of_the_wrong_length_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="chunker seed is 32 bytes"):
        make_chunker(ChunkParams(), bytes(size))


@given(seed=st.binary(min_size=SEED_BYTES, max_size=SEED_BYTES))
def test_the_xor_value_is_one_pyfastcdc_takes_as_keyed(seed: bytes) -> None:
    assert 0 < gear_xor(seed) < 1 << 63
