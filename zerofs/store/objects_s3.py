"""Objects in an S3-compatible bucket: the few requests a repository needs, bounded and with clear errors.

This module owns the object-storage client (obstore, chosen by
``benchmarks/s3_client.py``: a fraction of boto3's CPU per request and of its
import time) and turns every failure into one ``ObjectStoreError`` subclass
with a one-line message. It knows nothing of packs, indexes or refs: keys are
plain strings under the location's prefix, and the repository layer decides
what they hold.

What it offers is what object storage can promise, no more:

- ``create``: a write that succeeds only if the key is absent (``If-None-Match: *``);
- ``replace``: a compare-and-swap on the ETag (``If-Match``);
- ``get``, ``get_range``, ``get_ranges`` (several ranged reads in flight), ``head``,
  ``list`` (every key under a prefix, page by page), ``delete``.

Every request is bounded: connect, read and whole-request timeouts, and up to
``max_retries`` retries with exponential backoff and jitter after a 5xx
(SlowDown and 503 included), a dropped connection or a read timeout, for at
most ``retry_timeout_s``; then the request fails with
``ObjectStoreUnreachableError``. A retried conditional write can meet its own
earlier success (a 412 on an object that already holds our bytes), so both
conditional writes decide by content: they succeed when the object ends up
holding exactly the bytes given.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotSupportedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from zerofs.errors import (
    BucketNotFoundError,
    ConditionalWritesUnsupportedError,
    DamagedObjectError,
    MissingObjectError,
    ObjectStoreAccessError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
    ZerofsError,
)
from zerofs.store.s3config import S3Location, S3Settings

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from obstore import PutMode
    from obstore.store import ClientConfig, RetryConfig, S3Config

Data = bytes | bytearray | memoryview
"""What a write takes: any contiguous bytes."""

LIST_PAGE_KEYS: Final = 1000
"""Keys per list request (S3's maximum)."""
MAX_IN_FLIGHT: Final = 8
"""Ranged reads ``get_ranges`` keeps in flight at once."""
PROBE_PREFIX: Final = ".zerofs-probe"
"""Where ``verify_conditional_writes`` writes (and then deletes) its scratch object."""

_CREDENTIAL_CODES: Final = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"}
)
# obstore raises the built-in FileNotFoundError for a 404 (its own NotFoundError class is never raised).
_PLAIN_MD5_ETAG: Final = re.compile(r'"?([0-9a-f]{32})"?')


class ObjectInfo(NamedTuple):
    """What a HEAD or a list says of an object."""

    key: str
    """Relative to the location's prefix."""
    size_bytes: int
    etag: str
    """As the service sent it (quotes included); pass it back to ``replace``."""


class ObjectData(NamedTuple):
    """A whole object and the ETag of exactly these bytes (read in one request, so the two agree)."""

    data: bytes
    etag: str


class RangeRequest(NamedTuple):
    """One ranged read: ``length`` bytes of ``key`` from ``start``."""

    key: str
    start: int
    length: int


