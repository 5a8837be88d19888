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

Then (and alone with --attack-only) what an attacker holding the pack
bytes of an encrypted repository can still do (issue #15: padded records,
shuffled packs), ``pack_attacks``:

  - the layout before #15, simulated (sealed length = chunk + 51, blobs in
    stream order): the attack above, run on every run of consecutive blobs
    of a pack, finds the XOR value;
  - exact lengths (padding defeated), shuffled in runs as a local pack's
    are: the same attack finds nothing;
  - a real encrypted ``PackStore`` holding the known file between other
    data: the same attack on every run of consecutive blobs of its pack
    (each length taken as sealed length - 55, the best guess padding
    leaves) finds nothing;
  - an attacker who somehow still had the chunks in order and knew where
    each one starts (more than the pack shows), against padded lengths:
    each cut is then only known to lie in a window of 2 KiB, so a guess of
    bit j survives unless no position of the window clears the mask bits
    up to j; the benchmark reports how fast the guesses multiply (the
    search gives up past --window-limit) and at which bit the masks first
    filter at all;
  - after shuffling, what is left is the multiset of padded lengths of a
    pack: a guess of the whole 48-bit value can be checked against it (cut
    the known file, pad, compare), and the benchmark times one such check
    to price 2^48 of them.

Not part of the test suite.

Usage:
  python benchmarks/keyed_chunking.py [--size-mib 1024] [--runs 5] [--base /tmp/base/zerofs/chunking.py]
                                      [--known-mib 1] [--attack-only] [--window-limit 4096]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import sys
import tempfile
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
from zerofs.crypto.keys import Keys
from zerofs.objects import Kind
from zerofs.store.codec import encode_record
from zerofs.store.local import SHUFFLE_BYTES, PackStore
from zerofs.store.packfile import BLOB_HEADER, PACK_HEADER, parse_sealed_blob_header, shuffled
from zerofs.store.sealer import Sealer, padded_length, sealed_record_bytes

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


def grow(candidates: list[int], j: int, survives: Callable[[int, int, int], bool]) -> list[int]:
    """Extend each guess of bits 0..j-1 with bit j (0 and 1); keep those ``survives(value, bit, low_bits)`` accepts."""
    bit, low_bits = 1 << j, (2 << j) - 1
    return [
        value for candidate in candidates for value in (candidate, candidate | bit) if survives(value, bit, low_bits)
    ]


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

        def survives(value: int, bit: int, low_bits: int, j: int = j) -> bool:
            return all(
                not (mask & bit) or not (sum((entries[k] ^ value) << k for k in range(j + 1)) & mask & low_bits)
                for mask, entries in constraints
            )

        candidates = grow(candidates, j, survives)
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


# -- what the pack bytes give an attacker (issue #15) ----------------------------------

SEALED_OVERHEAD_BEFORE = 51
"""Sealed length minus chunk length before #15 (raw chunk, no padding): head 6 + AEAD 45."""
SEALED_OVERHEAD_NOW = 55
"""The smallest sealed length minus chunk length now (raw chunk, no padding needed): head 10 + AEAD 45."""


def known_file(known_mib: int) -> bytes:
    return blake3.blake3(b"a file the attacker knows").digest(length=known_mib * MIB)


def cut(data: bytes, params: chunking.ChunkParams, seed: bytes) -> list[bytes]:
    return [bytes(c) for c in chunking.chunk_stream(io.BytesIO(data), params, seed=seed)]  # type: ignore[arg-type]


def stream_of_chunks(params: chunking.ChunkParams, seed: bytes, known: bytes) -> list[bytes]:
    """The chunks an import writes: 2 MiB of other data, the known file, 2 MiB more (each file cut on its own)."""
    return [*cut(os.urandom(2 * MIB), params, seed), *cut(known, params, seed), *cut(os.urandom(2 * MIB), params, seed)]


