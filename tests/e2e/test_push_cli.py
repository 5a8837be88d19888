"""zerofs push / pull between two repositories, through the CLI as subprocesses (issue #13)."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AUTHOR, Zerofs, cli_env, repo_secrets, run_zerofs, zerofs_command
from tests.damage import chunk_ids_of, drop, flip_byte, node_id_of
from tests.e2e.helpers import assert_fails, assert_one_error_line, log_json
from tests.e2e.test_output_conventions import _run_with_tty_stderr
from zerofs.chunking import ChunkParams
from zerofs.repo import Repository

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KILL_LEFTOVERS = {("pack", "warning"), ("leftover", "warning")}
COMPARES_IDS_ACROSS_REPOSITORIES = (
    "compares commit or object ids of the source and the destination: two encrypted repositories"
    " never share a key, so a push re-makes every object under the destination's ids"
    " (tests/unit/test_sync_rekey.py covers that)"
)


def head_of(repo: Path) -> str:
    """The commit id HEAD names."""
    return str(log_json(repo)[0]["commit"])


def push_json(source: Path, dest: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    """Run ``zerofs --repo SOURCE push --json DEST ARGS``; return its JSON."""
    return json.loads(run_zerofs("push", "--json", str(dest), *args, repo=source, expect=expect).stdout)


def assert_complete(repo: Path, *, after_kills: bool = False) -> None:
    """fsck --read-data finds nothing: every object of every commit is there and hashes to its id.

    ``after_kills``: killed writers leave packs without a trailer and packs
    nobody names, which fsck reports as warnings (gc reclaims them); nothing
    else may be reported.
    """
    report = json.loads(run_zerofs("fsck", "--read-data", "--json", repo=repo).stdout)
    findings = report["findings"]
    if after_kills:
        findings = [f for f in findings if (f["kind"], f["severity"]) not in KILL_LEFTOVERS]
    assert findings == [], findings
    assert report["summary"]["errors"] == 0


def make_host_tree(root: Path, n_files: int, seed: int = 1) -> None:
    """Files of random and repeated bytes in a few directories, one large enough to have several chunks."""
    rng = random.Random(seed)
    for index in range(n_files):
        directory = root / f"d{index % 7}" / f"e{index % 3}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_bytes(rng.randbytes(rng.randrange(0, 5000)) + b"x" * rng.randrange(0, 3000))
    (root / "big").write_bytes(rng.randbytes(3 << 20))
    (root / "link").symlink_to("big")


@pytest.fixture
def source(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> Path:
    """A repository with an imported tree and a few more commits."""
    host = tmp_path / "host"
    make_host_tree(host, 60)
    zerofs("import", "-q", str(host), "/data")
    zerofs("mkdir", "-p", "/snapshots")
    zerofs("clone", "-q", "/data", "/snapshots/one")
    zerofs("write", "/notes.txt", input=b"hello\n")
    return cli_repo


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A fresh repository (``zerofs init``)."""
    path = tmp_path / "dest"
    run_zerofs("init", "-q", repo=path)
    return path


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_push_into_a_fresh_repository_copies_every_commit_and_object(source: Path, dest: Path) -> None:
    result = push_json(source, dest)
    assert result["direction"] == "push"
    assert result["fast_forward"] is True
    assert result["up_to_date"] is False
    assert result["commits"] == len(log_json(source))  # init, import, mkdir, clone, write
    assert result["head_after"] == result["source_head"] == head_of(source)
    assert log_json(dest) == log_json(source)
    assert run_zerofs("cat", "/notes.txt", repo=dest).stdout == b"hello\n"
    assert (
        run_zerofs("cat", "/snapshots/one/big", repo=dest).stdout == run_zerofs("cat", "/data/big", repo=source).stdout
    )
    assert_complete(dest)
    stats = json.loads(run_zerofs("stats", "--json", repo=dest).stdout)
    assert result["objects"] <= stats["objects"]


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_second_push_is_up_to_date_and_a_small_change_sends_little(source: Path, dest: Path) -> None:
    full = push_json(source, dest)
    again = push_json(source, dest)
    assert again["up_to_date"] is True
    assert (again["commits"], again["objects"], again["bytes"]) == (0, 0, 0)
    run_zerofs("write", "/data/d3/e1/f10", input=b"changed\n", repo=source)
    change = push_json(source, dest)
    # The chunk, the directories on the path (d3/e1, d3, /data, root) and the commit.
    assert change["commits"] == 1
    assert change["objects"] == 6
    assert change["objects"] < full["objects"] / 10
    assert head_of(dest) == head_of(source)
    assert run_zerofs("cat", "/data/d3/e1/f10", repo=dest).stdout == b"changed\n"
    assert_complete(dest)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_plain_text_output_goes_to_stderr_and_quiet_prints_nothing(source: Path, dest: Path) -> None:
    proc = run_zerofs("push", str(dest), repo=source)
    assert proc.stdout == b""
    assert proc.stderr.startswith("pushed 5 commits, ")
    assert f"to {dest}: HEAD " in proc.stderr
    run_zerofs("write", "/more", input=b"1", repo=source)
    quiet = run_zerofs("push", "-q", str(dest), repo=source)
    assert (quiet.stdout, quiet.stderr) == (b"", "")
    assert head_of(dest) == head_of(source)


