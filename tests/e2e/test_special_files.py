"""FIFOs, sockets and character and block devices (issue #12): through the mount, import, export and the CLI.

The mount is driven with real tools (mkfifo, mknod, stat, ls, cp -a, tar) and real processes (a FIFO
read by one process and written by another, a Unix socket bound and connected through the mount
path); the CLI is run as a subprocess. The tests run as root, so devices can be made; what an
unprivileged user meets is checked as nobody (a mount with --allow-other) and as root without
CAP_MKNOD (``setpriv --bounding-set -mknod``: the CLI's interpreter is not readable by nobody).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Zerofs, cli_env, zerofs_command
from tests.e2e.helpers import assert_fails, gc_leaves_it_clean
from tests.e2e.mountutil import eventually, mounted
from zerofs.errors import ConflictError, IncompleteError

NOBODY = 65534
MTIME_NS = 1_234_567_890_123_456_789
WITHOUT_MKNOD = ["setpriv", "--bounding-set", "-mknod"]

# (file type, permission bits, uid, gid, device number): what a special file's lstat shows.
Special = tuple[str, int, int, int, tuple[int, int] | None]


def describe(path: Path) -> Special:
    """The type, mode, owner and (for a device) the device numbers of ``path``, not following it."""
    st = os.lstat(path)
    kinds = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}
    kind = kinds.get(stat.S_IFMT(st.st_mode), f"other {stat.S_IFMT(st.st_mode):o}")
    device = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("chardev", "blockdev") else None
    return kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, device


def bind_socket(path: Path) -> None:
    """Leave a socket file at ``path`` (bound, then closed: the file stays, as it does on any file system)."""
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
    finally:
        sock.close()


def make_specials(root: Path) -> dict[str, Special]:
    """A FIFO, a socket, a character and a block device, with their own modes, owners and mtimes."""
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "pipe", 0o640)
    bind_socket(root / "sock")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "loop", stat.S_IFBLK | 0o660, os.makedev(7, 200))
    (root / "file.txt").write_bytes(b"regular\n")
    for name, mode, owner in (("pipe", 0o640, 1234), ("sock", 0o751, 0), ("null", 0o666, 0), ("loop", 0o660, 6)):
        os.chmod(root / name, mode)
        os.chown(root / name, owner, owner + 1, follow_symlinks=False)
        os.utime(root / name, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    return specials_below(root)


def specials_below(root: Path) -> dict[str, Special]:
    """Every special file below ``root`` by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        if not (path.is_dir() or path.is_file()) or path.is_symlink():
            found[str(path.relative_to(root))] = describe(path)
    return found


def ls_json(zerofs: Zerofs, path: str) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(zerofs("ls", "--json", path).stdout)}


def run(*argv: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr}"
    return proc


# ---------------------------------------------------------------- the mount


