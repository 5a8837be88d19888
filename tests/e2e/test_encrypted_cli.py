"""The command line on an encrypted repository (issue #15): init --encrypt, passwords, every command, the mount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import damage
from tests.conftest import run_zerofs
from tests.e2e.helpers import assert_one_error_line
from tests.e2e.mountutil import force_unmount, is_mounted, require_fuse
from zerofs.errors import CorruptionError
from zerofs.mount.run import mount_process

PASSWORD = "correct horse battery staple"
WITH_PASSWORD = {"ZEROFS_PASSWORD": PASSWORD}
LOCK_FILES = {"index.mdb-lock", "open.lock", "refs.log.lock", "writers.lock"}

pytestmark = pytest.mark.plain_only("it makes its own encrypted and plain repositories, with passwords of its own")


@pytest.fixture
def encrypted(zerofs: Any, repo_path: Path, tmp_path: Path) -> Path:
    """An encrypted repository made by ``zerofs init --encrypt``, holding /d/a.txt and /d/sub/b.bin."""
    proc = zerofs("init", "--encrypt", "--json", input=b"", env=WITH_PASSWORD)
    assert json.loads(proc.stdout)["encrypted"] is True
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_bytes(b"hello\n")
    (source / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    zerofs("import", "-q", str(source), "/d", input=b"", env=WITH_PASSWORD)
    return repo_path


def _files(repo: Path) -> dict[str, bytes]:
    """Every file of the repository and its bytes, but the lock files (their contents are no state)."""
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and path.name not in LOCK_FILES
    }


def test_every_command_works_with_the_password(zerofs: Any, encrypted: Path, tmp_path: Path) -> None:
    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[bytes]:
        return zerofs(*args, input=b"", env=WITH_PASSWORD, expect=expect)

    assert run("cat", "/d/a.txt").stdout == b"hello\n"
    assert run("ls", "/d").stdout.split() == [b"a.txt", b"sub"]
    run("clone", "/d", "/snap")
    assert run("cat", "/snap/a.txt").stdout == b"hello\n"
    log = [json.loads(line) for line in run("log", "--json").stdout.splitlines()]
    assert [commit["message"] for commit in log][-1] == "init"
    assert len(log) == 3
    run("export", "/d", str(tmp_path / "out"))
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"hello\n"
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == (tmp_path / "source" / "sub" / "b.bin").read_bytes()
    run("rm", "-r", "-q", "/snap")
    run("gc", "-q")
    run("fsck", "--read-data")
    run("fsck", "--rebuild-index")
    assert run("cat", "/d/a.txt").stdout == b"hello\n"


def test_the_password_from_a_file_or_a_command(zerofs: Any, encrypted: Path, tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    by_file = zerofs("cat", "/d/a.txt", input=b"", env={"ZEROFS_PASSWORD_FILE": str(password_file)})
    assert by_file.stdout == b"hello\n"
    by_command = zerofs("cat", "/d/a.txt", input=b"", env={"ZEROFS_PASSWORD_COMMAND": f"cat {password_file}"})
    assert by_command.stdout == b"hello\n"


@pytest.mark.parametrize(
    "args",
    [("cat", "/d/a.txt"), ("ls", "/"), ("clone", "/d", "/e"), ("rm", "-r", "/d"), ("gc",), ("fsck", "--rebuild-index")],
)
def test_a_wrong_password_exits_12_and_changes_nothing(zerofs: Any, encrypted: Path, args: tuple[str, ...]) -> None:
    before = _files(encrypted)
    proc = zerofs(*args, input=b"", env={"ZEROFS_PASSWORD": "wrong"}, expect=12)
    assert proc.stderr.strip().splitlines() == ["zerofs: wrong password: none of the 1 key slots opens with it"]
    assert proc.stdout == b""
    assert _files(encrypted) == before


def test_no_password_and_no_terminal_is_one_line_exit_2(zerofs: Any, encrypted: Path) -> None:
    before = _files(encrypted)
    proc = zerofs("cat", "/d/a.txt", input=b"", expect=2)
    variables = "ZEROFS_PASSWORD_FILE, ZEROFS_PASSWORD_COMMAND or ZEROFS_PASSWORD"
    assert proc.stderr.strip().splitlines() == [f"zerofs: no password: set {variables}, or run on a terminal"]
    assert _files(encrypted) == before


def test_init_encrypt_without_a_password_creates_nothing(zerofs: Any, repo_path: Path) -> None:
    proc = zerofs("init", "--encrypt", input=b"", expect=2)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not repo_path.exists()


def test_a_plain_repository_never_reads_a_password(zerofs: Any, cli_repo: Path) -> None:
    failing = {"ZEROFS_PASSWORD_COMMAND": "false"}  # would fail the command if it were run
    zerofs("write", "-q", "/x", input=b"plain", env=failing)
    assert zerofs("cat", "/x", input=b"", env=failing).stdout == b"plain"
    assert json.loads(zerofs("init", "--json", "-q", repo=cli_repo.parent / "other").stdout)["encrypted"] is False


def test_completion_on_an_encrypted_repository_completes_nothing(encrypted: Path) -> None:
    env = {
        **os.environ,
        **WITH_PASSWORD,
        "ZEROFS_REPO": str(encrypted),
        "_ZEROFS_COMPLETE": "complete_bash",
        "COMP_WORDS": "zerofs cat /d",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "zerofs"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout.split(), proc.stderr) == (0, [], "")


def test_a_mount_asks_once_and_keeps_the_password_out_of_its_process(encrypted: Path, tmp_path: Path) -> None:
    require_fuse()
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    run_zerofs("mount", str(mountpoint), repo=encrypted, input=b"", env=WITH_PASSWORD, timeout=60)
    try:
        assert is_mounted(mountpoint)
        assert (mountpoint / "d" / "a.txt").read_bytes() == b"hello\n"
        (mountpoint / "d" / "new.txt").write_bytes(b"written through the mount")
        pid = mount_process(encrypted, mountpoint)
        assert pid is not None
        for name in ("environ", "cmdline"):
            assert PASSWORD.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
        [core] = [line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "core file" in line]
        assert core.split()[4:6] == ["0", "0"]  # no core dump can carry its keys
    finally:
        if is_mounted(mountpoint):
            proc = run_zerofs("umount", str(mountpoint), repo=encrypted, input=b"", expect=None)
            if proc.returncode != 0:
                force_unmount(mountpoint)
    assert not is_mounted(mountpoint)
    read = run_zerofs("cat", "/d/new.txt", repo=encrypted, input=b"", env=WITH_PASSWORD)
    assert read.stdout == b"written through the mount"


def test_fsck_names_the_store_paths_a_damaged_sealed_chunk_and_directory_affect(zerofs: Any, encrypted: Path) -> None:
    """A flipped bit in a sealed chunk and in a sealed directory: fsck names the paths, kind and detail, exit 6."""
    zerofs("write", "-p", "-q", "/e/f.txt", input=b"below the damaged directory\n", env=WITH_PASSWORD)
    zerofs("clone", "/d", "/snap", input=b"", env=WITH_PASSWORD)
    secret = PASSWORD.encode()
    chunk = damage.chunk_ids_of(encrypted, "/d/sub/b.bin", secret)[0]
    directory = damage.node_id_of(encrypted, "/e", secret)
    damage.flip_byte(encrypted, chunk, 40, password=secret)
    damage.flip_byte(encrypted, directory, 10, password=secret)
    cat = zerofs("cat", "/d/sub/b.bin", input=b"", env=WITH_PASSWORD, expect=CorruptionError.exit_code)
    assert "fails authentication" in assert_one_error_line(cat)
    assert cat.stdout == b""
    assert _fsck_findings(zerofs, ()) == {("/e", directory.hex(), "dir")}  # chunks: presence only
    assert _fsck_findings(zerofs, ("--read-data",)) == {
        ("/e", directory.hex(), "dir"),
        ("/d/sub/b.bin", chunk.hex(), "chunk"),
        ("/snap/sub/b.bin", chunk.hex(), "chunk"),
    }
    text = zerofs("fsck", "--read-data", input=b"", env=WITH_PASSWORD, expect=CorruptionError.exit_code)
    errors = [line for line in text.stdout.decode().splitlines() if line.startswith("error:")]
    assert any(line.startswith("error: hash-mismatch: /d/sub/b.bin (") for line in errors)
    assert assert_one_error_line(text) == "zerofs: fsck found 3 problems (see above)"


def _fsck_findings(zerofs: Any, args: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """``zerofs fsck --json ARGS`` on the damaged repository: exit 6, every finding an authentication failure.

    Returns (path, object, the kind the detail names) of each finding.
    """
    proc = zerofs("fsck", "--json", *args, input=b"", env=WITH_PASSWORD, expect=CorruptionError.exit_code)
    findings = json.loads(proc.stdout)["findings"]
    found = set()
    for finding in findings:
        assert (finding["kind"], finding["severity"]) == ("hash-mismatch", "error")
        detail = finding["detail"]
        assert "fails authentication as a " in detail, detail
        found.add((finding["path"], finding["object"], detail.split("fails authentication as a ")[1].split(":")[0]))
    assert len(found) == len(findings)
    return found


def test_push_and_pull_between_two_encrypted_repositories_with_the_password_in_the_variable(
    zerofs: Any, encrypted: Path, tmp_path: Path
) -> None:
    """``ZEROFS_PASSWORD`` opens both ends, as a password file does, though it is dropped once read."""
    other = tmp_path / "other"
    zerofs("init", "--encrypt", "-q", repo=other, input=b"", env=WITH_PASSWORD)
    zerofs("push", str(other), input=b"", env=WITH_PASSWORD)
    assert zerofs("cat", "/d/a.txt", repo=other, input=b"", env=WITH_PASSWORD).stdout == b"hello\n"
    zerofs("write", "/d/back.txt", repo=other, input=b"from the other end", env=WITH_PASSWORD)
    zerofs("pull", str(other), input=b"", env=WITH_PASSWORD)
    assert zerofs("cat", "/d/back.txt", input=b"", env=WITH_PASSWORD).stdout == b"from the other end"


def _slots(zerofs: Any, password: str) -> list[dict[str, Any]]:
    proc = zerofs("key", "list", "--json", input=b"", env={"ZEROFS_PASSWORD": password})
    slots: list[dict[str, Any]] = json.loads(proc.stdout)
    return slots


def test_key_add_list_remove_passwd(zerofs: Any, encrypted: Path, tmp_path: Path) -> None:
    new_file = tmp_path / "new"
    new_file.write_text("second\n")
    [first] = _slots(zerofs, PASSWORD)
    assert first["is_current"] is True
    assert first["kdf"] == "argon2id"
    assert first["time_cost"] >= 1
    assert first["memory_kib"] >= 8
    # The last slot is never removed, --force or not.
    for force in ((), ("--force",)):
        zerofs("key", "remove", *force, first["id"], input=b"", env=WITH_PASSWORD, expect=4)
    added = json.loads(
        zerofs("key", "add", "--json", "--new-password-file", str(new_file), input=b"", env=WITH_PASSWORD).stdout
    )["added"]
    slots = _slots(zerofs, "second")
    assert {slot["id"] for slot in slots} == {first["id"], added}
    assert [slot["id"] for slot in slots if slot["is_current"]] == [added]
    # The slot the password given opens is kept unless --force.
    proc = zerofs("key", "remove", first["id"], input=b"", env=WITH_PASSWORD, expect=4)
    assert len(proc.stderr.strip().splitlines()) == 1
    zerofs("key", "remove", first["id"], input=b"", env={"ZEROFS_PASSWORD": "second"})
    # A removed password is useless.
    zerofs("cat", "/d/a.txt", input=b"", env=WITH_PASSWORD, expect=12)
    assert zerofs("cat", "/d/a.txt", input=b"", env={"ZEROFS_PASSWORD": "second"}).stdout == b"hello\n"
    # passwd: the new password opens, the old one no longer does.
    new_file.write_text("third\n")
    zerofs("key", "passwd", "--new-password-file", str(new_file), input=b"", env={"ZEROFS_PASSWORD": "second"})
    zerofs("cat", "/d/a.txt", input=b"", env={"ZEROFS_PASSWORD": "second"}, expect=12)
    assert [slot["is_current"] for slot in _slots(zerofs, "third")] == [True]


def test_key_add_never_takes_the_new_password_from_the_environment(zerofs: Any, encrypted: Path) -> None:
    before = _files(encrypted)
    proc = zerofs("key", "add", input=b"", env=WITH_PASSWORD, expect=2)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _files(encrypted) == before


def test_key_commands_with_a_wrong_password_change_nothing(zerofs: Any, encrypted: Path, tmp_path: Path) -> None:
    new_file = tmp_path / "new"
    new_file.write_text("second\n")
    before = _files(encrypted)
    wrong = {"ZEROFS_PASSWORD": "wrong"}
    zerofs("key", "add", "--new-password-file", str(new_file), input=b"", env=wrong, expect=12)
    zerofs("key", "passwd", "--new-password-file", str(new_file), input=b"", env=wrong, expect=12)
    assert _files(encrypted) == before


def test_key_list_on_a_plain_repository_is_refused(zerofs: Any, cli_repo: Path) -> None:
    proc = zerofs("key", "list", input=b"", expect=5)
    assert len(proc.stderr.strip().splitlines()) == 1


def _on_a_terminal(args: list[str], typed: list[bytes], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``args`` with a pseudo-terminal as its controlling terminal and stdin; type ``typed`` at each prompt."""
    import pty

    pid, master = pty.fork()
    if pid == 0:  # the child: exec at once, nothing of pytest's state runs here
        os.execve(sys.executable, [sys.executable, *args], env)
    output = b""
    try:
        for n_prompts, line in enumerate(typed, start=1):
            while output.count(b"assword") < n_prompts or not output.rstrip().endswith(b":"):
                output += _read_terminal(master)
            os.write(master, line + b"\n")
        while chunk := _read_terminal(master):
            output += chunk
    finally:
        os.close(master)  # a child still waiting for a password gets SIGHUP
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def _read_terminal(master: int, timeout: float = 30.0) -> bytes:
    """What the child wrote to the terminal next; b"" once it closed it; fails the test after ``timeout``."""
    import select

    readable, _, _ = select.select([master], [], [], timeout)
    assert readable, "the command neither prompted nor finished"
    try:
        return os.read(master, 4096)
    except OSError:  # EIO: the child closed the terminal
        return b""


