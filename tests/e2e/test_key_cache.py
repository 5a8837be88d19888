"""The key cache through the command line (#15): a second command runs no KDF; no password check is skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env
from tests.e2e.helpers import assert_one_error_line
from zerofs.keycache import CACHE_DIRECTORY

pytestmark = pytest.mark.plain_only(
    "it makes its own encrypted repositories, with passwords and runtime directories of its own"
)

PASSWORD = {"ZEROFS_PASSWORD": "first password"}


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """A private runtime directory ($XDG_RUNTIME_DIR), as a login session has."""
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def encrypted(zerofs: Any, repo_path: Path, runtime: Path) -> Path:
    zerofs("init", "--encrypt", input=b"", env={**PASSWORD, "XDG_RUNTIME_DIR": str(runtime)})
    zerofs("write", "/a.txt", input=b"hello\n", env={**PASSWORD, "XDG_RUNTIME_DIR": str(runtime)})
    return repo_path


def _entries(runtime: Path) -> list[Path]:
    directory = runtime / CACHE_DIRECTORY
    return sorted(directory.iterdir()) if directory.exists() else []


def _cat_imports(repo: Path, runtime: Path, password: dict[str, str]) -> tuple[int, bytes, set[str]]:
    """``zerofs cat /a.txt`` under ``python -X importtime``: exit code, output, and every module it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "zerofs", "--repo", str(repo), "cat", "/a.txt"],
        capture_output=True,
        env={**cli_env(), **password, "XDG_RUNTIME_DIR": str(runtime)},
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    modules = {
        line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines() if line.startswith("import time:")
    }
    return proc.returncode, proc.stdout, modules


def test_init_keeps_the_key_so_the_next_command_runs_no_kdf(encrypted: Path, runtime: Path) -> None:
    [entry] = _entries(runtime)
    assert entry.name == json.loads((encrypted / "config").read_bytes().split(b"\n")[0])["repo_id"]
    assert entry.stat().st_mode & 0o777 == 0o600
    code, out, modules = _cat_imports(encrypted, runtime, PASSWORD)
    assert (code, out) == (0, b"hello\n")
    assert "argon2" not in modules  # the KDF's library was never loaded
    assert "zerofs.crypto.slots" in modules


def test_the_cache_never_lets_a_wrong_or_removed_password_in(zerofs: Any, encrypted: Path, runtime: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    proc = zerofs("cat", "/a.txt", input=b"", env={**env, "ZEROFS_PASSWORD": "wrong"}, expect=12)
    assert_one_error_line(proc)
    assert _entries(runtime)  # the good entry stays
    new = encrypted.parent / "new"
    new.write_text("second password\n")
    zerofs("key", "passwd", "--new-password-file", str(new), input=b"", env={**env, **PASSWORD})
    # The entry the first password sealed names a slot that is gone: it opens nothing.
    code, _, _ = _cat_imports(encrypted, runtime, PASSWORD)
    assert code == 12
    code, out, modules = _cat_imports(encrypted, runtime, {"ZEROFS_PASSWORD": "second password"})
    assert (code, out) == (0, b"hello\n")
    code, out, modules = _cat_imports(encrypted, runtime, {"ZEROFS_PASSWORD": "second password"})
    assert (code, out, "argon2" in modules) == (0, b"hello\n", False)
    # key remove: the removed slot's password is useless, its cache entry with it.
    (new.parent / "third").write_text("third password\n")
    added = json.loads(
        zerofs(
            "key",
            "add",
            "--json",
            "--new-password-file",
            str(new.parent / "third"),
            input=b"",
            env={**env, "ZEROFS_PASSWORD": "second password"},
        ).stdout
    )["added"]
    current = [
        slot["id"]
        for slot in json.loads(
            zerofs("key", "list", "--json", input=b"", env={**env, "ZEROFS_PASSWORD": "second password"}).stdout
        )
        if slot["id"] != added
    ]
    zerofs("key", "remove", *current, input=b"", env={**env, "ZEROFS_PASSWORD": "third password"})
    code, _, _ = _cat_imports(encrypted, runtime, {"ZEROFS_PASSWORD": "second password"})
    assert code == 12


def test_key_cache_off_keeps_nothing_and_a_bad_setting_is_refused(zerofs: Any, repo_path: Path, runtime: Path) -> None:
    env = {**PASSWORD, "XDG_RUNTIME_DIR": str(runtime)}
    zerofs("init", "--encrypt", input=b"", env={**env, "ZEROFS_KEY_CACHE": "off"})
    zerofs("write", "/a.txt", input=b"x", env={**env, "ZEROFS_KEY_CACHE": "off"})
    assert _entries(runtime) == []
    for bad in ("0", "-5", "15m", " 60", "on"):
        proc = zerofs("cat", "/a.txt", input=b"", env={**env, "ZEROFS_KEY_CACHE": bad}, expect=2)
        assert "ZEROFS_KEY_CACHE" in assert_one_error_line(proc)
    assert _entries(runtime) == []
    zerofs("cat", "/a.txt", input=b"", env={**env, "ZEROFS_KEY_CACHE": "600"})
    assert len(_entries(runtime)) == 1


def test_a_runtime_directory_open_to_others_gets_no_entry(zerofs: Any, repo_path: Path, runtime: Path) -> None:
    runtime.chmod(0o755)
    env = {**PASSWORD, "XDG_RUNTIME_DIR": str(runtime)}
    zerofs("init", "--encrypt", input=b"", env=env)
    zerofs("write", "/a.txt", input=b"x", env=env)
    assert not (runtime / CACHE_DIRECTORY).exists()


def test_init_alone_leaves_the_entry_of_its_first_password(zerofs: Any, repo_path: Path, runtime: Path) -> None:
    zerofs("init", "--encrypt", input=b"", env={**PASSWORD, "XDG_RUNTIME_DIR": str(runtime)})
    assert len(_entries(runtime)) == 1
    code, _, modules = _cat_imports(repo_path, runtime, PASSWORD)
    assert code == 3  # no /a.txt: the repository opened, with no KDF
    assert "argon2" not in modules
