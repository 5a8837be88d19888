#!/usr/bin/env python3
"""Whole-process benchmark of zerofs against borg and restic.

Not part of the test suite. Generates its data sets in a scratch directory on
a real disk (not tmpfs), runs every command as a separate process timed with
``time.perf_counter`` around ``subprocess.run``, repeats each measure and
prints medians, then a summary table with one PASS/MISS line per target.

Data sets (as in /work/shared/MEASUREMENTS.md):
  (a) one 1 GiB random file;
  (b) 20,000 files of 0-16 KiB in 200 directories, half text-like, half random;
  (d) (a) with 1 MiB of random bytes inserted at 16 MiB and 4 KiB overwritten
      at 512 MiB (in a copy; (a) is left as it is).

Usage:
  python benchmarks/run.py [--runs N] [--quick] [--only NAME[,NAME]] [--json FILE]

Uses the standard library only, plus ``blake3`` and ``pyfastcdc`` for the
in-process ceilings and, if present, ``lmdb`` (a zerofs dependency) to read a
repository's used pages read-only between processes. zerofs itself is driven
only through its CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MB = 1_000_000

SECTIONS = (
    "import_a",
    "import_b",
    "reimport_b",
    "clone",
    "write",
    "cat",
    "complete",
    "dedup",
    "export",
    "ceilings",
    "diff",
)
TOOLS = ("zerofs", "borg", "restic")
COMPETITORS = ("borg", "restic")
NEW_BYTES_D = MIB + 4 * KIB  # bytes of (d) that are truly new relative to (a)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Data-set sizes; --quick shrinks them for a smoke run."""

    big_bytes: int
    n_small_files: int
    n_small_dirs: int
    n_tree_files: int
    n_tree_dirs: int
    n_bigdir_files: int
    insert_offset: int
    overwrite_offset: int


FULL = Sizes(
    big_bytes=GIB,
    n_small_files=20_000,
    n_small_dirs=200,
    n_tree_files=100_000,
    n_tree_dirs=1_000,
    n_bigdir_files=100_000,
    insert_offset=16 * MIB,
    overwrite_offset=512 * MIB,
)
QUICK = Sizes(
    big_bytes=128 * MIB,
    n_small_files=2_000,
    n_small_dirs=20,
    n_tree_files=10_000,
    n_tree_dirs=100,
    n_bigdir_files=10_000,
    insert_offset=16 * MIB,
    overwrite_offset=64 * MIB,  # 512 MiB lies beyond a 128 MiB file
)


# --------------------------------------------------------------------------
# Running processes
# --------------------------------------------------------------------------


class CmdError(Exception):
    """A benchmarked command failed (non-zero exit, timeout, or not found)."""


class Unavailable(Exception):
    """The tool is not installed or not usable; already reported at start-up."""


def _tail(data: bytes | None, n: int = 600) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace").strip()
    return text[-n:]


