#!/usr/bin/env python3
"""FastCDC chunk-size trade-off, to justify zerofs's chunking parameters.

For avg_size in 16, 32, 64, 128 and 256 KiB (min = avg/4, max = avg*4,
normalized_chunking=1) this measures, on file (a) (random bytes) and file (d)
((a) with 1 MiB inserted at 16 MiB and 4 KiB overwritten at 512 MiB, or at
half the file when the file is smaller):

  - chunking speed (MB/s, pyfastcdc cut_file, no hashing; median of --runs);
  - number of chunks and mean chunk size of (a);
  - the bytes of (d) not shared with (a): the summed length of the chunks of
    (d) whose BLAKE3 id is not among the ids of (a)'s chunks, and its ratio to
    the truly new 1 MiB + 4 KiB;
  - a metadata estimate: n_chunks * 40 bytes (32-byte id + length/offset).

Pure in-process; uses only pyfastcdc and blake3. Not part of the test suite.

Usage:
  python benchmarks/chunk_params.py [--size-mib 1024] [--dir DIR] [--runs 3] [--clean]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import blake3
import pyfastcdc

KIB = 1 << 10
MIB = 1 << 20
MB = 1_000_000
NEW_BYTES = MIB + 4 * KIB
AVG_SIZES = (16 * KIB, 32 * KIB, 64 * KIB, 128 * KIB, 256 * KIB)
META_BYTES_PER_CHUNK = 40


def make_files(directory: Path, size_mib: int) -> tuple[Path, Path, int, int]:
    """Create a-<N>M.bin and d-<N>M.bin in `directory` unless already there."""
    directory.mkdir(parents=True, exist_ok=True)
    a = directory / f"a-{size_mib}M.bin"
    d = directory / f"d-{size_mib}M.bin"
    size = size_mib * MIB
    insert_at = min(16 * MIB, size // 4)
    overwrite_at = min(512 * MIB, size // 2)
    if not (a.exists() and a.stat().st_size == size):
        print(f"writing {a} ...", flush=True)
        tmp = a.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(MIB))
        tmp.replace(a)
        d.unlink(missing_ok=True)
    if not (d.exists() and d.stat().st_size == size + MIB):
        print(f"writing {d} ...", flush=True)
        tmp = d.with_suffix(".tmp")
        with open(a, "rb") as fi, open(tmp, "wb") as fo:
            fo.write(fi.read(insert_at))
            fo.write(os.urandom(MIB))
            while buf := fi.read(MIB):
                fo.write(buf)
        with open(tmp, "r+b") as fo:
            fo.seek(overwrite_at)
            fo.write(os.urandom(4 * KIB))
        tmp.replace(d)
    return a, d, insert_at, overwrite_at


def chunk_ids(cdc: pyfastcdc.FastCDC, path: Path) -> list[tuple[bytes, int]]:
    return [(blake3.blake3(c.data).digest(), c.length) for c in cdc.cut_file(str(path))]


def chunk_speed(cdc: pyfastcdc.FastCDC, path: Path, runs: int) -> float:
    size = path.stat().st_size
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _chunk in cdc.cut_file(str(path)):
            pass
        times.append(time.perf_counter() - t0)
    return size / statistics.median(times) / MB


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024, help="size of file (a) in MiB (default 1024)")
    p.add_argument(
        "--dir",
        default="/var/tmp/zerofs-chunk-params",
        help="where (a) and (d) are kept between runs (default /var/tmp/zerofs-chunk-params)",
    )
    p.add_argument("--runs", type=int, default=3, help="runs of the chunking-speed measure (median)")
    p.add_argument("--clean", action="store_true", help="delete the generated files at the end")
    args = p.parse_args(argv)
    if args.size_mib < 8:
        p.error("--size-mib must be at least 8")

    directory = Path(args.dir)
    a, d, insert_at, overwrite_at = make_files(directory, args.size_mib)
    print(
        f"(a) {a} ({args.size_mib} MiB random); (d) = (a) + 1 MiB inserted at "
        f"{insert_at // MIB} MiB, 4 KiB overwritten at {overwrite_at // MIB} MiB; "
        f"truly new bytes {NEW_BYTES:,}"
    )
    headers = [
        "avg",
        "min",
        "max",
        "chunk MB/s",
        "chunks (a)",
        "mean chunk",
        "(d) not shared",
        "/ new bytes",
        "metadata (a)",
    ]
    rows = []
    try:
        for avg in AVG_SIZES:
            cdc = pyfastcdc.FastCDC(avg, min_size=avg // 4, max_size=avg * 4, normalized_chunking=1)
            speed = chunk_speed(cdc, a, args.runs)
            ids_a = chunk_ids(cdc, a)
            known = {h for h, _ in ids_a}
            ids_d = chunk_ids(cdc, d)
            unshared = sum(n for h, n in ids_d if h not in known)
            n_chunks = len(ids_a)
            mean = sum(n for _, n in ids_a) / n_chunks
            row = [
                f"{avg // KIB} KiB",
                f"{cdc.min_size // KIB} KiB",
                f"{cdc.max_size // KIB} KiB",
                f"{speed:,.0f}",
                f"{n_chunks:,}",
                f"{mean / KIB:,.1f} KiB",
                f"{unshared / MIB:,.2f} MiB",
                f"{unshared / NEW_BYTES:.2f}x",
                f"{n_chunks * META_BYTES_PER_CHUNK / KIB:,.0f} KiB",
            ]
            rows.append(row)
            print("  " + " | ".join(row), flush=True)
    finally:
        if args.clean:
            shutil.rmtree(directory, ignore_errors=True)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    print()
    print(
        "(d) not shared: bytes of (d)'s chunks whose BLAKE3 id is not among (a)'s;"
        " '/ new bytes' divides by 1 MiB + 4 KiB."
    )
    print(
        f"metadata: n_chunks * {META_BYTES_PER_CHUNK} B for (a). pyfastcdc's real mean is"
        " about avg + min (cut-point skipping)."
    )
    if not args.clean:
        print(f"data kept in {directory} (rerun reuses it; --clean deletes it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
