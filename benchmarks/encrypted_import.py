#!/usr/bin/env python3
"""Import speed and repository size of encrypted against plain repositories, A/B between worktrees (issue #15).

For each data set ((a) one random file, (b) many small files: the data sets
of benchmarks/run.py, made there) and each run, this imports the data with
every worktree given by --tree, into a fresh plain and a fresh encrypted
repository, interleaved (tree by tree within a run, so that load on the
machine hits them alike). Each import is one whole ``python -m zerofs
import`` process, timed from outside; ``init`` is not timed. The size is
what the repository directory occupies: ``du -s -B1`` (allocated) and
``du -sb`` (apparent), never zerofs's own accounting.

Prints medians, every run, and the ratios encrypted/plain within a tree
and each tree against the first.

Not part of the test suite.

Usage:
  python benchmarks/encrypted_import.py --tree base=/tmp/base --tree new=. [--runs 5]
      [--data /var/tmp/zerofs-enc-data] [--big-mib 1024] [--small-files 20000] [--sets a,b]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import FULL, MIB, Data

PASSWORD = "benchmark password"


def make_data(root: Path, big_mib: int, small_files: int, sets: list[str]) -> dict[str, Path]:
    """The data sets, made once under ``root`` (reused when already there)."""
    sizes = dataclasses.replace(
        FULL, big_bytes=big_mib * MIB, n_small_files=small_files, n_small_dirs=max(1, small_files // 100)
    )
    found: dict[str, Path] = {}
    for name in sets:
        where = root / f"{name}-{big_mib if name == 'a' else small_files}"
        if not (where / f"data-{name}" / name).is_dir():
            shutil.rmtree(where, ignore_errors=True)
            data = Data(where, sizes, lambda text: print(text, flush=True))
            getattr(data, f"{name}_dir")
        found[name] = where / f"data-{name}" / name
    return found


def zerofs(tree: Path, repo: Path, *args: str) -> tuple[float, float]:
    """Run the CLI of ``tree``; (wall seconds, CPU seconds: user and system) it took."""
    env = {**os.environ, "PYTHONPATH": str(tree), "ZEROFS_PASSWORD": PASSWORD}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "zerofs", "--repo", str(repo), *args],
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def du(path: Path, *flags: str) -> int:
    out = subprocess.run(["du", "-s", *flags, str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def one_import(tree: Path, scratch: Path, host: Path, is_encrypted: bool) -> tuple[float, int, int, float]:
    """(import seconds, allocated bytes, apparent bytes, import CPU seconds) of one fresh repository."""
    repo = scratch / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    zerofs(tree, repo, "init", *(["--encrypt"] if is_encrypted else []))
    subprocess.run(["sync"], check=True)
    seconds, cpu_seconds = zerofs(tree, repo, "import", str(host), "/x")
    allocated, apparent = du(repo, "-B1"), du(repo, "-b")
    shutil.rmtree(repo)
    return seconds, allocated, apparent, cpu_seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", required=True, help="LABEL=PATH of a worktree (first: the base)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--data", default="/var/tmp/zerofs-enc-data")
    p.add_argument("--scratch", default="/var/tmp/zerofs-enc-scratch")
    p.add_argument("--big-mib", type=int, default=1024)
    p.add_argument("--small-files", type=int, default=20_000)
    p.add_argument("--sets", default="a,b")
    p.add_argument("--modes", default="plain,encrypted", help="plain, encrypted or both")
    args = p.parse_args(argv)
    trees = {label: Path(path).resolve() for label, path in (t.split("=", 1) for t in args.tree)}
    hosts = make_data(Path(args.data), args.big_mib, args.small_files, args.sets.split(","))
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str, str], list[tuple[float, int, int, float]]] = {}
    for name, host in hosts.items():
        one_import(next(iter(trees.values())), scratch, host, False)  # warm the page cache
        for _ in range(args.runs):
            for label, tree in trees.items():
                for mode in args.modes.split(","):
                    results.setdefault((name, label, mode), []).append(
                        one_import(tree, scratch, host, mode == "encrypted")
                    )
    report(hosts, trees, results, args)
    return 0


def report(
    hosts: dict[str, Path],
    trees: dict[str, Path],
    results: dict[tuple[str, str, str], list[tuple[float, int, int, float]]],
    args: argparse.Namespace,
) -> None:
    print(f"{args.runs} runs, medians; sizes: du -s -B1 (allocated) and du -sb (apparent) of the repository")
    base = next(iter(trees))
    for name in hosts:
        print(f"\ndata set ({name}): {hosts[name]}")
        print(
            f"{'tree':8} {'mode':10} {'import s':>9} {'CPU s':>6} {'allocated B':>14} {'apparent B':>14}  "
            "runs: wall s / CPU s"
        )
        medians: dict[tuple[str, str], tuple[float, ...]] = {}
        modes = args.modes.split(",")
        for label in trees:
            for mode in modes:
                runs = results[(name, label, mode)]
                m = medians[(label, mode)] = tuple(statistics.median(r[i] for r in runs) for i in range(4))
                times = " ".join(f"{r[0]:.2f}/{r[3]:.2f}" for r in runs)
                print(f"{label:8} {mode:10} {m[0]:9.2f} {m[3]:6.2f} {m[1]:14,.0f} {m[2]:14,.0f}  {times}")
        for label in trees:
            if len(modes) == 2:
                plain, encrypted = medians[(label, "plain")], medians[(label, "encrypted")]
                print(
                    f"{label}: encrypted/plain speed {plain[0] / encrypted[0]:.3f}x "
                    f"(CPU {plain[3] / encrypted[3]:.3f}x), allocated {encrypted[1] / plain[1]:.4f}x"
                )
            if label != base:
                for mode in modes:
                    b, n = medians[(base, mode)], medians[(label, mode)]
                    print(
                        f"{label}/{base} {mode}: speed {b[0] / n[0]:.3f}x (CPU {b[3] / n[3]:.3f}x), "
                        f"allocated {n[1] / b[1]:.4f}x, apparent {n[2] / b[2]:.4f}x"
                    )


if __name__ == "__main__":
    sys.exit(main())
