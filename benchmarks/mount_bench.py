#!/usr/bin/env python3
"""Benchmark of the read-write FUSE mount (`zerofs mount`) against a local directory and a do-nothing FUSE mount.

Not part of the test suite. Every figure is measured, in the same invocation,
runs interleaved, and reported as the median of --runs, on three sides: a
plain directory on the same file system as the repository ("local"), the
do-nothing pyfuse3 file system of benchmarks/nullfs.py mounted with zerofs's
options ("nullfs": the ceiling of any pyfuse3 mount on this machine), and a
zerofs mount ("zerofs"). The work is done by short child processes (this
script re-run with a hidden `_child` action): each child prepares its data
untimed, then times only the file-system calls with `time.perf_counter` and
prints the figures as JSON. The whole-process wall time of every child is
kept in the JSON output too. Around each timed child on a mount, SIGUSR1
makes the mount process write its request counts
(zerofs/mount/counting.py), and the difference is reported as FUSE requests
per operation, by kind, for zerofs and nullfs.

Sections (--only NAME[,NAME]):
  write   sequential write of a --size-mib file (default 1 GiB) in 1 MiB blocks
          from a pre-generated random file already in memory: open + write +
          close, then, timed apart, open + fsync + close (on the mount the
          fsync commits the file into the repository); also the `zerofs umount`
          that follows; nullfs discards the data;
  read    sequential read of that file after a remount (zerofs) and
          `sync; echo 3 > /proc/sys/vm/drop_caches`, then a second, warm read;
  create  10,000 files of 100 bytes (distinct contents) in one new directory,
          then lstat of each of them (separate timings); a fresh repository
          and a fresh nullfs for each run;
  tar     `tar -x` of a real source tree (10,000 files of this machine's
          Python packages, made once into the workdir) into a new directory,
          then `sync`; then os.walk + lstat of every entry, lstat of every
          entry again (warm), and once more 6 s later (on the mounts, past
          the 5 s entry and attribute timeouts);
  walk    a `git status`-like walk (os.walk + lstat of every entry) of a tree
          of 20,000 files in 1,110 nested directories: populated once (through
          the mount, then committed by `zerofs umount`), then for each run a
          remount, drop_caches, a cold walk and a warm walk (local and zerofs).

Targets (issue #12): write rate >= 0.7x nullfs; cold read rate >= 0.3x local
cold read; 10,000 creates within 1.0x nullfs; tar -x + sync and the warm
lstat of the tree within 1.5x nullfs.

Usage:
  python benchmarks/mount_bench.py [--runs N] [--size-mib M] [--only write,read,create,tar,walk]
                                   [--json FILE] [--workdir DIR] [--local-only] [--profile DIR]

Needs root (mount, drop_caches) and /dev/fuse for the mount half. Uses the
standard library only; zerofs is driven through its CLI as
`python -m zerofs`, nullfs (pyfuse3, trio) as a child process, and py-spy
(optional, --profile) for profiles of the mount process.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
MB = 1_000_000
SECTIONS = ("write", "read", "create", "tar", "walk")
SIDES = ("local", "nullfs", "zerofs")
N_SMALL = 10_000
SMALL_SIZE = 100
TREE_FANOUT = (10, 10, 10)  # directories per level: 10 + 100 + 1,000 = 1,110 directories
TREE_FILES_PER_LEAF = 20  # 1,000 leaf directories x 20 = 20,000 files
DEFAULT_WORKDIR = "/var/tmp/zerofs-mount-bench"
COUNTS_ENV = "ZEROFS_MOUNT_REQUEST_COUNTS"  # zerofs/mount/counting.py
TAR_FILES = 10_000
STALE_SECONDS = 6.0  # past the 5 s entry and attribute timeouts of zerofs and nullfs
MIN_SECONDS = 0.001  # a time below this is shown but not divided by
TAR_SOURCES = (f"{sys.prefix}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages", "/usr/lib/python3")


# --------------------------------------------------------------------------
# Child processes: the load generators (run as `mount_bench.py _child ACTION ...`)
# --------------------------------------------------------------------------


def child_write(src: str, dst: str, block: str) -> dict[str, Any]:
    bs = int(block)
    t0 = time.perf_counter()
    with open(src, "rb") as f:
        data = f.read()
    load_s = time.perf_counter() - t0
    view = memoryview(data)
    n = len(data)
    t0 = time.perf_counter()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    off = 0
    while off < n:
        off += os.write(fd, view[off : off + bs])
    t_written = time.perf_counter()
    os.close(fd)
    t1 = time.perf_counter()
    # The following fsync, as `sync FILE` does it: a new descriptor, fsync, close.
    fd = os.open(dst, os.O_WRONLY)
    t_opened = time.perf_counter()
    os.fsync(fd)
    t_synced = time.perf_counter()
    os.close(fd)
    t2 = time.perf_counter()
    return {
        "bytes": n,
        "load_s": load_s,
        "write_s": t1 - t0,
        "write_calls_s": t_written - t0,
        "close_s": t1 - t_written,
        "fsync_s": t2 - t1,
        "fsync_open_s": t_opened - t1,
        "fsync_call_s": t_synced - t_opened,
        "fsync_close_s": t2 - t_synced,
    }


def child_read(path: str, block: str) -> dict[str, Any]:
    buf = bytearray(int(block))
    total = 0
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(buf)
            if not got:
                break
            total += got
    return {"bytes": total, "read_s": time.perf_counter() - t0}


def child_digest(path: str) -> dict[str, Any]:
    h = hashlib.blake2b()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return {"digest": h.hexdigest()}


def child_create(directory: str, count: str, size: str) -> dict[str, Any]:
    rng = random.Random(1234)
    n, sz = int(count), int(size)
    names = [os.path.join(directory, f"file{i:05d}.txt") for i in range(n)]
    # Distinct contents (a content-addressed store would otherwise store one chunk).
    contents = [f"{i:08d} ".encode() + rng.randbytes(max(0, sz - 9)) for i in range(n)]
    os.mkdir(directory)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    t0 = time.perf_counter()
    for name, data in zip(names, contents, strict=True):
        fd = os.open(name, flags, 0o644)
        os.write(fd, data)
        os.close(fd)
    return {"files": n, "create_s": time.perf_counter() - t0}


def child_stat(directory: str, count: str) -> dict[str, Any]:
    names = [os.path.join(directory, f"file{i:05d}.txt") for i in range(int(count))]
    total = 0
    t0 = time.perf_counter()
    for name in names:
        total += os.lstat(name).st_size
    return {"files": len(names), "bytes": total, "stat_s": time.perf_counter() - t0}


def tree_layout(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Directories (parents first) and (file, size) pairs of the walk tree."""
    rng = random.Random(99)
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    a, b, c = TREE_FANOUT
    for i in range(a):
        d1 = os.path.join(root, f"pkg{i}")
        dirs.append(d1)
        for j in range(b):
            d2 = os.path.join(d1, f"mod{j}")
            dirs.append(d2)
            for k in range(c):
                d3 = os.path.join(d2, f"part{k}")
                dirs.append(d3)
                for m in range(TREE_FILES_PER_LEAF):
                    files.append((os.path.join(d3, f"src{m}.py"), rng.randint(0, 4096)))
    return dirs, files


