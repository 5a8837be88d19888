"""Every command through ``python -m zerofs`` in a subprocess: output, --json, stderr, exit codes."""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_fails, assert_one_error_line, log_json, unreadable_file
from zerofs.errors import (
    ConflictError,
    CorruptionError,
    HostIOError,
    IncompleteError,
    NotFoundError,
    RepositoryError,
    UsageError,
)

MTIME_NS = 1_234_567_890_123_456_789
DIR_MTIME_NS = 1_111_111_111_222_333_444
BIG = os.urandom(300_000) + b"tail"


def make_host_tree(root: Path) -> Path:
    """A host directory with files, nested dirs, a symlink, an empty file and a mode-0751 file."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "empty").write_bytes(b"")
    (root / "big.bin").write_bytes(BIG)
    (root / ".hidden").write_bytes(b"secret")
    (root / "sub" / "b.txt").write_bytes(b"bravo\n")
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"charlie\n")
    exe = root / "tool"
    exe.write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(exe, 0o751)
    os.utime(exe, ns=(MTIME_NS, MTIME_NS))
    os.symlink("sub/b.txt", root / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    os.utime(root / "sub" / "deeper", ns=(DIR_MTIME_NS, DIR_MTIME_NS))
    return root


@pytest.fixture
def host_tree(tmp_path: Path) -> Path:
    return make_host_tree(tmp_path / "host")


@pytest.fixture
def imported(zerofs: Any, cli_repo: Path, host_tree: Path) -> Path:
    """A repository with ``host_tree`` imported at /data."""
    zerofs("import", str(host_tree), "/data")
    return cli_repo


def ls_json(zerofs: Any, path: str, *flags: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(zerofs("ls", "--json", *flags, path).stdout)
    return {row["name"]: row for row in rows}


def stat_json(zerofs: Any, path: str) -> dict[str, Any]:
    return json.loads(zerofs("stat", "--json", path).stdout)


# -- init -----------------------------------------------------------------------------


def test_init_creates_an_empty_repository(zerofs: Any, repo_path: Path) -> None:
    proc = zerofs("init")
    assert "Traceback" not in proc.stderr
    assert (repo_path / "config").exists()
    assert (repo_path / "index.mdb").exists()
    history = log_json(repo_path)
    assert len(history) == 1
    assert history[0]["message"] == "init"
    assert history[0]["parents"] == []
    assert zerofs("ls", "/").stdout == b""
    assert json.loads(zerofs("ls", "--json", "/").stdout) == []


def test_init_twice_is_a_conflict(zerofs: Any, cli_repo: Path) -> None:
    line = assert_fails(cli_repo, "init", expect=ConflictError.exit_code)
    assert "already exists" in line


def test_init_json(zerofs: Any, repo_path: Path, repo_mode: str) -> None:
    info = json.loads(zerofs("init", "--json").stdout)
    assert info["format_version"] == {"plain": 3, "encrypted": 4}[repo_mode]
    assert info["encrypted"] is (repo_mode == "encrypted")
    assert info["repository"] == str(repo_path)


# -- import / export --------------------------------------------------------------------


def test_import_tree(zerofs: Any, imported: Path, host_tree: Path) -> None:
    rows = ls_json(zerofs, "/data")
    assert set(rows) == {"a.txt", "empty", "big.bin", ".hidden", "sub", "tool", "link", "dangling"}
    assert rows["sub"]["type"] == "dir"
    assert rows["link"]["type"] == "symlink"
    assert rows["link"]["target"] == "sub/b.txt"
    assert rows["dangling"]["target"] == "/nowhere/at/all"
    assert rows["empty"]["size"] == 0
    assert rows["tool"]["mode"] == "0751"
    assert rows["tool"]["mtime_ns"] == MTIME_NS
    assert rows["big.bin"]["size"] == len(BIG)
    assert zerofs("cat", "/data/sub/deeper/c.txt").stdout == b"charlie\n"
    assert zerofs("cat", "/data/big.bin").stdout == BIG
    assert zerofs("cat", "/data/empty").stdout == b""
    deeper = stat_json(zerofs, "/data/sub/deeper")
    assert deeper["type"] == "dir"
    assert deeper["mtime_ns"] == DIR_MTIME_NS
    assert deeper["entries"] == 1
    history = log_json(imported)
    assert len(history) == 2
    assert "/data" in history[0]["message"]
    assert str(host_tree) in history[0]["message"]


def test_import_json_and_single_file(zerofs: Any, cli_repo: Path, host_tree: Path) -> None:
    host = os.lstat(host_tree / "tool")  # before the import reads it (reading may move the atime)
    result = json.loads(zerofs("import", "--json", str(host_tree / "tool"), "/tool").stdout)
    assert result["path"] == "/tool"
    assert result["files"] == 1
    assert result["bytes"] == (host_tree / "tool").stat().st_size
    info = stat_json(zerofs, "/tool")
    assert info["mode"] == "0751"
    assert info["mtime_ns"] == MTIME_NS
    assert info["atime_ns"] == host.st_atime_ns  # import stats before it reads
    assert info["ctime_ns"] >= host.st_ctime_ns  # placing it at /tool changed it in the store
    text = zerofs("stat", "/tool").stdout.decode()
    assert "accessed" in text
    assert "changed" in text


def test_import_needs_parent_or_p(zerofs: Any, cli_repo: Path, host_tree: Path) -> None:
    assert_fails(cli_repo, "import", str(host_tree), "/x/y/data", expect=NotFoundError.exit_code)
    zerofs("import", "-p", str(host_tree), "/x/y/data")
    assert zerofs("cat", "/x/y/data/a.txt").stdout == b"alpha\n"


def test_reimport_replaces_in_one_commit(zerofs: Any, imported: Path, host_tree: Path) -> None:
    before = log_json(imported)
    (host_tree / "a.txt").write_bytes(b"changed\n")
    (host_tree / "sub" / "b.txt").unlink()
    (host_tree / "new.txt").write_bytes(b"new\n")
    zerofs("import", str(host_tree), "/data")
    after = log_json(imported)
    assert len(after) == len(before) + 1
    assert after[1:] == before
    assert after[0]["parents"] == [before[0]["commit"]]
    assert zerofs("cat", "/data/a.txt").stdout == b"changed\n"
    assert zerofs("cat", "/data/new.txt").stdout == b"new\n"
    zerofs("cat", "/data/sub/b.txt", expect=NotFoundError.exit_code)


def test_import_missing_host_path(zerofs: Any, cli_repo: Path, tmp_path: Path) -> None:
    line = assert_fails(cli_repo, "import", str(tmp_path / "absent"), "/x", expect=NotFoundError.exit_code)
    assert "absent" in line


def test_export_round_trip(zerofs: Any, imported: Path, host_tree: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    zerofs("export", "/data", str(target))
    compare_trees(host_tree, target)


def compare_trees(expected: Path, actual: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(expected):
        rel = Path(dirpath).relative_to(expected)
        got_dir = actual / rel
        assert sorted(os.listdir(got_dir)) == sorted(dirnames + filenames), rel
        for name in dirnames + filenames:
            want = os.lstat(Path(dirpath) / name)
            got = os.lstat(got_dir / name)
            assert stat.S_IFMT(got.st_mode) == stat.S_IFMT(want.st_mode), rel / name
            if stat.S_ISLNK(want.st_mode):
                assert os.readlink(got_dir / name) == os.readlink(Path(dirpath) / name)
            else:
                assert stat.S_IMODE(got.st_mode) == stat.S_IMODE(want.st_mode), rel / name
            if stat.S_ISREG(want.st_mode):
                assert (got_dir / name).read_bytes() == (Path(dirpath) / name).read_bytes()
            if not stat.S_ISDIR(want.st_mode) or name == "deeper":
                assert got.st_mtime_ns == want.st_mtime_ns, rel / name


def test_export_refuses_non_empty_target(zerofs: Any, imported: Path, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep").write_bytes(b"mine")
    line = assert_fails(imported, "export", "/data", str(target), expect=ConflictError.exit_code)
    assert "--force" in line
    assert os.listdir(target) == ["keep"]
    zerofs("export", "--force", "/data", str(target))
    assert (target / "keep").read_bytes() == b"mine"
    assert (target / "a.txt").read_bytes() == b"alpha\n"
    assert (target / "tool").stat().st_mtime_ns == MTIME_NS


def test_export_single_file_and_empty_dir_target(zerofs: Any, imported: Path, tmp_path: Path) -> None:
    zerofs("export", "/data/tool", str(tmp_path / "tool"))
    st = os.stat(tmp_path / "tool")
    assert stat.S_IMODE(st.st_mode) == 0o751
    assert st.st_mtime_ns == MTIME_NS
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    zerofs("export", "/data/sub", str(empty))
    assert (empty / "deeper" / "c.txt").read_bytes() == b"charlie\n"
    assert_fails(imported, "export", "/data/missing", str(tmp_path / "x"), expect=NotFoundError.exit_code)


# -- clone / snapshot ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["clone", "snapshot", "snap"])
def test_clone_commands(zerofs: Any, imported: Path, command: str) -> None:
    before = log_json(imported)
    zerofs(command, "-p", "/data", "/snapshots/2026-11-24")
    after = log_json(imported)
    assert len(after) == len(before) + 1
    assert after[0]["message"] == "clone /data -> /snapshots/2026-11-24"
    assert after[0]["operation"]["op"] == "clone"
    src, dst = stat_json(zerofs, "/data"), stat_json(zerofs, "/snapshots/2026-11-24")
    assert src["id"] == dst["id"]
    assert zerofs("cat", "/snapshots/2026-11-24/big.bin").stdout == BIG


def test_clone_with_options_form(zerofs: Any, imported: Path) -> None:
    zerofs("mkdir", "/snapshots")
    zerofs("clone", "--source", "/data", "--destination", "/snapshots/one")
    zerofs("snapshot", "-s", "/data/sub", "-d", "/snapshots/two")
    assert zerofs("cat", "/snapshots/one/a.txt").stdout == b"alpha\n"
    assert zerofs("cat", "/snapshots/two/b.txt").stdout == b"bravo\n"
    assert log_json(imported)[0]["message"] == "clone /data/sub -> /snapshots/two"
    assert_fails(imported, "clone", "/data", "--destination", "/x", "/y", expect=UsageError.exit_code)
    assert_fails(imported, "clone", "/data", expect=UsageError.exit_code)


def test_clone_refuses_existing_without_force(zerofs: Any, imported: Path) -> None:
    zerofs("write", "/target", input=b"old")
    line = assert_fails(imported, "clone", "/data/a.txt", "/target", expect=ConflictError.exit_code)
    assert "--force" in line
    zerofs("clone", "--force", "/data/a.txt", "/target")
    assert zerofs("cat", "/target").stdout == b"alpha\n"


def test_clone_needs_parent_or_p(zerofs: Any, imported: Path) -> None:
    line = assert_fails(imported, "clone", "/data", "/no/such/place", expect=NotFoundError.exit_code)
    assert "-p" in line
    assert_fails(imported, "clone", "/missing", "/x", expect=NotFoundError.exit_code)


def test_clones_are_independent(zerofs: Any, imported: Path) -> None:
    zerofs("clone", "/data", "/copy")
    zerofs("write", "/copy/a.txt", input=b"edited")
    zerofs("rm", "-r", "/copy/sub")
    assert zerofs("cat", "/data/a.txt").stdout == b"alpha\n"
    assert zerofs("cat", "/data/sub/b.txt").stdout == b"bravo\n"
    assert zerofs("cat", "/copy/a.txt").stdout == b"edited"


def test_clone_root_into_itself(zerofs: Any, imported: Path) -> None:
    zerofs("clone", "-p", "/", "/snapshots/all")
    assert set(ls_json(zerofs, "/snapshots/all")) == {"data"}
    assert zerofs("cat", "/snapshots/all/data/a.txt").stdout == b"alpha\n"


# -- ls / cat / stat / tree -------------------------------------------------------------


def test_ls_plain_all_long_recursive(zerofs: Any, imported: Path) -> None:
    plain = zerofs("ls", "/data").stdout.decode().splitlines()
    assert plain == sorted(["a.txt", "big.bin", "dangling", "empty", "link", "sub", "tool"])
    everything = zerofs("ls", "-a", "/data").stdout.decode().splitlines()
    assert everything == sorted([*plain, ".hidden"])
    long_lines = zerofs("ls", "-l", "/data").stdout.decode().splitlines()
    assert len(long_lines) == len(plain)
    tool = next(line for line in long_lines if line.endswith("\ttool"))
    assert tool.startswith("-rwxr-x--x\t")
    link = next(line for line in long_lines if "\tlink" in line)
    assert link.startswith("l")
    assert link.endswith("link -> sub/b.txt")
    sub = next(line for line in long_lines if line.endswith("\tsub"))
    assert sub.startswith("d")
    recursive = zerofs("ls", "-R", "/data").stdout.decode().splitlines()
    assert "/data/sub/deeper/c.txt" in recursive
    assert "/data/sub/deeper/" in recursive or "/data/sub/deeper" in recursive
    assert zerofs("ls", "/data/a.txt").stdout == b"a.txt\n"


def test_ls_json_and_recursive_json(zerofs: Any, imported: Path) -> None:
    rows = json.loads(zerofs("ls", "--json", "/data/sub").stdout)
    assert [r["name"] for r in rows] == ["b.txt", "deeper"]
    assert rows[0]["path"] == "/data/sub/b.txt"
    assert rows[0]["size"] == 6
    assert rows[0]["type"] == "file"
    for key in ("mode", "uid", "gid", "mtime_ns", "id"):
        assert key in rows[0]
    nested = json.loads(zerofs("ls", "--json", "-R", "/data/sub").stdout)
    assert [r["path"] for r in nested] == ["/data/sub/b.txt", "/data/sub/deeper", "/data/sub/deeper/c.txt"]


def test_fast_path_matches_full_cli(zerofs: Any, imported: Path) -> None:
    slow = {"ZEROFS_NO_FAST_PATH": "1"}
    for args in (
        ["ls", "/data"],
        ["ls", "-l", "/data"],
        ["ls", "-la", "/data"],
        ["ls", "--json", "/data"],
        ["cat", "/data/a.txt", "/data/big.bin"],
    ):
        assert zerofs(*args).stdout == zerofs(*args, env=slow).stdout, args
    for args, code in ((["cat", "/data/missing"], 3), (["cat", "/data/sub"], 4), (["ls", "/nope"], 3)):
        fast, full = zerofs(*args, expect=code), zerofs(*args, expect=code, env=slow)
        assert assert_one_error_line(fast) == assert_one_error_line(full)


def test_cat_exact_bytes_and_several_files(zerofs: Any, imported: Path) -> None:
    out = zerofs("cat", "/data/a.txt", "/data/sub/b.txt", "/data/big.bin", "/data/empty").stdout
    assert out == b"alpha\nbravo\n" + BIG
    assert zerofs("cat", "/data/link", expect=ConflictError.exit_code).stdout == b""
    assert_fails(imported, "cat", "/data/sub", expect=ConflictError.exit_code)
    assert_fails(imported, "cat", "/data/a.txt", "/data/nope", expect=NotFoundError.exit_code, stdout_empty=False)


def test_cat_json_text_and_binary(zerofs: Any, imported: Path) -> None:
    import base64

    docs = json.loads(zerofs("cat", "--json", "/data/a.txt", "/data/big.bin").stdout)
    assert docs[0] == {"path": "/data/a.txt", "size": 6, "encoding": "utf-8", "content": "alpha\n"}
    assert docs[1]["encoding"] == "base64"
    assert base64.b64decode(docs[1]["content"]) == BIG
    assert docs[1]["size"] == len(BIG)


def test_stat_json(zerofs: Any, imported: Path) -> None:
    head = log_json(imported)[0]["commit"]
    info = stat_json(zerofs, "/data/big.bin")
    assert info["path"] == "/data/big.bin"
    assert info["name"] == "big.bin"
    assert info["type"] == "file"
    assert info["size"] == len(BIG)
    assert info["chunks"] >= 1
    assert info["entries"] is None
    assert info["commit"] == head
    assert len(info["id"]) == 64
    root = stat_json(zerofs, "/")
    assert root["type"] == "dir"
    assert root["entries"] == 1
    assert root["name"] == "/"
    link = stat_json(zerofs, "/data/link")
    assert link["type"] == "symlink"
    assert link["target"] == "sub/b.txt"
    text = zerofs("stat", "/data/tool").stdout.decode()
    assert "-rwxr-x--x (0751)" in text


def test_tree(zerofs: Any, imported: Path) -> None:
    out = zerofs("tree", "/data/sub").stdout.decode().splitlines()
    assert out == ["/data/sub", "b.txt", "deeper/", "    c.txt"]
    full = zerofs("tree").stdout.decode()
    assert "link -> sub/b.txt" in full
    rows = json.loads(zerofs("tree", "--json", "/data/sub").stdout)
    assert [r["path"] for r in rows] == ["/data/sub/b.txt", "/data/sub/deeper", "/data/sub/deeper/c.txt"]


# -- write / mkdir / mv / rm ---------------------------------------------------------------


def test_write_from_stdin(zerofs: Any, cli_repo: Path) -> None:
    payload = os.urandom(200_000)
    zerofs("write", "/f", input=payload)
    assert zerofs("cat", "/f").stdout == payload
    zerofs("write", "/f", input=b"shorter")
    assert zerofs("cat", "/f").stdout == b"shorter"
    zerofs("write", "/e", input=b"")
    assert zerofs("cat", "/e").stdout == b""
    assert stat_json(zerofs, "/e")["size"] == 0
    assert_fails(cli_repo, "write", "/a/b/c", input=b"x", expect=NotFoundError.exit_code)
    zerofs("write", "-p", "/a/b/c", input=b"x")
    assert zerofs("cat", "/a/b/c").stdout == b"x"
    assert_fails(cli_repo, "write", "/a/b", input=b"x", expect=ConflictError.exit_code)
    assert_fails(cli_repo, "write", "/a/b/c/d", input=b"x", expect=ConflictError.exit_code)
    result = json.loads(zerofs("write", "--json", "/j", input=b"j").stdout)
    assert result["commit"] == log_json(cli_repo)[0]["commit"]


def test_write_onto_a_store_symlink_replaces_the_link_and_never_follows_it(
    zerofs: Any, cli_repo: Path, tmp_path: Path
) -> None:
    """A store symlink's target may be a host path (or another store path): write replaces the link itself."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "target.txt").write_bytes(b"target")
    (host / "to-store").symlink_to("target.txt")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside")
    (host / "to-host").symlink_to(outside)
    zerofs("import", str(host), "/h")
    for name in ("to-store", "to-host"):
        assert stat_json(zerofs, f"/h/{name}")["type"] == "symlink"
        zerofs("write", f"/h/{name}", input=b"written")
        written = stat_json(zerofs, f"/h/{name}")
        assert (written["type"], written["mode"], written["size"]) == ("file", "0644", 7)
        assert zerofs("cat", f"/h/{name}").stdout == b"written"
    assert zerofs("cat", "/h/target.txt").stdout == b"target"
    assert outside.read_bytes() == b"outside"
    assert log_json(cli_repo)[0]["message"] == "write /h/to-host (7 bytes)"


