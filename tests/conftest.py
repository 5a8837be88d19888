"""Shared fixtures: a fresh LMDB repository, the ``zerofs`` subprocess runner, hypothesis profiles.

Also the repository mode of the end-to-end tests (plain or encrypted, issue #15): the
``repo_mode`` fixture of ``tests/e2e/conftest.py`` sets it, and everything here that
starts zerofs or opens a repository follows it (see ``repository_mode``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, settings

from zerofs.repo import Repository

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "100")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

AUTHOR = "test@host"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_log_warnings: the test expects zerofs to log warnings")
    config.addinivalue_line(
        "markers",
        "plain_only(reason): an e2e test that cannot apply to an encrypted repository; it runs in the plain mode only",
    )


@pytest.fixture(autouse=True)
def _no_unexpected_log_warnings(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test in which zerofs (in this process) logged a warning or worse it did not expect."""
    yield
    if request.node.get_closest_marker("allow_log_warnings"):
        return
    unexpected = [r for r in caplog.get_records("call") if r.name.startswith("zerofs") and r.levelno >= logging.WARNING]
    assert not unexpected, "unexpected log warnings: " + "; ".join(r.getMessage() for r in unexpected)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A fresh LMDB repository in ``tmp_path / "repo"`` (encrypted in the encrypted mode)."""
    repository = Repository.init(tmp_path / "repo", author=AUTHOR, **repo_secrets())
    try:
        yield repository
    finally:
        repository.close()


CACHE_HOME = tempfile.mkdtemp(prefix="zerofs-tests-cache-")
"""$XDG_CACHE_HOME of every zerofs subprocess: the tests never touch the user's own caches."""
atexit.register(shutil.rmtree, CACHE_HOME, True)
RUNTIME_DIR = tempfile.mkdtemp(prefix="zerofs-tests-run-")
"""$XDG_RUNTIME_DIR of every zerofs subprocess (mode 0700, as a login session's): the key cache lives there."""
atexit.register(shutil.rmtree, RUNTIME_DIR, True)


PASSWORD: Final = b"e2e test password"
"""The password of every repository the e2e tests make in the encrypted mode."""
PASSWORD_FILE: Final = Path(tempfile.mkdtemp(prefix="zerofs-tests-password-")) / "password"
"""Where the encrypted mode's zerofs subprocesses read ``PASSWORD`` from ($ZEROFS_PASSWORD_FILE)."""
PASSWORD_FILE.write_bytes(PASSWORD)
atexit.register(shutil.rmtree, PASSWORD_FILE.parent, True)
PASSWORD_VARIABLES: Final = (
    "ZEROFS_PASSWORD_FILE",
    "ZEROFS_PASSWORD_COMMAND",
    "ZEROFS_PASSWORD",
    "ZEROFS_OTHER_PASSWORD_FILE",
    "ZEROFS_OTHER_PASSWORD_COMMAND",
    "ZEROFS_OTHER_PASSWORD",
)
MODES: Final = ("plain", "encrypted")


class _Mode:
    """The repository mode in force; ``repository_mode`` changes it (pytest-xdist workers are processes)."""

    encrypted = False


@contextmanager
def repository_mode(mode: str) -> Iterator[None]:
    """Make every repository the tests create plain or encrypted (``mode`` in ``MODES``) for the block.

    In the encrypted mode ``cli_env`` gives every zerofs subprocess ``PASSWORD_FILE``
    as $ZEROFS_PASSWORD_FILE, ``zerofs_argv`` adds ``--encrypt`` to ``init``, and
    ``repo_secrets()`` the password (and key cache) to pass to ``Repository.init/open``.
    """
    assert mode in MODES, mode
    before = _Mode.encrypted
    _Mode.encrypted = mode == "encrypted"
    try:
        yield
    finally:
        _Mode.encrypted = before


def repo_password() -> bytes | None:
    """The password of the repositories the tests make in the current mode (None: plain)."""
    return PASSWORD if _Mode.encrypted else None