def pack_lengths(chunks: list[bytes], keys: Keys) -> list[int]:
    """Store ``chunks`` in a real encrypted PackStore; the sealed lengths of its blobs, in the pack's order."""
    with tempfile.TemporaryDirectory(prefix="zerofs-pack-attack-") as root:
        store = PackStore.create(root, b"{}", sealer=Sealer(keys))
        with store.batch() as batch:
            for chunk in chunks:
                batch.put(keys.object_id(Kind.CHUNK, chunk), encode_record(Kind.CHUNK, chunk, 3))
        store.close()
        (group,) = os.listdir(os.path.join(root, "packs"))
        (name,) = os.listdir(os.path.join(root, "packs", group))
        with open(os.path.join(root, "packs", group, name), "rb") as handle:
            data = handle.read()
    lengths, offset = [], PACK_HEADER.size
    while (parsed := parse_sealed_blob_header(data, offset)) is not None:
        _, stored = parsed
        lengths.append(stored)
        offset += BLOB_HEADER.size + stored
    return lengths


def shuffled_in_runs(lengths: list[int]) -> list[int]:
    """``lengths`` shuffled within runs of ``SHUFFLE_BYTES``, as ``PackStore.hold`` writes blobs."""
    result: list[int] = []
    run: list[int] = []
    for length in lengths:
        run.append(length)
        if sum(run) >= SHUFFLE_BYTES:
            result += shuffled(run)
            run = []
    return result + shuffled(run)


def attack_every_run(known: bytes, guessed: list[int], params: chunking.ChunkParams, seed: bytes) -> str:
    """Run ``recover_gear_xor`` on every run of consecutive blobs about as long as the known file."""
    true_xor = chunking.gear_xor(seed) & ((1 << GEAR_BITS) - 1)
    started, tried = time.perf_counter(), 0
    for start in range(len(guessed)):
        total, end = 0, start
        while end < len(guessed) and total < len(known):
            total += guessed[end]
            end += 1
        if total < len(known) - 4096 or total > len(known) + (end - start) * 4096:
            continue
        run = guessed[start:end]
        run[-1] -= total - len(known)  # the attacker knows the file's size: the last chunk ends it
        tried += 1
        candidates = recover_gear_xor(known, run, params)
        if any(c & ((1 << GEAR_BITS) - 1) == true_xor for c in candidates):
            return f"recovered from blobs {start}-{end - 1} ({tried} runs tried, {time.perf_counter() - started:.2f} s)"
    return f"not recovered ({tried} runs of consecutive blobs tried, {time.perf_counter() - started:.2f} s)"


def windowed_growth(known: bytes, chunks: list[bytes], params: chunking.ChunkParams, limit: int) -> str:
    """The bit-by-bit search when each cut is only known to lie in its padding window (chunk starts given)."""
    bits = params.avg_bytes.bit_length() - 1
    mask_small, mask_large = MASKS[bits + params.normalization], MASKS[bits - params.normalization]
    windows, start = [], 0
    for chunk in chunks[:-1]:
        low = padded_length(10 + len(chunk))  # every length that pads to what the pack shows
        lengths = [n for n in range(max(params.min_bytes, len(chunk) - 8192), len(chunk) + 8192)]
        lengths = [
            n for n in lengths if padded_length(10 + n) == low and n < params.max_bytes and start + n < len(known)
        ]  # a cut past the file's end cannot be (the last chunk's window may reach it)
        mask = mask_small if len(chunk) < params.avg_bytes else mask_large
        windows.append((mask, [[GEAR[known[start + n - k]] for k in range(GEAR_BITS)] for n in lengths]))
        start += len(chunk)
    width = int(statistics.median(len(w) for _, w in windows))
    first_filter = [
        next(j for j in range(GEAR_BITS) if bin(mask & ((2 << j) - 1)).count("1") >= width.bit_length() - 1)
        for mask in (mask_small, mask_large)
    ]
    candidates, started = [0], time.perf_counter()
    for j in range(GEAR_BITS):

        def survives_in_windows(value: int, bit: int, low_bits: int, j: int = j) -> bool:
            return all(
                not (mask & bit)
                or any(not (sum((e[k] ^ value) << k for k in range(j + 1)) & mask & low_bits) for e in positions)
                for mask, positions in windows
            )

        candidates = grow(candidates, j, survives_in_windows)
        if len(candidates) > limit:
            return (
                f"{len(candidates)} guesses alive at bit {j}, stopped (windows of {width} positions): a guess "
                f"is dropped only once about log2({width}) mask bits lie at or below bit j, from bit "
                f"{first_filter[0]} (small mask) / {first_filter[1]} (large), so about 2^{first_filter[0]} "
                "guesses to carry"
            )
    return f"{len(candidates)} guesses left after 48 bits ({time.perf_counter() - started:.1f} s)"


