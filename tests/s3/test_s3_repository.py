"""An S3 repository through the CLI, as subprocesses, on the real SeaweedFS the tests start.

Each "host" (``hosts.py``) is a process with its own ``$XDG_CACHE_HOME``
(its own host cache); the bucket is the only thing two hosts share.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.mountutil import force_unmount, require_fuse
from tests.s3.conftest import fast_settings
from tests.s3.faultproxy import FaultProxy
from tests.s3.hosts import Host, make_tree, tree_listing
from tests.s3.seaweed import SeaweedServer, free_ports, start_server
from zerofs.objects import Kind
from zerofs.store.codec import CODEC_RAW, Record
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.s3cache import HostCache, decode_index
from zerofs.store.s3config import S3Settings, parse_s3_url
from zerofs.store.s3store import pack_key


def test_init_import_browse_export_equals_the_host_tree(host: Host, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    host.run("import", str(source), "/projects")
    assert host.run("cat", "/projects/file0.txt").stdout == b"content of file 0\n"
    names = host.run("ls", "/projects/sub").stdout.decode().split()
    assert "deep" in names
    assert "file1.txt" in names
    assert json.loads(host.run("stat", "--json", "/projects/sub/deep/big.bin").stdout)["size"] == 3 << 20
    host.run("clone", "-p", "/projects", "/snapshots/one")
    log = host.run("log").stdout.decode()
    assert "clone" in log
    assert "import" in log
    (source / "file0.txt").write_text("changed\n")
    host.run("import", str(source), "/projects")
    diff = host.run("diff", "/snapshots/one", "/projects").stdout.decode()
    assert "file0.txt" in diff
    assert "big.bin" not in diff
    host.run("export", "/projects", str(tmp_path / "out"))
    assert tree_listing(tmp_path / "out") == tree_listing(source)
    host.run("fsck", "--read-data")


def test_deleting_the_cache_between_commands_loses_nothing(host: Host, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    host.run("import", str(source), "/p")
    host.drop_cache()
    assert host.run("cat", "/p/sub/deep/big.bin").stdout == (source / "sub" / "deep" / "big.bin").read_bytes()
    host.drop_cache()
    host.run("clone", "/p", "/q")  # a write on an empty cache: learns the index first
    host.drop_cache()
    host.run("export", "/q", str(tmp_path / "out"))
    assert tree_listing(tmp_path / "out") == tree_listing(source)
    host.drop_cache()
    host.run("fsck", "--read-data")


def test_a_second_host_sees_what_the_first_wrote(host: Host, other_host: Host, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=5)
    host.run("import", str(source), "/a")
    assert other_host.run("cat", "/a/file0.txt").stdout == b"content of file 0\n"
    other_host.run("import", str(source), "/b")  # everything is stored already: dedup across hosts
    stats = json.loads(other_host.run("import", "--json", str(source), "/c").stdout)
    assert stats["new_bytes"] == 0
    assert host.run("cat", "/b/sub/file1.txt").stdout == (source / "sub" / "file1.txt").read_bytes()


def test_two_hosts_writing_at_once_both_land(host: Host, other_host: Host, tmp_path: Path) -> None:
    trees = {name: make_tree(tmp_path / name, files=12) for name in ("one", "two")}
    errors: list[str] = []

    def write(who: Host, name: str) -> None:
        for round_no in range(3):
            proc = who.run("import", "-p", str(trees[name]), f"/{name}/{round_no}", expect=None)
            if proc.returncode != 0:
                errors.append(proc.stderr.decode())
            proc = who.run("clone", f"/{name}/{round_no}", f"/{name}-copy-{round_no}", expect=None)
            if proc.returncode != 0:
                errors.append(proc.stderr.decode())

    threads = [threading.Thread(target=write, args=pair) for pair in ((host, "one"), (other_host, "two"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for name in ("one", "two"):
        for round_no in range(3):
            for path in (f"/{name}/{round_no}", f"/{name}-copy-{round_no}"):
                out = tmp_path / "out" / path.strip("/").replace("/", "_")
                out.parent.mkdir(exist_ok=True)
                host.run("export", path, str(out))
                assert tree_listing(out) == tree_listing(trees[name])
    other_host.run("fsck", "--read-data")


def test_init_twice_is_a_conflict(host: Host, s3_settings: S3Settings) -> None:
    assert "already exists" in host.run("init", host.url, repo=False, expect=4).stderr.decode()
    with S3Objects(parse_s3_url(host.url + "/other"), s3_settings) as objects:
        assert objects.create("stray", b"something else's") is not None
    assert "is not empty" in host.run("init", host.url + "/other", repo=False, expect=4).stderr.decode()


def test_no_repository_at_the_url_says_so(seaweed: SeaweedServer, bucket: str, tmp_path: Path) -> None:
    stranger = Host(f"s3://{bucket}/nothing-here", seaweed.endpoint, tmp_path / "cache")
    message = stranger.stderr("ls", "/", expect=5)
    assert message.count("\n") == 1
    assert "no zerofs repository at s3://" in message
    assert "zerofs init" in message


def test_a_missing_bucket_is_one_line(seaweed: SeaweedServer, tmp_path: Path) -> None:
    stranger = Host("s3://no-such-bucket-here/x", seaweed.endpoint, tmp_path / "cache")
    for args in (("ls", "/"), ("init", "s3://no-such-bucket-here/x")):
        message = stranger.run(*args, expect=5, repo=args[0] != "init").stderr.decode()
        assert message.count("\n") == 1
        assert "bucket 'no-such-bucket-here' does not exist" in message


def test_bad_credentials_are_one_line(host: Host, seaweed: SeaweedServer, tmp_path: Path) -> None:
    intruder = Host(host.url, seaweed.endpoint, tmp_path / "cache", AWS_SECRET_ACCESS_KEY="wrong-secret")
    message = intruder.stderr("ls", "/", expect=5)
    assert message.count("\n") == 1
    assert "refused the credentials" in message
    nobody = Host(host.url, seaweed.endpoint, tmp_path / "cache", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    message = nobody.stderr("ls", "/", expect=5)
    assert message.count("\n") == 1
    assert "no AWS credentials" in message


def test_an_unreachable_endpoint_is_one_line_and_exit_9(host: Host, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    lost = Host(host.url, f"http://127.0.0.1:{port}", tmp_path / "cache")
    message = lost.stderr("ls", "/", expect=9)
    assert message.count("\n") == 1
    assert "connection refused" in message


def test_zerofs_repo_and_the_config_file_name_an_s3_repository(host: Host, tmp_path: Path) -> None:
    host.run("mkdir", "/from-option")
    by_variable = Host(host.url, host.env["AWS_ENDPOINT_URL"], host.cache, ZEROFS_REPO=host.url)
    assert by_variable.run("ls", "/", repo=False).stdout.decode().split() == ["from-option"]
    config = tmp_path / "zerofs.toml"
    config.write_text(f'repository = "{host.url}"\n')
    assert host.run("-c", str(config), "ls", "/", repo=False).stdout.decode().split() == ["from-option"]


def test_browsing_what_the_cache_holds_reads_only_head(
    url: str, proxy: FaultProxy, tmp_path: Path, seaweed: SeaweedServer
) -> None:
    host = Host(url, proxy.endpoint, tmp_path / "cache")
    host.run("init", url, repo=False)
    source = make_tree(tmp_path / "src", files=5)
    host.run("import", str(source), "/p")
    host.run("clone", "/p", "/q")
    refs = f"/{url[5:]}/refs"
    for args, refs_read in (
        (("cat", "/q/file0.txt"), ["HEAD"]),
        (("ls", "/q/sub"), ["HEAD"]),
        (("stat", "/q/sub/file1.txt"), ["HEAD"]),
        (("log",), ["HEAD", "GRAFTS"]),  # a history walk reads gc's graft table too
    ):
        host.run(*args)  # reads what the cache lacks and keeps it
        proxy.seen.clear()
        host.run(*args)
        seen = [(r.method, r.target.split("?")[0]) for r in proxy.seen]
        assert seen == [("GET", f"{refs}/{name}") for name in refs_read], (args, seen)


def test_browsing_with_an_empty_cache_loads_the_index_of_metadata_only(
    url: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    writer = Host(url, proxy.endpoint, tmp_path / "writer")
    writer.run("init", url, repo=False)
    source = make_tree(tmp_path / "src", files=5)  # its 3 MiB file is dozens of chunks
    writer.run("import", str(source), "/p")
    reader = Host(url, proxy.endpoint, tmp_path / "empty-cache")
    proxy.seen.clear()
    listing = reader.run("ls", "-R", "/p").stdout.decode()
    assert "big.bin" in listing
    fetched = [r.target for r in proxy.seen if r.method == "GET" and "/index/" in r.target.split("?")[0]]
    assert fetched
    assert all(target.endswith(".meta.idx") for target in fetched), fetched
    proxy.seen.clear()
    assert reader.run("cat", "/p/sub/deep/big.bin").stdout == (source / "sub" / "deep" / "big.bin").read_bytes()
    assert any(r.target.endswith(".data.idx") for r in proxy.seen)  # reading contents loads the chunks' index


def test_a_repository_replaced_at_the_same_url_is_noticed(
    host: Host, other_host: Host, s3_settings: S3Settings
) -> None:
    host.run("mkdir", "/old")
    assert host.run("ls", "/").stdout.decode().split() == ["old"]
    location = parse_s3_url(host.url)
    with S3Objects(location, s3_settings) as objects:
        for info in list(objects.list("")):
            objects.delete(info.key)
    other_host.run("init", host.url, repo=False)
    other_host.run("mkdir", "/new")
    assert host.run("ls", "/").stdout.decode().split() == ["new"]


def indexed_pack_bytes(objects: S3Objects) -> int:
    """Bytes of the packs that index objects name (packs uploaded but not yet indexed are not counted)."""
    named = set()
    for info in objects.list("index"):
        found = objects.get(info.key)
        assert found is not None
        named.update(pack_key(entry.pack_name) for entry in decode_index(found.data, info.key))
    return sum(info.size_bytes for info in objects.list("packs") if info.key in named)


def test_an_import_killed_during_uploads_runs_again_uploading_only_what_is_missing(
    url: str, proxy: FaultProxy, tmp_path: Path, s3_settings: S3Settings
) -> None:
    host = Host(url, proxy.endpoint, tmp_path / "cache")
    host.run("init", url, repo=False)
    source = tmp_path / "src"
    source.mkdir()
    for n in range(5):
        (source / f"big{n}.bin").write_bytes(os.urandom(24 << 20))  # about four 32 MiB packs in all
    with S3Objects(parse_s3_url(url), s3_settings) as objects:
        before = len(list(objects.list("index")))
        importer = host.start("import", str(source), "/big")
        deadline = time.monotonic() + 120
        while len(list(objects.list("index"))) == before:  # until the first pack is published
            assert importer.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        importer.send_signal(signal.SIGKILL)
        importer.wait()
        published = indexed_pack_bytes(objects)
    assert host.run("ls", "/").stdout == b""  # nothing was committed, and the repository opens
    proxy.seen.clear()
    host.run("import", str(source), "/big")
    uploaded = sum(r.body_bytes for r in proxy.seen if r.method == "PUT" and "/packs/" in r.target)
    assert published >= 32 << 20
    assert uploaded <= (120 << 20) + (1 << 20) - published  # the published packs were not sent again
    host.run("export", "/big", str(tmp_path / "out"))
    assert tree_listing(tmp_path / "out") == tree_listing(source)
    host.run("fsck", "--read-data")


def one_pack(objects: S3Objects) -> str:
    """The key of the largest pack in the bucket (the one a test's big file is in)."""
    return max(objects.list("packs"), key=lambda info: info.size_bytes).key


def test_a_flipped_byte_in_a_pack_is_reported_never_returned(
    host: Host, tmp_path: Path, s3_settings: S3Settings
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    host.run("import", str(source), "/p")
    with S3Objects(parse_s3_url(host.url), s3_settings) as objects:
        key = one_pack(objects)
        found = objects.get(key)
        assert found is not None
        damaged = bytearray(found.data)
        damaged[len(damaged) // 2] ^= 0x01
        assert objects.replace(key, damaged, found.etag) is not None
    host.drop_cache()
    message = host.stderr("export", "/p", str(tmp_path / "out"), expect=6)
    assert message.count("\n") == 1
    assert "does not match its hash" in message
    report = host.run("fsck", "--read-data", expect=6).stdout.decode()
    assert "/p/sub/deep/big.bin" in report
    assert host.run("cat", "/p/file0.txt").stdout == b"content of file 0\n"  # the rest reads as it was


def test_a_deleted_pack_is_named_by_fsck(host: Host, tmp_path: Path, s3_settings: S3Settings) -> None:
    source = make_tree(tmp_path / "src", files=3)
    (source / "sub" / "deep" / "big.bin").write_bytes(os.urandom(40 << 20))  # its first pack holds chunks only
    host.run("import", str(source), "/p")
    with S3Objects(parse_s3_url(host.url), s3_settings) as objects:
        objects.delete(one_pack(objects))
    message = host.stderr("cat", "/p/sub/deep/big.bin", expect=6)
    assert message.count("\n") == 1
    assert "missing" in message
    report = host.run("fsck", "--read-data", expect=6).stdout.decode()
    assert "/p/sub/deep/big.bin" in report
    assert "missing" in report


def test_a_server_stopped_during_an_import_fails_it_cleanly_and_a_rerun_completes(tmp_path: Path) -> None:
    server = start_server(tmp_path / "own-server")
    try:
        server.create_bucket("data")
        host = Host("s3://data/repo", server.endpoint, tmp_path / "cache")
        host.run("init", host.url, repo=False)
        source = tmp_path / "src"
        source.mkdir()
        for n in range(8):
            (source / f"big{n}.bin").write_bytes(os.urandom(24 << 20))
        importer = host.start("import", str(source), "/big")
        with S3Objects(parse_s3_url(host.url), fast_settings(server.endpoint)) as objects:
            deadline = time.monotonic() + 60
            while not any(True for _ in objects.list("packs")) and time.monotonic() < deadline:
                time.sleep(0.02)  # stop the server once the first pack landed: the import is then mid-way
        assert importer.poll() is None, "the import ended before the server was stopped"
        server.stop()
        _, stderr = importer.communicate(timeout=120)
        message = stderr.decode()
        assert importer.returncode == 9, message
        assert message.count("\n") == 1
        assert "cannot reach" in message
        server.start()
        assert host.run("ls", "/").stdout == b""
        host.run("import", str(source), "/big")
        host.run("export", "/big", str(tmp_path / "out"))
        assert tree_listing(tmp_path / "out") == tree_listing(source)
    finally:
        server.stop()


def flip_a_byte(objects: S3Objects, key: str, at: int) -> None:
    """Flip one bit of object ``key`` at byte ``at`` (negative: from its end)."""
    found = objects.get(key)
    assert found is not None
    damaged = bytearray(found.data)
    damaged[at] ^= 0x01
    assert objects.replace(key, damaged, found.etag) is not None


def test_a_damaged_head_object_is_read_from_its_log_and_reported(
    host: Host, tmp_path: Path, s3_settings: S3Settings
) -> None:
    host.run("mkdir", "/a")
    host.run("mkdir", "/b")
    with S3Objects(parse_s3_url(host.url), s3_settings) as objects:
        flip_a_byte(objects, "refs/HEAD", 40)
    assert host.run("ls", "/").stdout.decode().split() == ["a", "b"]  # HEAD as its log has it: no rollback
    report = host.run("fsck", expect=6).stdout.decode()
    assert "refs/HEAD is damaged" in report
    host.run("mkdir", "/c")  # the next commit rewrites it
    assert host.run("ls", "/").stdout.decode().split() == ["a", "b", "c"]
    host.run("fsck")


def test_a_rolled_back_head_object_is_reported_then_moved_forward_never_followed(
    host: Host, s3_settings: S3Settings
) -> None:
    host.run("mkdir", "/a")
    with S3Objects(parse_s3_url(host.url), s3_settings) as objects:
        old = objects.get("refs/HEAD")
        assert old is not None
        host.run("mkdir", "/b")
        host.run("mkdir", "/c")
        current = objects.get("refs/HEAD")
        assert current is not None
        assert objects.replace("refs/HEAD", old.data, current.etag) is not None  # an older copy restored
    report = host.run("fsck", expect=6).stdout.decode()
    assert "rolled back" in report
    assert "behind its log" in report
    written = host.run("mkdir", "/d")  # the next commit moves HEAD forward to its log, then lands on top
    assert "rolled back" in written.stderr.decode()
    assert host.run("ls", "/").stdout.decode().split() == ["a", "b", "c", "d"]
    host.run("fsck")


def test_a_damaged_index_object_is_reported_and_what_it_names_is_missing_not_wrong(
    host: Host, tmp_path: Path, s3_settings: S3Settings
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    host.run("import", str(source), "/p")
    with S3Objects(parse_s3_url(host.url), s3_settings) as objects:
        newest = max(objects.list("index"), key=lambda info: info.key).key
        flip_a_byte(objects, newest, -10)
    host.drop_cache()
    message = host.stderr("ls", "/p", expect=6)
    assert message.count("\n") == 1
    assert "missing" in message
    report = host.run("fsck", expect=6).stdout.decode()
    assert f"index object {host.url}/{newest} is damaged" in report
    rebuilt = host.run("fsck", "--rebuild-index").stderr.decode()  # the packs are whole: index them again
    assert "indexed again" in rebuilt
    assert f"removed the damaged index object {host.url}/{newest}" in rebuilt
    exported = tmp_path / "export"
    host.run("export", "/p", str(exported))
    assert tree_listing(exported) == tree_listing(source)
    other = Host(host.url, host.env["AWS_ENDPOINT_URL"], tmp_path / "fresh-cache")
    other.run("fsck", "--read-data")


def test_upgrade_of_an_s3_repository_says_it_is_current(host: Host) -> None:
    assert "already of the current format" in host.run("upgrade").stderr.decode()
    Host(host.url + "-none", host.env["AWS_ENDPOINT_URL"], host.cache).run("upgrade", expect=5)


def wait_for(check: Callable[[], bool], seconds: float = 15.0) -> None:
    """Poll ``check`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.1)


def test_a_mount_on_each_host_sees_the_others_writes_and_both_land(
    host: Host, other_host: Host, tmp_path: Path
) -> None:
    require_fuse()
    points = [tmp_path / "mnt-a", tmp_path / "mnt-b"]
    hosts = [host, other_host]
    for who, point in zip(hosts, points, strict=True):
        point.mkdir()
        who.run("mount", str(point))
    try:
        (points[0] / "from-a.txt").write_bytes(b"written on host a\n")
        os.sync()  # the mount commits on fsync; a plain close waits for its interval
        with open(points[0] / "from-a.txt", "rb+") as handle:
            os.fsync(handle.fileno())
        wait_for(lambda: (points[1] / "from-a.txt").exists())
        assert (points[1] / "from-a.txt").read_bytes() == b"written on host a\n"
        (points[1] / "from-b.txt").write_bytes(b"written on host b\n")
        with open(points[1] / "from-b.txt", "rb+") as handle:
            os.fsync(handle.fileno())
        wait_for(lambda: (points[0] / "from-b.txt").exists())
    finally:
        for who, point in zip(hosts, points, strict=True):
            proc = who.run("umount", str(point), expect=None)
            if proc.returncode != 0:
                force_unmount(point)
    assert sorted(host.run("ls", "/").stdout.decode().split()) == ["from-a.txt", "from-b.txt"]
    assert host.run("cat", "/from-b.txt").stdout == b"written on host b\n"


def test_damaged_records_in_the_host_cache_are_read_again_from_the_bucket(host: Host, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=5)
    host.run("import", str(source), "/p")
    host.run("ls", "-R", "/p")  # the cache keeps the directories read
    (cache_file,) = host.cache.glob("zerofs/*/s3-cache.mdb")
    cache = HostCache(str(cache_file.parent))
    try:
        with cache.index.reading() as txn:
            ids = [bytes(key) for key, _ in txn.cursor(db=cache.records)]
        assert ids
        cache.keep_records({object_id: Record(Kind.DIR, CODEC_RAW, 7, b"garbage") for object_id in ids})
    finally:
        cache.close()
    assert host.run("cat", "/p/sub/file1.txt").stdout == (source / "sub" / "file1.txt").read_bytes()
    host.run("export", "/p", str(tmp_path / "out"))
    assert tree_listing(tmp_path / "out") == tree_listing(source)


def test_push_to_and_pull_from_s3_send_only_what_is_missing(host: Host, tmp_path: Path) -> None:
    """push and pull between local repositories and an S3 one; a push of one change is small; no forced rewrite."""
    local, other = str(tmp_path / "local"), str(tmp_path / "other")
    tree = make_tree(tmp_path / "tree")
    host.run("--repo", local, "init", repo=False)
    host.run("--repo", local, "import", str(tree), "/data", repo=False)
    first = json.loads(host.run("--repo", local, "push", "--json", host.url, repo=False).stdout)
    assert first["objects"] > 30
    assert host.run("cat", "/data/file0.txt").stdout == (tree / "file0.txt").read_bytes()
    host.run("--repo", local, "write", "/data/file0.txt", repo=False, input=b"changed\n")
    second = json.loads(host.run("--repo", local, "push", "--json", host.url, repo=False).stdout)
    assert 0 < second["objects"] < 10
    assert host.run("cat", "/data/file0.txt").stdout == b"changed\n"
    host.run("clone", "/data", "/snap")  # a commit made on S3, pulled into a new local repository
    host.run("--repo", other, "init", repo=False)
    host.run("--repo", other, "pull", host.url, repo=False)
    out = tmp_path / "out"
    host.run("--repo", other, "export", "/snap", str(out), repo=False)
    assert tree_listing(out) == {**tree_listing(tree), "file0.txt": b"changed\n"}
    host.run("--repo", local, "rm", "/data/file3.txt", repo=False)  # local and S3 have diverged
    head = host.run("log", "-n", "1", "--json").stdout
    host.run("--repo", local, "push", host.url, repo=False, expect=4)
    assert host.run("log", "-n", "1", "--json").stdout == head
    host.run("fsck", "--read-data")
