#!/usr/bin/env python3
"""push benchmark (issue #13): the cost of pushing a one-file change grows with the change, not the tree.

The data set: --files small files (default 100,000: 1,000 directories of
100 files of 64-192 random bytes) imported into repository A, then pushed
in full into a fresh repository B (timed once: the whole tree). Then, --runs
times: one file of A is rewritten (``zerofs write``, a different file each
time) and ``zerofs push B --json`` is timed as a whole process. Reported:
the median and spread of those pushes, the objects and bytes each sent, and
for scale the median of ``zerofs log -n 1`` (start-up and one HEAD read),
an up-to-date push, and the full push. Target (issue #13): a one-file
change pushes in under 1 s as a whole process.

zerofs runs as a CLI process (the ``zerofs`` console script next to this
interpreter, else ``python -m zerofs``), with $XDG_CACHE_HOME in the
scratch directory.

With --s3, B is an S3 repository on a SeaweedFS the benchmark starts on
loopback (the tests' server, tests/s3/seaweed.py).

Run: .venv/bin/python benchmarks/push_bench.py [--files N] [--runs N] [--json FILE] [--s3]
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
from typing import Any

TARGET_SECONDS = 1.0
FILES_PER_DIR = 100


def zerofs_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m zerofs``."""
    candidate = Path(sys.executable).with_name("zerofs")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "zerofs"]


S3_ENV: dict[str, str] = {}
"""With --s3: the AWS variables of the SeaweedFS this benchmark started."""


def bench_env(work: Path) -> dict[str, str]:
    """The environment of every zerofs process: no $ZEROFS_REPO, caches in ``work``."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZEROFS_REPO", "ZEROFS_DEBUG", "PYTHONDONTWRITEBYTECODE")}
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env["NO_COLOR"] = "1"
    return env | S3_ENV


def run(work: Path, repo: Path | str, *args: str, stdin: bytes | None = None) -> tuple[float, bytes]:
    """Run ``zerofs --repo REPO ARGS``; return (wall seconds, stdout). Fails loudly on a non-zero exit."""
    started = time.perf_counter()
    proc = subprocess.run(
        [*zerofs_command(), "--repo", str(repo), *args],
        input=stdin,
        capture_output=True,
        env=bench_env(work),
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"zerofs {' '.join(args)}: exit {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout


def make_tree(root: Path, n_files: int, rng: random.Random) -> list[str]:
    """Write the data set; return the store paths of its files."""
    paths = []
    for index in range(n_files):
        directory = root / f"d{index // FILES_PER_DIR:05d}"
        if index % FILES_PER_DIR == 0:
            directory.mkdir(parents=True)
        name = f"f{index % FILES_PER_DIR:03d}"
        (directory / name).write_bytes(rng.randbytes(rng.randrange(64, 193)))
        paths.append(f"/data/{directory.name}/{name}")
    return paths


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max, in seconds, rounded."""
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def bench(work: Path, n_files: int, runs: int, dest_url: str | None = None) -> dict[str, Any]:
    """Build A, push it whole into B (``dest_url``, else a local directory), then time one-file-change pushes."""
    rng = random.Random(13)
    host = work / "host"
    paths = make_tree(host, n_files, rng)
    source = work / "a"
    dest: Path | str = dest_url or work / "b"
    run(work, source, "init", "-q")
    run(work, dest, "init", "-q")
    import_s, _ = run(work, source, "import", "-q", str(host), "/data")
    full_s, out = run(work, dest, "pull", "--json", str(source))
    full = json.loads(out)
    pushes: list[float] = []
    sent: list[dict[str, int]] = []
    for position in rng.sample(range(n_files), runs):
        run(work, source, "write", paths[position], stdin=rng.randbytes(100))
        elapsed, out = run(work, source, "push", "--json", str(dest))
        result = json.loads(out)
        if result["commits"] != 1 or result["up_to_date"]:
            raise SystemExit(f"a one-file change pushed {result}")
        pushes.append(elapsed)
        sent.append({"objects": result["objects"], "bytes": result["bytes"]})
    up_to_date = [run(work, source, "push", "--json", str(dest))[0] for _ in range(runs)]
    log_one = [run(work, source, "log", "-n", "1")[0] for _ in range(runs)]
    return {
        "files": n_files,
        "destination": "s3" if dest_url else "local",
        "runs": runs,
        "import_s": round(import_s, 3),
        "full_push": {"seconds": round(full_s, 3), "objects": full["objects"], "bytes": full["bytes"]},
        "one_file_push": summary(pushes),
        "one_file_sent": sent,
        "up_to_date_push": summary(up_to_date),
        "log_n1": summary(log_one),
        "target_s": TARGET_SECONDS,
        "meets_target": statistics.median(pushes) < TARGET_SECONDS,
    }


def main() -> None:
    """Parse options, run, print a table (and write JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--s3", action="store_true", help="push into an S3 repository on a SeaweedFS started here")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zerofs-push-bench-"))
    server = None
    try:
        dest_url = None
        if options.s3:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, start_server

            server = start_server(work / "seaweed")
            server.create_bucket("push-bench")
            S3_ENV.update(
                AWS_ACCESS_KEY_ID=ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                AWS_REGION=REGION,
                AWS_ENDPOINT_URL=server.endpoint,
            )
            dest_url = "s3://push-bench/b"
        result = bench(work, options.files, options.runs, dest_url)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"tree: {result['files']:,} files, import {result['import_s']} s, pushed to {result['destination']}")
    full = result["full_push"]
    print(f"full push (pull into an empty repository): {full['seconds']} s, {full['objects']:,} objects")
    for label in ("one_file_push", "up_to_date_push", "log_n1"):
        row = result[label]
        print(f"{label:16} median {row['median_s']:.3f} s  (min {row['min_s']:.3f}, max {row['max_s']:.3f})")
    objects = sorted(item["objects"] for item in result["one_file_sent"])
    print(f"one-file push sent {objects[0]}-{objects[-1]} objects; under {TARGET_SECONDS} s: {result['meets_target']}")
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
