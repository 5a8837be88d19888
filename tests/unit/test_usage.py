"""du and stats on real LMDB repositories."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from zerofs.errors import NotFoundError
from zerofs.history import head, iter_history
from zerofs.objects import Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.services import edit
from zerofs.services.importer import import_tree
from zerofs.services.usage import disk_usage, repository_stats

P = StorePath.parse
RANDOM = random.Random(7).randbytes(200_000)  # incompressible, a few chunks
TEXT = b"".join(b"line %d of a text file\n" % i for i in range(20_000))  # compresses well


def write(repo: Repository, path: str, data: bytes) -> None:
    edit.write_file(repo, P(path), io.BytesIO(data), parents=True)


def du(repo: Repository, path: str, **kwargs: object) -> tuple[int, int, int]:
    (usage,) = disk_usage(repo, [P(path)], **kwargs)  # type: ignore[arg-type]
    return usage.apparent_bytes, usage.stored_bytes, usage.unique_bytes


def test_du_of_a_file_counts_its_records(repo: Repository) -> None:
    write(repo, "/data/r.bin", RANDOM)
    apparent, stored, unique = du(repo, "/data/r.bin")
    assert apparent == len(RANDOM)
    assert len(RANDOM) < stored < len(RANDOM) + 2_000  # raw chunks plus a file node
    assert unique == stored  # added by the newest commit: deleting it frees it all


def test_du_clone_shares_everything_with_its_source(repo: Repository) -> None:
    write(repo, "/data/r.bin", RANDOM)
    write(repo, "/data/t.txt", TEXT)
    edit.clone(repo, P("/data"), P("/snap"))
    source, clone = du(repo, "/data"), du(repo, "/snap")
    assert source == clone  # same node: same apparent and stored bytes
    assert source[2] == clone[2] == 0  # each is held by the other
    root_apparent, root_stored, _ = du(repo, "/")
    assert root_apparent == 2 * source[0]  # apparent counts every path
    assert root_stored < source[1] + 1_000  # stored counts each object once


def test_du_after_removing_the_source_history_still_holds_it(repo: Repository) -> None:
    """Unique bytes are what gc would free; by default all history is retained.

    After ``rm /data`` the clone is the only copy in HEAD, but the commits
    before the rm still hold /data, so deleting the clone frees nothing. Only
    when the retained commits are just HEAD is the clone's content unique.
    """
    write(repo, "/data/r.bin", RANDOM)
    edit.clone(repo, P("/data"), P("/snap"))
    edit.remove_path(repo, P("/data"), recursive=True)
    apparent, stored, unique = du(repo, "/snap")
    assert apparent == len(RANDOM)
    assert unique == 0
    head_id = head(repo)[0]
    assert du(repo, "/snap", retained=[head_id])[2] == stored


def test_du_content_added_by_an_older_commit_is_retained_by_history(repo: Repository) -> None:
    write(repo, "/a.bin", RANDOM)
    assert du(repo, "/a.bin")[2] > 0
    edit.mkdir(repo, P("/other"))
    assert du(repo, "/a.bin")[2] == 0  # the commit before mkdir holds /a.bin too


def test_du_duplicate_content_is_not_unique_to_either_file(repo: Repository) -> None:
    write(repo, "/x/one.bin", RANDOM)
    write(repo, "/x/two.bin", RANDOM)
    head_id = head(repo)[0]
    _, stored, unique = du(repo, "/x/one.bin", retained=[head_id])
    assert stored > len(RANDOM)
    assert unique == 0  # two.bin still needs every chunk
    assert du(repo, "/x", retained=[head_id])[2] > len(RANDOM)


def test_du_root_and_several_paths(repo: Repository) -> None:
    write(repo, "/a/r.bin", RANDOM)
    write(repo, "/b/t.txt", TEXT)
    rows = list(disk_usage(repo, [P("/a"), P("/b/t.txt"), P("/")]))
    assert [str(r.path) for r in rows] == ["/a", "/b/t.txt", "/"]
    assert rows[0].kind is Kind.DIR
    assert rows[1].kind is Kind.FILE
    assert rows[2].apparent_bytes == len(RANDOM) + len(TEXT)
    assert rows[1].stored_bytes < len(TEXT) // 4  # compressed


def test_du_of_a_missing_path(repo: Repository) -> None:
    with pytest.raises(NotFoundError):
        list(disk_usage(repo, [P("/nope")]))


def test_du_reads_but_never_writes(repo: Repository) -> None:
    write(repo, "/a/r.bin", RANDOM)
    before = [i for i, _ in repo.iter_blobs()]
    list(disk_usage(repo, [P("/a"), P("/")]))
    assert [i for i, _ in repo.iter_blobs()] == before


def test_stats_ratios_with_duplicate_files(repo: Repository, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    for n in range(4):
        (host / f"copy{n}.txt").write_bytes(TEXT)  # four copies of one compressible file
    (host / "r.bin").write_bytes(RANDOM)
    import_tree(repo, host, P("/data"), parents=True)
    stats = repository_stats(repo)
    assert stats.logical_bytes == 4 * len(TEXT) + len(RANDOM)
    assert stats.content_bytes == len(TEXT) + len(RANDOM)  # each chunk once
    assert stats.dedup_ratio == pytest.approx(stats.logical_bytes / stats.content_bytes)
    assert stats.dedup_ratio > 2.5
    assert stats.compression_ratio is not None
    assert stats.compression_ratio > 1.1
    assert stats.content_stored_bytes < stats.content_bytes
    assert stats.n_commits == len(list(iter_history(repo))) == 2  # init, import
    counts = stats.objects_by_kind
    assert counts["commit"] == 2
    assert counts["file"] <= 2  # one FILE node for the four copies and one for r.bin, or none for one chunk each
    assert counts["chunk"] >= 2
    assert stats.n_objects == sum(1 for _ in repo.iter_blobs())
    assert stats.stored_bytes == sum(info.stored_bytes for _, info in repo.iter_blobs())
    assert stats.reachable_stored_bytes <= stats.stored_bytes
    assert stats.disk_bytes is not None
    assert stats.disk_bytes >= stats.stored_bytes
    assert stats.n_packs >= 1
    assert stats.stored_bytes < stats.pack_bytes <= stats.disk_bytes
    assert 0 < stats.index_bytes < stats.disk_bytes


def test_stats_of_an_empty_repository(repo: Repository) -> None:
    stats = repository_stats(repo)
    assert stats.logical_bytes == stats.content_bytes == 0
    assert stats.dedup_ratio is None
    assert stats.compression_ratio is None
    assert stats.n_commits == 1
    assert stats.objects_by_kind["dir"] == 1
    assert stats.objects_by_kind["commit"] == 1


def test_stats_content_counts_history_not_only_head(repo: Repository) -> None:
    write(repo, "/a.bin", RANDOM)
    edit.remove_path(repo, P("/a.bin"))
    stats = repository_stats(repo)
    assert stats.logical_bytes == 0
    assert stats.content_bytes == len(RANDOM)  # history still holds it
