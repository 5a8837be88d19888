"""Which S3 client zerofs uses: obstore against boto3, on a real SeaweedFS on loopback (issue #13).

For each client, the requests the repository layer will make: PUT of 32 MiB
objects with If-None-Match: * (a pack), ranged GETs of 64 KiB with several in
flight (chunk reads), HEAD, LIST of a prefix with 1,000 keys, PUT with If-Match
(a ref's compare-and-swap) and DELETE. For each: wall time per request and the
client's CPU time per request (this process's user+system time, which counts
obstore's Rust threads too; the server is another process). Then whole-process
start-up: ``python -c "import X"`` and import + client + one HEAD, since a
zerofs ``cat`` pays that on every run, and the ``-X importtime`` total.

It also checks what the choice relies on: that SeaweedFS answers 412 to both
conditionals, for single PUTs and (through boto3, which can send the headers
there) for multipart completion.

Usage (boto3 is not a zerofs dependency: install it beside, e.g. in /tmp/tools-s3):

    pip install --target /tmp/tools-s3 boto3
    PYTHONPATH=.:/tmp/tools-s3 .venv/bin/python benchmarks/s3_client.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer, start_server  # noqa: E402

MIB = 1 << 20
PACK_BYTES = 32 * MIB
N_PACKS = 6
N_RANGES = 400
RANGE_BYTES = 64 * 1024
IN_FLIGHT = 8
N_SMALL = 300
N_LIST_KEYS = 1000
N_LISTS = 10
STALE_ETAG = '"0123456789abcdef0123456789abcdef"'


def measure(n_requests: int, work: Callable[[], Any]) -> dict[str, float]:
    """Run ``work`` once; return wall and CPU milliseconds per request."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_ms": 1000 * wall / n_requests, "cpu_ms": 1000 * cpu / n_requests}


class ObstoreClient:
    name = "obstore"

    def __init__(self, endpoint: str, bucket: str) -> None:
        import obstore
        from obstore.store import S3Store

        self.ob = obstore
        self.store = S3Store(
            bucket,
            endpoint=endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region=REGION,
            client_options={"allow_http": True},
        )
        self.pool = ThreadPoolExecutor(IN_FLIGHT)

    def put_create(self, key: str, data: bytes) -> str:
        return str(self.ob.put(self.store, key, data, mode="create", use_multipart=False)["e_tag"])

    def put_cas(self, key: str, data: bytes, etag: str) -> str:
        return str(self.ob.put(self.store, key, data, mode={"e_tag": etag}, use_multipart=False)["e_tag"])

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return bytes(self.ob.get_range(self.store, key, start=start, length=length))

    def ranges_threads(self, requests: list[tuple[str, int, int]]) -> list[bytes]:
        return list(self.pool.map(lambda r: self.get_range(*r), requests))

    def ranges_asyncio(self, requests: list[tuple[str, int, int]]) -> list[bytes]:
        async def all_of_them() -> list[bytes]:
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def one(key: str, start: int, length: int) -> bytes:
                async with limit:
                    return bytes(await self.ob.get_range_async(self.store, key, start=start, length=length))

            return await asyncio.gather(*(one(*r) for r in requests))

        return asyncio.run(all_of_them())

    def head(self, key: str) -> int:
        return int(self.ob.head(self.store, key)["size"])

    def list_keys(self, prefix: str) -> int:
        return sum(len(page) for page in self.ob.list(self.store, prefix, chunk_size=1000))

    def delete(self, key: str) -> None:
        self.ob.delete(self.store, key)


class Boto3Client:
    name = "boto3"

    def __init__(self, endpoint: str, bucket: str) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(max_pool_connections=IN_FLIGHT * 2, retries={"max_attempts": 3, "mode": "standard"}),
        )
        self.pool = ThreadPoolExecutor(IN_FLIGHT)

    def put_create(self, key: str, data: bytes) -> str:
        return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")["ETag"])

    def put_cas(self, key: str, data: bytes, etag: str) -> str:
        return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, IfMatch=etag)["ETag"])

    def get_range(self, key: str, start: int, length: int) -> bytes:
        answer = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        return bytes(answer["Body"].read())

    def ranges_threads(self, requests: list[tuple[str, int, int]]) -> list[bytes]:
        return list(self.pool.map(lambda r: self.get_range(*r), requests))

    def head(self, key: str) -> int:
        return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def list_keys(self, prefix: str) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sum(len(page.get("Contents", [])) for page in pages)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)


