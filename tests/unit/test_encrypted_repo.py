"""An encrypted local repository through the Python API (issue #15): every service, its key slots, what it hides."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from zerofs.content import iter_chunk_ids
from zerofs.crypto.slots import KdfParams
from zerofs.errors import ConflictError, CorruptionError, Hint, NotFoundError, RepositoryError, WrongPasswordError
from zerofs.objects import Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.retention import Retention
from zerofs.services import browse, edit
from zerofs.services.fsck import Finding, FsckSummary, check
from zerofs.services.gc import collect_garbage
from zerofs.services.importer import import_tree
from zerofs.store.codec import CODEC_SEALED

P = StorePath.parse
FAST_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
"""Test-only KDF cost: the slots' format and checks are the same, the wait is not."""
PASSWORD = b"correct horse"
SECRET = random.Random(15).randbytes(200_000)
"""A known file's contents: random, so a plain repository stores it raw and it can be found there."""
SECRET_NAME = b"secret-name-7f3a9c1e5b2d4086"
BIG = random.Random(16).randbytes(2_000_000)
"""Several chunks: their boundaries depend on the chunker's key."""


def host_tree(root: Path) -> Path:
    """A small host tree: the secret file under a secret name, a big file, a text file, a symlink."""
    top = root / "host"
    (top / "sub").mkdir(parents=True)
    (top / os.fsdecode(SECRET_NAME)).write_bytes(SECRET)
    (top / "sub" / "big.bin").write_bytes(BIG)
    (top / "sub" / "notes.txt").write_bytes(b"hello encrypted world\n" * 100)
    (top / "link").symlink_to("sub/notes.txt")
    return top


def init(path: Path, password: bytes | None = PASSWORD) -> Repository:
    return Repository.init(path, author="t@h", password=password, kdf=FAST_KDF)


def read(repo: Repository, path: str) -> bytes:
    return b"".join(browse.read_file(repo, P(path)))


def fsck_findings(repo: Repository) -> list[Finding]:
    events = list(check(repo, read_data=True))
    assert isinstance(events[-1], FsckSummary)
    return [event for event in events if isinstance(event, Finding)]


def raw_files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            yield path, path.read_bytes()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock files' (LMDB's reader table changes with any open, a plain one's too)."""
    return {str(path.relative_to(root)): data for path, data in raw_files(root) if not path.name.endswith("lock")}


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    """An encrypted repository holding the host tree at /data."""
    path = tmp_path / "enc"
    with init(path) as repo:
        import_tree(repo, host_tree(tmp_path), P("/data"))
    return path


def test_services_work_on_an_encrypted_repository(tmp_path: Path) -> None:
    path = tmp_path / "enc"
    with init(path) as repo:
        assert repo.is_encrypted
        import_tree(repo, host_tree(tmp_path), P("/data"))
        edit.clone(repo, P("/data"), P("/snap"))
        edit.remove_path(repo, P("/data/sub"), recursive=True)
        assert read(repo, "/snap/sub/big.bin") == BIG
        assert {name for name, _ in browse.iter_names(repo, browse.resolve(repo, P("/data")).id)} == {
            SECRET_NAME,
            b"link",
        }
    with Repository.open(path, writer_lease=False, password=PASSWORD) as repo:
        result = collect_garbage(repo, Retention(keep_last=1))
        assert result.objects_deleted > 0
    with Repository.open(path, readonly=True, password=PASSWORD) as repo:
        assert read(repo, "/data/" + SECRET_NAME.decode()) == SECRET
        assert read(repo, "/snap/sub/big.bin") == BIG
        assert read(repo, "/snap/sub/notes.txt") == b"hello encrypted world\n" * 100
        assert fsck_findings(repo) == []