def test_dry_run_counts_what_a_push_sends_and_changes_nothing(source: Path, dest: Path) -> None:
    before = log_json(dest)
    planned = push_json(source, dest, "--dry-run")
    assert planned["dry_run"] is True
    assert planned["head_after"] == planned["head_before"] == before[0]["commit"]
    assert log_json(dest) == before
    assert json.loads(run_zerofs("stats", "--json", repo=dest).stdout)["objects"] == 2  # init's root and commit
    done = push_json(source, dest)
    assert (done["commits"], done["objects"], done["bytes"]) == (
        planned["commits"],
        planned["objects"],
        planned["bytes"],
    )


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_pull_fast_forwards_this_repository(source: Path, dest: Path) -> None:
    result = json.loads(run_zerofs("pull", "--json", str(source), repo=dest).stdout)
    assert result["direction"] == "pull"
    assert result["source"] == str(source)
    assert result["destination"] == str(dest)
    assert head_of(dest) == head_of(source)
    run_zerofs("mkdir", "/from-source", repo=source)
    text = run_zerofs("pull", str(source), repo=dest).stderr
    assert text.startswith("pulled 1 commits, 2 objects, ")
    assert f"from {source}: HEAD " in text
    assert run_zerofs("ls", "/", repo=dest).stdout.decode().split() == [
        "data",
        "from-source",
        "notes.txt",
        "snapshots",
    ]
    assert_complete(dest)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_non_fast_forward_is_refused_and_changes_no_ref_until_forced(source: Path, dest: Path) -> None:
    push_json(source, dest)
    run_zerofs("mkdir", "/only-in-dest", repo=dest)
    run_zerofs("mkdir", "/only-in-source", repo=source)
    dest_log = log_json(dest)
    line = assert_fails(source, "push", str(dest), expect=4)
    assert line.startswith(f"zerofs: push refused: {dest} has commits this repository lacks")
    assert "pull first, or pass --force" in line
    assert log_json(dest) == dest_log
    line = assert_fails(dest, "pull", str(source), expect=4)
    assert line.startswith(f"zerofs: pull refused: this repository has commits {source} lacks")
    assert log_json(dest) == dest_log
    forced = push_json(source, dest, "--force")
    assert forced["fast_forward"] is False
    assert head_of(dest) == head_of(source)
    assert_complete(dest)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_a_destination_behind_its_source_is_not_rewound_without_force(source: Path, dest: Path) -> None:
    push_json(source, dest)
    run_zerofs("mkdir", "/newer", repo=dest)
    newer = log_json(dest)
    assert_fails(source, "push", str(dest), expect=4)
    assert log_json(dest) == newer
    json.loads(run_zerofs("pull", "--json", str(dest), repo=source).stdout)
    assert head_of(source) == newer[0]["commit"]


def test_pushing_into_a_repository_with_other_chunk_parameters(source: Path, tmp_path: Path) -> None:
    other = tmp_path / "small-chunks"
    Repository.init(other, author=AUTHOR, chunk_params=ChunkParams(16384, 4096, 65536), **repo_secrets()).close()
    push_json(source, other)
    assert_complete(other)
    assert run_zerofs("cat", "/data/big", repo=other).stdout == run_zerofs("cat", "/data/big", repo=source).stdout
    # Content written in the destination is cut with its own parameters; pushing back is a fast-forward.
    run_zerofs("write", "/data/also-big", input=os.urandom(1 << 20), repo=other)
    assert json.loads(run_zerofs("pull", "--json", str(other), repo=source).stdout)["fast_forward"] is True
    assert_complete(source)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_a_source_whose_history_gc_cut_pushes_the_grafted_history(source: Path, dest: Path) -> None:
    run_zerofs("gc", "-q", "--keep-last", "2", repo=source)
    kept = log_json(source)
    assert len(kept) == 2
    push_json(source, dest)
    assert [c["commit"] for c in log_json(dest)] == [c["commit"] for c in kept]
    assert_complete(dest)
    run_zerofs("write", "/after-gc", input=b"x", repo=source)
    assert push_json(source, dest)["commits"] == 1
    assert len(log_json(dest)) == 3
    assert_complete(dest)


