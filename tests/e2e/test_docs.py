"""Man pages and completion scripts are generated from the CLI and shipped up to date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_man_pages_and_completions_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zerofs.cli.docs", "--check"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_command_has_a_man_page() -> None:
    pages = {p.name for p in (ROOT / "man").glob("*.1")}
    for command in (
        "init",
        "import",
        "clone",
        "snapshot",
        "write",
        "mkdir",
        "rm",
        "mv",
        "ls",
        "cat",
        "stat",
        "tree",
        "log",
        "export",
    ):
        assert f"zerofs-{command}.1" in pages


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "man").glob("*.1")))
def test_man_page_renders_without_warnings(page: str) -> None:
    proc = subprocess.run(
        ["man", "--warnings", "-l", str(ROOT / "man" / page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"):
        assert section in proc.stdout


def test_bash_completion_entry_point_offers_subcommands() -> None:
    env = {**os.environ, "_ZEROFS_COMPLETE": "complete_bash", "COMP_WORDS": "zerofs cl", "COMP_CWORD": "1"}
    proc = subprocess.run([sys.executable, "-m", "zerofs"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "clone" in proc.stdout.split()
    assert "cat" not in proc.stdout.split()
