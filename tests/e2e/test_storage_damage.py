"""Damage to the storage itself: every byte of every repository file is harmless or reported (issue 11).

A repository is its config, its LMDB index, its ref log and its packs. Here
those files are deleted, cut, rolled back and flipped bit by bit, and every
command must then either behave exactly as before or fail with one line and
exit 5 or 6: never a traceback, a death by a signal, a silently different
history (an index that lost a transaction) or bytes that are not the file's.
The packs alone hold everything, so ``fsck --rebuild-index`` must bring every
commit back byte for byte whenever only the index was hit.

Most commands here run in children forked by one server process
(``damage.serve_commands``): hundreds of damaged repositories are checked
without paying an interpreter's start-up for each command. The commands that
change the repository run through ``run_zerofs``, as a user would run them.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests import damage
from tests.conftest import cli_env, repo_password, repo_secrets, run_zerofs
from tests.e2e.helpers import fsck_warnings
from zerofs.errors import ConflictError, CorruptionError, RepositoryError
from zerofs.history import GRAFTS
from zerofs.repo import Repository
from zerofs.store.reflog import FILE_HEADER, RECORD, decode_record

ROOT = Path(__file__).resolve().parents[2]
REBUILD_HINT = "(nothing is lost from the packs: run zerofs fsck --rebuild-index)"
DAMAGE_EXITS = (RepositoryError.exit_code, CorruptionError.exit_code)
RANDOM = random.Random(11).randbytes(600_000)  # incompressible: several raw chunks
MORE_RANDOM = random.Random(12).randbytes(300_000)
TEXT = b"".join(b"line %d of a report nobody reads\n" % i for i in range(6_000))  # zstd records


# -- running commands ---------------------------------------------------------------------


class Outcome(NamedTuple):
    """How one command ended: rc None after a timeout, negative for a death by a signal."""

    argv: tuple[str, ...]
    rc: int | None
    stdout: bytes
    stderr: str

    def __str__(self) -> str:
        return (
            f"`zerofs {' '.join(self.argv)}`: exit {self.rc}, "
            f"stdout {self.stdout[:300]!r}{'...' if len(self.stdout) > 300 else ''}, stderr {self.stderr[:1500]!r}"
        )


def misbehaviour(outcome: Outcome, allowed: Sequence[int] = (0, *DAMAGE_EXITS)) -> str | None:
    """What is wrong with how a command ended, or None: exit 0, or one ``zerofs:`` line and an allowed code."""
    if outcome.rc is None:
        return f"timed out: {outcome}"
    if outcome.rc < 0:
        return f"killed by signal {-outcome.rc}: {outcome}"
    if "Traceback" in outcome.stderr:
        return f"printed a traceback: {outcome}"
    if outcome.rc not in allowed:
        return f"exit {outcome.rc}, expected one of {tuple(allowed)}: {outcome}"
    if outcome.rc != 0:
        lines = outcome.stderr.splitlines()
        if "--rebuild-index" in outcome.argv:  # what the rebuild found comes before the check's error
            lines = [line for line in lines if not line.startswith(("rebuilt the index from ", "zerofs: warning: "))]
        if len(lines) != 1 or not lines[0].startswith("zerofs: "):
            return f"did not fail with exactly one 'zerofs: ' line: {outcome}"
        if "internal error" in lines[0]:
            return f"an internal error: {outcome}"
    return None


class Commands:
    """Runs zerofs command lines in children of one server process (see ``damage.serve_commands``)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from tests.damage import serve_commands; serve_commands()"],
            cwd=ROOT,
            env=cli_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, repo: Path, *command_lines: Sequence[str]) -> list[Outcome]:
        """Run each command line on ``repo``, one after the other."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        argvs = [["--repo", str(repo), *map(str, line)] for line in command_lines]
        self.process.stdin.write(json.dumps(argvs).encode() + b"\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, "the command server died"
        return [
            Outcome(tuple(argv[2:]), answer["rc"], base64.b64decode(answer["stdout"]), answer["stderr"])
            for argv, answer in zip(argvs, json.loads(reply), strict=True)
        ]

    def one(self, repo: Path, *argv: str) -> Outcome:
        """Run one command line."""
        return self.run(repo, argv)[0]

    def close(self) -> None:
        """Stop the server."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def commands(repo_mode: str) -> Iterator[Commands]:
    """A command server started in this mode (its environment names the password file or not)."""
    server = Commands()
    try:
        yield server
    finally:
        server.close()


def ok(outcome: Outcome) -> Outcome:
    """A command that must succeed."""
    assert outcome.rc == 0, str(outcome)
    return outcome


# -- what a repository holds ------------------------------------------------------------------


class History(NamedTuple):
    """Everything a repository shows: its log, and every commit's tree and files."""

    log: bytes
    """``log --json``."""
    trees: dict[str, bytes]
    """Commit id -> ``ls -R --json REV:/`` (names, sizes, ids of every entry)."""
    contents: dict[str, bytes]
    """Commit id -> ``cat`` of every file of its tree, in the order ``ls`` lists them."""