def test_init_encrypt_asks_twice_on_a_terminal_without_echo(repo_path: Path) -> None:
    from tests.conftest import cli_env

    env = cli_env()
    for name in ("ZEROFS_PASSWORD", "ZEROFS_PASSWORD_FILE", "ZEROFS_PASSWORD_COMMAND"):
        env.pop(name, None)
    args = ["-m", "zerofs", "--repo", str(repo_path), "init", "--encrypt"]
    code, output = _on_a_terminal(args, [b"typed-secret", b"typed-secret"], env)
    assert code == 0, output
    assert output.count(b"assword") == 2
    assert b"typed-secret" not in output  # never echoed
    read = run_zerofs("ls", "/", repo=repo_path, input=b"", env={"ZEROFS_PASSWORD": "typed-secret"})
    assert read.stdout == b""


def test_push_and_pull_between_repositories_of_two_passwords_without_a_terminal(
    zerofs: Any, encrypted: Path, tmp_path: Path
) -> None:
    """ZEROFS_OTHER_PASSWORD* opens push's DESTINATION and pull's SOURCE; this repository keeps its own."""
    other = tmp_path / "other"
    zerofs("init", "--encrypt", repo=other, input=b"", env={"ZEROFS_PASSWORD": "other password"})
    other_file = tmp_path / "other.pw"
    other_file.write_text("other password\n")
    # One password for both: the other repository refuses it, and nothing moves.
    proc = zerofs("push", str(other), input=b"", env=WITH_PASSWORD, expect=12)
    assert_one_error_line(proc)
    for source in (
        {"ZEROFS_OTHER_PASSWORD_FILE": str(other_file)},
        {"ZEROFS_OTHER_PASSWORD_COMMAND": f"cat {other_file}"},
        {"ZEROFS_OTHER_PASSWORD": "other password"},
    ):
        zerofs("push", str(other), input=b"", env={**WITH_PASSWORD, **source})
        assert zerofs("cat", "/d/a.txt", repo=other, input=b"", env={"ZEROFS_PASSWORD": "other password"}).stdout == (
            b"hello\n"
        )
    zerofs("write", "/from-other.txt", repo=other, input=b"back\n", env={"ZEROFS_PASSWORD": "other password"})
    zerofs("pull", str(other), input=b"", env={**WITH_PASSWORD, "ZEROFS_OTHER_PASSWORD_FILE": str(other_file)})
    assert zerofs("cat", "/from-other.txt", input=b"", env=WITH_PASSWORD).stdout == b"back\n"
    # The other variables never open this repository, and a file and a command together are refused.
    proc = zerofs("cat", "/d/a.txt", input=b"", env={"ZEROFS_OTHER_PASSWORD": PASSWORD}, expect=2)
    assert "ZEROFS_PASSWORD_FILE" in assert_one_error_line(proc)
    both = {"ZEROFS_OTHER_PASSWORD_FILE": str(other_file), "ZEROFS_OTHER_PASSWORD_COMMAND": "true"}
    proc = zerofs("push", str(other), input=b"", env={**WITH_PASSWORD, **both}, expect=2)
    assert "ZEROFS_OTHER_PASSWORD_FILE and ZEROFS_OTHER_PASSWORD_COMMAND" in assert_one_error_line(proc)


def test_a_password_command_sees_neither_password_variable(zerofs: Any, encrypted: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    zerofs("init", "--encrypt", repo=other, input=b"", env={"ZEROFS_PASSWORD": "other password"})
    seen = tmp_path / "seen"
    script = tmp_path / "pw.sh"
    script.write_text(f'#!/bin/sh\nenv > "{seen}"\necho "other password"\n')
    script.chmod(0o755)
    zerofs(
        "push",
        str(other),
        input=b"",
        env={**WITH_PASSWORD, "ZEROFS_OTHER_PASSWORD_COMMAND": str(script), "ZEROFS_OTHER_PASSWORD": "unused"},
    )
    environment = seen.read_text()
    assert "ZEROFS_OTHER_PASSWORD_COMMAND=" in environment  # the script did run with the caller's environment
    assert PASSWORD not in environment
    assert "unused" not in environment