def run_client(client: Any, packs: list[bytes], round_number: int) -> dict[str, dict[str, float]]:
    tag = f"{client.name}-{round_number}"
    keys = [f"{tag}/packs/{n}" for n in range(len(packs))]
    rows: dict[str, dict[str, float]] = {}
    rows["put_32mib_if_none_match"] = measure(
        len(packs), lambda: [client.put_create(k, d) for k, d in zip(keys, packs, strict=True)]
    )
    rng = random.Random(round_number)
    requests = [(rng.choice(keys), rng.randrange(PACK_BYTES - RANGE_BYTES), RANGE_BYTES) for _ in range(N_RANGES)]
    rows["get_64kib_range_1_in_flight"] = measure(N_RANGES // 4, lambda: [client.get_range(*r) for r in requests[::4]])
    rows[f"get_64kib_range_{IN_FLIGHT}_in_flight_threads"] = measure(N_RANGES, lambda: client.ranges_threads(requests))
    if hasattr(client, "ranges_asyncio"):
        rows[f"get_64kib_range_{IN_FLIGHT}_in_flight_asyncio"] = measure(
            N_RANGES, lambda: client.ranges_asyncio(requests)
        )
    got = client.ranges_threads(requests[:20])
    by_key = dict(zip(keys, packs, strict=True))
    assert got == [by_key[k][s : s + n] for k, s, n in requests[:20]], "ranged reads returned wrong bytes"
    rows["head"] = measure(N_SMALL, lambda: [client.head(keys[n % len(keys)]) for n in range(N_SMALL)])
    small = [f"{tag}/index/{n:05d}" for n in range(N_LIST_KEYS)]
    list(client.pool.map(lambda k: client.put_create(k, b"i"), small))
    counts: list[int] = []
    rows["list_1000_keys"] = measure(
        N_LISTS, lambda: counts.extend(client.list_keys(f"{tag}/index") for _ in range(N_LISTS))
    )
    assert counts == [N_LIST_KEYS] * N_LISTS, counts
    ref = f"{tag}/refs/HEAD"
    etag = client.put_create(ref, b"0" * 100)
    etags = [etag]

    def cas_loop() -> None:
        for n in range(N_SMALL):
            etags.append(client.put_cas(ref, b"%0100d" % (n + 1), etags[-1]))

    rows["put_if_match_cas"] = measure(N_SMALL, cas_loop)
    rows["delete"] = measure(len(small), lambda: [client.delete(k) for k in small])
    for key in [*keys, ref]:
        client.delete(key)
    return rows


def check_conditionals(endpoint: str, bucket: str) -> dict[str, bool]:
    """What SeaweedFS enforces: True where a conflicting write got 412."""
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )

    def refused(call: Callable[[], Any]) -> bool:
        try:
            call()
        except ClientError as exc:
            return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        return False

    s3.put_object(Bucket=bucket, Key="cond/single", Body=b"a")
    results = {
        "put_if_none_match_on_existing_412": refused(
            lambda: s3.put_object(Bucket=bucket, Key="cond/single", Body=b"b", IfNoneMatch="*")
        ),
        "put_if_match_stale_412": refused(
            lambda: s3.put_object(Bucket=bucket, Key="cond/single", Body=b"b", IfMatch=STALE_ETAG)
        ),
    }

    def multipart(key: str, **condition: str) -> None:
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"m" * (5 * MIB))
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
            **condition,
        )

    multipart("cond/multi")
    results["multipart_complete_if_none_match_on_existing_412"] = refused(
        lambda: multipart("cond/multi", IfNoneMatch="*")
    )
    results["multipart_complete_if_match_stale_412"] = refused(lambda: multipart("cond/multi", IfMatch=STALE_ETAG))
    results["multipart_complete_if_none_match_on_absent_ok"] = not refused(
        lambda: multipart("cond/multi-new", IfNoneMatch="*")
    )
    return results


