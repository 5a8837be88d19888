"""gc across hosts on an S3 repository (store/s3gc.py), on the real SeaweedFS the tests start.

Each "host" is a process with its own cache directory; the repositories are
made with a short gc grace period so that a gc's wait takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.mountutil import force_unmount, require_fuse
from tests.s3.hosts import Host, assert_exports, make_tree, tree_listing
from zerofs.errors import ConflictError
from zerofs.objects import Commit, DirNode
from zerofs.repo import Repository
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.s3config import S3Settings, parse_s3_url
from zerofs.store.s3gc import Plan, decode_plan, encode_plan
from zerofs.store.s3store import PACKS_PREFIX


@pytest.fixture
def objects(url: str, s3_settings: S3Settings) -> S3Objects:
    """A client on the repository's prefix, to look at (and damage) the bucket directly."""
    return S3Objects(parse_s3_url(url), s3_settings)


def packs(objects: S3Objects) -> set[str]:
    """The pack keys in the bucket."""
    return {info.key for info in objects.list(PACKS_PREFIX)}


def bucket_bytes(objects: S3Objects) -> int:
    """Bytes of every object under the repository's prefix."""
    return sum(info.size_bytes for info in objects.list(""))


def gc(host: Host, *args: str, expect: int = 0) -> dict[str, object]:
    """Run ``zerofs gc --json ARGS`` and return its report."""
    result: dict[str, object] = json.loads(host.run("gc", "--json", *args, expect=expect).stdout)
    return result