def test_mkdir(zerofs: Any, cli_repo: Path) -> None:
    zerofs("mkdir", "/a")
    assert_fails(cli_repo, "mkdir", "/a", expect=ConflictError.exit_code)
    assert_fails(cli_repo, "mkdir", "/x/y", expect=NotFoundError.exit_code)
    zerofs("mkdir", "-p", "/x/y/z")
    assert stat_json(zerofs, "/x/y/z")["type"] == "dir"
    before = log_json(cli_repo)
    zerofs("mkdir", "-p", "/x/y")
    assert log_json(cli_repo) == before, "mkdir -p of an existing directory is not a change"
    zerofs("write", "/file", input=b"f")
    assert_fails(cli_repo, "mkdir", "-p", "/file/sub", expect=ConflictError.exit_code)


def test_mv(zerofs: Any, imported: Path) -> None:
    zerofs("mv", "/data/a.txt", "/data/renamed.txt")
    assert zerofs("cat", "/data/renamed.txt").stdout == b"alpha\n"
    zerofs("cat", "/data/a.txt", expect=NotFoundError.exit_code)
    assert log_json(imported)[0]["message"] == "mv /data/a.txt -> /data/renamed.txt"
    zerofs("mv", "/data/renamed.txt", "/data/sub")
    assert zerofs("cat", "/data/sub/renamed.txt").stdout == b"alpha\n"
    zerofs("mv", "/data/sub", "/moved")
    assert zerofs("cat", "/moved/deeper/c.txt").stdout == b"charlie\n"
    assert_fails(imported, "mv", "/missing", "/x", expect=NotFoundError.exit_code)
    assert_fails(imported, "mv", "/moved", "/moved/deeper/inside", expect=UsageError.exit_code)
    assert_fails(imported, "mv", "/moved", "/data/tool", expect=ConflictError.exit_code)
    assert_fails(imported, "mv", "/data/tool", "/nowhere/x", expect=NotFoundError.exit_code)