def test_a_damaged_source_object_fails_the_push_and_moves_no_ref(source: Path, dest: Path) -> None:
    damaged = chunk_ids_of(source, "/data/big")[1]
    flip_byte(source, damaged)
    before = log_json(dest)
    proc = run_zerofs("push", str(dest), repo=source, expect=6)
    line = assert_one_error_line(proc)
    # "does not match its hash: damaged on disk" when plain, "fails authentication" when encrypted
    assert f"object {damaged.hex()[:16]} " in line
    assert "(run zerofs fsck --read-data to see which paths it affects)" in line
    assert log_json(dest) == before
    assert_complete(dest)


# -- bad input ---------------------------------------------------------------------------


def test_pushing_a_repository_into_itself_is_refused(source: Path) -> None:
    line = assert_fails(source, "push", str(source), expect=2)
    assert line == f"zerofs: {source} and {source} are the same repository: nothing to push"
    via_dots = f"{source}/../{source.name}"
    assert_fails(source, "pull", via_dots, expect=2)


@pytest.mark.parametrize("kind", ["missing", "empty-dir", "other-files", "file"])
def test_a_destination_that_is_not_a_repository_is_refused(source: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "empty-dir":
        target.mkdir()
    elif kind == "other-files":
        target.mkdir()
        (target / "something").write_text("x")
    elif kind == "file":
        target.write_text("x")
    line = assert_fails(source, "push", str(target), expect=5)
    assert f"{target} (DESTINATION)" in line
    assert "--repo" not in line or kind in ("missing", "empty-dir")  # init's command names --repo
    assert not (target / "index.mdb").exists()


def test_a_source_that_is_not_a_repository_is_refused(dest: Path, tmp_path: Path) -> None:
    line = assert_fails(dest, "pull", str(tmp_path / "nowhere"), expect=5)
    assert f"no zerofs repository at {tmp_path / 'nowhere'} (SOURCE)" in line


def test_a_destination_of_an_older_format_is_refused(source: Path, tmp_path: Path) -> None:
    with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
        tar.extractall(tmp_path / "old", filter="data")
    (old,) = (tmp_path / "old").iterdir()
    files_before = sorted(p.name for p in old.iterdir())
    line = assert_fails(source, "push", str(old), expect=5)
    assert "format version 1" in line
    assert sorted(p.name for p in old.iterdir()) == files_before


def test_push_without_a_destination_is_a_usage_error(source: Path) -> None:
    proc = run_zerofs("push", repo=source, expect=2)
    assert "Traceback" not in proc.stderr
    assert "DESTINATION" in proc.stderr


# -- concurrency and kills -----------------------------------------------------------------


def _start_push(source: Path, dest: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        zerofs_command(source, "push", "--json", str(dest), *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )


@pytest.fixture
def large_source(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> Path:
    """A repository of about 20,000 small files: a push of it takes a second or so."""
    host = tmp_path / "host"
    rng = random.Random(5)
    for index in range(20_000):
        directory = host / f"d{index // 200}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_bytes(rng.randbytes(rng.randrange(200, 4000)))
    zerofs("import", "-q", str(host), "/data")
    zerofs("mkdir", "/more")
    return cli_repo


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_a_push_killed_at_random_instants_resumes_and_ends_the_same(large_source: Path, dest: Path) -> None:
    total = push_json(large_source, dest, "--dry-run")["objects"]
    remaining = total
    rng = random.Random(13)
    for delay in sorted(rng.uniform(0.2, 1.5) for _ in range(5)):
        proc = _start_push(large_source, dest)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        planned = push_json(large_source, dest, "--dry-run")
        # What a killed push made durable is never sent again.
        assert planned["objects"] <= remaining
        remaining = planned["objects"]
        if planned["up_to_date"]:
            break
        assert head_of(dest) != head_of(large_source)
    assert remaining < total, "no killed push made anything durable: kill later or push more"
    final = push_json(large_source, dest)
    assert final["objects"] == remaining
    assert head_of(dest) == head_of(large_source)
    assert_complete(dest, after_kills=True)
    listing = ("ls", "-R", "--json", "/")
    assert run_zerofs(*listing, repo=dest).stdout == run_zerofs(*listing, repo=large_source).stdout


def test_a_writer_committing_into_the_destination_during_a_push_loses_nothing(large_source: Path, dest: Path) -> None:
    push = _start_push(large_source, dest)
    made = []
    for index in range(30):
        run_zerofs("mkdir", f"/w{index}", repo=dest)
        made.append(f"w{index}")
        if push.poll() is not None:
            break
    out, err = push.communicate(timeout=120)
    assert push.returncode in (0, 4), err
    if push.returncode == 4:  # HEAD moved (or was no ancestor): one line, no ref of the push moved
        assert err.decode().count("\n") == 1
        assert b"moved while copying" in err or b"push refused" in err
    else:
        assert json.loads(out)["source_head"] in [c["commit"] for c in log_json(dest)]
    names = run_zerofs("ls", "/", repo=dest).stdout.decode().split()
    assert set(made) <= set(names)
    assert_complete(dest)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_gc_in_the_destination_during_pushes_never_breaks_it(large_source: Path, dest: Path) -> None:
    # Garbage in the destination that the push will reference again: a tree pushed, then forced away.
    push_json(large_source, dest)
    run_zerofs("init", "-q", repo=dest.parent / "empty")
    json.loads(run_zerofs("pull", "--json", "--force", str(dest.parent / "empty"), repo=dest).stdout)
    for _ in range(3):
        gc = subprocess.Popen(
            zerofs_command(dest, "gc", "-q"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
        )
        push = _start_push(large_source, dest, "--force")
        _, push_err = push.communicate(timeout=120)
        _, gc_err = gc.communicate(timeout=120)
        assert push.returncode == 0, push_err
        assert gc.returncode == 0, gc_err
        assert head_of(dest) == head_of(large_source)
        assert_complete(dest)
        json.loads(run_zerofs("pull", "--json", "--force", str(dest.parent / "empty"), repo=dest).stdout)


@pytest.mark.plain_only(COMPARES_IDS_ACROSS_REPOSITORIES)
def test_a_push_waits_until_a_gc_running_in_the_destination_has_finished(large_source: Path, dest: Path) -> None:
    push_json(large_source, dest)
    empty = dest.parent / "empty"
    run_zerofs("init", "-q", repo=empty)
    json.loads(run_zerofs("pull", "--json", "--force", str(empty), repo=dest).stdout)
    # Everything pushed is garbage now, and a gc sweeps it in steps, referrers first: commits,
    # then directories, then files. The push waits until the gc has finished (services/sync.py:
    # a transfer that failed beside a sweep would leave objects over garbage the gc forgets).
    path = "/data/d7/f1400"
    above = [node_id_of(large_source, p) for p in ("/data/d7", "/data", "/")]
    commits = [bytes.fromhex(c["commit"]) for c in log_json(large_source)]
    gc_lock = os.open(dest / "gc.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(gc_lock, fcntl.LOCK_EX)  # a gc is running
        for object_id in [*commits, *above]:  # its first step
            drop(dest, object_id)
        push = _start_push(large_source, dest)
        time.sleep(1.5)
        assert push.poll() is None, "the push did not wait for the gc"
        drop(dest, node_id_of(large_source, path))  # its last step; then it ends
    finally:
        os.close(gc_lock)
    out, err = push.communicate(timeout=120)
    assert push.returncode == 0, err
    assert json.loads(out)["commits"] == len(commits)
    assert head_of(dest) == head_of(large_source)
    assert_complete(dest)


def test_a_source_cut_by_gc_after_a_push_still_fast_forwards_and_the_destination_keeps_its_history(
    source: Path, dest: Path, repo_mode: str, request: pytest.FixtureRequest
) -> None:
    if repo_mode == "encrypted":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="bug (#15): a re-making push takes the source's grafted parents, so after the source's gc"
                " cut its history the new commit is no descendant of the destination's HEAD and is refused",
            )
        )
    push_json(source, dest)
    pushed = log_json(dest)
    run_zerofs("write", "/later", input=b"1", repo=source)
    run_zerofs("gc", "-q", "--keep-last", "1", repo=source)
    assert len(log_json(source)) == 1
    result = push_json(source, dest)
    assert (result["fast_forward"], result["commits"]) == (True, 1)
    assert log_json(dest)[1:] == pushed  # the destination did not run gc: its history stays
    assert_complete(dest)


@pytest.mark.parametrize("quiet", [[], ["-q"], ["--json"]])
def test_progress_shows_on_a_terminal_stderr_unless_quiet_or_json(
    large_source: Path, dest: Path, quiet: list[str]
) -> None:
    code, out, shown = _run_with_tty_stderr(large_source, "push", *quiet, str(dest))
    assert code == 0, shown
    assert (b"pushing" in shown) is not bool(quiet)
    assert b"pushing" not in out
    if quiet == ["--json"]:
        assert json.loads(out)["commits"] == 3
