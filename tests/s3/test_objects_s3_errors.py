"""Every way object storage fails becomes one clear ZerofsError, in bounded time, never a hang.

The server is the real SeaweedFS (stopped, restarted, asked for a missing
bucket, given wrong credentials); the failures it will not make on demand
(503 SlowDown, connection resets, a service without conditional writes)
come from a fault-injecting proxy in front of it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3.conftest import fast_settings
from tests.s3.faultproxy import FaultProxy
from tests.s3.seaweed import SeaweedServer, free_ports, start_server
from zerofs.errors import (
    BucketNotFoundError,
    ConditionalWritesUnsupportedError,
    ObjectStoreAccessError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
    RepositoryError,
)
from zerofs.store.objects_s3 import ObjectData, S3Objects
from zerofs.store.s3config import S3Location


def one_line(error: pytest.ExceptionInfo[ObjectStoreError]) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    assert len(message) < 300, message
    assert isinstance(error.value, RepositoryError)  # exit code 5 until the CLI gives them their own
    return message


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[SeaweedServer]:
    """A SeaweedFS of this test's own, free to be stopped and restarted."""
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_a_stopped_server_is_unreachable_then_works_again_after_restart(own_server: SeaweedServer) -> None:
    own_server.create_bucket("data")
    with S3Objects(S3Location("data", "repo"), fast_settings(own_server.endpoint)) as store:
        etag = store.create("refs/HEAD", b"A")
        assert etag is not None
        own_server.stop()
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnreachableError) as error:
            store.get("refs/HEAD")
        assert time.monotonic() - started < 10
        message = one_line(error)
        assert f"cannot reach {own_server.endpoint} (connection refused, 4 tries)" in message
        assert "s3://data/repo/refs/HEAD" in message
        with pytest.raises(ObjectStoreUnreachableError):
            store.create("refs/other", b"B")
        own_server.start()
        assert store.get("refs/HEAD") == ObjectData(b"A", etag)


def test_a_wrong_port_fails_fast_and_clearly(bucket: str) -> None:
    (port,) = free_ports(1)
    with S3Objects(S3Location(bucket), fast_settings(f"http://127.0.0.1:{port}")) as store:
        with pytest.raises(ObjectStoreUnreachableError) as error:
            store.check_bucket()
        assert "connection refused" in one_line(error)


def test_a_server_that_never_answers_times_out(bucket: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = fast_settings(endpoint, read_timeout_s=0.5, request_timeout_s=1.0, max_retries=2)
        with S3Objects(S3Location(bucket), settings) as store:
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnreachableError) as error:
                store.head("refs/HEAD")
            assert time.monotonic() - started < 8
            assert "no answer in time" in one_line(error)
            with pytest.raises(ObjectStoreUnreachableError):
                store.create("refs/HEAD", b"A")


def test_a_missing_bucket_is_named(seaweed: SeaweedServer) -> None:
    with S3Objects(S3Location("no-such-bucket", "repo"), fast_settings(seaweed.endpoint)) as store:
        with pytest.raises(BucketNotFoundError) as error:
            store.check_bucket()
        assert one_line(error) == f"bucket 'no-such-bucket' does not exist at {seaweed.endpoint}"
        with pytest.raises(BucketNotFoundError):
            store.create("packs/p", b"data")
        with pytest.raises(BucketNotFoundError):
            list(store.list("packs"))


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [
        ("zerofs-test-key", "not-the-secret", "SignatureDoesNotMatch"),
        ("nobody", "whatever", "InvalidAccessKeyId"),
    ],
)
def test_wrong_credentials_are_refused_clearly(
    seaweed: SeaweedServer, bucket: str, key_id: str, secret: str, code: str
) -> None:
    settings = fast_settings(seaweed.endpoint, access_key_id=key_id, secret_access_key=secret)
    with S3Objects(S3Location(bucket, "repo"), settings) as store:
        with pytest.raises(ObjectStoreAccessError) as error:
            store.check_bucket()
        assert one_line(error) == f"{seaweed.endpoint} refused the credentials ({code}) for s3://{bucket}/repo"
        for request in (lambda: store.create("k", b"v"), lambda: store.get("k"), lambda: store.head("k")):
            with pytest.raises(ObjectStoreAccessError):
                request()


def test_slow_down_is_retried_with_backoff(bucket: str, proxy: FaultProxy) -> None:
    with S3Objects(S3Location(bucket, "repo"), fast_settings(proxy.endpoint)) as store:
        proxy.slow_down_next = 2
        etag = store.create("packs/p", b"data")
        assert etag is not None
        proxy.slow_down_next = 3
        assert store.get("packs/p") == ObjectData(b"data", etag)
        assert [r.method for r in proxy.seen] == ["PUT"] * 3 + ["GET"] * 4


def test_endless_503_fails_after_bounded_retries(bucket: str, proxy: FaultProxy) -> None:
    with S3Objects(S3Location(bucket, "repo"), fast_settings(proxy.endpoint, max_retries=3)) as store:
        proxy.slow_down_next = 1000
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnreachableError) as error:
            store.head("packs/p")
        assert time.monotonic() - started < 10
        assert one_line(error) == f"cannot head s3://{bucket}/repo/packs/p: {proxy.endpoint} answered 503, 4 tries"
        assert len(proxy.seen) == 4


def test_connection_resets_are_retried(bucket: str, proxy: FaultProxy) -> None:
    with S3Objects(S3Location(bucket, "repo"), fast_settings(proxy.endpoint)) as store:
        proxy.reset_next = 2
        etag = store.create("packs/p", b"data")
        proxy.reset_next = 2
        assert store.get("packs/p") == ObjectData(b"data", etag)
        proxy.reset_next = 1000
        with pytest.raises(ObjectStoreUnreachableError) as error:
            store.get("packs/p")
        assert "connection dropped" in one_line(error)


def test_a_service_that_rejects_conditional_writes_is_refused(bucket: str, proxy: FaultProxy) -> None:
    proxy.refuse_conditionals = True
    with S3Objects(S3Location(bucket, "repo"), fast_settings(proxy.endpoint)) as store:
        with pytest.raises(ConditionalWritesUnsupportedError) as error:
            store.verify_conditional_writes()
        assert "does not support conditional writes" in one_line(error)


def test_a_service_that_ignores_conditional_writes_is_refused(bucket: str, proxy: FaultProxy) -> None:
    proxy.ignore_conditionals = True
    with S3Objects(S3Location(bucket, "repo"), fast_settings(proxy.endpoint)) as store:
        with pytest.raises(ConditionalWritesUnsupportedError) as error:
            store.verify_conditional_writes()
        assert "ignores If-None-Match" in one_line(error)
        assert list(store.list(".zerofs-probe")) == []
