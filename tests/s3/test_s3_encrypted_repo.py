"""An encrypted S3 repository through the Python API (issue #15), on the real SeaweedFS.

Each "host" is a handle with its own cache directory; the bucket is the only
thing two hosts share. What the bucket holds is checked by listing and
reading every object under the repository's prefix.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.s3.conftest import fast_settings
from tests.s3.faultproxy import FaultProxy
from tests.s3.hosts import Host
from tests.s3.seaweed import SeaweedServer
from tests.unit.test_encrypted_repo import BIG, FAST_KDF, PASSWORD, SECRET, SECRET_NAME, fsck_findings, host_tree, read
from zerofs.crypto.slots import WrongPasswordError
from zerofs.errors import ConflictError, Hint, NotFoundError, RepositoryError
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.retention import Retention
from zerofs.services import edit
from zerofs.services.gc import collect_garbage
from zerofs.services.importer import import_tree
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.s3config import S3Settings, parse_s3_url
from zerofs.store.s3store import decode_config_file

P = StorePath.parse


def init(url: str, settings: S3Settings, cache: Path, password: bytes | None = PASSWORD) -> Repository:
    return Repository.init(
        url, author="t@h", password=password, kdf=FAST_KDF, s3_settings=settings, cache_dir=str(cache), gc_grace_s=1
    )


def open_repo(
    url: str, settings: S3Settings, cache: Path, password: bytes | None = PASSWORD, **options: bool
) -> Repository:
    return Repository.open(url, s3_settings=settings, cache_dir=str(cache), password=password, **options)


def bucket_contents(url: str, settings: S3Settings) -> dict[str, bytes]:
    """Every object under the repository's prefix and its bytes."""
    with S3Objects(parse_s3_url(url), settings) as objects:
        contents = {}
        for info in objects.list(""):
            found = objects.get(info.key)
            assert found is not None
            contents[info.key] = found.data
        return contents


@pytest.fixture
def encrypted(url: str, s3_settings: S3Settings, tmp_path: Path) -> str:
    """An encrypted S3 repository holding the host tree at /data (written by host a)."""
    with init(url, s3_settings, tmp_path / "cache-a") as repo:
        import_tree(repo, host_tree(tmp_path), P("/data"))
    return url


def test_import_clone_gc_fsck_and_a_second_host_on_an_encrypted_s3_repository(
    url: str, s3_settings: S3Settings, tmp_path: Path
) -> None:
    with init(url, s3_settings, tmp_path / "cache-a") as repo:
        assert repo.is_encrypted
        import_tree(repo, host_tree(tmp_path), P("/data"))
        edit.clone(repo, P("/data"), P("/snap"))
        edit.remove_path(repo, P("/data/sub"), recursive=True)
        assert read(repo, "/snap/sub/big.bin") == BIG
    contents = bucket_contents(url, s3_settings)
    [slot_key] = [key for key in contents if key.startswith("keys/")]
    assert len(contents[slot_key]) == 102
    config = json.loads(decode_config_file(contents["config"]) or b"")
    assert config["format_version"] == 4
    assert config["encryption"] == {"version": 1, "chunker": "pyfastcdc-gear-xor-v1"}
    with open_repo(url, s3_settings, tmp_path / "cache-b", readonly=True) as other:  # reads the index from the bucket
        assert read(other, "/data/" + SECRET_NAME.decode()) == SECRET
    with open_repo(url, s3_settings, tmp_path / "cache-a", writer_lease=False) as repo:
        result = collect_garbage(repo, Retention(keep_last=1))
        assert result.objects_deleted > 0
    for cache in ("cache-a", "cache-b", "cache-c"):  # b placed blobs in packs gc deleted; c starts empty
        with open_repo(url, s3_settings, tmp_path / cache, readonly=True) as repo:
            assert read(repo, "/snap/sub/big.bin") == BIG
            assert read(repo, "/data/" + SECRET_NAME.decode()) == SECRET
            assert fsck_findings(repo) == []
    with open_repo(url, s3_settings, tmp_path / "cache-d") as repo:
        rebuilt = repo.rebuild_shared_index()  # reads every pack with the keys
        assert rebuilt.n_blobs > 0
        assert rebuilt.problems == ()
        assert read(repo, "/snap/sub/notes.txt") == b"hello encrypted world\n" * 100


def test_wrong_or_no_password_changes_nothing_in_the_bucket(
    encrypted: str, s3_settings: S3Settings, tmp_path: Path
) -> None:
    before = bucket_contents(encrypted, s3_settings)
    for cache in ("cache-a", "cache-new"):  # the host that knows the config, and one that does not
        with pytest.raises(WrongPasswordError):
            open_repo(encrypted, s3_settings, tmp_path / cache, password=b"not it")
        with pytest.raises(RepositoryError, match="is encrypted: it needs a password") as caught:
            open_repo(encrypted, s3_settings, tmp_path / cache, password=None, readonly=True)
        assert caught.value.hint is Hint.PASSWORD
    assert bucket_contents(encrypted, s3_settings) == before


