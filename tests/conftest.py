"""Shared fixtures: a fresh LMDB repository, the ``zerofs`` subprocess runner, hypothesis profiles."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

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
    """A fresh LMDB repository in ``tmp_path / "repo"``."""
    repository = Repository.init(tmp_path / "repo", author=AUTHOR)
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


def cli_env() -> dict[str, str]:
    """The environment every zerofs subprocess runs in."""
    env = dict(os.environ)
    env.pop("ZEROFS_REPO", None)
    env.pop("ZEROFS_DEBUG", None)
    env["NO_COLOR"] = "1"
    env["XDG_CACHE_HOME"] = CACHE_HOME
    env["XDG_RUNTIME_DIR"] = RUNTIME_DIR
    env.pop("ZEROFS_KEY_CACHE", None)
    return env


def zerofs_command(repo_path: Path, *args: str) -> list[str]:
    """The argv that runs ``zerofs --repo REPO ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "zerofs", "--repo", str(repo_path), *args]


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
        env={**cli_env(), **(env or {})},
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
    """A repository created with ``zerofs init``; returns its path."""
    zerofs("init")
    return repo_path
