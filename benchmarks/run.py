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
      at 512 MiB (in a copy; (a) is left as it is);
  src: real source code, a copy of the site-packages directory of the
      interpreter running this script (without __pycache__ and .pyc files);
  tiny: 200,000 files of a few bytes each (distinct) in 400 directories.

The "encrypted" section runs zerofs on an encrypted repository (``init
--encrypt``, the password from a file, the key cache in a private runtime
directory, as on a desktop session) beside zerofs on a plain one and restic
(always encrypted), interleaved, on (a), (b) and ``cat``.

Every repository size, for zerofs as for borg and restic, is measured one way:
the allocated bytes (st_blocks * 512, as ``du -s --block-size=1``, directories
included, symlinks not followed, hard links counted once) of the whole
repository directory, after the tool's process has exited.

Usage:
  python benchmarks/run.py [--runs N] [--quick] [--only NAME[,NAME]] [--json FILE]

Uses the standard library only, plus ``blake3`` and ``pyfastcdc`` for the
in-process ceilings. zerofs itself is driven only through its CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import stat
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

# In the order of the summary table (the order of the targets in issue 11).
SECTIONS = (
    "import_a",
    "import_b",
    "import_src",
    "tiny",
    "dedup",
    "reimport_b",
    "cat",
    "clone",
    "export",
    "write",
    "complete",
    "diff",
    "encrypted",
    "ceilings",
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
    n_tiny_files: int
    n_tiny_dirs: int
    insert_offset: int
    overwrite_offset: int


FULL = Sizes(
    big_bytes=GIB,
    n_small_files=20_000,
    n_small_dirs=200,
    n_tree_files=100_000,
    n_tree_dirs=1_000,
    n_bigdir_files=100_000,
    n_tiny_files=200_000,
    n_tiny_dirs=400,
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
    n_tiny_files=20_000,
    n_tiny_dirs=40,
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


def du_bytes(path: Path) -> int:
    """Allocated bytes of a file or a whole tree, as ``du -s --block-size=1 PATH``.

    st_blocks * 512 of every entry, the directories (and ``path`` itself)
    included; symlinks are counted themselves, never followed; a file with
    several hard links in the tree is counted once, as du does. Used for every
    tool's repository alike, only ever after the tool's process has exited.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    total = st.st_blocks * 512
    if not stat.S_ISDIR(st.st_mode):
        return total
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if est.st_nlink > 1 and not stat.S_ISDIR(est.st_mode):
                key = (est.st_dev, est.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += est.st_blocks * 512
            if stat.S_ISDIR(est.st_mode):
                stack.append(entry.path)
    return total


def repo_du(repo: Path) -> int:
    """The size of a repository: ``du_bytes`` of its directory, after a sync.

    Called only between processes, when the tool that wrote the repository has
    exited. The (untimed) sync makes the figure independent of how far the
    kernel has got with write-back.
    """
    os.sync()
    return du_bytes(repo)


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


class Zerofs(Tool):
    name = "zerofs"

    def __init__(self, env: dict[str, str], timeout: float) -> None:
        super().__init__(env, timeout)
        self.base = self._locate()
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


class ZerofsEncrypted(Zerofs):
    """zerofs on encrypted repositories: ``init --encrypt``, the password from a file, a private key cache."""

    name = "zerofs-enc"

    def __init__(self, env: dict[str, str], timeout: float, work: Path) -> None:
        secrets = work / "secrets"
        secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        (secrets / "password").write_text("benchmark password\n")
        runtime = secrets / "run"  # $XDG_RUNTIME_DIR: private, as a login session's
        runtime.mkdir(mode=0o700, exist_ok=True)
        env = {**env, "ZEROFS_PASSWORD_FILE": str(secrets / "password"), "XDG_RUNTIME_DIR": str(runtime)}
        env.pop("ZEROFS_KEY_CACHE", None)
        super().__init__(env, timeout)

    def init(self, repo: Path) -> None:
        self._run(self.cmd(repo, "init", "--encrypt"))


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
        self.info: dict[str, dict[str, Any]] = {}  # per data set: files, logical bytes, ...

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
    def src_dir(self) -> Path:
        return self._ensure("src", self._make_src) / "src"

    @property
    def tiny_dir(self) -> Path:
        return self._ensure("tiny", self._make_tiny) / "tiny"

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
            if name not in self.info and name != "trees":
                files, nbytes = tree_stats(parent / name)
                self.info[name] = {"files": files, "logical_bytes": nbytes}
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

    # src: real source code, the installed packages of this interpreter's environment
    @staticmethod
    def site_packages() -> Path:
        v = sys.version_info
        path = Path(sys.prefix) / "lib" / f"python{v.major}.{v.minor}" / "site-packages"
        if not path.is_dir():
            raise SystemExit(f"data set src: no site-packages directory at {path}")
        return path

    def _make_src(self, parent: Path) -> None:
        origin = self.site_packages()
        # No byte code: the interpreters started by the benchmark write it, so
        # with it the data set would change between runs.
        shutil.copytree(origin, parent / "src", symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        files, nbytes = tree_stats(parent / "src")
        py = [
            os.lstat(os.path.join(r, f)).st_size
            for r, _, fs in os.walk(parent / "src")
            for f in fs
            if f.endswith(".py")
        ]
        self.info["src"] = {
            "origin": str(origin),
            "files": files,
            "logical_bytes": nbytes,
            "py_files": len(py),
            "py_bytes": sum(py),
        }
        self.log(
            f"  src: copy of {origin}: {files:,} files, {nbytes / MB:,.1f} MB logical "
            f"({len(py):,} .py files, {sum(py) / MB:,.1f} MB)"
        )

    # tiny: many files of a few bytes, every content distinct
    def _make_tiny(self, parent: Path) -> None:
        n, ndirs = self.sizes.n_tiny_files, self.sizes.n_tiny_dirs
        per_dir = n // ndirs
        root = parent / "tiny"
        for di in range(ndirs):
            dd = root / f"d{di}"
            dd.mkdir(parents=True)
            for fi in range(per_dir):
                with open(dd / f"f{fi}", "wb") as f:
                    f.write(f"{di}-{fi}\n".encode())
        files, nbytes = tree_stats(root)
        self.info["tiny"] = {"files": files, "dirs": ndirs, "logical_bytes": nbytes}
        self.log(f"  tiny: {files:,} files in {ndirs} directories, {nbytes:,} B logical")

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
        return tree_stats(path)[1]


def tree_stats(path: Path) -> tuple[int, int]:
    """(number of non-directory entries, their logical bytes: st_size) of a host tree."""
    files = nbytes = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            nbytes += os.lstat(os.path.join(root, name)).st_size
    return files, nbytes


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass
class Target:
    """A target checked on one number: metric OP threshold.

    The metric is a zerofs figure or a ratio of zerofs's figure to another
    tool's (or to a baseline's) from the same invocation; None when either is
    missing.
    """

    metric: float | None
    op: str  # ">=", "<=", "<"
    threshold: float
    text: str  # e.g. ">= 2x borg"
    fmt: Callable[[float], str] = lambda v: f"{v:.3g}"

    def check(self) -> tuple[str, str]:
        if self.metric is None:
            return "n/a", "no figure (zerofs, or what it is compared with, is n/a)"
        v, t = self.metric, self.threshold
        ok = {">=": v >= t, "<=": v <= t, "<": v < t}[self.op]
        if self.op == ">=":
            margin = (v / t - 1) * 100 if t else 0.0
            how = f"{self.fmt(v)} vs {self.fmt(t)}: {abs(margin):.0f}% {'above' if margin >= 0 else 'below'} the target"
        else:
            margin = (1 - v / t) * 100 if t else 0.0
            how = f"{self.fmt(v)} vs {self.fmt(t)}: {abs(margin):.0f}% {'under' if margin >= 0 else 'over'} the limit"
        return ("PASS" if ok else "MISS"), how


def ratio_fmt(name: str) -> Callable[[float], str]:
    return lambda v: f"{v:.2f}x {name}"


@dataclass
class Row:
    section: str
    measure: str
    unit: str
    higher_is_better: bool
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    raw: dict[str, list[float]] = field(default_factory=dict)  # seconds of each run, per tool
    du: dict[str, list[float]] = field(default_factory=dict)  # raw du figures (bytes), per tool
    logical: int | None = None  # logical bytes of the data set, where du is compared with it
    baseline: tuple[str, float] | None = None  # (what, value in the row's unit), e.g. ("cp -a", 1.2)
    baseline_raw: list[float] = field(default_factory=list)
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

    def vs(self, tool: str) -> float | None:
        """zerofs's value divided by `tool`'s, or None."""
        z, other = self.values.get("zerofs"), self.values.get(tool)
        if z is None or not other:
            return None
        return z / other

    def verdict(self) -> str:
        """MISS if any target is missed, else n/a if any cannot be checked, else PASS; "-" without targets."""
        if not self.targets:
            return "-"
        verdicts = [t.check()[0] for t in self.targets]
        for v in ("MISS", "n/a"):
            if v in verdicts:
                return v
        return "PASS"

    def target_text(self) -> str:
        return " and ".join(t.text for t in self.targets) if self.targets else "-"


@dataclass
class ImportRuns:
    """What Bench.import_runs measured, per tool."""

    times: dict[str, list[float]] = field(default_factory=dict)
    du: dict[str, list[float]] = field(default_factory=dict)
    re_times: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


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
        self.zerofs_enc = ZerofsEncrypted(env, timeout, work)
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

    def du(self, repo: Path) -> int:
        """A repository's size: du of its directory (called after the tool exited)."""
        return repo_du(repo)

    def import_runs(
        self,
        key: str,
        host: Path,
        store_path: str,
        runs: int,
        *,
        keep: bool = False,
        reimport: bool = False,
    ) -> ImportRuns:
        """`runs` imports of `host` by each tool, each into a fresh repository.

        After each import (the tool has exited) the repository's du is taken;
        with `reimport`, the same tree is then imported a second time into the
        same repository and timed. With `keep`, the last repository of each
        tool is kept for later sections (``ensure_repo(tool, key)``); otherwise
        it is deleted between sections.
        """
        res = ImportRuns()
        for i in range(runs):
            for tool in self.usable():
                if tool.name in res.notes:
                    continue
                try:
                    repo = self.fresh_repo(tool, key)
                    tag = tool.next_tag(key)
                    t = tool.import_(repo, host, store_path, tag)
                    res.times.setdefault(tool.name, []).append(t)
                    size = self.du(repo)
                    res.du.setdefault(tool.name, []).append(float(size))
                    msg = f"  run {i + 1} {tool.name}: import {t:.2f} s, du {fmt_value(size, 'bytes')}"
                    if keep:
                        self.keep_repo(tool, key, repo, tag)
                    else:
                        self.discard(repo)
                    if reimport:
                        t2 = tool.import_(repo, host, store_path, tool.next_tag(key))
                        res.re_times.setdefault(tool.name, []).append(t2)
                        msg += f", re-import {t2:.3f} s"
                    self.log(msg)
                except CmdError as exc:
                    res.notes[tool.name] = f"n/a: {exc}"
                    self.note(f"import {key} {tool.name} failed: {exc}")
        return res

    def rate_row(self, section: str, measure: str, unit: str, amount: float, res: ImportRuns) -> Row:
        """A throughput row: amount / median seconds, per tool."""
        row = Row(section, measure, unit, True, notes=dict(res.notes))
        for t, ts in res.times.items():
            row.values[t] = amount / median(ts)
            row.raw[t] = ts
        return row

    def du_rows(self, section: str, label: str, logical: int, res: ImportRuns) -> tuple[Row, Row]:
        """Rows "repo du, LABEL" (bytes) and "repo du / logical, LABEL" (x), medians over the runs."""
        size = Row(section, f"repo du, {label}", "bytes", False, notes=dict(res.notes), logical=logical)
        rel = Row(section, f"repo du / logical, {label}", "x", False, notes=dict(res.notes), logical=logical)
        for t, sizes in res.du.items():
            size.values[t] = median(sizes)
            rel.values[t] = median(sizes) / logical if logical else None
            size.du[t] = rel.du[t] = sizes
        size.comment = f"logical {logical:,} B ({logical / MB:,.1f} MB); du of each repository directory"
        return size, rel

    # sections ---------------------------------------------------------------
    def import_big(self) -> None:
        """import (a): MB/s of one whole import process into a fresh repo."""
        host = self.data.a_dir
        nbytes = self.sizes.big_bytes
        res = self.import_runs("a", host, "/big", self.runs, keep=True)
        row = self.rate_row("import_a", f"import (a) {nbytes // MIB} MiB file", "MB/s", nbytes / MB, res)
        row.du = res.du
        row.logical = nbytes
        dus = ", ".join(f"{t} {median(v) / nbytes:.3f}" for t, v in res.du.items())
        row.comment = f"du / logical: {dus}"
        row.targets = [Target(row.vs("borg"), ">=", 2.0, ">= 2x borg", ratio_fmt("borg"))]
        self.add(row)

    def import_small(self, want_import: bool, want_reimport: bool) -> None:
        """import (b) files/s into a fresh repo, its du, then re-import unchanged (s)."""
        host = self.data.b_dir
        n = self.sizes.n_small_files
        logical = self.data.logical_bytes(host)
        res = self.import_runs("b", host, "/b", self.runs, keep=True, reimport=want_reimport)
        if want_import:
            row = self.rate_row("import_b", f"import (b) {n:,} small files", "files/s", n, res)
            row.targets = [
                Target(row.vs("restic"), ">=", 2.0, ">= 2x restic", ratio_fmt("restic")),
                Target(row.vs("borg"), ">=", 1.5, ">= 1.5x borg", ratio_fmt("borg")),
            ]
            self.add(row)
            size, rel = self.du_rows("import_b", "(b)", logical, res)
            rel.targets = [Target(rel.vs("restic"), "<=", 1.0, "<= restic's", ratio_fmt("restic's"))]
            self.add(size)
            self.add(rel)
        if want_reimport:
            row = Row("reimport_b", "re-import (b) unchanged", "s", False, notes=dict(res.notes))
            for t, ts in res.re_times.items():
                row.values[t] = median(ts)
                row.raw[t] = ts
            row.targets = [Target(row.values.get("zerofs"), "<", 0.3, "< 0.3 s", lambda v: f"{v:.3f} s")]
            self.add(row)

    def import_src(self) -> None:
        """import of real source code (a copy of site-packages) into fresh repos: throughput and du."""
        host = self.data.src_dir
        files, logical = tree_stats(host)
        res = self.import_runs("src", host, "/src", self.runs)
        label = f"src ({files:,} files, {logical / MB:,.0f} MB)"
        mbs = self.rate_row("import_src", f"import {label}", "MB/s", logical / MB, res)
        faster = mbs.best_competitor()
        mbs.targets = [
            Target(mbs.ratio(), ">=", 1.5, ">= 1.5x faster of borg/restic", ratio_fmt(faster[0] if faster else "?"))
        ]
        fps = self.rate_row("import_src", f"import {label}", "files/s", files, res)
        fps.comment = "same runs as the MB/s row, so the same ratios"
        size, rel = self.du_rows("import_src", "src", logical, res)
        rel.targets = [Target(rel.vs("restic"), "<=", 1.0, "<= restic's", ratio_fmt("restic's"))]
        for r in (mbs, fps, size, rel):
            self.add(r)

    def tiny(self) -> None:
        """import of many tiny files into fresh repos, once per tool: du and (for information) files/s."""
        host = self.data.tiny_dir
        files, logical = tree_stats(host)
        res = self.import_runs("tiny", host, "/tiny", 1)
        label = f"tiny ({files:,} files)"
        size, _ = self.du_rows("tiny", label, logical, res)
        size.targets = [Target(size.vs("restic"), "<=", 1.2, "<= 1.2x restic's", ratio_fmt("restic's"))]
        size.comment = (
            f"logical {logical:,} B; the host tree itself takes {du_bytes(host) / MB:,.0f} MB (du); one run per tool"
        )
        fps = self.rate_row("tiny", f"import {label}", "files/s", files, res)
        fps.comment = "for information; one run per tool"
        self.add(size)
        self.add(fps)

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
        rowbig.targets = [Target(rowbig.values.get("zerofs"), "<", 100, "< 100 ms", lambda v: f"{v:.1f} ms")]
        rowr.targets = [Target(rowr.values.get("zerofs"), "<=", 1.5, "<= 1.5 (O(1))", lambda v: f"{v:.2f}x")]
        self.add(row100)
        self.add(rowbig)
        self.add(rowr)

    def write(self) -> None:
        """write one new file into a directory of 100,000 entries vs 10, and the du growth of each write."""
        nbig = self.sizes.n_bigdir_files
        rows = {
            "big_t": Row("write", f"write 1 file into dir of {nbig:,}", "ms", False),
            "small_t": Row("write", "write 1 file into dir of 10", "ms", False),
            "ratio": Row("write", f"write time ratio {nbig:,}/10", "x", False),
            "big_g": Row("write", f"repo du growth, 1 write into dir of {nbig:,}", "bytes", False),
            "small_g": Row("write", "repo du growth, 1 write into dir of 10", "bytes", False),
        }
        for r in rows.values():
            for c in COMPETITORS:
                r.notes[c] = "n/a"
        try:
            repo = self._tree_repo("write")
            if repo is None:
                raise Unavailable
            z = self.zerofs
            res: dict[str, dict[str, list[float]]] = {d: {"t": [], "g": []} for d in ("bigdir", "smalldir")}
            for i in range(self.short_runs):
                for d in ("bigdir", "smalldir"):
                    before = self.du(repo)
                    t = z.write(repo, f"/{d}/new{i}", b"x\n")
                    after = self.du(repo)
                    res[d]["t"].append(t)
                    res[d]["g"].append(float(after - before))
            for d, k in (("bigdir", "big"), ("smalldir", "small")):
                rows[f"{k}_t"].values["zerofs"] = median(res[d]["t"]) * 1000
                rows[f"{k}_t"].raw["zerofs"] = res[d]["t"]
                rows[f"{k}_g"].values["zerofs"] = median(res[d]["g"])
                rows[f"{k}_g"].du["zerofs"] = res[d]["g"]
                rows[f"{k}_g"].comment = "median of the du growth of each write (growths in the JSON)"
                self.log(
                    f"  write {d}: "
                    + " ".join(f"{x * 1000:.1f}" for x in res[d]["t"])
                    + " ms; du growth "
                    + " ".join(str(int(x)) for x in res[d]["g"])
                )
            rows["ratio"].values["zerofs"] = median(res["bigdir"]["t"]) / median(res["smalldir"]["t"])
        except Unavailable:
            pass
        except CmdError as exc:
            for r in rows.values():
                r.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"write failed: {exc}")
        for r in rows.values():
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
        row_cat.targets = [Target(row_cat.values.get("zerofs"), "<", 50, "< 50 ms", lambda v: f"{v:.1f} ms")]
        row_ls.targets = [Target(row_ls.values.get("zerofs"), "<", 50, "< 50 ms", lambda v: f"{v:.1f} ms")]
        row_py.comment = "interpreter start-up floor (shown in the zerofs column)"
        self.add(row_cat)
        self.add(row_ls)
        self.add(row_py)
        self.add(row_help)

    def encrypted(self) -> None:
        """Encrypted zerofs against plain zerofs and restic: import (a) and (b), then cat, runs interleaved.

        Each import goes into a fresh repository of each kind, in the order
        plain, encrypted, restic (for (a)); the cat runs alternate between a
        plain and an encrypted repository holding (b). The figures of this
        section are its own, not those of the import sections.
        """
        plain, enc, restic = self.zerofs, self.zerofs_enc, self.tools["restic"]
        if plain.unavailable or enc.unavailable:
            self.note("encrypted: zerofs unavailable, no figures")
            return
        a_bytes, n_small = self.sizes.big_bytes, self.sizes.n_small_files
        cases = (
            ("a", self.data.a_dir, "/big", f"import (a) {a_bytes // MIB} MiB file, encrypted", "MB/s", a_bytes / MB),
            ("b", self.data.b_dir, "/b", f"import (b) {n_small:,} small files, encrypted", "files/s", n_small),
        )
        for key, host, store_path, measure, unit, amount in cases:
            tools: list[Tool] = [plain, enc]
            if key == "a" and not restic.unavailable:
                tools.append(restic)
            times: dict[str, list[float]] = {tool.name: [] for tool in tools}
            row = Row("encrypted", measure, unit, True)
            try:
                for i in range(self.runs):
                    for tool in tools:
                        repo = self.fresh_repo(tool, f"enc-{key}")
                        tag = tool.next_tag(key)
                        times[tool.name].append(tool.import_(repo, host, store_path, tag))
                        self.log(f"  run {i + 1} {tool.name}: import ({key}) {times[tool.name][-1]:.2f} s")
                        if key == "b" and tool is not restic:
                            self.keep_repo(tool, "enc-b", repo, tag)
                        else:
                            self.discard(repo)
            except CmdError as exc:
                row.notes["zerofs"] = f"n/a: {exc}"
                self.note(f"encrypted import ({key}) failed: {exc}")
                self.add(row)
                continue
            encrypted, unencrypted = amount / median(times[enc.name]), amount / median(times[plain.name])
            row.values["zerofs"] = encrypted
            row.raw["zerofs"] = times[enc.name]
            row.baseline = ("zerofs plain", unencrypted)
            row.baseline_raw = times[plain.name]
            row.targets = [Target(encrypted / unencrypted, ">=", 0.9, ">= 0.9x plain", ratio_fmt("plain"))]
            if restic.name in times:
                row.values["restic"] = amount / median(times[restic.name])
                row.raw["restic"] = times[restic.name]
                row.targets.append(Target(row.vs("restic"), ">=", 2.0, ">= 2x restic", ratio_fmt("restic")))
            row.comment = "zerofs column: encrypted; baseline: plain zerofs, same runs, interleaved"
            self.add(row)
        self.encrypted_cat()

    def encrypted_cat(self) -> None:
        """cat of one small file from an encrypted and a plain repository holding (b), alternating, ms."""
        row = Row("encrypted", "cat one small file, encrypted", "ms", False)
        plain, enc = self.zerofs, self.zerofs_enc
        if ("zerofs", "enc-b") not in self.repos or ("zerofs-enc", "enc-b") not in self.repos:
            row.notes["zerofs"] = "n/a: no (b) repositories"
            self.add(row)
            return
        plain_repo, enc_repo = self.repos[("zerofs", "enc-b")][0], self.repos[("zerofs-enc", "enc-b")][0]
        times: dict[str, list[float]] = {plain.name: [], enc.name: []}
        try:
            for _ in range(2 * self.short_runs):
                times[plain.name].append(plain.cat(plain_repo, "", "/b/dir0/file0"))
                times[enc.name].append(enc.cat(enc_repo, "", "/b/dir0/file0"))
        except CmdError as exc:
            row.notes["zerofs"] = f"n/a: {exc}"
            self.note(f"encrypted cat failed: {exc}")
            self.add(row)
            return
        for name, ts in times.items():
            self.log(f"  cat {name}: " + " ".join(f"{x * 1000:.1f}" for x in ts) + " ms")
        encrypted, unencrypted = median(times[enc.name]) * 1000, median(times[plain.name]) * 1000
        row.values["zerofs"] = encrypted
        row.raw["zerofs"] = times[enc.name]
        row.baseline = ("zerofs plain", unencrypted)
        row.baseline_raw = times[plain.name]
        row.targets = [Target(encrypted / unencrypted, "<", 1.5, "< 1.5x plain", ratio_fmt("plain"))]
        row.comment = (
            "password from a file; the import made the key cache entry, as a first command does"
        )
        for competitor in COMPETITORS:
            row.notes[competitor] = "n/a"
        self.add(row)

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
            # The last 100 names of bigdir ("f0999" of f000000..f099999; "f0099" with --quick).
            big_prefix = f"f{nbig - 100:06d}"[:-2]
            for d, prefix in (("bigdir", big_prefix), ("smalldir", "f")):
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
        big.targets = [
            Target(big.values.get("zerofs"), "<", 0.5, "< 0.5 s (well under a second)", lambda v: f"{v:.3f} s")
        ]
        for r in rows.values():
            self.add(r)

    def dedup(self) -> None:
        """Bytes the repository grows by (du after minus du before) when (d) is imported after (a)."""
        row = Row("dedup", "bytes added by (d) after (a)", "bytes", False)
        row_t = Row("dedup", "import (d) over (a), time", "s", False)
        for tool in self.usable():
            try:
                repo, _ = self.ensure_repo(tool, "a")
                before = self.du(repo)
                # zerofs: same store path /big, same file name inside both dirs.
                t = tool.import_(repo, self.data.d_dir, "/big", tool.next_tag("d"))
                after = self.du(repo)
                row.values[tool.name] = float(after - before)
                row.du[tool.name] = [float(before), float(after)]
                row_t.values[tool.name] = t
                row_t.raw[tool.name] = [t]
                self.log(f"  {tool.name}: du {before:,} -> {after:,} B, grew {after - before:,} B, {t:.2f} s")
            except CmdError as exc:
                row.notes[tool.name] = f"n/a: {exc}"
                row_t.notes[tool.name] = "n/a"
                self.note(f"dedup {tool.name} failed: {exc}")
        row.comment = f"du growth of each repository directory; truly new: {NEW_BYTES_D:,} B (1 MiB + 4 KiB)"
        flat = [t for t in TOOLS if (v := row.values.get(t)) is not None and v <= 0]
        if flat:
            row.comment += (
                f"; {', '.join(flat)}: no growth, (d) fit in space the repository had already allocated"
                " (see its du before, in raw_du_bytes)"
            )
        row.targets = [
            Target(
                row.values.get("zerofs"),
                "<=",
                1.3 * NEW_BYTES_D,
                "<= 1.3x (1 MiB + 4 KiB)",
                lambda v: f"{v / MIB:.2f} MiB",
            )
        ]
        self.add(row)
        self.add(row_t)
        # The kept (a) repos now also hold (d); drop them so nothing reuses them as "(a) only".
        for name in TOOLS:
            old = self.repos.pop((name, "a"), None)
            if old:
                self.discard(old[0])

    def export(self) -> None:
        """export / restore of (b) into an empty host directory, beside `cp -a` of the host tree.

        Runs are interleaved (zerofs, borg, restic, cp -a, then again), each
        preceded by an untimed sync; the target is zerofs against cp -a in the
        same invocation.
        """
        host = self.data.b_dir
        row = Row("export", "export (b)", "s", False)
        times: dict[str, list[float]] = {t: [] for t in TOOLS}
        cp_times: list[float] = []
        cp_failed = ""
        for i in range(self.runs):
            for tool in self.usable():
                if tool.name in row.notes:
                    continue
                out = self.new_path(f"out-{tool.name}")
                try:
                    repo, tag = self.ensure_repo(tool, "b")
                    secs = tool.export(repo, tag, "/b", out)
                    times[tool.name].append(secs)
                    self.log(f"  run {i + 1} {tool.name}: {secs:.2f} s")
                except CmdError as exc:
                    row.notes[tool.name] = f"n/a: {exc}"
                    self.note(f"export {tool.name} failed: {exc}")
                finally:
                    self.discard(out)
            if cp_failed:
                continue
            out = self.new_path("out-cp")
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.sync()  # untimed, as before each export
                t_cp, _ = run_timed(["cp", "-a", str(host), str(out)], env=self.env, timeout=self.args.timeout)
                cp_times.append(t_cp)
                self.log(f"  run {i + 1} cp -a: {t_cp:.2f} s")
            except CmdError as exc:
                cp_failed = str(exc)
                self.note(f"cp -a of (b) failed: {exc}")
            finally:
                self.discard(out)
        for t, ts in times.items():
            if ts:
                row.values[t] = median(ts)
                row.raw[t] = ts
        metric = None
        if cp_times:
            row.baseline = ("cp -a", median(cp_times))
            row.baseline_raw = cp_times
            z = row.values.get("zerofs")
            metric = z / row.baseline[1] if z is not None and row.baseline[1] else None
        row.comment = "baseline: cp -a of the (b) host tree into a fresh directory, same runs, interleaved"
        row.targets = [Target(metric, "<=", 1.2, "<= 1.2x cp -a", ratio_fmt("cp -a"))]
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
    # The table follows SECTIONS (the order of the targets), whatever order the sections ran in.
    rows = sorted(bench.rows, key=lambda r: SECTIONS.index(r.section))
    rows_txt = []
    for r in rows:
        ratio = r.ratio()
        rows_txt.append(
            [
                r.measure,
                r.unit,
                cell(r, "zerofs"),
                cell(r, "borg"),
                cell(r, "restic"),
                f"{r.baseline[0]} {fmt_value(r.baseline[1], r.unit)}" if r.baseline else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
                r.target_text(),
                r.verdict(),
            ]
        )
    print()
    print("=" * 78)
    print(
        f"SUMMARY (medians; {bench.runs} runs, {bench.short_runs} for ms-scale measures;"
        f" {'quick' if bench.args.quick else 'full'} data sets)"
    )
    print("=" * 78)
    headers = ["measure", "unit", "zerofs", "borg", "restic", "baseline", "zerofs/best", "target", "result"]
    print(render_table(headers, rows_txt))
    ceil_out = []
    z_import = next((r.values.get("zerofs") for r in rows if r.section == "import_a"), None)
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
    print()
    print(
        "Repository sizes: du of the repository directory (st_blocks * 512, directories included,"
        " symlinks not followed) after the tool exited, the same way for every tool."
    )
    comments = [f"  {r.measure}: {r.comment}" for r in rows if r.comment]
    if comments:
        print()
        print("Notes on rows:")
        print("\n".join(comments))
    print()
    print("Targets:")
    targets_out = []
    for r in rows:
        for target in r.targets:
            verdict, how = target.check()
            print(f"  {verdict:4}  {r.measure} (target {target.text}): {how}")
            targets_out.append(
                {
                    "section": r.section,
                    "measure": r.measure,
                    "target": target.text,
                    "metric": target.metric,
                    "result": verdict,
                    "detail": how,
                }
            )
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
                "raw_du_bytes": r.du,
                "logical_bytes": r.logical,
                "baseline": (
                    {"name": r.baseline[0], "value": r.baseline[1], "raw_seconds": r.baseline_raw}
                    if r.baseline
                    else None
                ),
                "ratio_zerofs_best": r.ratio(),
                "target": r.target_text() if r.targets else None,
                "result": r.verdict() if r.targets else None,
                "comment": r.comment,
            }
            for r in rows
        ],
        "ceilings": ceil_out,
        "targets": targets_out,
        "data_sets": bench.data.info,
        "size_method": "du: st_blocks * 512 of the whole repository directory after the tool exited",
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
        help="smaller data (128 MiB file, 2,000 files, 10,000-file trees, 20,000 tiny files) for a smoke run",
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
        if "import_src" in sections:
            section("import of real source code (src)")
            bench.import_src()
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
            section("export (b), beside cp -a")
            bench.export()
        if "dedup" in sections:
            section("dedup of (d) after (a)")
            bench.dedup()
        if "diff" in sections:
            section("diff: one file changed vs every file changed")
            bench.diff()
        if "tiny" in sections:
            # Late: its 200,000-file host tree is created here and deleted only at the end.
            section(f"tiny: {bench.sizes.n_tiny_files:,} files of a few bytes")
            bench.tiny()
        if "encrypted" in sections:
            section("encrypted repositories, beside plain ones and restic")
            bench.encrypted()
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