def commit_ids(log: bytes) -> list[str]:
    return [json.loads(line)["commit"] for line in log.splitlines() if line.strip()]


def files_of(tree_json: bytes) -> list[str]:
    return [entry["path"] for entry in json.loads(tree_json) if entry["type"] == "file"]


def history_of(commands: Commands, repo: Path) -> History:
    """The log, and every file of every commit, read through the CLI."""
    log = ok(commands.one(repo, "log", "--json")).stdout
    ids = commit_ids(log)
    trees = [ok(o).stdout for o in commands.run(repo, *(["ls", "-R", "--json", f"{c}:/"] for c in ids))]
    cats = [(c, [f"{c}:{path}" for path in files_of(tree)]) for c, tree in zip(ids, trees, strict=True)]
    outcomes = iter(commands.run(repo, *(["cat", *paths] for _, paths in cats if paths)))
    contents = {c: ok(next(outcomes)).stdout if paths else b"" for c, paths in cats}
    return History(log, dict(zip(ids, trees, strict=True)), contents)


def head_files(history: History) -> list[str]:
    return files_of(history.trees[commit_ids(history.log)[0]])


def copy_repo(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


def pack_files(repo: Path) -> list[Path]:
    return sorted(repo.glob("packs/**/*.pack"))


def read_refs_log(repo: Path) -> list[Any]:
    data = (repo / "refs.log").read_bytes()
    return [
        decode_record(data[start : start + RECORD.size])
        for start in range(len(FILE_HEADER), len(data) - RECORD.size + 1, RECORD.size)
    ]


def zerofs_in(repo: Path) -> Any:
    def run(*args: Any, input: bytes | None = None, expect: int | None = 0) -> subprocess.CompletedProcess[bytes]:
        return run_zerofs(*map(str, args), repo=repo, input=input, expect=expect)

    return run


def assert_clean(commands: Commands, repo: Path) -> None:
    """``fsck --read-data`` finds nothing at all."""
    fsck = ok(commands.one(repo, "fsck", "--read-data", "--json"))
    assert json.loads(fsck.stdout)["findings"] == [], fsck.stdout


# -- the repositories -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> Path:
    """Commits of every kind, each written by a process of its own, a graft table, several packs."""
    base = tmp_path_factory.mktemp("history")
    host = base / "host"
    (host / "tree" / "sub").mkdir(parents=True)
    for i in range(12):
        (host / "tree" / f"small-{i}.txt").write_bytes(b"small file %d\n" % i * (i + 1))
    (host / "tree" / "sub" / "report.txt").write_bytes(TEXT)
    (host / "tree" / "random.bin").write_bytes(RANDOM)
    (host / "more.bin").write_bytes(MORE_RANDOM)
    repo = base / "repo"
    z = zerofs_in(repo)
    z("init")
    z("import", host / "tree", "/data")
    z("write", "-p", "/docs/readme.txt", input=b"read me\n")
    z("clone", "-p", "/data", "/snap/monday")
    z("write", "/data/small-0.txt", input=b"changed\n")
    z("rm", "/snap/monday/small-1.txt")
    z("import", host / "more.bin", "/data/more.bin")
    z("gc", "--keep-last", "3")
    z("write", "/docs/after-gc.txt", input=b"written after gc\n")
    z("clone", "/docs", "/snap/tuesday")
    z("mv", "/data/small-2.txt", "/data/renamed.txt")
    with Repository.open(repo, readonly=True, **repo_secrets()) as opened:
        assert opened.get_ref(GRAFTS) is not None, "gc --keep-last left no graft table"
    assert len(damage.chunk_ids_of(repo, "/data/random.bin")) >= 3
    assert len(pack_files(repo)) >= 4
    return repo


@pytest.fixture(scope="module")
def history_before(commands: Commands, history_template: Path) -> History:
    before = history_of(commands, history_template)
    assert len(commit_ids(before.log)) == 6
    return before


@pytest.fixture(scope="module")
def big_index_template(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> Path:
    """Thousands of small files: an index of a few hundred KB, so that 100 KB of it is a real cut."""
    base = tmp_path_factory.mktemp("big-index")
    tree = base / "tree"
    for i in range(4_000):  # enough that a compaction at close leaves the index above 200 KB
        directory = tree / f"d{i % 25}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i}.txt").write_bytes(b"file %d\n" % i * (i % 5 + 1))
    (base / "random.bin").write_bytes(MORE_RANDOM)
    repo = base / "repo"
    z = zerofs_in(repo)
    z("init")
    z("import", tree, "/tree")
    z("import", base / "random.bin", "/random.bin")
    z("clone", "/tree/d1", "/snap")
    z("write", "/tree/d2/f2.txt", input=b"changed\n")
    assert (repo / "index.mdb").stat().st_size >= 200_000, "the index is too small for the cuts below"
    return repo


@pytest.fixture(scope="module")
def big_index_before(commands: Commands, big_index_template: Path) -> History:
    return history_of(commands, big_index_template)


# -- 1. the index rebuilt from the packs ---------------------------------------------------------


def every_command(tmp_path: Path, host_file: Path) -> list[list[str]]:
    """A command line of every kind, reading and writing."""
    return [
        ["log"],
        ["log", "--json"],
        ["cat", "/docs/readme.txt"],
        ["cat", "HEAD~2:/data/random.bin"],
        ["ls", "-R", "/"],
        ["stat", "/docs"],
        ["tree", "/"],
        ["diff", "HEAD~1", "HEAD"],
        ["du", "/"],
        ["stats"],
        ["fsck"],
        ["fsck", "--read-data"],
        ["export", "/docs", str(tmp_path / "exported")],
        ["write", "/new.txt"],
        ["mkdir", "/new"],
        ["import", str(host_file), "/imported.txt"],
        ["clone", "/docs", "/copy"],
        ["mv", "/docs", "/moved"],
        ["rm", "-r", "/snap"],
        ["gc"],
        ["gc", "--keep-last", "1"],
    ]


def test_deleted_index_is_refused_then_rebuilt_byte_for_byte(
    commands: Commands, history_template: Path, history_before: History, tmp_path: Path
) -> None:
    repo = copy_repo(history_template, tmp_path / "repo")
    (repo / "index.mdb").unlink()
    (repo / "index.mdb-lock").unlink()
    files = damage.storage_files(repo)
    host_file = tmp_path / "host.txt"
    host_file.write_bytes(b"from the host\n")
    for outcome in commands.run(repo, *every_command(tmp_path, host_file)):
        problem = misbehaviour(outcome, allowed=(CorruptionError.exit_code,))
        assert problem is None, problem
        assert REBUILD_HINT in outcome.stderr, str(outcome)
        assert outcome.stdout == b"", str(outcome)
        assert damage.storage_files(repo) == files, f"{outcome.argv} changed the repository"
    assert not (tmp_path / "exported").exists()

    rebuilt = run_zerofs("fsck", "--rebuild-index", repo=repo)
    assert "rebuilt the index from" in rebuilt.stderr, rebuilt.stderr
    assert history_of(commands, repo) == history_before
    assert_clean(commands, repo)


def test_rebuild_needs_the_repository_to_itself(commands: Commands, history_template: Path, tmp_path: Path) -> None:
    repo = copy_repo(history_template, tmp_path / "repo")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, time; from zerofs.repo import Repository; "
            f"r = Repository.open(pathlib.Path({str(repo)!r}), readonly=True, password={repo_password()!r}); "
            "print('open', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"open"
        files = damage.storage_files(repo)
        proc = run_zerofs("fsck", "--rebuild-index", repo=repo, expect=ConflictError.exit_code)
        outcome = Outcome(("fsck", "--rebuild-index"), proc.returncode, proc.stdout, proc.stderr)
        problem = misbehaviour(outcome, allowed=(ConflictError.exit_code,))
        assert problem is None, problem
        assert "open in another process" in proc.stderr
        assert damage.storage_files(repo) == files
    finally:
        holder.kill()
        holder.wait()
    ok(commands.one(repo, "fsck", "--rebuild-index"))
    assert_clean(commands, repo)


# -- 2. a truncated index ------------------------------------------------------------------------

CUTS = {
    "0-bytes": lambda size: 0,
    "1-byte": lambda size: 1,
    "first-page": lambda size: 4096,
    "meta-pages": lambda size: 8192,
    "100-KB": lambda size: 100 * 1024,
    "half": lambda size: size // 2,
    "last-page-lost": lambda size: size - 4096,
    "one-byte-short": lambda size: size - 1,
}


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_truncated_index_is_one_line_then_rebuilt(
    commands: Commands, big_index_template: Path, big_index_before: History, tmp_path: Path, cut: str
) -> None:
    repo = copy_repo(big_index_template, tmp_path / "repo")
    index = repo / "index.mdb"
    size = index.stat().st_size
    keep = CUTS[cut](size)
    assert keep < size
    with open(index, "r+b") as handle:
        handle.truncate(keep)
    files = damage.storage_files(repo)
    problems = []
    for argv in (
        ["log"],
        ["cat", "/tree/d1/f1.txt"],
        ["ls", "/"],
        ["fsck"],
        ["fsck", "--read-data"],
        ["write", "/new.txt"],
        ["gc"],
        ["gc", "--keep-last", "1"],
    ):
        outcome = commands.one(repo, *argv)
        problem = misbehaviour(outcome, allowed=DAMAGE_EXITS)
        if problem is not None:
            problems.append(problem)
        now = damage.storage_files(repo)
        if now != files:
            changed = sorted(name for name in now.keys() | files.keys() if now.get(name) != files.get(name))
            problems.append(
                f"`zerofs {' '.join(argv)}` (exit {outcome.rc}, {outcome.stderr.strip()!r}) changed {changed} "
                f"(index.mdb: {keep} bytes before, {index.stat().st_size} after)"
            )
            damage.restore_files(repo, files)
    rebuilt = commands.one(repo, "fsck", "--rebuild-index")
    if rebuilt.rc != 0:
        problems.append(f"the rebuild failed: {rebuilt}")
    elif history_of(commands, repo) != big_index_before:
        problems.append("the rebuilt index does not give back every commit byte for byte")
    assert not problems, f"index.mdb cut from {size} to {keep} bytes:\n" + "\n".join(problems)
    assert_clean(commands, repo)


# -- 3. an index that lost a transaction ------------------------------------------------------------


@pytest.mark.parametrize("lost", [1, 3])
def test_index_that_lost_commits_is_refused_then_rebuilt(
    commands: Commands, history_template: Path, tmp_path: Path, lost: int
) -> None:
    """As a damaged meta page would: the index goes back to before the last commits; the ref log has them."""
    repo = copy_repo(history_template, tmp_path / "repo")
    old_index = (repo / "index.mdb").read_bytes()
    z = zerofs_in(repo)
    z("write", "/docs/readme.txt", input=b"read me again\n")
    for i in range(1, lost):
        z("write", f"/new-{i}.txt", input=b"new %d\n" % i)
    after = history_of(commands, repo)
    (repo / "index.mdb").write_bytes(old_index)
    files = damage.storage_files(repo)
    for argv in (
        ["log"],
        ["log", "--json"],
        ["cat", "/docs/readme.txt"],
        ["ls", "-R", "/"],
        ["stat", "/docs/readme.txt"],
        ["fsck"],
        ["fsck", "--read-data"],
        ["write", "/on-top.txt"],
        ["rm", "-r", "/snap"],
        ["gc"],
        ["gc", "--keep-last", "1"],
    ):
        outcome = commands.one(repo, *argv)
        problem = misbehaviour(outcome, allowed=(CorruptionError.exit_code,))
        assert problem is None, problem
        assert REBUILD_HINT in outcome.stderr, str(outcome)
        assert "lost a transaction" in outcome.stderr, str(outcome)
        assert damage.storage_files(repo) == files, f"{argv} changed the repository"
    ok(commands.one(repo, "fsck", "--rebuild-index"))
    assert history_of(commands, repo) == after
    assert_clean(commands, repo)


def lmdb_reader_page(txnids: tuple[int, int]) -> int:
    """The meta page LMDB's readers use: the larger txnid wins (page 0 on a tie), then its parity picks the page.

    (``mdb_env_pick_meta`` chooses the page, ``mdb_env_share_locks`` copies
    its txnid to the lock file, and a read transaction reads
    ``me_metas[txnid & 1]``.)
    """
    chosen = txnids[0] if txnids[0] >= txnids[1] else txnids[1]
    return chosen & 1


META_FLIPS = [
    ("page-flags", 0, 3),
    ("magic", 0, 0),
    ("magic", 3, 7),
    ("version", 0, 0),
    ("mapsize", 0, 0),
    ("mapsize", 7, 6),
    ("free-db-root", 0, 0),
    ("main-db-entries", 0, 0),
    ("main-db-root", 0, 0),
    ("main-db-root", 0, 2),
    ("last-page", 0, 0),
    ("last-page", 2, 4),
    ("last-page", 7, 7),
    ("txnid", 0, 0),
    ("txnid", 0, 1),
    ("txnid", 0, 2),
    ("txnid", 1, 0),
    ("txnid", 5, 0),
    ("txnid", 7, 7),
]
"""(field, byte in it, bit) flipped in each meta page of the index."""


def test_flipped_bits_in_the_index_meta_pages(
    commands: Commands, history_template: Path, history_before: History, tmp_path: Path
) -> None:
    repo = copy_repo(history_template, tmp_path / "repo")
    z = zerofs_in(repo)
    z("write", "/docs/last.txt", input=b"the last commit\n")  # the last index transaction moves HEAD
    before = history_of(commands, repo)
    assert commit_ids(before.log)[1:] == commit_ids(history_before.log)
    index = damage.index_file(repo)
    original = damage.storage_files(repo)
    txnids = damage.lmdb_txnids(index)
    newer = 0 if txnids[0] > txnids[1] else 1
    head = head_files(before)
    problems: list[str] = []
    rollbacks = 0
    for page in (0, 1):
        for field, byte, bit in META_FLIPS:
            offset = page * damage.LMDB_PAGE_BYTES + damage.LMDB_META_FIELDS[field][0] + byte
            case = f"index.mdb offset {offset} bit {bit} (meta page {page}, {field})"
            damage.flip_bit(index, offset, bit)
            is_rollback = lmdb_reader_page(damage.lmdb_txnids(index)) != newer
            rollbacks += is_rollback
            outcomes = commands.run(
                repo, ["log", "--json"], ["cat", *head], ["ls", "-R", "--json", "/"], ["fsck", "--json"]
            )
            log, cat, ls, _ = outcomes
            problems.extend(f"{case}: {p}" for p in map(misbehaviour, outcomes) if p is not None)
            if log.rc == 0 and log.stdout != before.log:
                problems.append(f"{case}: a different log, without an error: {log}")
            if cat.rc == 0 and cat.stdout != before.contents[commit_ids(before.log)[0]]:
                problems.append(f"{case}: cat printed bytes that are not the files': {cat}")
            if is_rollback and (log.rc == 0 or cat.rc == 0 or ls.rc == 0 or REBUILD_HINT not in log.stderr):
                problems.append(f"{case}: LMDB now reads the older meta page, and this was not refused: {log}")
            if any(o.rc != 0 for o in outcomes):
                rebuilt = commands.one(repo, "fsck", "--rebuild-index")
                if rebuilt.rc != 0 or history_of(commands, repo) != before:
                    problems.append(f"{case}: fsck --rebuild-index did not bring every commit back: {rebuilt}")
            damage.restore_files(repo, original)
    print(f"{2 * len(META_FLIPS)} meta page flips, {rollbacks} of them rolling the index back")
    assert rollbacks >= 4, "no flip made LMDB read the older meta page"
    assert not problems, "\n".join(problems)


PLAIN_REF_LOG = (
    "reads or flips the records of a plain refs.log (reflog.RECORD); an encrypted repository's"
    " refs.log has sealed records of another layout (reflog.SEALED_RECORD)"
)


def write_and_damage_its_ref_log_record(commands: Commands, template: Path, repo: Path) -> tuple[bytes, History]:
    """Copy the repository, keep its index aside, commit, then flip a bit of that commit's ref log record.

    Returns the index from before the commit, and the history after it.
    """
    copy_repo(template, repo)
    old_index = (repo / "index.mdb").read_bytes()
    zerofs_in(repo)("write", "/docs/readme.txt", input=b"read me again\n")
    after = history_of(commands, repo)
    last = read_refs_log(repo)[-1]
    assert last is not None
    assert last.name == b"HEAD"
    assert last.new.hex() == commit_ids(after.log)[0]
    damage.flip_bit(repo / "refs.log", -RECORD.size + 68)  # the first byte of the record's new HEAD
    return old_index, after


@pytest.mark.plain_only(PLAIN_REF_LOG)
def test_damaged_last_ref_log_record_does_not_let_a_rolled_back_index_pass(
    commands: Commands, history_template: Path, tmp_path: Path
) -> None:
    """Two faults: the index lost the last commit, and the ref log record of that commit is damaged."""
    repo = tmp_path / "repo"
    old_index, after = write_and_damage_its_ref_log_record(commands, history_template, repo)
    (repo / "index.mdb").write_bytes(old_index)
    packs = len(pack_files(repo))
    outcomes = commands.run(repo, ["log", "--json"], ["cat", "/docs/readme.txt"], ["gc"])
    problems = [misbehaviour(o, allowed=(CorruptionError.exit_code,)) for o in outcomes]
    assert problems == [None] * len(outcomes), (
        f"the index lost commit {commit_ids(after.log)[0][:12]} and it was not refused "
        f"(packs before: {packs}, after: {len(pack_files(repo))}):\n" + "\n".join(filter(None, problems))
    )


@pytest.mark.plain_only(PLAIN_REF_LOG)
def test_rebuild_keeps_the_commit_whose_ref_log_record_is_damaged(
    commands: Commands, history_template: Path, tmp_path: Path
) -> None:
    """One fault: the index is intact, the ref log's last record is not; the rebuild must not drop that commit."""
    repo = tmp_path / "repo"
    _, after = write_and_damage_its_ref_log_record(commands, history_template, repo)
    assert history_of(commands, repo) == after  # the index is intact: nothing changes
    rebuilt = commands.one(repo, "fsck", "--rebuild-index")
    assert misbehaviour(rebuilt) is None, misbehaviour(rebuilt)
    log = ok(commands.one(repo, "log", "--json"))
    assert log.stdout == after.log, (
        f"fsck --rebuild-index dropped commit {commit_ids(after.log)[0][:12]} (its pack is intact): {rebuilt}; "
        f"HEAD is now {commit_ids(log.stdout)[0][:12]}"
    )


# -- 4. every file, bit by bit ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_template(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> Path:
    """A small repository: a few commits, a graft table, small files, one multi-chunk file, three packs."""
    base = tmp_path_factory.mktemp("sweep")
    (base / "big.bin").write_bytes(RANDOM[:260_000])
    repo = base / "repo"
    z = zerofs_in(repo)
    z("init")
    z("write", "-p", "/docs/a.txt", input=b"alpha\n")
    z("import", "-p", base / "big.bin", "/data/big.bin")
    z("write", "-p", "/docs/sub/notes.txt", input=TEXT[:30_000])
    z("clone", "/docs", "/snap")
    z("gc", "--keep-last", "3")
    z("write", "/docs/b.txt", input=b"bravo\n")
    z("rm", "/snap/a.txt")
    assert len(damage.chunk_ids_of(repo, "/data/big.bin")) >= 2
    assert len(pack_files(repo)) >= 3
    assert sum(len(data) for data in damage.storage_files(repo).values()) < 600_000
    return repo


class Flip(NamedTuple):
    """One case of the sweep: a bit of a file, and whether fsck must report it."""

    file: str
    offset: int
    bit: int
    must_report: bool
    """The byte is checked by something: a checksum, a hash, a magic number."""
    where: str

    def __str__(self) -> str:
        return f"{self.file} offset {self.offset} bit {self.bit} ({self.where})"


def sweep_cases(repo: Path) -> list[Flip]:
    """Single-bit flips at a deterministic sample of offsets of every file of the repository."""
    rng = random.Random(2024)
    cases: list[Flip] = []

    def add(file: str, offset: int, must_report: bool, where: str, bit: int | None = None) -> None:
        cases.append(Flip(file, offset, rng.randrange(8) if bit is None else bit, must_report, where))

    config = (repo / "config").stat().st_size
    for offset in sorted({0, 1, config // 2, config - 66, config - 30, config - 2, config - 1, rng.randrange(config)}):
        add("config", offset, True, "config")

    log_size = (repo / "refs.log").stat().st_size
    for offset in (0, 17, len(FILE_HEADER) - 1):
        add("refs.log", offset, True, "ref log header")
    starts = range(len(FILE_HEADER), log_size, RECORD.size)
    for start in starts[:-1]:
        for offset in sorted(rng.sample(range(RECORD.size), 2)):
            add("refs.log", start + offset, True, "a ref log record")
    last = starts[-1]
    for offset, field in ((0, "magic"), (2, "version"), (3, "flags"), (4, "sequence"), (12, "time"), (20, "name")):
        add("refs.log", last + offset, True, f"last ref log record: {field}")
    for offset, field in ((36, "old"), (68, "new"), (99, "new"), (100, "reserved"), (112, "checksum"), (127, "end")):
        add("refs.log", last + offset, True, f"last ref log record: {field}")

    index_size = (repo / "index.mdb").stat().st_size
    for page in (0, 1):
        for field, (start, length) in damage.LMDB_META_FIELDS.items():
            add("index.mdb", page * damage.LMDB_PAGE_BYTES + start + rng.randrange(length), False, f"meta {field}")
        add("index.mdb", page * damage.LMDB_PAGE_BYTES + 144, False, "meta txnid", bit=1)
    add("index.mdb", 0, False, "index first byte")
    add("index.mdb", index_size - 1, False, "index last byte")
    for offset in sorted(rng.sample(range(2 * damage.LMDB_PAGE_BYTES, index_size), 110)):
        add("index.mdb", offset, False, f"index page {offset // damage.LMDB_PAGE_BYTES}")
    lock_size = (repo / "index.mdb-lock").stat().st_size
    for offset in (0, 8, 16, 64, rng.randrange(lock_size), lock_size - 1):
        add("index.mdb-lock", offset, False, "LMDB lock file")

    live = damage.live_blob_regions(repo)
    for pack in pack_files(repo):
        name = str(pack.relative_to(repo))
        size = pack.stat().st_size
        regions = live.get(str(pack), [])
        assert regions, f"no live blob in {name}"

        def is_live(offset: int, regions: list[tuple[int, int]] = regions) -> bool:
            return any(start <= offset < end for start, end in regions)

        for offset in range(16):
            add(name, offset, offset < 6, "pack header" if offset < 6 else "pack header, reserved")
        first = regions[0][0]
        for offset in (0, 31, 32, 33, 34, 37, 38, 41):
            add(name, first + offset, True, "first blob header")
        for offset in (size - 28, size - 25, size - 24, size - 20, size - 5, size - 4, size - 1):
            add(name, offset, is_live(offset), "pack trailer")
        data_end = max(end for _, end in regions)
        if data_end < size - 28:
            add(name, data_end, is_live(data_end), "pack trailer offsets")
        for offset in sorted(rng.sample(range(16, size), min(25, size - 16))):
            add(name, offset, is_live(offset), "live blob" if is_live(offset) else "no live blob")
    return cases


@pytest.mark.plain_only(PLAIN_REF_LOG)
def test_every_file_flipped_bit_by_bit(commands: Commands, sweep_template: Path, tmp_path: Path) -> None:
    """Each flip is harmless (everything as before, fsck clean) or reported (fsck, or the command, exits 5/6).

    A flip that looks harmless in the index is also written on (mkdir, gc):
    a write must not turn it into a loss; where that reports damage,
    ``fsck --rebuild-index`` must bring every commit back.
    """
    repo = copy_repo(sweep_template, tmp_path / "repo")
    before = history_of(commands, repo)
    head = head_files(before)
    head_bytes = before.contents[commit_ids(before.log)[0]]
    assert_clean(commands, repo)
    original = damage.storage_files(repo)
    lock_bytes = (repo / "index.mdb-lock").read_bytes()
    cases = sweep_cases(repo)
    problems: list[str] = []
    counts = {"harmless": 0, "reported": 0}
    for flip in cases:
        damage.flip_bit(repo / flip.file, flip.offset, flip.bit)
        damaged = damage.storage_files(repo)
        outcomes = commands.run(repo, ["fsck", "--read-data", "--json"], ["log", "--json"], ["cat", *head])
        fsck, log, cat = outcomes
        found = [f"{flip}: {p}" for p in map(misbehaviour, outcomes) if p is not None]
        if log.rc == 0 and log.stdout != before.log:
            found.append(f"{flip}: a different log, without an error (a silent rollback): {log}")
        if cat.rc == 0 and cat.stdout != head_bytes:
            found.append(f"{flip}: cat printed bytes that are not the files', without an error: {cat}")
        if cat.rc != 0 and not head_bytes.startswith(cat.stdout):
            found.append(f"{flip}: cat printed bytes that are not the files' before its error: {cat}")
        is_harmless = fsck.rc == log.rc == cat.rc == 0
        if flip.must_report and fsck.rc == 0:
            found.append(f"{flip}: fsck --read-data did not report it: {fsck}")
        if fsck.rc == 0 and (log.rc != 0 or cat.rc != 0):
            found.append(f"{flip}: fsck --read-data found nothing, but a command met damage: {log}; {cat}")
        if flip.file == "config" and (log.rc != 0 or cat.rc != 0 or b'"config"' not in fsck.stdout):
            found.append(f"{flip}: a damaged config must be reported by fsck, and read from the index: {fsck}")
        if damage.storage_files(repo) != damaged:
            found.append(f"{flip}: fsck, log or cat changed the repository")
        if not found and flip.file == "index.mdb":
            found.extend(_write_on(commands, repo, flip, before, head, is_harmless))
        problems.extend(found)
        counts["harmless" if is_harmless else "reported"] += 1
        damage.restore_files(repo, original)
        (repo / "index.mdb-lock").write_bytes(lock_bytes)
    print(f"{len(cases)} flips: {counts}")
    assert not problems, f"{len(problems)} of {len(cases)} flips went wrong:\n" + "\n".join(problems)


def _write_on(
    commands: Commands, repo: Path, flip: Flip, before: History, head: list[str], harmless: bool
) -> list[str]:
    """After a flip in the index: a commit and a gc, then nothing of the history lost (after a rebuild if need be)."""
    new_commit = b'"message": "mkdir /after-damage"'
    outcomes = commands.run(
        repo, ["mkdir", "/after-damage"], ["gc"], ["fsck", "--read-data", "--json"], ["log", "--json"], ["cat", *head]
    )
    mkdir, gc, fsck, log, cat = outcomes
    found = [f"{flip}, then a commit and gc: {p}" for p in map(misbehaviour, outcomes) if p is not None]
    expected_log = log.stdout.split(b"\n", 1)[-1] if new_commit in log.stdout.split(b"\n", 1)[0] else log.stdout
    if log.rc == 0 and expected_log != before.log:
        found.append(f"{flip}, then a commit and gc: a different history, without an error: {log}")
    head_bytes = before.contents[commit_ids(before.log)[0]]
    if cat.rc == 0 and cat.stdout != head_bytes:
        found.append(f"{flip}, then a commit and gc: cat printed bytes that are not the files': {cat}")
    if all(o.rc == 0 for o in outcomes):
        if new_commit not in log.stdout:
            found.append(f"{flip}: the commit is not in the log: {log}")
        return found
    if not harmless:
        return found
    rebuilt = commands.one(repo, "fsck", "--rebuild-index")
    log = commands.one(repo, "log", "--json")
    cat = commands.one(repo, "cat", *head)
    fsck = commands.one(repo, "fsck", "--read-data", "--json")
    first, _, rest = log.stdout.partition(b"\n")
    is_kept = (new_commit in first and rest == before.log) if mkdir.rc == 0 else log.stdout == before.log
    if rebuilt.rc != 0 or log.rc != 0 or not is_kept or cat.stdout != head_bytes or fsck.rc != 0:
        found.append(
            f"{flip}: fsck found nothing, then a commit and gc met damage ({mkdir}; {gc}), and after "
            f"fsck --rebuild-index not every commit is back: {rebuilt}; {log}; {fsck}"
        )
    return found


def test_flipped_pack_counter_in_the_index_is_harmless_or_reported(
    commands: Commands, sweep_template: Path, tmp_path: Path
) -> None:
    """The index's next pack number, flipped down onto a pack that exists: fsck reports it, or writes still work."""
    repo = copy_repo(sweep_template, tmp_path / "repo")
    before = history_of(commands, repo)
    head = head_files(before)
    offset = damage.index_value_offset(repo, b"meta", b"next-pack")
    value = int.from_bytes((repo / "index.mdb").read_bytes()[offset : offset + 4], "big")
    numbers = {int.from_bytes(key, "big") for key in damage.index_keys(repo, b"packs")}
    bit = next(b for b in range(32) if value >> b & 1 and value ^ (1 << b) in numbers)
    damage.flip_bit(repo / "index.mdb", offset + 3 - bit // 8, bit % 8)
    fsck = commands.one(repo, "fsck", "--read-data", "--json")
    assert misbehaviour(fsck) is None, misbehaviour(fsck)
    if fsck.rc != 0:
        return  # reported
    mkdir = ok(commands.one(repo, "mkdir", "/after-damage"))
    fsck, log, cat = commands.run(repo, ["fsck", "--read-data", "--json"], ["log", "--json"], ["cat", *head])
    case = f"index.mdb offset {offset + 3 - bit // 8} bit {bit % 8} (next-pack {value} -> {value ^ (1 << bit)})"
    assert fsck.rc == log.rc == cat.rc == 0, (
        f"{case}: fsck --read-data found nothing, then `zerofs mkdir` ({mkdir.rc}) damaged the index: {fsck}; {log}"
    )
    assert log.stdout.split(b"\n", 1)[1] == before.log
    assert cat.stdout == before.contents[commit_ids(before.log)[0]]


# -- 5. the config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["first", "middle", "checksum", "last"])
def test_flipped_config_is_read_from_the_index_and_reported(
    commands: Commands, sweep_template: Path, tmp_path: Path, where: str
) -> None:
    repo = copy_repo(sweep_template, tmp_path / "repo")
    before = history_of(commands, repo)
    size = (repo / "config").stat().st_size
    offset = {"first": 0, "middle": size // 3, "checksum": size - 20, "last": size - 1}[where]
    damage.flip_bit(repo / "config", offset)
    assert history_of(commands, repo) == before
    ok(commands.one(repo, "write", "/docs/new.txt"))
    assert ok(commands.one(repo, "cat", "/docs/b.txt")).stdout == b"bravo\n"
    fsck = commands.one(repo, "fsck", "--read-data", "--json")
    assert misbehaviour(fsck, allowed=(CorruptionError.exit_code,)) is None, str(fsck)
    findings = json.loads(fsck.stdout)["findings"]
    assert [f["kind"] for f in findings] == ["config"], findings


def test_config_gone_from_both_places_is_one_line(commands: Commands, sweep_template: Path, tmp_path: Path) -> None:
    # The file flipped and the index deleted: only the packs are left, and they hold no config.
    repo = copy_repo(sweep_template, tmp_path / "flipped")
    damage.flip_bit(repo / "config", 0)
    (repo / "index.mdb").unlink()
    files = damage.storage_files(repo)
    for outcome in commands.run(repo, ["log"], ["cat", "/docs/b.txt"], ["fsck"], ["fsck", "--rebuild-index"]):
        assert misbehaviour(outcome, allowed=DAMAGE_EXITS) is None, misbehaviour(outcome)
        assert outcome.rc != 0, str(outcome)
    assert damage.storage_files(repo) == files

    # The file flipped, and the index's copy flipped at the same byte ('{' becomes 'z').
    repo = copy_repo(sweep_template, tmp_path / "both-flipped")
    config = (repo / "config").read_bytes().rpartition(b"\nblake3 ")[0]
    data = (repo / "index.mdb").read_bytes()
    copies = [i for i in range(len(data)) if data.startswith(config, i)]
    assert copies, "the index holds no copy of the config"
    for start in copies:
        damage.flip_bit(repo / "index.mdb", start)
    damage.flip_bit(repo / "config", 0)
    for outcome in commands.run(repo, ["log"], ["cat", "/docs/b.txt"], ["fsck"], ["fsck", "--rebuild-index"]):
        assert misbehaviour(outcome, allowed=DAMAGE_EXITS) is None, misbehaviour(outcome)
        assert outcome.rc != 0, str(outcome)

    # The file deleted, and the index with it.
    repo = copy_repo(sweep_template, tmp_path / "deleted")
    (repo / "config").unlink()
    (repo / "index.mdb").unlink()
    for outcome in commands.run(repo, ["log"], ["fsck", "--rebuild-index"]):
        assert misbehaviour(outcome, allowed=DAMAGE_EXITS) is None, misbehaviour(outcome)
        assert outcome.rc != 0, str(outcome)


@pytest.mark.plain_only(PLAIN_REF_LOG)
def test_a_log_a_dead_writer_left_behind_is_completed_by_the_next_writable_open(cli_repo: Path) -> None:
    """A writer killed between its index transaction and its log append: readers warn, the next writer completes it."""
    zerofs = zerofs_in(cli_repo)
    zerofs("write", "-p", "/a/f", input=b"one")
    log_before = (cli_repo / "refs.log").read_bytes()
    zerofs("write", "/a/g", input=b"two")
    (cli_repo / "refs.log").write_bytes(log_before)  # the append of that commit never happened
    head = json.loads(zerofs("log", "-n", "1", "--json").stdout)["commit"]
    assert any("lags behind the index is harmless" in w for w in fsck_warnings(cli_repo, "log lags"))
    assert (cli_repo / "refs.log").read_bytes() == log_before  # read-only commands leave it
    zerofs("gc")  # a writable open, which moves no ref: it completes the log
    assert read_refs_log(cli_repo)[-1].new.hex() == head
    assert fsck_warnings(cli_repo, "after gc") == []
