"""`zerofs` alone, `zerofs help COMMAND`, and suggestions for mistyped names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Zerofs
from tests.e2e.helpers import assert_one_error_line


def test_zerofs_alone_prints_a_short_summary(zerofs: Zerofs, tmp_path: Path) -> None:
    """With no arguments: a usage line and one line per command on stderr, exit 2; shorter than --help."""
    alone = zerofs(expect=2)
    full = zerofs("--help").stdout.decode()
    summary = str(alone.stderr)
    assert summary.startswith("usage: zerofs")
    for command in ("init", "import", "clone", "ls", "cat", "log", "gc", "mount", "umount", "help"):
        assert f"\n  {command} " in summary, command
    assert len(summary.splitlines()) < len(full.splitlines())
    assert alone.stdout == b""


@pytest.mark.parametrize("command", ["clone", "mount", "gc", "help"])
def test_help_command_is_the_commands_help(zerofs: Zerofs, command: str) -> None:
    """`zerofs help X` prints exactly what `zerofs X --help` prints."""
    assert zerofs("help", command).stdout == zerofs(command, "--help").stdout


def test_help_alone_is_the_main_help(zerofs: Zerofs) -> None:
    """`zerofs help` prints `zerofs --help`."""
    assert zerofs("help").stdout == zerofs("--help").stdout


def test_help_of_an_unknown_command_suggests_one(zerofs: Zerofs) -> None:
    """A mistyped command name gets one error line naming the close command."""
    line = assert_one_error_line(zerofs("help", "clnoe", expect=2))
    assert "did you mean clone?" in line
    assert "did you mean" in assert_one_error_line(zerofs("clnoe", expect=2)).lower()


def test_a_mistyped_store_path_suggests_close_names(zerofs: Zerofs, cli_repo: Path) -> None:
    """ "no such path in the store: /dat (did you mean /data?)", exit 3, for reads and for changes."""
    zerofs("mkdir", "/data")
    zerofs("write", "/data/notes.txt", input=b"x")
    assert assert_one_error_line(zerofs("ls", "/dat", expect=3)) == (
        "zerofs: no such path in the store: /dat (did you mean /data?)"
    )
    assert "(did you mean /data/notes.txt?)" in assert_one_error_line(zerofs("cat", "/data/ntoes.txt", expect=3))
    assert "(did you mean /data?)" in assert_one_error_line(zerofs("rm", "/dta", expect=3))