def test_rm(zerofs: Any, imported: Path) -> None:
    line = assert_fails(imported, "rm", "/data/sub", expect=ConflictError.exit_code)
    assert "-r" in line
    zerofs("rm", "-r", "/data/sub")
    zerofs("ls", "/data/sub", expect=NotFoundError.exit_code)
    assert log_json(imported)[0]["message"] == "rm -r /data/sub"
    zerofs("rm", "/data/a.txt")
    assert_fails(imported, "rm", "/data/a.txt", expect=NotFoundError.exit_code)
    before = log_json(imported)
    zerofs("rm", "-f", "/data/a.txt")
    assert log_json(imported) == before
    assert_fails(imported, "rm", "-r", "/", expect=UsageError.exit_code)
    zerofs("mkdir", "/emptydir")
    zerofs("rm", "/emptydir")


def test_every_change_is_one_commit_naming_its_paths(zerofs: Any, cli_repo: Path, host_tree: Path) -> None:
    steps = [
        (("import", str(host_tree), "/photos"), None, ["/photos"]),
        (("mkdir", "-p", "/snapshots"), None, ["/snapshots"]),
        (("clone", "/photos", "/snapshots/2026-11-24"), None, ["clone /photos -> /snapshots/2026-11-24"]),
        (("write", "/notes.txt"), b"hello", ["/notes.txt"]),
        (("mv", "/notes.txt", "/photos/notes.txt"), None, ["/notes.txt", "/photos/notes.txt"]),
        (("rm", "/photos/notes.txt"), None, ["/photos/notes.txt"]),
        (("rm", "-r", "/snapshots/2026-11-24"), None, ["/snapshots/2026-11-24"]),
        (("snapshot", "/photos", "/snapshots/again"), None, ["/photos", "/snapshots/again"]),
    ]
    history = log_json(cli_repo)
    for args, stdin, fragments in steps:
        zerofs(*args, input=stdin)
        now = log_json(cli_repo)
        assert len(now) == len(history) + 1, args
        assert now[1:] == history
        assert now[0]["parents"] == [history[0]["commit"]]
        for fragment in fragments:
            assert fragment in now[0]["message"], (args, now[0]["message"])
        history = now


