"""Output conventions: progress on stderr only on a terminal and never with -q or --json; -q everywhere."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_zerofs, zerofs_command
from tests.damage import chunk_ids_of, flip_byte
from tests.e2e.helpers import assert_fails


def _run_with_tty_stderr(repo: Path, *args: str) -> tuple[int, bytes, bytes]:
    """Run zerofs with stderr on a pseudo-terminal; return (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        zerofs_command(repo, *args), stdout=subprocess.PIPE, stderr=slave, env=cli_env({"COLUMNS": "100"})
    )
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    assert proc.stdout is not None
    out = proc.stdout.read()
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, shown


@pytest.fixture
def big_repo(zerofs: object, cli_repo: Path, tmp_path: Path) -> Path:
    """A repository holding enough data that every long operation runs for a moment."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(400):
        (src / f"f{i}").write_bytes(os.urandom(20_000))
    subprocess.run(zerofs_command(cli_repo, "import", "-q", str(src), "/data"), check=True, env=cli_env())
    return cli_repo


@pytest.mark.parametrize(
    ("args", "shown_word"),
    [
        (("fsck", "--read-data"), b"checking"),
        (("gc",), b"gc:"),
        (("export", "/data", "{out}"), b"exporting"),
        (("import", "{src}", "/again"), b"importing"),
    ],
)
def test_progress_goes_to_a_terminal_stderr(
    big_repo: Path, tmp_path: Path, args: tuple[str, ...], shown_word: bytes
) -> None:
    """On a terminal stderr a long operation shows progress; stdout keeps only the result."""
    argv = [a.replace("{out}", str(tmp_path / "out")).replace("{src}", str(tmp_path / "src")) for a in args]
    code, out, shown = _run_with_tty_stderr(big_repo, *argv)
    assert code == 0, shown
    assert shown_word in shown
    assert shown_word not in out


@pytest.mark.parametrize("quiet", [["-q"], ["--json"]])
def test_no_progress_with_quiet_or_json(big_repo: Path, quiet: list[str]) -> None:
    """-q and --json keep the terminal free of progress."""
    code, _, shown = _run_with_tty_stderr(big_repo, "gc", *quiet)
    assert code == 0
    assert b"gc:" not in shown


def test_no_progress_when_stderr_is_piped(big_repo: Path) -> None:
    """Piped stderr (a script, a log file) gets no progress lines at all."""
    proc = subprocess.run(
        zerofs_command(big_repo, "fsck", "--read-data"), capture_output=True, env=cli_env(), check=False
    )
    assert proc.returncode == 0
    assert proc.stderr == b""


def _run_on_a_terminal(repo: Path, *args: str, env: dict[str, str]) -> bytes:
    """Run zerofs with stdout on a pseudo-terminal; return what it showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(zerofs_command(repo, *args), stdout=slave, stderr=slave, env=env)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=60)
    os.close(master)
    return shown


def test_a_terminal_gets_a_table_and_no_color_drops_only_the_colours(big_repo: Path) -> None:
    """On a terminal: a table with a header; NO_COLOR keeps the table but no colour codes; piped: tab-separated."""
    coloured = {k: v for k, v in cli_env().items() if k != "NO_COLOR"} | {"COLUMNS": "120", "TERM": "xterm"}
    shown = _run_on_a_terminal(big_repo, "log", env=coloured)
    assert b"\x1b[3" in shown  # a foreground colour
    plain = _run_on_a_terminal(big_repo, "log", env=coloured | {"NO_COLOR": "1"})
    assert b"\x1b[3" not in plain
    table = _run_on_a_terminal(big_repo, "ls", "-l", "/data", env=coloured | {"NO_COLOR": "1"})
    assert b"modified" in table  # the header row people read
    listing = zerofs_command(big_repo, "ls", "-l", "/data")
    piped = subprocess.run(listing, capture_output=True, env=cli_env(), check=True)
    assert b"modified" not in piped.stdout
    assert piped.stdout.splitlines()[0].count(b"\t") == 3


# -- -q on the commands that only print data: nothing printed, the exit status is the answer

QUIET_DATA_LINES = [
    ("ls", "-R", "/data"),
    ("cat", "/data/a.txt", "/data/d/b.bin"),
    ("stat", "/data/a.txt"),
    ("tree", "/"),
    ("log", "/data"),
    ("diff", "HEAD~1", "HEAD"),
    ("diff", "--stat", "HEAD~1", "HEAD"),
    ("du", "/data"),
    ("stats",),
]


@pytest.fixture
def two_commits(cli_repo: Path, tmp_path: Path) -> Path:
    """A repository whose last commit changed /data."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "d" / "b.bin").write_bytes(os.urandom(300_000))
    run_zerofs("import", "-q", str(src), "/data", repo=cli_repo)
    (src / "a.txt").write_text("alpha, changed\n")
    run_zerofs("import", "-q", str(src), "/data", repo=cli_repo)
    return cli_repo


@pytest.mark.parametrize("words", QUIET_DATA_LINES, ids=[" ".join(w) for w in QUIET_DATA_LINES])
def test_quiet_data_command_prints_nothing(two_commits: Path, words: tuple[str, ...]) -> None:
    loud = run_zerofs(*words, repo=two_commits)
    assert loud.stdout, "the same line without -q prints something"
    quiet = run_zerofs(*words[:1], "-q", *words[1:], repo=two_commits)
    assert (quiet.stdout, quiet.stderr) == (b"", "")


def test_quiet_data_command_still_fails_with_its_exit_status(two_commits: Path) -> None:
    line = assert_fails(two_commits, "stat", "-q", "/data/nope", expect=3)
    assert "/data/nope" in line
    assert_fails(two_commits, "ls", "-q", "/data/a.txt/x", expect=4)


def test_quiet_cat_still_reads_and_verifies_every_chunk(two_commits: Path) -> None:
    chunks = chunk_ids_of(two_commits, "/data/d/b.bin")
    flip_byte(two_commits, chunks[-1])
    run_zerofs("stat", "-q", "/data/d/b.bin", repo=two_commits)  # the node is intact
    line = assert_fails(two_commits, "cat", "-q", "/data/d/b.bin", expect=6)
    assert chunks[-1].hex()[:16] in line


def test_json_outranks_quiet(two_commits: Path) -> None:
    out = run_zerofs("stat", "-q", "--json", "/data/a.txt", repo=two_commits).stdout
    assert json.loads(out)["size"] == len("alpha, changed\n")
