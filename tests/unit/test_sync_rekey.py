"""Push and pull between repositories that make ids differently (issue #15): re-made under the destination's keys."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.damage import flip_bit
from zerofs.content import iter_chunk_ids
from zerofs.crypto.slots import KdfParams
from zerofs.errors import CorruptionError
from zerofs.history import read_grafts
from zerofs.objects import Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.retention import Retention
from zerofs.services import browse, edit, sync
from zerofs.services.exporter import export_tree
from zerofs.services.fsck import Finding, FsckSummary, check
from zerofs.services.gc import collect_garbage
from zerofs.services.importer import import_tree
from zerofs.store.packfile import BLOB_HEADER

P = StorePath.parse
FAST_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
SOURCE_PASSWORD = b"source password"
DEST_PASSWORD = b"destination password"
BIG = random.Random(16).randbytes(2_000_000)
"""Several chunks, cut where the source's chunker cuts."""
DIRECTIONS = {
    "plain-to-encrypted": (None, DEST_PASSWORD),
    "encrypted-to-plain": (SOURCE_PASSWORD, None),
    "other-keys": (SOURCE_PASSWORD, DEST_PASSWORD),
}


def host_tree(root: Path) -> Path:
    """A host tree: a big file, small files, a symlink, and a directory large enough to be sharded."""
    top = root / "host"
    (top / "sub").mkdir(parents=True)
    (top / "many").mkdir()
    (top / "sub" / "big.bin").write_bytes(BIG)
    (top / "sub" / "notes.txt").write_bytes(b"hello re-encrypted world\n" * 100)
    (top / "link").symlink_to("sub/notes.txt")
    for number in range(300):
        (top / "many" / f"f{number}").write_bytes(b"%d\n" % number)
    return top


def open_repo(path: Path, password: bytes | None, **options: bool) -> Repository:
    return Repository.open(path, password=password, **options)


def make_source(tmp_path: Path, password: bytes | None) -> Path:
    """A repository with four commits: init, an import, a clone and a second import."""
    path = tmp_path / "source"
    with Repository.init(path, author="t@h", password=password, kdf=FAST_KDF) as repo:
        import_tree(repo, host_tree(tmp_path), P("/data"))
        edit.clone(repo, P("/data"), P("/snap"))
        import_tree(repo, host_tree(tmp_path / "again"), P("/data2"))
    return path


def make_dest(tmp_path: Path, password: bytes | None) -> Path:
    path = tmp_path / "dest"
    Repository.init(path, author="t@h", password=password, kdf=FAST_KDF).close()
    return path


def push(
    source_path: Path, source_password: bytes | None, dest_path: Path, dest_password: bytes | None, **options: bool
) -> sync.TransferResult:
    with (
        open_repo(source_path, source_password, readonly=True) as source,
        open_repo(dest_path, dest_password, writer_lease=False) as dest,
    ):
        return sync.transfer(source, dest, **options)


def history(path: Path, password: bytes | None) -> list[tuple[str, int, str, int]]:
    """Message, time, author and number of parents of each commit, newest first."""
    with open_repo(path, password, readonly=True) as repo:
        return [
            (entry.commit.message, entry.commit.time_ns, entry.commit.author, len(entry.parent_ids))
            for entry in browse.log(repo)
        ]


def exported(path: Path, password: bytes | None, target: Path) -> dict[str, bytes]:
    """Every file and symlink of HEAD, exported to the host: relative path -> bytes or link target."""
    with open_repo(path, password, readonly=True) as repo:
        export_tree(repo, P("/"), target)
    found: dict[str, bytes] = {}
    for directory, _, names in os.walk(target):
        for name in names:
            host = Path(directory, name)
            key = str(host.relative_to(target))
            found[key] = b"->" + os.fsencode(os.readlink(host)) if host.is_symlink() else host.read_bytes()
    return found


def fsck_findings(path: Path, password: bytes | None) -> list[Finding]:
    with open_repo(path, password, readonly=True) as repo:
        events = list(check(repo, read_data=True))
    assert isinstance(events[-1], FsckSummary)
    return [event for event in events if isinstance(event, Finding)]


def head_of(path: Path, password: bytes | None) -> bytes:
    with open_repo(path, password, readonly=True) as repo:
        return repo.head_id()


