#!/usr/bin/env python3
"""gc benchmark (issues #4 and #11): gc's time, and the disk space it gives back, measured with du.

Two sections, each a median of --runs whole-process runs in fresh repositories:

history
    20 snapshots of a 2,000-file tree (100 files change between snapshots),
    snapshots 0-9 removed with one ``rm``; then, timed as whole processes,
    ``zerofs gc`` (history kept), ``zerofs gc --keep-last 1`` and
    ``zerofs gc --compact``, with the bytes each says it freed and the du of
    the repository after each.

half
    "Delete half the data, then gc" (issue #11: du must fall by at least 80 %
    of what gc freed). The data set: 20,000 files of 0-16 KiB in 200
    directories, each text-like or random at random (as benchmarks/run.py's
    (b), but the kind is drawn per file, so that removing every other file
    removes both kinds), plus 4 random files of 32 MiB, each in a directory of
    its own. After a fresh import, half of it is removed with one ``zerofs rm``:

    - ``dirs``: a seeded random half of the directories (100 of the 200 small-file
      directories, 2 of the 4 big-file ones): half the files;
    - ``files``: every other file of the sorted list of all files, across all
      directories (2 of the big files among them).

    Then ``zerofs gc --keep-last 1 --json`` (timed). Reported: du before the
    rm, du after gc, gc's ``bytes_freed``, the ratio (du fall) / (bytes freed)
    against the target >= 0.8, and gc's wall time.

tree
    (issue #13: gc forgets garbage referrers first, reading every garbage
    directory, file and chunk-list node to order them.) A tree of 30,000
    directories (in 100 parents) of 2 files of a few bytes each, imported
    once and removed with one ``rm``: about 36,000 garbage metadata nodes
    and 96,000 garbage objects. Each run copies that repository and times
    ``zerofs gc --keep-last 1`` as a whole process, with its peak RSS.

Every size is du's: the allocated bytes (st_blocks * 512) of everything in
the repository directory, after the processes have exited and a ``sync``
(``run.du_bytes``), never zerofs's own accounting. zerofs runs as a CLI
process (the ``zerofs`` console script next to this interpreter, else
``python -m zerofs``), with $XDG_CACHE_HOME (the host-file cache) in the
scratch directory.

Run: .venv/bin/python benchmarks/gc_bench.py [--quick] [--runs N] [--only history,half,tree] [--json FILE]
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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import VOCABULARY, du_bytes  # the same du as every other benchmark

KIB = 1 << 10
MIB = 1 << 20
TARGET_RATIO = 0.8
"""Issue #11: after deleting half the data, du falls by at least this share of what gc freed."""
SECTIONS = ("history", "half", "tree")


# -- running zerofs --------------------------------------------------------------------


def zerofs_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m zerofs``."""
    candidate = Path(sys.executable).with_name("zerofs")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "zerofs"]


def bench_env(work: Path) -> dict[str, str]:
    """The environment of every zerofs process: no $ZEROFS_REPO, the host-file cache in ``work``."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZEROFS_REPO", "ZEROFS_DEBUG", "PYTHONDONTWRITEBYTECODE")}
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env["NO_COLOR"] = "1"
    return env


class CommandFailed(RuntimeError):
    pass


def run(cmd: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, str]:
    """Run a whole process; return (seconds, stdout). Raises CommandFailed with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    if "Traceback" in proc.stderr:
        raise CommandFailed(f"{' '.join(cmd)}: traceback on stderr\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def repo_du(path: Path) -> int:
    """du of a repository (or any tree): after a sync, so write-back does not matter."""
    os.sync()
    return du_bytes(path)


def scratch_dir(parent: str | None, prefix: str) -> Path:
    base = Path(parent or "/var/tmp")
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# -- data sets -----------------------------------------------------------------------


def text_pool(rng: random.Random, words: int = 600_000) -> bytes:
    """Text-like bytes: lines of 12 words from run.py's vocabulary."""
    chosen = rng.choices(VOCABULARY, k=words)
    return ("\n".join(" ".join(chosen[i : i + 12]) for i in range(0, len(chosen), 12)) + "\n").encode()


def small_file_bytes(rng: random.Random, pool: bytes, max_size: int = 16 * KIB) -> bytes:
    """0..max_size bytes, text-like or random with equal odds."""
    size = rng.randint(0, max_size)
    if rng.random() < 0.5:
        start = rng.randrange(0, len(pool) - size)
        return pool[start : start + size]
    return rng.randbytes(size)