def child_mktree(root: str, part: str = "all") -> dict[str, Any]:
    """Build the walk tree under `root`, or (part = "pkgN") only its top-level directory pkgN."""
    dirs, files = tree_layout(root)
    if part != "all":
        top = os.path.join(root, part)
        dirs = [d for d in dirs if d == top or d.startswith(top + os.sep)]
        keep = {i for i, (path, _) in enumerate(files) if path.startswith(top + os.sep)}
    rng = random.Random(7)
    blob = rng.randbytes(8192)
    os.makedirs(root, exist_ok=part != "all")
    t0 = time.perf_counter()
    for d in dirs:
        os.mkdir(d)
    for i, (path, size) in enumerate(files):
        if part != "all" and i not in keep:
            continue
        with open(path, "wb") as f:
            start = (i * 37) % 4096
            f.write(f"{i:08d}\n".encode() + blob[start : start + size])
    n_files = len(files) if part == "all" else len(keep)
    return {"dirs": len(dirs), "files": n_files, "mktree_s": time.perf_counter() - t0}


def child_walk(root: str) -> dict[str, Any]:
    entries = 0
    total = 0
    t0 = time.perf_counter()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.lstat(os.path.join(dirpath, name))
            entries += 1
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
            entries += 1
    return {"entries": entries, "bytes": total, "walk_s": time.perf_counter() - t0}


def child_untar(tarball: str, directory: str) -> dict[str, Any]:
    """`tar -xf TARBALL -C DIRECTORY`, then `sync`: the two timed apart and together."""
    os.mkdir(directory)
    t0 = time.perf_counter()
    subprocess.run(["tar", "-xf", tarball, "-C", directory], check=True)
    t1 = time.perf_counter()
    subprocess.run(["sync"], check=True)
    t2 = time.perf_counter()
    return {"tar_s": t1 - t0, "sync_s": t2 - t1, "untar_s": t2 - t0}


def child_lstat_tar(tarball: str, directory: str) -> dict[str, Any]:
    """lstat of every entry of the tree `tarball` was extracted to (the names come from the tarball, untimed)."""
    with tarfile.open(tarball) as tar:
        paths = [os.path.join(directory, member.name) for member in tar.getmembers()]
    total = 0
    t0 = time.perf_counter()
    for path in paths:
        total += os.lstat(path).st_size
    return {"entries": len(paths), "bytes": total, "lstat_s": time.perf_counter() - t0}


CHILD_ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "untar": child_untar,
    "lstat_tar": child_lstat_tar,
    "write": child_write,
    "read": child_read,
    "digest": child_digest,
    "create": child_create,
    "stat": child_stat,
    "mktree": child_mktree,
    "walk": child_walk,
}


