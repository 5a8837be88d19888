"""Where an S3 repository lives and how to reach it: ``s3://bucket/prefix`` and the AWS settings.

This module owns the parsing of repository URLs and the resolution of the
standard AWS configuration (the variables, ``~/.aws/credentials`` and
``~/.aws/config``, in the precedence the AWS CLI uses). It is a pure function
of what it is given: the caller passes the environment mapping and the home
directory (only ``cli/`` reads the process environment). It opens no connection.
"""

from __future__ import annotations

import configparser
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zerofs.errors import ObjectStoreAccessError, UsageError

URL_SCHEME: Final = "s3://"
DEFAULT_PROFILE: Final = "default"

# S3's rules for bucket names (3-63 characters; lower-case letters, digits, dots and hyphens;
# a letter or digit at each end). Names with dots work on path-style endpoints only, but they are legal.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key prefix inside it (``""`` for the whole bucket; never a leading or trailing ``/``)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        """The canonical ``s3://bucket/prefix`` form."""
        return f"{URL_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{URL_SCHEME}{self.bucket}"

    def key_url(self, key: str) -> str:
        """The ``s3://`` URL of ``key`` under this prefix, for messages."""
        return f"{self.url}/{key}"


def is_s3_url(text: str) -> bool:
    """True if ``text`` names an S3 repository (starts with ``s3://``)."""
    return text.startswith(URL_SCHEME)


def parse_s3_url(url: str) -> S3Location:
    """Parse ``s3://bucket[/prefix]``.

    A trailing ``/`` is dropped; the prefix may have several segments but none
    empty, ``.`` or ``..`` (object stores treat those differently from one another).

    Raises:
        UsageError: the URL is not an ``s3://`` URL or names an invalid bucket or prefix.
    """
    if not is_s3_url(url):
        raise UsageError(f"not an S3 URL: {url!r} (expected s3://BUCKET/PREFIX)")
    bucket, _, prefix = url[len(URL_SCHEME) :].partition("/")
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise UsageError(f"invalid bucket name {bucket!r} in {url!r}: 3-63 lower-case letters, digits, '.' or '-'")
    prefix = prefix.rstrip("/")
    if prefix:
        for segment in prefix.split("/"):
            if segment in ("", ".", "..") or any(ord(c) < 0x20 or c in "\\*?" for c in segment):
                raise UsageError(f"invalid prefix {prefix!r} in {url!r}: empty, '.' or '..' segments or odd characters")
    return S3Location(bucket, prefix)


@dataclass(frozen=True, slots=True)
class S3Settings:
    """How to reach the object store: endpoint, region, credentials, and the bounds on waiting."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """None: AWS itself (the region's endpoint)."""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    """A connection that sends nothing for this long is dead (the request is retried if it is a read)."""
    request_timeout_s: float = 300.0
    """Whole-request bound: generous enough for a 32 MiB pack on a slow link, finite so nothing hangs."""
    max_retries: int = 5
    """Retries of a request after a 5xx (SlowDown included), a dropped connection or a read timeout."""
    retry_timeout_s: float = 60.0
    """No retry starts after this long since the first attempt."""
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            check_endpoint_url(self.endpoint_url)


def check_endpoint_url(url: str) -> None:
    """Accept ``http(s)://host[:port][/path]`` only (the client would fail obscurely, or panic, on anything else).

    Raises:
        UsageError: another scheme, no host, a bad port, a query or a fragment.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # parsing the port raises ValueError if it is not a number in range
    except ValueError as exc:
        raise UsageError(f"invalid S3 endpoint URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"invalid S3 endpoint URL {url!r}: expected http(s)://HOST[:PORT]")


def settings_from_environment(environ: Mapping[str, str], home: Path) -> S3Settings:
    """Resolve the AWS settings the way the AWS CLI does.

    Credentials come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and
    ``AWS_SESSION_TOKEN``), else from the profile (``AWS_PROFILE``, else
    ``default``) in the credentials file, else in the config file. The region is
    ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's ``region``.
    The endpoint is ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else the
    profile's ``endpoint_url``. The files are ``AWS_SHARED_CREDENTIALS_FILE`` and
    ``AWS_CONFIG_FILE``, by default ``~/.aws/credentials`` and ``~/.aws/config``.

    Raises:
        UsageError: ``AWS_PROFILE`` names a profile neither file has, or a file does not parse.
        ObjectStoreAccessError: no credentials anywhere.
    """
    profile = environ.get("AWS_PROFILE") or DEFAULT_PROFILE
    credentials_file = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config_file = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    from_credentials = _profile_section(credentials_file, profile)
    # The config file names every profile but the default one "profile NAME".
    from_config = _profile_section(config_file, profile if profile == DEFAULT_PROFILE else f"profile {profile}")
    if "AWS_PROFILE" in environ and from_credentials is None and from_config is None:
        raise UsageError(f"AWS profile {profile!r} is in neither {credentials_file} nor {config_file}")
    files = [section for section in (from_credentials, from_config) if section is not None]

    def setting(names: tuple[str, ...], key: str) -> str | None:
        for name in names:
            if environ.get(name):
                return environ[name]
        return next((section[key] for section in files if section.get(key)), None)

    access_key_id, secret_access_key, session_token = _credentials(environ, files)
    if not access_key_id or not secret_access_key:
        raise ObjectStoreAccessError(
            f"no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile {profile!r} "
            f"aws_access_key_id and aws_secret_access_key in {credentials_file}"
        )
    return S3Settings(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        region=setting(("AWS_REGION", "AWS_DEFAULT_REGION"), "region") or "us-east-1",
        endpoint_url=setting(("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), "endpoint_url"),
    )


def _credentials(
    environ: Mapping[str, str], files: list[Mapping[str, str]]
) -> tuple[str | None, str | None, str | None]:
    """The key pair and token: all from the variables when the key id is there, else all from one file's profile.

    A key id and a secret are never mixed across sources (as the AWS CLI does not).
    """
    if environ.get("AWS_ACCESS_KEY_ID"):
        return environ["AWS_ACCESS_KEY_ID"], environ.get("AWS_SECRET_ACCESS_KEY"), environ.get("AWS_SESSION_TOKEN")
    for section in files:
        if section.get("aws_access_key_id"):
            return section["aws_access_key_id"], section.get("aws_secret_access_key"), section.get("aws_session_token")
    return None, None, None


def _profile_section(path: Path, name: str) -> Mapping[str, str] | None:
    """Section ``name`` of the INI file at ``path``; None if the file or the section is absent."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00 no defaults")
    try:
        with open(path, encoding="utf-8") as source:
            parser.read_file(source)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot read AWS settings from {path}: {first_line}") from exc
    return dict(parser[name]) if parser.has_section(name) else None
