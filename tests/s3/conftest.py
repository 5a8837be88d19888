"""Fixtures for the object-storage tests: one real SeaweedFS per test process, a fresh bucket per test.

Under pytest-xdist each worker starts its own server (session scope is per
worker), on free ports in its own temporary directory. If SeaweedFS cannot
start, every test that needs it fails with the reason and the server's log:
CI must never skip these.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.s3.faultproxy import FaultProxy
from tests.s3.hosts import GRACE_S, Host
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedError, SeaweedServer, start_server
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.s3config import S3Location, S3Settings

_bucket_numbers = itertools.count()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS server (S3 on 127.0.0.1) for this test process; stopped at the end of the session."""
    try:
        server = start_server(tmp_path_factory.mktemp("seaweedfs"))
    except SeaweedError as exc:
        pytest.fail(f"SeaweedFS, which the S3 tests need, could not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def fast_settings(endpoint: str, **changes: object) -> S3Settings:
    """Settings for the test server, with waits short enough for tests (still bounded like the defaults)."""
    settings = S3Settings(
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        endpoint_url=endpoint,
        connect_timeout_s=2.0,
        read_timeout_s=3.0,
        request_timeout_s=30.0,
        max_retries=3,
        retry_timeout_s=10.0,
        initial_backoff_s=0.05,
        max_backoff_s=0.5,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
def s3_settings(seaweed: SeaweedServer) -> S3Settings:
    """Credentials and endpoint of the test server."""
    return fast_settings(seaweed.endpoint)


@pytest.fixture
def bucket(seaweed: SeaweedServer) -> str:
    """A new, empty bucket on the test server (named after this worker and a counter)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"zerofs-{worker}-{next(_bucket_numbers)}"
    seaweed.create_bucket(name)
    return name


@pytest.fixture
def objects(bucket: str, s3_settings: S3Settings) -> Iterator[S3Objects]:
    """An object store under ``s3://BUCKET/repo`` on the test server."""
    with S3Objects(S3Location(bucket, "repo"), s3_settings) as store:
        yield store


@pytest.fixture
def proxy(seaweed: SeaweedServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test server."""
    fault_proxy = FaultProxy(("127.0.0.1", seaweed.ports["s3.port"]))
    fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


@pytest.fixture
def url(bucket: str) -> str:
    """The repository URL (not created)."""
    return f"s3://{bucket}/team"


@pytest.fixture
def host(url: str, seaweed: SeaweedServer, tmp_path: Path) -> Host:
    """A host with a repository made by ``zerofs init --gc-grace GRACE_S URL``."""
    first = Host(url, seaweed.endpoint, tmp_path / "cache-a")
    first.run("init", "--gc-grace", str(GRACE_S), url, repo=False)
    return first


@pytest.fixture
def other_host(url: str, seaweed: SeaweedServer, tmp_path: Path, host: Host) -> Host:
    """A second host on the same repository (its own cache)."""
    return Host(url, seaweed.endpoint, tmp_path / "cache-b")