def child_main(argv: list[str]) -> int:
    action, *args = argv
    result = CHILD_ACTIONS[action](*args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# --------------------------------------------------------------------------
# Processes, mounts, caches
# --------------------------------------------------------------------------


class CmdError(Exception):
    """A command failed (non-zero exit, timeout, or not found)."""


def _tail(data: bytes | str | None, n: int = 400, lines: int = 3) -> str:
    """The end of a process's stderr: its last few lines (a traceback's last line is the error)."""
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return "\n    ".join(text.strip().splitlines()[-lines:])[-n:]


def run_cmd(cmd: list[str], *, env: dict[str, str], timeout: float) -> tuple[float, str]:
    """Run one whole process; return (wall seconds, stdout)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise CmdError(f"{cmd[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CmdError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise CmdError(f"exit {proc.returncode}: {' '.join(cmd)}\n    {_tail(proc.stderr)}")
    return elapsed, proc.stdout.decode("utf-8", "replace")


def is_mounted(mountpoint: Path) -> bool:
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4].replace("\\040", " ") == target for line in mountinfo)


def fs_type(path: Path) -> str:
    """File-system type of the mount holding `path` (from /proc/self/mounts)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            mnt = parts[1].replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return kind


def read_ahead_kb(path: Path) -> str:
    """read_ahead_kb of the backing device info of the file system holding `path`."""
    dev = os.stat(path).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    try:
        return bdi.read_text().strip()
    except OSError:
        return "?"


def drop_caches() -> str | None:
    """`sync; echo 3 > /proc/sys/vm/drop_caches`; return an error text or None."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as exc:
        return f"drop_caches failed ({exc}): 'cold' figures are warm"
    return None


def mount_pids(mountpoint: Path) -> list[int]:
    """Pids of processes whose command line is a `zerofs ... mount ... MOUNTPOINT`."""
    want = {str(mountpoint), os.path.realpath(mountpoint)}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode("utf-8", "replace") for a in argv]
        if "mount" in args and any(a in want for a in args) and any("zerofs" in a for a in args):
            pids.append(int(entry))
    return pids


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Zerofs:
    """The zerofs CLI, and the mounts this script made (always unmounted at the end)."""

    def __init__(self, env: dict[str, str], timeout: float, commit_interval: float | None) -> None:
        self.base = [sys.executable, "-m", "zerofs"]
        self.env = env
        self.timeout = timeout
        self.commit_interval = commit_interval
        self.active: dict[Path, list[int]] = {}

    def run(self, repo: Path, *args: str, timeout: float | None = None) -> float:
        return run_cmd([*self.base, "--repo", str(repo), *args], env=self.env, timeout=timeout or self.timeout)[0]

    def version(self) -> str:
        try:
            _, out = run_cmd([*self.base, "--version"], env=self.env, timeout=60)
        except CmdError as exc:
            return f"? ({exc})"
        return out.strip().splitlines()[0] if out.strip() else "?"

    def init(self, repo: Path) -> None:
        self.run(repo, "init")

    def mount(self, repo: Path, mountpoint: Path) -> float:
        """`zerofs mount` in the background; returns the wall time until it returned mounted."""
        mountpoint.mkdir(parents=True, exist_ok=True)
        opts = [] if self.commit_interval is None else ["--commit-interval", f"{self.commit_interval:g}"]
        self.active[mountpoint] = []
        try:
            elapsed = self.run(repo, "mount", *opts, str(mountpoint), timeout=120)
        finally:
            self.active[mountpoint] = mount_pids(mountpoint)
        if not is_mounted(mountpoint):
            raise CmdError(f"zerofs mount returned but {mountpoint} is not mounted")
        return elapsed

    def umount(self, repo: Path, mountpoint: Path) -> float:
        """`zerofs umount` (commits pending changes, waits for the mount process); wall seconds."""
        pids = self.active.pop(mountpoint, [])
        try:
            elapsed = self.run(repo, "umount", str(mountpoint), timeout=max(self.timeout, 600))
        except CmdError:
            self._force(mountpoint, pids)
            raise
        if is_mounted(mountpoint):
            self._force(mountpoint, pids)
            raise CmdError(f"zerofs umount returned but {mountpoint} is still mounted")
        return elapsed

    def _force(self, mountpoint: Path, pids: list[int]) -> None:
        """Lazy unmount, then end the mount process this script started if it lingers."""
        if is_mounted(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False)
        deadline = time.monotonic() + 20
        for pid in pids:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def cleanup(self, repo_of: dict[Path, Path]) -> list[str]:
        """Unmount whatever is still mounted (finally block); return problems seen."""
        problems = []
        for mountpoint in list(self.active):
            if not is_mounted(mountpoint):
                self.active.pop(mountpoint, None)
                continue
            try:
                self.umount(repo_of.get(mountpoint, mountpoint), mountpoint)
            except CmdError as exc:
                problems.append(f"cleanup: zerofs umount {mountpoint} failed, used fusermount3 -u -z: {exc}")
        return problems


NULLFS = Path(__file__).resolve().parent / "nullfs.py"


class Nullfs:
    """The do-nothing pyfuse3 file system (benchmarks/nullfs.py), mounted by a child process of this script."""

    def __init__(self, env: dict[str, str], counts: Path, log: Path) -> None:
        self.env = env
        self.counts = counts
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.mountpoint: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def mount(self, mountpoint: Path, *, discard: bool = False) -> None:
        """Start it in the foreground (as a child) and wait until the kernel lists the mount."""
        mountpoint.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(NULLFS), str(mountpoint), "--counts", str(self.counts)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd + (["--discard"] if discard else []), env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.mountpoint = mountpoint
        deadline = time.monotonic() + 60
        while not is_mounted(mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.umount()
                raise CmdError(f"nullfs did not mount at {mountpoint} (see {self.log})")
            time.sleep(0.02)

    def umount(self) -> None:
        """`fusermount3 -u`, then wait for the process (which writes its counts and exits)."""
        if self.mountpoint is not None and is_mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, check=False)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(timeout=60)
        if self.mountpoint is not None and is_mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True, check=False)
        self.proc = None
        self.mountpoint = None


def snapshot_counts(pid: int, path: Path, timeout: float = 30.0) -> Counter[str]:
    """The requests a mount process has served so far: SIGUSR1 makes it write them to `path`."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise CmdError(f"process {pid} wrote no request counts to {path} within {timeout:.0f} s")
        time.sleep(0.01)
    return Counter(json.loads(path.read_text()))


def ensure_tarball(workdir: Path, log: Callable[[str], None]) -> tuple[Path, int]:
    """A tarball of a real source tree of TAR_FILES files (Python packages of this machine), made once."""
    path = workdir / f"tree-{TAR_FILES}.tar"
    if not path.exists():
        log(f"making {path} from {', '.join(TAR_SOURCES)} (untimed) ...")
        tmp = path.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            for source, arcname in tar_members():
                tar.add(source, arcname=arcname, recursive=False)
        tmp.rename(path)
    with tarfile.open(path) as tar:
        return path, len(tar.getmembers())


def tar_members() -> Iterator[tuple[str, str]]:
    """(path, name in the tarball) of directories, files and symlinks, up to TAR_FILES non-directories."""
    files = 0
    seen: set[tuple[int, int]] = set()
    for source in TAR_SOURCES:
        top = os.path.basename(source)
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            relative = os.path.relpath(dirpath, source)
            yield dirpath, top if relative == "." else os.path.join(top, relative)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) in seen:  # a hard link: the mount may not support them (issue #12)
                    continue
                seen.add((st.st_dev, st.st_ino))
                yield path, os.path.join(top, os.path.relpath(path, source))
                files += 1
                if files >= TAR_FILES:
                    return


# --------------------------------------------------------------------------
# Rows and targets
# --------------------------------------------------------------------------