def startup(python: str, rounds: int, endpoint: str, bucket: str) -> dict[str, dict[str, float]]:
    """Whole-process costs: bare interpreter, import, import + client + one HEAD; and -X importtime's total."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("PYTHONDONTWRITEBYTECODE")
    head_obstore = (
        "import obstore\nfrom obstore.store import S3Store\n"
        f"s=S3Store({bucket!r}, endpoint={endpoint!r}, access_key_id={ACCESS_KEY!r}, "
        f"secret_access_key={SECRET_KEY!r}, region={REGION!r}, client_options={{'allow_http': True}})\n"
        "obstore.head(s, 'probe')"
    )
    head_boto3 = (
        "import boto3\n"
        f"s=boto3.client('s3', endpoint_url={endpoint!r}, aws_access_key_id={ACCESS_KEY!r}, "
        f"aws_secret_access_key={SECRET_KEY!r}, region_name={REGION!r})\n"
        f"s.head_object(Bucket={bucket!r}, Key='probe')"
    )
    programs = {
        "python_bare": "pass",
        "import_obstore": "import obstore; from obstore.store import S3Store",
        "import_boto3": "import boto3",
        "import_client_head_obstore": head_obstore,
        "import_client_head_boto3": head_boto3,
    }
    rows: dict[str, dict[str, float]] = {}
    for name, program in programs.items():
        subprocess.run([python, "-c", program], env=env, check=True)  # warm the page cache and .pyc files
        walls = []
        for _ in range(max(5, rounds * 3)):
            started = time.perf_counter()
            subprocess.run([python, "-c", program], env=env, check=True)
            walls.append(1000 * (time.perf_counter() - started))
        rows[name] = {"wall_ms": statistics.median(walls)}
    for module in ("obstore", "boto3"):
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"], env=env, capture_output=True, text=True, check=True
        )
        fields = [line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:")]
        total_us = next(int(f[1]) for f in fields if f[2].strip() == module)  # the top-level import's cumulative
        rows[f"importtime_{module}"] = {"cumulative_ms": total_us / 1000}
    return rows


def median_rows(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {field: statistics.median(r[name][field] for r in rounds) for field in rounds[0][name]}
        for name in rounds[0]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zerofs-s3bench-") as scratch:
        server: SeaweedServer = start_server(Path(scratch))
        try:
            print(f"SeaweedFS up in {server.startup_seconds:.2f} s at {server.endpoint}")
            server.create_bucket("bench")
            packs = [os.urandom(PACK_BYTES) for _ in range(N_PACKS)]
            clients = [ObstoreClient(server.endpoint, "bench"), Boto3Client(server.endpoint, "bench")]
            clients[0].put_create("probe", b"the object the start-up measure reads")
            results: dict[str, list[dict[str, dict[str, float]]]] = {c.name: [] for c in clients}
            for round_number in range(args.rounds):
                for client in clients if round_number % 2 == 0 else reversed(clients):
                    results[client.name].append(run_client(client, packs, round_number))
            report: dict[str, Any] = {name: median_rows(rows) for name, rows in results.items()}
            report["startup"] = startup(sys.executable, args.rounds, server.endpoint, "bench")
            report["seaweedfs_conditionals"] = check_conditionals(server.endpoint, "bench")
            report["seaweedfs_startup_s"] = server.startup_seconds
        finally:
            server.stop()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def print_report(report: dict[str, Any]) -> None:
    header = f"{'request':44} {'obstore wall':>12} {'boto3 wall':>11} {'obstore CPU':>12} {'boto3 CPU':>10}"
    print(f"\n{header}  (ms/request)")
    for name, row in report["obstore"].items():
        other = report["boto3"].get(name)
        boto_wall = f"{other['wall_ms']:11.3f}" if other else f"{'-':>11}"
        boto_cpu = f"{other['cpu_ms']:10.3f}" if other else f"{'-':>10}"
        print(f"{name:44} {row['wall_ms']:12.3f} {boto_wall} {row['cpu_ms']:12.3f} {boto_cpu}")
    print("\nwhole process (median ms):")
    for name, row in report["startup"].items():
        print(f"  {name:34} {next(iter(row.values())):8.1f}")
    print("\nSeaweedFS conditionals:")
    for name, ok in report["seaweedfs_conditionals"].items():
        print(f"  {name:52} {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
