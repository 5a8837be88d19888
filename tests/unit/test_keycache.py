"""The host-local key cache (``zerofs.keycache``): private files only, expiry, and a repository opened without a KDF."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from zerofs.crypto.slots import CACHE_BYTES
from zerofs.errors import WrongPasswordError
from zerofs.keycache import CACHE_DIRECTORY, KeyCache
from zerofs.repo import Repository

REPO_ID = "0123456789abcdef0123456789abcdef"
ENTRY = bytes(range(256))[:CACHE_BYTES]


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


def test_an_entry_is_kept_private_and_read_back(runtime: Path) -> None:
    cache = KeyCache.open(str(runtime))
    assert cache is not None
    cache.store(REPO_ID, ENTRY)
    entry = runtime / CACHE_DIRECTORY / REPO_ID
    assert entry.stat().st_mode & 0o777 == 0o600
    assert (runtime / CACHE_DIRECTORY).stat().st_mode & 0o777 == 0o700
    assert cache.load(REPO_ID) == ENTRY
    assert cache.forget(REPO_ID) is True
    assert cache.load(REPO_ID) is None
    assert cache.forget(REPO_ID) is False


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701])
def test_a_runtime_directory_others_can_enter_holds_no_cache(runtime: Path, mode: int) -> None:
    runtime.chmod(mode)
    assert KeyCache.open(str(runtime)) is None
    assert not (runtime / CACHE_DIRECTORY).exists()


def test_a_missing_runtime_directory_or_a_symlink_holds_no_cache(runtime: Path, tmp_path: Path) -> None:
    assert KeyCache.open(str(tmp_path / "nowhere")) is None
    (tmp_path / "link").symlink_to(runtime)
    assert KeyCache.open(str(tmp_path / "link")) is None
    (runtime / CACHE_DIRECTORY).mkdir(mode=0o755)
    (runtime / CACHE_DIRECTORY).chmod(0o755)  # made by someone else, open to others: not used
    assert KeyCache.open(str(runtime)) is None


def test_an_entry_open_to_others_or_a_symlink_is_not_read(runtime: Path, tmp_path: Path) -> None:
    cache = KeyCache.open(str(runtime))
    assert cache is not None
    cache.store(REPO_ID, ENTRY)
    entry = runtime / CACHE_DIRECTORY / REPO_ID
    entry.chmod(0o644)
    assert cache.load(REPO_ID) is None
    entry.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(ENTRY)
    elsewhere.chmod(0o600)
    entry.symlink_to(elsewhere)
    assert cache.load(REPO_ID) is None


def test_an_entry_unused_for_its_lifetime_is_removed_and_a_used_one_lives_on(runtime: Path) -> None:
    cache = KeyCache.open(str(runtime), lifetime_s=60)
    assert cache is not None
    cache.store(REPO_ID, ENTRY)
    entry = runtime / CACHE_DIRECTORY / REPO_ID
    old = time.time() - 50
    os.utime(entry, (old, old))
    assert cache.load(REPO_ID) == ENTRY  # within its lifetime; the use extends it
    assert entry.stat().st_mtime > old + 40
    old = time.time() - 61
    os.utime(entry, (old, old))
    assert cache.load(REPO_ID) is None
    assert not entry.exists()


@pytest.mark.parametrize("repo_id", ["", "../escape", "ABCDEF", "0" * 65, "a/b"])
def test_an_id_that_is_not_a_plain_hex_name_is_never_a_file(runtime: Path, repo_id: str) -> None:
    cache = KeyCache.open(str(runtime))
    assert cache is not None
    cache.store(repo_id, ENTRY)
    assert cache.load(repo_id) is None
    assert os.listdir(runtime / CACHE_DIRECTORY) == []


def test_a_repository_opens_from_the_cache_only_with_its_password(runtime: Path, tmp_path: Path) -> None:
    path = tmp_path / "repo"
    Repository.init(path, author="t@h", password=b"right").close()
    cache = KeyCache.open(str(runtime))
    assert cache is not None
    with Repository.open(path, password=b"right", key_cache=cache) as first:
        repo_id = first.config.repo_id
    entry = cache.load(repo_id)
    assert entry is not None
    with Repository.open(path, password=b"right", key_cache=cache) as second:
        assert second.config.repo_id == repo_id
    # An entry never decides a password is right.
    with pytest.raises(WrongPasswordError):
        Repository.open(path, password=b"wrong", key_cache=cache)
    # A damaged entry only costs a KDF, and is replaced by a good one.
    cache.store(repo_id, bytes(len(entry)))
    Repository.open(path, password=b"right", key_cache=cache).close()
    replaced = cache.load(repo_id)
    assert replaced is not None
    assert replaced != bytes(len(entry))
