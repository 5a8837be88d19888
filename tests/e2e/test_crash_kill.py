"""SIGKILL at random instants during import, write and gc; then ``fsck --read-data``.

A mount killed the same way is tests/e2e/test_mount_crash.py, which also
runs gc after each kill and asks fsck for a clean bill.

Issue 11 asks the storage engine for a durability order: a writer makes its
pack durable before the index transaction that names its blobs and moves
HEAD, so a process killed at any instant leaves at most an unindexed pack
tail or a pack nobody names, which gc reclaims. Each scenario here runs the
real CLI as a child process and kills it with SIGKILL about eight times, at
instants spread from its start-up to after it would have finished, and after
each kill checks that:

- ``fsck --read-data`` passes (warnings allowed: a dead writer's pack);
- the history is what it was, or that plus the commit(s) the killed command
  makes: no earlier commit is lost;
- everything HEAD held before the kill reads back byte for byte (against the
  host data), and so does what the killed command committed, if it did;
- the repository still takes writes, and a gc afterwards leaves it clean:
  ``fsck --read-data`` then reports no warning at all (gc reclaims the packs
  and pack tails the dead process left).

The kill delays come from a seeded ``random.Random``: fractions of how long
the same command takes when left alone (measured first), so every run kills
at the same points of the work, however fast the machine. Failure messages
name the scenario's seed, the round and the delay.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, run_zerofs, zerofs_command
from tests.e2e.helpers import fsck_warnings, gc_leaves_it_clean, head_files, log_json

KILLS = 8
"""Kills per scenario."""
LATEST_FRACTION = 1.15
"""The latest kill, as a fraction of the command's undisturbed run time (later ones hit a finished process)."""
MiB = 1 << 20


# -- killing --------------------------------------------------------------------------------------------


def kill_fractions(rng: random.Random, n: int = KILLS, latest: float = LATEST_FRACTION) -> list[float]:
    """``n`` instants in [0, latest): one drawn from each of ``n`` equal strata, the first very early, shuffled.

    Stratified so that start-up, the middle of the work and its final commit all get a kill; shuffled
    so that the state a kill leaves behind meets kills at every other instant in later rounds.
    """
    width = latest / n
    fractions = [width * (i + rng.random()) for i in range(n)]
    fractions[0] = rng.uniform(0.0, 0.05)
    rng.shuffle(fractions)
    return fractions


@contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Kill ``proc`` on the way out if it still runs, and wait for it."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def run_and_kill(
    repo: Path, args: list[str], delay: float, stdin_path: Path | None = None, env: dict[str, str] | None = None
) -> bool:
    """Start ``zerofs ARGS``, SIGKILL it ``delay`` seconds after it started; True if it was still running.

    A command that exits before its kill must have succeeded. ``env``: variables added to its environment.
    """
    with tempfile.TemporaryFile() as err, open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.Popen(
            zerofs_command(repo, *args),
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**cli_env(), **(env or {})},
        )
        with reaped(proc):
            time.sleep(delay)
            was_running = proc.poll() is None
            if was_running:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode == 0:  # finished first (also between the poll and the signal)
        return False
    assert was_running, f"zerofs {' '.join(args)} failed before its kill: {proc.returncode}\n{stderr}"
    assert proc.returncode == -signal.SIGKILL, f"zerofs {args[0]} was not killed: {proc.returncode} {stderr}"
    return True


def timed(
    repo: Path, *args: str, stdin_path: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, bytes]:
    """Run ``zerofs ARGS`` to completion as a child process, as ``run_and_kill`` does; its wall time and output."""
    with open(stdin_path or os.devnull, "rb") as stdin:
        start = time.monotonic()
        proc = subprocess.run(
            zerofs_command(repo, *args),
            stdin=stdin,
            capture_output=True,
            env={**cli_env(), **(env or {})},
            check=False,
            timeout=120,
        )
        elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"zerofs {' '.join(args)}: exit {proc.returncode}\n{proc.stderr.decode()}"
    return elapsed, proc.stdout


# -- checking -------------------------------------------------------------------------------------------