def test_no_content_or_name_of_a_file_reaches_the_bucket_in_the_clear(
    encrypted: str, bucket: str, s3_settings: S3Settings, tmp_path: Path
) -> None:
    plain_url = f"s3://{bucket}/plain"
    with init(plain_url, s3_settings, tmp_path / "cache-p", password=None) as repo:
        import_tree(repo, host_tree(tmp_path / "again"), P("/data"))
    window = SECRET[100_000:100_064]

    def found(url: str, needle: bytes) -> bool:
        return any(needle in data for data in bucket_contents(url, s3_settings).values())

    assert found(plain_url, window)  # the check can fail: a plain repository holds both in the clear
    assert found(plain_url, SECRET_NAME)
    for needle in (window, SECRET_NAME, b"hello encrypted world", b"big.bin", b"notes.txt"):
        assert not found(encrypted, needle), needle


def test_key_slots_added_and_removed_across_two_hosts(encrypted: str, s3_settings: S3Settings, tmp_path: Path) -> None:
    host_a, host_b = tmp_path / "cache-a", tmp_path / "cache-b"
    with open_repo(encrypted, s3_settings, host_a) as repo:
        [first] = repo.list_keys()
        assert first.is_current
        second = repo.add_key(PASSWORD, b"second", FAST_KDF)
        with pytest.raises(WrongPasswordError):
            repo.add_key(b"not it", b"third", FAST_KDF)
    assert sorted(key for key in bucket_contents(encrypted, s3_settings) if key.startswith("keys/")) == sorted(
        f"keys/{slot_id}" for slot_id in (first.slot_id, second)
    )
    with open_repo(encrypted, s3_settings, host_b, password=b"second") as repo:
        assert [(k.slot_id, k.is_current) for k in repo.list_keys()] == sorted([(first.slot_id, False), (second, True)])
        with pytest.raises(NotFoundError):
            repo.remove_key("00" * 8, b"second")
        repo.remove_key(first.slot_id, b"second")
        with pytest.raises(ConflictError, match="last one"):
            repo.remove_key(second, b"second")
    for host in (host_a, host_b):  # the removed password opens nothing, on the host that used it too
        with pytest.raises(WrongPasswordError):
            open_repo(encrypted, s3_settings, host, readonly=True)
    with open_repo(encrypted, s3_settings, host_a, password=b"second") as repo:
        third = repo.change_password(b"second", b"third", FAST_KDF)
        assert [(k.slot_id, k.is_current) for k in repo.list_keys()] == [(third, True)]
    with pytest.raises(WrongPasswordError):
        open_repo(encrypted, s3_settings, host_b, password=b"second")
    with open_repo(encrypted, s3_settings, host_b, readonly=True, password=b"third") as repo:
        assert read(repo, "/data/sub/big.bin") == BIG
        assert fsck_findings(repo) == []
    assert [key for key in bucket_contents(encrypted, s3_settings) if key.startswith("keys/")] == [f"keys/{third}"]


def test_init_over_a_repository_leaves_no_key_slot_behind(
    encrypted: str, s3_settings: S3Settings, tmp_path: Path
) -> None:
    before = bucket_contents(encrypted, s3_settings)
    with pytest.raises(ConflictError, match="already exists"):
        init(encrypted, s3_settings, tmp_path / "cache-x", password=b"another")
    assert bucket_contents(encrypted, s3_settings) == before


def test_two_hosts_removing_the_last_two_slots_at_once_leave_one(
    encrypted: str, s3_settings: S3Settings, proxy: FaultProxy, tmp_path: Path
) -> None:
    slow = fast_settings(proxy.endpoint)
    with open_repo(encrypted, s3_settings, tmp_path / "cache-b") as repo:
        [first] = repo.list_keys()
        second = repo.add_key(PASSWORD, b"second", FAST_KDF)
    failures: list[BaseException] = []
    with (
        open_repo(encrypted, slow, tmp_path / "cache-a") as host_a,
        open_repo(encrypted, s3_settings, tmp_path / "cache-b", password=b"second") as host_b,
    ):
        proxy.seen.clear()
        proxy.delay_s = 0.5  # host a's requests are slow: its delete lands after host b's removal

        def remove_first() -> None:
            try:
                host_a.remove_key(first.slot_id, PASSWORD)
            except BaseException as exc:  # noqa: BLE001  # re-raised by the test below
                failures.append(exc)

        remover = threading.Thread(target=remove_first)
        remover.start()
        deadline = time.monotonic() + 60
        while not any(request.target.endswith("?delete") for request in proxy.seen) and time.monotonic() < deadline:
            time.sleep(0.01)
        host_b.remove_key(second, b"second")  # sees host a's slot still there: both deletes go ahead
        remover.join()
    assert len(failures) == 1
    assert isinstance(failures[0], ConflictError)
    assert "written again" in str(failures[0])
    slots = [key for key in bucket_contents(encrypted, s3_settings) if key.startswith("keys/")]
    assert len(slots) == 1
    assert slots[0] not in (f"keys/{first.slot_id}", f"keys/{second}")
    with open_repo(encrypted, s3_settings, tmp_path / "cache-c", readonly=True) as repo:  # host a's password
        assert read(repo, "/data/sub/big.bin") == BIG


