#!/usr/bin/env python3
"""What holding sealed blobs back to shuffle them costs an encrypted local store, by window size (issue #15).

Stores --mib MiB of 80 KB chunks (64 distinct random bodies under distinct
ids, so the work is the store's: seal, hold, write, sync, index) into a
fresh encrypted ``PackStore`` per run, with ``local.SHUFFLE_BYTES`` set to
each window in turn (0: every blob written as it comes, as before the
shuffle). The variants are interleaved within each run; the figure is the
process CPU time (user and system) of the run, median of --runs, which
shared cores disturb less than wall time.

Not part of the test suite.

Usage:
  python benchmarks/shuffle_window.py [--mib 1024] [--runs 5] [--windows-kib 0,1024,2048,4096,32768]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from zerofs.crypto.keys import Keys
from zerofs.objects import Kind
from zerofs.store import local
from zerofs.store.codec import Record, encode_record
from zerofs.store.local import PackStore
from zerofs.store.sealer import Sealer

CHUNK_BYTES = 80_000
BODIES = 64


def store_once(records: list[Record], count: int, keys: Keys, where: str) -> tuple[float, float]:
    """(wall s, CPU s) to store ``count`` chunks in a fresh encrypted store and close it."""
    root = tempfile.mkdtemp(prefix="zerofs-shuffle-", dir=where)
    try:
        store = PackStore.create(root, b"{}", sealer=Sealer(keys))
        wall, cpu = time.perf_counter(), time.process_time()
        with store.batch() as batch:
            for i in range(count):
                batch.put(i.to_bytes(32, "little"), records[i % BODIES])
        store.close()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--windows-kib", default="0,1024,2048,4096,32768")
    p.add_argument("--dir", default="/var/tmp", help="where the repositories are made")
    args = p.parse_args(argv)
    keys = Keys.derive(os.urandom(32))
    source = os.urandom(CHUNK_BYTES * BODIES)
    records = [
        encode_record(Kind.CHUNK, memoryview(source)[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES], 3) for i in range(BODIES)
    ]
    count = args.mib * (1 << 20) // CHUNK_BYTES
    windows = [int(w) << 10 for w in args.windows_kib.split(",")]
    store_once(records, 200, keys, args.dir)  # warm up
    results: dict[int, list[tuple[float, float]]] = {w: [] for w in windows}
    for _ in range(args.runs):
        for window in windows:
            local.SHUFFLE_BYTES = window  # type: ignore[misc]  # the benchmark's one knob
            results[window].append(store_once(records, count, keys, args.dir))
    print(f"{args.mib} MiB of {CHUNK_BYTES:,}-byte chunks into an encrypted PackStore; {args.runs} runs, medians")
    print(f"{'window KiB':>10} {'CPU s':>7} {'wall s':>7}  runs CPU s")
    for window, runs in results.items():
        cpu = statistics.median(c for _, c in runs)
        wall = statistics.median(w for w, _ in runs)
        print(f"{window >> 10:10} {cpu:7.2f} {wall:7.2f}  {' '.join(f'{c:.2f}' for _, c in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
