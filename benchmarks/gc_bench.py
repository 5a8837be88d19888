"""gc benchmark (issue #4): time and freed bytes after deleting half of 20 snapshots.

Builds a repository with 20 snapshots of a 2,000-file tree in which 100 files
change between snapshots, removes snapshots 0-9 (one `rm` with a pattern),
then times `zerofs gc` (keeping history) and `zerofs gc --keep-last 1` as
whole processes, reporting freed bytes from gc's JSON and the repository's
LMDB pages in use before and after. Run: .venv/bin/python benchmarks/gc_bench.py
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
from pathlib import Path


def zerofs_command() -> list[str]:
    candidate = Path(sys.executable).with_name("zerofs")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "zerofs"]


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def pages_in_use(repo: Path) -> int:
    import lmdb

    env = lmdb.open(str(repo), readonly=True, lock=False, max_dbs=8)
    try:
        return int((env.info()["last_pgno"] + 1) * env.stat()["psize"])
    finally:
        env.close()


def build(work: Path, z: list[str], env: dict[str, str], files: int, changes: int, snapshots: int) -> Path:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    z = zerofs_command()
    env = {k: v for k, v in os.environ.items() if k not in ("ZEROFS_REPO", "PYTHONDONTWRITEBYTECODE")}
    rows = []
    for _ in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="zerofs-gc-bench-", dir="/var/tmp"))
        try:
            repo = build(work, z, env, args.files, args.files // 20, 20)
            base = [*z, "--repo", str(repo)]
            run([*base, "rm", "-r", "/snapshots/s0[0-9]", "-q"], env)
            before = pages_in_use(repo)
            keep_all_s, out = run([*base, "gc", "--json"], env)
            keep_all = json.loads(out)
            cut_s, out = run([*base, "gc", "--keep-last", "1", "--json"], env)
            cut = json.loads(out)
            compact_s, out = run([*base, "gc", "--compact", "--json"], env)
            compacted = json.loads(out)["compacted"]
            rows.append(
                {
                    "gc_keep_history_s": keep_all_s,
                    "freed_keep_history": keep_all["bytes_freed"],
                    "gc_keep_last_1_s": cut_s,
                    "freed_keep_last_1": cut["bytes_freed"],
                    "commits_removed": len(cut["commits_removed"]),
                    "pages_in_use_before": before,
                    "compact_s": compact_s,
                    "file_before_compact": compacted["bytes_before"],
                    "file_after_compact": compacted["bytes_after"],
                }
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"gc after deleting 10 of 20 snapshots ({args.files} files, {args.files // 20} changed per snapshot);")
    print(f"medians of {args.runs} whole-process runs:")
    for key in rows[0]:
        value = statistics.median(r[key] for r in rows)
        shown = (
            f"{value:.3f} s"
            if key.endswith("_s")
            else f"{value / 2**20:.2f} MiB"
            if "freed" in key or "file" in key or "pages" in key
            else f"{value:g}"
        )
        print(f"  {key:28s} {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
