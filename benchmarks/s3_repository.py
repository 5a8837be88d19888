"""A repository on S3 against a local one, through the CLI, on a real SeaweedFS on loopback (issue #13).

Measures, as whole ``zerofs`` processes (the way a user meets them):

- ``import`` of a tree (small text files and a few MiB-sized random ones) into
  a new S3 repository and into a new local one, same tree, same run;
- the requests an S3 import makes, counted at a forwarding proxy (a second
  import, so the proxy's own cost does not touch the timings): requests in
  all, PUTs, and requests per imported MiB;
- ``cat`` of a small file with a warm host cache (S3) and on the local
  repository;
- ``ls -R`` of the imported tree on a host with an empty cache, and the
  requests it makes;
- ``restic backup`` of the same tree into a new restic repository in the same
  bucket server (restic's S3 backend), when ``restic`` is installed, and the
  ratio of the two import times (issue #13's target: zerofs at least 1.5x
  restic's speed). restic encrypts; zerofs does not yet (issue #15).

Medians of ``--rounds`` runs. Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/s3_repository.py [--files 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.s3.faultproxy import FaultProxy  # noqa: E402
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, start_server  # noqa: E402

MIB = 1 << 20


def make_tree(root: Path, files: int) -> int:
    """Small text files in directories of 100, and one random 4 MiB file per 500 files; returns the bytes."""
    total = 0
    for n in range(files):
        directory = root / f"d{n // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        data = f"file {n}\n".encode() * (1 + n % 200)
        if n % 500 == 0:
            data = os.urandom(4 * MIB)
        (directory / f"f{n:05d}.txt").write_bytes(data)
        total += len(data)
    return total


def zerofs(env: dict[str, str], *args: str) -> float:
    """Run zerofs; return its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "zerofs", *args], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"zerofs {' '.join(args)} failed: {proc.stderr.decode()}")
    return elapsed


def restic(env: dict[str, str], repository: str, *args: str) -> float:
    """Run restic on ``repository``; return its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run(["restic", "-r", repository, *args], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"restic {' '.join(args)} failed: {proc.stderr.decode()}")
    return elapsed


def main() -> None:
    """Run the measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zerofs-s3-bench-"))
    server = start_server(work / "seaweed")
    proxy = FaultProxy(("127.0.0.1", server.ports["s3.port"]))
    proxy.start()
    try:
        tree_bytes = make_tree(work / "tree", options.files)
        base = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "NO_COLOR": "1",
        }
        direct = {**base, "AWS_ENDPOINT_URL": server.endpoint}
        counted = {**base, "AWS_ENDPOINT_URL": proxy.endpoint}
        results: dict[str, list[float]] = {"import_s3_s": [], "import_local_s": [], "cat_s3_warm_s": []}
        results |= {"cat_local_s": [], "ls_r_s3_cold_s": [], "restic_backup_s3_s": []}
        has_restic = shutil.which("restic") is not None
        for round_no in range(options.rounds):
            bucket = f"bench{round_no}"
            server.create_bucket(bucket)
            url = f"s3://{bucket}/repo"
            env = {**direct, "XDG_CACHE_HOME": str(work / f"cache{round_no}")}
            zerofs(env, "init", url)
            results["import_s3_s"].append(zerofs(env, "--repo", url, "import", str(work / "tree"), "/t"))
            local = str(work / f"local{round_no}")
            zerofs(env, "init", local)
            results["import_local_s"].append(zerofs(env, "--repo", local, "import", str(work / "tree"), "/t"))
            zerofs(env, "--repo", url, "cat", "/t/d000/f00001.txt")
            results["cat_s3_warm_s"].append(zerofs(env, "--repo", url, "cat", "/t/d000/f00001.txt"))
            results["cat_local_s"].append(zerofs(env, "--repo", local, "cat", "/t/d000/f00001.txt"))
            cold = {**env, "XDG_CACHE_HOME": str(work / f"cold{round_no}")}
            results["ls_r_s3_cold_s"].append(zerofs(cold, "--repo", url, "ls", "-R", "/t"))
            if has_restic:
                restic_env = {**env, "RESTIC_PASSWORD": "bench", "AWS_DEFAULT_REGION": REGION}
                repository = f"s3:{server.endpoint}/{bucket}/restic"
                restic(restic_env, repository, "init")
                results["restic_backup_s3_s"].append(restic(restic_env, repository, "backup", "-q", str(work / "tree")))
        server.create_bucket("counted")
        env = {**counted, "XDG_CACHE_HOME": str(work / "cache-counted")}
        zerofs(env, "init", "s3://counted/repo")
        proxy.seen.clear()
        zerofs(env, "--repo", "s3://counted/repo", "import", str(work / "tree"), "/t")
        import_requests = list(proxy.seen)
        proxy.seen.clear()
        cold = {**env, "XDG_CACHE_HOME": str(work / "cache-counted-cold")}
        zerofs(cold, "--repo", "s3://counted/repo", "ls", "-R", "/t")
        ls_requests = len(proxy.seen)
        report: dict[str, object] = {k: round(statistics.median(v), 3) for k, v in results.items() if v}
        if results["restic_backup_s3_s"]:
            restic_s = statistics.median(results["restic_backup_s3_s"])
            report["import_speed_vs_restic"] = round(restic_s / statistics.median(results["import_s3_s"]), 2)
        report |= {
            "files": options.files,
            "tree_mib": round(tree_bytes / MIB, 1),
            "import_requests": len(import_requests),
            "import_puts": sum(1 for r in import_requests if r.method == "PUT"),
            "import_requests_per_mib": round(len(import_requests) / (tree_bytes / MIB), 2),
            "ls_r_cold_requests": ls_requests,
        }
        print(json.dumps(report, indent=2))
    finally:
        proxy.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