@pytest.mark.parametrize("was_encrypted", [True, False], ids=["encrypted-then-plain", "plain-then-encrypted"])
def test_a_repository_replaced_by_one_encrypted_otherwise_is_opened_as_it_now_is(
    url: str, s3_settings: S3Settings, tmp_path: Path, was_encrypted: bool
) -> None:
    first, then = (PASSWORD, None) if was_encrypted else (None, PASSWORD)
    with init(url, s3_settings, tmp_path / "cache-a", password=first) as repo:  # host a keeps this config
        import_tree(repo, host_tree(tmp_path / "one"), P("/old"))
    with S3Objects(parse_s3_url(url), s3_settings) as objects:
        for info in list(objects.list("")):
            objects.delete(info.key)
    with init(url, s3_settings, tmp_path / "cache-b", password=then) as repo:
        import_tree(repo, host_tree(tmp_path / "two"), P("/new"))
    with open_repo(url, s3_settings, tmp_path / "cache-a", password=PASSWORD, readonly=True) as repo:
        assert repo.is_encrypted is (then is not None)
        assert read(repo, "/new/sub/big.bin") == BIG


def test_two_inits_at_once_leave_the_winners_slot_alone(
    url: str, s3_settings: S3Settings, proxy: FaultProxy, tmp_path: Path
) -> None:
    failures: list[BaseException] = []
    proxy.delay_s = 0.5  # host a is slow: host b's whole init lands while host a's slot is on its way

    def init_slowly() -> None:
        try:
            init(url, fast_settings(proxy.endpoint), tmp_path / "cache-a", password=b"loser").close()
        except BaseException as exc:  # noqa: BLE001  # re-raised by the test below
            failures.append(exc)

    loser = threading.Thread(target=init_slowly)
    loser.start()
    deadline = time.monotonic() + 60
    while not any(r.method == "PUT" and "/keys/" in r.target for r in proxy.seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    init(url, s3_settings, tmp_path / "cache-b").close()
    loser.join()
    assert len(failures) == 1
    assert isinstance(failures[0], ConflictError)
    assert "already exists" in str(failures[0])
    assert len([key for key in bucket_contents(url, s3_settings) if key.startswith("keys/")]) == 1
    with pytest.raises(WrongPasswordError):
        open_repo(url, s3_settings, tmp_path / "cache-c", password=b"loser")
    with open_repo(url, s3_settings, tmp_path / "cache-c", readonly=True) as repo:
        assert repo.is_encrypted


def test_the_command_line_on_an_encrypted_s3_repository(url: str, seaweed: SeaweedServer, tmp_path: Path) -> None:
    """init --encrypt s3://..., then two hosts use it with the password; a wrong or missing one is one line."""
    first = Host(url, seaweed.endpoint, tmp_path / "cache-a", ZEROFS_PASSWORD="correct horse")
    first.run("init", "--encrypt", url, repo=False)
    first.run("write", "/notes.txt", input=b"secret notes\n")
    first.run("clone", "/notes.txt", "/copy.txt")
    second = Host(url, seaweed.endpoint, tmp_path / "cache-b", ZEROFS_PASSWORD="correct horse")
    assert second.run("cat", "/copy.txt").stdout == b"secret notes\n"
    assert second.run("fsck").returncode == 0
    wrong = Host(url, seaweed.endpoint, tmp_path / "cache-c", ZEROFS_PASSWORD="battery staple")
    line = wrong.stderr("write", "/x", expect=12)
    assert len(line.splitlines()) == 1
    nobody = Host(url, seaweed.endpoint, tmp_path / "cache-d")
    assert len(nobody.stderr("ls", "/", expect=2).splitlines()) == 1
    assert second.run("ls", "/").stdout.split() == [b"copy.txt", b"notes.txt"]