def test_fifo_in_the_mount_carries_data_from_one_process_to_another(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: mkfifo works in the mount, and a writer and a reader meet through the mount path."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        run("mkfifo", "-m", "0620", str(m.path / "pipe"))
        assert describe(m.path / "pipe") == ("fifo", 0o620, 0, 0, None)
        reader = subprocess.Popen(["cat", str(m.path / "pipe")], stdout=subprocess.PIPE)
        writer = subprocess.run(
            ["sh", "-c", f"printf 'through the mount\\n' > '{m.path / 'pipe'}'"], timeout=30, check=True
        )
        out, _ = reader.communicate(timeout=30)
        assert writer.returncode == 0
        assert out == b"through the mount\n"
        assert run("stat", "-c", "%F %a", str(m.path / "pipe")).stdout == "fifo 620\n"
        assert run("ls", "-l", str(m.path)).stdout.splitlines()[1].startswith("prw--w---- ")
    rows = ls_json_from(cli_repo, "/")
    assert rows["pipe"]["type"] == "fifo"
    assert rows["pipe"]["mode"] == "0620"
    assert rows["pipe"]["size"] == 0


def ls_json_from(repo: Path, path: str) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(zerofs_command(repo, "ls", "--json", path), capture_output=True, env=cli_env(), check=True)
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_mknod_devices_show_their_numbers_and_stay_closed(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Pins: mknod of character and block devices; stat(1) and ls -l show type and numbers; nodev refuses open."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        run("mknod", "-m", "0666", str(m.path / "null"), "c", "1", "3")
        run("mknod", "-m", "0660", str(m.path / "loop"), "b", "7", "200")
        assert describe(m.path / "null") == ("chardev", 0o666, 0, 0, (1, 3))
        assert describe(m.path / "loop") == ("blockdev", 0o660, 0, 0, (7, 200))
        assert run("stat", "-c", "%F %t:%T", str(m.path / "null")).stdout == "character special file 1:3\n"
        assert run("stat", "-c", "%F %t:%T", str(m.path / "loop")).stdout == "block special file 7:c8\n"
        listing = {line.split()[-1]: line for line in run("ls", "-l", str(m.path)).stdout.splitlines()[1:]}
        assert re.match(r"crw-rw-rw- 1 root root +1, +3 ", listing["null"]), listing["null"]
        assert re.match(r"brw-rw---- 1 root root +7, +200 ", listing["loop"]), listing["loop"]
        # The mount is nodev (libfuse's default): a device in it cannot be opened, not even by root.
        with pytest.raises(PermissionError):
            (m.path / "null").read_bytes()
    long_lines = {
        line.split("\t")[-1]: line.split("\t") for line in zerofs("ls", "-l", "/").stdout.decode().splitlines()
    }
    assert long_lines["null"][:2] == ["crw-rw-rw-", "1,3"]
    assert long_lines["loop"][:2] == ["brw-rw----", "7,200"]
    rows = ls_json(zerofs, "/")
    assert (rows["null"]["type"], rows["null"]["major"], rows["null"]["minor"]) == ("chardev", 1, 3)
    assert (rows["loop"]["type"], rows["loop"]["major"], rows["loop"]["minor"]) == ("blockdev", 7, 200)
    stat_lines = dict(line.split("\t", 1) for line in zerofs("stat", "/loop").stdout.decode().splitlines())
    assert stat_lines["type"] == "blockdev"
    assert stat_lines["mode"] == "brw-rw---- (0660)"
    assert stat_lines["device"] == "7,200"
    assert stat_lines["size"] == "0"


def test_unix_socket_binds_and_connects_through_the_mount(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: bind(2) of a Unix socket at a mount path creates it there, and a client connects by that path."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        path = m.path / "server.sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.listen(1)
        client = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket, sys; c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); "
                "c.sendall(b'hello over the mount'); print(c.recv(100).decode())",
                str(path),
            ],
            stdout=subprocess.PIPE,
        )
        try:
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                assert conn.recv(100) == b"hello over the mount"
                conn.sendall(b"answered")
            out, _ = client.communicate(timeout=30)
        finally:
            server.close()
        assert out == b"answered\n"
        assert describe(path)[0] == "socket"
        assert run("stat", "-c", "%F", str(path)).stdout == "socket\n"
    assert ls_json_from(cli_repo, "/")["server.sock"]["type"] == "socket"