def import_one(path: Path, password: bytes | None, tmp_path: Path, name: str, data: bytes) -> None:
    host = tmp_path / f"one-{name}"
    host.write_bytes(data)
    with open_repo(path, password) as repo:
        import_tree(repo, host, P(f"/data/{name}"))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_push_re_makes_every_object_under_the_destination_keys(tmp_path: Path, direction: str) -> None:
    source_password, dest_password = DIRECTIONS[direction]
    source = make_source(tmp_path, source_password)
    dest = make_dest(tmp_path, dest_password)

    result = push(source, source_password, dest, dest_password)

    assert result.is_fast_forward
    assert not result.dry_run
    assert result.commits == 4  # the destination's own first commit is replaced, not kept
    assert result.dest_head_after == result.source_head_in_dest == head_of(dest, dest_password)
    assert result.source_head != result.dest_head_after  # other ids
    expected = exported(source, source_password, tmp_path / "out-source")
    assert expected["data/sub/big.bin"] == BIG
    assert exported(dest, dest_password, tmp_path / "out-dest") == expected
    assert history(dest, dest_password) == history(source, source_password)
    assert fsck_findings(dest, dest_password) == []
    with open_repo(dest, dest_password, readonly=True) as repo:
        assert repo.is_encrypted is (dest_password is not None)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_second_push_sends_only_the_new_objects(tmp_path: Path, direction: str) -> None:
    source_password, dest_password = DIRECTIONS[direction]
    source = make_source(tmp_path, source_password)
    dest = make_dest(tmp_path, dest_password)
    push(source, source_password, dest, dest_password)

    again = push(source, source_password, dest, dest_password)
    assert again.is_up_to_date
    assert (again.commits, again.objects) == (0, 0)

    import_one(source, source_password, tmp_path, "new.txt", b"one more file\n")
    dry = push(source, source_password, dest, dest_password, dry_run=True)
    second = push(source, source_password, dest, dest_password)

    assert (dry.commits, dry.objects) == (second.commits, second.objects) == (1, 4)  # chunk, /data, root, commit
    assert dry.stored_bytes == second.stored_bytes
    assert second.is_fast_forward
    assert exported(dest, dest_password, tmp_path / "out-dest") == exported(
        source, source_password, tmp_path / "out-source"
    )
    assert len(history(dest, dest_password)) == 5
    assert fsck_findings(dest, dest_password) == []


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = make_source(tmp_path, None)
    dest = make_dest(tmp_path, DEST_PASSWORD)
    head = head_of(dest, DEST_PASSWORD)
    files = sorted(path.name for path in dest.rglob("*"))

    dry = push(source, None, dest, DEST_PASSWORD, dry_run=True)

    assert dry.dry_run
    assert dry.commits == 4
    assert dry.objects > 300
    assert head_of(dest, DEST_PASSWORD) == head
    assert sorted(path.name for path in dest.rglob("*")) == files
    real = push(source, None, dest, DEST_PASSWORD)
    assert (real.commits, real.objects, real.stored_bytes) == (dry.commits, dry.objects, dry.stored_bytes)


def test_a_diverged_destination_is_refused_unless_forced(tmp_path: Path) -> None:
    source = make_source(tmp_path, SOURCE_PASSWORD)
    dest = make_dest(tmp_path, None)
    push(source, SOURCE_PASSWORD, dest, None)
    import_one(dest, None, tmp_path, "only-in-dest.txt", b"dest's own\n")
    import_one(source, SOURCE_PASSWORD, tmp_path, "only-in-source.txt", b"source's own\n")
    head = head_of(dest, None)

    with pytest.raises(sync.NotFastForwardError, match="not an ancestor"):
        push(source, SOURCE_PASSWORD, dest, None)
    assert head_of(dest, None) == head

    forced = push(source, SOURCE_PASSWORD, dest, None, force=True)
    assert not forced.is_fast_forward
    assert history(dest, None) == history(source, SOURCE_PASSWORD)


def test_history_cut_by_gc_arrives_as_the_source_has_it(tmp_path: Path) -> None:
    source = make_source(tmp_path, None)
    with open_repo(source, None, writer_lease=False) as repo:
        collect_garbage(repo, Retention(keep_last=2))
        assert read_grafts(repo)  # the oldest kept commit's parent was cut
    dest = make_dest(tmp_path, DEST_PASSWORD)

    push(source, None, dest, DEST_PASSWORD)

    assert history(dest, DEST_PASSWORD) == history(source, None)
    assert len(history(dest, DEST_PASSWORD)) == 2
    with open_repo(dest, DEST_PASSWORD, readonly=True) as repo:
        assert read_grafts(repo) == {}  # the re-made commits carry the cut parents themselves
    assert fsck_findings(dest, DEST_PASSWORD) == []


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("is_fresh", [True, False], ids=["fresh", "second-push"])
def test_a_damaged_source_object_fails_the_push_and_moves_no_ref(
    tmp_path: Path, direction: str, is_fresh: bool
) -> None:
    source_password, dest_password = DIRECTIONS[direction]
    source = make_source(tmp_path, source_password)
    dest = make_dest(tmp_path, dest_password)
    if not is_fresh:
        push(source, source_password, dest, dest_password)
    payload = random.Random(7).randbytes(100_000)
    import_one(source, source_password, tmp_path, "damaged.bin", payload)
    with open_repo(source, source_password, readonly=True) as repo:
        entry = browse.resolve(repo, P("/data/damaged.bin"))
        chunk_id = next(iter_chunk_ids(repo, repo.get_file(entry.id)))[0]
        info = repo.blob_info(chunk_id)
        assert info is not None
        assert info.kind is Kind.CHUNK
        place = repo.locate(chunk_id)
    assert place is not None
    pack, start, length = place
    flip_bit(pack, start + BLOB_HEADER.size + (length - BLOB_HEADER.size) // 2)
    head = head_of(dest, dest_password)

    with pytest.raises(CorruptionError):
        push(source, source_password, dest, dest_password)

    assert head_of(dest, dest_password) == head
    assert fsck_findings(dest, dest_password) == []
