"""zerofs upgrade: a repository made by zerofs 0.1.0 (format 1) converted in place, crash-safely.

The fixture (tests/fixtures/format1.tar.gz, made by make_format1.py against
that version) holds five commits after a gc that cut history (a graft table),
a chunk-list level, a sharded directory, names with a newline, invalid UTF-8
and 255 bytes; format1.json is what each commit held, read back by 0.1.0.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, zerofs_command
from tests.e2e.helpers import assert_one_error_line
from zerofs.errors import ConflictError, RepositoryError

FIXTURES = Path(__file__).parent.parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "format1.json").read_text())

pytestmark = pytest.mark.plain_only(
    "format 1 predates encryption: its fixture is a plain repository, and upgrade reads only plain ones"
)

MANIFEST = r"""
import hashlib, json, os, sys
from zerofs.content import iter_file_bytes
from zerofs.history import iter_log
from zerofs.objects import Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.tree import walk

commits = []
with Repository.open(sys.argv[1], readonly=True) as repo:
    for commit_id, commit in iter_log(repo):
        files = {}
        for path, entry in walk(repo, commit.root_id, StorePath()):
            key = os.fsdecode(str(path).encode("utf-8", "surrogateescape"))
            if entry.kind is Kind.FILE:
                files[key] = hashlib.sha256(b"".join(iter_file_bytes(repo, entry.id))).hexdigest()[:16]
            else:
                files[key] = entry.kind.name
        commits.append({"id": commit_id.hex(), "message": commit.message, "files": files})
print(json.dumps({"commits": commits}, sort_keys=True))
"""


@pytest.fixture
def old_repo(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "repo"


def manifest(repo: Path) -> dict[str, Any]:
    """What every commit holds, read through the current code (as make_format1.py read it through 0.1.0)."""
    out = subprocess.run(
        [sys.executable, "-c", MANIFEST, str(repo)], env=cli_env(), capture_output=True, check=True
    ).stdout
    return json.loads(out)


def files_of(repo: Path) -> dict[str, str]:
    """Every file of a repository directory and a digest of its bytes (lock files aside)."""
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not p.name.endswith((".lock", "-lock"))
    }


@pytest.mark.parametrize(
    "args",
    [("ls", "/"), ("log",), ("cat", "/notes.txt"), ("write", "/x"), ("fsck",), ("gc",), ("stats",), ("du", "/")],
)
def test_commands_on_format1_name_upgrade_and_change_nothing(zerofs: Any, old_repo: Path, args: tuple[str]) -> None:
    before = files_of(old_repo)
    proc = zerofs(*args, repo=old_repo, expect=RepositoryError.exit_code, input=b"new")
    line = assert_one_error_line(proc)
    assert "format version 1" in line
    assert line.endswith("(run zerofs upgrade)")
    assert files_of(old_repo) == before


def test_upgrade_keeps_every_commit_byte_for_byte(zerofs: Any, old_repo: Path) -> None:
    status = zerofs("upgrade", repo=old_repo).stderr
    assert status.startswith(f"converted the repository at {old_repo}: "), status
    assert manifest(old_repo) == EXPECTED  # same commit ids, messages, paths and bytes
    assert not (old_repo / "data.mdb").exists()
    assert (old_repo / "config").exists()
    fsck = zerofs("fsck", "--read-data", repo=old_repo).stdout.decode()
    assert fsck.rstrip().endswith("0 errors, 0 warnings"), fsck
    # The converted repository takes writes, and gc keeps what history holds.
    zerofs("write", "/after", repo=old_repo, input=b"after upgrade")
    zerofs("gc", repo=old_repo)
    assert zerofs("cat", "/after", repo=old_repo).stdout == b"after upgrade"
    assert manifest(old_repo)["commits"][1:] == EXPECTED["commits"]
    again = zerofs("upgrade", repo=old_repo).stderr
    assert again == f"the repository at {old_repo} is already of the current format\n"


def test_upgrade_json(zerofs: Any, old_repo: Path) -> None:
    data = json.loads(zerofs("upgrade", "--json", repo=old_repo).stdout)
    assert set(data) == {"repository", "converted", "objects", "damaged_objects", "stored_bytes"}
    assert data["converted"] is True
    assert data["damaged_objects"] == 0
    assert data["objects"] > 600


def test_upgrade_needs_the_repository_alone(zerofs: Any, old_repo: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_SH); print('open', flush=True); time.sleep(30)",
            str(old_repo / "open.lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"open"
        before = files_of(old_repo)
        line = assert_one_error_line(zerofs("upgrade", repo=old_repo, expect=ConflictError.exit_code))
        assert "open in another process" in line
        assert files_of(old_repo) == before
    finally:
        holder.kill()
        holder.wait()


DRIVER = r"""
import os, sys
from zerofs.store import legacy
from zerofs.repo import Repository

def die(*args, **kwargs):
    os._exit(9)

if sys.argv[2] == "copied":
    legacy.write_file_durably = die  # the copy is durable; the new config is not written yet
else:
    legacy.remove_legacy_files = die  # the new config is in place; format 1's files are not removed yet
Repository.upgrade(sys.argv[1])
"""


def test_killed_after_the_copy_leaves_the_old_repository(zerofs: Any, old_repo: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(old_repo), "copied"], env=cli_env(), check=False)
    assert proc.returncode == 9
    assert (old_repo / "packs").is_dir()  # the half-made new repository is there, and ignored
    line = assert_one_error_line(zerofs("ls", "/", repo=old_repo, expect=RepositoryError.exit_code))
    assert line.endswith("(run zerofs upgrade)")
    zerofs("upgrade", repo=old_repo)
    assert manifest(old_repo) == EXPECTED


def test_killed_after_the_switch_leaves_the_new_repository(zerofs: Any, old_repo: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(old_repo), "switched"], env=cli_env(), check=False)
    assert proc.returncode == 9
    assert (old_repo / "data.mdb").exists()
    assert manifest(old_repo) == EXPECTED  # already the new repository
    fsck = zerofs("fsck", repo=old_repo).stdout.decode()
    assert "warning: leftover: data.mdb is left over from an interrupted operation" in fsck
    again = zerofs("upgrade", repo=old_repo).stderr
    assert again.endswith("is already of the current format; removed what an interrupted conversion left\n")
    assert not (old_repo / "data.mdb").exists()
    assert "warning:" not in zerofs("fsck", repo=old_repo).stdout.decode()


def test_sigkill_at_random_instants_leaves_old_or_new(zerofs: Any, tmp_path: Path) -> None:
    rng = random.Random(11)
    delays = sorted(rng.uniform(0.0, 0.6) for _ in range(8))
    outcomes = set()
    for n, delay in enumerate(delays):
        target = tmp_path / f"kill{n}"
        target.mkdir()
        with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
            tar.extractall(target, filter="data")
        repo = target / "repo"
        proc = subprocess.Popen(
            zerofs_command(repo, "upgrade"), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if (repo / "config").exists():
            outcomes.add("new")
        else:
            outcomes.add("old")
            line = assert_one_error_line(zerofs("ls", "/", repo=repo, expect=RepositoryError.exit_code))
            assert line.endswith("(run zerofs upgrade)")
            zerofs("upgrade", repo=repo)
        assert manifest(repo) == EXPECTED, f"killed after {delay:.3f} s"
    assert outcomes  # which of the two each kill left depends on the machine's speed