def repo_secrets(password: bytes | None = None) -> dict[str, Any]:
    """``password=`` and ``key_cache=`` for an in-process ``Repository.init`` or ``open`` in the current mode.

    ``password``: the repository's own, for one a test made with another; else the mode's.
    The key cache is the zerofs subprocesses' (``RUNTIME_DIR``), so an open after the
    CLI's ``init`` runs no KDF, as a user's command after theirs.
    """
    chosen = password if password is not None else repo_password()
    if chosen is None:
        return {"password": None}
    from zerofs.keycache import KeyCache

    return {"password": chosen, "key_cache": KeyCache.open(RUNTIME_DIR)}


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every zerofs subprocess runs in, updated with ``extra``.

    In the encrypted mode it names the password file; a password variable in
    ``extra`` replaces that source (a test of passwords gives its own).
    """
    env = dict(os.environ)
    env.pop("ZEROFS_REPO", None)
    env.pop("ZEROFS_DEBUG", None)
    for name in PASSWORD_VARIABLES:
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    env["XDG_CACHE_HOME"] = CACHE_HOME
    env["XDG_RUNTIME_DIR"] = RUNTIME_DIR
    env.pop("ZEROFS_KEY_CACHE", None)
    extra = extra or {}
    if _Mode.encrypted and not any(name in extra for name in PASSWORD_VARIABLES):
        env["ZEROFS_PASSWORD_FILE"] = str(PASSWORD_FILE)
    return {**env, **extra}


_ROOT_OPTIONS_WITH_VALUE: Final = frozenset({"--repo", "-c", "--config"})


def zerofs_argv(*args: str) -> list[str]:
    """The argv that runs ``zerofs ARGS...`` with this interpreter; ``init --encrypt`` in the encrypted mode."""
    return [sys.executable, "-m", "zerofs", *_with_mode(args)]


def _with_mode(args: Sequence[str]) -> list[str]:
    """``args``, with ``--encrypt`` after the command word when it is ``init`` and the mode is encrypted."""
    words = list(args)
    if not _Mode.encrypted or "--encrypt" in words:
        return words
    index = 0
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in _ROOT_OPTIONS_WITH_VALUE else 1
    if index < len(words) and words[index] == "init":
        words.insert(index + 1, "--encrypt")
    return words


def zerofs_command(repo_path: Path, *args: str) -> list[str]:
    """The argv that runs ``zerofs --repo REPO ARGS...`` with this interpreter (see ``zerofs_argv``)."""
    return zerofs_argv("--repo", str(repo_path), *args)


def run_zerofs(
    *args: str,
    repo: Path,
    input: bytes | None = None,
    expect: int | None = 0,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run zerofs in a subprocess; assert its exit code is ``expect``.

    Returns the CompletedProcess with ``stdout`` as bytes and ``stderr`` as text.
    """
    proc = subprocess.run(
        zerofs_command(repo, *[str(a) for a in args]),
        input=input,
        capture_output=True,
        env=cli_env(env),
        timeout=timeout,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    result = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, stderr)
    if expect is not None:
        assert proc.returncode == expect, (
            f"zerofs {' '.join(map(str, args))}: exit {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout[:2000]!r}\nstderr: {stderr[:4000]}"
        )
    return result


Zerofs = Callable[..., "subprocess.CompletedProcess[bytes]"]


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    """Where the e2e tests' repository lives (not created)."""
    return tmp_path / "repo"


@pytest.fixture
def zerofs(repo_path: Path) -> Zerofs:
    """``zerofs(*args, repo=repo_path, input=None, expect=0)``: run the CLI as a subprocess."""

    def run(
        *args: str,
        repo: Path | None = None,
        input: bytes | None = None,
        expect: int | None = 0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return run_zerofs(*args, repo=repo or repo_path, input=input, expect=expect, env=env)

    return run


@pytest.fixture
def cli_repo(zerofs: Zerofs, repo_path: Path) -> Path:
    """A repository created with ``zerofs init`` (``--encrypt`` in the encrypted mode); returns its path."""
    zerofs("init")
    return repo_path
