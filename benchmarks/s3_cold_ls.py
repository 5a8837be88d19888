"""What ``ls -R`` of a snapshot costs on a host with an empty cache, as the repository's data grows (issue #13).

Two S3 repositories on one SeaweedFS on loopback hold the same small
snapshot (``--files`` small files in directories of 100); the second also
holds ``--data-mib`` of random data in other files. On a host with an empty
cache, ``zerofs ls -R /snapshot`` runs in each: its wall time (median of
``--rounds``, a new empty cache each time), the requests it makes and the
bytes it downloads (counted at a forwarding proxy). If the cost grows with
the metadata fetched and not with the repository's data, both columns are
close.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/s3_cold_ls.py [--files 2000] [--data-mib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.s3bench import seaweed_workspace, zerofs_env  # noqa: E402

MIB = 1 << 20


def zerofs(env: dict[str, str], *args: str) -> float:
    """Run zerofs; its wall time in seconds (exit on failure)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "zerofs", *args], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"zerofs {' '.join(args)} failed: {proc.stderr.decode()}")
    return elapsed


def main() -> None:
    """Build the two repositories, then time cold listings of the same snapshot in each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--data-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with seaweed_workspace("zerofs-s3-cold-ls-") as (work, server, proxy):
        small, data = work / "small", work / "data"
        for n in range(options.files):
            (small / f"d{n // 100:03d}").mkdir(parents=True, exist_ok=True)
            (small / f"d{n // 100:03d}" / f"f{n:05d}.txt").write_bytes(f"file {n}\n".encode() * (1 + n % 100))
        data.mkdir()
        for n in range(max(1, options.data_mib // 64)):
            (data / f"r{n:03d}.bin").write_bytes(os.urandom(min(64, options.data_mib) * MIB))
        env = zerofs_env(server)
        server.create_bucket("coldls")
        report: dict[str, object] = {"files": options.files, "data_mib": options.data_mib}
        for name, with_data in (("without_data", False), ("with_data", True)):
            url = f"s3://coldls/{name}"
            setup = {**env, "XDG_CACHE_HOME": str(work / f"setup-{name}")}
            zerofs(setup, "init", url)
            zerofs(setup, "--repo", url, "import", str(small), "/snapshot")
            if with_data:
                zerofs(setup, "--repo", url, "import", str(data), "/data")
            times = []
            for round_no in range(options.rounds):
                cold = {**env, "XDG_CACHE_HOME": str(work / f"cold-{name}-{round_no}")}
                times.append(zerofs(cold, "--repo", url, "ls", "-R", "/snapshot"))
            counted = {**env, "AWS_ENDPOINT_URL": proxy.endpoint, "XDG_CACHE_HOME": str(work / f"counted-{name}")}
            proxy.seen.clear()
            zerofs(counted, "--repo", url, "ls", "-R", "/snapshot")
            report[f"ls_r_cold_s_{name}"] = round(statistics.median(times), 3)
            report[f"ls_r_cold_requests_{name}"] = len(proxy.seen)
            report[f"ls_r_cold_index_gets_{name}"] = sum(
                1 for r in proxy.seen if r.method == "GET" and "/index/" in r.target
            )
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
