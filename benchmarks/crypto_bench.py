#!/usr/bin/env python3
"""Costs of encryption at rest (issue #15), to justify the choices in zerofs.crypto.

Sections (``--only``, comma-separated):

  - ``aead``: µs per blob to seal and to open 4 KiB and 64 KiB blobs with
    AES-256-GCM, AES-GCM-SIV (nonce-misuse resistant) and ChaCha20-Poly1305
    from ``cryptography``, and with zerofs's own format (``seal`` /
    ``open_sealed``: GCM under a per-writer session key, header in the AD);
  - ``blake3``: µs per id, unkeyed (``objects.object_id``) vs keyed
    (``Keys.object_id``), same sizes;
  - ``hkdf``: deriving every subkey from a master key, one session key;
  - ``argon2``: ms per argon2id KDF over a grid of time cost, memory and
    lanes (the cost of opening a key slot);
  - ``startup``: ms for a fresh interpreter to import what opening an
    encrypted repository needs, with and without argon2 (subprocesses), and
    µs to open a key-cache entry.

Every figure is the median of ``--runs`` runs; each run of the per-blob
measures times ``--calls`` calls and divides. Pure in-process except
``startup``. Not part of the test suite.

Usage:
  python benchmarks/crypto_bench.py [--runs 7] [--calls 2000] [--only aead,argon2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV, ChaCha20Poly1305

from zerofs.crypto.keys import Keys, new_master_key
from zerofs.crypto.sealing import AeadKey, chunk_ad, open_sealed, seal, session_key
from zerofs.crypto.slots import KdfParams, make_slot, open_key_cache, seal_key_cache
from zerofs.objects import Kind, object_id

KIB = 1 << 10
SIZES = (4 * KIB, 64 * KIB)
GRID_TIME = (1, 2, 3, 4)
GRID_MEMORY_MIB = (8, 16, 19, 32, 64, 128, 256)
GRID_LANES = (1, 4)


def per_call_us(action: Callable[[], object], calls: int, runs: int) -> float:
    """Median over ``runs`` of the mean µs per call of ``calls`` calls."""
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            action()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def section_aead(runs: int, calls: int) -> None:
    print("\n## AEAD, µs per blob (median)")
    print(f"{'cipher':<26}{'size':>8}{'seal µs':>10}{'open µs':>10}{'seal GB/s':>11}")
    key = os.urandom(32)
    ad = chunk_ad(os.urandom(32))
    ciphers: dict[str, AESGCM | AESGCMSIV | ChaCha20Poly1305] = {
        "AES-256-GCM": AESGCM(key),
        "AES-256-GCM-SIV": AESGCMSIV(key),
        "ChaCha20-Poly1305": ChaCha20Poly1305(key),
    }
    for size in SIZES:
        data = os.urandom(size)
        nonce = os.urandom(12)
        for name, cipher in ciphers.items():
            sealed = cipher.encrypt(nonce, data, ad)
            seal_us = per_call_us(partial(cipher.encrypt, nonce, data, ad), calls, runs)
            open_us = per_call_us(partial(cipher.decrypt, nonce, sealed, ad), calls, runs)
            print_aead_row(name, size, seal_us, open_us)
        writer = AeadKey(key)
        blob = seal(writer, data, ad=ad)
        seal_us = per_call_us(partial(seal, writer, data, ad=ad), calls, runs)
        open_us = per_call_us(partial(open_sealed, writer, blob, ad=ad), calls, runs)
        print_aead_row("zerofs seal/open_sealed", size, seal_us, open_us)


def print_aead_row(name: str, size: int, seal_us: float, open_us: float) -> None:
    print(f"{name:<26}{size // KIB:>6}Ki{seal_us:>10.2f}{open_us:>10.2f}{size / seal_us / 1e3:>11.2f}")


def section_blake3(runs: int, calls: int) -> None:
    print("\n## BLAKE3 ids, µs per id (median)")
    print(f"{'id':<26}{'size':>8}{'µs':>10}{'GB/s':>11}")
    keys = Keys.derive(new_master_key())
    for size in SIZES:
        data = os.urandom(size)
        plain = per_call_us(partial(object_id, Kind.CHUNK, data), calls, runs)
        keyed = per_call_us(partial(keys.object_id, Kind.CHUNK, data), calls, runs)
        print(f"{'unkeyed objects.object_id':<26}{size // KIB:>6}Ki{plain:>10.2f}{size / plain / 1e3:>11.2f}")
        print(f"{'keyed Keys.object_id':<26}{size // KIB:>6}Ki{keyed:>10.2f}{size / keyed / 1e3:>11.2f}")


def section_hkdf(runs: int, calls: int) -> None:
    print("\n## HKDF-SHA256, µs (median)")
    master = new_master_key()
    salt = os.urandom(16)
    print(f"{'Keys.derive (4 subkeys)':<34}{per_call_us(lambda: Keys.derive(master), calls // 10, runs):>10.2f}")
    print(f"{'one session key':<34}{per_call_us(lambda: session_key(master, salt), calls // 10, runs):>10.2f}")


def section_argon2(runs: int, quick: bool) -> None:
    print("\n## argon2id (argon2-cffi hash_secret_raw), ms per KDF (median)")
    memories = GRID_MEMORY_MIB[:5] if quick else GRID_MEMORY_MIB
    print(f"{'t':>3}{'lanes':>7}" + "".join(f"{f'{m} MiB':>10}" for m in memories))
    for lanes in GRID_LANES:
        for time_cost in GRID_TIME:
            row = []
            for memory in memories:
                salt = os.urandom(16)
                results = []
                for _ in range(runs):
                    start = time.perf_counter()
                    hash_secret_raw(b"password", salt, time_cost, memory * KIB, lanes, hash_len=32, type=Type.ID)
                    results.append((time.perf_counter() - start) * 1e3)
                row.append(statistics.median(results))
            print(f"{time_cost:>3}{lanes:>7}" + "".join(f"{ms:>10.1f}" for ms in row))


IMPORTS = {
    "python -c pass": "pass",
    "zerofs.repo (a plain repository)": "import zerofs.repo",
    "+ zerofs.crypto.keys (cryptography)": "import zerofs.repo, zerofs.crypto.keys",
    "+ zerofs.crypto.slots (no KDF)": "import zerofs.repo, zerofs.crypto.keys, zerofs.crypto.slots",
    "+ argon2 (a KDF runs)": "import zerofs.repo, zerofs.crypto.keys, zerofs.crypto.slots, argon2.low_level",
}


def section_startup(runs: int, calls: int) -> None:
    print("\n## Start-up of a fresh interpreter, ms (median of subprocess runs, interleaved)")
    results: dict[str, list[float]] = {label: [] for label in IMPORTS}
    for _ in range(max(3 * runs, 9)):
        for label, code in IMPORTS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            results[label].append((time.perf_counter() - start) * 1e3)
    for label, times in results.items():
        print(f"{label:<40}{statistics.median(times):>8.1f}")
    master = new_master_key()
    slot = make_slot(master, b"password", KdfParams(1, 8, 1))
    entry = seal_key_cache(master, slot, b"password")
    cache_us = per_call_us(lambda: open_key_cache(entry, [slot], b"password"), calls // 10, runs)
    derive_us = per_call_us(lambda: Keys.derive(master), calls // 10, runs)
    print(f"{'open_key_cache + Keys.derive, µs':<40}{cache_us + derive_us:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", default="aead,blake3,hkdf,argon2,startup")
    parser.add_argument("--quick", action="store_true", help="fewer calls and a smaller argon2 grid")
    args = parser.parse_args()
    runs, calls = (3, 200) if args.quick else (args.runs, args.calls)
    only = set(args.only.split(","))
    print(f"# zerofs crypto benchmark: {os.cpu_count()} CPUs, runs={runs}, calls={calls}")
    if "aead" in only:
        section_aead(runs, calls)
    if "blake3" in only:
        section_blake3(runs, calls)
    if "hkdf" in only:
        section_hkdf(runs, calls)
    if "argon2" in only:
        section_argon2(min(runs, 5), args.quick)
    if "startup" in only:
        section_startup(runs, calls)


if __name__ == "__main__":
    main()