def multiset_check_seconds(known: bytes, params: chunking.ChunkParams, guesses: int = 20) -> float:
    """Seconds to check one full guess against a pack's multiset of padded lengths (cut, pad, count)."""
    started = time.perf_counter()
    for value in range(1, guesses + 1):
        chunker = FastCDC(params.avg_bytes, min_size=params.min_bytes, max_size=params.max_bytes, seed=value)
        sorted(sealed_record_bytes(c.length) for c in chunker.cut_buf(known))
    return (time.perf_counter() - started) / guesses


def pack_attacks(params: chunking.ChunkParams, known_mib: int, window_limit: int) -> None:
    keys = Keys.derive(os.urandom(32))
    seed = keys.chunker_seed
    known = known_file(known_mib)
    chunks = stream_of_chunks(params, seed, known)
    known_chunks = cut(known, params, seed)
    print(f"\npack attacks: a known file of {known_mib} MiB ({len(known_chunks)} chunks) among {len(chunks)} chunks")
    before = [len(c) for c in chunks]  # sealed - 51, in stream order: what a pack showed before #15
    print(f"  before #15 (exact lengths, stream order): {attack_every_run(known, before, params, seed)}")
    exact_shuffled = attack_every_run(known, shuffled_in_runs(before), params, seed)
    print(f"  exact lengths, shuffled in runs (padding defeated): {exact_shuffled}")
    now = [stored - SEALED_OVERHEAD_NOW for stored in pack_lengths(chunks, keys)]
    print(f"  now, a real encrypted pack (padded, shuffled): {attack_every_run(known, now, params, seed)}")
    padded_in_order = [sealed_record_bytes(len(c)) - SEALED_OVERHEAD_NOW for c in chunks]
    in_order = attack_every_run(known, padded_in_order, params, seed)
    print(f"  padded but in stream order (shuffling defeated): {in_order}")
    print(f"  padded, chunk starts known: {windowed_growth(known, known_chunks, params, window_limit)}")
    check = multiset_check_seconds(known, params)
    print(
        f"  shuffled: one full guess checked against a pack's padded lengths in {check * 1e3:.2f} ms; "
        f"2^48 guesses: {check * 2**48 / 86400 / 365:,.0f} CPU-years"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024, help="size of file (a) in MiB (default 1024)")
    p.add_argument("--dir", default="/var/tmp/zerofs-chunk-params", help="where (a) and (d) are kept")
    p.add_argument("--runs", type=int, default=5, help="timed runs per variant (median)")
    p.add_argument("--base", help="another worktree's zerofs/chunking.py, timed as the unchanged code")
    p.add_argument("--import-mbs", type=float, default=401.0, help="import (a) MB/s for the estimate")
    p.add_argument("--known-mib", type=int, default=1, help="size of the file the attacker knows (default 1)")
    p.add_argument("--attack-only", action="store_true", help="only the attacks on pack bytes (issue #15)")
    p.add_argument("--window-limit", type=int, default=4096, help="guesses after which the windowed search stops")
    args = p.parse_args(argv)
    if args.attack_only:
        pack_attacks(chunking.ChunkParams(), args.known_mib, args.window_limit)
        return 0
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
    pack_attacks(params, args.known_mib, args.window_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