class ObjectStore(Protocol):
    """The requests the repository layer makes of object storage.

    Keys are ``/``-separated segments under the location's prefix, none
    empty, ``.`` or ``..`` (the repository makes them; a bad one is a bug and
    raises ValueError).

    The two conditional writes decide by content (see the module docstring):
    a caller whose writes may race must make each write's bytes unique (a
    ref's value carries its writer's nonce), so that "the object holds my
    bytes" means "my write is the one that took effect".
    """

    def create(self, key: str, data: Data) -> str | None:
        """Write ``key`` if it is absent; return its ETag, or None if it holds other bytes."""
        ...

    def replace(self, key: str, data: Data, etag: str) -> str | None:
        """Overwrite ``key`` if its ETag is still ``etag``; return the new ETag, or None if it changed."""
        ...

    def get(self, key: str) -> ObjectData | None:
        """The whole object and its ETag; None if absent."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start``; MissingObjectError if the object is absent."""
        ...

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes]:
        """Several ranged reads, in flight together; results in the order asked."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag; None if absent."""
        ...

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under the directory ``prefix`` (all pages), in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it is absent."""
        ...


class S3Objects:
    """``ObjectStore`` on an S3-compatible service, through obstore."""

    def __init__(self, location: S3Location, settings: S3Settings) -> None:
        self.location = location
        self.endpoint = settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
        self._store = S3Store(
            location.bucket,
            prefix=location.prefix or None,
            config=_store_config(settings),
            client_options=_client_options(settings),
            retry_config=_retry_config(settings),
        )
        self._settings = settings
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the reader threads (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> S3Objects:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check_bucket(self) -> None:
        """Make one cheap request (a list of at most one key) that fails clearly if the bucket is unusable.

        A HEAD cannot tell a missing bucket from a missing object (it has no
        body), so a repository should call this when it opens.

        Raises:
            BucketNotFoundError, ObjectStoreAccessError, ObjectStoreUnreachableError.
        """
        try:
            stream = obstore.list(self._store, None, chunk_size=1)
            next(iter(stream), None)
        except BaseError as exc:
            raise self._error(exc, "list", "") from exc

    def verify_conditional_writes(self) -> None:
        """Check that the service enforces If-None-Match and If-Match, with a scratch object it then deletes.

        Writes ``.zerofs-probe/<random>`` under the prefix, tries to create it
        again and to replace it with a wrong ETag (both must be refused), and
        deletes it. Some services ignore the headers (AWS S3 before 2024,
        some gateways) and some reject them with 501: without them two hosts
        could overwrite each other's refs, so both are errors.

        Raises:
            ConditionalWritesUnsupportedError: the service ignored or rejected a conditional write.
        """
        key = f"{PROBE_PREFIX}/{secrets.token_hex(16)}"
        try:
            if self.create(key, b"first") is None:
                raise ObjectStoreError(f"probe object {self.location.key_url(key)} already existed")
            if self.create(key, b"second") is not None:
                raise ConditionalWritesUnsupportedError(
                    f"{self.endpoint} ignores If-None-Match: * (a second create of a key overwrote it): "
                    "zerofs needs an S3 service with conditional writes"
                )
            if self.replace(key, b"third", '"00000000000000000000000000000000"') is not None:
                raise ConditionalWritesUnsupportedError(
                    f"{self.endpoint} ignores If-Match (a replace with a wrong ETag succeeded): "
                    "zerofs needs an S3 service with conditional writes"
                )
        finally:
            self.delete(key)

    def create(self, key: str, data: Data) -> str | None:
        """Write ``key`` only if absent (``If-None-Match: *``), in one PUT (never multipart).

        Returns:
            The object's ETag if it now holds ``data`` (written now, or by an
            earlier attempt of the same write), None if it holds other bytes.
        """
        return self._conditional_put(key, data, "create")

    def replace(self, key: str, data: Data, etag: str) -> str | None:
        """Overwrite ``key`` only if its ETag is still ``etag`` (``If-Match``): a compare-and-swap.

        Returns:
            The new ETag if the object now holds ``data``; None if another writer
            changed or deleted it first (a 412, or a 404 on services that send one).
        """
        return self._conditional_put(key, data, {"e_tag": etag})

    def _conditional_put(self, key: str, data: Data, mode: PutMode) -> str | None:
        """One conditional PUT, retried (with backoff) after a dropped connection, which obstore does not retry.

        A retry is safe because the outcome is decided by content: if the
        dropped attempt did land, the retry meets a 412 and ``_etag_if_holding``
        finds our bytes there.
        """
        action = "create" if mode == "create" else "replace"
        started = time.monotonic()
        for attempt in itertools.count():
            try:
                return str(obstore.put(self._store, key, data, mode=mode, use_multipart=False)["e_tag"])
            except (AlreadyExistsError, PreconditionError):
                return self._etag_if_holding(key, data)
            except FileNotFoundError as exc:  # a PUT's 404: the bucket is gone, or (If-Match) the object is
                if action == "create" or _s3_code(str(exc)) == "NoSuchBucket":
                    raise self._error(exc, action, key) from exc
                return self._etag_if_holding(key, data)
            except BaseError as exc:
                if not self._may_retry_put(exc, attempt, started):
                    raise self._error(exc, action, key, is_conditional=True) from exc
            time.sleep(self._backoff_s(attempt))
        raise AssertionError("unreachable")  # itertools.count() never ends

    def _backoff_s(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, initial * 2**attempt)]."""
        ceiling = min(self._settings.max_backoff_s, self._settings.initial_backoff_s * 2**attempt)
        return random.uniform(0, ceiling)

    def _may_retry_put(self, exc: BaseError, attempt: int, started: float) -> bool:
        """True for a connection dropped before any answer that obstore did not retry itself, within the bounds."""
        text = str(exc)
        if _status(text) is not None or re.search(r"after \d+ retries", text):
            return False
        if attempt >= self._settings.max_retries:
            return False
        return time.monotonic() - started < self._settings.retry_timeout_s

    def _etag_if_holding(self, key: str, data: Data) -> str | None:
        """After a refused conditional write: the ETag if ``key`` holds exactly ``data`` anyway, else None."""
        info = self.head(key)
        if info is None or info.size_bytes != len(data):
            return None
        plain = _PLAIN_MD5_ETAG.fullmatch(info.etag)
        if plain is not None:  # a single-part upload's ETag is the MD5 of its bytes
            return info.etag if plain.group(1) == hashlib.md5(data, usedforsecurity=False).hexdigest() else None
        stored = self.get(key)
        return stored.etag if stored is not None and stored.data == bytes(data) else None

    def get(self, key: str) -> ObjectData | None:
        """The whole object and its ETag, or None if it is absent."""
        try:
            result = obstore.get(self._store, key)
            return ObjectData(bytes(result.bytes()), result.meta["e_tag"] or "")
        except FileNotFoundError as exc:
            if _s3_code(str(exc)) == "NoSuchBucket":
                raise self._error(exc, "get", key) from exc
            return None
        except BaseError as exc:
            raise self._error(exc, "get", key) from exc

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from ``start`` (fewer only if the object ends first).

        Raises:
            MissingObjectError: the object is absent.
            DamagedObjectError: the object ends before ``start`` (shorter than whoever named the range knew it).
        """
        if length == 0:
            return b""  # S3 has no empty range
        try:
            return bytes(obstore.get_range(self._store, key, start=start, length=length))
        except FileNotFoundError as exc:
            if _s3_code(str(exc)) == "NoSuchBucket":
                raise self._error(exc, "get", key) from exc
            raise MissingObjectError(f"object {self.location.key_url(key)} is missing") from exc
        except BaseError as exc:
            if _status(str(exc)) == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
                url = self.location.key_url(key)
                raise DamagedObjectError(f"object {url} ends before byte {start}, which was asked for") from exc
            raise self._error(exc, "get", key) from exc

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes]:
        """Several ranged reads with up to ``MAX_IN_FLIGHT`` in flight (obstore releases the GIL while waiting)."""
        if len(requests) <= 1:
            return [self.get_range(*request) for request in requests]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # imported here: a cat of cached data needs no pool

            self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="zerofs-s3")
        return list(self._pool.map(lambda request: self.get_range(*request), requests))

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag of ``key``, or None if it is absent (or its bucket is: see ``check_bucket``)."""
        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:
            return None
        except BaseError as exc:
            raise self._error(exc, "head", key) from exc
        return ObjectInfo(key, meta["size"], meta["e_tag"] or "")

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under the directory ``prefix`` ("" for all), in key order, one request per 1,000 keys.

        ``prefix`` matches whole path segments: ``packs/a`` lists ``packs/a/x``
        but not ``packs/ab``. ``start_after`` skips keys up to and including it.
        """
        try:
            pages = obstore.list(self._store, prefix or None, offset=start_after, chunk_size=LIST_PAGE_KEYS)
            for page in pages:
                for meta in page:
                    yield ObjectInfo(meta["path"], meta["size"], meta["e_tag"] or "")
        except BaseError as exc:
            raise self._error(exc, "list", prefix) from exc

    def delete(self, key: str) -> None:
        """Remove ``key`` (S3 answers success for an absent key too)."""
        try:
            obstore.delete(self._store, key)
        except FileNotFoundError:
            return
        except BaseError as exc:
            raise self._error(exc, "delete", key) from exc

    def _error(
        self, exc: BaseError | FileNotFoundError, action: str, key: str, *, is_conditional: bool = False
    ) -> ZerofsError:
        """The one-line ZerofsError for an obstore failure of ``action`` on ``key``."""
        text = str(exc)
        status, code = _status(text), _s3_code(text)
        url = self.location.key_url(key) if key else self.location.url
        if code == "NoSuchBucket":
            return BucketNotFoundError(f"bucket {self.location.bucket!r} does not exist at {self.endpoint}")
        if code in _CREDENTIAL_CODES or isinstance(exc, UnauthenticatedError) or status == 401:
            return ObjectStoreAccessError(f"{self.endpoint} refused the credentials ({code or status}) for {url}")
        if isinstance(exc, PermissionDeniedError) or status == 403:
            return ObjectStoreAccessError(f"access denied by {self.endpoint} ({code or status}) to {action} {url}")
        if is_conditional and (isinstance(exc, NotSupportedError) or status == 501):
            return ConditionalWritesUnsupportedError(
                f"{self.endpoint} does not support conditional writes ({code or status}): "
                "zerofs needs If-None-Match and If-Match"
            )
        if status is None or status >= 500:
            return ObjectStoreUnreachableError(f"cannot {action} {url}: {_failure(text, status, code, self.endpoint)}")
        return ObjectStoreError(f"cannot {action} {url}: {self.endpoint} answered {status} {code or ''}".rstrip())


def _store_config(settings: S3Settings) -> S3Config:
    config: S3Config = {
        "access_key_id": settings.access_key_id,
        "secret_access_key": settings.secret_access_key,
        "region": settings.region,
        "conditional_put": "etag",
    }
    if settings.session_token:
        config["session_token"] = settings.session_token
    if settings.endpoint_url:
        config["endpoint"] = settings.endpoint_url
        config["virtual_hosted_style_request"] = False
    return config


def _client_options(settings: S3Settings) -> ClientConfig:
    return {
        "allow_http": (settings.endpoint_url or "").startswith("http://"),
        "connect_timeout": timedelta(seconds=settings.connect_timeout_s),
        "read_timeout": timedelta(seconds=settings.read_timeout_s),
        "timeout": timedelta(seconds=settings.request_timeout_s),
    }


def _retry_config(settings: S3Settings) -> RetryConfig:
    # obstore retries 5xx, dropped connections and timeouts of safe requests, with exponential backoff and
    # full jitter (the AWS architecture blog's scheme); these settings bound how often and for how long.
    return {
        "max_retries": settings.max_retries,
        "retry_timeout": timedelta(seconds=settings.retry_timeout_s),
        "backoff": {
            "init_backoff": timedelta(seconds=settings.initial_backoff_s),
            "max_backoff": timedelta(seconds=settings.max_backoff_s),
            "base": 2,
        },
    }


def _status(text: str) -> int | None:
    match = re.search(r"status code: (\d{3})", text)
    return int(match.group(1)) if match else None


def _s3_code(text: str) -> str | None:
    match = re.search(r"<Code>([^<]{1,64})</Code>", text)
    return match.group(1) if match else None


def _failure(text: str, status: int | None, code: str | None, endpoint: str) -> str:
    """Why a request to ``endpoint`` failed for good, and after how many tries, in a few words."""
    retries = re.search(r"after (\d+) retries", text)
    tries = f", {int(retries.group(1)) + 1} tries" if retries else ""
    if status is not None:
        return f"{endpoint} answered {status} {code or ''}".rstrip() + tries
    if "ConnectionRefused" in text or "Connection refused" in text:
        reason = "connection refused"
    elif "Timeout" in text or "TimedOut" in text or "timed out" in text:
        reason = "no answer in time"
    elif "reset" in text.lower() or "IncompleteMessage" in text or "closed" in text.lower():
        reason = "connection dropped"
    elif "dns" in text.lower() or "resolve" in text.lower():
        reason = "host name not found"
    else:
        reason = "no connection"
    return f"cannot reach {endpoint} ({reason}{tries})"
