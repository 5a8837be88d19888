"""Several real processes commit at once; HEAD moves by compare-and-swap, so no commit is lost."""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import cli_env, repo_password, repo_secrets, zerofs_command
from tests.e2e.helpers import log_json

WRITERS = 4
COMMITS_EACH = 15


def writer_script(repo: Path, i: int) -> str:
    """A shell loop: one `mkdir -p` and then `write`s, each its own zerofs process and commit."""
    zerofs = shlex.join(zerofs_command(repo))
    lines = ["set -e", f"{zerofs} mkdir -p /p{i}/sub"]
    for j in range(COMMITS_EACH - 1):
        lines.append(f"printf 'writer {i} file {j}' | {zerofs} write /p{i}/f{j}")
    return "\n".join(lines)


def test_concurrent_writers_lose_nothing(zerofs: Any, cli_repo: Path) -> None:
    procs = [
        subprocess.Popen(
            ["sh", "-c", writer_script(cli_repo, i)], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(WRITERS)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=False):
        assert p.returncode == 0, err.decode()
        assert b"Traceback" not in err
    history = log_json(cli_repo)
    assert len(history) == 1 + WRITERS * COMMITS_EACH
    assert history[-1]["message"] == "init"
    for newer, older in itertools.pairwise(history):
        assert newer["parents"] == [older["commit"]]
    messages = [h["message"] for h in history]
    for i in range(WRITERS):
        assert f"mkdir -p /p{i}/sub" in messages
        for j in range(COMMITS_EACH - 1):
            assert any(m.startswith(f"write /p{i}/f{j} ") for m in messages), (i, j)
    paths = [f"/p{i}/f{j}" for i in range(WRITERS) for j in range(COMMITS_EACH - 1)]
    expected = b"".join(b"writer %d file %d" % (i, j) for i in range(WRITERS) for j in range(COMMITS_EACH - 1))
    assert zerofs("cat", *paths).stdout == expected
    for i in range(WRITERS):
        assert zerofs("ls", f"/p{i}/sub").stdout == b""


def test_concurrent_python_writers_in_one_directory(tmp_path: Path) -> None:
    """Library-level writers (no CLI start-up) all committing into the same directory."""
    from zerofs.repo import Repository

    path = tmp_path / "repo"
    Repository.init(path, author="test@host", **repo_secrets()).close()
    code = textwrap.dedent(f"""
        import io, sys
        from pathlib import Path
        from zerofs.repo import Repository
        from zerofs.paths import StorePath
        from zerofs.services import edit
        i = int(sys.argv[1])
        with Repository.open(Path({str(path)!r}), password={repo_password()!r}) as repo:
            for j in range(25):
                edit.write_file(repo, StorePath.parse(f"/shared/w{{i}}-{{j}}"), io.BytesIO(b"%d-%d" % (i, j)),
                                parents=True)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], env=cli_env(), stderr=subprocess.PIPE)
        for i in range(WRITERS)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    from zerofs.dirnodes import list_dir
    from zerofs.history import head, iter_log
    from zerofs.paths import StorePath
    from zerofs.services import browse
    from zerofs.tree import lookup

    with Repository.open(path, **repo_secrets()) as repo:
        assert len(list(iter_log(repo))) == 1 + WRITERS * 25
        shared = lookup(repo, head(repo)[1].root_id, StorePath.parse("/shared"))
        assert len(list_dir(repo, shared.id)) == WRITERS * 25
        for i in range(WRITERS):
            for j in range(25):
                data = b"".join(browse.read_file(repo, StorePath.parse(f"/shared/w{i}-{j}")))
                assert data == b"%d-%d" % (i, j)
