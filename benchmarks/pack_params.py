#!/usr/bin/env python3
"""Measurements to choose gc's DEAD_SHARE and the pack size PACK_TARGET_BYTES (issue #11).

Both are module constants of zerofs. To vary them without editing zerofs,
every zerofs command here runs in a driver process (this script with the
hidden first argument ``_zerofs``) that imports zerofs, sets
``zerofs.services.gc.DEAD_SHARE`` and/or ``zerofs.store.local.PACK_TARGET_BYTES``
and then runs the CLI's ``main`` with the remaining arguments: the same code
path as ``zerofs ...``, one whole process per command. (A monkeypatch is
acceptable in a benchmark; the tests never do it.)

Every size is du's: allocated bytes (st_blocks * 512) of the repository
directory after the processes exited and a ``sync`` (``run.du_bytes``).
"Bytes rewritten by gc" is the allocated size of the pack files that appear
during a gc (gc is the only process writing then): a file-system listing,
not zerofs's accounting.

(a) DEAD_SHARE, for 0.05, 0.1, 0.15, 0.2, 0.3 and 0.5:

  churn   one repository per threshold, all fed the same host tree (8,000
          files of 0-16 KiB in 80 directories plus 40 random files of
          0.5-4 MiB, about 150 MB), then 10 rounds of: change the tree
          (8 % of the small files rewritten, 256 KiB overwritten in 8 % of
          the large ones, 4 % of the files deleted and as many added, one
          whole directory deleted and a new one made), ``import`` it to the
          same store path, ``gc --keep-last 1``. Reported: bytes gc rewrote
          in total (write amplification: per byte the imports added), and du
          against the du of a fresh repository holding only the current tree
          (imported after each round, untimed): the space overhead.
  delete  from a copy of the repository after the first import: remove half
          the directories / every other file / a random 15 % of the files,
          ``gc --keep-last 1``: (du fall) / (gc bytes_freed) per threshold
          (issue #11 requires >= 0.8 after deleting half the data). One more
          way of deleting half, for each threshold t in a repository of its
          own (random small files imported in two parts, /a then /b): all of
          /a (wholly dead packs) plus t - 1.5 % of the bytes of every
          directory of /b (packs just under t dead), the layout that gives
          least back: 1 - t/(1 - t) of what was freed (``worst_case_ratio``).
          The recommendation is the threshold that rewrites least in the
          churn among those with a ratio >= 0.8 in every half deletion.

(b) PACK_TARGET_BYTES, for 8, 16, 32 and 64 MiB: import throughput of a
    1 GiB random file and of a tree of 20,000 small files (as
    benchmarks/gc_bench.py's), whole processes, a fresh repository each,
    medians of --runs (default 5) with their spread; the number of packs;
    a gc with (nearly) nothing to free on the 1 GiB repository (per-pack
    costs); and gc after deleting a random 30 % of the small files: wall
    time, bytes rewritten, (du fall) / (bytes freed). The recommendation is
    the smallest size within 5 % of the best import throughput, or, when
    the sizes differ by less than the runs of one size do, the current one.

``--quick`` shrinks everything (256 MiB file, 4,000 small files, 3 rounds,
thresholds 0.1/0.2/0.5) for a smoke run of about a minute (with --runs 1).
A full run takes about 6-8 minutes on 2 cores and needs about 3 GB of disk.

Usage:
  .venv/bin/python benchmarks/pack_params.py [--quick] [--runs 5] [--only dead,pack] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gc_bench import (
    CommandFailed,
    bench_env,
    fmt_mib,
    make_small_tree,
    pack_files,
    print_table,
    repo_du,
    scratch_dir,
    small_file_bytes,
    text_pool,
    tree_bytes,
    tree_files,
    write_random_file,
)

KIB = 1 << 10
MIB = 1 << 20
MB = 1_000_000
DRIVER = "_zerofs"
TARGET_RATIO = 0.8
SECTIONS = ("dead", "pack")


# -- the driver ------------------------------------------------------------------------


def driver(argv: list[str]) -> int:
    """``_zerofs DEAD_SHARE PACK_TARGET_BYTES ZEROFS_ARGS...`` ('-' leaves a constant as it is)."""
    dead_share, pack_target, *args = argv
    if dead_share != "-":
        import zerofs.services.gc as gc_module

        if not hasattr(gc_module, "DEAD_SHARE"):
            raise SystemExit("zerofs.services.gc has no DEAD_SHARE any more: update benchmarks/pack_params.py")
        gc_module.DEAD_SHARE = float(dead_share)  # type: ignore[misc]
    if pack_target != "-":
        import zerofs.store.local as local_module

        if not hasattr(local_module, "PACK_TARGET_BYTES"):
            raise SystemExit("zerofs.store.local has no PACK_TARGET_BYTES any more: update benchmarks/pack_params.py")
        local_module.PACK_TARGET_BYTES = int(pack_target)  # type: ignore[misc]
    from zerofs.cli.main import main

    return main(args)


@dataclass
class Zerofs:
    """Runs zerofs commands through the driver, with constants set per call."""

    env: dict[str, str]
    timeout: float = 900

    def __call__(
        self, repo: Path, *args: str, dead_share: float | None = None, pack_target: int | None = None
    ) -> tuple[float, str]:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            DRIVER,
            "-" if dead_share is None else repr(dead_share),
            "-" if pack_target is None else str(pack_target),
            "--repo",
            str(repo),
            *args,
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=self.timeout, check=False)
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or "Traceback" in proc.stderr:
            raise CommandFailed(f"zerofs {' '.join(args[:6])}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        return seconds, proc.stdout

    def gc(self, repo: Path, dead_share: float | None = None, pack_target: int | None = None) -> dict[str, Any]:
        """``gc --keep-last 1 --json``, plus its wall time and the bytes of the packs it wrote."""
        before = set(pack_files(repo))
        seconds, out = self(repo, "gc", "--keep-last", "1", "--json", dead_share=dead_share, pack_target=pack_target)
        os.sync()
        result: dict[str, Any] = json.loads(out)
        result["seconds"] = seconds
        result["written"] = sum(size for path, size in pack_files(repo).items() if path not in before)
        return result


# -- (a) DEAD_SHARE: churn ---------------------------------------------------------------


@dataclass
class ChurnTree:
    """A host tree that changes a little every round, the same way for every threshold."""

    root: Path
    per_dir: int
    rng: random.Random
    pool: bytes
    next_dir: int = 0
    next_file: int = 0

    @classmethod
    def make(cls, root: Path, n_dirs: int, per_dir: int, n_large: int, seed: int) -> ChurnTree:
        rng = random.Random(seed)
        tree = cls(root, per_dir, rng, text_pool(rng))
        for d in range(n_dirs):
            tree.new_dir(large=d < n_large)
        return tree

    def new_dir(self, *, large: bool) -> None:
        directory = self.root / f"d{self.next_dir}"
        self.next_dir += 1
        directory.mkdir(parents=True)
        for _ in range(self.per_dir):
            self.new_file(directory)
        if large:
            write_random_file(directory / "large.bin", self.rng.randint(MIB // 2, 4 * MIB), self.rng)

    def new_file(self, directory: Path) -> None:
        (directory / f"f{self.next_file}").write_bytes(small_file_bytes(self.rng, self.pool))
        self.next_file += 1

    def change(self) -> None:
        """One round: rewrite 8 %, edit 8 % of the large files, delete 4 % and add as many, swap a directory."""
        rng = self.rng
        files = sorted(p for p in self.root.rglob("*") if p.is_file())
        small = [p for p in files if p.name != "large.bin"]
        large = [p for p in files if p.name == "large.bin"]
        for path in rng.sample(small, len(small) * 8 // 100):
            path.write_bytes(small_file_bytes(rng, self.pool))
        for path in rng.sample(large, max(1, len(large) * 8 // 100)):
            with open(path, "r+b") as handle:
                handle.seek(rng.randrange(0, max(1, path.stat().st_size - 256 * KIB)))
                handle.write(rng.randbytes(256 * KIB))
        doomed = rng.sample(small, len(small) * 4 // 100)
        for path in doomed:
            path.unlink()
        directories = sorted(p for p in self.root.iterdir() if p.is_dir())
        for _ in doomed:
            self.new_file(rng.choice(directories))
        gone = rng.choice(directories)
        had_large = (gone / "large.bin").exists()
        shutil.rmtree(gone)
        self.new_dir(large=had_large)


@dataclass
class ChurnRepo:
    threshold: float
    path: Path
    rounds: list[dict[str, Any]] = field(default_factory=list)


def churn(args: argparse.Namespace, work: Path, z: Zerofs, thresholds: list[float]) -> dict[str, Any]:
    n_dirs, per_dir, n_large, rounds = (20, 100, 10, 3) if args.quick else (80, 100, 40, 10)
    tree = ChurnTree.make(work / "churn", n_dirs, per_dir, n_large, seed=99)
    logical = tree_bytes(tree.root)
    print(
        f"\n== (a) DEAD_SHARE: churn, {rounds} rounds of change / import / gc --keep-last 1; start: "
        f"{len(tree_files(tree.root)):,} files, {logical / MIB:,.1f} MiB logical",
        flush=True,
    )
    repos = [ChurnRepo(t, work / f"churn-{t}") for t in thresholds]
    pristine = work / "churn-pristine"
    for repo in [*repos, ChurnRepo(0, pristine)]:
        z(repo.path, "init", "-q")
        z(repo.path, "import", str(tree.root), "/data", "-q")
    fresh_du = []
    for r in range(1, rounds + 1):
        tree.change()
        for repo in repos:
            du_start = repo_du(repo.path)
            z(repo.path, "import", str(tree.root), "/data", "-q")
            du_imported = repo_du(repo.path)
            gc = z.gc(repo.path, dead_share=repo.threshold)
            du_after = repo_du(repo.path)
            repo.rounds.append(
                {
                    "du_start": du_start,
                    "du_imported": du_imported,
                    "du_after_gc": du_after,
                    "written": gc["written"],
                    "bytes_freed": gc["bytes_freed"],
                    "gc_s": gc["seconds"],
                    "packs_rewritten": gc["packs_rewritten"],
                    "packs_deleted": gc["packs_deleted"],
                    "packs": len(pack_files(repo.path)),
                }
            )
        fresh = work / "churn-fresh"
        z(fresh, "init", "-q")
        z(fresh, "import", str(tree.root), "/data", "-q")
        fresh_du.append(repo_du(fresh))
        shutil.rmtree(fresh)
        print(
            f"  round {r:2d}: fresh du {fmt_mib(fresh_du[-1])}; du/fresh "
            + ", ".join(f"{repo.threshold:g}: {repo.rounds[-1]['du_after_gc'] / fresh_du[-1]:.3f}" for repo in repos)
            + "; rewritten "
            + ", ".join(f"{repo.threshold:g}: {repo.rounds[-1]['written'] / MIB:.1f}" for repo in repos)
            + " MiB",
            flush=True,
        )
    summary = {}
    for repo in repos:
        overhead = [row["du_after_gc"] / fresh for row, fresh in zip(repo.rounds, fresh_du, strict=True)]
        written = sum(row["written"] for row in repo.rounds)
        imported = sum(row["du_imported"] - row["du_start"] for row in repo.rounds)
        summary[repo.threshold] = {
            "written": written,
            "imported": imported,
            "write_amplification": written / imported if imported else 0.0,
            "returned": sum(row["du_imported"] - row["du_after_gc"] for row in repo.rounds),
            "overhead_final": overhead[-1],
            "overhead_mean_late": statistics.mean(overhead[len(overhead) // 2 :]),
            "overhead_max": max(overhead),
            "gc_s": sum(row["gc_s"] for row in repo.rounds),
            "packs_final": repo.rounds[-1]["packs"],
            "rounds": repo.rounds,
        }
    return {"rounds": rounds, "logical_start": logical, "fresh_du": fresh_du, "pristine": str(pristine)} | {
        "by_threshold": summary
    }


def worst_layout(work: Path, z: Zerofs, n_files: int, n_dirs: int, t: float) -> tuple[Path, list[str]]:
    """A repository whose deletion of half the data gives least back to a threshold ``t``.

    Random (incompressible) small files, imported in two parts so that no pack holds both: /a, then /b.
    The deletion: all of /a (its packs become wholly dead) and, in every directory of /b, random files
    making up t - 1.5 % of its bytes (each pack of /b stays just under t). /a is sized so that the two
    make half: a + (1 - a) (t - 0.015) = 1/2. See ``worst_case_ratio``.
    """
    rng = random.Random(38)
    b_share = max(t - 0.015, 0.0)
    a_dirs = round((0.5 - b_share) / (1 - b_share) * n_dirs)
    split = work / "split"
    per_dir = n_files // n_dirs
    chosen: list[str] = []
    for d in range(n_dirs):
        part = "a" if d < a_dirs else "b"
        directory = split / part / f"dir{d}"
        directory.mkdir(parents=True)
        sizes = [rng.randint(0, 16 * KIB) for _ in range(per_dir)]
        for f, size in enumerate(sizes):
            (directory / f"file{f}").write_bytes(rng.randbytes(size))
        if part == "b":
            budget = b_share * sum(sizes)
            for f in rng.sample(range(per_dir), per_dir):
                if sizes[f] <= budget:
                    budget -= sizes[f]
                    chosen.append(f"/b/dir{d}/file{f}")
    repo = work / "worst"
    z(repo, "init", "-q")
    z(repo, "import", str(split / "a"), "/a", "-q")
    z(repo, "import", str(split / "b"), "/b", "-q")
    shutil.rmtree(split)
    return repo, ["/a", *sorted(chosen)]


def worst_case_ratio(t: float) -> float:
    """(du fall) / (bytes freed) when half the data is freed as wholly dead packs plus packs just under ``t`` dead.

    A share x of the data sits in packs kept at dead share t, the rest in wholly dead packs:
    freed = x t + (1 - x) = 1/2 gives x = 1 / (2 (1 - t)); what stays is x t, so the ratio is 1 - t / (1 - t).
    """
    return 1 - t / (1 - t)


def measure_delete(z: Zerofs, repo: Path, paths: list[str], t: float) -> dict[str, Any]:
    """Remove ``paths``, gc with threshold ``t``: du before and after, what gc freed and wrote."""
    before = repo_du(repo)
    z(repo, "rm", "-r", "-q", *paths)
    gc = z.gc(repo, dead_share=t)
    after = repo_du(repo)
    return {
        "du_before": before,
        "du_after": after,
        "bytes_freed": gc["bytes_freed"],
        "ratio": (before - after) / gc["bytes_freed"] if gc["bytes_freed"] else 0.0,
        "written": gc["written"],
        "gc_s": gc["seconds"],
    }


def delete_ratios(
    args: argparse.Namespace, work: Path, z: Zerofs, thresholds: list[float], tree_root: Path, pristine: Path
) -> dict[str, Any]:
    """Issue #11's measure for each threshold: remove part of a tree, gc, (du fall) / (bytes freed)."""
    files = tree_files(tree_root)
    dirs = sorted({f.split("/")[0] for f in files})
    rng = random.Random(5)
    variants = {
        "half dirs": [f"/data/{d}" for d in sorted(rng.sample(dirs, len(dirs) // 2))],
        "every other file": [f"/data/{f}" for f in files[0::2]],
        "15 % of files": [f"/data/{f}" for f in sorted(rng.sample(files, len(files) * 15 // 100))],
    }
    print("\n== (a) DEAD_SHARE: delete part of a tree, gc --keep-last 1, (du fall) / (bytes freed)", flush=True)
    result: dict[str, dict[float, dict[str, Any]]] = {name: {} for name in [*variants, WORST]}
    for t in thresholds:
        for name, paths in variants.items():
            repo = work / "delete-copy"
            shutil.copytree(pristine, repo, symlinks=True)
            result[name][t] = measure_delete(z, repo, paths, t)
            shutil.rmtree(repo)
        repo, paths = worst_layout(work, z, *((4000, 40) if args.quick else (16_000, 160)), t)
        result[WORST][t] = measure_delete(z, repo, paths, t)
        shutil.rmtree(repo)
        for name in result:
            found = result[name][t]
            print(
                f"  t={t:<4g} {name:16s}: du {fmt_mib(found['du_before'])} -> {fmt_mib(found['du_after'])}, freed "
                f"{fmt_mib(found['bytes_freed'])}, ratio {found['ratio']:.3f}, rewrote {fmt_mib(found['written'])}",
                flush=True,
            )
    return result


WORST = "worst layout"
"""Half the data deleted as wholly dead packs plus packs just under the threshold (``worst_layout``)."""
HALF_VARIANTS = ("half dirs", "every other file", WORST)
"""The deletions of half the data."""


def section_dead(args: argparse.Namespace, work: Path, z: Zerofs, results: dict[str, Any]) -> None:
    thresholds = [0.1, 0.2, 0.5] if args.quick else [0.05, 0.1, 0.15, 0.2, 0.3, 0.5]
    # The deletions start from the first tree: make it again (same seed) rather than keep a copy.
    first = ChurnTree.make(work / "first-tree", *((20, 100, 10) if args.quick else (80, 100, 40)), seed=99)
    found = churn(args, work, z, thresholds)
    deleted = delete_ratios(args, work, z, thresholds, first.root, Path(found["pristine"]))
    shutil.rmtree(first.root, ignore_errors=True)
    for t in thresholds:
        shutil.rmtree(work / f"churn-{t}", ignore_errors=True)
    by = found["by_threshold"]
    print(f"\n  (a) summary, {found['rounds']} churn rounds (du: allocated bytes of the repository directory):")
    headers = [
        "DEAD_SHARE",
        "gc rewrote",
        "imports added",
        "rewrote/added",
        "du/fresh last",
        "du/fresh late mean",
        "du/fresh max",
        "gc time",
        *[f"ratio {name}" for name in deleted],
    ]
    rows = []
    for t in thresholds:
        s = by[t]
        rows.append(
            [
                f"{t:g}",
                fmt_mib(s["written"]),
                fmt_mib(s["imported"]),
                f"{s['write_amplification']:.2f}",
                f"{s['overhead_final']:.3f}",
                f"{s['overhead_mean_late']:.3f}",
                f"{s['overhead_max']:.3f}",
                f"{s['gc_s']:.1f} s",
                *[f"{deleted[name][t]['ratio']:.3f}" for name in deleted],
            ]
        )
    print_table(headers, rows)
    print(
        "\n  worst case of (du fall) / (bytes freed) after deleting half the data, whatever the layout: "
        "1 - t/(1-t) (half the data freed as whole packs and packs just under t dead): "
        + ", ".join(f"{t:g}: {worst_case_ratio(t):.3f}" for t in thresholds)
    )
    # The choice: the threshold that rewrites least among those that meet issue #11's rule
    # (>= 0.8 after deleting half the data) in every measured way of deleting half.
    eligible = [t for t in thresholds if all(deleted[name][t]["ratio"] >= TARGET_RATIO for name in HALF_VARIANTS)]
    choice = min(eligible, key=lambda t: by[t]["written"]) if eligible else None
    print(
        "  rule: among thresholds with (du fall) / (bytes freed) >= 0.8 in each of "
        + ", ".join(HALF_VARIANTS)
        + ", the one that rewrites least in the churn."
    )
    print(f"  recommended DEAD_SHARE: {choice if choice is not None else 'none qualifies'}")
    results["dead"] = {
        "thresholds": thresholds,
        "churn": {str(k): v for k, v in by.items()} | {"fresh_du": found["fresh_du"]},
        "delete": {name: {str(t): v for t, v in found_t.items()} for name, found_t in deleted.items()},
        "recommended": choice,
    }


# -- (b) PACK_TARGET_BYTES -----------------------------------------------------------------


def section_pack(args: argparse.Namespace, work: Path, z: Zerofs, results: dict[str, Any]) -> None:
    targets = [8 * MIB, 16 * MIB, 32 * MIB, 64 * MIB]
    big_mib = 256 if args.quick else 1024
    n_files, n_dirs = (4000, 40) if args.quick else (20_000, 200)
    print(
        f"\n== (b) PACK_TARGET_BYTES: import {big_mib} MiB random, import {n_files:,} small files, "
        f"gc after deleting 30 % of them; {args.runs} runs (making the data in {work}) ...",
        flush=True,
    )
    big = work / "big"
    big.mkdir()
    write_random_file(big / "a.bin", big_mib * MIB, random.Random(1))
    small = work / "small"
    make_small_tree(small, n_files, n_dirs, seed=20240501)
    small_files = tree_files(small)
    doomed = [f"/data/{f}" for f in sorted(random.Random(30).sample(small_files, len(small_files) * 30 // 100))]
    rows: dict[int, list[dict[str, Any]]] = {t: [] for t in targets}
    for i in range(args.runs):
        for target in targets:  # interleaved, so a noisy minute hurts every size alike
            row: dict[str, Any] = {}
            repo = work / "repo-big"
            z(repo, "init", "-q", pack_target=target)
            os.sync()
            row["big_s"], _ = z(repo, "import", str(big), "/big", "-q", pack_target=target)
            sizes = pack_files(repo)
            row["big_packs"] = len(sizes)
            row["big_largest_pack"] = max(p.stat().st_size for p in repo.rglob("*.pack"))
            row["big_du"] = repo_du(repo)
            row["noop_gc_s"] = z.gc(repo, pack_target=target)["seconds"]  # nothing to free: per-pack costs only
            shutil.rmtree(repo)
            repo = work / "repo-small"
            z(repo, "init", "-q", pack_target=target)
            os.sync()
            row["small_s"], _ = z(repo, "import", str(small), "/data", "-q", pack_target=target)
            row["small_packs"] = len(pack_files(repo))
            row["small_du"] = repo_du(repo)
            z(repo, "rm", "-q", *doomed, pack_target=target)
            gc = z.gc(repo, pack_target=target)
            row["gc_s"] = gc["seconds"]
            row["gc_written"] = gc["written"]
            row["gc_freed"] = gc["bytes_freed"]
            row["gc_packs_rewritten"] = gc["packs_rewritten"]
            row["du_after_gc"] = repo_du(repo)
            row["ratio"] = (row["small_du"] - row["du_after_gc"]) / gc["bytes_freed"] if gc["bytes_freed"] else 0.0
            shutil.rmtree(repo)
            rows[target].append(row)
            print(
                f"  run {i + 1} {target // MIB:3d} MiB: big {big_mib * MIB / row['big_s'] / MB:,.0f} MB/s "
                f"({row['big_packs']} packs, largest {row['big_largest_pack'] / MIB:.1f} MiB), small "
                f"{n_files / row['small_s']:,.0f} files/s ({row['small_packs']} packs), gc {row['gc_s']:.2f} s "
                f"rewrote {fmt_mib(row['gc_written'])}, ratio {row['ratio']:.3f}",
                flush=True,
            )

    def med(target: int, key: str) -> float:
        return float(statistics.median(r[key] for r in rows[target]))

    def spread(target: int, key: str) -> float:
        """(slowest - fastest) / median of the runs: the run-to-run noise."""
        values = [r[key] for r in rows[target]]
        return (max(values) - min(values)) / statistics.median(values)

    print(f"\n  (b) summary, medians of {args.runs} whole-process runs (spread: (max - min) / median of the runs):")
    headers = [
        "pack target",
        f"import {big_mib} MiB",
        "spread",
        "packs",
        "largest",
        "no-op gc",
        f"import {n_files // 1000}k files",
        "spread",
        "packs",
        "gc after rm 30%",
        "gc rewrote",
        "fall/freed",
    ]
    table = []
    for t in targets:
        table.append(
            [
                f"{t // MIB} MiB",
                f"{big_mib * MIB / med(t, 'big_s') / MB:,.0f} MB/s",
                f"{spread(t, 'big_s'):.0%}",
                f"{med(t, 'big_packs'):g}",
                f"{med(t, 'big_largest_pack') / MIB:.1f} MiB",
                f"{med(t, 'noop_gc_s'):.2f} s",
                f"{n_files / med(t, 'small_s'):,.0f} files/s",
                f"{spread(t, 'small_s'):.0%}",
                f"{med(t, 'small_packs'):g}",
                f"{med(t, 'gc_s'):.2f} s",
                fmt_mib(med(t, "gc_written")),
                f"{med(t, 'ratio'):.3f}",
            ]
        )
    print_table(headers, table)
    from zerofs.store.local import PACK_TARGET_BYTES as current  # read only, for the fallback below

    significant = {}
    print()
    for key, label in (("big_s", f"{big_mib} MiB"), ("small_s", f"{n_files // 1000}k files")):
        medians = [med(t, key) for t in targets]
        gap = (max(medians) - min(medians)) / min(medians)
        noise = statistics.median(spread(t, key) for t in targets)
        significant[key] = gap > noise
        verdict = "a difference" if significant[key] else "within the noise"
        if args.runs < 3:
            verdict = "the noise cannot be judged from fewer than 3 runs"
        print(
            f"  import {label}: the sizes' medians differ by {gap:.0%}, the runs of one size by {noise:.0%} "
            f"(median spread): {verdict}"
        )
    if any(significant.values()):
        best_big = min(med(t, "big_s") for t in targets)
        best_small = min(med(t, "small_s") for t in targets)
        score = {t: (best_big / med(t, "big_s") + best_small / med(t, "small_s")) / 2 for t in targets}
        choice = min(t for t in targets if score[t] >= 0.95 * max(score.values()))
        print(
            "  relative import throughput (mean of the two imports, best = 1): "
            + ", ".join(f"{t // MIB} MiB {score[t]:.3f}" for t in targets)
        )
        print(
            "  rule: the smallest size within 5 % of the best relative throughput (smaller packs: finer rewrites, "
            "less copied per rewritten pack; larger: fewer files, fsyncs and open descriptors)."
        )
    else:
        choice = current
        print(
            "  rule: no size imports measurably faster, and a random deletion costs gc the same at every size, so "
            f"keep the current {current // MIB} MiB (pack counts scale as 1/size: "
            f"{(1 << 40) // current:,} packs per TiB)."
        )
    print(f"  recommended PACK_TARGET_BYTES: {choice // MIB} MiB")
    results["pack"] = {
        "targets": targets,
        "big_bytes": big_mib * MIB,
        "small_files": n_files,
        "runs": {str(t): v for t, v in rows.items()},
        "recommended": choice,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [DRIVER]:
        return driver(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each timed measure in (b) (median); default 5")
    parser.add_argument("--quick", action="store_true", help="small data, few rounds: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated: dead (DEAD_SHARE), pack (PACK_TARGET_BYTES)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    parser.add_argument("--workdir", help="parent of the scratch directory (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per process")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    if set(only) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(set(only) - set(SECTIONS)))}")
    work = scratch_dir(args.workdir, "zerofs-pack-params-")
    z = Zerofs(bench_env(work), args.timeout)
    results: dict[str, Any] = {"quick": args.quick, "runs": args.runs}
    started = time.perf_counter()
    failed = False
    try:
        for name, section in (("dead", section_dead), ("pack", section_pack)):
            if name in only:
                try:
                    (work / name).mkdir()
                    section(args, work / name, z, results)
                except (CommandFailed, subprocess.TimeoutExpired) as exc:
                    failed = True
                    print(f"\n  section {name} FAILED: {exc}")
                    results.setdefault("failures", {})[name] = str(exc)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