def test_no_content_or_name_reaches_the_disk_in_the_clear(tmp_path: Path, encrypted: Path) -> None:
    plain = tmp_path / "plain"
    with init(plain, password=None) as repo:
        import_tree(repo, host_tree(tmp_path / "again"), P("/data"))
    window = SECRET[100_000:100_064]

    def found(root: Path, needle: bytes) -> bool:
        return any(needle in data for _, data in raw_files(root))

    assert found(plain, window)  # the check can fail: a plain repository does hold both in the clear
    assert found(plain, SECRET_NAME)
    assert not found(encrypted, window)
    assert not found(encrypted, SECRET_NAME)
    assert not found(encrypted, b"hello encrypted world")


def test_ids_differ_from_a_plain_repository_and_are_keyed_per_repository(tmp_path: Path) -> None:
    heads = {}
    for name, password in (("plain", None), ("enc1", PASSWORD), ("enc2", PASSWORD)):
        with init(tmp_path / name, password) as repo:
            import_tree(repo, host_tree(tmp_path / f"{name}-host"), P("/data"))
            entry = browse.resolve(repo, P("/data/sub/big.bin"))
            sizes = [size for _, size in iter_chunk_ids(repo, repo.get_file(entry.id))]
            heads[name] = (browse.resolve(repo, P("/data")).id, {i for i, _ in repo.iter_blobs()}, sizes)
    plain_root, plain_ids, plain_sizes = heads["plain"]
    for name in ("enc1", "enc2"):
        root, ids, sizes = heads[name]
        assert root != plain_root
        assert not ids & plain_ids
        assert sum(sizes) == sum(plain_sizes) == len(BIG)
        assert sizes != plain_sizes  # the keyed chunker cuts elsewhere
    assert not heads["enc1"][1] & heads["enc2"][1]  # each repository has its own key


def test_dedup_within_an_encrypted_repository(encrypted: Path, tmp_path: Path) -> None:
    with Repository.open(encrypted, password=PASSWORD) as repo:

        def chunks() -> set[bytes]:
            return {i for i, info in repo.iter_blobs() if info.kind is Kind.CHUNK}

        before = chunks()
        import_tree(repo, host_tree(tmp_path / "copy"), P("/copy"))
        assert chunks() == before
        with open(tmp_path / "copy" / "host" / "sub" / "big.bin", "rb") as reader:
            edit.write_file(repo, P("/one-more"), reader)
        assert chunks() == before


def test_wrong_password_changes_nothing(encrypted: Path) -> None:
    before = snapshot(encrypted)
    with pytest.raises(WrongPasswordError):
        Repository.open(encrypted, password=b"not it")
    with pytest.raises(WrongPasswordError):
        Repository.rebuild_index(encrypted, password=b"not it")
    assert snapshot(encrypted) == before


def test_no_password_is_a_clear_error(encrypted: Path) -> None:
    before = snapshot(encrypted)
    with pytest.raises(RepositoryError, match="is encrypted: it needs a password") as caught:
        Repository.open(encrypted, readonly=True)
    assert caught.value.hint is Hint.PASSWORD
    with pytest.raises(RepositoryError, match="needs a password"):
        Repository.rebuild_index(encrypted)
    assert snapshot(encrypted) == before


def test_config_records_encryption_and_a_plain_config_does_not(tmp_path: Path, encrypted: Path) -> None:
    with init(tmp_path / "plain", password=None) as repo:
        assert not repo.is_encrypted
    plain = json.loads((tmp_path / "plain" / "config").read_bytes().rpartition(b"\nblake3 ")[0])
    assert plain["format_version"] == 3
    assert "encryption" not in plain
    assert not (tmp_path / "plain" / "keys").exists()
    config = json.loads((encrypted / "config").read_bytes().rpartition(b"\nblake3 ")[0])
    assert config["format_version"] == 4
    assert config["encryption"] == {"version": 1, "chunker": "pyfastcdc-gear-xor-v1"}
    slots = os.listdir(encrypted / "keys")
    assert len(slots) == 1
    assert (encrypted / "keys" / slots[0]).stat().st_size == 102