# -- log --------------------------------------------------------------------------------


def test_log(zerofs: Any, cli_repo: Path) -> None:
    for n in range(3):
        zerofs("write", f"/f{n}", input=b"%d" % n)
    zerofs("write", "/f0", input=b"again")
    lines = zerofs("log").stdout.decode().splitlines()
    assert len(lines) == 5
    assert lines[-1].endswith("\tinit")
    assert "/f0" in lines[0]
    assert len(zerofs("log", "-n", "2").stdout.decode().splitlines()) == 2
    assert zerofs("log", "-n", "0").stdout == b""
    history = [json.loads(line) for line in zerofs("log", "--json").stdout.decode().splitlines()]
    assert [h["message"].split()[1] for h in history[:4]] == ["/f0", "/f2", "/f1", "/f0"]
    for newer, older in itertools.pairwise(history):
        assert newer["parents"] == [older["commit"]]
        assert newer["time_ns"] >= older["time_ns"]
    only_f0 = [json.loads(line) for line in zerofs("log", "--json", "/f0").stdout.decode().splitlines()]
    assert [h["commit"] for h in only_f0] == [history[0]["commit"], history[3]["commit"]]
    assert len(zerofs("log", "-n", "1", "/f1").stdout.decode().splitlines()) == 1
    assert_fails(cli_repo, "log", "-n", "-1", expect=UsageError.exit_code)