def wait_for_plan(objects: S3Objects, timeout_s: float = 60.0) -> str:
    """The key of a gc plan without its done marker, once one is published."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        keys = {info.key for info in objects.list("gc/plans")}
        pending = [key for key in keys if key.endswith(".plan") and key[: -len(".plan")] + ".done" not in keys]
        if pending:
            return pending[0]
        time.sleep(0.05)
    raise AssertionError("no gc plan was published")


def test_a_plan_survives_its_encoding_and_a_damaged_one_is_refused() -> None:
    plan = Plan(frozenset({b"p" * 16, b"q" * 16}), frozenset({os.urandom(32) for _ in range(100)}))
    data = encode_plan(plan)
    assert decode_plan(data, "x") == plan
    damaged = bytearray(data)
    damaged[-3] ^= 0x40
    with pytest.raises(Exception, match="damaged"):
        decode_plan(bytes(damaged), "x")


def test_gc_gives_back_what_no_kept_commit_reaches_and_keeps_the_rest(
    host: Host, other_host: Host, objects: S3Objects, tmp_path: Path
) -> None:
    kept = make_tree(tmp_path / "kept")
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "random.bin").write_bytes(os.urandom(6 << 20))
    host.run("import", str(kept), "/kept")
    host.run("import", str(gone), "/gone")
    other_host.run("ls", "-R", "/")  # the other host's cache now places the blobs of /gone
    host.run("rm", "-r", "/gone")
    before = bucket_bytes(objects)
    report = gc(host, "--keep-last", "1")
    assert report["commits_kept"] == 1
    assert isinstance(report["packs_deleted"], int)
    assert report["packs_deleted"] >= 1
    assert isinstance(report["objects_deleted"], int)
    assert report["objects_deleted"] >= 1
    assert before - bucket_bytes(objects) > 5 << 20
    assert objects.head("gc/lock") is None
    for reader in (host, other_host):  # the other host's cache placed blobs in deleted packs
        assert_exports(reader, "/kept", kept, tmp_path)
        reader.run("fsck", "--read-data")
    # the other host dedups against what is there, not what its cache knew
    other_host.run("import", str(gone), "/again")
    assert other_host.run("cat", "/again/random.bin").stdout == (gone / "random.bin").read_bytes()
    host.run("fsck", "--read-data")


def test_a_clone_of_what_gc_is_deleting_made_during_its_grace_period_survives(
    host: Host, objects: S3Objects, tmp_path: Path
) -> None:
    old = make_tree(tmp_path / "old")
    host.run("import", str(old), "/old")
    imported = json.loads(host.run("log", "--json").stdout.splitlines()[0])["commit"]
    host.run("rm", "-r", "/old")
    collector = host.start("gc", "--keep-last", "1")
    try:
        wait_for_plan(objects)
        host.run("clone", f"{imported}:/old", "/restored")  # references the doomed tree without storing it
    finally:
        assert collector.wait(timeout=120) == 0, collector.stderr.read() if collector.stderr else ""
    assert_exports(host, "/restored", old, tmp_path)
    host.run("fsck", "--read-data")


def test_a_writer_that_reuses_doomed_blobs_and_commits_after_the_gc_copied_them(
    host: Host, url: str, s3_settings: S3Settings, objects: S3Objects, tmp_path: Path
) -> None:
    """The writers' rule alone: this writer's ref moves after gc marked again and deleted.

    It opened the repository before the plan, references the doomed tree
    (by id, as a clone does) while the plan is pending, then waits until
    the gc is over before its batch ends. Nothing else protects what it
    references: only its copy of the doomed blobs.
    """
    old = make_tree(tmp_path / "old")
    host.run("import", str(old), "/old")
    writer = Repository.open(url, s3_settings=s3_settings, cache_dir=str(tmp_path / "writer-cache"))
    try:
        head = writer.resolve_commit(writer.head_id())
        root = writer.get_typed(head.root_id, DirNode)
        old_entry = next(entry for entry in root.entries if entry.name == b"old")
        host.run("rm", "-r", "/old")
        collector = host.start("gc", "--keep-last", "1")
        try:
            wait_for_plan(objects)
            time.sleep(1.1)  # past BATCH_LOOK_S since the writer's last look: the batch starts with one
            with writer.batch() as batch:
                new_root = DirNode((old_entry._replace(name=b"kept"),))
                root_id, _ = batch.put_node(new_root)
                parent = writer.head_id()
                commit_id, _ = batch.put_node(Commit(root_id, (parent,), time.time_ns(), "test", "keep", {}))
                assert collector.wait(timeout=120) == 0
                assert batch.cas_ref(b"HEAD", parent, commit_id)
        finally:
            if collector.poll() is None:
                collector.kill()
    finally:
        writer.close()
    assert_exports(host, "/kept", old, tmp_path)
    host.run("fsck", "--read-data")


def test_a_writer_that_reuses_what_gc_already_deleted_is_refused_not_committed(
    host: Host, url: str, s3_settings: S3Settings, objects: S3Objects, tmp_path: Path
) -> None:
    """A writer that learns of the plan only after the deletion cannot copy: its change fails, nothing dangles."""
    old = make_tree(tmp_path / "old")
    host.run("import", str(old), "/old")
    writer = Repository.open(url, s3_settings=s3_settings, cache_dir=str(tmp_path / "writer-cache"))
    try:
        root = writer.get_typed(writer.resolve_commit(writer.head_id()).root_id, DirNode)
        old_entry = next(entry for entry in root.entries if entry.name == b"old")
        host.run("rm", "-r", "/old")
        gc(host, "--keep-last", "1")
        head_before = writer.head_id()

        def keep_old() -> None:
            with writer.batch() as batch:
                root_id, _ = batch.put_node(DirNode((old_entry._replace(name=b"kept"),)))
                commit_id, _ = batch.put_node(Commit(root_id, (head_before,), time.time_ns(), "t", "keep", {}))
                batch.cas_ref(b"HEAD", head_before, commit_id)

        with pytest.raises(ConflictError, match="deleted by a gc"):
            keep_old()
        assert writer.head_id() == head_before
    finally:
        writer.close()
    host.run("fsck", "--read-data")


def test_two_hosts_importing_while_gc_runs_lose_nothing(
    host: Host, other_host: Host, objects: S3Objects, tmp_path: Path
) -> None:
    shared = make_tree(tmp_path / "shared", files=60)
    host.run("import", str(shared), "/first")
    host.run("rm", "-r", "/first")  # garbage that the importers below bring back by deduplication
    collector = host.start("gc", "--keep-last", "1")
    importers = [writer.start("import", str(shared), f"/copy-{n}") for n, writer in enumerate((host, other_host, host))]
    for process in importers:
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    assert collector.wait(timeout=120) == 0, collector.stderr.read() if collector.stderr else ""
    gc(other_host)  # a second gc, after the first: deletes nothing anyone references
    for n in range(3):
        assert_exports(other_host, f"/copy-{n}", shared, tmp_path)
    host.run("fsck", "--read-data")


def test_a_mount_writing_on_another_host_through_two_gcs_loses_nothing(
    host: Host, other_host: Host, objects: S3Objects, tmp_path: Path
) -> None:
    """The mount commits every second and on fsync; it reuses (copies) what the plan dooms, and reads after deletion."""
    require_fuse()
    old = make_tree(tmp_path / "old")
    host.run("import", str(old), "/old")
    point = tmp_path / "mnt"
    point.mkdir()
    other_host.run("mount", "--commit-interval", "1", str(point))
    written: dict[str, bytes] = {}
    try:
        assert tree_listing(point / "old") == tree_listing(old)
        shutil.copytree(point / "old", point / "kept", symlinks=True)  # read, then stored again
        host.run("rm", "-r", "/old")
        for round_ in range(2):
            collector = host.start("gc", "--keep-last", "1")
            n = 0
            while collector.poll() is None:  # keep writing through the whole gc, grace period included
                name = f"r{round_}-{n}.txt"
                written[name] = os.urandom(1000 + n)
                (point / name).write_bytes(written[name])
                n += 1
                time.sleep(0.05)
            assert collector.returncode == 0, collector.stderr.read() if collector.stderr else ""
            assert n > 10
        for name, data in written.items():
            assert (point / name).read_bytes() == data
        assert tree_listing(point / "kept") == tree_listing(old)
    finally:
        if other_host.run("umount", str(point), expect=None).returncode != 0:
            force_unmount(point)
    exported = tmp_path / "export"
    host.run("export", "/", str(exported))
    assert tree_listing(exported / "kept") == tree_listing(old)
    for name, data in written.items():
        assert (exported / name).read_bytes() == data
    host.run("fsck", "--read-data")


def test_one_gc_at_a_time_and_a_dead_gcs_lock_and_plan(host: Host, objects: S3Objects, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    host.run("import", str(tree), "/tree")
    host.run("rm", "-r", "/tree/sub")
    collector = host.start("gc", "--keep-last", "1")
    plan_key = wait_for_plan(objects)
    collector.send_signal(signal.SIGKILL)  # dies holding the lock, its plan pending
    collector.wait(timeout=30)
    message = host.stderr("gc", expect=4)
    assert message.count("\n") == 1
    assert "another gc is running" in message
    assert "--break-lock" in message
    gc(host, "--keep-last", "1", "--break-lock")
    done = objects.get(plan_key.removesuffix(".plan") + ".done")
    assert done is not None
    assert done.data == b"abandoned"
    exported = tmp_path / "export"
    host.run("export", "/tree", str(exported))
    assert tree_listing(exported) == {k: v for k, v in tree_listing(tree).items() if not k.startswith("sub")}
    host.run("fsck", "--read-data")


def test_packs_a_dead_writer_left_without_an_index_object_are_deleted(host: Host, objects: S3Objects) -> None:
    orphan = f"{PACKS_PREFIX}/a/{'ab' * 16}.pack"
    assert objects.create(orphan, b"leftover of a writer killed before its index object") is not None
    gc(host)
    assert orphan not in packs(objects)
    host.run("fsck", "--read-data")


def test_gc_options_that_do_not_apply_are_one_line(host: Host, tmp_path: Path) -> None:
    message = host.stderr("gc", "--compact", expect=2)
    assert message.count("\n") == 1
    assert "local repositories only" in message
    local = tmp_path / "local"
    proc = zerofs(host, "--repo", str(local), "init", "--gc-grace", "5")
    assert proc.returncode == 2
    assert proc.stderr.count(b"\n") == 1
    assert b"S3 repositories only" in proc.stderr
    assert not local.exists() or not any(local.iterdir())
    assert zerofs(host, "--repo", str(local), "init").returncode == 0
    proc = zerofs(host, "--repo", str(local), "gc", "--break-lock")
    assert proc.returncode == 2
    assert proc.stderr.count(b"\n") == 1
    assert b"S3 repositories only" in proc.stderr


def zerofs(host: Host, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run zerofs with the host's environment and exactly ``args``."""
    return subprocess.run(
        [sys.executable, "-m", "zerofs", *args], env=host.env, capture_output=True, check=False, timeout=60
    )