def test_key_slots_add_list_remove_and_change(encrypted: Path) -> None:
    with Repository.open(encrypted, password=PASSWORD) as repo:
        [first] = repo.list_keys()
        assert first.is_current
        second = repo.add_key(PASSWORD, b"second", FAST_KDF)
        assert {k.slot_id for k in repo.list_keys()} == {first.slot_id, second}
        with pytest.raises(WrongPasswordError):
            repo.add_key(b"not it", b"third", FAST_KDF)
        with pytest.raises(NotFoundError):
            repo.remove_key("00" * 8, PASSWORD)
        repo.remove_key(first.slot_id, b"second")
        with pytest.raises(ConflictError, match="last one"):
            repo.remove_key(second, b"second")
    with pytest.raises(WrongPasswordError):  # the removed slot's password opens nothing any more
        Repository.open(encrypted, password=PASSWORD)
    with Repository.open(encrypted, password=b"second") as repo:
        third = repo.change_password(b"second", b"third", FAST_KDF)
        assert [(k.slot_id, k.is_current) for k in repo.list_keys()] == [(third, True)]
    with pytest.raises(WrongPasswordError):
        Repository.open(encrypted, password=b"second")
    with Repository.open(encrypted, readonly=True, password=b"third") as repo:
        assert read(repo, "/data/sub/big.bin") == BIG


def test_key_operations_refused_on_a_plain_repository(tmp_path: Path) -> None:
    with init(tmp_path / "plain", password=None) as repo:
        with pytest.raises(RepositoryError, match="not encrypted"):
            repo.list_keys()
        with pytest.raises(RepositoryError, match="not encrypted"):
            repo.add_key(b"a", b"b", FAST_KDF)


def test_a_truncated_key_slot_is_detected(encrypted: Path) -> None:
    [slot] = (encrypted / "keys").iterdir()
    with Repository.open(encrypted, password=PASSWORD) as repo:
        spare = repo.add_key(PASSWORD, b"spare", FAST_KDF)
    slot.write_bytes(slot.read_bytes()[:-1])
    with pytest.raises(WrongPasswordError):  # its password is lost with it...
        Repository.open(encrypted, password=PASSWORD)
    with Repository.open(encrypted, readonly=True, password=b"spare") as repo:  # ...the other slot still opens
        assert [k.slot_id for k in repo.list_keys()] == [spare]
    (encrypted / "keys" / spare).write_bytes(b"")
    with pytest.raises(CorruptionError, match=r"no readable key slot \(2 damaged\)"):
        Repository.open(encrypted, password=b"spare")


def test_rebuild_index_with_the_password(encrypted: Path) -> None:
    result = Repository.rebuild_index(encrypted, password=PASSWORD)
    assert result.n_blobs > 0
    with Repository.open(encrypted, readonly=True, password=PASSWORD) as repo:
        assert read(repo, "/data/sub/big.bin") == BIG
        assert fsck_findings(repo) == []


def test_a_chunk_record_made_with_its_id_comes_sealed_and_reads_back(tmp_path: Path) -> None:
    """``chunk_record(data, id)``: sealed where it is made (an import's worker threads), stored as it is."""
    data = random.Random(17).randbytes(100_000)
    with init(tmp_path / "enc") as repo:
        chunk_id = repo.chunk_id(data)
        record = repo.chunk_record(data, chunk_id)
        assert record.codec == CODEC_SEALED  # the store keeps these bytes as they are
        assert data not in bytes(record.payload)
        with repo.batch() as batch:
            assert batch.put(chunk_id, record)
        assert bytes(repo.read_record(chunk_id)[1]) == data
    with Repository.init(tmp_path / "plain", author="t@h") as plain:
        plain_id = plain.chunk_id(data)
        assert plain.chunk_record(data, plain_id) == plain.chunk_record(data)  # a plain repository seals nothing