def test_special_files_are_renamed_removed_and_cloned(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Pins: rename and unlink of special files in the mount; a clone shares their nodes and works when mounted."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        (m.path / "d").mkdir()
        os.mkfifo(m.path / "d" / "p")
        os.mknod(m.path / "d" / "c", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        os.mknod(m.path / "d" / "gone", stat.S_IFIFO | 0o600)
        os.rename(m.path / "d" / "p", m.path / "d" / "q")
        os.rename(m.path / "d" / "c", m.path / "c-moved")
        os.unlink(m.path / "d" / "gone")
        assert sorted(os.listdir(m.path / "d")) == ["q"]
        assert describe(m.path / "c-moved")[4] == (1, 5)
        with pytest.raises(FileNotFoundError):
            os.lstat(m.path / "d" / "p")
    zerofs("clone", "/d", "/snap")
    original, clone = ls_json(zerofs, "/d")["q"], ls_json(zerofs, "/snap")["q"]
    assert clone["type"] == "fifo"
    assert clone["id"] == original["id"]
    assert ls_json(zerofs, "/")["c-moved"]["major"] == 1
    with mounted(cli_repo, tmp_path / "mnt") as m:
        assert describe(m.path / "snap" / "q")[0] == "fifo"
        reader = subprocess.Popen(["cat", str(m.path / "snap" / "q")], stdout=subprocess.PIPE)
        (m.path / "snap" / "q").write_bytes(b"clone works\n")
        assert reader.communicate(timeout=30)[0] == b"clone works\n"
        os.unlink(m.path / "snap" / "q")
    assert "q" in ls_json(zerofs, "/d")
    assert ls_json(zerofs, "/snap") == {}


AS_NOBODY = """
import errno, os, socket, sys
os.chdir(sys.argv[1])  # as root: the test's directories above the mount are root's alone
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
results = []
for make in (
    lambda: os.mkfifo("pipe"),
    lambda: socket.socket(socket.AF_UNIX).bind("sock"),
    lambda: os.mknod("dev", 0o20644, os.makedev(1, 3)),
):
    try:
        make()
        results.append("OK")
    except OSError as exc:
        results.append(errno.errorcode[exc.errno])
print(" ".join(results))
"""


def test_nobody_makes_fifos_and_sockets_but_not_devices(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: without CAP_MKNOD the kernel refuses a device before the mount sees it; FIFOs and sockets work."""
    with mounted(cli_repo, tmp_path / "mnt", "--allow-other") as m:
        (m.path / "open").mkdir()
        os.chmod(m.path / "open", 0o777)
        proc = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, str(m.path / "open")], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["OK", "OK", "EPERM"]
        assert sorted(os.listdir(m.path / "open")) == ["pipe", "sock"]
        assert describe(m.path / "open" / "pipe")[::2] == ("fifo", NOBODY, None)
        assert describe(m.path / "open" / "sock")[::2] == ("socket", NOBODY, None)


def test_cp_a_and_tar_carry_special_files_into_and_out_of_the_mount(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: cp -a and tar copy a tree with special files into the mount and back out, types and numbers kept."""
    host = tmp_path / "host"
    expected = make_specials(host / "tree")
    archived = {name: found for name, found in expected.items() if found[0] != "socket"}  # tar skips sockets
    with mounted(cli_repo, tmp_path / "mnt") as m:
        run("cp", "-a", str(host / "tree"), str(m.path / "copy"))
        assert specials_below(m.path / "copy") == expected
        run("tar", "-C", str(host / "tree"), "-cf", str(tmp_path / "t.tar"), ".")
        (m.path / "untarred").mkdir()
        run("tar", "-C", str(m.path / "untarred"), "-xpf", str(tmp_path / "t.tar"))
        assert specials_below(m.path / "untarred") == archived
        run("cp", "-a", str(m.path / "copy"), str(tmp_path / "out"))
        assert specials_below(tmp_path / "out") == expected
        assert (tmp_path / "out" / "file.txt").read_bytes() == b"regular\n"
        run("tar", "-C", str(m.path / "copy"), "-cf", str(tmp_path / "from-mount.tar"), ".")
        (tmp_path / "untar-out").mkdir()
        run("tar", "-C", str(tmp_path / "untar-out"), "-xpf", str(tmp_path / "from-mount.tar"))
        assert specials_below(tmp_path / "untar-out") == archived


# ---------------------------------------------------------------- import, export and the CLI


def test_import_stores_special_files_and_export_recreates_them(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Pins: modes, owners, mtimes and device numbers survive import and export; a re-import changes nothing."""
    expected = make_specials(tmp_path / "host")
    result = json.loads(zerofs("import", "--json", str(tmp_path / "host"), "/h").stdout)
    assert (result["specials"], result["files"], result["warnings"]) == (4, 1, [])
    rows = ls_json(zerofs, "/h")
    assert {name: row["type"] for name, row in rows.items()} == {
        "pipe": "fifo",
        "sock": "socket",
        "null": "chardev",
        "loop": "blockdev",
        "file.txt": "file",
    }
    assert (rows["loop"]["major"], rows["loop"]["minor"]) == (7, 200)
    assert "major" not in rows["pipe"]
    assert rows["pipe"]["mtime_ns"] == MTIME_NS
    exported = json.loads(zerofs("export", "--json", "/h", str(tmp_path / "out")).stdout)
    assert (exported["specials"], exported["warnings"]) == (4, [])
    assert specials_below(tmp_path / "out") == expected
    assert all(os.lstat(tmp_path / "out" / n).st_mtime_ns == MTIME_NS for n in ("pipe", "sock", "null", "loop"))
    zerofs("import", str(tmp_path / "out"), "/again")
    assert zerofs("diff", "/h", "/again").stdout == b""


def test_a_lone_fifo_is_imported_and_exported(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    os.mkfifo(tmp_path / "pipe", 0o600)
    zerofs("import", str(tmp_path / "pipe"), "/p")
    assert zerofs("stat", "--json", "/p").stdout.count(b'"type": "fifo"') == 1
    zerofs("export", "/p", str(tmp_path / "back"))
    assert describe(tmp_path / "back")[:2] == ("fifo", 0o600)


def test_export_without_cap_mknod_skips_devices_with_a_warning(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Pins: a device the host refuses is one warning line each; everything else is exported, exit 10."""
    make_specials(tmp_path / "host")
    zerofs("import", str(tmp_path / "host"), "/h")
    proc = subprocess.run(
        [*WITHOUT_MKNOD, *zerofs_command(cli_repo, "export", "/h", str(tmp_path / "out"))],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == IncompleteError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("zerofs: warning: ")]
    assert len(warnings) == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == "zerofs: exported, but left out 2 entries (see the warnings above)"
    assert any(f"character device {tmp_path / 'out' / 'null'} (1,3)" in w for w in warnings)
    assert any(f"block device {tmp_path / 'out' / 'loop'} (7,200)" in w for w in warnings)
    assert sorted(os.listdir(tmp_path / "out")) == ["file.txt", "pipe", "sock"]
    assert describe(tmp_path / "out" / "pipe") == ("fifo", 0o640, 1234, 1235, None)


def test_diff_reports_a_new_device_number_and_a_new_type(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    """Pins: another device number is an M; a FIFO that became a socket is a D and an A."""
    host = tmp_path / "host"
    host.mkdir()
    os.mknod(host / "dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mkfifo(host / "x", 0o600)
    zerofs("import", str(host), "/d")
    zerofs("clone", "/d", "/before")
    os.unlink(host / "dev")
    os.mknod(host / "dev", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    os.unlink(host / "x")
    bind_socket(host / "x")
    os.chmod(host / "x", 0o600)
    for name in ("dev", "x"):
        os.utime(host / name, ns=(MTIME_NS, MTIME_NS))
    zerofs("import", str(host), "/d")
    changes = json.loads(zerofs("diff", "--json", "/before", "/d").stdout)["changes"]
    assert [(c["status"], c["path"], c["type"]) for c in changes] == [
        ("M", "/d/dev", "chardev"),
        ("D", "/d/x", "fifo"),
        ("A", "/d/x", "socket"),
    ]


def test_du_counts_special_files_as_zero_bytes(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    host = tmp_path / "host"
    make_specials(host)
    (host / "file.txt").unlink()
    zerofs("import", str(host), "/s")
    (row,) = json.loads(zerofs("du", "--json", "/s").stdout)
    assert row["apparent_bytes"] == 0
    (fifo,) = json.loads(zerofs("du", "--json", "/s/pipe").stdout)
    assert (fifo["type"], fifo["apparent_bytes"]) == ("special", 0)


def test_gc_keeps_special_nodes_and_fsck_verifies_them(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    make_specials(tmp_path / "host")
    zerofs("import", str(tmp_path / "host"), "/h")
    zerofs("rm", "/h/sock")
    gc_leaves_it_clean(cli_repo, "special files")
    assert sorted(ls_json(zerofs, "/h")) == ["file.txt", "loop", "null", "pipe"]


def test_cat_of_a_fifo_is_one_error_line(cli_repo: Path, tmp_path: Path, zerofs: Zerofs) -> None:
    os.mkfifo(tmp_path / "pipe")
    zerofs("import", str(tmp_path / "pipe"), "/p")
    line = assert_fails(cli_repo, "cat", "/p", expect=ConflictError.exit_code)
    assert line == "zerofs: is a fifo: /p (it has no contents in the store)"


def test_a_mount_and_a_reader_thread_share_one_fifo(cli_repo: Path, tmp_path: Path) -> None:
    """A FIFO created through the mount and opened by this process from two threads: blocking semantics kept."""
    with mounted(cli_repo, tmp_path / "mnt") as m:
        os.mkfifo(m.path / "p")
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append((m.path / "p").read_bytes()))
        reader.start()
        with open(m.path / "p", "wb") as pipe:
            pipe.write(b"x" * 200_000)  # more than a pipe buffer: the writer waits for the reader
        reader.join(timeout=30)
        assert got == [b"x" * 200_000]


def test_write_refuses_a_special_file_and_makes_a_regular_file_over_a_symlink(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """Pins: ``write`` never turns a FIFO into a file; a file written over a symlink has a regular file's mode."""
    host = tmp_path / "host"
    host.mkdir()
    os.mkfifo(host / "pipe")
    (host / "link").symlink_to("elsewhere")
    zerofs("import", str(host), "/h")
    line = assert_fails(cli_repo, "write", "/h/pipe", input=b"data", expect=ConflictError.exit_code)
    assert line == "zerofs: is a special file: /h/pipe (remove it first: zerofs rm /h/pipe)"
    zerofs("write", "/h/link", input=b"now a file")
    written = ls_json(zerofs, "/h")["link"]
    assert (written["type"], written["mode"]) == ("file", "0644")
    assert zerofs("stat", "/h/link").stdout.decode().splitlines()[2] == "mode\t-rw-r--r-- (0644)"
    assert zerofs("cat", "/h/link").stdout == b"now a file"


def test_a_live_mount_follows_a_fifo_replaced_by_a_socket_elsewhere(
    cli_repo: Path, tmp_path: Path, zerofs: Zerofs
) -> None:
    """Pins: a name whose special file changed type in another process is shown with its new type, not EIO."""
    host = tmp_path / "host"
    host.mkdir()
    os.mkfifo(host / "x")
    zerofs("import", str(host), "/d")
    with mounted(cli_repo, tmp_path / "mnt") as m:
        assert describe(m.path / "d" / "x")[0] == "fifo"
        os.unlink(host / "x")
        bind_socket(host / "x")
        zerofs("import", str(host), "/d")

        def shows_socket() -> None:
            assert describe(m.path / "d" / "x")[0] == "socket"
            assert run("stat", "-c", "%F", str(m.path / "d" / "x")).stdout == "socket\n"

        eventually(shows_socket, timeout=10)
