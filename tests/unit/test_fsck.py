"""fsck on real LMDB repositories, damaged with tests/damage.py."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from tests import damage
from zerofs.history import head, iter_history
from zerofs.objects import Commit, DirEntry, DirNode, Kind
from zerofs.paths import StorePath
from zerofs.reachable import iter_reachable
from zerofs.repo import Repository, Staging
from zerofs.services import edit
from zerofs.services.fsck import (
    Finding,
    FindingKind,
    FsckProgress,
    FsckSummary,
    Severity,
    check,
)
from zerofs.services.importer import import_tree

P = StorePath.parse
RANDOM = random.Random(11).randbytes(300_000)  # several raw chunks
TEXT = b"".join(b"line %d\n" % i for i in range(30_000))


def run(repo_path: Path, **kwargs: bool) -> tuple[list[Finding], FsckSummary]:
    with Repository.open(repo_path, readonly=True) as repo:
        events = list(check(repo, **kwargs))
    summary = events[-1]
    assert isinstance(summary, FsckSummary)
    findings = [e for e in events if isinstance(e, Finding)]
    assert all(isinstance(e, Finding | FsckProgress) for e in events[:-1])
    return findings, summary


def shape(findings: list[Finding]) -> set[tuple[FindingKind, str | None]]:
    return {(f.kind, None if f.path is None else str(f.path)) for f in findings}


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """/data/report.txt, /data/r.bin and 5 snapshots of /data, one commit each."""
    path = tmp_path / "repo"
    with Repository.init(path, author="t@h") as repo:
        edit.write_file(repo, P("/data/r.bin"), io.BytesIO(RANDOM), parents=True)
        edit.write_file(repo, P("/data/report.txt"), io.BytesIO(TEXT))
        edit.mkdir(repo, P("/snapshots"))
        for n in range(5):
            edit.clone(repo, P("/data"), P(f"/snapshots/s{n}"))
    return path


def test_clean_repository_has_no_findings(stored: Path) -> None:
    for read_data in (False, True):
        findings, summary = run(stored, read_data=read_data)
        assert findings == []
        assert summary.n_errors == 0
        assert summary.n_commits == 9  # init, 2 writes, mkdir, 5 clones
        assert summary.is_read_data is read_data


def test_each_distinct_object_is_checked_once(stored: Path) -> None:
    """Nine commits and six copies of /data cost about one tree."""
    _, summary = run(stored, read_data=True)
    with Repository.open(stored, readonly=True) as repo:
        seen: set[bytes] = set()
        commits = list(iter_history(repo))
        for _, commit in commits:
            for _ in iter_reachable(repo, commit.root_id, seen=seen):
                pass
        stored = {object_id: info.stored_bytes for object_id, info in repo.iter_blobs()}
    assert summary.n_objects == len(seen) + len(commits)  # each reachable object once
    assert summary.read_bytes >= sum(stored[i] for i in seen)


def test_flipped_chunk_is_found_only_with_read_data(stored: Path) -> None:
    damage.flip_byte(stored, damage.chunk_ids_of(stored, "/data/r.bin")[1])
    findings, _ = run(stored)
    assert findings == []  # without --read-data, chunks are checked for presence only
    findings, summary = run(stored, read_data=True)
    assert {f.kind for f in findings} == {FindingKind.HASH_MISMATCH}
    paths = {str(f.path) for f in findings}
    assert paths == {"/data/r.bin", *(f"/snapshots/s{n}/r.bin" for n in range(5))}  # once per distinct path
    assert all(f.severity is Severity.ERROR for f in findings)
    assert summary.n_errors == len(findings) == 6


def test_finding_names_the_newest_commit(stored: Path) -> None:
    chunk = damage.chunk_ids_of(stored, "/data/r.bin")[0]
    damage.flip_byte(stored, chunk)
    with Repository.open(stored, readonly=True) as repo:
        head_id = head(repo)[0]
    findings, _ = run(stored, read_data=True)
    data = [f for f in findings if str(f.path) == "/data/r.bin"]
    assert len(data) == 1
    assert data[0].commit_id == head_id
    assert data[0].object_id == chunk


def run_faulty(repo_path: Path, object_id: bytes, fault: damage.Fault, **kwargs: bool) -> list[Finding]:
    """fsck through a store that damages ``object_id`` as it is read."""
    with damage.faulty(repo_path) as (repo, store):
        store.inject(object_id, fault)
        events = list(check(repo, **kwargs))
    return [e for e in events if isinstance(e, Finding)]


@pytest.mark.parametrize("fault", [damage.Fault.TRUNCATE, damage.Fault.FLIP, damage.Fault.UNREADABLE])
def test_damaged_file_node_read_through_a_faulty_store(stored: Path, fault: damage.Fault) -> None:
    node_id = damage.node_id_of(stored, "/data/report.txt")
    findings = run_faulty(stored, node_id, fault)
    assert shape(findings) == {(FindingKind.HASH_MISMATCH, p) for p in _copies("/report.txt")}
    assert {f.object_id for f in findings} == {node_id}


@pytest.mark.parametrize("read_data", [False, True])
def test_dropped_chunk_read_through_a_faulty_store(stored: Path, read_data: bool) -> None:
    chunk = damage.chunk_ids_of(stored, "/data/r.bin")[1]
    findings = run_faulty(stored, chunk, damage.Fault.DROP, read_data=read_data)
    assert shape(findings) == {(FindingKind.MISSING_OBJECT, p) for p in _copies("/r.bin")}


def test_flipped_chunk_through_a_faulty_store_needs_read_data(stored: Path) -> None:
    chunk = damage.chunk_ids_of(stored, "/data/r.bin")[1]
    assert run_faulty(stored, chunk, damage.Fault.FLIP) == []
    findings = run_faulty(stored, chunk, damage.Fault.FLIP, read_data=True)
    assert shape(findings) == {(FindingKind.HASH_MISMATCH, p) for p in _copies("/r.bin")}


def _copies(name: str) -> set[str]:
    """The store paths at which /data's file ``name`` is reached: /data and its five snapshots."""
    return {f"/data{name}"} | {f"/snapshots/s{n}{name}" for n in range(5)}