def write_random_file(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as out:
        for start in range(0, size, 8 * MIB):
            out.write(rng.randbytes(min(8 * MIB, size - start)))


def make_small_tree(
    root: Path, n_files: int, n_dirs: int, *, seed: int, big_files: int = 0, big_bytes: int = 0
) -> list[str]:
    """``n_files`` small files in ``dir0..`` plus ``big_files`` random files ``bigK/big.bin``; return the dirs."""
    rng = random.Random(seed)
    pool = text_pool(rng)
    per_dir = n_files // n_dirs
    dirs = []
    for d in range(n_dirs):
        directory = root / f"dir{d}"
        directory.mkdir(parents=True)
        dirs.append(directory.name)
        for f in range(per_dir):
            (directory / f"file{f}").write_bytes(small_file_bytes(rng, pool))
    for b in range(big_files):
        directory = root / f"big{b}"
        directory.mkdir(parents=True)
        dirs.append(directory.name)
        write_random_file(directory / "big.bin", big_bytes, rng)
    return dirs


def tree_files(root: Path) -> list[str]:
    """Every file under ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def pack_files(repo: Path) -> dict[str, int]:
    """Every pack file of a repository: path -> allocated bytes (a file-system listing, not zerofs's)."""
    return {str(p): p.stat().st_blocks * 512 for p in repo.rglob("*.pack")}


# -- output ----------------------------------------------------------------------------


def fmt_mib(value: float) -> str:
    return f"{value / MIB:,.1f} MiB"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


# -- section: history ------------------------------------------------------------------


def build_history(work: Path, z: list[str], env: dict[str, str], files: int, changes: int, snapshots: int) -> Path:
    rng = random.Random(7)
    host = work / "data"
    host.mkdir()
    for i in range(files):
        (host / f"f{i}").write_bytes(rng.randbytes(rng.randint(1000, 20000)))
    repo = work / "repo"
    base = [*z, "--repo", str(repo)]
    run([*base, "init", "-q"], env)
    run([*base, "mkdir", "/snapshots", "-q"], env)
    for s in range(snapshots):
        for i in rng.sample(range(files), changes):
            (host / f"f{i}").write_bytes(rng.randbytes(rng.randint(1000, 20000)))
        run([*base, "import", str(host), "/data", "-q"], env)
        run([*base, "clone", "/data", f"/snapshots/s{s:02d}", "-q"], env)
    return repo


def history_run(work: Path, z: list[str], env: dict[str, str], files: int) -> dict[str, Any]:
    repo = build_history(work, z, env, files, max(1, files // 20), 20)
    base = [*z, "--repo", str(repo)]
    run([*base, "rm", "-r", "/snapshots/s0[0-9]", "-q"], env)
    du_start = repo_du(repo)
    keep_all_s, out = run([*base, "gc", "--json"], env)
    keep_all = json.loads(out)
    du_keep_all = repo_du(repo)
    cut_s, out = run([*base, "gc", "--keep-last", "1", "--json"], env)
    cut = json.loads(out)
    du_cut = repo_du(repo)
    compact_s, out = run([*base, "gc", "--compact", "--json"], env)
    compacted = json.loads(out)["compacted"] or {}
    du_compact = repo_du(repo)
    return {
        "du_before": du_start,
        "gc_keep_history_s": keep_all_s,
        "freed_keep_history": keep_all["bytes_freed"],
        "du_after_keep_history": du_keep_all,
        "gc_keep_last_1_s": cut_s,
        "freed_keep_last_1": cut["bytes_freed"],
        "commits_removed": len(cut["commits_removed"]),
        "du_after_keep_last_1": du_cut,
        "compact_s": compact_s,
        "index_before_compact": compacted.get("bytes_before", 0),
        "index_after_compact": compacted.get("bytes_after", 0),
        "du_after_compact": du_compact,
    }


def section_history(args: argparse.Namespace, z: list[str], results: dict[str, Any]) -> None:
    files = args.files or (500 if args.quick else 2000)
    print(f"\n== history: gc after deleting 10 of 20 snapshots ({files} files, {max(1, files // 20)} changed each)")
    rows = []
    for i in range(args.runs):
        work = scratch_dir(args.workdir, "zerofs-gc-bench-")
        try:
            rows.append(history_run(work, z, bench_env(work), files))
            print(f"  run {i + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in rows[-1].items() if k.endswith("_s")))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"  medians of {args.runs} whole-process runs:")
    for key in rows[0]:
        value = median_of(rows, key)
        shown = f"{value:.3f} s" if key.endswith("_s") else f"{value:g}" if key == "commits_removed" else fmt_mib(value)
        print(f"    {key:26s} {shown}")
    results["history"] = {"files": files, "runs": rows}


# -- section: half -----------------------------------------------------------------------


@dataclass(frozen=True)
class HalfData:
    host: Path
    files: list[str]
    dirs: list[str]
    logical: int


def half_removals(data: HalfData, variant: str) -> list[str]:
    """Store paths (under /data) to remove for a variant: half the files either way."""
    if variant == "dirs":
        small = [d for d in data.dirs if d.startswith("dir")]
        big = [d for d in data.dirs if d.startswith("big")]
        rng = random.Random(1234)
        chosen = rng.sample(small, len(small) // 2) + rng.sample(big, len(big) // 2)
        return [f"/data/{d}" for d in sorted(chosen)]
    return [f"/data/{f}" for f in data.files[0::2]]


def half_run(data: HalfData, work: Path, z: list[str], env: dict[str, str], variant: str) -> dict[str, Any]:
    repo = work / f"repo-{variant}"
    base = [*z, "--repo", str(repo)]
    run([*base, "init", "-q"], env)
    os.sync()
    import_s, _ = run([*base, "import", str(data.host), "/data", "-q"], env)
    du_before = repo_du(repo)
    packs_before = len(pack_files(repo))
    run([*base, "rm", "-r", "-q", *half_removals(data, variant)], env)
    du_after_rm = repo_du(repo)
    gc_s, out = run([*base, "gc", "--keep-last", "1", "--json"], env)
    gc = json.loads(out)
    du_after = repo_du(repo)
    packs_after = len(pack_files(repo))
    shutil.rmtree(repo, ignore_errors=True)
    freed = gc["bytes_freed"]
    return {
        "import_s": import_s,
        "du_before": du_before,
        "du_rm_growth": du_after_rm - du_before,
        "du_after_gc": du_after,
        "bytes_freed": freed,
        "du_fall": du_before - du_after,
        "ratio": (du_before - du_after) / freed if freed else 0.0,
        "gc_s": gc_s,
        "packs_before": packs_before,
        "packs_after": packs_after,
        "packs_deleted": gc["packs_deleted"],
        "packs_rewritten": gc["packs_rewritten"],
    }


def section_half(args: argparse.Namespace, z: list[str], results: dict[str, Any]) -> None:
    n_files, n_dirs, big_bytes = (4000, 40, 8 * MIB) if args.quick else (20_000, 200, 32 * MIB)
    work = scratch_dir(args.workdir, "zerofs-gc-half-")
    try:
        host = work / "host"
        print(f"\n== half: delete half the data, then gc --keep-last 1 (making the data set in {work}) ...", flush=True)
        dirs = make_small_tree(host, n_files, n_dirs, seed=20240501, big_files=4, big_bytes=big_bytes)
        data = HalfData(host, tree_files(host), dirs, tree_bytes(host))
        print(
            f"  data: {len(data.files):,} files ({n_files:,} of 0-16 KiB in {n_dirs} directories, "
            f"4 random of {big_bytes // MIB} MiB), {data.logical / MIB:,.1f} MiB logical"
        )
        env = bench_env(work)
        rows: dict[str, list[dict[str, Any]]] = {"dirs": [], "files": []}
        for i in range(args.runs):
            for variant in rows:  # interleaved, so a noisy minute hurts both alike
                row = half_run(data, work, z, env, variant)
                rows[variant].append(row)
                print(
                    f"  run {i + 1} {variant:5s}: du {fmt_mib(row['du_before'])} -> {fmt_mib(row['du_after_gc'])}, "
                    f"freed {fmt_mib(row['bytes_freed'])}, ratio {row['ratio']:.3f}, gc {row['gc_s']:.2f} s, "
                    f"packs {row['packs_before']} (deleted {row['packs_deleted']}, "
                    f"rewritten {row['packs_rewritten']})",
                    flush=True,
                )
        print(f"\n  medians of {args.runs} runs (du: allocated bytes of the repository directory):")
        headers = [
            "removed",
            "du before rm",
            "rm adds",
            "du after gc",
            "du fall",
            "gc bytes_freed",
            "fall/freed",
            "target",
            "result",
            "gc wall",
            "packs del/rewr",
        ]
        table = []
        for variant, found in rows.items():
            ratio = median_of(found, "ratio")
            table.append(
                [
                    "half the dirs" if variant == "dirs" else "every other file",
                    fmt_mib(median_of(found, "du_before")),
                    fmt_mib(median_of(found, "du_rm_growth")),
                    fmt_mib(median_of(found, "du_after_gc")),
                    fmt_mib(median_of(found, "du_fall")),
                    fmt_mib(median_of(found, "bytes_freed")),
                    f"{ratio:.3f}",
                    f">= {TARGET_RATIO}",
                    "PASS" if ratio >= TARGET_RATIO else "MISS",
                    f"{median_of(found, 'gc_s'):.2f} s",
                    f"{median_of(found, 'packs_deleted'):g}/{median_of(found, 'packs_rewritten'):g}",
                ]
            )
        print_table(headers, table)
        results["half"] = {"files": len(data.files), "logical_bytes": data.logical, "runs": rows}
    finally:
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- section: tree -----------------------------------------------------------------------


def run_with_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a whole process; return (seconds, its peak RSS in bytes). Raises CommandFailed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)}: exit {proc.returncode}\n{err[-3000:].decode(errors='replace')}")
    return seconds, usage.ru_maxrss * KIB


def build_tree_garbage(work: Path, z: list[str], env: dict[str, str], dirs: int) -> Path:
    host = work / "tree"
    for d in range(dirs):
        leaf = host / f"a{d // 300}" / f"b{d}"
        leaf.mkdir(parents=True)
        for f in range(2):
            (leaf / f"f{f}").write_text(f"file {d} {f}\n")
    repo = work / "repo"
    base = [*z, "--repo", str(repo)]
    run([*base, "init", "-q"], env)
    run([*base, "import", str(host), "/t", "-q"], env)
    run([*base, "rm", "-r", "/t", "-q"], env)
    shutil.rmtree(host)
    return repo


def section_tree(args: argparse.Namespace, z: list[str], results: dict[str, Any]) -> None:
    dirs = 3000 if args.quick else 30_000
    print(f"\n== tree: gc --keep-last 1 after removing a tree of {dirs:,} directories of 2 tiny files")
    work = scratch_dir(args.workdir, "zerofs-gc-tree-")
    try:
        env = bench_env(work)
        built = build_tree_garbage(work, z, env, dirs)
        rows = []
        for i in range(args.runs):
            repo = work / "run"
            shutil.copytree(built, repo)
            os.sync()
            seconds, rss = run_with_rss([*z, "--repo", str(repo), "gc", "--keep-last", "1", "-q"], env)
            rows.append({"gc_s": seconds, "peak_rss": rss})
            print(f"  run {i + 1}: gc {seconds:.2f} s, peak RSS {fmt_mib(rss)}")
            shutil.rmtree(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rss = fmt_mib(median_of(rows, "peak_rss"))
    print(f"  medians of {args.runs} runs: gc {median_of(rows, 'gc_s'):.2f} s, peak RSS {rss}")
    results["tree"] = {"dirs": dirs, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (median); default 3")
    parser.add_argument("--quick", action="store_true", help="smaller data sets, for a smoke run")
    parser.add_argument("--files", type=int, default=0, help="files of the history section (default 2000, 500)")
    parser.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--json", metavar="FILE", help="also write every run's figures as JSON")
    parser.add_argument("--workdir", help="parent of the scratch directories (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the half section's scratch directory")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    z = zerofs_command()
    results: dict[str, Any] = {"zerofs": z, "quick": args.quick, "runs": args.runs}
    sections: dict[str, Callable[[argparse.Namespace, list[str], dict[str, Any]], None]] = {
        "history": section_history,
        "half": section_half,
        "tree": section_tree,
    }
    started = time.perf_counter()
    failed = False
    for name in SECTIONS:
        if name in only:
            try:
                sections[name](args, z, results)
            except (CommandFailed, subprocess.TimeoutExpired) as exc:
                failed = True
                print(f"\n  section {name} FAILED: {exc}")
                results.setdefault("failures", {})[name] = str(exc)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