# -- bad input ---------------------------------------------------------------------------


BAD_INPUT = [
    (("cat", "/missing"), NotFoundError.exit_code),
    (("ls", "/missing"), NotFoundError.exit_code),
    (("stat", "/missing/deeper"), NotFoundError.exit_code),
    (("rm", "/missing"), NotFoundError.exit_code),
    (("mv", "/missing", "/x"), NotFoundError.exit_code),
    (("clone", "/missing", "/x"), NotFoundError.exit_code),
    (("log", "/missing"), 0),
    (("ls", "/file/x"), ConflictError.exit_code),
    (("mkdir", "/file/x"), ConflictError.exit_code),
    (("write", "/file/x"), ConflictError.exit_code),
    (("clone", "/dir", "/file/x"), ConflictError.exit_code),
    (("cat", "/dir"), ConflictError.exit_code),
    (("mkdir", "/dir"), ConflictError.exit_code),
    (("ls", "relative/path"), UsageError.exit_code),
    (("cat", "/a/./b"), UsageError.exit_code),
    (("cat", "/a/../b"), UsageError.exit_code),
    (("mkdir", "/."), UsageError.exit_code),
    (("mkdir", "/.."), UsageError.exit_code),
    (("write", "/" + "n" * 256), UsageError.exit_code),
    (("mkdir", "/dir/" + "é" * 128), UsageError.exit_code),
    (("clone", "/dir", "/.."), UsageError.exit_code),
    (("no-such-command",), UsageError.exit_code),
    (("ls", "--no-such-option"), UsageError.exit_code),
    (("mv", "/dir"), UsageError.exit_code),
]


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> tuple[Path, list[dict[str, Any]]]:
    """One repository (/file, /dir) for the bad-input table: every row must leave it unchanged."""
    from tests.conftest import run_zerofs

    path = tmp_path_factory.mktemp("bad-input") / "repo"
    run_zerofs("init", repo=path)
    run_zerofs("write", "/file", repo=path, input=b"content")
    run_zerofs("mkdir", "/dir", repo=path)
    return path, log_json(path)


