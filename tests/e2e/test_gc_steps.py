"""gc's sweep between two of its locked steps: whatever a writer can still reuse by id is whole.

gc forgets garbage in steps and writers run between them. A writer that
finds a garbage object still indexed (the host-file cache of an import, a
clone of an old revision, a push asking ``has``) builds on it; gc's next
step then keeps it. These tests run a real gc in this process with small
steps (``step_objects``) and real writers (CLI processes) between them,
through gc's own ``on_progress`` seam, which it calls outside its lock.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.conftest import repo_secrets, run_zerofs
from tests.damage import chunk_ids_of, node_id_of
from zerofs.objects import Kind, decode, iter_child_ids
from zerofs.repo import Repository
from zerofs.retention import Retention
from zerofs.services.gc import collect_garbage


def _fsck_clean(repo_path: Path) -> None:
    report = json.loads(run_zerofs("fsck", "--read-data", "--json", repo=repo_path, expect=None).stdout)
    assert report["findings"] == [], report["findings"]


def test_an_import_reusing_a_garbage_file_node_between_two_steps_loses_nothing(cli_repo: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    data = random.Random(13).randbytes(600_000)  # a file node over several chunks
    (host / "big").write_bytes(data)
    run_zerofs("import", str(host), "/a", repo=cli_repo)
    file_id = node_id_of(cli_repo, "/a/big")
    chunks = chunk_ids_of(cli_repo, "/a/big")
    # The file node sorts after one of its chunks: in id order, that chunk is forgotten first.
    assert len(chunks) > 1
    assert min(chunks) < file_id
    run_zerofs("rm", "-r", "/a", repo=cli_repo)  # the file node and its chunks are garbage now
    reused: list[bool] = []
    with Repository.open(cli_repo, writer_lease=False, **repo_secrets()) as repo:

        def between_steps(phase: str, _count: int) -> None:
            if phase == "deleted" and not reused and not all(repo.has(chunk) for chunk in chunks):
                # The host file is unchanged: the import reuses the file node if it is still indexed.
                run_zerofs("import", str(host), "/b", repo=cli_repo)
                reused.append(repo.has(file_id))

        collect_garbage(repo, Retention(keep_last=1), on_progress=between_steps, step_objects=1)
    assert reused, "no step forgot a chunk of the file"
    _fsck_clean(cli_repo)
    assert run_zerofs("cat", "/b/big", repo=cli_repo).stdout == data


def _dangling(repo: Repository) -> list[tuple[str, str]]:
    """(referrer, child) for every indexed node that references an object no longer indexed.

    Parents of commits are not counted: a kept commit's parent that gc cut is
    garbage, and history follows the graft table instead.
    """
    found = []
    for object_id, info in repo.iter_blobs():
        if info.kind in (Kind.FILE, Kind.CHUNKLIST, Kind.DIR, Kind.COMMIT):
            node = decode(*repo.get_record_body(object_id), object_id.hex())
            children = [c for kind, c in iter_child_ids(node) if kind is not Kind.COMMIT]
            found += [(object_id.hex(), c.hex()) for c in children if not repo.has(c)]
    return found


def test_between_any_two_steps_every_indexed_object_references_only_indexed_objects(
    cli_repo: Path, tmp_path: Path
) -> None:
    rng = random.Random(7)
    host = tmp_path / "host"
    for d in range(4):
        (host / f"d{d}" / "sub").mkdir(parents=True)
        for f in range(3):
            (host / f"d{d}" / f"f{f}").write_bytes(rng.randbytes(rng.choice([100, 200_000])))
            (host / f"d{d}" / "sub" / f"g{f}").write_bytes(rng.randbytes(300))
    (host / "link").symlink_to("d0/f0")
    for n in range(3):  # three versions of one tree, each with other contents in one file
        (host / f"d{n}" / "f0").write_bytes(rng.randbytes(150_000))
        run_zerofs("import", str(host), f"/t{n}", repo=cli_repo)
    for n in range(2):  # garbage shares much with the tree kept
        run_zerofs("rm", "-r", f"/t{n}", repo=cli_repo)
    boundaries: list[list[tuple[str, str]]] = []
    with Repository.open(cli_repo, writer_lease=False, **repo_secrets()) as repo:

        def between_steps(phase: str, _count: int) -> None:
            if phase == "deleted":
                boundaries.append(_dangling(repo))

        result = collect_garbage(repo, Retention(keep_last=1), on_progress=between_steps, step_objects=1)
    assert result.objects_deleted > 10
    assert len(boundaries) >= result.objects_deleted
    assert [found for found in boundaries if found] == []
    _fsck_clean(cli_repo)
