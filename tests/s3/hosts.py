"""Hosts of an S3 repository for the tests: ``zerofs`` as subprocesses, each with its own cache directory.

The bucket is the only thing two hosts share. The ``host`` and ``other_host``
fixtures (``conftest.py``) make one repository per test with a gc grace period
of ``GRACE_S``, so that a gc's wait takes seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_env
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY

GRACE_S = 4
"""The gc grace period of the test repositories (``zerofs init --gc-grace``)."""


class Host:
    """``zerofs`` run as subprocesses against one S3 repository, with this host's cache directory."""

    def __init__(self, url: str, endpoint: str, cache: Path, **env: str) -> None:
        self.url = url
        self.cache = cache
        self.env = {
            **cli_env(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "XDG_CACHE_HOME": str(cache),
            **env,
        }

    def run(
        self, *args: str, expect: int | None = 0, repo: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``zerofs [--repo URL] ARGS`` (``input`` on its stdin); assert the exit code is ``expect``."""
        argv = [sys.executable, "-m", "zerofs", *(["--repo", self.url] if repo else []), *args]
        proc = subprocess.run(argv, capture_output=True, env=self.env, timeout=180, check=False, input=input)
        if expect is not None:
            assert proc.returncode == expect, (
                f"zerofs {' '.join(args)}: exit {proc.returncode}, expected {expect}\n"
                f"stdout: {proc.stdout[:2000]!r}\nstderr: {proc.stderr.decode(errors='replace')[:4000]}"
            )
        return proc

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``zerofs --repo URL ARGS`` without waiting for it."""
        argv = [sys.executable, "-m", "zerofs", "--repo", self.url, *args]
        return subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stderr(self, *args: str, expect: int) -> str:
        """The standard error of a command expected to fail with ``expect``."""
        return self.run(*args, expect=expect).stderr.decode()

    def drop_cache(self) -> None:
        """Delete this host's cache."""
        shutil.rmtree(self.cache, ignore_errors=True)


def make_tree(root: Path, files: int = 30) -> Path:
    """A small host tree: text files, a larger random file (several chunks), a symlink, nested directories."""
    (root / "sub" / "deep").mkdir(parents=True)
    for n in range(files):
        (root / ("sub" if n % 3 else "") / f"file{n}.txt").write_text(f"content of file {n}\n" * (n + 1))
    (root / "sub" / "deep" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "link").symlink_to("sub/file1.txt")
    return root


def tree_listing(root: Path) -> dict[str, bytes]:
    """Every file and link under ``root``: its relative path and its bytes (or its link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def assert_exports(host: Host, store_path: str, tree: Path, workdir: Path) -> None:
    """Export ``store_path`` through ``host`` and check it equals the host tree ``tree``."""
    exported = workdir / f"export-{len(list(workdir.glob('export-*')))}"
    host.run("export", store_path, str(exported))
    assert tree_listing(exported) == tree_listing(tree)
