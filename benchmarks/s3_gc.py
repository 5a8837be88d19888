"""gc on S3 against restic's prune, on the same SeaweedFS on loopback, through the CLI (issue #13).

Same data for both tools: tree A and tree B (small text files and a few
random MiB-sized ones each). zerofs imports A and B, removes A and runs
``gc --keep-last 1``; restic backs up A and B, then B alone, and runs
``forget --keep-last 1 --group-by host --prune``. Measured, as whole
processes, medians of ``--rounds``:

- the gc's wall time, and for zerofs that time less the grace period it
  waits by design (``--grace``, set at ``init``);
- the bytes of each tool's objects under its prefix before and after (the
  sum of the object sizes a listing reports, the same way for both: the
  server's own disk use lags deletions until it compacts its volumes);
- the requests zerofs's gc makes, counted at a forwarding proxy;
- what a writer pays while a plan is pending: ``zerofs mkdir`` and an import
  of a third tree, with no gc running and during a gc's grace period.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/s3_gc.py [--files 2000] [--rounds 3] [--grace 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.s3bench import seaweed_workspace, zerofs_env  # noqa: E402
from tests.s3.faultproxy import FaultProxy  # noqa: E402
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer  # noqa: E402
from zerofs.store.objects_s3 import S3Objects  # noqa: E402
from zerofs.store.s3config import S3Settings, parse_s3_url  # noqa: E402

MIB = 1 << 20


def make_tree(root: Path, files: int, salt: str) -> int:
    """Small text files in directories of 100 and one random 2 MiB file per 250; returns the bytes."""
    total = 0
    for n in range(files):
        directory = root / f"d{n // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        data = os.urandom(2 * MIB) if n % 250 == 0 else f"{salt} file {n}\n".encode() * (1 + n % 200)
        (directory / f"f{n:05d}.txt").write_bytes(data)
        total += len(data)
    return total


def run(argv: list[str], env: dict[str, str]) -> float:
    """Run a command; its wall time in seconds (exit on failure)."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return elapsed


def zerofs(env: dict[str, str], *args: str) -> float:
    return run([sys.executable, "-m", "zerofs", *args], env)


def prefix_bytes(server: SeaweedServer, url: str) -> int:
    """Bytes of every object under an ``s3://bucket/prefix``, as a listing reports them."""
    settings = S3Settings(ACCESS_KEY, SECRET_KEY, region=REGION, endpoint_url=server.endpoint)
    with S3Objects(parse_s3_url(url), settings) as objects:
        return sum(info.size_bytes for info in objects.list(""))


def zerofs_round(
    server: SeaweedServer, proxy: FaultProxy, env: dict[str, str], work: Path, bucket: str, grace: int
) -> dict[str, float]:
    """One round for zerofs: import A and B, remove A, gc; then a writer with and without a pending plan."""
    url = f"s3://{bucket}/zerofs"
    zerofs(env, "init", "--gc-grace", str(grace), url)
    zerofs(env, "--repo", url, "import", str(work / "a"), "/a")
    zerofs(env, "--repo", url, "import", str(work / "b"), "/b")
    zerofs(env, "--repo", url, "rm", "-r", "/a")
    before = prefix_bytes(server, url)
    counted = {**env, "AWS_ENDPOINT_URL": proxy.endpoint, "XDG_CACHE_HOME": str(work / f"gc-cache-{bucket}")}
    proxy.seen.clear()
    gc_s = zerofs(counted, "--repo", url, "gc", "--keep-last", "1")
    requests = len(proxy.seen)
    after = prefix_bytes(server, url)
    idle = _writer(env, url, work, "idle")
    zerofs(env, "--repo", url, "rm", "-r", "/b")
    collector = subprocess.Popen(
        [sys.executable, "-m", "zerofs", "--repo", url, "gc", "--keep-last", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_plan(server, url)
        pending = _writer(env, url, work, "pending")
    finally:
        collector.wait()
    return {
        "gc_s": gc_s,
        "gc_less_grace_s": gc_s - grace,
        "bytes_before": before,
        "bytes_after": after,
        "gc_requests": requests,
        "mkdir_idle_s": idle[0],
        "import_c_idle_s": idle[1],
        "mkdir_plan_pending_s": pending[0],
        "import_c_plan_pending_s": pending[1],
    }


def _writer(env: dict[str, str], url: str, work: Path, tag: str) -> tuple[float, float]:
    """Median of 5 ``mkdir`` runs, and one import of tree C (which shares tree B's small files)."""
    mkdirs = [zerofs(env, "--repo", url, "mkdir", f"/{tag}-{n}") for n in range(5)]
    return statistics.median(mkdirs), zerofs(env, "--repo", url, "import", str(work / "b"), f"/c-{tag}")


def _wait_for_plan(server: SeaweedServer, url: str) -> None:
    settings = S3Settings(ACCESS_KEY, SECRET_KEY, region=REGION, endpoint_url=server.endpoint)
    with S3Objects(parse_s3_url(url), settings) as objects:
        while True:
            keys = {info.key for info in objects.list("gc/plans")}
            if any(k.endswith(".plan") and k.removesuffix(".plan") + ".done" not in keys for k in keys):
                return
            time.sleep(0.05)


def restic_round(server: SeaweedServer, env: dict[str, str], work: Path, bucket: str) -> dict[str, float]:
    """One round for restic: back up A and B, then B alone, then forget the first and prune."""
    restic_env = {**env, "RESTIC_PASSWORD": "bench", "AWS_DEFAULT_REGION": REGION}
    repository = f"s3:{server.endpoint}/{bucket}/restic"

    def restic(*args: str) -> float:
        return run(["restic", "-r", repository, *args], restic_env)

    restic("init")
    restic("backup", "-q", "--host", "bench", str(work / "a"), str(work / "b"))
    restic("backup", "-q", "--host", "bench", str(work / "b"))
    before = prefix_bytes(server, f"s3://{bucket}/restic")
    prune_s = restic("forget", "-q", "--keep-last", "1", "--group-by", "host", "--prune")
    return {"prune_s": prune_s, "bytes_before": before, "bytes_after": prefix_bytes(server, f"s3://{bucket}/restic")}


def main() -> None:
    """Run the rounds and print medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grace", type=int, default=5, help="the zerofs repository's gc grace period (seconds)")
    options = parser.parse_args()
    with seaweed_workspace("zerofs-s3-gc-bench-") as (work, server, proxy):
        sizes = {name: make_tree(work / name, options.files, name) for name in ("a", "b")}
        env = zerofs_env(server)
        rounds: dict[str, list[float]] = {}
        for round_no in range(options.rounds):
            bucket = f"gc{round_no}"
            server.create_bucket(bucket)
            env_round = {**env, "XDG_CACHE_HOME": str(work / f"cache{round_no}")}
            for key, value in zerofs_round(server, proxy, env_round, work, bucket, options.grace).items():
                rounds.setdefault(f"zerofs_{key}", []).append(value)
            if shutil.which("restic"):
                for key, value in restic_round(server, env_round, work, bucket).items():
                    rounds.setdefault(f"restic_{key}", []).append(value)
        report: dict[str, object] = {key: round(statistics.median(values), 3) for key, values in rounds.items()}
        report |= {"files_per_tree": options.files, "tree_a_mib": round(sizes["a"] / MIB, 1), "grace_s": options.grace}
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
