#!/usr/bin/env python3
"""Cost of a sealed LMDB index and ref log (issue #15) on the local store's hot paths, per call.

Builds a plain and an encrypted ``PackStore`` of ``--blobs`` small chunks
each (in a temporary directory), reopens them, and times in-process, per
call: ``info`` (one index lookup, its value opened when sealed), ``has``
(a lookup, nothing opened), ``get`` (lookup and pack read, the record
opened when sealed), ``get_ref`` and a HEAD move (a batch whose ref move is
appended to the ref log, fsyncs included). Each figure is the median of
``--runs`` runs of ``--calls`` calls over ids in a shuffled order.

``--plain-only`` skips the encrypted store, so the same script run with
another tree first on PYTHONPATH (the base branch) compares plain stores.
Not part of the test suite.

Measured here (2 shared cores, cryptography 50, 20,000 blobs, medians of 7
runs of 5,000 calls, three invocations): plain / sealed ``info`` 2.25-2.34
/ 4.67-4.86 µs, ``has`` 0.91-0.98 / 1.00-1.03 µs (nothing to open),
``get`` 6.1-6.3 / 10.8-11.0 µs (the index value and the record opened),
``get_ref`` 0.75 / 3.1 µs, a HEAD move 0.47-0.56 / 0.55-0.94 ms (fsyncs).
So a sealed index value costs about 2.4 µs a lookup: the AEAD open of 62
bytes with its framing (1.5 µs), building the associated data (0.5 µs) and
the calls around them. ``--plain-only`` against the unchanged tree: the
same figures within noise.

Usage:
  python benchmarks/sealed_index_bench.py [--blobs 20000] [--runs 7] [--calls 5000] [--plain-only]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from zerofs.objects import Kind, object_id
from zerofs.store.codec import encode_record
from zerofs.store.local import PackStore


def build(root: str, blobs: int, sealer: Any) -> list[bytes]:
    """A store of ``blobs`` distinct 64-byte chunks; their ids."""
    os.mkdir(root)
    store = PackStore.create(root, b"{}", sealer=sealer)
    ids = []
    with store.batch() as batch:
        for n in range(blobs):
            body = n.to_bytes(8, "big") * 8
            ids.append(sealer.id_function(Kind.CHUNK, body) if sealer else object_id(Kind.CHUNK, body))
            batch.put(ids[-1], encode_record(Kind.CHUNK, body, 3))
        batch.cas_ref(b"HEAD", None, ids[0])
    store.close()
    return ids


def per_call_us(call: Callable[[bytes], object], ids: list[bytes], calls: int, runs: int) -> float:
    figures = []
    for _ in range(runs):
        sample = random.sample(ids, min(calls, len(ids)))
        start = time.perf_counter()
        for one in sample:
            call(one)
        figures.append((time.perf_counter() - start) / len(sample) * 1e6)
    return statistics.median(figures)


def move_head_us(store: PackStore, ids: list[bytes], runs: int) -> float:
    figures = []
    head = store.get_ref(b"HEAD")
    for n in range(runs * 10):
        new = ids[n + 1]
        start = time.perf_counter()
        with store.batch() as batch:
            batch.cas_ref(b"HEAD", head, new)
        figures.append((time.perf_counter() - start) * 1e6)
        head = new
    return statistics.median(figures)


def measure(label: str, root: str, ids: list[bytes], sealer: Any, args: argparse.Namespace) -> None:
    store = PackStore(root, sealer=sealer)
    try:
        figures = {
            "info": per_call_us(store.info, ids, args.calls, args.runs),
            "has": per_call_us(store.has, ids, args.calls, args.runs),
            "get": per_call_us(store.get, ids, args.calls, args.runs),
            "get_ref": per_call_us(lambda _: store.get_ref(b"HEAD"), ids, args.calls, args.runs),
            "move HEAD": move_head_us(store, ids, args.runs),
        }
    finally:
        store.close()
    print(f"{label:>7}: " + "  ".join(f"{name} {us:.2f} µs" for name, us in figures.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blobs", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--plain-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kinds: list[tuple[str, Any]] = [("plain", None)]
        if not args.plain_only:
            from zerofs.crypto.keys import Keys
            from zerofs.store.sealer import Sealer

            kinds.append(("sealed", Sealer(Keys.derive(os.urandom(32)))))
        built = {label: build(os.path.join(tmp, label), args.blobs, sealer) for label, sealer in kinds}
        for label, sealer in kinds:
            measure(label, os.path.join(tmp, label), built[label], sealer, args)


if __name__ == "__main__":
    main()
