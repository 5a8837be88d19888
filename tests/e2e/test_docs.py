"""Man pages and completion scripts are generated from the CLI and shipped up to date."""

from __future__ import annotations

import json
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


COMPLETION_OPENS_NO_ENCRYPTED_REPOSITORY = (
    "completion never reads a password: on an encrypted repository it completes nothing"
    " (test_encrypted_cli checks that)"
)


def _complete(repo: Path, words: str) -> list[str]:
    env = {
        **os.environ,
        "ZEROFS_REPO": str(repo),
        "_ZEROFS_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    proc = subprocess.run([sys.executable, "-m", "zerofs"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout.split()


@pytest.mark.plain_only(COMPLETION_OPENS_NO_ENCRYPTED_REPOSITORY)
def test_completion_offers_store_paths_from_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = [sys.executable, "-m", "zerofs", "--repo", str(repo)]
    subprocess.run([*base, "init", "-q"], check=True)
    subprocess.run([*base, "mkdir", "-p", "-q", "/data/sub"], check=True)
    subprocess.run([*base, "write", "-q", "/data/file.txt"], input=b"x", check=True)
    subprocess.run([*base, "mkdir", "-q", "/data/.hidden"], check=True)
    subprocess.run([*base, "mkdir", "-q", "/dance"], check=True)
    assert _complete(repo, "zerofs cat /da") == ["/dance/", "/data/"]
    assert _complete(repo, "zerofs ls /data/") == ["/data/file.txt", "/data/sub/"]
    assert _complete(repo, "zerofs ls /data/.") == ["/data/.hidden/"]
    assert _complete(repo, "zerofs clone HEAD~3:/d") == ["HEAD~3:/data/"]
    assert _complete(repo, "zerofs cat /nope/x") == []
    assert _complete(repo, "zerofs cat HEAD~99:/") == []


def test_completion_without_a_repository_is_silent(tmp_path: Path) -> None:
    assert _complete(tmp_path / "absent", "zerofs cat /d") == []


@pytest.mark.plain_only(COMPLETION_OPENS_NO_ENCRYPTED_REPOSITORY)
def test_completion_offers_revisions_where_one_is_expected(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = [sys.executable, "-m", "zerofs", "--repo", str(repo)]
    subprocess.run([*base, "init", "-q"], check=True)
    subprocess.run([*base, "mkdir", "-q", "/data"], check=True)
    log = subprocess.run([*base, "log", "--json"], check=True, capture_output=True, text=True).stdout
    newest = json.loads(log.splitlines()[0])["commit"][:12]
    assert _complete(repo, "zerofs diff HEAD") == ["HEAD", "HEAD~1"]
    assert _complete(repo, "zerofs ls HEAD~") == ["HEAD~1:/"]
    assert _complete(repo, f"zerofs cat {newest[:6]}") == [f"{newest}:/"]
    assert _complete(repo, "zerofs mount --at HE") == ["HEAD", "HEAD~1"]
    assert _complete(repo, "zerofs mkdir HE") == []  # a new path is never a revision