@pytest.mark.parametrize(("args", "code"), BAD_INPUT, ids=[" ".join(a)[:40] for a, _ in BAD_INPUT])
def test_bad_input(
    zerofs: Any, shared_repo: tuple[Path, list[dict[str, Any]]], args: tuple[str, ...], code: int
) -> None:
    path, before = shared_repo
    if code == 0:
        assert zerofs(*args, repo=path, input=b"").stdout == b""
        assert log_json(path) == before
        return
    assert_fails(path, *args, expect=code, input=b"x", before=before)


def test_name_of_255_bytes_is_fine(zerofs: Any, cli_repo: Path) -> None:
    name = "/" + "n" * 255
    zerofs("write", name, input=b"long name")
    assert zerofs("cat", name).stdout == b"long name"


def test_missing_repository(zerofs: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    for args in (("ls", "/"), ("log",), ("cat", "/x"), ("write", "/x"), ("mkdir", "/x")):
        proc = zerofs(*args, repo=missing, expect=RepositoryError.exit_code, input=b"")
        line = assert_one_error_line(proc)
        assert f"zerofs --repo {missing} init" in line
    assert not missing.exists(), "a command other than init created the repository"


def test_corrupt_repository(zerofs: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "data.mdb").write_bytes(os.urandom(64 * 1024))
    for args in (("ls", "/"), ("log",), ("cat", "/x"), ("write", "/x"), ("stat", "/")):
        proc = zerofs(*args, repo=broken, expect=None, input=b"")
        assert proc.returncode in (RepositoryError.exit_code, CorruptionError.exit_code), (args, proc)
        assert_one_error_line(proc)


def test_newer_format_version(zerofs: Any, cli_repo: Path) -> None:
    from zerofs.store.local import decode_config_file, encode_config_file

    config_file = cli_repo / "config"
    config = json.loads(decode_config_file(config_file.read_bytes()) or b"{}")
    config["format_version"] = 99
    config_file.write_bytes(encode_config_file(json.dumps(config).encode()))
    for args in (("ls", "/"), ("log",), ("write", "/x")):
        proc = zerofs(*args, expect=RepositoryError.exit_code, input=b"")
        line = assert_one_error_line(proc)
        assert "upgrade" in line
        assert "99" in line


@pytest.mark.plain_only("format 2 came before encryption: no encrypted repository of format 2 can exist")
def test_a_development_format_is_refused_and_left_as_it_is(zerofs: Any, cli_repo: Path) -> None:
    # Format 2 was written only by development builds, before zstd payloads carried their CRC:
    # its compressed objects would all read as damaged, so every command refuses it, upgrade too.
    from zerofs.store.local import decode_config_file, encode_config_file

    config_file = cli_repo / "config"
    config = json.loads(decode_config_file(config_file.read_bytes()) or b"{}")
    config["format_version"] = 2
    config_file.write_bytes(encode_config_file(json.dumps(config).encode()))
    before = {p: p.read_bytes() for p in cli_repo.rglob("*") if p.is_file() and p.name != "index.mdb-lock"}
    for args in (("ls", "/"), ("log",), ("write", "/x"), ("upgrade",), ("fsck",)):
        proc = zerofs(*args, expect=RepositoryError.exit_code, input=b"")
        line = assert_one_error_line(proc)
        assert "development build" in line
        assert "import them into a new repository" in line
    after = {p: p.read_bytes() for p in cli_repo.rglob("*") if p.is_file() and p.name != "index.mdb-lock"}
    assert after == before


def test_help_lists_exit_codes(zerofs: Any, cli_repo: Path) -> None:
    out = zerofs("--help").stdout.decode()
    for code in (2, 3, 4, 5, 6):
        assert f"{code}: " in out


@pytest.fixture
def unreadable_tree(tmp_path: Path) -> Any:
    """A host tree with one file that cannot be read, even by root (see helpers.unreadable_file)."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "good.txt").write_bytes(b"good\n")
    with unreadable_file(host / "bad.bin"):
        yield host


def test_import_unreadable_file_fails_cleanly_or_is_skipped(zerofs: Any, cli_repo: Path, unreadable_tree: Path) -> None:
    before = log_json(cli_repo)
    proc = zerofs("import", str(unreadable_tree), "/data", expect=HostIOError.exit_code)
    assert_one_error_line(proc)
    assert "bad.bin" in proc.stderr
    assert "--skip-errors" in proc.stderr
    assert log_json(cli_repo) == before

    # Complete but for the file it could not read: committed, and exit 10 so a cron job can tell.
    proc = zerofs("import", "--skip-errors", "--json", str(unreadable_tree), "/data", expect=IncompleteError.exit_code)
    result = json.loads(proc.stdout)
    assert result["files"] == 1
    assert result["left_out"] == 1
    assert any("bad.bin" in w for w in result["warnings"])
    assert "warning" in proc.stderr
    assert "bad.bin" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "zerofs: imported, but left out 1 entry (see the warnings above)"
    assert zerofs("ls", "/data").stdout == b"good.txt\n"
    assert len(log_json(cli_repo)) == len(before) + 1