def run_timed(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    stdin_bytes: bytes | None = None,
    timeout: float,
    capture_stdout: bool = False,
) -> tuple[float, bytes]:
    """Run one whole process; return (wall seconds, stdout if captured)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            input=stdin_bytes,
            stdin=None if stdin_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CmdError(f"{cmd[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CmdError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise CmdError(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n    {_tail(proc.stderr)}")
    return elapsed, proc.stdout or b""


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------
# Sizes on disk
# --------------------------------------------------------------------------


def allocated_bytes(path: Path) -> int:
    """du-style allocated bytes (st_blocks * 512) of a file or a whole tree."""
    total = 0
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    total += st.st_blocks * 512
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def lmdb_allocated_bytes(repo: Path) -> int | None:
    """Allocated bytes of every data.mdb under the repository, or None."""
    files = list(repo.rglob("data.mdb")) if repo.is_dir() else []
    if not files:
        return None
    return sum(f.stat().st_blocks * 512 for f in files)


def _find_key(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


class Tool:
    """One program under test, driven only through whole processes."""

    name = "?"

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        self.env = env
        self.timeout = timeout
        self.version = "?"
        self.unavailable: str | None = None
        self._tags = 0

    def _run(self, cmd: list[str], *, settle: bool = False, **kw: Any) -> float:
        kw.setdefault("timeout", self.timeout)
        if settle:
            # Flush dirty pages left by earlier steps (untimed), so a run does not
            # pay for the write-back of the one before it. The page cache stays warm.
            os.sync()
        return run_timed(cmd, env=self.env, **kw)[0]

    def next_tag(self, prefix: str) -> str:
        self._tags += 1
        return f"{prefix}{self._tags}"

    # interface ------------------------------------------------------------
    def init(self, repo: Path) -> None:
        raise NotImplementedError

    def import_(self, repo: Path, host_dir: Path, store_path: str, tag: str) -> float:
        raise NotImplementedError

    def cat(self, repo: Path, tag: str, store_path: str) -> float:
        raise NotImplementedError

    def export(self, repo: Path, tag: str, store_path: str, out: Path) -> float:
        raise NotImplementedError

    def stored_bytes(self, repo: Path) -> tuple[int, str]:
        return allocated_bytes(repo), "du of repo dir"


class Zerofs(Tool):
    name = "zerofs"

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        super().__init__(env, timeout)
        self.base = self._locate()
        self._stats_ok: bool | None = None
        try:
            _, out = run_timed([*self.base, "--help"], env=env, timeout=60, capture_stdout=True)
        except CmdError as exc:
            self.unavailable = f"zerofs CLI not usable: {exc}"
            return
        try:
            _, out = run_timed([*self.base, "--version"], env=env, timeout=60, capture_stdout=True)
            self.version = out.decode().strip().splitlines()[0] if out.strip() else "?"
        except CmdError:
            self.version = "(no --version)"

    @staticmethod
    def _locate() -> list[str]:
        # Prefer the console script installed next to this interpreter.
        here = Path(sys.executable).parent / "zerofs"
        if here.exists():
            return [str(here)]
        found = shutil.which("zerofs")
        if found:
            return [found]
        return [sys.executable, "-m", "zerofs"]

    def cmd(self, repo: Path, *args: str) -> list[str]:
        return [*self.base, "--repo", str(repo), *args]

    def init(self, repo: Path) -> None:
        try:
            self._run(self.cmd(repo, "init"))
        except CmdError:
            # Some versions may want the directory to exist first.
            if repo.exists():
                raise
            repo.mkdir(parents=True)
            self._run(self.cmd(repo, "init"))

    def import_(self, repo: Path, host_dir: Path, store_path: str, tag: str) -> float:
        return self._run(self.cmd(repo, "import", str(host_dir), store_path), settle=True)

    def cat(self, repo: Path, tag: str, store_path: str) -> float:
        return self._run(self.cmd(repo, "cat", store_path))

    def ls(self, repo: Path, store_path: str) -> float:
        return self._run(self.cmd(repo, "ls", store_path))

    def clone(self, repo: Path, src: str, dst: str) -> float:
        return self._run(self.cmd(repo, "clone", src, dst))

    def mkdir_p(self, repo: Path, store_path: str) -> None:
        self._run(self.cmd(repo, "mkdir", "-p", store_path))

    def write(self, repo: Path, store_path: str, data: bytes) -> float:
        return self._run(self.cmd(repo, "write", store_path), stdin_bytes=data)

    def export(self, repo: Path, tag: str, store_path: str, out: Path) -> float:
        return self._run(self.cmd(repo, "export", store_path, str(out)), settle=True)

    def stored_bytes(self, repo: Path) -> tuple[int, str]:
        return repo_stored_bytes(self, repo)


def lmdb_used_bytes(repo: Path) -> int | None:
    """Bytes of the LMDB pages in use (branch + leaf + overflow, all databases).

    Opens each environment under ``repo`` read-only without the lock file, so
    it must only be called while no zerofs process runs (the benchmark calls
    it between processes). Freed pages are not counted, so this follows the
    live data page by page, unlike the file's allocation, which zerofs grows
    in large reserved steps. Returns None without the ``lmdb`` module (a zerofs
    dependency, so present in its venv) or without a data.mdb.
    """
    try:
        import lmdb  # type: ignore[import-not-found]
    except ImportError:
        return None
    envs = [f.parent for f in repo.rglob("data.mdb")] if repo.is_dir() else []
    if not envs:
        return None
    total = 0
    for path in envs:
        try:
            env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=256)
        except lmdb.Error:
            return None
        try:

            def pages(st: dict[str, int]) -> int:
                return (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * st["psize"]

            total += pages(env.stat())
            with env.begin() as txn:
                names = [key for key, _ in txn.cursor()]
            for name in names:
                try:
                    db = env.open_db(name, create=False)
                except lmdb.Error:
                    continue  # a plain key in the main database, not a named one
                with env.begin() as txn:
                    total += pages(txn.stat(db))
        finally:
            env.close()
    return total


def repo_stored_bytes(zerofs: Zerofs, repo: Path) -> tuple[int, str]:
    """Bytes a zerofs repository occupies, and how that figure was obtained.

    Tries, in order: ``zerofs --repo R stats --json`` (key "stored_bytes",
    searched at any depth of the JSON document); the LMDB pages in use, read
    directly (see ``lmdb_used_bytes``); last, the allocated bytes
    (st_blocks * 512) of the repository directory, which is coarse because
    zerofs reserves the LMDB file in steps of tens of MiB. The result of the
    first probe of ``stats`` is remembered so an absent command costs one
    process.
    """
    if zerofs._stats_ok is not False:
        try:
            _, out = run_timed(
                zerofs.cmd(repo, "stats", "--json"),
                env=zerofs.env,
                timeout=zerofs.timeout,
                capture_stdout=True,
            )
            value = _find_key(json.loads(out), "stored_bytes")
            if isinstance(value, (int, float)):
                zerofs._stats_ok = True
                return int(value), "zerofs stats --json: stored_bytes"
        except (CmdError, ValueError):
            pass
        if zerofs._stats_ok is None:
            zerofs._stats_ok = False
    used = lmdb_used_bytes(repo)
    if used is not None:
        return used, METHOD_LMDB
    return allocated_bytes(repo), METHOD_ALLOC


METHOD_LMDB = "LMDB pages in use (read directly)"
METHOD_ALLOC = "allocated bytes (st_blocks) of repo dir"


class Borg(Tool):
    name = "borg"

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        super().__init__(env, timeout)
        try:
            _, out = run_timed(["borg", "--version"], env=env, timeout=60, capture_stdout=True)
            self.version = out.decode().strip()
        except CmdError as exc:
            self.unavailable = f"borg not usable: {exc}"

    def init(self, repo: Path) -> None:
        self._run(["borg", "init", "-e", "none", str(repo)])

    def import_(self, repo: Path, host_dir: Path, store_path: str, tag: str) -> float:
        # Relative path from the parent so archive paths are "b/dir0/...".
        return self._run(["borg", "create", f"{repo}::{tag}", host_dir.name], cwd=host_dir.parent, settle=True)

    def cat(self, repo: Path, tag: str, store_path: str) -> float:
        return self._run(["borg", "extract", "--stdout", f"{repo}::{tag}", store_path.lstrip("/")])

    def export(self, repo: Path, tag: str, store_path: str, out: Path) -> float:
        out.mkdir(parents=True, exist_ok=True)
        return self._run(["borg", "extract", f"{repo}::{tag}", store_path.lstrip("/")], cwd=out, settle=True)


class Restic(Tool):
    name = "restic"

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        super().__init__(env, timeout)
        self.no_password_flag: list[str] = []
        try:
            _, out = run_timed(["restic", "version"], env=env, timeout=60, capture_stdout=True)
        except CmdError as exc:
            self.unavailable = f"restic not usable: {exc}"
            return
        self.version = out.decode().strip()
        m = re.search(r"restic (\d+)\.(\d+)\.(\d+)", self.version)
        ver = tuple(int(x) for x in m.groups()) if m else (0, 0, 0)
        if ver >= (0, 17, 0):
            self.no_password_flag = ["--insecure-no-password"]
            self.env = {k: v for k, v in env.items() if k != "RESTIC_PASSWORD"}
        # Older restic (Debian 12 ships 0.14) needs a password: RESTIC_PASSWORD.

    def r(self, repo: Path, *args: str) -> list[str]:
        return ["restic", "--repo", str(repo), *self.no_password_flag, *args]

    def init(self, repo: Path) -> None:
        self._run(self.r(repo, "init", "-q"))

    def import_(self, repo: Path, host_dir: Path, store_path: str, tag: str) -> float:
        # Relative path, so the snapshot holds "/b/dir0/..." like the store path.
        return self._run(self.r(repo, "backup", "-q", host_dir.name), cwd=host_dir.parent, settle=True)

    def cat(self, repo: Path, tag: str, store_path: str) -> float:
        return self._run(self.r(repo, "dump", "-q", "latest", store_path))

    def export(self, repo: Path, tag: str, store_path: str, out: Path) -> float:
        return self._run(self.r(repo, "restore", "-q", "latest", "--target", str(out)), settle=True)


# --------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------

VOCABULARY = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "can",
    "has",
    "more",
    "been",
    "would",
    "will",
    "other",
    "when",
    "if",
    "so",
    "what",
    "no",
    "about",
    "up",
    "out",
    "into",
    "some",
    "could",
    "them",
    "time",
    "only",
    "new",
    "these",
    "two",
    "may",
    "first",
    "then",
    "do",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "store",
    "chunk",
    "tree",
    "commit",
    "snapshot",
    "clone",
    "directory",
    "file",
    "index",
    "object",
    "hash",
    "block",
    "page",
    "write",
    "read",
    "merge",
]


class Data:
    """Lazily generated data sets under one scratch directory."""

    def __init__(self, root: Path, sizes: Sizes, log: Callable[[str], None]) -> None:
        self.root = root
        self.sizes = sizes
        self.log = log
        self._done: set[str] = set()

    @property
    def a_dir(self) -> Path:
        return self._ensure("a", self._make_a) / "a"

    @property
    def d_dir(self) -> Path:
        return self._ensure("d", self._make_d) / "d"

    @property
    def b_dir(self) -> Path:
        return self._ensure("b", self._make_b) / "b"

    @property
    def trees(self) -> Path:
        """Directory holding t100/, tbig/, bigdir/, smalldir/."""
        return self._ensure("trees", self._make_trees)

    def _ensure(self, name: str, make: Callable[[Path], None]) -> Path:
        parent = self.root / f"data-{name}"
        if name not in self._done:
            t0 = time.perf_counter()
            self.log(f"generating data set {name} ...")
            parent.mkdir(parents=True, exist_ok=True)
            make(parent)
            self._done.add(name)
            self.log(f"  done in {time.perf_counter() - t0:.1f} s")
        return parent

    # (a): one random file in 1 MiB pieces
    def _make_a(self, parent: Path) -> None:
        d = parent / "a"
        d.mkdir()
        with open(d / "big.bin", "wb") as f:
            for _ in range(self.sizes.big_bytes // MIB):
                f.write(os.urandom(MIB))

    # (d): (a) + 1 MiB inserted at insert_offset, 4 KiB overwritten at overwrite_offset
    def _make_d(self, parent: Path) -> None:
        src = self.a_dir / "big.bin"
        d = parent / "d"
        d.mkdir()
        dst = d / "big.bin"  # same file name as in (a)
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            remaining = self.sizes.insert_offset
            while remaining:
                buf = fi.read(min(MIB, remaining))
                fo.write(buf)
                remaining -= len(buf)
            fo.write(os.urandom(MIB))
            while buf := fi.read(MIB):
                fo.write(buf)
        with open(dst, "r+b") as fo:
            fo.seek(self.sizes.overwrite_offset)
            fo.write(os.urandom(4 * KIB))

    # (b): many small files, half text-like, half random, deterministic
    def _make_b(self, parent: Path) -> None:
        rng = random.Random(20240501)
        words = rng.choices(VOCABULARY, k=600_000)
        lines = []
        for i in range(0, len(words), 12):
            lines.append(" ".join(words[i : i + 12]))
        pool = ("\n".join(lines) + "\n").encode()
        n, ndirs = self.sizes.n_small_files, self.sizes.n_small_dirs
        per_dir = n // ndirs
        root = parent / "b"
        for di in range(ndirs):
            dd = root / f"dir{di}"
            dd.mkdir(parents=True)
            for fi in range(per_dir):
                size = 4096 if (di, fi) == (0, 0) else rng.randint(0, 16 * KIB)
                if fi % 2 == 0:
                    start = rng.randrange(0, len(pool) - size)
                    content = pool[start : start + size]
                else:
                    content = rng.randbytes(size)
                with open(dd / f"file{fi}", "wb") as f:
                    f.write(content)

    # trees for clone and write
    def _make_trees(self, parent: Path) -> None:
        s = self.sizes
        t100 = parent / "t100" / "d0"
        t100.mkdir(parents=True)
        for i in range(100):
            (t100 / f"f{i}").write_bytes(f"{i}\n".encode())
        per = s.n_tree_files // s.n_tree_dirs
        for j in range(s.n_tree_dirs):
            dd = parent / "tbig" / f"d{j}"
            dd.mkdir(parents=True)
            for i in range(per):
                with open(dd / f"f{i}", "wb") as f:
                    if i % 4:
                        f.write(f"{j}/{i}\n".encode())
        big = parent / "bigdir"
        big.mkdir()
        for i in range(s.n_bigdir_files):
            with open(big / f"f{i:06d}", "wb") as f:
                f.write(f"{i}\n".encode())
        small = parent / "smalldir"
        small.mkdir()
        for i in range(10):
            (small / f"f{i}").write_bytes(f"{i}\n".encode())

    def logical_bytes(self, path: Path) -> int:
        return sum(os.lstat(os.path.join(r, f)).st_size for r, _, fs in os.walk(path) for f in fs)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass
class Target:
    """A target checked on one number: metric OP threshold."""

    metric: float | None
    op: str  # ">=", "<=", "<"
    threshold: float
    text: str  # e.g. ">= 1.5x best"
    fmt: Callable[[float], str] = lambda v: f"{v:.3g}"
    caveat: str = ""  # set when the figure is too coarse to trust; the verdict gets a "*"

    def check(self) -> tuple[str, str]:
        verdict, how = self._check()
        if self.caveat and verdict in ("PASS", "MISS"):
            return verdict + "*", f"{how} (* {self.caveat})"
        return verdict, how

    def _check(self) -> tuple[str, str]:
        if self.metric is None:
            return "n/a", "no zerofs figure"
        v, t = self.metric, self.threshold
        ok = {">=": v >= t, "<=": v <= t, "<": v < t}[self.op]
        if self.op == ">=":
            margin = (v / t - 1) * 100 if t else 0.0
            how = f"{self.fmt(v)} vs {self.fmt(t)}: {abs(margin):.0f}% {'above' if margin >= 0 else 'below'} the target"
        else:
            margin = (1 - v / t) * 100 if t else 0.0
            how = f"{self.fmt(v)} vs {self.fmt(t)}: {abs(margin):.0f}% {'under' if margin >= 0 else 'over'} the limit"
        return ("PASS" if ok else "MISS"), how


@dataclass
class Row:
    section: str
    measure: str
    unit: str
    higher_is_better: bool
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    target: Target | None = None
    raw: dict[str, list[float]] = field(default_factory=dict)
    comment: str = ""

    def best_competitor(self) -> tuple[str, float] | None:
        vals = [(t, v) for t in COMPETITORS if (v := self.values.get(t)) is not None]
        if not vals:
            return None
        pick = max if self.higher_is_better else min
        return pick(vals, key=lambda tv: tv[1])

    def ratio(self) -> float | None:
        z = self.values.get("zerofs")
        best = self.best_competitor()
        if z is None or best is None or best[1] == 0:
            return None
        return z / best[1]


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "bytes":
        if abs(v) >= MIB:
            return f"{v / MIB:,.2f} MiB"
        if abs(v) >= KIB:
            return f"{v / KIB:,.1f} KiB"
        return f"{v:,.0f} B"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.runs: int = args.runs
        self.short_runs = max(5, args.runs)  # ms-scale measures are cheap: more runs
        self.sizes = QUICK if args.quick else FULL
        self.work = work
        self.rows: list[Row] = []
        self.messages: list[str] = []
        self.data = Data(work, self.sizes, self.log)
        env = dict(os.environ)
        env.pop("ZEROFS_REPO", None)
        # Measure what users run: Python caches compiled modules. Some shells (coding
        # agents, CI images) set PYTHONDONTWRITEBYTECODE, which makes an editable
        # install recompile every module of zerofs on every start (~+15 ms).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
            BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
            BORG_BASE_DIR=str(work / "borg-base"),
            RESTIC_PASSWORD="x",
            RESTIC_CACHE_DIR=str(work / "restic-cache"),
            NO_COLOR="1",
        )
        self.env = env
        timeout = float(args.timeout)
        self.zerofs = Zerofs(env, timeout)
        self.tools: dict[str, Tool] = {
            "zerofs": self.zerofs,
            "borg": Borg(env, timeout),
            "restic": Restic(env, timeout),
        }
        self.repos: dict[tuple[str, str], tuple[Path, str]] = {}  # (tool, data) -> (repo, tag)
        self._counter = 0
        self.trash: list[Path] = []

    def discard(self, path: Path) -> None:
        """Delete `path` later, between sections, never between timed runs.

        The root file system here is ext4 mounted with ``discard``: deleting
        many files queues TRIMs that slow the next run's metadata writes by
        several times (an export measured 3.7 s right after another export,
        14 s right after deleting one). So deletions wait for empty_trash().
        """
        self.trash.append(path)

    def empty_trash(self) -> None:
        for path in self.trash:
            shutil.rmtree(path, ignore_errors=True)
        self.trash.clear()
        os.sync()

    # helpers ---------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def note(self, msg: str) -> None:
        self.messages.append(msg)
        self.log("  NOTE: " + msg)

    def new_path(self, stem: str) -> Path:
        self._counter += 1
        return self.work / "repos" / f"{stem}-{self._counter}"

    def usable(self, names: tuple[str, ...] = TOOLS) -> list[Tool]:
        return [self.tools[n] for n in names if self.tools[n].unavailable is None]

    def add(self, row: Row) -> Row:
        for t in TOOLS:
            row.values.setdefault(t, None)
            tool = self.tools[t]
            if row.values[t] is None and tool.unavailable and (t not in row.notes or row.notes[t] == "n/a"):
                row.notes[t] = "n/a: not available"
        self.rows.append(row)
        line = f"  -> {row.measure}: " + ", ".join(
            f"{t} {fmt_value(row.values[t], row.unit)}" for t in TOOLS if t in row.values
        )
        self.log(line)
        return row

    def fresh_repo(self, tool: Tool, key: str) -> Path:
        repo = self.new_path(f"{tool.name}-{key}")
        repo.parent.mkdir(parents=True, exist_ok=True)
        tool.init(repo)
        return repo

    def keep_repo(self, tool: Tool, key: str, repo: Path, tag: str) -> None:
        old = self.repos.get((tool.name, key))
        if old and old[0] != repo:
            self.discard(old[0])
        self.repos[(tool.name, key)] = (repo, tag)

    def setup_import(self, tool: Tool, repo: Path, host: Path, store_path: str, tag: str) -> float:
        """An untimed set-up import; retried twice if the tool itself asks for a retry."""
        for attempt in range(3):
            try:
                return tool.import_(repo, host, store_path, tag)
            except CmdError as exc:
                if attempt == 2 or "retry" not in str(exc).lower():
                    raise
                self.note(f"set-up import of {host.name} into {tool.name} asked for a retry: {exc}")
        raise AssertionError("unreachable")

    def ensure_repo(self, tool: Tool, key: str) -> tuple[Path, str]:
        """A repository holding data set `key` ("a" or "b"), imported once."""
        if (tool.name, key) not in self.repos:
            host = self.data.a_dir if key == "a" else self.data.b_dir
            repo = self.fresh_repo(tool, key)
            tag = tool.next_tag(key)
            self.setup_import(tool, repo, host, "/big" if key == "a" else "/b", tag)
            self.repos[(tool.name, key)] = (repo, tag)
        return self.repos[(tool.name, key)]

    # sections ---------------------------------------------------------------
    def import_big(self) -> None:
        """import (a): MB/s of one whole import process into a fresh repo."""
        host = self.data.a_dir
        nbytes = self.sizes.big_bytes
        times: dict[str, list[float]] = {t: [] for t in TOOLS}
        notes: dict[str, str] = {}
        for i in range(self.runs):
            for tool in self.usable():
                if tool.name in notes:
                    continue
                try:
                    repo = self.fresh_repo(tool, "a")
                    tag = tool.next_tag("a")
                    t = tool.import_(repo, host, "/big", tag)
                except CmdError as exc:
                    notes[tool.name] = f"n/a: {exc}"
                    self.note(f"import (a) {tool.name} failed: {exc}")
                    continue
                times[tool.name].append(t)
                self.log(f"  run {i + 1} {tool.name}: {t:.2f} s = {nbytes / t / MB:,.0f} MB/s")
                self.keep_repo(tool, "a", repo, tag)
        row = Row("import_a", f"import (a) {nbytes // MIB} MiB file", "MB/s", True, notes=notes)
        for t, ts in times.items():
            if ts:
                row.values[t] = nbytes / median(ts) / MB
                row.raw[t] = ts
        r = row.ratio()
        row.target = Target(r, ">=", 1.5, ">= 1.5x best", lambda v: f"{v:.2f}x")
        self.add(row)

    def import_small(self, want_import: bool, want_reimport: bool) -> None:
        """import (b) files/s into a fresh repo, then re-import unchanged (s)."""
        host = self.data.b_dir
        n = self.sizes.n_small_files
        logical = self.data.logical_bytes(host)
        t_imp: dict[str, list[float]] = {t: [] for t in TOOLS}
        t_re: dict[str, list[float]] = {t: [] for t in TOOLS}
        sizes: dict[str, float] = {}
        notes: dict[str, str] = {}
        for i in range(self.runs):
            for tool in self.usable():
                if tool.name in notes:
                    continue
                try:
                    repo = self.fresh_repo(tool, "b")
                    tag = tool.next_tag("b")
                    t = tool.import_(repo, host, "/b", tag)
                    t_imp[tool.name].append(t)
                    msg = f"  run {i + 1} {tool.name}: import {t:.2f} s = {n / t:,.0f} files/s"
                    self.keep_repo(tool, "b", repo, tag)
                    sizes[tool.name] = float(tool.stored_bytes(repo)[0])
                    if want_reimport:
                        t2 = tool.import_(repo, host, "/b", tool.next_tag("b"))
                        t_re[tool.name].append(t2)
                        msg += f", re-import {t2:.3f} s"
                    self.log(msg)
                except CmdError as exc:
                    notes[tool.name] = f"n/a: {exc}"
                    self.note(f"import (b) {tool.name} failed: {exc}")
        if want_import:
            row = Row("import_b", f"import (b) {n:,} small files", "files/s", True, notes=dict(notes))
            for t, ts in t_imp.items():
                if ts:
                    row.values[t] = n / median(ts)
                    row.raw[t] = ts
            row.target = Target(row.ratio(), ">=", 1.5, ">= 1.5x best", lambda v: f"{v:.2f}x")
            self.add(row)
            row = Row("import_b", "repo size / logical, (b)", "x", False, notes=dict(notes))
            for t, s in sizes.items():
                row.values[t] = s / logical
            method = (
                self.zerofs.stored_bytes(self.repos[("zerofs", "b")][0])[1] if ("zerofs", "b") in self.repos else "?"
            )
            row.comment = f"logical {logical / MB:.0f} MB; zerofs via {method}; others via du"
            self.add(row)
        if want_reimport:
            row = Row("reimport_b", "re-import (b) unchanged", "s", False, notes=dict(notes))
            for t, ts in t_re.items():
                if ts:
                    row.values[t] = median(ts)
                    row.raw[t] = ts
            row.target = Target(row.values.get("zerofs"), "<", 0.5, "< 0.5 s", lambda v: f"{v:.3f} s")
            self.add(row)

    def _tree_repo(self, kind: str) -> Path | None:
        """A zerofs repo for one section, its trees imported once (untimed).

        "clone" holds /t100 and /tbig; "write" holds /bigdir and /smalldir.
        Separate repositories, so a failure to import one tree does not
        cost the other section its figures.
        """
        if ("zerofs", kind) in self.repos:
            return self.repos[("zerofs", kind)][0]
        z = self.zerofs
        if z.unavailable:
            return None
        trees = self.data.trees
        repo = self.fresh_repo(z, kind)
        try:
            for name in {"clone": ("t100", "tbig"), "write": ("bigdir", "smalldir")}[kind]:
                t = self.setup_import(z, repo, trees / name, f"/{name}", "")
                self.log(f"  setup: zerofs import {name}: {t:.2f} s")
        except CmdError:
            shutil.rmtree(repo, ignore_errors=True)
            raise
        self.repos[("zerofs", kind)] = (repo, "")
        return repo

    def clone(self) -> None:
        """clone of a 100-file tree vs a 100,000-file tree, whole process."""
        nbig = self.sizes.n_tree_files
        row100 = Row("clone", "clone of 100-file tree", "ms", False)
        rowbig = Row("clone", f"clone of {nbig:,}-file tree", "ms", False)
        rowr = Row("clone", f"clone ratio {nbig:,}/100", "x", False)
        for r in (row100, rowbig, rowr):
            for c in COMPETITORS:
                r.notes[c] = "n/a: no O(1) clone"
        try:
            repo = self._tree_repo("clone")
            if repo is None:
                raise Unavailable
            try:
                self.zerofs.mkdir_p(repo, "/snap")
            except CmdError as exc:
                self.note(f"zerofs mkdir -p /snap failed (continuing): {exc}")
            t100: list[float] = []
            tbig: list[float] = []
            for i in range(self.short_runs):
                t100.append(self.zerofs.clone(repo, "/t100", f"/snap/c100-{i}"))
                tbig.append(self.zerofs.clone(repo, "/tbig", f"/snap/cbig-{i}"))
            self.log(
                "  clone 100: "
                + " ".join(f"{x * 1000:.1f}" for x in t100)
                + f" ms; clone {nbig}: "
                + " ".join(f"{x * 1000:.1f}" for x in tbig)
                + " ms"
            )
            row100.values["zerofs"] = median(t100) * 1000
            rowbig.values["zerofs"] = median(tbig) * 1000
            rowr.values["zerofs"] = median(tbig) / median(t100)
            row100.raw["zerofs"], rowbig.raw["zerofs"] = t100, tbig
        except Unavailable:
            pass  # reported once at start-up; add() marks the cells
        except CmdError as exc:
            for r in (row100, rowbig, rowr):
                r.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"clone failed: {exc}")
        rowbig.target = Target(rowbig.values.get("zerofs"), "<", 100, "< 100 ms", lambda v: f"{v:.1f} ms")
        rowr.target = Target(rowr.values.get("zerofs"), "<=", 1.5, "<= 1.5", lambda v: f"{v:.2f}x")
        self.add(row100)
        self.add(rowbig)
        self.add(rowr)

    def write(self) -> None:
        """write one new file into a directory of 100,000 entries vs 10."""
        nbig = self.sizes.n_bigdir_files
        rows = {
            "big_t": Row("write", f"write 1 file into dir of {nbig:,}", "ms", False),
            "small_t": Row("write", "write 1 file into dir of 10", "ms", False),
            "ratio": Row("write", f"write time ratio {nbig:,}/10", "x", False),
            "big_g": Row("write", f"repo growth, 1 write into dir of {nbig:,}", "bytes", False),
            "small_g": Row("write", "repo growth, 1 write into dir of 10", "bytes", False),
            "big_l": Row("write", f"data.mdb alloc growth, dir of {nbig:,}", "bytes", False),
        }
        for r in rows.values():
            for c in COMPETITORS:
                r.notes[c] = "n/a"
        try:
            repo = self._tree_repo("write")
            if repo is None:
                raise Unavailable
            z = self.zerofs
            res: dict[str, dict[str, list[float]]] = {d: {"t": [], "g": [], "l": []} for d in ("bigdir", "smalldir")}
            method = ""
            for i in range(self.short_runs):
                for d in ("bigdir", "smalldir"):
                    before, method = z.stored_bytes(repo)
                    lb = lmdb_allocated_bytes(repo)
                    t = z.write(repo, f"/{d}/new{i}", b"x\n")
                    after, _ = z.stored_bytes(repo)
                    la = lmdb_allocated_bytes(repo)
                    res[d]["t"].append(t)
                    res[d]["g"].append(after - before)
                    if la is not None and lb is not None:
                        res[d]["l"].append(la - lb)
            for d, k in (("bigdir", "big"), ("smalldir", "small")):
                rows[f"{k}_t"].values["zerofs"] = median(res[d]["t"]) * 1000
                rows[f"{k}_t"].raw["zerofs"] = res[d]["t"]
                rows[f"{k}_g"].values["zerofs"] = median(res[d]["g"])
                rows[f"{k}_g"].raw["zerofs"] = res[d]["g"]
                rows[f"{k}_g"].comment = f"via {method}"
                self.log(
                    f"  write {d}: "
                    + " ".join(f"{x * 1000:.1f}" for x in res[d]["t"])
                    + " ms; growth "
                    + " ".join(str(int(x)) for x in res[d]["g"])
                )
            if res["bigdir"]["l"]:
                rows["big_l"].values["zerofs"] = median(res["bigdir"]["l"])
                rows["big_l"].raw["zerofs"] = res["bigdir"]["l"]
                rows["big_l"].comment = "LMDB may pre-allocate in steps: see median of all runs"
            rows["ratio"].values["zerofs"] = median(res["bigdir"]["t"]) / median(res["smalldir"]["t"])
            if method == METHOD_ALLOC:
                self.note(
                    "write growth measured as allocated-bytes growth of the repo dir "
                    "(neither zerofs stats --json nor the lmdb module); LMDB allocation is coarse"
                )
        except Unavailable:
            pass
        except CmdError as exc:
            for r in rows.values():
                r.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"write failed: {exc}")
        for r in rows.values():
            if (
                r is rows["big_l"]
                and r.values.get("zerofs") is None
                and "zerofs" not in r.notes
                and not self.zerofs.unavailable
            ):
                r.notes["zerofs"] = "n/a: no data.mdb found"
            self.add(r)

    def cat(self) -> None:
        """cat of one small file and ls of one directory, whole process, ms."""
        path = "/b/dir0/file0"
        n = self.short_runs
        row_cat = Row("cat", "cat one small file", "ms", False)
        row_ls = Row("cat", "ls /b/dir0", "ms", False)
        row_py = Row("cat", "baseline: python -c pass", "ms", False)
        row_help = Row("cat", "baseline: zerofs --help", "ms", False)
        for r in (row_ls, row_py, row_help):
            for c in COMPETITORS:
                r.notes[c] = "n/a"
        py = [run_timed([sys.executable, "-c", "pass"], env=self.env, timeout=60)[0] for _ in range(n)]
        row_py.values["zerofs"] = median(py) * 1000
        for tool in self.usable():
            try:
                repo, tag = self.ensure_repo(tool, "b")
                ts = [tool.cat(repo, tag, path) for _ in range(n)]
                row_cat.values[tool.name] = median(ts) * 1000
                row_cat.raw[tool.name] = ts
                self.log(f"  cat {tool.name}: " + " ".join(f"{x * 1000:.1f}" for x in ts) + " ms")
            except CmdError as exc:
                row_cat.notes[tool.name] = f"n/a: {exc}"
                self.note(f"cat {tool.name} failed: {exc}")
        z = self.zerofs
        if not z.unavailable:
            try:
                repo, _ = self.ensure_repo(z, "b")
                ts = [z.ls(repo, "/b/dir0") for _ in range(n)]
                row_ls.values["zerofs"] = median(ts) * 1000
                row_ls.raw["zerofs"] = ts
                hs = [run_timed([*z.base, "--help"], env=self.env, timeout=60)[0] for _ in range(n)]
                row_help.values["zerofs"] = median(hs) * 1000
            except CmdError as exc:
                row_ls.notes["zerofs"] = f"n/a: {exc}"
                self.note(f"ls zerofs failed: {exc}")
        row_cat.target = Target(row_cat.values.get("zerofs"), "<", 50, "< 50 ms", lambda v: f"{v:.1f} ms")
        row_ls.target = Target(row_ls.values.get("zerofs"), "<", 50, "< 50 ms", lambda v: f"{v:.1f} ms")
        row_py.comment = "interpreter start-up floor (shown in the zerofs column)"
        self.add(row_cat)
        self.add(row_ls)
        self.add(row_py)
        self.add(row_help)

    def complete(self) -> None:
        """Completion of a store path through the bash entry point, in a directory of 100,000 vs 10."""
        nbig = self.sizes.n_bigdir_files
        rows = {
            "bigdir": Row("complete", f"complete a name in a dir of {nbig:,}", "s", False),
            "smalldir": Row("complete", "complete a name in a dir of 10", "s", False),
        }
        for r in rows.values():
            for c in COMPETITORS:
                r.notes[c] = "n/a"
        z = self.zerofs
        try:
            repo = self._tree_repo("write")
            if repo is None:
                raise Unavailable
            for d, prefix in (("bigdir", "f0999"), ("smalldir", "f")):
                env = {
                    **self.env,
                    "ZEROFS_REPO": str(repo),
                    "_ZEROFS_COMPLETE": "complete_bash",
                    "COMP_WORDS": f"zerofs cat /{d}/{prefix}",
                    "COMP_CWORD": "2",
                }
                ts = []
                for _ in range(self.short_runs):
                    t, out = run_timed(z.base, env=env, timeout=60, capture_stdout=True)
                    if not out.strip():
                        raise CmdError(f"completion of /{d}/{prefix} offered nothing")
                    ts.append(t)
                rows[d].values["zerofs"] = median(ts)
                rows[d].raw["zerofs"] = ts
                self.log(f"  complete /{d}/{prefix}: " + " ".join(f"{x:.3f}" for x in ts) + " s")
        except Unavailable:
            pass
        except CmdError as exc:
            for r in rows.values():
                r.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"completion failed: {exc}")
        big = rows["bigdir"]
        big.target = Target(big.values.get("zerofs"), "<", 0.5, "< 0.5 s (well under a second)", lambda v: f"{v:.3f} s")
        for r in rows.values():
            self.add(r)

    def dedup(self) -> None:
        """Bytes the repository grows by when (d) is imported after (a)."""
        row = Row("dedup", "bytes added by (d) after (a)", "bytes", False)
        row_l = Row("dedup", "data.mdb alloc growth by (d)", "bytes", False)
        row_t = Row("dedup", "import (d) over (a), time", "s", False)
        for c in COMPETITORS:
            row_l.notes[c] = "n/a"
        method = ""
        for tool in self.usable():
            try:
                repo, _ = self.ensure_repo(tool, "a")
                before, method_t = tool.stored_bytes(repo)
                lb = lmdb_allocated_bytes(repo) if tool is self.zerofs else None
                # zerofs: same store path /big, same file name inside both dirs.
                t = tool.import_(repo, self.data.d_dir, "/big", tool.next_tag("d"))
                after, _ = tool.stored_bytes(repo)
                row.values[tool.name] = float(after - before)
                row_t.values[tool.name] = t
                if tool is self.zerofs:
                    method = method_t
                    la = lmdb_allocated_bytes(repo)
                    if la is not None and lb is not None:
                        row_l.values["zerofs"] = float(la - lb)
                self.log(f"  {tool.name}: grew {after - before:,} bytes ({method_t}), {t:.2f} s")
            except CmdError as exc:
                row.notes[tool.name] = f"n/a: {exc}"
                self.note(f"dedup {tool.name} failed: {exc}")
        row.comment = f"truly new: {NEW_BYTES_D:,} B; zerofs via {method or '?'}; borg/restic via du"
        row.target = Target(
            row.values.get("zerofs"),
            "<=",
            1.5 * NEW_BYTES_D,
            "<= 1.5 x (1 MiB + 4 KiB)",
            lambda v: f"{v / MIB:.2f} MiB",
        )
        if method == METHOD_ALLOC:
            self.note("dedup growth for zerofs is allocated-bytes growth (no stats --json, no lmdb)")
            row.target.caveat = "measured by file allocation, which zerofs reserves in large steps"
        self.add(row)
        self.add(row_l)
        self.add(row_t)
        # The kept (a) repos now also hold (d); drop them so nothing reuses them as "(a) only".
        for tool in TOOLS:
            old = self.repos.pop((tool, "a"), None)
            if old:
                self.discard(old[0])

    def export(self) -> None:
        """export / restore of (b) into an empty host directory."""
        row = Row("export", "export (b)", "s", False)
        times: dict[str, list[float]] = {t: [] for t in TOOLS}
        for i in range(self.runs):
            for tool in self.usable():
                if tool.name in row.notes:
                    continue
                out = self.new_path(f"out-{tool.name}")
                try:
                    repo, tag = self.ensure_repo(tool, "b")
                    t = tool.export(repo, tag, "/b", out)
                    times[tool.name].append(t)
                    self.log(f"  run {i + 1} {tool.name}: {t:.2f} s")
                except CmdError as exc:
                    row.notes[tool.name] = f"n/a: {exc}"
                    self.note(f"export {tool.name} failed: {exc}")
                finally:
                    self.discard(out)
        for t, ts in times.items():
            if ts:
                row.values[t] = median(ts)
                row.raw[t] = ts
        z, r = row.values.get("zerofs"), row.values.get("restic")
        row.target = Target(
            z / r if z is not None and r else None, "<=", 1.0, "<= restic", lambda v: f"{v:.2f}x restic"
        )
        self.add(row)

    def diff(self) -> None:
        """zerofs diff HEAD~1 HEAD after a one-file change vs after a change of every file, whole process.

        The tree is tbig (the clone section's 100,000 files in 1,000 directories).
        The one-file change is a ``zerofs write``; the full change re-imports a
        copy of tbig in which every file's content differs.
        """
        n = self.sizes.n_tree_files
        row_one = Row("diff", f"diff, 1 file changed in {n:,}", "ms", False)
        row_all = Row("diff", f"diff, all {n:,} files changed", "ms", False)
        row_ratio = Row("diff", "diff ratio all/one", "x", False)
        for r in (row_one, row_all, row_ratio):
            for c in COMPETITORS:
                r.notes[c] = "n/a: not measured"
        z = self.zerofs
        try:
            if z.unavailable:
                raise Unavailable
            repo = self.fresh_repo(z, "diff")
            t = self.setup_import(z, repo, self.data.trees / "tbig", "/tbig", "")
            self.log(f"  setup: zerofs import tbig: {t:.2f} s")
            z.write(repo, "/tbig/d0/f1", b"changed\n")

            def timed_diff() -> tuple[float, int]:
                seconds, out = run_timed(
                    z.cmd(repo, "diff", "HEAD~1", "HEAD"), env=z.env, timeout=z.timeout, capture_stdout=True
                )
                return seconds, out.count(b"\n")

            one = [timed_diff() for _ in range(self.short_runs)]
            changed = self.work / "data-diff" / "tbig-changed"
            _make_changed_tree(self.data.trees / "tbig", changed)
            t = self.setup_import(z, repo, changed, "/tbig", "")
            self.log(f"  setup: zerofs import of tbig with every file changed: {t:.2f} s")
            every = [timed_diff() for _ in range(self.runs)]
            self.log(
                f"  diff, one file: {' '.join(f'{s * 1000:.1f}' for s, _ in one)} ms ({one[0][1]} lines); "
                f"every file: {' '.join(f'{s * 1000:.0f}' for s, _ in every)} ms ({every[0][1]} lines)"
            )
            t_one, t_all = [s for s, _ in one], [s for s, _ in every]
            row_one.values["zerofs"] = median(t_one) * 1000
            row_all.values["zerofs"] = median(t_all) * 1000
            row_ratio.values["zerofs"] = median(t_all) / median(t_one)
            row_one.raw["zerofs"], row_all.raw["zerofs"] = t_one, t_all
            row_one.comment = f"{one[0][1]} line(s) of output"
            row_all.comment = f"{every[0][1]:,} lines of output"
            self.discard(changed.parent)
            self.discard(repo)
        except Unavailable:
            pass
        except CmdError as exc:
            for r in (row_one, row_all, row_ratio):
                r.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"diff failed: {exc}")
        self.add(row_one)
        self.add(row_all)
        self.add(row_ratio)

    def ceilings(self) -> list[tuple[str, float]]:
        """In-process library ceilings on file (a), MB/s."""
        out: list[tuple[str, float]] = []
        try:
            import blake3  # type: ignore[import-not-found]
            import pyfastcdc  # type: ignore[import-not-found]
        except ImportError as exc:
            self.note(f"ceilings skipped: {exc}")
            return out
        path = self.data.a_dir / "big.bin"
        data = path.read_bytes()
        n = len(data)
        view = memoryview(data)

        def one_thread() -> None:
            h = blake3.blake3(max_threads=1)
            for off in range(0, n, MIB):
                h.update(view[off : off + MIB])
            h.digest()

        def auto() -> None:
            blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()

        cdc = pyfastcdc.FastCDC(avg_size=65536)

        def chunk() -> None:
            for _ in cdc.cut_file(str(path)):
                pass

        def chunk_hash() -> None:
            for c in cdc.cut_file(str(path)):
                blake3.blake3(c.data, max_threads=1).digest()

        for name, fn in (
            ("BLAKE3, one thread (1 MiB updates)", one_thread),
            ("BLAKE3, max_threads=AUTO", auto),
            ("FastCDC avg 64 KiB (cut_file)", chunk),
            ("FastCDC 64 KiB + BLAKE3 per chunk, 1 thread", chunk_hash),
        ):
            ts = []
            for _ in range(self.runs):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            out.append((name, n / median(ts) / MB))
            self.log(f"  {name}: {n / median(ts) / MB:,.0f} MB/s")
        return out


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def _make_changed_tree(source: Path, target: Path) -> None:
    """Copy ``source``'s layout to ``target`` with different contents in every file."""
    for dirpath, _, names in os.walk(source):
        out = target / os.path.relpath(dirpath, source)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            with open(out / name, "wb") as f:
                f.write(f"{os.path.relpath(dirpath, source)}/{name} changed\n".encode())


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def cell(row: Row, tool: str) -> str:
    v = row.values.get(tool)
    if v is not None:
        return fmt_value(v, row.unit)
    note = row.notes.get(tool, "n/a")
    # Full error text goes to "Problems and caveats"; keep the table narrow.
    return note if len(note) <= 22 else "n/a (failed, see below)"


def report(bench: Bench, ceilings: list[tuple[str, float]]) -> dict[str, Any]:
    rows_txt = []
    for r in bench.rows:
        ratio = r.ratio()
        verdict = ""
        if r.target:
            verdict = r.target.check()[0]
        rows_txt.append(
            [
                r.measure,
                r.unit,
                cell(r, "zerofs"),
                cell(r, "borg"),
                cell(r, "restic"),
                f"{ratio:.2f}" if ratio is not None else "-",
                r.target.text if r.target else "-",
                verdict or "-",
            ]
        )
    print()
    print("=" * 78)
    print(
        f"SUMMARY (medians; {bench.runs} runs, {bench.short_runs} for ms-scale measures;"
        f" {'quick' if bench.args.quick else 'full'} data sets)"
    )
    print("=" * 78)
    print(render_table(["measure", "unit", "zerofs", "borg", "restic", "zerofs/best", "target", "result"], rows_txt))
    ceil_out = []
    z_import = next((r.values.get("zerofs") for r in bench.rows if r.section == "import_a"), None)
    if ceilings:
        print()
        print("Ceilings (in-process, file (a), warm cache)")
        crow = []
        for name, mbs in ceilings:
            frac = f"{z_import / mbs:.1%}" if z_import else "n/a"
            crow.append([name, f"{mbs:,.0f}", frac])
            share = z_import / mbs if z_import else None
            ceil_out.append({"name": name, "MB/s": mbs, "zerofs_import_a_fraction": share})
        print(render_table(["ceiling", "MB/s", "zerofs import (a) as share"], crow))
    comments = [f"  {r.measure}: {r.comment}" for r in bench.rows if r.comment]
    if comments:
        print()
        print("Notes on rows:")
        print("\n".join(comments))
    print()
    print("Targets:")
    targets_out = []
    for r in bench.rows:
        if not r.target:
            continue
        verdict, how = r.target.check()
        print(f"  {verdict:4}  {r.measure} (target {r.target.text}): {how}")
        targets_out.append({"measure": r.measure, "target": r.target.text, "result": verdict, "detail": how})
    if bench.messages:
        print()
        print("Problems and caveats seen during the run:")
        for m in bench.messages:
            print("  - " + m.replace("\n", "\n    "))
    return {
        "rows": [
            {
                "section": r.section,
                "measure": r.measure,
                "unit": r.unit,
                "values": r.values,
                "notes": r.notes,
                "raw_seconds": r.raw,
                "ratio_zerofs_best": r.ratio(),
                "target": r.target.text if r.target else None,
                "result": r.target.check()[0] if r.target else None,
                "comment": r.comment,
            }
            for r in bench.rows
        ],
        "ceilings": ceil_out,
        "targets": targets_out,
        "messages": bench.messages,
    }


# --------------------------------------------------------------------------
# Scratch directory
# --------------------------------------------------------------------------


def fs_type(path: Path) -> str:
    """File-system type of the mount holding `path` (from /proc/self/mounts)."""
    best, kind = "", "?"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                is_under = str(path).startswith(mnt.rstrip("/") + "/") or str(path) == mnt
                if is_under and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def pick_workdir(requested: str | None) -> Path:
    candidates = (
        [Path(requested)]
        if requested
        else [
            Path("/var/tmp"),
            Path(__file__).resolve().parent.parent.parent,  # the repo's parent directory
        ]
    )
    for c in candidates:
        if c.is_dir() and os.access(c, os.W_OK) and fs_type(c.resolve()) not in ("tmpfs", "ramfs"):
            return Path(tempfile.mkdtemp(prefix="zerofs-bench-", dir=c))
    raise SystemExit(f"no writable non-tmpfs scratch directory among {candidates}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per measure (median); default 3")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller data (128 MiB file, 2,000 files, 10,000-file trees) for a smoke run",
    )
    p.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--workdir", help="parent of the scratch directory (default /var/tmp; never tmpfs)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per process")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    args.sections = only or list(SECTIONS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = pick_workdir(args.workdir)
    t_start = time.perf_counter()
    print(
        f"zerofs benchmark: scratch dir {work} ({fs_type(work)}), "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    bench = Bench(args, work)
    for name, tool in bench.tools.items():
        state = tool.unavailable or tool.version.splitlines()[0]
        print(f"  {name}: {state}")
        if tool.unavailable:
            bench.messages.append(f"{name} unavailable, its figures are n/a: {tool.unavailable}")
    ceilings: list[tuple[str, float]] = []
    sections = args.sections
    try:

        def section(title: str) -> None:
            bench.empty_trash()  # deletions happen here, never between timed runs
            print(f"\n== {title} ({time.perf_counter() - t_start:.0f} s elapsed)", flush=True)

        if "import_a" in sections:
            section("import (a)")
            bench.import_big()
        if "import_b" in sections or "reimport_b" in sections:
            section("import (b) / re-import (b)")
            bench.import_small("import_b" in sections, "reimport_b" in sections)
        if "clone" in sections:
            section("clone")
            bench.clone()
        if "write" in sections:
            section("write one file into a big / small directory")
            bench.write()
        if "cat" in sections:
            section("cat / ls")
            bench.cat()
        if "complete" in sections:
            section("shell completion of a store path")
            bench.complete()
        if "export" in sections:
            section("export (b)")
            bench.export()
        if "dedup" in sections:
            section("dedup of (d) after (a)")
            bench.dedup()
        if "diff" in sections:
            section("diff: one file changed vs every file changed")
            bench.diff()
        if "ceilings" in sections:
            section("ceilings")
            ceilings = bench.ceilings()
        result = report(bench, ceilings)
        elapsed = time.perf_counter() - t_start
        print(f"\nTotal wall time {elapsed:.0f} s")
        if args.json:
            result["meta"] = {
                "runs": args.runs,
                "quick": args.quick,
                "sections": sections,
                "elapsed_s": elapsed,
                "versions": {n: t.unavailable or t.version for n, t in bench.tools.items()},
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sizes": bench.sizes.__dict__,
            }
            Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
            print(f"wrote {args.json}")
    finally:
        if args.keep:
            print(f"kept scratch dir {work}")
        else:
            print(f"removing scratch dir {work} ...", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