def test_pack_cut_inside_a_file_node(stored: Path) -> None:
    """A pack cut short on disk: the object there and every one after it in the pack are reported.

    Every change of this fixture ran in one process, so one pack holds them all: the cut
    takes the later commits with it, and fsck reports HEAD's commit, which it cannot read.
    """
    with Repository.open(stored, readonly=True) as repo:
        head_id = repo.head_id()
    damage.truncate(stored, damage.node_id_of(stored, "/data/report.txt"), 1)
    findings, summary = run(stored)
    assert (FindingKind.HASH_MISMATCH, None) in shape(findings)
    assert head_id in {f.object_id for f in findings}
    assert summary.n_errors >= 1
    storage = {f.kind for f in findings if f.object_id is None}
    assert FindingKind.PACK in storage  # the pack lost its trailer


def test_dropped_chunk_is_missing_even_without_read_data(stored: Path) -> None:
    damage.drop(stored, damage.chunk_ids_of(stored, "/data/report.txt")[0])
    findings, _ = run(stored)
    assert (FindingKind.MISSING_OBJECT, "/data/report.txt") in shape(findings)
    assert {f.kind for f in findings} == {FindingKind.MISSING_OBJECT}


def test_dropped_directory_names_the_directory(stored: Path) -> None:
    damage.drop(stored, damage.node_id_of(stored, "/data"))
    findings, _ = run(stored)
    assert (FindingKind.MISSING_OBJECT, "/data") in shape(findings)
    assert (FindingKind.MISSING_OBJECT, "/snapshots/s0") in shape(findings)


def test_damaged_commit_is_reported_without_a_path(stored: Path) -> None:
    with Repository.open(stored, readonly=True) as repo:
        parent = repo.resolve_commit(head(repo)[0]).parent_ids[0]
    damage.flip_byte(stored, parent)
    findings, summary = run(stored)
    assert [(f.kind, f.path, f.object_id) for f in findings] == [(FindingKind.HASH_MISMATCH, None, parent)]
    assert summary.n_commits == 1  # history beyond the damaged commit cannot be followed


def test_wrong_kind_and_size_mismatch(tmp_path: Path) -> None:
    """A node that hashes right but references a directory as a file, with a wrong size."""
    path = tmp_path / "repo"
    with Repository.init(path, author="t@h") as repo:
        edit.write_file(repo, P("/ok.txt"), io.BytesIO(b"hello"))
        staging = Staging(repo)
        ok = next(iter(repo.get_typed(repo.resolve_commit(head(repo)[0]).root_id, DirNode).entries))
        empty_dir = staging.put(DirNode())
        bad = DirEntry(b"bad", Kind.FILE, 0o100644, 0, 0, 0, 0, empty_dir)
        lying = ok.renamed(b"lying").pointing_at(ok.id, size_bytes=99)
        root = staging.put(DirNode((bad, lying, ok), 0, 3))
        commit_id = staging.put(Commit(root, (head(repo)[0],), 1, "t@h", "bad", {"op": "test"}))
        with repo.batch() as batch:
            staging.write_to(batch)
            batch.cas_ref(b"HEAD", head(repo)[0], commit_id)
    findings, _ = run(path)
    assert shape(findings) == {(FindingKind.WRONG_KIND, "/bad"), (FindingKind.SIZE_MISMATCH, "/lying")}


def test_retained_commits_limit_the_walk(stored: Path) -> None:
    with Repository.open(stored, readonly=True) as repo:
        head_id = head(repo)[0]
        events = list(check(repo, retained=[head_id]))
    summary = events[-1]
    assert isinstance(summary, FsckSummary)
    assert summary.n_commits == 9  # ancestors are always followed


def test_sharded_directory_damage_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    host = tmp_path / "host"
    host.mkdir()
    for n in range(300):  # more than DIR_FLAT_MAX: a sharded directory
        (host / f"f{n:03}.txt").write_bytes(b"file %d\n" % n)
    with Repository.init(path, author="t@h") as repo:
        import_tree(repo, host, P("/many"))
    findings, summary = run(path, read_data=True)
    assert findings == []
    assert summary.n_chunks == 300
    damage.drop(path, damage.chunk_ids_of(path, "/many/f123.txt")[0])
    findings, _ = run(path)
    assert shape(findings) == {(FindingKind.MISSING_OBJECT, "/many/f123.txt")}