@dataclass
class Row:
    """One measure: raw seconds per run for each side (local directory, do-nothing FS, zerofs mount)."""

    section: str
    measure: str
    nbytes: int | None = None  # set: shown as MB/s (10^6 bytes per second); else seconds
    target_ratio: float | None = None  # zerofs/`against` of the shown value must reach this (rates: >=, times: <=)
    against: str = "local"  # the side the target compares zerofs with: "local" or "nullfs"
    per: str | None = None  # what one operation is ("file", "MiB", "entry"): requests are shown per operation
    runs: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    requests: dict[str, Counter[str]] = field(default_factory=dict)  # side -> requests summed over runs
    operations: dict[str, int] = field(default_factory=Counter)  # side -> operations summed over runs

    @property
    def local(self) -> list[float]:
        return self.runs["local"]

    @property
    def null(self) -> list[float]:
        return self.runs["nullfs"]

    @property
    def mount(self) -> list[float]:
        return self.runs["zerofs"]

    @property
    def unit(self) -> str:
        return "MB/s" if self.nbytes is not None else "s"

    def value(self, side: str) -> float | None:
        xs = self.runs["zerofs" if side == "mount" else side]
        if not xs:
            return None
        med = statistics.median(xs)
        if self.nbytes is None:
            return med
        return self.nbytes / med / MB if med > 0 else float("inf")

    def ratio(self, against: str = "local") -> float | None:
        base, mount = self.value(against), self.value("zerofs")
        if base is None or mount is None or base < (0 if self.nbytes else MIN_SECONDS):
            return None  # a time of nothing (the do-nothing fsync) has no meaningful ratio
        return mount / base if base else None

    def count(self, side: str, requests: Counter[str], operations: int) -> None:
        """Add the requests one run of `operations` operations cost on `side`."""
        self.requests.setdefault(side, Counter()).update(requests)
        self.operations[side] += operations

    def per_operation(self, side: str) -> dict[str, float]:
        """Requests per operation by kind, averaged over the counted runs."""
        n = self.operations[side]
        if not n or side not in self.requests:
            return {}
        return {kind: c / n for kind, c in sorted(self.requests[side].items()) if c}

    def target_text(self) -> str:
        if self.target_ratio is None:
            return "-"
        op = ">=" if self.nbytes is not None else "<="
        return f"zerofs/{self.against} {op} {self.target_ratio:g}"

    def verdict(self) -> str:
        if self.target_ratio is None:
            return "-"
        ratio = self.ratio(self.against)
        if ratio is None:
            return "n/a"
        ok = ratio >= self.target_ratio if self.nbytes is not None else ratio <= self.target_ratio
        return "PASS" if ok else "MISS"


def requests_text(per_op: dict[str, float]) -> str:
    """`create 1.00, lookup 1.00, ... = 6.00` (flush answered ENOSYS once per mount shows as 0.00)."""
    if not per_op:
        return "n/a"
    parts = [f"{kind} {n:.2f}" for kind, n in per_op.items()]
    return ", ".join(parts) + f" = {sum(per_op.values()):.2f}"


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "MB/s":
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


# --------------------------------------------------------------------------
# Profiles of the mount process (optional, --profile DIR, needs py-spy)
# --------------------------------------------------------------------------


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _interesting(frame: str) -> bool:
    """A frame of zerofs's own work, not of the entry points every sample passes through."""
    where = frame.rpartition("(")[2]
    return where.startswith("zerofs/") and not where.startswith(
        ("zerofs/cli/", "zerofs/__main__", "zerofs/mount/run.py")
    )