def under(files: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``files`` below the store directory ``prefix``."""
    return {path: value for path, value in files.items() if path.startswith(prefix + "/")}


def outside(files: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``files`` not below the store directory ``prefix``."""
    return {path: value for path, value in files.items() if not path.startswith(prefix + "/")}


def host_files(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` (relative path -> bytes)."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def assert_reads_back(repo: Path, store_dir: str, host_dir: Path, scratch: Path, context: str) -> None:
    """``store_dir`` in HEAD exports (into ``scratch``) to exactly the files of ``host_dir``, byte for byte."""
    target = Path(tempfile.mkdtemp(dir=scratch, prefix="export-"))
    try:
        run_zerofs("export", "-q", store_dir, str(target / "tree"), repo=repo, timeout=300)
        expected = host_files(host_dir)
        actual = host_files(target / "tree")
        assert sorted(actual) == sorted(expected), f"{context}: {store_dir} does not hold the files of {host_dir}"
        wrong = [name for name, data in expected.items() if actual[name] != data]
        assert not wrong, f"{context}: {store_dir} reads back other bytes than the host's in {wrong[:10]}"
    finally:
        shutil.rmtree(target)


def assert_history_kept(before: list[dict[str, Any]], after: list[dict[str, Any]], context: str, op: str) -> bool:
    """The log is ``before``, or ``before`` plus one commit made by ``op``; True if that commit landed."""
    if after == before:
        return False
    assert after[1:] == before, (
        f"{context}: history is neither what it was nor that plus one commit:\n"
        f"before: {[c['message'] for c in before]}\nafter: {[c['message'] for c in after]}"
    )
    assert after[0]["operation"]["op"] == op, f"{context}: the new commit is not the {op}: {after[0]}"
    return True


def write_after(repo: Path, name: str, context: str) -> None:
    """The repository takes a new write after the kill, and serves it."""
    data = f"written after {context}".encode()
    proc = run_zerofs("write", name, repo=repo, input=data, expect=None)
    assert proc.returncode == 0, f"{context}: zerofs write after the kill failed: {proc.returncode}\n{proc.stderr}"
    assert run_zerofs("cat", name, repo=repo).stdout == data


# -- host data ------------------------------------------------------------------------------------------


@contextmanager
def scratch_dir(path: Path) -> Iterator[Path]:
    """``path`` as a fresh directory, on a tmpfs of its own where it can be mounted.

    Creating tens of thousands of small host files costs seconds on the test machines' disks, and
    nothing here needs them on a disk (the repositories stay on ``tmp_path``).
    Falls back to a plain directory where no tmpfs can be mounted.
    """
    path.mkdir()
    is_tmpfs = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "zerofs-test", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield path
    finally:
        if is_tmpfs:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory for host data and exports, on a tmpfs where possible (see ``scratch_dir``)."""
    with scratch_dir(tmp_path / "scratch") as path:
        yield path


def make_tree(root: Path, rng: random.Random, big: list[int], n_small: int, max_small: int) -> int:
    """Fill ``root`` with large files of the sizes ``big`` and ``n_small`` small ones in subdirectories."""
    total = 0
    root.mkdir(parents=True)
    for i, size in enumerate(big):
        (root / f"big{i}").write_bytes(rng.randbytes(size))
        total += size
    for i in range(n_small):
        directory = root / "small" / f"d{i // 100:02}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(0, max_small)
        (directory / f"f{i}").write_bytes(rng.randbytes(size))
        total += size
    return total


# -- (1) import -----------------------------------------------------------------------------------------


def test_sigkill_during_import(cli_repo: Path, scratch: Path) -> None:
    """An import of large files (several packs) and many small ones, killed at any instant, loses nothing."""
    kill_imports(cli_repo, scratch, 1101)


def kill_imports(cli_repo: Path, scratch: Path, seed: int) -> None:
    """Import new trees into ``cli_repo``, killing each import at another instant; check the repository each time."""
    rng = random.Random(seed)
    base = scratch / "base"
    make_tree(base, rng, [3 * MiB, 5 * MiB], 60, 20_000)
    run_zerofs("import", str(base), "/base", repo=cli_repo)

    def new_tree(k: int) -> Path:
        root = scratch / f"h{k}"
        total = make_tree(root, rng, [15 * MiB, 17 * MiB, 13 * MiB, 19 * MiB], 400, 16_000)
        assert total > 64 * MiB
        return root

    # The undisturbed import: its time sets the kill instants, and it is the first landed tree.
    landed = new_tree(0)
    duration, _ = timed(cli_repo, "import", str(landed), "/imp")
    assert_reads_back(cli_repo, "/imp", landed, scratch, "the undisturbed import")
    full_packs = [p for p in (cli_repo / "packs").rglob("*.pack") if p.stat().st_size > 16 * MiB]
    assert len(full_packs) >= 2, "the import did not span several packs"

    killed = 0
    for k, fraction in enumerate(kill_fractions(rng), start=1):
        delay = fraction * duration
        context = f"import, seed {seed}, round {k}, SIGKILL after {delay:.3f} s ({fraction:.2f} of {duration:.2f} s)"
        host = new_tree(k)
        before = log_json(cli_repo)
        head_before = head_files(cli_repo)

        killed += run_and_kill(cli_repo, ["import", str(host), "/imp"], delay)

        fsck_warnings(cli_repo, context)
        is_landed = assert_history_kept(before, log_json(cli_repo), context, "import")
        head = head_files(cli_repo)
        assert outside(head, "/imp") == outside(head_before, "/imp"), f"{context}: HEAD outside /imp changed"
        assert_reads_back(cli_repo, "/base", base, scratch, context)
        if is_landed:
            assert_reads_back(cli_repo, "/imp", host, scratch, context)
            shutil.rmtree(landed)
            landed = host
        else:
            assert head == head_before, f"{context}: HEAD changed, but no commit landed"
            assert_reads_back(cli_repo, "/imp", landed, scratch, context)

        write_after(cli_repo, f"/after-{k}", context)
        if not is_landed:
            # Import the same tree again (the files' cache, the dead import's pack): it must land whole.
            run_zerofs("import", str(host), "/imp", repo=cli_repo)
            assert_reads_back(cli_repo, "/imp", host, scratch, f"{context}, imported again")
            shutil.rmtree(landed)
            landed = host
        gc_leaves_it_clean(cli_repo, context, "--keep-last", "2")

    assert killed >= KILLS // 2, f"only {killed} of {KILLS} imports were still running when killed"
    assert_reads_back(cli_repo, "/imp", landed, scratch, "import, after the last gc")
    assert_reads_back(cli_repo, "/base", base, scratch, "import, after the last gc")


# -- (2) write ------------------------------------------------------------------------------------------


def test_sigkill_during_write(cli_repo: Path, scratch: Path) -> None:
    """``zerofs write`` of a 40 MiB stream (two packs), killed at any instant, loses nothing."""
    seed = 1102
    rng = random.Random(seed)
    run_zerofs("write", "/first", input=b"the first file", repo=cli_repo)

    def new_stream(k: int) -> Path:
        path = scratch / f"stream{k}"
        path.write_bytes(rng.randbytes(40 * MiB + rng.randint(0, MiB)))
        return path

    landed = new_stream(0)
    duration, _ = timed(cli_repo, "write", "/stream", stdin_path=landed)
    full_packs = [p for p in (cli_repo / "packs").rglob("*.pack") if p.stat().st_size > 16 * MiB]
    assert len(full_packs) == 1, "the write did not fill a pack and start another"
    assert run_zerofs("cat", "/stream", repo=cli_repo).stdout == landed.read_bytes()

    killed = 0
    for k, fraction in enumerate(kill_fractions(rng), start=1):
        delay = fraction * duration
        context = f"write, seed {seed}, round {k}, SIGKILL after {delay:.3f} s ({fraction:.2f} of {duration:.2f} s)"
        stream = new_stream(k)
        before = log_json(cli_repo)
        head_before = head_files(cli_repo)

        killed += run_and_kill(cli_repo, ["write", "/stream"], delay, stdin_path=stream)

        fsck_warnings(cli_repo, context)
        is_landed = assert_history_kept(before, log_json(cli_repo), context, "write")
        head = head_files(cli_repo)
        assert run_zerofs("cat", "/first", repo=cli_repo).stdout == b"the first file", context
        if is_landed:
            assert {p: v for p, v in head.items() if p != "/stream"} == {
                p: v for p, v in head_before.items() if p != "/stream"
            }, f"{context}: the write changed other paths"
            assert run_zerofs("cat", "/stream", repo=cli_repo).stdout == stream.read_bytes(), (
                f"{context}: the landed write does not read back"
            )
            landed.unlink()
            landed = stream
        else:
            assert head == head_before, f"{context}: HEAD changed, but no commit landed"
            assert run_zerofs("cat", "/stream", repo=cli_repo).stdout == landed.read_bytes(), (
                f"{context}: the stream committed before the kill does not read back"
            )
            stream.unlink()
        write_after(cli_repo, f"/after-{k}", context)
        gc_leaves_it_clean(cli_repo, context, "--keep-last", "2")

    assert killed >= KILLS // 2, f"only {killed} of {KILLS} writes were still running when killed"
    assert run_zerofs("cat", "/stream", repo=cli_repo).stdout == landed.read_bytes()


# -- (3) a mount ----------------------------------------------------------------------------------------


GC_OLD_FILES = 21_000
"""Tiny files only the deleted snapshots hold: more objects than gc forgets in one locked step (20,000)."""


def build_garbage(repo: Path, host: Path, rng: random.Random) -> dict[str, bytes]:
    """History with garbage: three versions of a tree, each snapshotted, two snapshots then deleted.

    The first version also holds ``GC_OLD_FILES`` tiny files the later ones drop, and every version
    replaces a large file and half the small ones, so that the dead objects share packs with live
    ones: gc forgets in several steps, deletes packs and rewrites others. Returns what HEAD holds.
    """
    make_tree(host, rng, [6 * MiB, 6 * MiB], 1_500, 4_000)
    for i in range(GC_OLD_FILES):
        directory = host / "old" / f"d{i // 1000:02}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i}").write_bytes(rng.randbytes(rng.randint(8, 64)))
    run_zerofs("mkdir", "/snapshots", repo=repo)
    for version in range(3):
        if version:
            shutil.rmtree(host / "old", ignore_errors=True)
            (host / f"big{version - 1}").write_bytes(rng.randbytes(6 * MiB))
            for directory in sorted((host / "small").iterdir())[version % 2 :: 2]:
                for path in directory.iterdir():
                    path.write_bytes(rng.randbytes(rng.randint(0, 4_000)))
        run_zerofs("import", str(host), "/data", repo=repo, timeout=300)
        run_zerofs("clone", "/data", f"/snapshots/s{version}", repo=repo)
    run_zerofs("rm", "-r", "/snapshots/s0", "/snapshots/s1", repo=repo)
    files = {f"/data/{name}": data for name, data in host_files(host).items()}
    files.update({f"/snapshots/s2/{name[len('/data/') :]}": data for name, data in files.items()})
    return files


def assert_cat_matches(repo: Path, expected: dict[str, bytes], context: str) -> None:
    """Every store path of ``expected`` reads back (``zerofs cat``) byte for byte."""
    paths = sorted(expected)
    for start in range(0, len(paths), 2000):
        group = paths[start : start + 2000]
        out = run_zerofs("cat", *group, repo=repo).stdout
        offset = 0
        for path in group:
            data = expected[path]
            assert out[offset : offset + len(data)] == data, f"{context}: {path} does not read back"
            offset += len(data)
        assert offset == len(out), f"{context}: cat printed more bytes than the files hold"


def test_sigkill_during_gc(cli_repo: Path, tmp_path: Path, scratch: Path) -> None:
    """``gc --keep-last 1`` killed while it forgets objects or rewrites packs loses nothing HEAD holds."""
    seed = 1104
    rng = random.Random(seed)
    expected = build_garbage(cli_repo, scratch / "data", rng)
    template = tmp_path / "template"
    shutil.copytree(cli_repo, template)
    template_log = log_json(template)
    template_head = head_files(template)
    assert len(template_log) >= 5
    assert sorted(template_head) == sorted(expected)

    # The undisturbed gc, on a copy: its time sets the kill instants; it forgets and rewrites.
    copy = tmp_path / "undisturbed"
    shutil.copytree(template, copy)
    duration, out = timed(copy, "gc", "--keep-last", "1", "--json")
    result = json.loads(out)
    assert result["objects_deleted"] > GC_OLD_FILES, result
    assert result["packs_rewritten"] >= 1, result
    assert len(log_json(copy)) == 1
    assert head_files(copy) == template_head
    shutil.rmtree(copy)

    killed = cut = 0
    for k, fraction in enumerate(kill_fractions(rng), start=1):
        delay = fraction * duration
        context = f"gc, seed {seed}, round {k}, SIGKILL after {delay:.3f} s ({fraction:.2f} of {duration:.2f} s)"
        repo = tmp_path / f"repo{k}"
        shutil.copytree(template, repo)
        try:
            killed += run_and_kill(repo, ["gc", "--keep-last", "1"], delay)

            fsck_warnings(repo, context)
            after = log_json(repo)
            assert after[0]["commit"] == template_log[0]["commit"], f"{context}: gc moved HEAD"
            if after != template_log:
                assert len(after) == 1, f"{context}: history is neither whole nor cut to one commit: {after}"
                cut += 1
            assert head_files(repo) == template_head, f"{context}: what HEAD holds changed"
            assert_cat_matches(repo, expected, context)

            write_after(repo, "/after", context)
            gc_leaves_it_clean(repo, context, "--keep-last", "1")
            assert len(log_json(repo)) == 1, f"{context}: gc after the kill kept more than one commit"
        finally:
            shutil.rmtree(repo, ignore_errors=True)

    assert killed >= KILLS // 2, f"only {killed} of {KILLS} gcs were still running when killed"
    assert 0 < cut < KILLS, f"{cut} of {KILLS} kills came after gc cut the history: the kills missed its steps"


def test_ref_log_after_gc_cut_history_and_many_commits(cli_repo: Path) -> None:
    """After gc moves GRAFTS, more commits than the ref log's tail holds keep its GRAFTS chain intact.

    The mount scenario above, with its many commits between two gc runs, first met this: writers
    that looked for GRAFTS's last move in the log's last 16 records only appended a move "from
    nothing" once it was further back, and fsck reported the broken chain as an error.
    """
    run_zerofs("write", "/a", input=b"a", repo=cli_repo)
    run_zerofs("write", "/b", input=b"b", repo=cli_repo)
    run_zerofs("gc", "--keep-last", "1", repo=cli_repo)
    for i in range(20):
        run_zerofs("write", f"/f{i}", input=str(i).encode(), repo=cli_repo)
    warnings = fsck_warnings(cli_repo, "20 writes after gc --keep-last 1")
    assert not warnings, warnings
