#!/usr/bin/env python3
"""The keyed chunker's cost and dedup, against the unkeyed one (issue #15).

On file (a) (random bytes) and file (d) ((a) with 1 MiB inserted and 4 KiB
overwritten; the files of benchmarks/chunk_params.py, made there if missing)
this measures, for the default ChunkParams:

  - ``chunk_stream`` speed over (a) read from the page cache (MiB/s, median of
    --runs, the variants interleaved within each run so that load on the
    machine hits them alike): unkeyed (``seed=None``), keyed
    (``seed=Keys.chunker_seed``-like 32 bytes), the rejected keyed byte
    permutation (``bytes.translate`` of every block before cutting), and,
    with --base, the unchanged code's ``chunk_stream`` loaded from another
    worktree (A/B: plain repositories must not pay);
  - the bytes of (d) not shared with (a), per variant (dedup must survive keying);
  - an estimate of the whole import (a) speed with each variant: the extra
    seconds per GiB over the unkeyed chunker added to an import at --import-mbs;
  - what the key hides from someone who knows one file's bytes and sees its
    chunk lengths in order (say, in a pack): ``recover_gear_xor`` tries to
    find the keyed chunker's XOR value bit by bit from a known file of
    --known-mib, and the time it took (it succeeds against the gear XOR; the
    same search finds nothing that reproduces the permuted chunker's cuts).

Not part of the test suite.

Usage:
  python benchmarks/keyed_chunking.py [--size-mib 1024] [--runs 5] [--base /tmp/base/zerofs/chunking.py]
                                      [--known-mib 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

import blake3
from pyfastcdc.cy import FastCDC
from pyfastcdc.py.constants import GEAR, MASKS

sys.path.insert(0, str(Path(__file__).parent))
from chunk_params import NEW_BYTES, make_files

from zerofs import chunking

MIB = 1 << 20
SEED = bytes(range(32))
Cutter = Callable[[BinaryIO], Iterator[memoryview]]
GEAR_BITS = 48
"""No FastCDC mask has a bit above 47, so only the low 48 bits of the XOR value decide a cut."""


def load_base(path: str) -> ModuleType:
    """Load another worktree's chunking.py as its own module, beside ours."""
    spec = importlib.util.spec_from_file_location("base_chunking", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def translated_stream(reader: BinaryIO, params: chunking.ChunkParams, seed: bytes) -> Iterator[memoryview]:
    """The rejected alternative: cut a keyed byte permutation of each block, yield the original bytes."""
    order = blake3.blake3(b"benchmark permutation", key=seed).digest(length=512)
    table = bytes(sorted(range(256), key=lambda b: order[2 * b : 2 * b + 2]))
    chunker = chunking.make_chunker(params, seed)
    carry = b""
    while True:  # chunk_stream's loop, cutting a translated copy of each block
        block = bytearray(len(carry) + chunking.BLOCK_BYTES)
        block[: len(carry)] = carry
        room = memoryview(block)[len(carry) :]
        end = len(carry) + chunking._read_into(reader, room)
        is_last = end < len(block)
        view = memoryview(block).toreadonly()[:end]
        cuts = [(c.offset, c.length) for c in chunker.cut_buf(memoryview(block.translate(table))[:end])]
        if not is_last and cuts:
            offset, _ = cuts.pop()
            carry = bytes(view[offset:])
        for offset, length in cuts:
            yield view[offset : offset + length]
        if is_last:
            return


def variants(params: chunking.ChunkParams, base: ModuleType | None) -> dict[str, Cutter]:
    found: dict[str, Cutter] = {}
    if base is not None:
        found["unkeyed, unchanged code (--base)"] = lambda r: base.chunk_stream(r, params)
    found["unkeyed (seed=None)"] = lambda r: chunking.chunk_stream(r, params)
    found["keyed (seed, gear XOR)"] = lambda r: chunking.chunk_stream(r, params, seed=SEED)
    found["keyed byte permutation (rejected)"] = lambda r: translated_stream(r, params, SEED)
    return found


def seconds(cut: Cutter, path: Path) -> float:
    with open(path, "rb", buffering=0) as reader:
        started = time.perf_counter()
        for _chunk in cut(reader):  # type: ignore[arg-type]  # a raw reader is a BinaryIO here
            pass
        return time.perf_counter() - started


def ids(cut: Cutter, path: Path) -> list[tuple[bytes, int]]:
    with open(path, "rb", buffering=0) as reader:
        return [(blake3.blake3(c).digest(), len(c)) for c in cut(reader)]  # type: ignore[arg-type]


def cut_constraints(known: bytes, lengths: list[int], params: chunking.ChunkParams) -> list[tuple[int, list[int]]]:
    """For each cut made by the gear hash: its mask and the public table entries of the 48 bytes before it.

    pyfastcdc ends a chunk just before the byte whose hash matched, with the
    small-chunk mask before avg_bytes and the large one after; a chunk of
    max_bytes (or the last one) was cut by size, which says nothing.
    """
    bits = params.avg_bytes.bit_length() - 1
    mask_small, mask_large = MASKS[bits + params.normalization], MASKS[bits - params.normalization]
    constraints, start = [], 0
    for length in lengths[:-1]:
        start += length
        if length < params.max_bytes:
            mask = mask_small if length < params.avg_bytes else mask_large
            constraints.append((mask, [GEAR[known[start - k]] for k in range(GEAR_BITS)]))
    return constraints


def recover_gear_xor(known: bytes, lengths: list[int], params: chunking.ChunkParams) -> list[int]:
    """Every value of the low 48 bits of the XOR that agrees with the cuts, found one bit at a time.

    Bit j of the gear hash depends only on bits 0..j of the table entries,
    hence of the XOR value: a guess of bits 0..j either leaves every mask
    bit up to j clear at every cut or is dropped. A few guesses survive each
    bit, not 2^48.
    """
    constraints = cut_constraints(known, lengths, params)
    candidates = [0]
    for j in range(GEAR_BITS):
        bit, low_bits = 1 << j, (2 << j) - 1
        candidates = [
            value
            for candidate in candidates
            for value in (candidate, candidate | bit)
            if all(
                not (mask & bit) or not (sum((entries[k] ^ value) << k for k in range(j + 1)) & mask & low_bits)
                for mask, entries in constraints
            )
        ]
        if len(candidates) > 1 << 16:
            return []  # the table is not the public one XORed with a value
    return candidates


def attack(cut: Cutter, params: chunking.ChunkParams, known_mib: int) -> str:
    """Try recover_gear_xor on a known file cut by ``cut``; say whether a candidate reproduces every cut."""
    known = blake3.blake3(b"a file the attacker knows").digest(length=known_mib * MIB)
    lengths = [len(c) for c in cut(io.BytesIO(known))]  # type: ignore[arg-type]
    started = time.perf_counter()
    candidates = recover_gear_xor(known, lengths, params)
    elapsed = time.perf_counter() - started
    for value in candidates:
        chunker = FastCDC(params.avg_bytes, min_size=params.min_bytes, max_size=params.max_bytes, seed=value)
        if [c.length for c in chunker.cut_buf(known)] == lengths:
            return f"recovered, {elapsed:.2f} s from {len(lengths)} chunks"
    return f"not recovered ({len(candidates)} candidates, {elapsed:.2f} s)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024, help="size of file (a) in MiB (default 1024)")
    p.add_argument("--dir", default="/var/tmp/zerofs-chunk-params", help="where (a) and (d) are kept")
    p.add_argument("--runs", type=int, default=5, help="timed runs per variant (median)")
    p.add_argument("--base", help="another worktree's zerofs/chunking.py, timed as the unchanged code")
    p.add_argument("--import-mbs", type=float, default=401.0, help="import (a) MB/s for the estimate")
    p.add_argument("--known-mib", type=int, default=1, help="size of the file the attacker knows (default 1)")
    args = p.parse_args(argv)
    a, d, _, _ = make_files(Path(args.dir), args.size_mib)
    params = chunking.ChunkParams()
    cutters = variants(params, load_base(args.base) if args.base else None)
    times: dict[str, list[float]] = {name: [] for name in cutters}
    seconds(next(iter(cutters.values())), a)  # warm the page cache and the allocator first
    for _ in range(args.runs):
        for name, cut in cutters.items():
            times[name].append(seconds(cut, a))
    size_mib = a.stat().st_size / MIB
    plain = statistics.median(times["unkeyed (seed=None)"])
    import_seconds = a.stat().st_size / (args.import_mbs * 1e6)
    print(f"(a) {a}, {size_mib:,.0f} MiB; {args.runs} runs; import estimate from {args.import_mbs:.0f} MB/s")
    print(f"{'variant':36} {'MiB/s':>7} {'runs MiB/s':>30} {'(d) not shared':>15} {'import est.':>11}  attack")
    for name, cut in cutters.items():
        median = statistics.median(times[name])
        known = {h for h, _ in ids(cut, a)}
        unshared = sum(n for h, n in ids(cut, d) if h not in known)
        estimate = import_seconds / (import_seconds + median - plain)
        runs = " ".join(f"{size_mib / t:,.0f}" for t in times[name])
        print(
            f"{name:36} {size_mib / median:7,.0f} {runs:>30} "
            f"{unshared / MIB:8.2f} MiB {unshared / NEW_BYTES:4.2f}x {estimate:10.2f}x  "
            f"{attack(cut, params, args.known_mib)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