def summarise_raw_profile(path: Path, top: int = 12) -> str:
    """Text summary of a py-spy `--format raw` file: top functions by own and total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(no profile: {exc})"
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]  # one entry per function
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if _interesting(frame):
                total[frame] += count
    if not samples:
        return "(no samples)"
    out = [f"{samples} samples; own time:"]
    out += [f"  {n / samples:6.1%}  {frame}" for frame, n in own.most_common(top)]
    out.append("total time (function and what it calls; zerofs frames below the CLI and the mount loop):")
    out += [f"  {n / samples:6.1%}  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(out)


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, run_dir: Path, source: Path) -> None:
        self.args = args
        self.runs: int = args.runs
        self.size = args.size_mib * MIB
        self.run_dir = run_dir
        self.source = source
        self.local = run_dir / "local"
        self.local.mkdir()
        self.mnt = run_dir / "mnt"
        self.mnt.mkdir()
        self.null_mnt = run_dir / "nullmnt"
        self.null_mnt.mkdir()
        env = dict(os.environ)
        env.pop("ZEROFS_REPO", None)
        # As run.py: measure what users run (compiled modules cached), no colours.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["NO_COLOR"] = "1"
        self.env = env
        self.zerofs_counts = run_dir / "counts-zerofs.json"
        zerofs_env = {**env, COUNTS_ENV: str(self.zerofs_counts)}  # the mount process counts its requests
        self.zerofs = Zerofs(zerofs_env, float(args.timeout), args.commit_interval)
        self.nullfs = Nullfs(env, run_dir / "counts-nullfs.json", run_dir / "nullfs.log")
        self.tarball: Path | None = None
        self.tar_entries = 0
        self.mount_ok = not args.local_only
        self.repo_of: dict[Path, Path] = {}
        self.rows: list[Row] = []
        self.messages: list[str] = []
        self.raw: list[dict[str, Any]] = []
        self.profiles: dict[str, str] = {}
        self.profile_dir: Path | None = Path(args.profile) if args.profile else None
        self.py_spy = find_py_spy() if self.profile_dir else None
        if self.profile_dir and not self.py_spy:
            self.note("--profile given but py-spy not found (.venv/bin/pip install py-spy): no profiles")
            self.profile_dir = None
        self.fuse_read_ahead: str | None = None

    # helpers ---------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def note(self, msg: str) -> None:
        self.messages.append(msg)
        self.log(f"  ! {msg}")

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def child(self, action: str, *args: str, label: str) -> dict[str, Any]:
        cmd = [sys.executable, os.path.abspath(__file__), "_child", action, *args]
        wall, out = run_cmd(cmd, env=self.env, timeout=float(self.args.timeout))
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["wall_s"] = wall
        self.raw.append({"label": label, "action": action, **result})
        return result

    def counted(self, side: str, rows: list[tuple[Row, int]], action: str, *args: str, label: str) -> dict[str, Any]:
        """Run a child on `side` and charge the requests it caused to `rows` ((row, operations) pairs).

        Several rows may share one child (their requests are then the same);
        the counts are taken with SIGUSR1 snapshots before and after it.
        """
        if side == "nullfs":
            pid, path = self.nullfs.pid, self.nullfs.counts
        else:
            pids = self.zerofs.active.get(self.mnt) or mount_pids(self.mnt)
            pid, path = (pids[-1] if pids else None), self.zerofs_counts
        before = snapshot_counts(pid, path) if pid else None
        result = self.child(action, *args, label=label)
        if pid and before is not None:
            time.sleep(0.3)  # release and forget are sent asynchronously, after the child's calls return
            after = snapshot_counts(pid, path)
            after.subtract(before)
            requests = Counter({kind: n for kind, n in after.items() if n > 0})
            for row, operations in rows:
                row.count(side, requests, operations)
        return result

    def settle(self) -> None:
        """Untimed sync, so a run does not pay for the write-back of the one before it."""
        os.sync()

    def cold(self) -> None:
        err = drop_caches()
        if err and err not in self.messages:
            self.note(err)

    def mount(self, repo: Path) -> float:
        self.repo_of[self.mnt] = repo
        return self.zerofs.mount(repo, self.mnt)

    def umount(self, repo: Path) -> float:
        return self.zerofs.umount(repo, self.mnt)

    def mount_failed(self, what: str, exc: Exception) -> None:
        self.note(f"mount half stopped ({what}): {exc}")
        self.mount_ok = False
        for problem in self.zerofs.cleanup(self.repo_of):
            self.note(problem)

    @contextlib.contextmanager
    def profiled(self, label: str) -> Iterator[None]:
        """Record the mount process with py-spy for the block (only with --profile)."""
        pids = self.zerofs.active.get(self.mnt) or mount_pids(self.mnt)
        if self.profile_dir is None or not self.py_spy or not pids:
            yield
            return
        out = self.profile_dir / f"{label}.txt"
        cmd = [self.py_spy, "record", "--pid", str(pids[-1]), "--format", "raw", "--output", str(out)]
        cmd += ["--rate", "200", "--nonblocking"]
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let py-spy attach before the timed work starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if not out.exists():
                self.profiles[label] = f"(py-spy wrote nothing: {_tail(err, 300)})"
            else:
                self.profiles[label] = summarise_raw_profile(out)

    # sections --------------------------------------------------------------
    def big_file(self, do_write: bool, do_read: bool) -> None:
        size = self.size
        label = f"{self.args.size_mib} MiB"
        mib = max(1, size // MIB)
        w = Row("write", f"seq write {label}, 1 MiB blocks (open+write+close, no fsync)", size, 0.7, "nullfs", "MiB")
        f = Row("write", "the following fsync (mount: commit to repository)")
        wf = Row("write", f"write + fsync {label}", size)
        um = Row("write", "zerofs umount after the fsync (mount only)")
        mt = Row("read", "zerofs mount of that repository (returns once mounted)")
        rc = Row("read", f"seq read {label}, cold (remount + drop_caches)", size, 0.3, "local", "MiB")
        rw = Row("read", f"seq read {label}, warm (second read)", size)
        rows = ([w, f, wf, um] if do_write else []) + ([mt, rc, rw] if do_read else [])
        for r in rows:
            self.add(r)
        verified = False
        for k in range(self.runs):
            # local directory
            dst = self.local / f"big{k}.bin"
            self.cold()  # see README: on this VM, writes into never-touched free memory are ~10x slower
            res = self.child("write", str(self.source), str(dst), str(MIB), label=f"local write run {k}")
            w.local.append(res["write_s"])
            f.local.append(res["fsync_s"])
            wf.local.append(res["write_s"] + res["fsync_s"])
            if do_read:
                self.cold()
                rc.local.append(self.child("read", str(dst), str(MIB), label=f"local cold read {k}")["read_s"])
                rw.local.append(self.child("read", str(dst), str(MIB), label=f"local warm read {k}")["read_s"])
            msg = f"  run {k + 1}: local write {size / res['write_s'] / MB:,.0f} MB/s, fsync {res['fsync_s']:.2f} s"
            if do_read:
                msg += f", cold read {size / rc.local[-1] / MB:,.0f} MB/s, warm {size / rw.local[-1] / MB:,.0f} MB/s"
            self.log(msg)
            if not self.mount_ok:
                continue
            self.big_file_nullfs(k, w, f, wf, rc if do_read else None, rw if do_read else None)
            # zerofs mount, fresh repository for each run (no dedup against the previous run)
            repo = self.run_dir / f"repo-big{k}"
            try:
                self.zerofs.init(repo)
                self.mount(repo)
                self.cold()
                with self.profiled(f"write-run{k}"):
                    res = self.counted(
                        "zerofs",
                        [(w, mib)],
                        "write",
                        str(self.source),
                        str(self.mnt / "big.bin"),
                        str(MIB),
                        label=f"mount write {k}",
                    )
                w.mount.append(res["write_s"])
                f.mount.append(res["fsync_s"])
                wf.mount.append(res["write_s"] + res["fsync_s"])
                um.mount.append(self.umount(repo))
                msg = (
                    f"  run {k + 1}: mount write {size / res['write_s'] / MB:,.0f} MB/s "
                    f"(write calls {res['write_calls_s']:.2f} s, close {res['close_s']:.2f} s), "
                    f"fsync {res['fsync_s']:.2f} s, umount {um.mount[-1]:.2f} s"
                )
                if do_read:
                    mt.mount.append(self.mount(repo))
                    self.cold()
                    with self.profiled(f"cold-read-run{k}"):
                        res = self.counted(
                            "zerofs",
                            [(rc, mib)],
                            "read",
                            str(self.mnt / "big.bin"),
                            str(MIB),
                            label=f"mount cold read {k}",
                        )
                    if res["bytes"] != size:
                        self.note(f"mount read {res['bytes']} bytes, expected {size}")
                    rc.mount.append(res["read_s"])
                    # Read after the first request: the kernel settles the mount's read-ahead at FUSE INIT.
                    self.fuse_read_ahead = read_ahead_kb(self.mnt)
                    rw.mount.append(
                        self.child("read", str(self.mnt / "big.bin"), str(MIB), label=f"mount warm {k}")["read_s"]
                    )
                    msg += (
                        f", cold read {size / rc.mount[-1] / MB:,.0f} MB/s, warm {size / rw.mount[-1] / MB:,.0f} MB/s"
                    )
                    if not verified:
                        self.verify_big(self.mnt / "big.bin")
                        verified = True
                    self.umount(repo)
                self.log(msg)
            except CmdError as exc:
                self.mount_failed("big file", exc)

    def big_file_nullfs(self, k: int, w: Row, f: Row, wf: Row, rc: Row | None, rw: Row | None) -> None:
        """The do-nothing FS discarding the data: the ceiling of a pyfuse3 write; reads return zeros."""
        size, mib = self.size, max(1, self.size // MIB)
        path = str(self.null_mnt / "big.bin")
        try:
            self.nullfs.mount(self.null_mnt, discard=True)
            self.cold()
            res = self.counted(
                "nullfs", [(w, mib)], "write", str(self.source), path, str(MIB), label=f"nullfs write {k}"
            )
            w.null.append(res["write_s"])
            f.null.append(res["fsync_s"])
            wf.null.append(res["write_s"] + res["fsync_s"])
            msg = f"  run {k + 1}: nullfs write {size / res['write_s'] / MB:,.0f} MB/s"
            if rc is not None and rw is not None:
                self.cold()
                rc.null.append(
                    self.counted("nullfs", [(rc, mib)], "read", path, str(MIB), label=f"nullfs cold read {k}")["read_s"]
                )
                rw.null.append(self.child("read", path, str(MIB), label=f"nullfs warm read {k}")["read_s"])
                msg += f", cold read {size / rc.null[-1] / MB:,.0f} MB/s, warm {size / rw.null[-1] / MB:,.0f} MB/s"
            self.log(msg)
        except CmdError as exc:
            self.note(f"nullfs (big file) failed: {exc}")
        finally:
            self.nullfs.umount()

    def verify_big(self, path: Path) -> None:
        """Untimed: the file read back through the mount has the source's contents."""
        want = self.child("digest", str(self.source), label="digest source")["digest"]
        got = self.child("digest", str(path), label="digest mount")["digest"]
        if want != got:
            self.note(f"CONTENT MISMATCH: {path} read back through the mount differs from the source")
        else:
            self.log("  (contents read back through the mount match the source)")

    def create(self) -> None:
        c = self.add(
            Row("create", f"create {N_SMALL:,} files of {SMALL_SIZE} B in one dir", None, 1.0, "nullfs", "file")
        )
        s = self.add(Row("create", f"lstat those {N_SMALL:,} files", per="file"))
        um = self.add(Row("create", f"zerofs umount (commits the {N_SMALL:,} files; mount only)"))
        n, sz = str(N_SMALL), str(SMALL_SIZE)
        for k in range(self.runs):
            d = self.local / f"small{k}"
            self.settle()
            c.local.append(self.child("create", str(d), n, sz, label=f"local create {k}")["create_s"])
            s.local.append(self.child("stat", str(d), n, label=f"local stat {k}")["stat_s"])
            msg = f"  run {k + 1}: local create {c.local[-1]:.3f} s, lstat {s.local[-1]:.3f} s"
            if self.mount_ok:
                msg += self.create_nullfs(k, c, s)
            if self.mount_ok:
                repo = self.run_dir / f"repo-small{k}"
                try:
                    self.zerofs.init(repo)
                    self.mount(repo)
                    self.settle()
                    with self.profiled(f"create-run{k}"):
                        res = self.counted(
                            "zerofs",
                            [(c, N_SMALL)],
                            "create",
                            str(self.mnt / "small"),
                            n,
                            sz,
                            label=f"mount create {k}",
                        )
                    c.mount.append(res["create_s"])
                    res = self.counted(
                        "zerofs", [(s, N_SMALL)], "stat", str(self.mnt / "small"), n, label=f"mount stat {k}"
                    )
                    if res["files"] != N_SMALL or res["bytes"] != N_SMALL * SMALL_SIZE:
                        self.note(f"mount stat saw {res['files']} files, {res['bytes']} bytes")
                    s.mount.append(res["stat_s"])
                    um.mount.append(self.umount(repo))
                    msg += f"; mount create {c.mount[-1]:.3f} s, lstat {s.mount[-1]:.3f} s, umount {um.mount[-1]:.2f} s"
                except CmdError as exc:
                    self.mount_failed("create", exc)
            self.log(msg)

    def create_nullfs(self, k: int, c: Row, s: Row) -> str:
        n, sz = str(N_SMALL), str(SMALL_SIZE)
        directory = str(self.null_mnt / "small")
        try:
            self.nullfs.mount(self.null_mnt)
            self.settle()
            c.null.append(
                self.counted("nullfs", [(c, N_SMALL)], "create", directory, n, sz, label=f"nullfs create {k}")[
                    "create_s"
                ]
            )
            s.null.append(
                self.counted("nullfs", [(s, N_SMALL)], "stat", directory, n, label=f"nullfs stat {k}")["stat_s"]
            )
        except CmdError as exc:
            self.note(f"nullfs (create) failed: {exc}")
            return ""
        finally:
            self.nullfs.umount()
        return f"; nullfs create {c.null[-1]:.3f} s, lstat {s.null[-1]:.3f} s"

    def tar(self) -> None:
        """tar -x of a real source tree + sync, then walk + lstat and lstat again, on each side."""
        self.tarball, self.tar_entries = ensure_tarball(Path(self.args.workdir), self.log)
        n = self.tar_entries
        rows = {
            "tar": Row("tar", f"tar -x of a source tree ({n:,} entries), then sync", None, 1.5, "nullfs", "entry"),
            "walk": Row("tar", "os.walk + lstat of that tree (first pass after tar)", per="entry"),
            "lstat": Row("tar", "lstat of every entry of that tree, warm (second pass)", None, 1.5, "nullfs", "entry"),
            "stale": Row(
                "tar", f"lstat of every entry again, {STALE_SECONDS:g} s later (timeouts expired)", per="entry"
            ),
        }
        for row in rows.values():
            self.add(row)
        um = self.add(Row("tar", "zerofs umount (commits the tree; mount only)"))
        for k in range(self.runs):
            msgs = [self.tar_side("local", self.local / f"tree{k}", k, rows)]
            if self.mount_ok:
                try:
                    self.nullfs.mount(self.null_mnt)
                    msgs.append(self.tar_side("nullfs", self.null_mnt / "tree", k, rows))
                except CmdError as exc:
                    self.note(f"nullfs (tar) failed: {exc}")
                finally:
                    self.nullfs.umount()
            if self.mount_ok:
                repo = self.run_dir / f"repo-tar{k}"
                try:
                    self.zerofs.init(repo)
                    self.mount(repo)
                    msgs.append(self.tar_side("zerofs", self.mnt / "tree", k, rows))
                    um.mount.append(self.umount(repo))
                    msgs.append(f"umount {um.mount[-1]:.2f} s")
                except CmdError as exc:
                    self.mount_failed("tar", exc)
            self.log(f"  run {k + 1}: " + "; ".join(msgs))

    def tar_side(self, side: str, directory: Path, k: int, rows: dict[str, Row]) -> str:
        """One side of one run of the tar section; the stale pass waits out the mounts' 5 s timeouts."""
        assert self.tarball is not None
        n = self.tar_entries
        self.settle()
        tarball, where = str(self.tarball), str(directory)
        if side == "local":
            res = self.child("untar", tarball, where, label=f"local untar {k}")
            walked = self.child("walk", where, label=f"local walk tree {k}")
            stats = self.child("lstat_tar", tarball, where, label=f"local lstat tree {k}")
            stale = self.child("lstat_tar", tarball, where, label=f"local lstat tree again {k}")
        else:
            res = self.counted(side, [(rows["tar"], n)], "untar", tarball, where, label=f"{side} untar {k}")
            walked = self.counted(side, [(rows["walk"], n)], "walk", where, label=f"{side} walk tree {k}")
            stats = self.counted(side, [(rows["lstat"], n)], "lstat_tar", tarball, where, label=f"{side} lstat {k}")
            time.sleep(STALE_SECONDS)
            stale = self.counted(side, [(rows["stale"], n)], "lstat_tar", tarball, where, label=f"{side} stale {k}")
        if walked["entries"] != n:
            self.note(f"{side}: the extracted tree has {walked['entries']} entries, the tarball {n}")
        rows["tar"].runs[side].append(res["untar_s"])
        rows["walk"].runs[side].append(walked["walk_s"])
        rows["lstat"].runs[side].append(stats["lstat_s"])
        rows["stale"].runs[side].append(stale["lstat_s"])
        return (
            f"{side} tar {res['tar_s']:.2f} s + sync {res['sync_s']:.2f} s, "
            f"walk {walked['walk_s']:.3f} s, lstat {stats['lstat_s']:.3f} s, later {stale['lstat_s']:.3f} s"
        )

    def walk(self) -> None:
        dirs, files = tree_layout("t")
        n_entries = len(dirs) + len(files)
        p = self.add(Row("walk", f"populate tree: {len(files):,} files, {len(dirs):,} dirs (once)"))
        um = self.add(Row("walk", "zerofs umount (commits the tree; mount only)"))
        wc = self.add(Row("walk", f"walk + lstat {n_entries:,} entries, cold (remount + drop_caches)"))
        ww = self.add(Row("walk", "walk + lstat, warm (second walk)"))
        local_tree = self.local / "tree"
        self.settle()
        p.local.append(self.child("mktree", str(local_tree), label="local mktree")["mktree_s"])
        repo = self.run_dir / "repo-walk"
        if self.mount_ok:
            try:
                self.zerofs.init(repo)
                self.mount(repo)
                self.settle()
                with self.profiled("populate-tree"):
                    p.mount.append(self.child("mktree", str(self.mnt / "tree"), label="mount mktree")["mktree_s"])
                um.mount.append(self.umount(repo))
            except CmdError as exc:
                repo = self.populate_in_parts(exc)
        self.log(
            f"  populate: local {p.local[-1]:.2f} s"
            + (f"; mount {p.mount[-1]:.2f} s, umount {um.mount[-1]:.2f} s" if p.mount and um.mount else "")
        )
        for k in range(self.runs):
            self.cold()
            res = self.child("walk", str(local_tree), label=f"local walk cold {k}")
            wc.local.append(res["walk_s"])
            ww.local.append(self.child("walk", str(local_tree), label=f"local walk warm {k}")["walk_s"])
            msg = f"  run {k + 1}: local walk cold {wc.local[-1]:.3f} s, warm {ww.local[-1]:.3f} s"
            msg += f" ({res['entries']} entries)"
            if self.mount_ok:
                try:
                    self.mount(repo)
                    self.cold()
                    with self.profiled(f"walk-cold-run{k}"):
                        res2 = self.child("walk", str(self.mnt / "tree"), label=f"mount walk cold {k}")
                    wc.mount.append(res2["walk_s"])
                    ww.mount.append(self.child("walk", str(self.mnt / "tree"), label=f"mount walk warm {k}")["walk_s"])
                    if (res2["entries"], res2["bytes"]) != (res["entries"], res["bytes"]):
                        self.note(
                            f"walk through the mount saw {res2['entries']} entries / {res2['bytes']} bytes, "
                            f"local {res['entries']} / {res['bytes']}"
                        )
                    self.umount(repo)
                    msg += f"; mount cold {wc.mount[-1]:.3f} s, warm {ww.mount[-1]:.3f} s"
                except CmdError as exc:
                    self.mount_failed("walk", exc)
            self.log(msg)

    def populate_in_parts(self, exc: CmdError) -> Path:
        """Fallback when one mount could not take the whole tree: a fresh repository, one remount per pkgN."""
        self.note(
            f"populating the walk tree through one mount failed: {exc}\n"
            "retrying in a fresh repository with a remount after each top-level directory "
            f"({TREE_FILES_PER_LEAF * TREE_FANOUT[1] * TREE_FANOUT[2]:,} files); populate time: n/a"
        )
        for problem in self.zerofs.cleanup(self.repo_of):
            self.note(problem)
        repo = self.run_dir / "repo-walk-parts"
        try:
            self.zerofs.init(repo)
            for i in range(TREE_FANOUT[0]):
                self.mount(repo)
                self.child("mktree", str(self.mnt / "tree"), f"pkg{i}", label=f"mount mktree pkg{i}")
                self.umount(repo)
        except CmdError as exc2:
            self.mount_failed("walk populate, in parts", exc2)
        return repo

    # report ----------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        table = []
        for r in self.rows:
            to_null, to_local = r.ratio("nullfs"), r.ratio("local")
            table.append(
                [
                    r.measure,
                    r.unit,
                    fmt(r.value("local"), r.unit),
                    fmt(r.value("nullfs"), r.unit),
                    fmt(r.value("zerofs"), r.unit),
                    f"{to_null:.2f}" if to_null is not None else "-",
                    f"{to_local:.2f}" if to_local is not None else "-",
                    r.target_text(),
                    r.verdict(),
                ]
            )
        print()
        print("=" * 100)
        print(f"SUMMARY (medians of {self.runs} run(s); file size {self.args.size_mib} MiB; MB/s = 10^6 bytes/s)")
        print("nullfs: the do-nothing pyfuse3 file system (benchmarks/nullfs.py; discarding data for the write)")
        print("=" * 100)
        headers = ["measure", "unit", "local", "nullfs", "zerofs", "zerofs/nullfs", "zerofs/local", "target", "result"]
        print(render_table(headers, table))
        print()
        print("FUSE requests per operation, by kind (SIGUSR1 snapshots of the mount process's counters):")
        for r in self.rows:
            if r.per is None or not (r.per_operation("zerofs") or r.per_operation("nullfs")):
                continue
            print(f"  {r.measure} (per {r.per}):")
            for side in ("zerofs", "nullfs"):
                print(f"    {side:6}  {requests_text(r.per_operation(side))}")
        print()
        print("Targets:")
        for r in self.rows:
            if r.target_ratio is not None:
                ratio = r.ratio(r.against)
                how = f"zerofs/{r.against} = {ratio:.2f}" if ratio is not None else "no figure"
                print(f"  {r.verdict():4}  {r.measure} ({r.target_text()}): {how}")
        if self.profiles:
            print()
            print("Profiles of the mount process (py-spy, raw files in --profile dir):")
            for label, text in self.profiles.items():
                print(f"-- {label}")
                print("   " + text.replace("\n", "\n   "))
        if self.messages:
            print()
            print("Problems and caveats seen during the run:")
            for m in self.messages:
                print("  - " + m.replace("\n", "\n    "))
        return {
            "rows": [
                {
                    "section": r.section,
                    "measure": r.measure,
                    "unit": r.unit,
                    "local": r.value("local"),
                    "nullfs": r.value("nullfs"),
                    "zerofs": r.value("zerofs"),
                    "ratio_zerofs_nullfs": r.ratio("nullfs"),
                    "ratio_zerofs_local": r.ratio("local"),
                    "target": r.target_text() if r.target_ratio is not None else None,
                    "result": r.verdict() if r.target_ratio is not None else None,
                    "raw_seconds": r.runs,
                    "bytes": r.nbytes,
                    "requests_per": r.per,
                    "requests_per_operation": {side: r.per_operation(side) for side in ("zerofs", "nullfs")},
                }
                for r in self.rows
            ],
            "children": self.raw,
            "profiles": self.profiles,
            "messages": self.messages,
        }


# --------------------------------------------------------------------------
# Set-up and main
# --------------------------------------------------------------------------


def ensure_source(workdir: Path, size: int, log: Any) -> Path:
    """The random source file, kept in the workdir and reused by later invocations."""
    path = workdir / f"source-{size // MIB}MiB.bin"
    if path.exists() and path.stat().st_size == size:
        return path
    log(f"generating {path} ({size // MIB} MiB of os.urandom, untimed) ...")
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for off in range(0, size, MIB):
            f.write(os.urandom(min(MIB, size - off)))
    tmp.rename(path)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per measure (median); default 3")
    p.add_argument("--size-mib", type=int, default=1024, help="size of the sequential file in MiB; default 1024")
    p.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE ('-': stdout, at the end)")
    p.add_argument(
        "--workdir", default=DEFAULT_WORKDIR, help=f"scratch parent (default {DEFAULT_WORKDIR}; never tmpfs)"
    )
    p.add_argument("--keep", action="store_true", help="keep this invocation's scratch directory")
    p.add_argument("--clean", action="store_true", help="also delete the cached random source file(s) at the end")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per process; default 900")
    p.add_argument("--commit-interval", type=float, help="pass --commit-interval S to zerofs mount")
    p.add_argument("--local-only", action="store_true", help="measure the local directory only (no mount)")
    p.add_argument("--profile", metavar="DIR", help="record the mount process with py-spy during timed mount phases")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    if args.size_mib < 1:
        p.error("--size-mib must be >= 1")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    args.sections = only or list(SECTIONS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if fs_type(workdir) in ("tmpfs", "ramfs"):
        raise SystemExit(f"{workdir} is on {fs_type(workdir)}: use --workdir on a real disk")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    sections = args.sections

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t_start = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    bench: Bench | None = None
    try:
        needs_source = "write" in sections or "read" in sections
        source = ensure_source(workdir, args.size_mib * MIB, print) if needs_source else workdir / "none"
        bench = Bench(args, run_dir, source)
        version = "not used (--local-only)" if args.local_only else bench.zerofs.version()
        print(
            f"zerofs mount benchmark: scratch {run_dir} ({fs_type(run_dir)}), {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}, kernel {platform.release()}"
        )
        print(f"  zerofs: {version}; local read_ahead_kb {read_ahead_kb(run_dir)}")
        if not args.local_only and not Path("/dev/fuse").exists():
            bench.note("/dev/fuse is missing: mount figures are n/a")
            bench.mount_ok = False

        def section(title: str) -> None:
            print(f"\n== {title} ({time.perf_counter() - t_start:.0f} s elapsed)", flush=True)

        if "write" in sections or "read" in sections:
            section(f"sequential write / cold read of {args.size_mib} MiB")
            bench.big_file("write" in sections, "read" in sections)
        if "create" in sections:
            section(f"create {N_SMALL:,} small files, then lstat them")
            bench.create()
        if "tar" in sections:
            section(f"tar -x of a {TAR_FILES:,}-file source tree + sync, then lstat of every entry")
            bench.tar()
        if "walk" in sections:
            section("walk + lstat of a 20,000-file tree")
            bench.walk()
        for problem in bench.zerofs.cleanup(bench.repo_of):
            bench.note(problem)
        result = bench.report()
        elapsed = time.perf_counter() - t_start
        if bench.fuse_read_ahead is not None:
            print(f"\nFUSE mount read_ahead_kb: {bench.fuse_read_ahead}")
        print(f"Total wall time {elapsed:.0f} s")
        result["meta"] = {
            "runs": args.runs,
            "size_mib": args.size_mib,
            "sections": sections,
            "elapsed_s": elapsed,
            "zerofs": version,
            "commit_interval": args.commit_interval,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "workdir_fs": fs_type(run_dir),
            "local_read_ahead_kb": read_ahead_kb(run_dir),
            "fuse_read_ahead_kb": bench.fuse_read_ahead,
        }
        if args.json == "-":
            print(json.dumps(result, indent=2, default=str))
        elif args.json:
            Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
            print(f"wrote {args.json}")
    finally:
        if bench is not None:
            for problem in bench.zerofs.cleanup(bench.repo_of):
                print(f"  ! {problem}")
        if bench is not None:
            bench.nullfs.umount()
        if is_mounted(run_dir / "mnt"):
            subprocess.run(["fusermount3", "-u", "-z", str(run_dir / "mnt")], capture_output=True, check=False)
        if args.keep:
            print(f"kept scratch dir {run_dir}")
        else:
            print(f"removing scratch dir {run_dir} ...", flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
        if args.clean:
            for stale in workdir.glob("source-*MiB.bin"):
                stale.unlink()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
